package latchtest_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const (
	appID  = "APPIDAPPIDAPPIDAPPID"
	secret = "SECRETSECRETSECRETSECRETSECRETSECRET1234"
	opID   = "OPERATIONOPERATION01"
	child  = "CHILDOPERATIONCHILD1"
)

// client signs requests with the latch package's StringToSign and Sign, so
// every successful call also cross-checks the fake's own implementation.
type client struct {
	t             *testing.T
	srv           *latchtest.Server
	appID, secret string
	now           func() time.Time
	http          *http.Client
}

func newClient(t *testing.T, srv *latchtest.Server) *client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, srv: srv, appID: appID, secret: secret, now: time.Now, http: &http.Client{Transport: tr}}
}

// world starts a fake with one application, an operation with a child, and
// one paired account. With a clock, the fake and the client both use it.
func world(t *testing.T, clk *clock, opts ...latchtest.Option) (*latchtest.Server, *client, string) {
	if clk != nil {
		opts = append(opts, latchtest.WithClock(clk.now))
	}
	srv := latchtest.New(t, opts...)
	srv.AddApp(appID, secret)
	srv.AddOperation(appID, opID, "")
	srv.AddOperation(appID, child, opID)
	c := newClient(t, srv)
	if clk != nil {
		c.now = clk.now
	}
	acc := c.pair(srv.IssuePairingToken(appID), "")
	srv.ResetRequests()
	return srv, c, acc
}

// reply is a decoded answer.
type reply struct {
	status int
	body   []byte
	code   int    // Latch error code, 0 if none
	msg    string // Latch error message
	data   map[string]any
}

// call sends a signed request to path (under /api/3.0 unless it starts
// with /api/). edit, if set, changes the request after it
// was signed.
func (c *client) call(method, path string, form url.Values, edit func(*http.Request)) reply {
	c.t.Helper()
	r, err := c.send(context.Background(), method, path, form, edit)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *client) send(ctx context.Context, method, path string, form url.Values, edit func(*http.Request)) (reply, error) {
	full := path
	if !strings.HasPrefix(path, "/api/") {
		full = "/api/3.0" + path
	}
	var body io.Reader
	isForm := method == "POST" || method == "PUT"
	if isForm {
		// As the official SDKs send it: java.net.URLEncoder's encoding,
		// and a form Content-Type even without params.
		body = strings.NewReader(latch.SerializeParams(form))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.srv.URL()+full, body)
	if err != nil {
		return reply{}, err
	}
	date := latch.FormatDate(c.now())
	req.Header.Set("Authorization", latch.AuthorizationHeader(c.appID, latch.Sign(c.secret, latch.StringToSign(method, date, nil, full, form))))
	req.Header.Set("X-11Paths-Date", date)
	if isForm {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	rep := reply{status: resp.StatusCode}
	if rep.body, err = io.ReadAll(resp.Body); err != nil {
		return rep, err
	}
	var env struct {
		Data  map[string]any
		Error *struct {
			Code    int
			Message string
		}
	}
	if json.Unmarshal(rep.body, &env) == nil {
		rep.data = env.Data
		if env.Error != nil {
			rep.code, rep.msg = env.Error.Code, env.Error.Message
		}
	}
	return rep, nil
}

// pair pairs a token and returns the account id.
func (c *client) pair(token, commonName string) string {
	c.t.Helper()
	method, form := "GET", url.Values(nil)
	if commonName != "" {
		method, form = "POST", url.Values{"commonName": {commonName}}
	}
	r := c.call(method, "/pair/"+token, form, nil)
	acc, _ := r.data["accountId"].(string)
	if r.code != 0 || len(acc) != 64 {
		c.t.Fatalf("pair: %s", r.body)
	}
	return acc
}

// status returns the status entry for id in a status answer.
func (c *client) status(path, id string) (map[string]any, reply) {
	c.t.Helper()
	r := c.call("GET", path, nil, nil)
	ops, _ := r.data["operations"].(map[string]any)
	entry, _ := ops[id].(map[string]any)
	return entry, r
}

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
