package latch

import (
	"context"
	"sync"
	"time"
)

// DefaultJoinWindow is how long after a status request was sent a call
// asking the same question may still join it (see Client.Status).
const DefaultJoinWindow = time.Second

// flights are the status requests in flight, by request path (the path
// holds every part of the question: account, operation, instance, /nootp,
// /silent).
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one status request shared by the calls waiting for it.
type flight struct {
	sent time.Time // monotonic, when the request started
	done chan struct{}
	// a and err are the outcome, written once before done is closed.
	a   answer
	err error
	// waiting counts the calls still waiting (guarded by flights.mu); the
	// request is cancelled when it drops to zero, and not before: the
	// call that started it may leave (its deadline, its login dropped)
	// while others still have time.
	waiting int
	cancel  context.CancelFunc
	// deadline is the latest deadline of the calls that joined, and
	// bounded false once one joined without a deadline (guarded by
	// flights.mu): the request's context reports it (flightContext), so
	// that do plans a retry (429 Retry-After) for the call with the most
	// time, and the dialer bounds its connect by it.
	deadline time.Time
	bounded  bool
}

// flightContext is the context of a shared request: the starting call's
// values, no cancellation of its own, and as deadline the latest of the
// waiting calls' (see flight.deadline).
type flightContext struct {
	context.Context
	f  *flight
	mu *sync.Mutex
}

// Deadline reports the latest deadline of the calls that joined the flight.
func (c flightContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.deadline, c.f.bounded
}

// shared sends r (a status request) or joins the identical request already
// in flight, and waits for its answer within ctx. leader reports whether
// this call started the request: the only call that may receive a one-time
// code in its answer (see Client.Status).
//
// The request runs on a context of its own, detached from the starting
// call's cancellation and deadline, cancelled once no call waits for it
// any more (each call leaves when its own ctx ends, with ctx's error).
// The client's Timeout still bounds it, inside do.
func (c *Client) shared(ctx context.Context, r request) (a answer, leader bool, err error) {
	fl := &c.flights
	fl.mu.Lock()
	f := fl.m[r.path]
	// A request is joined only while its answer has not arrived (fly
	// removes it from the map before publishing the answer) and for at
	// most joinWindow after it was sent.
	if f == nil || time.Since(f.sent) > c.joinWindow {
		leader = true
		f = &flight{sent: time.Now(), done: make(chan struct{})}
		f.deadline, f.bounded = ctx.Deadline()
		var fctx context.Context
		fctx, f.cancel = context.WithCancel(flightContext{context.WithoutCancel(ctx), f, &fl.mu})
		if fl.m == nil {
			fl.m = map[string]*flight{}
		}
		fl.m[r.path] = f
		go c.fly(fctx, r, f)
	} else if dl, ok := ctx.Deadline(); !ok {
		f.bounded = false
	} else if f.bounded && dl.After(f.deadline) {
		f.deadline = dl
	}
	f.waiting++
	fl.mu.Unlock()

	select {
	case <-f.done:
		return f.a, leader, f.err
	case <-ctx.Done():
		fl.mu.Lock()
		f.waiting--
		if f.waiting == 0 {
			if fl.m[r.path] == f {
				delete(fl.m, r.path)
			}
			f.cancel()
		}
		fl.mu.Unlock()
		return answer{}, leader, &TransportError{Op: r.method + " " + c.prefix + r.path, Err: ctx.Err()}
	}
}

// fly sends the shared request f and publishes its outcome.
func (c *Client) fly(ctx context.Context, r request, f *flight) {
	defer f.cancel()
	a, err := c.do(ctx, r)
	fl := &c.flights
	fl.mu.Lock()
	if fl.m[r.path] == f {
		delete(fl.m, r.path)
	}
	f.a, f.err = a, err
	fl.mu.Unlock()
	close(f.done)
}
