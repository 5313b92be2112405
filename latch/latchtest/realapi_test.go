package latchtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
)

// Issue 13, point 1: every status answer of the fake carries the asked
// entry's child operations, real ones and some in odd shapes, so that every
// test that logs in checks that children never fail a decision.
func TestRealLatchFakeSendsChildOperations(t *testing.T) {
	srv, c, acc := world(t, nil)
	srv.SetLatch(acc, child, false)
	r := c.call("GET", "/status/"+acc+"/nootp", nil, nil)
	ops, _ := r.data["operations"].(map[string]any)
	entry, _ := ops[appID].(map[string]any)
	children, _ := entry["operations"].(map[string]any)
	op, _ := children[opID].(map[string]any)
	grand, _ := op["operations"].(map[string]any)
	ch, _ := grand[child].(map[string]any)
	if entry["status"] != "on" || op["status"] != "on" || ch["status"] != "off" {
		t.Fatalf("real children: %s", r.body)
	}
	odd := 0
	for _, v := range children {
		if m, ok := v.(map[string]any); !ok || (m["status"] != "on" && m["status"] != "off") {
			odd++
		}
	}
	if odd < 3 {
		t.Fatalf("the fake sent %d odd children: %s", odd, r.body)
	}
	r = c.call("GET", "/status/"+acc+"/op/"+opID, nil, nil)
	entry, _ = r.data["operations"].(map[string]any)[opID].(map[string]any)
	if children, _ := entry["operations"].(map[string]any); children[child] == nil || len(children) < 4 {
		t.Fatalf("operation's children: %s", r.body)
	}
}

// The fake refuses what the official SDKs never send: a negative history
// bound, a form not encoded as java.net.URLEncoder encodes it, a POST
// without its form Content-Type.
func TestRealLatchFakeRefusesWhatSDKsNeverSend(t *testing.T) {
	srv, c, acc := world(t, nil)
	if r := c.call("GET", "/history/"+acc+"/-62135596800000/5", nil, nil); r.code != 402 {
		t.Fatalf("negative history bound: %s", r.body)
	}
	if r := c.call("GET", "/history/"+acc+"/0/5", nil, nil); r.code != 0 {
		t.Fatalf("history from 0: %s", r.body)
	}
	// A client signing with Go's url.QueryEscape ("*" escaped) disagrees
	// with Latch's Java encoding: bad signature.
	tok := srv.IssuePairingToken(appID)
	r := c.call("POST", "/pair/"+tok, url.Values{"commonName": {"a*b"}}, func(r *http.Request) {
		body := "commonName=" + url.QueryEscape("a*b")
		path := "/api/3.0/pair/" + tok
		date := latch.FormatDate(time.Now())
		sts := "POST\n" + date + "\n\n" + path + "\n" + body
		r.Header.Set("Authorization", latch.AuthorizationHeader(appID, latch.Sign(secret, sts)))
		r.Header.Set("X-11Paths-Date", date)
		r.Body, r.ContentLength = readCloser(body), int64(len(body))
	})
	if r.code != 102 {
		t.Fatalf("QueryEscape-signed form: %s", r.body)
	}
	// A POST without params and without its Content-Type.
	r = c.call("POST", "/lock/"+acc, nil, func(r *http.Request) { r.Header.Del("Content-Type") })
	if r.code != 402 || !strings.Contains(r.msg, "Content-Type") {
		t.Fatalf("empty POST without Content-Type: %s", r.body)
	}
	if r := c.call("POST", "/lock/"+acc, nil, nil); r.code != 0 {
		t.Fatalf("empty POST as the SDKs send it: %s", r.body)
	}
}
