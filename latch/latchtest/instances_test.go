package latchtest_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// Issue 17: the fake's instance endpoints answer in the shapes the
// official SDKs' tests read, keep state per account and latch, and check
// signatures, forms and methods as for every other call.
func TestInstanceEndpoints(t *testing.T) {
	srv, c, acc := world(t, nil)
	put := func(path, name string) (string, reply) {
		t.Helper()
		r := c.call("PUT", path, url.Values{"instances": {name}}, nil)
		insts, _ := r.data["instances"].(map[string]any)
		if r.code != 0 || len(insts) != 1 {
			t.Fatalf("PUT %s: %s", path, r.body)
		}
		for id, v := range insts {
			if v != name || len(id) != 20 {
				t.Fatalf("PUT %s: %s", path, r.body)
			}
			return id, r
		}
		return "", r
	}
	app1, _ := put("/instance/"+acc, "ssh web-1.example")
	op1, _ := put("/instance/"+acc+"/op/"+opID, "ssh web-1.example")

	// GET lists the latch's own instances at the top level of data.
	r := c.call("GET", "/instance/"+acc, nil, nil)
	entry, _ := r.data[app1].(map[string]any)
	if r.code != 0 || len(r.data) != 1 || entry["name"] != "ssh web-1.example" || entry["two_factor"] != "DISABLED" {
		t.Fatalf("GET instances: %s", r.body)
	}
	if r := c.call("GET", "/instance/"+acc+"/op/"+opID, nil, nil); len(r.data) != 1 || r.data[op1] == nil {
		t.Fatalf("GET the operation's instances: %s", r.body)
	}

	// Status of each, under its own latch only; closed with its parent.
	if e, r := c.status("/status/"+acc+"/i/"+app1+"/nootp", app1); e["status"] != "on" {
		t.Fatalf("status: %s", r.body)
	}
	srv.SetLatch(acc, appID, false)
	if e, r := c.status("/status/"+acc+"/op/"+opID+"/i/"+op1, op1); e["status"] != "off" {
		t.Fatalf("an instance under a closed application: %s", r.body)
	}
	srv.SetLatch(acc, appID, true)
	for _, path := range []string{"/status/" + acc + "/op/" + opID + "/i/" + app1, "/status/" + acc + "/i/" + op1, "/status/" + acc + "/i/NOSUCHINSTANCE"} {
		if r := c.call("GET", path, nil, nil); r.code != latch.CodeNotFound {
			t.Errorf("%s: %s, want 301", path, r.body)
		}
	}
	// Lock and unlock an instance through the API (the Java SDK's
	// lock(account, op, instance)).
	if r := c.call("POST", "/lock/"+acc+"/i/"+app1, nil, nil); r.code != 0 {
		t.Fatalf("lock instance: %s", r.body)
	}
	if e, _ := c.status("/status/"+acc+"/i/"+app1, app1); e["status"] != "off" {
		t.Fatal("locked instance is not off")
	}
	if e, _ := c.status("/status/"+acc, appID); e["status"] != "on" {
		t.Fatal("locking an instance closed the application latch")
	}

	// Bad requests.
	for _, tc := range []struct {
		method, path string
		form         url.Values
		status, code int
	}{
		{"PUT", "/instance/" + acc, nil, 200, 401},
		{"PUT", "/instance/" + acc, url.Values{"instances": {""}}, 200, 401},
		{"PUT", "/instance/" + acc, url.Values{"instances": {"a", "b"}}, 200, 402},
		{"PUT", "/instance/" + acc + "/op/NOSUCHOPERATION", url.Values{"instances": {"a"}}, 200, 301},
		{"PUT", "/instance/" + acc + "/i/" + app1, url.Values{"instances": {"a"}}, 405, 0},
		{"DELETE", "/instance/" + acc, nil, 405, 0},
		{"DELETE", "/instance/" + acc + "/i/NOSUCH", nil, 200, 301},
		{"DELETE", "/instance/" + acc + "/op/" + opID + "/i/" + app1, nil, 200, 301},
		{"POST", "/instance/" + acc, url.Values{"instances": {"a"}}, 405, 0},
		{"GET", "/instance/" + acc + "/x", nil, 404, 0},
	} {
		r := c.call(tc.method, tc.path, tc.form, nil)
		if r.status != tc.status || r.code != tc.code {
			t.Errorf("%s %s %v: HTTP %d %s, want %d, code %d", tc.method, tc.path, tc.form, r.status, r.body, tc.status, tc.code)
		}
	}
	// A PUT without the form Content-Type, or signed with the wrong
	// form, is refused like any other.
	if r := c.call("PUT", "/instance/"+acc, url.Values{"instances": {"x"}}, func(q *http.Request) { q.Header.Del("Content-Type") }); r.code == 0 {
		t.Fatalf("PUT without a form Content-Type: %s", r.body)
	}
	if r := c.call("PUT", "/instance/"+acc, url.Values{"instances": {"x"}}, func(q *http.Request) { q.Header.Set("X-11Paths-Date", "2000-01-01 00:00:00") }); r.code != latch.CodeInvalidSignature {
		t.Fatalf("PUT with a changed date: %s", r.body)
	}
	if got := srv.Instances(appID, acc); len(got) != 2 {
		t.Fatalf("refused calls created instances: %+v", got)
	}

	// DELETE removes one instance; unpairing removes the rest.
	if r := c.call("DELETE", "/instance/"+acc+"/i/"+app1, nil, nil); r.code != 0 || string(r.body) != "{}" {
		t.Fatalf("DELETE: %s", r.body)
	}
	if r := c.call("GET", "/status/"+acc+"/i/"+app1, nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("status after DELETE: %s", r.body)
	}
	c.call("GET", "/unpair/"+acc, nil, nil)
	if got := srv.Instances(appID, acc); len(got) != 0 {
		t.Fatalf("instances after unpairing: %+v", got)
	}
	if r := c.call("PUT", "/instance/"+acc, url.Values{"instances": {"x"}}, nil); r.code != latch.CodeAccountNotPaired {
		t.Fatalf("PUT for an unpaired account: %s", r.body)
	}
}

// The test helpers: AddInstance with a chosen or random id, RemoveInstance
// as if someone removed it elsewhere, SetLatch on an instance.
func TestInstanceHelpers(t *testing.T) {
	srv, c, acc := world(t, nil)
	id := srv.AddInstance(appID, acc, "", "", "ssh a")
	srv.AddInstance(appID, acc, opID, "MYINSTANCE", "ssh b")
	srv.SetLatch(acc, "MYINSTANCE", false)
	if e, r := c.status("/status/"+acc+"/op/"+opID+"/i/MYINSTANCE", "MYINSTANCE"); e["status"] != "off" {
		t.Fatalf("helper-closed instance: %s", r.body)
	}
	want := []latchtest.InstanceInfo{{ID: "MYINSTANCE", Name: "ssh b", Operation: opID}, {ID: id, Name: "ssh a"}}
	slices.SortFunc(want, func(a, b latchtest.InstanceInfo) int { return strings.Compare(a.ID, b.ID) })
	if got := srv.Instances(appID, acc); !slices.Equal(got, want) {
		t.Fatalf("Instances = %+v, want %+v (sorted by id)", got, want)
	}
	if !srv.RemoveInstance(id) || srv.RemoveInstance(id) {
		t.Fatal("RemoveInstance reports wrongly")
	}
	if r := c.call("GET", "/status/"+acc+"/i/"+id, nil, nil); r.code != latch.CodeNotFound {
		t.Fatalf("status of a removed instance: %s", r.body)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("AddInstance with a taken id did not panic")
		}
	}()
	srv.AddInstance(appID, acc, "", "MYINSTANCE", "again")
}

// A fault for one endpoint leaves the others alone and counts down only
// on its own.
func TestFaultForOneEndpoint(t *testing.T) {
	srv, c, acc := world(t, nil)
	srv.SetFault(acc, latchtest.Fault{Endpoint: "instance", ErrorCode: 701, Times: 1})
	if e, r := c.status("/status/"+acc, appID); e["status"] != "on" {
		t.Fatalf("status under an instance fault: %s", r.body)
	}
	if r := c.call("GET", "/instance/"+acc, nil, nil); r.code != 701 {
		t.Fatalf("instance call: %s, want 701", r.body)
	}
	if r := c.call("GET", "/instance/"+acc, nil, nil); r.code != 0 {
		t.Fatalf("second instance call: %s, want the fault used up", r.body)
	}
}
