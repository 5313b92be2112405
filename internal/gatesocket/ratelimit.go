package gatesocket

import (
	"sync"
	"time"
)

// RateLimiter allows up to N decisions per uid per minute (a token bucket
// refilled continuously). Safe for concurrent use.
type RateLimiter struct {
	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[uint32]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter allowing perMinute decisions per uid.
func NewRateLimiter(perMinute int) *RateLimiter {
	return &RateLimiter{perMinute: perMinute, now: time.Now, buckets: map[uint32]*bucket{}}
}

// SetPerMinute changes the rate (on reload). Buckets are kept, so a reload
// does not hand every uid a fresh burst.
func (l *RateLimiter) SetPerMinute(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perMinute = n
}

// Allow takes one token for uid, reporting whether there was one.
func (l *RateLimiter) Allow(uid uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[uid]
	if !ok {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[uid] = b
	}
	b.tokens = min(float64(l.perMinute), b.tokens+now.Sub(b.last).Minutes()*float64(l.perMinute))
	b.last = now
	// Forget full buckets so the map does not grow with every uid seen.
	if len(l.buckets) > 4096 {
		for k, v := range l.buckets {
			if v.tokens >= float64(l.perMinute) {
				delete(l.buckets, k)
			}
		}
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
