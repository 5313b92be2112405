package latchtest_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestFaultDrip: the Drip fault delivers the real, complete answer, one
// byte per interval, so that clients can be tested against a server that
// trickles its answer (the adversarial tests of the latch package and of
// the front ends use it); a client that gives up, or Close, ends it.
func TestFaultDrip(t *testing.T) {
	srv, c, acc := world(t, nil)
	const interval = 2 * time.Millisecond
	srv.SetFault(acc, latchtest.Fault{Drip: interval, Times: 1})
	start := time.Now()
	r, err := c.send(t.Context(), "GET", "/status/"+acc, nil, nil)
	took := time.Since(start)
	if err != nil || r.status != 200 || !strings.Contains(string(r.body), `"status":"on"`) {
		t.Fatalf("dripped answer: %d %q %v", r.status, r.body, err)
	}
	// The status line, headers and body are well over 100 bytes.
	if took < 100*interval {
		t.Fatalf("the answer came in %v: not dripped", took)
	}
	if got := srv.Requests(); len(got) != 1 || got[0].Fault != "drip 2ms" {
		t.Fatalf("request log %+v, want the drip recorded", got)
	}

	// A client that gives up: the handler ends too (at the next byte it
	// fails to write), and so does a drip still going at Close.
	before := runtime.NumGoroutine()
	srv.SetFault(acc, latchtest.Fault{Drip: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.send(ctx, "GET", "/status/"+acc, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client deadline during a drip: %v", err)
	}
	go c.send(context.Background(), "GET", "/status/"+acc, nil, nil)
	waitFor(t, "the second drip to start", 5*time.Second, func() bool {
		return srv.CountRequests(func(r latchtest.Request) bool { return r.Fault == "drip 50ms" }) == 2
	})
	srv.Close()
	c.http.CloseIdleConnections()
	waitFor(t, "the drips to end", 10*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}
