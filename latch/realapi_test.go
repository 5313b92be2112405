package latch_test

// Issue 13, point 1: the real Latch's answers, as the official SDKs send
// and read them, checked through the fake (which verifies requests with
// its own code, not the latch package's).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// The fake answers every status with the asked entry's child operations,
// some in odd shapes: the decision is the entry's, the children never make
// the answer malformed.
func TestRealLatchStatusWithChildOperations(t *testing.T) {
	srv, c, acc := setup(t)
	srv.AddOperation(appID, "CHILDOFOPERATION0001", opID)
	ctx := ctxTimeout(t, 5*time.Second)
	st, err := c.Status(ctx, latch.StatusRequest{AccountID: acc, NoOTP: true})
	if err != nil {
		t.Fatalf("application status with children: %v", err)
	}
	if !st.Open || len(st.Operations) != 1 || !st.Operations[opID].Open || !st.Operations[opID].Operations["CHILDOFOPERATION0001"].Open {
		t.Fatalf("status %+v", st)
	}
	srv.SetLatch(acc, "CHILDOFOPERATION0001", false)
	st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, OperationID: opID, NoOTP: true})
	if err != nil || !st.Open || st.Operations["CHILDOFOPERATION0001"].Open {
		t.Fatalf("operation status with a closed child: %+v, %v", st, err)
	}
	srv.SetLatch(acc, appID, false)
	if st, err = c.Status(ctx, latch.StatusRequest{AccountID: acc, NoOTP: true}); err != nil || st.Open {
		t.Fatalf("closed application with children: %+v, %v", st, err)
	}
}

// The form is encoded as java.net.URLEncoder encodes it, in the body and
// in the signature: a commonName with "*", "~", "/" and UTF-8 pairs, and
// arrives intact.
func TestRealLatchPairCommonNameJavaEncoded(t *testing.T) {
	srv := latchtest.New(t)
	srv.AddApp(appID, secret)
	c := newClient(t, srv, secret)
	for _, name := range []string{"host1 ssh", "alice@host-1.example", "ops*team~1 host/\u00e9", "a+b&c=d%e"} {
		acc, err := c.Pair(ctxTimeout(t, 5*time.Second), srv.IssuePairingToken(appID), name)
		if err != nil {
			t.Fatalf("pair with commonName %q: %v", name, err)
		}
		if got := srv.CommonName(appID, acc); got != name {
			t.Fatalf("commonName %q arrived as %q", name, got)
		}
	}
}

// Every POST carries Content-Type application/x-www-form-urlencoded, a POST
// without params (lock, unlock) too, as the official SDKs send it.
func TestRealLatchEmptyPostHasFormContentType(t *testing.T) {
	srv, c, acc := setup(t)
	srv.ResetRequests()
	ctx := ctxTimeout(t, 5*time.Second)
	if err := c.Lock(ctx, acc, ""); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if err := c.Unlock(ctx, acc, opID); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if _, err := c.Pair(ctx, srv.IssuePairingToken(appID), "x"); err != nil {
		t.Fatalf("pair: %v", err)
	}
	for _, r := range srv.Requests() {
		if r.Method == "POST" && r.ContentType != "application/x-www-form-urlencoded" {
			t.Errorf("%s %s sent Content-Type %q", r.Method, r.Path, r.ContentType)
		}
	}
	if n := srv.CountRequests(func(r latchtest.Request) bool { return r.Method == "POST" }); n != 3 {
		t.Fatalf("%d POSTs logged", n)
	}
}

// History bounds are sent as the SDKs send them: a missing from as 0, a
// missing to as now, never a negative epoch.
func TestRealLatchHistoryBounds(t *testing.T) {
	srv, c, acc := setup(t)
	ctx := ctxTimeout(t, 5*time.Second)
	before := time.Now().UnixMilli()
	for _, tc := range []struct {
		name     string
		from, to time.Time
		check    func(from, to int64) bool
	}{
		{"no from", time.Time{}, time.UnixMilli(5000), func(f, to int64) bool { return f == 0 && to == 5000 }},
		{"no to", time.UnixMilli(7000), time.Time{}, func(f, to int64) bool { return f == 7000 && to >= before }},
		{"before the epoch", time.UnixMilli(-5), time.UnixMilli(9), func(f, to int64) bool { return f == 0 && to == 9 }},
		{"both", time.UnixMilli(1), time.UnixMilli(2), func(f, to int64) bool { return f == 1 && to == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetRequests()
			if _, err := c.History(ctx, acc, tc.from, tc.to); err != nil {
				t.Fatalf("history: %v", err)
			}
			p := srv.Requests()[0].Path
			parts := strings.Split(p, "/")
			f, e1 := strconv.ParseInt(parts[len(parts)-2], 10, 64)
			to, e2 := strconv.ParseInt(parts[len(parts)-1], 10, 64)
			if e1 != nil || e2 != nil || !tc.check(f, to) {
				t.Fatalf("path %s", p)
			}
		})
	}
	srv.ResetRequests()
	if _, err := c.History(ctx, acc, time.Time{}, time.Time{}); err != nil || !strings.HasSuffix(srv.Requests()[0].Path, "/history/"+acc) {
		t.Fatalf("unbounded history: %v %v", err, srv.Requests())
	}
}

// GET /operation/{id} answers the operation's children at the top level.
func TestRealLatchOperationChildren(t *testing.T) {
	srv, c, _ := setup(t)
	srv.AddOperation(appID, "CHILDOFOPERATION0001", opID)
	ops, err := c.Operations(ctxTimeout(t, 5*time.Second), opID)
	if err != nil || len(ops) != 1 || ops["CHILDOFOPERATION0001"].Name == "" {
		t.Fatalf("children of %s: %+v, %v", opID, ops, err)
	}
}

// The error taxonomy of latch-api.md, in one place.
func TestRealLatchClassify(t *testing.T) {
	for _, tc := range []struct {
		code         int
		msg          string
		kind         latch.Kind
		admin        bool
		personHas    []string
		personHasNot []string
		adminHas     []string
	}{
		{207, "Account not activated or disabled", latch.KindAccount, false, []string{"not activated or is disabled", "207"}, nil, []string{"207"}},
		{208, "Your access is suspended: call the service desk", latch.KindAccountMessage, false,
			[]string{"Your access is suspended: call the service desk", "208"}, []string{"disabled"}, []string{"Your access is suspended: call the service desk"}},
		{701, "Subscription limit reached", latch.KindSubscription, true, []string{"subscription", "administrator"}, []string{"disabled", "your account", "the Latch account"}, []string{"701", "Subscription limit reached", "not the person's account"}},
		{702, "", latch.KindSubscription, true, []string{"subscription"}, []string{"disabled"}, []string{"702"}},
		{306, "Invalid totp code", latch.KindUnknownCode, false, []string{"306", "Invalid totp code"}, nil, []string{"306", "Invalid totp code"}},
		{1100, "Authorization control not found", latch.KindUnknownCode, false, []string{"1100"}, nil, []string{"1100", "Authorization control not found"}},
		{301, "x", latch.KindNotFound, true, []string{"301"}, nil, []string{"301"}},
		{401, "x", latch.KindOurBug, false, []string{"latch-ssh bug"}, nil, []string{"401"}},
		{402, "x", latch.KindOurBug, false, []string{"latch-ssh bug"}, nil, []string{"402"}},
		{501, "x", latch.KindNoToken, false, []string{"one-time code"}, nil, []string{"501"}},
		{109, "x", latch.KindClock, true, []string{"clock"}, nil, []string{"clock"}},
		{102, "x", latch.KindCredentials, true, []string{"secret"}, nil, []string{"credentials"}},
		{201, "x", latch.KindNotPaired, false, []string{"unpaired"}, nil, []string{"201"}},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			c := latch.Classify(fmt.Errorf("calling: %w", &latch.Error{Code: tc.code, Message: tc.msg}))
			if c.Kind != tc.kind || c.Code != tc.code || c.AdminProblem != tc.admin {
				t.Fatalf("%+v", c)
			}
			for _, s := range tc.personHas {
				if !strings.Contains(c.Person, s) {
					t.Errorf("person text %q lacks %q", c.Person, s)
				}
			}
			for _, s := range tc.personHasNot {
				if strings.Contains(strings.ToLower(c.Person), strings.ToLower(s)) {
					t.Errorf("person text %q says %q", c.Person, s)
				}
			}
			for _, s := range tc.adminHas {
				if !strings.Contains(c.Admin, s) {
					t.Errorf("admin text %q lacks %q", c.Admin, s)
				}
			}
		})
	}
	op := "GET /api/3.0/status/" + strings.Repeat("A", 64)
	for _, tc := range []struct {
		name string
		err  error
		kind latch.Kind
	}{
		{"unknown authority", &latch.TransportError{Op: op, Err: x509.UnknownAuthorityError{}}, latch.KindTLS},
		{"tls verification", &latch.TransportError{Op: op, Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "x"}}}, latch.KindTLS},
		{"tls record header", &latch.TransportError{Op: op, Err: tls.RecordHeaderError{Msg: "not tls"}}, latch.KindTLS},
		{"bare x509 error", x509.CertificateInvalidError{Reason: x509.Expired}, latch.KindTLS},
		{"transport", &latch.TransportError{Op: op, Err: errors.New("connection refused")}, latch.KindNetwork},
		{"bare net error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, latch.KindNetwork},
		{"deadline", &latch.TransportError{Op: op, Err: fmt.Errorf("%w (x)", context.DeadlineExceeded)}, latch.KindTimeout},
		{"canceled", context.Canceled, latch.KindCanceled},
		{"http", &latch.HTTPError{StatusCode: 502}, latch.KindHTTP},
		{"malformed", fmt.Errorf("x: %w", latch.ErrMalformed), latch.KindMalformed},
		{"other", errors.New("odd"), latch.KindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := latch.Classify(tc.err)
			if c.Kind != tc.kind || c.Person == "" || c.Admin == "" {
				t.Fatalf("%+v", c)
			}
			if strings.Contains(c.Person, strings.Repeat("A", 64)) {
				t.Fatalf("the person's text shows the request path: %q", c.Person)
			}
			if tc.kind == latch.KindTLS && (!c.AdminProblem || c.Fix == "") {
				t.Fatalf("TLS is an admin problem with a fix: %+v", c)
			}
		})
	}
	if c := latch.Classify(nil); c != (latch.Class{}) {
		t.Fatalf("nil: %+v", c)
	}
}

// Latch's own 208 message reaches the client's error through the fake,
// cleaned.
func TestRealLatch208MessageSurfaces(t *testing.T) {
	srv, c, acc := setup(t)
	srv.SetFault(acc, latchtest.Fault{ErrorCode: 208, Message: "Blocked by your bank\x1b[2J: call 900 000 000"})
	_, err := c.Status(ctxTimeout(t, 5*time.Second), latch.StatusRequest{AccountID: acc, NoOTP: true})
	cl := latch.Classify(err)
	if cl.Kind != latch.KindAccountMessage || !strings.Contains(cl.Person, "Blocked by your bank") || strings.Contains(cl.Person, "\x1b") {
		t.Fatalf("%+v (%v)", cl, err)
	}
}
