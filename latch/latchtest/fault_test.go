package latchtest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

func TestFaults(t *testing.T) {
	hostile := "\x1b]0;pwned\x07\x1b[2J\nInjected: line"
	for _, tc := range []struct {
		name  string
		fault latchtest.Fault
		edit  func(*http.Request)
		check func(t *testing.T, r reply, err error, h http.Header)
	}{
		{"http 503", latchtest.Fault{HTTPStatus: 503}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.status != 503 || len(r.body) == 0 || len(r.body) > 200 || r.body[0] == '{' {
				t.Fatalf("%d %q %v", r.status, r.body, err)
			}
		}},
		{"429 with Retry-After", latchtest.Fault{HTTPStatus: 429, RetryAfter: "7"}, nil, func(t *testing.T, r reply, err error, h http.Header) {
			if err != nil || r.status != 429 || h.Get("Retry-After") != "7" {
				t.Fatalf("%d %v %v", r.status, h, err)
			}
		}},
		{"502 with a body", latchtest.Fault{HTTPStatus: 502, Body: []byte("<html>bad gateway</html>")}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.status != 502 || string(r.body) != "<html>bad gateway</html>" {
				t.Fatalf("%d %q %v", r.status, r.body, err)
			}
		}},
		{"garbage body", latchtest.Fault{Body: []byte("\x00not json{")}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.status != 200 || string(r.body) != "\x00not json{" {
				t.Fatalf("%d %q %v", r.status, r.body, err)
			}
		}},
		{"empty body", latchtest.Fault{Body: []byte{}}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.status != 200 || len(r.body) != 0 {
				t.Fatalf("%d %q %v", r.status, r.body, err)
			}
		}},
		{"truncated", latchtest.Fault{Truncate: true}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			// The whole valid answer arrives, then the connection ends
			// before the declared length: a client must not use it.
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(string(r.body), `"status":"on"`) {
				t.Fatalf("%q %v", r.body, err)
			}
		}},
		{"closed mid-answer", latchtest.Fault{CloseMidAnswer: true}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			// Half of the whole answer: where the cut falls (headers or
			// body) depends on the body's length; either way no answer.
			if err == nil {
				t.Fatalf("%d %q %v", r.status, r.body, err)
			}
		}},
		{"error 109", latchtest.Fault{ErrorCode: 109}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.status != 200 || r.code != 109 || r.msg == "" || r.data != nil {
				t.Fatalf("%d %s %v", r.status, r.body, err)
			}
		}},
		{"error 109 with a bad signature", latchtest.Fault{ErrorCode: 109}, func(r *http.Request) {
			r.Header.Set("Authorization", "11PATHS "+appID+" AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		}, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.code != latch.CodeInvalidSignature {
				t.Fatalf("%s %v", r.body, err)
			}
		}},
		{"hostile message", latchtest.Fault{ErrorCode: 202, Message: hostile}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if err != nil || r.code != 202 || r.msg != hostile {
				t.Fatalf("%s %v", r.body, err)
			}
		}},
		{"raw status", latchtest.Fault{Status: "maybe"}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if e := entry(r, appID); err != nil || e["status"] != "maybe" {
				t.Fatalf("%s %v", r.body, err)
			}
		}},
		{"wrong id", latchtest.Fault{WrongID: true}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			ops, _ := r.data["operations"].(map[string]any)
			if err != nil || len(ops) != 1 || entry(r, appID) != nil {
				t.Fatalf("%s %v", r.body, err)
			}
		}},
		{"delay", latchtest.Fault{Delay: 100 * time.Millisecond}, nil, func(t *testing.T, r reply, err error, _ http.Header) {
			if e := entry(r, appID); err != nil || e["status"] != "on" {
				t.Fatalf("%s %v", r.body, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, acc := world(t, nil)
			srv.SetFault(acc, tc.fault)
			var h http.Header
			c.http = &http.Client{Transport: &headerTrap{RoundTripper: c.http.Transport, h: &h}}
			start := time.Now()
			r, err := c.send(t.Context(), "GET", "/status/"+acc, nil, tc.edit)
			if took := time.Since(start); took < tc.fault.Delay {
				t.Fatalf("answered after %v, delay %v", took, tc.fault.Delay)
			}
			tc.check(t, r, err, h)
			logged := srv.Requests()
			if len(logged) != 1 || logged[0].Fault == "" || logged[0].Account != acc {
				t.Fatalf("logged %+v", logged)
			}
		})
	}
}

// headerTrap keeps the response headers.
type headerTrap struct {
	http.RoundTripper
	h *http.Header
}

func (t *headerTrap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(r)
	if resp != nil {
		*t.h = resp.Header
	}
	return resp, err
}

func entry(r reply, id string) map[string]any {
	ops, _ := r.data["operations"].(map[string]any)
	e, _ := ops[id].(map[string]any)
	return e
}

// Times counts down; account faults win over the global one; a pairing
// request belongs to the token's Latch user.
func TestFaultScope(t *testing.T) {
	srv, c, acc := world(t, nil)
	other := c.pair(srv.IssuePairingToken(appID), "")
	statusOf := func(a string) int { return c.call("GET", "/status/"+a, nil, nil).status }

	srv.SetFault(acc, latchtest.Fault{HTTPStatus: 429, RetryAfter: "1", Times: 2})
	if got := []int{statusOf(acc), statusOf(other), statusOf(acc), statusOf(acc)}; got[0] != 429 || got[1] != 200 || got[2] != 429 || got[3] != 200 {
		t.Fatalf("statuses %v, want 429 200 429 200", got)
	}
	srv.SetFault("", latchtest.Fault{HTTPStatus: 500})
	srv.SetFault(acc, latchtest.Fault{HTTPStatus: 503})
	if a, o := statusOf(acc), statusOf(other); a != 503 || o != 500 {
		t.Fatalf("account %d, other %d", a, o)
	}
	srv.SetFault(acc, latchtest.Fault{}) // removes the account's fault only
	if a := statusOf(acc); a != 500 {
		t.Fatalf("after removing the account's fault: %d", a)
	}
	srv.ClearFaults()
	if a, o := statusOf(acc), statusOf(other); a != 200 || o != 200 {
		t.Fatalf("after ClearFaults: %d %d", a, o)
	}

	const user = "PAIRINGUSERPAIRINGUSERPAIRINGUSERPAIRINGUSERPAIRINGUSERPAIRINGUS"
	tok := srv.IssuePairingTokenFor(appID, user)
	srv.SetFault(user, latchtest.Fault{ErrorCode: latch.CodePairingError, Times: 1})
	if r := c.call("GET", "/pair/"+tok, nil, nil); r.code != latch.CodePairingError {
		t.Fatalf("pairing fault: %s", r.body)
	}
	if got := c.pair(tok, ""); got != user {
		t.Fatalf("paired %q", got)
	}
}

// A hang ends when the client goes away, and the fake is done with it.
func TestHangEndsWhenTheClientCancels(t *testing.T) {
	srv, c, acc := world(t, nil)
	srv.SetFault("", latchtest.Fault{Hang: true})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.send(ctx, "GET", "/status/"+acc, nil, nil)
		errc <- err
	}()
	waitFor(t, "the hang to start", 5*time.Second, func() bool {
		return srv.CountRequests(func(r latchtest.Request) bool { return r.Fault == "hang" }) == 1
	})
	select {
	case err := <-errc:
		t.Fatalf("answered while hanging: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	waitFor(t, "the fake to drop the request", 5*time.Second, func() bool { return srv.Requests()[0].Finished })
	if r := srv.Requests()[0]; r.HTTPStatus != 0 {
		t.Fatalf("logged %+v", r)
	}
}

// Close ends hangs, delays and connection handshakes, and returns.
func TestCloseUnblocksEverything(t *testing.T) {
	srv, err := latchtest.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddApp(appID, secret)
	c := newClient(t, srv)
	acc := c.pair(srv.IssuePairingToken(appID), "")
	srv.SetFault(acc, latchtest.Fault{Hang: true})
	srv.SetFault("", latchtest.Fault{Delay: time.Hour})
	errc := make(chan error, 2)
	for _, a := range []string{acc, "ANOTHERACCOUNT"} {
		go func() {
			_, err := c.send(context.Background(), "GET", "/status/"+a, nil, nil)
			errc <- err
		}()
	}
	waitFor(t, "both requests to arrive", 5*time.Second, func() bool { return len(srv.Requests()) == 3 })
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for range 2 {
		select {
		case err := <-errc:
			if err == nil {
				t.Fatal("a request succeeded")
			}
		case <-timeout.C:
			t.Fatal("a request still blocked after Close")
		}
	}
	select {
	case <-closed:
	case <-timeout.C:
		t.Fatal("Close did not return")
	}
	srv.Close() // again: no-op
}

func TestTLS(t *testing.T) {
	srv, c, acc := world(t, nil)
	get := func(cfg *tls.Config) error {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL() + "/api/3.0/status/" + acc)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s", srv.URL())
	}
	var unknown x509.UnknownAuthorityError
	if err := get(&tls.Config{RootCAs: x509.NewCertPool()}); !errors.As(err, &unknown) {
		t.Fatalf("empty pool: %v", err)
	}
	// Another fake's CA is not this one's.
	if err := get(&tls.Config{RootCAs: latchtest.New(t).CertPool()}); !errors.As(err, &unknown) {
		t.Fatalf("another CA: %v", err)
	}
	pemPool := x509.NewCertPool()
	if !pemPool.AppendCertsFromPEM(srv.CAPEM()) {
		t.Fatal("CAPEM is not PEM")
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		if err := get(&tls.Config{RootCAs: pemPool, ServerName: host}); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
	}

	srv.SetWrongHost(true)
	var hostErr x509.HostnameError
	if err := get(&tls.Config{RootCAs: srv.CertPool()}); !errors.As(err, &hostErr) {
		t.Fatalf("wrong host: %v", err)
	}
	if err := get(&tls.Config{RootCAs: srv.CertPool(), ServerName: latchtest.WrongHostName}); err != nil {
		t.Fatalf("wrong host, asked by its name: %v", err)
	}
	srv.SetWrongHost(false)
	c.http.CloseIdleConnections()
	if r := c.call("GET", "/status/"+acc, nil, nil); r.code != 0 {
		t.Fatalf("after SetWrongHost(false): %s", r.body)
	}
}

func TestRTT(t *testing.T) {
	const rtt = 60 * time.Millisecond
	srv, c, acc := world(t, nil, latchtest.WithRTT(rtt))
	c.http.CloseIdleConnections()
	timed := func() time.Duration {
		start := time.Now()
		if r := c.call("GET", "/status/"+acc, nil, nil); r.code != 0 {
			t.Fatalf("status: %s", r.body)
		}
		return time.Since(start)
	}
	if cold := timed(); cold < 3*rtt {
		t.Fatalf("new connection took %v, want at least 3*%v", cold, rtt)
	}
	if warm := timed(); warm < rtt {
		t.Fatalf("kept-alive connection took %v, want at least %v", warm, rtt)
	}
	srv.SetRTT(0)
	c.http.CloseIdleConnections()
	timed() // still works without
}

// After Close, nothing the fake started is left running.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		srv, err := latchtest.Listen("127.0.0.1:0", latchtest.WithRTT(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		srv.AddApp(appID, secret)
		c := newClient(t, srv)
		defer c.http.CloseIdleConnections()
		acc := c.pair(srv.IssuePairingToken(appID), "")
		c.call("GET", "/status/"+acc, nil, nil)
		for _, f := range []latchtest.Fault{{Truncate: true}, {CloseMidAnswer: true}, {HTTPStatus: 500}} {
			srv.SetFault(acc, f)
			c.send(t.Context(), "GET", "/status/"+acc, nil, nil)
		}
		// One hang the client gives up on, one still hanging at Close.
		srv.SetFault(acc, latchtest.Fault{Hang: true})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		c.send(ctx, "GET", "/status/"+acc, nil, nil)
		go c.send(context.Background(), "GET", "/status/"+acc, nil, nil)
		waitFor(t, "the second hang", 5*time.Second, func() bool {
			return srv.CountRequests(func(r latchtest.Request) bool { return r.Fault == "hang" }) == 2
		})
		srv.Close()
	}()
	waitFor(t, "goroutines to end", 10*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}
