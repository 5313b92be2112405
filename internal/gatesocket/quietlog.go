package gatesocket

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultQuietInterval is how long the gate socket folds repeated problems
// of one uid (refused connections, bad requests, rate-limited decisions)
// into a single count: at most one line per uid per interval.
const DefaultQuietInterval = 10 * time.Second

// maxQuietKeys bounds the uids tracked at once; past it, the rest share one
// key, so a flood from many uids cannot grow the map without end.
const maxQuietKeys = 4096

// quietLog folds repeated problems into counts (issue 12, item 6). Any
// local user can make the daemon refuse a connection for the price of a
// connect(2): logging every refusal gave them ~10k lines a second in the
// journal, drowning the decisions admins need and filling the disk. So the
// first problem of a key (a uid) is logged in full at once, with its
// detail, and opens a window; what follows within the window is only
// counted, and when the window ends one line gives the counts ("uid 1001:
// 48213 connections refused (too many open) in the last 10s"). A key quiet
// for a whole window is forgotten, so its next problem is logged in full
// again. Safe for concurrent use; the zero value is not usable (see
// newQuietLog).
type quietLog struct {
	interval time.Duration
	logf     func(format string, args ...any)
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*quietWindow
}

type quietWindow struct {
	start time.Time
	// counts of the problems folded so far in this window, by kind.
	counts map[string]int
}

func newQuietLog(interval time.Duration, logf func(string, ...any)) *quietLog {
	if interval <= 0 {
		interval = DefaultQuietInterval
	}
	return &quietLog{interval: interval, logf: logf, now: time.Now, keys: map[string]*quietWindow{}}
}

// first reports whether the problem of the given kind for key must be
// logged in full now (true: the caller logs it), or has been counted for
// the window's summary (false). It does no I/O, so the accept loop can
// call it for every refused connection.
func (q *quietLog) first(key, kind string) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.keys[key]
	if !ok && len(q.keys) >= maxQuietKeys {
		key = "other uids"
		w, ok = q.keys[key]
	}
	if !ok {
		q.keys[key] = &quietWindow{start: q.now(), counts: map[string]int{}}
		return true
	}
	w.counts[kind]++
	return false
}

// flush writes one summary line for each key whose window has ended with
// problems folded in it, and forgets the keys that stayed quiet. all
// flushes every window (when the server stops).
func (q *quietLog) flush(all bool) {
	now := q.now()
	var lines []string
	q.mu.Lock()
	for key, w := range q.keys {
		if !all && now.Sub(w.start) < q.interval {
			continue
		}
		if len(w.counts) == 0 {
			delete(q.keys, key)
			continue
		}
		total := 0
		var parts []string
		for _, kind := range slices.Sorted(maps.Keys(w.counts)) {
			total += w.counts[kind]
			parts = append(parts, fmt.Sprintf("%d %s", w.counts[kind], kind))
		}
		lines = append(lines, fmt.Sprintf("%s: %s in the last %s (%d in all; repeats are counted, at most one line per %s)",
			key, strings.Join(parts, ", "), now.Sub(w.start).Round(time.Second), total, q.interval))
		w.start, w.counts = now, map[string]int{}
	}
	q.mu.Unlock()
	slices.Sort(lines)
	for _, l := range lines {
		q.logf("gate socket: %s", l)
	}
}

// run flushes every interval until stop is closed, then once more.
func (q *quietLog) run(stop <-chan struct{}) {
	tick := time.NewTicker(q.interval / 10)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			q.flush(false)
		case <-stop:
			q.flush(true)
			return
		}
	}
}
