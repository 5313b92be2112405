package latch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// Tests of issue 15: a burst of logins stays at one Latch round trip per
// decision (identical status calls in flight share one request, the
// connections stay warm, HTTP/2 when Latch offers it).

// burstSetup starts a fake (with opts) holding the usual application and
// operation, and returns it with a client made with o.
func burstSetup(t testing.TB, o latch.Options, opts ...latchtest.Option) (*latchtest.Server, *latch.Client) {
	t.Helper()
	srv := latchtest.New(t, opts...)
	srv.AddApp(appID, secret)
	srv.AddOperation(appID, opID, "")
	c, err := latch.NewClientWith(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: srv.CertPool(), UserAgent: "latch-ssh/test"}, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return srv, c
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// statusCalls counts the status requests the fake received.
func statusCalls(srv *latchtest.Server) int {
	return srv.CountRequests(func(r latchtest.Request) bool { return r.Account != "" && r.HTTPStatus == 200 })
}

type result struct {
	st  latch.Status
	err error
}

// callsInFlight starts n calls of r on c, waits until they all wait for the
// one request in flight (with any that already did), and returns a
// function that collects their results.
// The fake must hold the answer back (a Delay fault) long enough.
func callsInFlight(t *testing.T, c *latch.Client, r latch.StatusRequest, n int) func() []result {
	t.Helper()
	out := make([]result, n)
	base := latch.Waiting(c, r)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i].st, out[i].err = c.Status(ctxTimeout(t, 20*time.Second), r)
		})
	}
	waitFor(t, "the calls to join", func() bool { return latch.Waiting(c, r) == base+n })
	return func() []result { wg.Wait(); return out }
}

// N identical /nootp calls in flight make one request at the fake, and
// every caller gets the answer.
func TestStatusCoalescesIdenticalCalls(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, time.Minute)
	acc := srv.PairedAccount(appID)
	srv.SetLatch(acc, opID, false)
	srv.SetFault(acc, latchtest.Fault{Delay: 2 * time.Second})
	r := latch.StatusRequest{AccountID: acc, OperationID: opID, NoOTP: true}
	const n = 20
	results := callsInFlight(t, c, r, n)()
	for i, res := range results {
		if res.err != nil || res.st.Open || res.st.TwoFactor != nil {
			t.Fatalf("call %d: %+v, %v; want closed", i, res.st, res.err)
		}
	}
	if got := statusCalls(srv); got != 1 {
		t.Fatalf("%d identical calls in flight made %d requests to Latch, want 1", n, got)
	}
}

// Without coalescing (the baseline), the same calls make one request each:
// the test above can fail.
func TestStatusWithoutCoalescingAsksEachTime(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{NoCoalesce: true})
	acc := srv.PairedAccount(appID)
	srv.SetFault(acc, latchtest.Fault{Delay: 300 * time.Millisecond})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := c.Status(ctxTimeout(t, 20*time.Second), latch.StatusRequest{AccountID: acc, NoOTP: true}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := statusCalls(srv); got != 5 {
		t.Fatalf("5 calls without coalescing made %d requests, want 5", got)
	}
}

// A call that starts after an answer arrived asks Latch again, and sees the
// latch as it is now: no answer received before a call began is reused,
// however recent.
func TestStatusAfterAnswerAsksAgain(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, time.Minute)
	acc := srv.PairedAccount(appID)
	r := latch.StatusRequest{AccountID: acc, NoOTP: true}
	ctx := ctxTimeout(t, 20*time.Second)
	if st, err := c.Status(ctx, r); err != nil || !st.Open {
		t.Fatalf("first call: %+v, %v; want open", st, err)
	}
	srv.SetLatch(acc, appID, false)
	if st, err := c.Status(ctx, r); err != nil || st.Open {
		t.Fatalf("call after the person closed the latch: %+v, %v; want closed", st, err)
	}
	if got := statusCalls(srv); got != 2 {
		t.Fatalf("two calls one after the other made %d requests, want 2", got)
	}
}

// A request in flight for longer than the join window is not joined: the
// new call sends its own.
func TestStatusDoesNotJoinAnOldRequest(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, 50*time.Millisecond)
	acc := srv.PairedAccount(appID)
	r := latch.StatusRequest{AccountID: acc, NoOTP: true}
	srv.SetFault(acc, latchtest.Fault{Delay: time.Second, Times: 1})
	first := callsInFlight(t, c, r, 1)
	waitFor(t, "the first request to reach the fake", func() bool { return srv.CountRequests(func(latchtest.Request) bool { return true }) == 1 })
	sent := time.Now()
	waitFor(t, "the join window to pass", func() bool { return time.Since(sent) > 100*time.Millisecond })
	if _, err := c.Status(ctxTimeout(t, 20*time.Second), r); err != nil {
		t.Fatal(err)
	}
	if res := first(); res[0].err != nil {
		t.Fatal(res[0].err)
	}
	if got := statusCalls(srv); got != 2 {
		t.Fatalf("a call after the join window made %d requests in all, want 2", got)
	}
}

// A one-time code is never shared: when the shared answer carries one, only
// the call that sent the request gets it, and the others ask on their own,
// each getting its own code.
func TestStatusNeverSharesAOneTimeCode(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, time.Minute)
	srv.SetTwoFactor(appID, true)
	acc := srv.PairedAccount(appID)
	srv.SetFault(acc, latchtest.Fault{Delay: time.Second, Times: 1})
	const n = 5
	r := latch.StatusRequest{AccountID: acc}
	results := callsInFlight(t, c, r, n)()
	seen := map[string]bool{}
	for i, res := range results {
		if res.err != nil || !res.st.Open || res.st.TwoFactor == nil {
			t.Fatalf("call %d: %+v, %v; want open with a code", i, res.st, res.err)
		}
		if seen[res.st.TwoFactor.Token] {
			t.Fatalf("one-time code %q handed to two calls", res.st.TwoFactor.Token)
		}
		seen[res.st.TwoFactor.Token] = true
	}
	// One shared request, then one of its own for each joiner.
	if got := statusCalls(srv); got != n {
		t.Fatalf("%d calls with codes made %d requests, want %d", n, got, n)
	}
}

// Calls that differ in account, operation, instance, /nootp or /silent
// are different questions: none waits for another's answer.
func TestStatusDifferentQuestionsDoNotCoalesce(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, time.Minute)
	acc, other := srv.PairedAccount(appID), srv.PairedAccount(appID)
	srv.AddInstance(appID, acc, opID, "INSTANCE1", "ssh host")
	srv.SetFault("", latchtest.Fault{Delay: time.Second})
	questions := []latch.StatusRequest{
		{AccountID: acc, NoOTP: true},
		{AccountID: other, NoOTP: true},
		{AccountID: acc, OperationID: opID, NoOTP: true},
		{AccountID: acc, OperationID: opID, InstanceID: "INSTANCE1", NoOTP: true},
		{AccountID: acc},
		{AccountID: acc, NoOTP: true, Silent: true},
	}
	var collect []func() []result
	for _, q := range questions {
		collect = append(collect, callsInFlight(t, c, q, 1))
	}
	for i, q := range questions {
		if n := latch.Waiting(c, q); n != 1 {
			t.Errorf("question %d (%+v): %d calls wait for its request, want 1", i, q, n)
		}
	}
	for _, f := range collect {
		f()
	}
	if got := srv.CountRequests(func(r latchtest.Request) bool { return r.Account != "" }); got != len(questions) {
		t.Fatalf("%d different questions made %d requests, want %d", len(questions), got, len(questions))
	}
}

// Each call keeps its own deadline: the call that sent the request and a
// joiner are cancelled while waiting; both return their context's error at
// once, and the others still get the answer of the one request.
func TestStatusCancelledCallsLeaveOthersTheAnswer(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	latch.SetJoinWindow(c, time.Minute)
	acc := srv.PairedAccount(appID)
	srv.SetFault(acc, latchtest.Fault{Delay: 2 * time.Second})
	r := latch.StatusRequest{AccountID: acc, NoOTP: true}

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	defer cancelLeader()
	leader := make(chan error, 1)
	go func() { _, err := c.Status(leaderCtx, r); leader <- err }()
	waitFor(t, "the leader's request", func() bool { return latch.Waiting(c, r) == 1 })
	joinerCtx, cancelJoiner := context.WithCancel(context.Background())
	defer cancelJoiner()
	joiner := make(chan error, 1)
	go func() { _, err := c.Status(joinerCtx, r); joiner <- err }()
	waitFor(t, "the joiner", func() bool { return latch.Waiting(c, r) == 2 })
	others := callsInFlight(t, c, r, 3)

	for name, tc := range map[string]struct {
		cancel context.CancelFunc
		errc   chan error
	}{"leader": {cancelLeader, leader}, "joiner": {cancelJoiner, joiner}} {
		start := time.Now()
		tc.cancel()
		err := <-tc.errc
		if !errors.Is(err, context.Canceled) || !isTransport(err) {
			t.Fatalf("cancelled %s: %v, want a *TransportError wrapping context.Canceled", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("cancelled %s returned after %v, want at once", name, d)
		}
	}
	for i, res := range others() {
		if res.err != nil || !res.st.Open {
			t.Fatalf("call %d: %+v, %v; want the open latch", i, res.st, res.err)
		}
	}
	if got := srv.CountRequests(func(r latchtest.Request) bool { return r.Account != "" }); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
}

// When every call waiting for a request has left, the request is cancelled
// (the fake sees the client go away) rather than left running.
func TestStatusRequestEndsWhenNobodyWaits(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{})
	acc := srv.PairedAccount(appID)
	srv.SetFault(acc, latchtest.Fault{Hang: true})
	_, err := c.Status(ctxTimeout(t, 200*time.Millisecond), latch.StatusRequest{AccountID: acc, NoOTP: true})
	if !isDeadline(err) {
		t.Fatalf("hang: %v, want the deadline", err)
	}
	waitFor(t, "the fake to see the request end", func() bool {
		return srv.CountRequests(func(r latchtest.Request) bool { return r.Finished }) == 1
	})
}

// protos returns how many of the fake's logged requests came with each
// HTTP version.
func protos(srv *latchtest.Server) map[int]int {
	out := map[int]int{}
	for _, r := range srv.Requests() {
		out[r.ProtoMajor]++
	}
	return out
}

// The client speaks HTTP/2 to a Latch that offers it (ALPN "h2"), over the
// explicit TLS config, and all concurrent calls share its one connection;
// it falls back to HTTP/1.1 when Latch offers only that.
func TestHTTP2WhenOfferedElseHTTP1(t *testing.T) {
	for _, tc := range []struct {
		name  string
		h2    bool
		o     latch.Options
		proto int
	}{
		{"fake offers h2", true, latch.Options{}, 2},
		{"fake offers http/1.1 only", false, latch.Options{}, 1},
		{"client without h2 (baseline)", true, latch.Options{HTTP1Only: true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := burstSetup(t, tc.o, latchtest.WithHTTP2(tc.h2))
			acc := srv.PairedAccount(appID)
			ctx := ctxTimeout(t, 20*time.Second)
			if st, err := c.Status(ctx, latch.StatusRequest{AccountID: acc, NoOTP: true}); err != nil || !st.Open {
				t.Fatalf("status: %+v, %v", st, err)
			}
			if got := protos(srv); got[tc.proto] != 1 || len(got) != 1 {
				t.Fatalf("requests by HTTP version: %v, want one of HTTP/%d", got, tc.proto)
			}
			if tc.proto != 2 {
				return
			}
			// Concurrent calls (different questions) over the warm
			// HTTP/2 connection open no other.
			srv.SetFault("", latchtest.Fault{Delay: 200 * time.Millisecond})
			before := srv.Connections()
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if _, err := c.Status(ctx, latch.StatusRequest{AccountID: srv.PairedAccount(appID), NoOTP: true}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := srv.Connections() - before; n != 0 {
				t.Fatalf("20 concurrent calls over HTTP/2 opened %d new connections, want 0", n)
			}
			if got := protos(srv); got[2] != 21 {
				t.Fatalf("requests by HTTP version: %v, want 21 of HTTP/2", got)
			}
		})
	}
}

// Over HTTP/1.1 (one request per connection at a time), the pool keeps a
// connection for every call of the recent peak: after 50 concurrent calls,
// another 50 find them all warm and open no connection (a constant 16
// idle connections opened 34 new ones, each 2 more round trips).
func TestPoolKeepsConnectionsForObservedConcurrency(t *testing.T) {
	srv, c := burstSetup(t, latch.Options{}, latchtest.WithHTTP2(false))
	const n = 50
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = srv.PairedAccount(appID)
	}
	// Each request holds its connection long enough for the wave to be
	// in flight at once.
	srv.SetFault("", latchtest.Fault{Delay: 300 * time.Millisecond})
	wave := func() {
		var wg sync.WaitGroup
		for _, acc := range accounts {
			wg.Go(func() {
				if _, err := c.Status(ctxTimeout(t, 20*time.Second), latch.StatusRequest{AccountID: acc, NoOTP: true}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	wave()
	first := srv.Connections()
	if first < n/2 {
		t.Fatalf("the first wave of %d calls opened only %d connections: not concurrent enough to test the pool", n, first)
	}
	wave()
	if more := srv.Connections() - first; more != 0 {
		t.Fatalf("the second wave of %d calls opened %d new connections (the first opened %d), want 0", n, more, first)
	}
}

// Over HTTP/2 the fake's faults still break the answer as they say (they
// cannot take over the connection: they reset the stream), and the client
// gives the same typed errors as over HTTP/1.1, never an open latch.
func TestFaultsOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    latchtest.Fault
		deadline time.Duration
		check    func(error) bool
	}{
		{"truncated", latchtest.Fault{Truncate: true}, 5 * time.Second, isTransport},
		{"closed mid-answer", latchtest.Fault{CloseMidAnswer: true}, 5 * time.Second, isTransport},
		{"drip within deadline", latchtest.Fault{Drip: time.Millisecond}, 10 * time.Second, func(err error) bool { return err == nil }},
		{"drip past deadline", latchtest.Fault{Drip: 50 * time.Millisecond}, 300 * time.Millisecond, isDeadline},
		{"hang", latchtest.Fault{Hang: true}, 300 * time.Millisecond, isDeadline},
		{"http 502", latchtest.Fault{HTTPStatus: 502}, 5 * time.Second, httpStatus(502)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := burstSetup(t, latch.Options{}, latchtest.WithHTTP2(true))
			acc := srv.PairedAccount(appID)
			srv.SetFault(acc, tc.fault)
			st, err := c.Status(ctxTimeout(t, tc.deadline), latch.StatusRequest{AccountID: acc, NoOTP: true})
			if !tc.check(err) || (err != nil && st.Open) || (err == nil && !st.Open) {
				t.Fatalf("%+v, %v (%T)", st, err, err)
			}
			if got := protos(srv); got[2] != 1 || len(got) != 1 {
				t.Fatalf("requests by HTTP version: %v, want one of HTTP/2", got)
			}
		})
	}
}
