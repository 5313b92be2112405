package latch_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// Issue 17: the signatures of the instance calls, produced by running the
// official Python SDK's own signing code (latchauth.authentication_headers)
// on these requests; the names hold nothing on which Java's and Python's
// form encoders differ.
func TestSignInstanceCallsKnownAnswers(t *testing.T) {
	const key = "EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0"
	date := latch.FormatDate(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	name := url.Values{"instances": {"ssh web-1.example"}}
	for _, tc := range []struct {
		method, path string
		params       url.Values
		want         string
	}{
		{"PUT", "/api/3.0/instance/ACCOUNTID", name, "+xTh0ZYPDORJ8zG8Jc5zUUH0tfQ="},
		{"PUT", "/api/3.0/instance/ACCOUNTID/op/OPERATIONID", name, "smFBhY8HfWG7GTUY7KbvkExeHgc="},
		{"GET", "/api/3.0/instance/ACCOUNTID", nil, "+179A6hJA5TJICOiimP0B+2a7VE="},
		{"DELETE", "/api/3.0/instance/ACCOUNTID/i/INSTANCEID", nil, "kKk0I/Nimp36n8i1q47wmlqjGvw="},
		{"DELETE", "/api/3.0/instance/ACCOUNTID/op/OPERATIONID/i/INSTANCEID", nil, "TggA1XjEqDprYp/uJHiwxRazvOA="},
		{"GET", "/api/3.0/status/ACCOUNTID/i/INSTANCEID/nootp", nil, "bqyM4m1Xjq9RlLptmEJBVkbc7b0="},
		{"GET", "/api/3.0/status/ACCOUNTID/op/OPERATIONID/i/INSTANCEID/nootp/silent", nil, "4g3paEuxXpQNDmwJuh9L6ki48ew="},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			sts := latch.StringToSign(tc.method, date, nil, tc.path, tc.params)
			if tc.params != nil && !strings.HasSuffix(sts, "\ninstances=ssh+web-1.example") {
				t.Fatalf("stringToSign %q does not end with the form", sts)
			}
			if got := latch.Sign(key, sts); got != tc.want {
				t.Fatalf("signature %s, want %s (stringToSign %q)", got, tc.want, sts)
			}
		})
	}
}

// Issue 17: create, list, ask about and remove instances through the
// client, against the fake, which checks every signature, date and form;
// an instance's latch is closed by its own latch or by any latch above it.
func TestInstancesAgainstFake(t *testing.T) {
	srv, c, acc := setup(t)
	ctx := ctxTimeout(t, 10*time.Second)

	web1, err := c.AddInstance(ctx, acc, "", "ssh web-1.example")
	if err != nil {
		t.Fatalf("AddInstance: %v", err)
	}
	web2, err := c.AddInstance(ctx, acc, "", "ssh web-2.example")
	if err != nil || web2 == web1 {
		t.Fatalf("second AddInstance: %q, %v", web2, err)
	}
	opInst, err := c.AddInstance(ctx, acc, opID, "ssh web-1.example")
	if err != nil {
		t.Fatalf("AddInstance under an operation: %v", err)
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Method != "PUT" || last.Path != "/api/3.0/instance/"+acc+"/op/"+opID || last.Code != 0 ||
		last.ContentType != "application/x-www-form-urlencoded" {
		t.Fatalf("the fake saw %+v", last)
	}
	got, err := c.Instances(ctx, acc, "")
	if err != nil || len(got) != 2 {
		t.Fatalf("Instances = %+v, %v; want the two application instances", got, err)
	}
	for _, in := range got {
		if (in.ID != web1 || in.Name != "ssh web-1.example") && (in.ID != web2 || in.Name != "ssh web-2.example") {
			t.Errorf("listed %+v", in)
		}
	}
	if got, err := c.Instances(ctx, acc, opID); err != nil || len(got) != 1 || got[0].ID != opInst {
		t.Fatalf("operation's Instances = %+v, %v", got, err)
	}

	status := func(op, inst string) bool {
		t.Helper()
		st, err := c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: op, InstanceID: inst, NoOTP: true})
		if err != nil || st.ID != inst {
			t.Fatalf("status of %s/%s = %+v, %v", op, inst, st, err)
		}
		return st.Open
	}
	if !status("", web1) || !status("", web2) || !status(opID, opInst) {
		t.Fatal("new instances must be open")
	}
	srv.SetLatch(acc, web1, false)
	if status("", web1) || !status("", web2) {
		t.Fatal("closing web-1's latch must close web-1 only")
	}
	srv.SetLatch(acc, web1, true)
	srv.SetLatch(acc, appID, false)
	if status("", web1) || status("", web2) || status(opID, opInst) {
		t.Fatal("a closed application latch must close every instance")
	}
	srv.SetLatch(acc, appID, true)
	srv.SetLatch(acc, opID, false)
	if status(opID, opInst) || !status("", web1) {
		t.Fatal("a closed operation must close its instances only")
	}
	srv.SetLatch(acc, opID, true)

	// An instance is asked about under the latch it belongs to.
	_, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: opID, InstanceID: web1})
	if !latch.IsUnknownInstance(err) {
		t.Fatalf("web-1 asked under the operation: %v, want an unknown instance", err)
	}

	if err := c.RemoveInstance(ctx, acc, "", web1); err != nil {
		t.Fatalf("RemoveInstance: %v", err)
	}
	_, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, InstanceID: web1})
	cl := latch.Classify(err)
	if !latch.IsUnknownInstance(err) || latch.ErrorCode(err) != latch.CodeNotFound || cl.Kind != latch.KindUnknownInstance ||
		!strings.Contains(cl.Fix, "latch-ssh pair --repair") || !strings.Contains(cl.Person, "latch-ssh pair --repair") || !cl.AdminProblem {
		t.Fatalf("status of a removed instance: %v, class %+v", err, cl)
	}
	if err := c.RemoveInstance(ctx, acc, "", web1); !latch.IsUnknownInstance(err) {
		t.Fatalf("removing it again: %v, want an unknown instance", err)
	}
	if got := srv.Instances(appID, acc); len(got) != 2 {
		t.Fatalf("the fake holds %+v", got)
	}
}

// The fake verifies the instance calls' signatures like every other: a
// client with the wrong secret gets 102, and nothing is created.
func TestInstancesSignatureChecked(t *testing.T) {
	srv, _, acc := setup(t)
	bad := newClient(t, srv, strings.Repeat("X", 40))
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := bad.AddInstance(ctx, acc, "", "ssh host"); latch.ErrorCode(err) != latch.CodeInvalidSignature {
		t.Fatalf("AddInstance with a wrong secret: %v", err)
	}
	if _, err := bad.Instances(ctx, acc, ""); latch.ErrorCode(err) != latch.CodeInvalidSignature {
		t.Fatalf("Instances with a wrong secret: %v", err)
	}
	id := srv.AddInstance(appID, acc, "", "", "ssh host")
	if err := bad.RemoveInstance(ctx, acc, "", id); latch.ErrorCode(err) != latch.CodeInvalidSignature || latch.IsUnknownInstance(err) {
		t.Fatalf("RemoveInstance with a wrong secret: %v", err)
	}
	if got := srv.Instances(appID, acc); len(got) != 1 {
		t.Fatalf("instances after refused calls: %+v", got)
	}
}

// Strict answers: an instance answer that does not name exactly the
// instance created is malformed, never an id.
func TestAddInstanceAnswerStrict(t *testing.T) {
	srv, c, acc := setup(t)
	ctx := ctxTimeout(t, 5*time.Second)
	for _, body := range []string{
		`{"data":{}}`,
		`{"data":{"instances":{}}}`,
		`{"data":{"instances":[]}}`,
		`{"data":{"instances":{"ID1":"other name"}}}`,
		`{"data":{"instances":{"ID1":"ssh host","ID2":"ssh host"}}}`,
		`{"data":{"instances":{"bad/id":"ssh host"}}}`,
		`{"data":{"instances":{"ID1":{"name":"ssh host"}}}}`,
	} {
		srv.SetFault(acc, latchtest.Fault{Body: []byte(body), Times: 1})
		if id, err := c.AddInstance(ctx, acc, "", "ssh host"); err == nil || latch.Classify(err).Kind != latch.KindMalformed {
			t.Errorf("answer %s: id %q, err %v; want malformed", body, id, err)
		}
	}
	srv.SetFault(acc, latchtest.Fault{Body: []byte(`{"data":{"instances":{"ID1":"ssh host","ID2":"other"}}}`), Times: 1})
	if id, err := c.AddInstance(ctx, acc, "", "ssh host"); err != nil || id != "ID1" {
		t.Fatalf("the entry named as asked: %q, %v", id, err)
	}
	for _, name := range []string{"", strings.Repeat("x", latch.MaxInstanceName+1), "a\nb"} {
		if _, err := c.AddInstance(context.Background(), acc, "", name); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := c.AddInstance(context.Background(), acc, "../x", "n"); err == nil {
		t.Error("an operation id with a slash accepted")
	}
}
