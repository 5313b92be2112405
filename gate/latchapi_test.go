package gate_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// Issue 13, point 1: a status answer carrying child operations (the fake
// always sends some in odd shapes) is decided by the entry asked for, in
// both fail modes, and never goes to fail mode.
func TestRealLatchChildOperationsDecideNothing(t *testing.T) {
	for _, mode := range []string{"open", "closed"} {
		w := newWorld(t, mode, "")
		w.Latch.AddOperation(appID, "CHILDOFSSHDCHILDOF01", opSSHD)
		w.Latch.SetLatch(w.account, "CHILDOFSSHDCHILDOF01", false)
		req := gate.Request{User: "alice", Service: "sshd", RemoteAddr: "192.0.2.1"}
		if d := w.core.Decide(context.Background(), req); d.Outcome != gate.Allow || d.FailModeApplied {
			t.Fatalf("fail_mode=%s, open latch with children: %v %q", mode, d.Outcome, d.Reason)
		}
		w.Latch.SetLatch(w.account, opSSHD, false)
		if d := w.core.Decide(context.Background(), req); d.Outcome != gate.Deny || d.FailModeApplied || d.Reason != "latch closed" {
			t.Fatalf("fail_mode=%s, closed latch with children: %v %q", mode, d.Outcome, d.Reason)
		}
	}
}

// Issue 13, point 1: the admin's rendering reads the one taxonomy: 208's
// message is logged, 7xx is an admin problem, a TLS error the client did
// not wrap in a certificate error is still TLS, an unknown code is logged
// with Latch's message.
func TestRealLatchClassifyForAdmins(t *testing.T) {
	w := newWorld(t, "closed", "")
	w.Latch.SetFault(w.account, latchtest.Fault{ErrorCode: 208, Message: "Suspended by the bank: call 900 000 000"})
	d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"})
	if d.Outcome != gate.Deny || !d.FailModeApplied || !strings.Contains(d.Reason, "Suspended by the bank: call 900 000 000") {
		t.Fatalf("208: %v %q", d.Outcome, d.Reason)
	}
	for _, tc := range []struct {
		name     string
		err      error
		sev      gate.Severity
		has, fix string
	}{
		{"701", &latch.Error{Code: 701, Message: "Subscription limit reached"}, gate.Error, "subscription", "plan"},
		{"799", &latch.Error{Code: 799}, gate.Error, "subscription", "plan"},
		{"1100", &latch.Error{Code: 1100, Message: "Authorization control not found"}, gate.Warning, "Authorization control not found", ""},
		{"306", &latch.Error{Code: 306, Message: "Invalid totp code"}, gate.Warning, "Invalid totp code", ""},
		{"tls record", &latch.TransportError{Op: "GET /x", Err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}}, gate.Error, "TLS", "ca_file"},
		{"net", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, gate.Warning, "cannot reach Latch", ""},
		{"timeout", context.DeadlineExceeded, gate.Warning, "within 2s", ""},
	} {
		reason, fix, sev := gate.Classify(tc.err, 2*time.Second)
		if sev != tc.sev || !strings.Contains(reason, tc.has) || !strings.Contains(fix, tc.fix) || (tc.fix == "" && fix != "") {
			t.Errorf("%s: %q, fix %q, severity %v", tc.name, reason, fix, sev)
		}
	}
}
