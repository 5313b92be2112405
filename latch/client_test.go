package latch_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const (
	appID  = "APPIDAPPIDAPPIDAPPID"
	secret = "SECRETSECRETSECRETSECRETSECRETSECRET1234"
	opID   = "OPERATIONOPERATION01"
)

// setup starts a fake with one application and one paired account.
func setup(t *testing.T) (*latchtest.Server, *latch.Client, string) {
	t.Helper()
	srv := latchtest.New(t)
	srv.AddApp(appID, secret)
	srv.AddOperation(appID, opID, "")
	c := newClient(t, srv, secret)
	acc, err := c.Pair(context.Background(), srv.IssuePairingToken(appID), "")
	if err != nil {
		t.Fatalf("pair: %v", err)
	}
	return srv, c, acc
}

func newClient(t *testing.T, srv *latchtest.Server, secret string) *latch.Client {
	t.Helper()
	c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: srv.CertPool(), UserAgent: "latch-ssh/test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestEndpointsAgainstFake(t *testing.T) {
	srv, c, acc := setup(t)
	ctx := ctxTimeout(t, 5*time.Second)

	st, err := c.Status(ctx, latch.StatusRequest{AccountID: acc})
	if err != nil || !st.Open || st.ID != appID {
		t.Fatalf("app status = %+v, %v; want open", st, err)
	}
	srv.SetLatch(acc, opID, false)
	st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: opID, NoOTP: true, Silent: true})
	if err != nil || st.Open || st.ID != opID {
		t.Fatalf("op status = %+v, %v; want closed", st, err)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if !last.NoOTP || !last.Silent || last.Operation != opID {
		t.Fatalf("fake saw %+v, want nootp+silent on %s", last, opID)
	}
	srv.AddInstance(appID, acc, "", "INSTANCE1", "ssh host")
	st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, InstanceID: "INSTANCE1"})
	if err != nil || st.ID != "INSTANCE1" {
		t.Fatalf("instance status = %+v, %v", st, err)
	}

	// Two-factor: a token on "on", none with /nootp.
	srv.SetLatch(acc, opID, true)
	srv.SetTwoFactor(opID, true)
	st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: opID})
	if err != nil || st.TwoFactor == nil {
		t.Fatalf("two-factor status = %+v, %v", st, err)
	}
	if tok, _ := srv.LastTwoFactorToken(acc, opID); tok != st.TwoFactor.Token {
		t.Fatalf("token %q, fake generated %q", st.TwoFactor.Token, tok)
	}
	st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: opID, NoOTP: true})
	if err != nil || st.TwoFactor != nil {
		t.Fatalf("nootp status = %+v, %v", st, err)
	}

	if err := c.Lock(ctx, acc, ""); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if st, _ := c.Status(ctx, latch.StatusRequest{AccountID: acc}); st.Open {
		t.Fatal("still open after lock")
	}
	if err := c.Unlock(ctx, acc, ""); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if st, _ := c.Status(ctx, latch.StatusRequest{AccountID: acc}); !st.Open {
		t.Fatal("closed after unlock")
	}
	if h, err := c.History(ctx, acc, time.Time{}, time.Time{}); err != nil || len(h) == 0 {
		t.Fatalf("history: %s, %v", h, err)
	}
	if h, err := c.History(ctx, acc, time.Now().Add(-time.Hour), time.Now()); err != nil || len(h) == 0 {
		t.Fatalf("history range: %s, %v", h, err)
	}
	ops, err := c.Operations(ctx, "")
	if err != nil || ops[opID].Name == "" {
		t.Fatalf("operations = %+v, %v", ops, err)
	}

	// Pairing with a label goes by POST and is signed with its form.
	acc2, err := c.Pair(ctx, srv.IssuePairingToken(appID), "alice@host one")
	if err != nil || acc2 == acc {
		t.Fatalf("pair with commonName: %q, %v", acc2, err)
	}
	if err := c.Unpair(ctx, acc); err != nil {
		t.Fatalf("unpair: %v", err)
	}
	if _, err := c.Status(ctx, latch.StatusRequest{AccountID: acc}); !latch.IsNotPaired(err) {
		t.Fatalf("status after unpair: %v, want 201", err)
	}
}

func TestPairingErrors(t *testing.T) {
	srv, c, acc := setup(t)
	ctx := ctxTimeout(t, 5*time.Second)
	tok := srv.IssuePairingToken(appID)
	if _, err := c.Pair(ctx, tok, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pair(ctx, tok, ""); latch.ErrorCode(err) != latch.CodeTokenNotFound {
		t.Fatalf("reused token: %v, want 206", err)
	}
	if _, err := c.Pair(ctx, srv.IssuePairingTokenFor(appID, acc), ""); latch.ErrorCode(err) != latch.CodeAlreadyPaired {
		t.Fatalf("already paired: %v, want 205", err)
	}
	before := len(srv.Requests())
	if _, err := c.Pair(ctx, "../x", ""); err == nil || len(srv.Requests()) != before {
		t.Fatalf("a token with a slash reached the wire: %v", err)
	}
	if _, err := c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: "NOSUCHOPERATION00000"}); !latch.IsOperationNotFound(err) {
		t.Fatalf("unknown operation: %v, want 301", err)
	}
}

// The fake really checks signatures: a client with the wrong secret is
// refused with 102, classified as a credentials problem.
func TestWrongSecretIsRefused(t *testing.T) {
	srv, _, acc := setup(t)
	bad := newClient(t, srv, strings.Repeat("X", 40))
	_, err := bad.Status(ctxTimeout(t, 5*time.Second), latch.StatusRequest{AccountID: acc})
	if latch.ErrorCode(err) != latch.CodeInvalidSignature || !latch.IsCredentials(err) {
		t.Fatalf("wrong secret: %v, want 102", err)
	}
}

// Every fault of the fake gives its typed error, never an open latch, and
// a hang ends at the deadline.
func TestFaultsGiveTypedErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    latchtest.Fault
		deadline time.Duration
		check    func(error) bool
	}{
		{"delay within deadline", latchtest.Fault{Delay: 50 * time.Millisecond}, time.Second, func(err error) bool { return err == nil }},
		{"delay past deadline", latchtest.Fault{Delay: 5 * time.Second}, 300 * time.Millisecond, isDeadline},
		{"hang", latchtest.Fault{Hang: true}, 300 * time.Millisecond, isDeadline},
		{"http 500", latchtest.Fault{HTTPStatus: 500}, time.Second, httpStatus(500)},
		{"http 502 html", latchtest.Fault{HTTPStatus: 502, Body: []byte("<html>bad gateway</html>")}, time.Second, httpStatus(502)},
		{"429 retry after too long", latchtest.Fault{HTTPStatus: 429, RetryAfter: "30"}, time.Second, httpStatus(429)},
		{"429 without retry-after", latchtest.Fault{HTTPStatus: 429}, time.Second, httpStatus(429)},
		{"429 once then ok", latchtest.Fault{HTTPStatus: 429, RetryAfter: "1", Times: 1}, 3 * time.Second, func(err error) bool { return err == nil }},
		{"non-JSON", latchtest.Fault{Body: []byte("hello")}, time.Second, isMalformed},
		{"empty body", latchtest.Fault{Body: []byte{}}, time.Second, isMalformed},
		{"truncated", latchtest.Fault{Truncate: true}, time.Second, isTransport},
		{"closed mid-answer", latchtest.Fault{CloseMidAnswer: true}, time.Second, isTransport},
		{"unknown status", latchtest.Fault{Status: "maybe"}, time.Second, isMalformed},
		{"wrong id", latchtest.Fault{WrongID: true}, time.Second, isMalformed},
		{"error 109", latchtest.Fault{ErrorCode: 109}, time.Second, latch.IsClock},
		{"error 102", latchtest.Fault{ErrorCode: 102}, time.Second, latch.IsCredentials},
		{"error 301", latchtest.Fault{ErrorCode: 301}, time.Second, latch.IsOperationNotFound},
		{"error 201", latchtest.Fault{ErrorCode: 201}, time.Second, latch.IsNotPaired},
		{"error 701", latchtest.Fault{ErrorCode: 701}, time.Second, code(701)},
		{"hostile message", latchtest.Fault{ErrorCode: 202, Message: "\x1b]0;pwned\x07\x1b[2J\nInjected: line"}, time.Second, func(err error) bool {
			return latch.ErrorCode(err) == 202 && !strings.ContainsAny(err.Error(), "\x1b\x07\n")
		}},
		{"huge body", latchtest.Fault{Body: []byte(`{"data":{"operations":{"` + appID + `":{"status":"on","x":"` + strings.Repeat("a", 2<<20) + `"}}}}`)}, 3 * time.Second, isMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, acc := setup(t)
			srv.SetFault(acc, tc.fault)
			// The call must end within 100ms of its deadline. On a loaded
			// 2-core machine running -race the scheduler alone can add
			// that much, so the best of three attempts is judged: a client
			// that overshoots systematically still fails every time.
			best := time.Hour
			for range 3 {
				start := time.Now()
				st, err := c.Status(ctxTimeout(t, tc.deadline), latch.StatusRequest{AccountID: acc})
				best = min(best, time.Since(start))
				if !tc.check(err) {
					t.Fatalf("err = %v (%T)", err, err)
				}
				if err != nil && st.Open {
					t.Fatal("an error came with an open latch")
				}
				if best <= tc.deadline+100*time.Millisecond || tc.fault.Times > 0 {
					break
				}
			}
			if best > tc.deadline+100*time.Millisecond {
				t.Fatalf("took %v, deadline %v", best, tc.deadline)
			}
		})
	}
}

func isDeadline(err error) bool {
	var te *latch.TransportError
	return errors.As(err, &te) && errors.Is(err, context.DeadlineExceeded)
}
func isMalformed(err error) bool { return errors.Is(err, latch.ErrMalformed) }
func isTransport(err error) bool {
	var te *latch.TransportError
	return errors.As(err, &te)
}
func httpStatus(n int) func(error) bool {
	return func(err error) bool {
		var he *latch.HTTPError
		return errors.As(err, &he) && he.StatusCode == n && errors.Is(err, latch.ErrMalformed)
	}
}
func code(n int) func(error) bool { return func(err error) bool { return latch.ErrorCode(err) == n } }

func TestTLSFailures(t *testing.T) {
	t.Run("wrong host", func(t *testing.T) {
		srv, c, acc := setup(t)
		srv.SetWrongHost(true)
		c.CloseIdleConnections()
		_, err := c.Status(ctxTimeout(t, 2*time.Second), latch.StatusRequest{AccountID: acc})
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Fatalf("err = %v, want a hostname error", err)
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		srv, _, acc := setup(t)
		c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: x509.NewCertPool()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(ctxTimeout(t, 2*time.Second), latch.StatusRequest{AccountID: acc})
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Fatalf("err = %v, want unknown authority", err)
		}
	})
}

// A server whose clock is 10 minutes away from ours answers 109; the client
// learns the offset from the Date header and the retry succeeds, inside the
// same deadline.
func TestClockSkewIsCorrectedOnce(t *testing.T) {
	srv := latchtest.New(t)
	srv.AddApp(appID, secret)
	skewed := func() time.Time { return time.Now().Add(10 * time.Minute) }
	c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: srv.CertPool(), Now: skewed})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Pair(ctxTimeout(t, 3*time.Second), srv.IssuePairingToken(appID), "")
	if err != nil {
		t.Fatalf("pair with a skewed clock: %v", err)
	}
	if off := c.ClockOffset(); off > -9*time.Minute || off < -11*time.Minute {
		t.Fatalf("offset %v, want about -10m", off)
	}
	n := srv.CountRequests(func(r latchtest.Request) bool { return r.Code == latch.CodeRequestExpired })
	if n != 1 {
		t.Fatalf("fake answered 109 %d times, want 1", n)
	}
	if _, err := c.Status(ctxTimeout(t, 3*time.Second), latch.StatusRequest{AccountID: acc}); err != nil {
		t.Fatalf("status after correction: %v", err)
	}
	if n := srv.CountRequests(func(r latchtest.Request) bool { return r.Code == latch.CodeRequestExpired }); n != 1 {
		t.Fatalf("offset not kept: %d expired answers", n)
	}
}

// Connections are reused between calls (the daemon's warm path).
func TestKeepAlive(t *testing.T) {
	_, c, acc := setup(t)
	var reused atomic.Int32
	ctx := httptrace.WithClientTrace(ctxTimeout(t, 5*time.Second), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			}
		},
	})
	for range 3 {
		if _, err := c.Status(ctx, latch.StatusRequest{AccountID: acc}); err != nil {
			t.Fatal(err)
		}
	}
	if reused.Load() < 2 {
		t.Fatalf("%d of 3 calls reused a connection", reused.Load())
	}
}

// The environment never changes the client's roots or proxy: with
// SSL_CERT_FILE pointing at the fake's CA, a client using system roots
// still refuses the fake; with HTTPS_PROXY set, nothing reaches the proxy.
func TestEnvironmentDoesNotChangeRootsOrProxy(t *testing.T) {
	srv, _, acc := setup(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := srv.WriteCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	proxy, proxied := recordingListener(t)
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"} {
		t.Setenv(k, "http://"+proxy)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("SSL_CERT_FILE", caFile)
	t.Setenv("SSL_CERT_DIR", filepath.Dir(caFile))

	if _, err := os.Stat(latch.SystemRootFiles[0]); err != nil {
		t.Skipf("no system CA bundle at %s", latch.SystemRootFiles[0])
	}
	c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(ctxTimeout(t, 2*time.Second), latch.StatusRequest{AccountID: acc})
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("with SSL_CERT_FILE set to the fake's CA: %v, want unknown authority", err)
	}
	// A host name (not loopback, which Go never proxies) that does not
	// resolve: an environment-driven client would CONNECT to the proxy.
	c2, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: "https://latch.invalid", RootCAs: srv.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.Status(ctxTimeout(t, 2*time.Second), latch.StatusRequest{AccountID: acc})
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Fatalf("err = %v, want a DNS error (no proxy)", err)
	}
	if n := proxied.Load(); n != 0 {
		t.Fatalf("the environment's proxy got %d connections", n)
	}
}

// recordingListener counts connections and closes them.
func recordingListener(t *testing.T) (string, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			conn.Close()
		}
	}()
	return ln.Addr().String(), &n
}

// The proxy from the configuration is used, with CONNECT.
func TestConfiguredProxyIsUsed(t *testing.T) {
	srv, _, acc := setup(t)
	var connects atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		upstream, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(upstream, brw); upstream.Close() }()
		io.Copy(conn, upstream)
		conn.Close()
	}))
	t.Cleanup(proxy.Close)
	pu, _ := url.Parse(proxy.URL)
	c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: srv.CertPool(), Proxy: pu})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Status(ctxTimeout(t, 3*time.Second), latch.StatusRequest{AccountID: acc}); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if connects.Load() != 1 {
		t.Fatalf("proxy saw %d CONNECTs, want 1", connects.Load())
	}
}

// The headers on the wire: Authorization, a UTC date in the fixed layout,
// and a User-Agent naming latch-ssh.
func TestWireHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	fixed := time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
	c, err := latch.NewClient(latch.Config{AppID: "EXAMPLEAPPID00000000", Secret: "EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0",
		BaseURL: ts.URL, RootCAs: pool, Now: func() time.Time { return fixed }, UserAgent: "latch-ssh/9.9"})
	if err != nil {
		t.Fatal(err)
	}
	c.Unpair(ctxTimeout(t, 2*time.Second), strings.Repeat("A", 64))
	h := <-got
	if d := h.Get("X-11Paths-Date"); d != "2025-01-02 03:04:05" {
		t.Errorf("date header %q", d)
	}
	if ua := h.Get("User-Agent"); ua != "latch-ssh/9.9" {
		t.Errorf("user agent %q", ua)
	}
	want := "11PATHS EXAMPLEAPPID00000000 " + latch.Sign("EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0",
		"GET\n2025-01-02 03:04:05\n\n/api/3.0/unpair/"+strings.Repeat("A", 64))
	if a := h.Get("Authorization"); a != want {
		t.Errorf("authorization %q, want %q", a, want)
	}
}

// A redirect is never followed: it could carry our signed request elsewhere.
func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	c, _ := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: ts.URL, RootCAs: pool})
	_, err := c.Status(ctxTimeout(t, 2*time.Second), latch.StatusRequest{AccountID: strings.Repeat("A", 64)})
	if !errors.Is(err, latch.ErrMalformed) || hits.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, hits.Load())
	}
}
