// Package latchtest is an in-process fake of the Latch API, served over
// real HTTPS, for the tests, benchmarks and demo of latch-ssh.
//
// The fake is strict on purpose. It verifies every request the way the real
// service does, from the request as it arrived on the wire (method, the raw
// X-11Paths-Date header, the X-11Paths-* headers present, the request path
// as sent and the form body as sent), with its own small implementation of
// the signature rather than the latch package's, so that a client bug in
// building requests cannot be mirrored here and pass unnoticed. Its TLS
// certificate comes from a CA it generates in memory, so a client works
// only if it is given that CA explicitly (CertPool, CAPEM or WriteCAFile).
//
// It also answers the way the official SDKs read the real service: every
// status entry carries its child operations, always including some in odd
// shapes (no status, an unknown value, not an object) that a client must
// ignore; GET /operation/{id} lists the operation's children at the top
// level; a POST or PUT must come with Content-Type
// application/x-www-form-urlencoded and a body encoded exactly as
// java.net.URLEncoder encodes it (checked with the fake's own encoder),
// and history bounds must not be negative, else it answers 402.
//
// Typical use in a test:
//
//	srv := latchtest.New(t)
//	srv.AddApp(appID, secret)
//	srv.AddOperation(appID, opID, "")
//	token := srv.IssuePairingToken(appID) // a person generates a token on the phone
//	// ... point the client at srv.URL() with srv.CertPool() and pair with token ...
//	srv.SetLatch(account, opID, false)    // the person closes the latch
//	srv.SetFault(account, latchtest.Fault{HTTPStatus: 429, RetryAfter: "1", Times: 1})
//
// Standalone programs (the demo, benchmarks) use Listen and Close instead of
// New. Every method of Server is safe for concurrent use.
package latchtest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the options.
const (
	// DefaultDateWindow is how far the X-11Paths-Date may be from the
	// fake's clock, either way, before it answers 109. The real window is
	// not published; 5 minutes is the usual choice for signed-request APIs
	// and is strict enough that a client sending local time from any zone
	// but UTC, or a clock off by more than a few minutes, is caught.
	DefaultDateWindow = 5 * time.Minute
	// DefaultPairingTTL is how long a pairing token lives, by the fake's
	// clock.
	DefaultPairingTTL = 60 * time.Second
)

// Option configures a Server.
type Option func(*config)

type config struct {
	now        func() time.Time
	window     time.Duration
	pairingTTL time.Duration
	rtt        time.Duration
	http2      bool
}

// WithClock sets the fake's clock, used to check request dates, expire
// pairing tokens, date two-factor tokens and history, and fill the HTTP
// Date header. The default is time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithDateWindow sets how far a request date may be from the fake's clock
// before it answers 109 (default DefaultDateWindow).
func WithDateWindow(d time.Duration) Option { return func(c *config) { c.window = d } }

// WithPairingTTL sets the lifetime of pairing tokens (default
// DefaultPairingTTL).
func WithPairingTTL(d time.Duration) Option { return func(c *config) { c.pairingTTL = d } }

// WithRTT simulates a network round-trip time d: see SetRTT.
func WithRTT(d time.Duration) Option { return func(c *config) { c.rtt = d } }

// WithHTTP2 makes the fake offer HTTP/2 (ALPN "h2", then "http/1.1") when
// on; by default it speaks HTTP/1.1 only, as a Latch (or a proxy in front
// of it) that does not offer h2. Over HTTP/2 the faults that break the
// answer (Truncate, CloseMidAnswer) reset the stream after the part they
// send, and Drip flushes one byte at a time on the stream.
func WithHTTP2(on bool) Option { return func(c *config) { c.http2 = on } }

// Server is a running fake Latch service. Create it with New or Listen.
type Server struct {
	now        func() time.Time
	window     time.Duration
	pairingTTL time.Duration
	rtt        atomic.Int64
	wrongHost  atomic.Bool
	conns      atomic.Int64 // connections accepted

	caPEM       []byte
	pool        *x509.CertPool
	leaf, wrong *tls.Certificate
	url         string
	http        *http.Server
	done        chan struct{} // closed by Close
	serveDone   chan struct{}
	closeOnce   sync.Once
	active      sync.WaitGroup // handlers running; Add only under mu while !closed

	mu     sync.Mutex
	closed bool
	state  // accounts, operations, latches..., guarded by mu
	faults map[string]*Fault
	log    []*Request
}

// TB is the part of testing.TB that New uses. Taking this interface rather
// than testing.TB keeps the "testing" package (and its flags and globals)
// out of the production binary, which links this package for `latch-ssh
// demo`; every *testing.T and *testing.B satisfies it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// New starts a fake on 127.0.0.1 with a random port and closes it when the
// test ends.
func New(t TB, opts ...Option) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("latchtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen starts a fake on addr (host:port, port 0 for any) for use outside
// tests. Call Close when done.
func Listen(addr string, opts ...Option) (*Server, error) {
	cfg := config{now: time.Now, window: DefaultDateWindow, pairingTTL: DefaultPairingTTL}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		now:        cfg.now,
		window:     cfg.window,
		pairingTTL: cfg.pairingTTL,
		done:       make(chan struct{}),
		serveDone:  make(chan struct{}),
		state:      newState(),
		faults:     map[string]*Fault{},
	}
	s.rtt.Store(int64(cfg.rtt))
	if err := s.makeCerts(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.url = "https://" + net.JoinHostPort(host, port)
	protos := []string{"http/1.1"}
	if cfg.http2 {
		protos = []string{"h2", "http/1.1"}
	}
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if s.wrongHost.Load() {
				return s.wrong, nil
			}
			return s.leaf, nil
		},
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ErrorLog:          log.New(io.Discard, "", 0), // clients refusing our cert are expected
		ReadHeaderTimeout: time.Minute,
	}
	if !cfg.http2 {
		// An empty map is net/http's documented way to turn HTTP/2 off.
		s.http.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	go func() {
		defer close(s.serveDone)
		_ = s.http.Serve(tls.NewListener(rttListener{ln, s}, tlsCfg))
	}()
	return s, nil
}

// Close stops the server: it ends hanging and delayed requests, closes
// every connection and returns once every handler has returned. It may be
// called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		_ = s.http.Close() // connections first: no handler may answer once woken
		close(s.done)
		<-s.serveDone
		s.active.Wait()
	})
}

// URL returns the base URL, https://127.0.0.1:port.
func (s *Server) URL() string { return s.url }

// CAPEM returns the fake's CA certificate in PEM form.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// CertPool returns a new pool holding only the fake's CA.
func (s *Server) CertPool() *x509.CertPool { return s.pool.Clone() }

// WriteCAFile writes the fake's CA certificate in PEM form to path.
func (s *Server) WriteCAFile(path string) error { return os.WriteFile(path, s.caPEM, 0o644) }

// SetWrongHost makes new TLS handshakes present a certificate from the same
// CA that is valid only for wrong.example.invalid (on) or the usual one for
// 127.0.0.1, ::1 and localhost (off). Connections already open keep theirs.
func (s *Server) SetWrongHost(on bool) { s.wrongHost.Store(on) }

// SetRTT simulates a network round-trip time d: every new connection waits
// 2*d before its first byte is read (TCP and TLS 1.3 handshakes) and every
// request waits d before it is answered. Zero turns it off.
func (s *Server) SetRTT(d time.Duration) { s.rtt.Store(int64(d)) }

// Connections returns how many connections the fake has accepted (each one
// a TCP and a TLS handshake), to tell a warm client from one that opens a
// new connection per call.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// wait sleeps d, and reports false if cancel or Close ended it earlier.
func (s *Server) wait(d time.Duration, cancel <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-cancel:
	case <-s.done:
	}
	return false
}

// rttListener charges each new connection 2*RTT before its first read.
type rttListener struct {
	net.Listener
	s *Server
}

func (l rttListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.conns.Add(1)
	return &rttConn{Conn: c, s: l.s, closed: make(chan struct{})}, nil
}

type rttConn struct {
	net.Conn
	s         *Server
	first     sync.Once
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *rttConn) Read(p []byte) (int, error) {
	c.first.Do(func() { c.s.wait(2*time.Duration(c.s.rtt.Load()), c.closed) })
	return c.Conn.Read(p)
}

func (c *rttConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Request is one request the fake received, as recorded in its log.
type Request struct {
	Time   time.Time // by the fake's clock, when it arrived
	Method string
	// ProtoMajor is the HTTP version the request came with: 1 or 2.
	ProtoMajor int
	// ContentType is the Content-Type header as sent ("" if none).
	ContentType string
	Path        string // the request target as sent, e.g. /api/3.0/status/ACC/nootp
	AppID       string // from the Authorization header, once checked (not for 404, 405 or proxy faults)
	Account     string // account id in the path, or the one a pairing token pairs
	Operation   string
	Instance    string
	NoOTP       bool
	Silent      bool
	Code        int    // Latch error code answered, 0 if none
	HTTPStatus  int    // HTTP status answered, 0 if none (a hang, a cancelled request)
	Fault       string // the fault applied, "" if none
	Finished    bool   // the fake is done with the request
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		out[i] = *r
	}
	return out
}

// CountRequests returns how many logged requests match.
func (s *Server) CountRequests(match func(Request) bool) int {
	n := 0
	for _, r := range s.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// publish copies q into the log entry p.
func (s *Server) publish(p *Request, q Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*p = q
}

// enter logs q and registers a running handler, or reports false once
// Close has begun.
func (s *Server) enter(q Request) (*Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.active.Add(1)
	p := &q
	s.log = append(s.log, p)
	return p, true
}
