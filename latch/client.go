// Package latch is a client for the Latch API (Telefónica Tech, formerly
// ElevenPaths): the phone-controlled switch that closes an account.
//
// The client is built for a login gate, where a wrong answer either locks a
// person out of a server or lets an attacker in:
//
//   - Everything it needs comes from Config, never from the environment:
//     HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE and SSL_CERT_DIR are ignored (a
//     user-set proxy made a peer fail open).
//   - The caller's context deadline bounds the whole call: DNS, connect, TLS,
//     the answer, and any retry. There are no separate, longer timers.
//   - An answer is accepted only if it is exactly what was asked. A missing
//     entry for the id asked, an unknown status value, a body that is not
//     JSON, truncated or over MaxAnswerSize are errors wrapping ErrMalformed,
//     never an "on".
//
// A Client is safe for concurrent use and keeps connections alive between
// calls (HTTP/2 when Latch offers it), so long-lived processes should
// create one and reuse it: identical status calls in flight then share one
// request (see Client.Status for what is shared and what never is).
package latch

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for Config.
const (
	DefaultBaseURL    = "https://latch.tu.com"
	DefaultAPIVersion = "3.0"
	// MaxAnswerSize bounds the body the client reads: a larger answer is
	// malformed, so a hostile or broken server cannot make us buffer
	// without limit.
	MaxAnswerSize = 1 << 20
	// MaxIdleConns is the most kept-alive connections to Latch the client
	// holds when Latch speaks HTTP/1.1 (one request per connection at a
	// time). It is a ceiling, not a size: see newTransport for how the
	// warm pool follows the recent peak of concurrent calls below it.
	MaxIdleConns = 256
	// IdleConnTimeout is how long an unused kept-alive connection stays
	// open.
	IdleConnTimeout = 90 * time.Second
)

// SystemRootFiles are the fixed paths searched, in order, for the system's CA
// bundle when Config.RootCAs is nil. Unlike crypto/x509's SystemCertPool they
// ignore SSL_CERT_FILE and SSL_CERT_DIR.
var SystemRootFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/ssl/cert.pem",                                 // Alpine, others
}

// Config configures a Client. AppID and Secret are required.
type Config struct {
	AppID  string
	Secret string
	// BaseURL is the scheme and host of the service, default DefaultBaseURL.
	BaseURL string
	// APIVersion selects /api/<version>/..., default DefaultAPIVersion.
	APIVersion string
	// RootCAs verifies the server. Nil means the system bundle from
	// SystemRootFiles (never from the environment).
	RootCAs *x509.CertPool
	// Proxy, if set, is the only proxy used. Nil means direct connections,
	// whatever HTTPS_PROXY says.
	Proxy *url.URL
	// Timeout, if positive, bounds every call even when the caller's
	// context has a later deadline or none.
	Timeout time.Duration
	// UserAgent is sent with every request; default "latch-ssh".
	UserAgent string
	// Now returns the current time; default time.Now. The request date is
	// formatted from it in UTC.
	Now func() time.Time
	// Observer, when set, is told about every call made to Latch (the
	// daemon's metrics).
	Observer Observer
}

// Observer is told about each call the Client makes to Latch, once per
// call whatever its retries (a status call shared by several callers is
// one call), with how long it took and its error (nil on success; see
// Classify). call is the first segment of the API path ("status", "pair",
// "unpair", "lock", "unlock", "history", "operation", ...), never an
// account or an operation id. It must be fast and safe for concurrent
// use. Defined here so that this package needs no metrics library.
type Observer interface {
	LatchCall(call string, took time.Duration, err error)
}

// Client calls the Latch API. Create it with NewClient.
type Client struct {
	appID, secret string
	base          string // scheme://host, no trailing slash
	prefix        string // /api/<version>
	userAgent     string
	timeout       time.Duration
	now           func() time.Time
	http          *http.Client
	// clockOffset is added to now() when dating requests. It is learned
	// from the server's Date header when Latch answers 109 (request
	// expired), so a server with a skewed clock still gets its decision.
	clockOffset atomic.Int64
	// coalesce turns on the sharing of identical status calls in flight
	// (see Status); joinWindow bounds how old a request in flight may be
	// to be joined.
	coalesce   bool
	joinWindow time.Duration
	flights    flights
	observer   Observer
}

// options are the settings of a Client that Config does not expose: the
// defaults are what a login gate wants; tests and benchmarks turn them off
// to compare (export_test.go).
type options struct {
	http2    bool
	coalesce bool
	maxIdle  int // MaxIdleConns if zero
}

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)
	accountPattern = regexp.MustCompile(`^[A-Za-z0-9]{64}$`)
)

// NewClient checks cfg and builds a Client with its own HTTP transport.
func NewClient(cfg Config) (*Client, error) {
	return newClient(cfg, options{http2: true, coalesce: true})
}

func newClient(cfg Config, o options) (*Client, error) {
	if cfg.AppID == "" || cfg.Secret == "" {
		return nil, errors.New("latch: application id and secret are required")
	}
	if !idPattern.MatchString(cfg.AppID) {
		return nil, errors.New("latch: application id must be letters and digits")
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("latch: base URL %q must be https://host[:port] with no path", base)
	}
	version := cfg.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+$`).MatchString(version) {
		return nil, fmt.Errorf("latch: API version %q must look like 3.0", version)
	}
	roots := cfg.RootCAs
	if roots == nil {
		if roots, err = SystemRoots(); err != nil {
			return nil, err
		}
	}
	c := &Client{
		appID:      cfg.AppID,
		secret:     cfg.Secret,
		base:       u.Scheme + "://" + u.Host,
		prefix:     "/api/" + version,
		userAgent:  cfg.UserAgent,
		timeout:    cfg.Timeout,
		now:        cfg.Now,
		coalesce:   o.coalesce,
		joinWindow: DefaultJoinWindow,
		observer:   cfg.Observer,
	}
	if c.userAgent == "" {
		c.userAgent = "latch-ssh"
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.http = &http.Client{
		Transport: newTransport(roots, cfg.Proxy, o.http2, cmp.Or(o.maxIdle, MaxIdleConns)),
		// Latch never redirects; following one could send our signed
		// request to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// newTransport builds the HTTP transport from explicit settings only. It is
// deliberately not derived from http.DefaultTransport, whose Proxy field is
// http.ProxyFromEnvironment.
//
// A burst of logins must stay at one round trip to Latch per decision, so
// a decision must find a warm connection (a new one costs TCP + TLS, two
// more round trips, and a handshake's CPU on both ends):
//
//   - With http2, HTTP/2 is offered by ALPN ("h2" before "http/1.1") in our
//     own TLS config; a Latch that accepts it carries every concurrent call
//     on one connection. A Latch that does not answers "http/1.1" (or no
//     ALPN at all) and the transport falls back to HTTP/1.1 on the same
//     connection, with no extra round trip. HTTP/2 pings a connection that
//     has been silent for h2ReadIdle and closes it if the ping is not
//     answered within h2PingTimeout, so a connection that died under us
//     (a NAT or a firewall dropping it) does not keep taking requests:
//     over HTTP/2 every login shares it.
//   - Over HTTP/1.1 (one request per connection at a time), the idle pool
//     follows the demand instead of a constant: a connection exists only
//     because that many calls were in flight at once, it is kept idle up
//     to MaxIdleConns, and idle connections are reused most recently
//     used first, so the ones that the recent peak needed no more go
//     unused and close after IdleConnTimeout. The pool thus holds the
//     recent peak of concurrent calls (a fixed 16 made nearly every
//     decision of a 200-login burst open a new connection), and shrinks
//     back when the burst is over. MaxIdleConns bounds the descriptors
//     a burst can leave open.
//
// The request's context still bounds everything (dial, TLS, the answer);
// the timeouts here only bound a call made without a deadline.
func newTransport(roots *x509.CertPool, proxy *url.URL, http2 bool, maxIdle int) *http.Transport {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   http2,
		MaxIdleConns:        maxIdle,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     IdleConnTimeout,
		// The request context bounds the handshake; this is only a
		// backstop for a context without a deadline.
		TLSHandshakeTimeout:    30 * time.Second,
		ResponseHeaderTimeout:  0,
		MaxResponseHeaderBytes: 64 << 10,
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true)
	if http2 {
		t.Protocols.SetHTTP2(true)
		t.HTTP2 = &http.HTTP2Config{
			SendPingTimeout: h2ReadIdle,
			PingTimeout:     h2PingTimeout,
		}
	}
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	return t
}

// Health checks of an HTTP/2 connection to Latch: see newTransport.
const (
	h2ReadIdle    = 15 * time.Second
	h2PingTimeout = 5 * time.Second
)

// SystemRoots loads the first CA bundle found at SystemRootFiles.
func SystemRoots() (*x509.CertPool, error) {
	for _, p := range SystemRootFiles {
		pem, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pool := x509.NewCertPool()
		if pool.AppendCertsFromPEM(pem) {
			return pool, nil
		}
	}
	return nil, fmt.Errorf("latch: no CA bundle found at %s; install ca-certificates or set ca_file", strings.Join(SystemRootFiles, ", "))
}

// CloseIdleConnections closes kept-alive connections; call it when the
// client will not be used again.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// request describes one API call; path is relative to /api/<version>.
type request struct {
	method string
	path   string
	form   url.Values
}

// answer is a decoded envelope.
type answer struct {
	data []byte // the raw "data" member, nil if absent
}

// do signs and sends r, retrying a 429 whose Retry-After fits in the deadline
// and a 109 once after learning the server's clock. It returns the decoded
// envelope, or an *Error, *HTTPError, *TransportError, or an error wrapping
// ErrMalformed.
func (c *Client) do(ctx context.Context, r request) (a answer, err error) {
	if c.observer != nil {
		start := time.Now()
		defer func() { c.observer.LatchCall(callName(r.path), time.Since(start), err) }()
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	clockRetried := false
	for attempt := 0; ; attempt++ {
		a, resp, err := c.once(ctx, r)
		if err == nil {
			return a, nil
		}
		var he *HTTPError
		switch {
		case errors.As(err, &he) && he.StatusCode == http.StatusTooManyRequests && attempt < 3:
			wait, ok := retryAfter(he.RetryAfter, c.now())
			if !ok || !fitsDeadline(ctx, wait) {
				return answer{}, err
			}
			if werr := sleepCtx(ctx, wait); werr != nil {
				return answer{}, err
			}
		case IsClock(err) && !clockRetried && resp != nil:
			clockRetried = true
			if !c.learnClock(resp.Header.Get("Date")) {
				return answer{}, err
			}
		default:
			return answer{}, err
		}
	}
}

// callName is the first segment of an API path ("/status/..." is
// "status"): the kind of call, without the ids that follow it.
func callName(path string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return name
}

// learnClock sets the clock offset from an HTTP Date header. It reports
// whether the offset changed enough to be worth a retry.
func (c *Client) learnClock(date string) bool {
	server, err := http.ParseTime(date)
	if err != nil {
		return false
	}
	offset := server.Sub(c.now())
	old := time.Duration(c.clockOffset.Swap(int64(offset)))
	return (offset - old).Abs() >= 2*time.Second
}

// ClockOffset returns the correction learned from the server's clock (zero
// until Latch has answered 109 once).
func (c *Client) ClockOffset() time.Duration { return time.Duration(c.clockOffset.Load()) }

func fitsDeadline(ctx context.Context, wait time.Duration) bool {
	dl, ok := ctx.Deadline()
	// Leave room for the retried request itself.
	return ok && time.Until(dl) > wait+50*time.Millisecond
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfter parses a Retry-After value (seconds or an HTTP date).
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 || n > 3600 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// once sends one signed request and decodes its answer. The response is
// returned (with its body closed) so do can read headers such as Date.
func (c *Client) once(ctx context.Context, r request) (answer, *http.Response, error) {
	path := c.prefix + r.path
	// A POST or PUT sends its form as the official SDKs do: encoded by
	// java.net.URLEncoder's rules (FormEscape), the very text that is
	// signed, with Content-Type application/x-www-form-urlencoded even
	// when there are no params (an empty body, Content-Length: 0).
	var body io.Reader
	isForm := r.method == http.MethodPost || r.method == http.MethodPut
	if isForm {
		body = strings.NewReader(SerializeParams(r.form))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+path, body)
	if err != nil {
		return answer{}, nil, fmt.Errorf("latch: building request: %w", err)
	}
	date := FormatDate(c.now().Add(c.ClockOffset()))
	sig := Sign(c.secret, StringToSign(r.method, date, nil, path, r.form))
	req.Header.Set(HeaderAuthorization, AuthorizationHeader(c.appID, sig))
	req.Header.Set(HeaderDate, date)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if isForm {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	op := r.method + " " + path
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, nil, &TransportError{Op: op, Err: unwrapURLError(ctx, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerSize+1))
	if err != nil {
		return answer{}, resp, &TransportError{Op: op + ": reading answer", Err: unwrapURLError(ctx, err)}
	}
	if len(raw) > MaxAnswerSize {
		return answer{}, resp, fmt.Errorf("%s: answer larger than %d bytes: %w", op, MaxAnswerSize, ErrMalformed)
	}
	a, err := decodeEnvelope(raw)
	var le *Error
	if errors.As(err, &le) {
		// An error object is authoritative whatever the HTTP status.
		return answer{}, resp, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answer{}, resp, &HTTPError{StatusCode: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if err != nil {
		return answer{}, resp, fmt.Errorf("%s: %w", op, err)
	}
	return a, resp, nil
}

// unwrapURLError replaces the *url.Error wrapper (which repeats the full URL)
// by its cause, and reports the context's error when the deadline is what
// ended the call, so callers can test errors.Is(err, context.DeadlineExceeded).
func unwrapURLError(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
