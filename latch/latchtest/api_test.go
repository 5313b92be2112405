package latchtest_test

import (
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

var alnum6 = regexp.MustCompile(`^[A-Za-z0-9]{6}$`)

func TestPairing(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv, c, acc := world(t, clk)

	tok := srv.IssuePairingToken(appID)
	if !alnum6.MatchString(tok) {
		t.Fatalf("token %q", tok)
	}
	acc2 := c.pair(tok, "")
	if acc2 == acc || !regexp.MustCompile(`^[A-Za-z0-9]{64}$`).MatchString(acc2) {
		t.Fatalf("second account %q", acc2)
	}
	if r := c.call("GET", "/pair/"+tok, nil, nil); r.code != latch.CodeTokenNotFound {
		t.Fatalf("token used twice: %s", r.body)
	}
	if r := c.call("GET", "/pair/NOSUCH", nil, nil); r.code != latch.CodeTokenNotFound {
		t.Fatalf("unknown token: %s", r.body)
	}
	old := srv.IssuePairingToken(appID)
	clk.advance(latchtest.DefaultPairingTTL)
	if r := c.call("GET", "/pair/"+old, nil, nil); r.code != latch.CodeTokenNotFound {
		t.Fatalf("expired token: %s", r.body)
	}
	if r := c.call("GET", "/pair/"+srv.IssuePairingTokenFor(appID, acc), nil, nil); r.code != latch.CodeAlreadyPaired {
		t.Fatalf("already paired: %s", r.body)
	}
	// A token for another application does not pair this one.
	srv.AddApp("OTHERAPPOTHERAPPOTHE", "x")
	if r := c.call("GET", "/pair/"+srv.IssuePairingToken("OTHERAPPOTHERAPPOTHE"), nil, nil); r.code != latch.CodeTokenNotFound {
		t.Fatalf("other app's token: %s", r.body)
	}
	if got, want := srv.Accounts(appID), []string{acc, acc2}; !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("accounts %v", got)
	}

	// Unpair by the API, then from the phone.
	if r := c.call("GET", "/unpair/"+acc, nil, nil); r.code != 0 || string(r.body) != "{}" {
		t.Fatalf("unpair: %s", r.body)
	}
	for _, p := range []string{"/status/" + acc, "/unpair/" + acc, "/history/" + acc} {
		if r := c.call("GET", p, nil, nil); r.code != latch.CodeAccountNotPaired {
			t.Fatalf("%s after unpair: %s", p, r.body)
		}
	}
	srv.UnpairFromPhone(appID, acc2)
	if r := c.call("GET", "/status/"+acc2, nil, nil); r.code != latch.CodeAccountNotPaired {
		t.Fatalf("status after unpairing from the phone: %s", r.body)
	}
	if len(srv.Accounts(appID)) != 0 {
		t.Fatalf("accounts left: %v", srv.Accounts(appID))
	}
	// The same Latch user can pair again.
	if again := c.pair(srv.IssuePairingTokenFor(appID, acc), "label"); again != acc {
		t.Fatalf("re-paired as %q", again)
	}
}

func TestStatus(t *testing.T) {
	srv, c, acc := world(t, nil)
	base := "/status/" + acc
	want := func(path, id, status string) {
		t.Helper()
		entry, r := c.status(path, id)
		if r.code != 0 || entry["status"] != status || len(r.data["operations"].(map[string]any)) != 1 {
			t.Fatalf("%s: %s, want %s for %s", path, r.body, status, id)
		}
	}
	for id, parent := range map[string]string{"INSTANCE1": "", "INSTANCE2": child, "INSTANCE3": child} {
		srv.AddInstance(appID, acc, parent, id, "ssh "+id)
	}
	want(base, appID, "on")
	want(base+"/op/"+opID, opID, "on")
	want(base+"/op/"+child, child, "on")
	want(base+"/i/INSTANCE1", "INSTANCE1", "on")
	want(base+"/op/"+child+"/i/INSTANCE2/nootp/silent", "INSTANCE2", "on")

	srv.SetLatch(acc, "INSTANCE1", false)
	want(base+"/i/INSTANCE1", "INSTANCE1", "off")
	want(base, appID, "on")

	// A closed parent closes its children.
	srv.SetLatch(acc, opID, false)
	want(base+"/op/"+opID, opID, "off")
	want(base+"/op/"+child, child, "off")
	want(base, appID, "on")
	srv.SetLatch(acc, opID, true)
	srv.SetLatch(acc, appID, false)
	want(base, appID, "off")
	want(base+"/op/"+opID, opID, "off")
	want(base+"/op/"+child+"/i/INSTANCE3", "INSTANCE3", "off")
	srv.SetLatch(acc, appID, true)

	// Lock and unlock through the API.
	if r := c.call("POST", "/lock/"+acc+"/op/"+opID, nil, nil); r.code != 0 || string(r.body) != "{}" {
		t.Fatalf("lock: %s", r.body)
	}
	want(base+"/op/"+opID, opID, "off")
	c.call("POST", "/unlock/"+acc+"/op/"+opID, nil, nil)
	want(base+"/op/"+opID, opID, "on")
	c.call("POST", "/lock/"+acc, nil, nil)
	want(base, appID, "off")
	c.call("POST", "/unlock/"+acc, nil, nil)
	want(base, appID, "on")

	if r := c.call("GET", base+"/op/NOSUCHOPERATION00000", nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("unknown operation: %s", r.body)
	}
	if r := c.call("POST", "/lock/"+acc+"/op/NOSUCHOPERATION00000", nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("lock unknown operation: %s", r.body)
	}
	if r := c.call("GET", "/status/NOSUCHACCOUNT", nil, nil); r.code != latch.CodeAccountNotPaired {
		t.Fatalf("unknown account: %s", r.body)
	}
	// An operation of another application is unknown here.
	srv.AddApp("OTHERAPPOTHERAPPOTHE", "x")
	srv.AddOperation("OTHERAPPOTHERAPPOTHE", "OTHEROPERATION000000", "")
	if r := c.call("GET", base+"/op/OTHEROPERATION000000", nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("other app's operation: %s", r.body)
	}
}

func TestTwoFactor(t *testing.T) {
	srv, c, acc := world(t, nil)
	path := "/status/" + acc + "/op/" + opID
	if entry, _ := c.status(path, opID); entry["two_factor"] != nil {
		t.Fatalf("two_factor while disabled: %v", entry)
	}
	if _, ok := srv.LastTwoFactorToken(acc, opID); ok {
		t.Fatal("a token before any was generated")
	}
	srv.SetTwoFactor(opID, true)
	seen := map[string]bool{}
	for range 3 {
		before := time.Now().UnixMilli()
		entry, r := c.status(path, opID)
		tf, _ := entry["two_factor"].(map[string]any)
		tok, _ := tf["token"].(string)
		gen, _ := tf["generated"].(float64)
		if entry["status"] != "on" || !alnum6.MatchString(tok) || int64(gen) < before || int64(gen) > time.Now().UnixMilli() {
			t.Fatalf("two-factor answer %s", r.body)
		}
		if last, _ := srv.LastTwoFactorToken(acc, opID); last != tok {
			t.Fatalf("last token %q, answered %q", last, tok)
		}
		seen[tok] = true
	}
	if len(seen) != 3 {
		t.Fatalf("tokens not fresh per call: %v", seen)
	}
	for _, p := range []string{path + "/nootp", path + "/nootp/silent"} {
		if entry, r := c.status(p, opID); entry["status"] != "on" || entry["two_factor"] != nil {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
	srv.SetLatch(acc, opID, false)
	if entry, r := c.status(path, opID); entry["status"] != "off" || entry["two_factor"] != nil {
		t.Fatalf("closed latch: %s", r.body)
	}
	// The application's own flag.
	if entry, _ := c.status("/status/"+acc, appID); entry["two_factor"] != nil {
		t.Fatal("app two-factor while disabled")
	}
	srv.SetTwoFactor(appID, true)
	if entry, r := c.status("/status/"+acc, appID); entry["two_factor"] == nil {
		t.Fatalf("app two-factor: %s", r.body)
	}
	if _, ok := srv.LastTwoFactorToken(acc, appID); !ok {
		t.Fatal("no last token for the application")
	}
}

func TestRequestLogAndRouting(t *testing.T) {
	srv, c, acc := world(t, nil)
	srv.AddInstance(appID, acc, opID, "INST", "ssh host")
	c.call("GET", "/status/"+acc+"/op/"+opID+"/i/INST/nootp/silent", nil, nil)
	c.call("GET", "/status/"+acc+"/silent", nil, nil)
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("log %+v", reqs)
	}
	r0, r1 := reqs[0], reqs[1]
	if r0.Method != "GET" || r0.Path != "/api/3.0/status/"+acc+"/op/"+opID+"/i/INST/nootp/silent" || r0.AppID != appID ||
		r0.Account != acc || r0.Operation != opID || r0.Instance != "INST" || !r0.NoOTP || !r0.Silent ||
		r0.HTTPStatus != 200 || r0.Code != 0 || r0.Fault != "" || !r0.Finished || r0.Time.IsZero() {
		t.Fatalf("logged %+v", r0)
	}
	if r1.NoOTP || !r1.Silent || r1.Operation != "" {
		t.Fatalf("logged %+v", r1)
	}
	if n := srv.CountRequests(func(r latchtest.Request) bool { return r.Silent }); n != 2 {
		t.Fatalf("count %d", n)
	}
	srv.ResetRequests()
	if len(srv.Requests()) != 0 {
		t.Fatal("log not reset")
	}

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/status/" + acc + "/silent/nootp", 404},
		{"GET", "/status/" + acc + "/nootp/nootp", 404},
		{"GET", "/status/" + acc + "/i/X/op/" + opID, 404},
		{"GET", "/status/" + acc + "/", 404},
		{"GET", "/status", 404},
		{"GET", "/status/" + acc + "/extra", 404},
		{"GET", "/nosuch/" + acc, 404},
		{"GET", "/history/" + acc + "/x/y", 404},
		{"GET", "/lock/" + acc, 405},
		{"POST", "/status/" + acc, 405},
		{"DELETE", "/pair/ABCDEF", 405},
		{"POST", "/unpair/" + acc, 405},
		{"POST", "/operation", 405},
	} {
		r := c.call(tc.method, tc.path, nil, nil)
		if r.status != tc.status || r.code != 0 {
			t.Errorf("%s %s: HTTP %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.status)
		}
	}
	// Other API versions.
	for _, v := range []string{"1.0", "1.3", "3.0"} {
		c.http.CloseIdleConnections()
		p := "/api/" + v + "/status/" + acc
		if r := c.call("GET", p, nil, nil); r.status != 200 || r.code != 0 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	if r := c.call("GET", "/api/2.0/status/"+acc, nil, nil); r.status != 404 {
		t.Errorf("version 2.0: %d", r.status)
	}
	if n := srv.CountRequests(func(r latchtest.Request) bool { return r.HTTPStatus == 404 || r.HTTPStatus == 405 }); n != 14 {
		t.Errorf("%d 404/405 logged", n)
	}
}

func TestHistoryAndOperations(t *testing.T) {
	srv, c, acc := world(t, nil)
	start := time.Now().UnixMilli()
	c.call("GET", "/status/"+acc, nil, nil)
	srv.SetLatch(acc, opID, false)
	c.call("POST", "/lock/"+acc, nil, nil)
	r := c.call("GET", "/history/"+acc, nil, nil)
	hist, _ := r.data["history"].([]any)
	appInfo, _ := r.data[appID].(map[string]any)
	if r.code != 0 || len(hist) != 3 || appInfo["status"] != "off" || r.data["count"] != 3.0 {
		t.Fatalf("history: %s", r.body)
	}
	end := time.Now().UnixMilli()
	r = c.call("GET", "/history/"+acc+"/"+strconv.FormatInt(start, 10)+"/"+strconv.FormatInt(end, 10), nil, nil)
	if hist, _ := r.data["history"].([]any); len(hist) != 3 {
		t.Fatalf("history in range: %s", r.body)
	}
	r = c.call("GET", "/history/"+acc+"/0/1", nil, nil)
	if hist, ok := r.data["history"].([]any); !ok || len(hist) != 0 {
		t.Fatalf("history out of range: %s", r.body)
	}

	srv.SetTwoFactor(child, true)
	r = c.call("GET", "/operation", nil, nil)
	ops, _ := r.data["operations"].(map[string]any)
	op, _ := ops[opID].(map[string]any)
	children, _ := op["operations"].(map[string]any)
	ch, _ := children[child].(map[string]any)
	if len(ops) != 1 || op["name"] == "" || op["two_factor"] != "DISABLED" || op["lock_on_request"] != "DISABLED" || ch["two_factor"] != "MANDATORY" {
		t.Fatalf("operations: %s", r.body)
	}
	// Issue 13, point 1: /operation/{id} answers the operation's children
	// at the top level of data.operations (as the official Java and
	// Python tests read it), not the operation nested with them.
	r = c.call("GET", "/operation/"+opID, nil, nil)
	if ops, _ := r.data["operations"].(map[string]any); len(ops) != 1 || ops[child] == nil || ops[opID] != nil {
		t.Fatalf("children of one operation: %s", r.body)
	}
	r = c.call("GET", "/operation/"+child, nil, nil)
	if ops, ok := r.data["operations"].(map[string]any); !ok || len(ops) != 0 {
		t.Fatalf("children of a leaf operation: %s", r.body)
	}
	if r := c.call("GET", "/operation/NOSUCH", nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("unknown operation: %s", r.body)
	}
}

func TestPairedAccount(t *testing.T) {
	srv := latchtest.New(t)
	srv.AddApp("APPIDAPPIDAPPIDAPPID", "SECRETSECRETSECRETSECRETSECRETSECRET1234")
	acc := srv.PairedAccount("APPIDAPPIDAPPIDAPPID")
	if got := srv.Accounts("APPIDAPPIDAPPIDAPPID"); len(got) != 1 || got[0] != acc || len(acc) != 64 {
		t.Fatalf("accounts %v, paired %q", got, acc)
	}
	if len(srv.Requests()) != 0 {
		t.Fatal("PairedAccount logged a request")
	}
}
