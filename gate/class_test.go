package gate_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// classObserver is a DecisionObserver that keeps what it is told.
type classObserver struct {
	frontEnds []string
	decisions []gate.Decision
}

func (o *classObserver) Decided(frontEnd string, d gate.Decision) {
	o.frontEnds = append(o.frontEnds, frontEnd)
	o.decisions = append(o.decisions, d)
}

// TestDecisionClasses: every decision carries the bounded class the
// metrics count it by, the observer is told about every decision the
// audit log records (and nothing else), with the request's front end.
func TestDecisionClasses(t *testing.T) {
	ctx := context.Background()
	alice := gate.Request{User: "alice", Service: "sshd", FrontEnd: gate.FrontEndPAM}
	for _, tc := range []struct {
		name, mode, extra string
		req               gate.Request
		arrange           func(w *world)
		run               func(w *world, req gate.Request) gate.Decision
		want              gate.Class
	}{
		{name: "latch open", want: gate.ClassOpen},
		{name: "latch closed", arrange: func(w *world) { w.Latch.SetLatch(w.account, appID, false) }, want: gate.ClassClosed},
		{name: "not in users", req: gate.Request{User: "bob", Service: "sshd"}, want: gate.ClassUnpaired},
		{name: "unpaired from the phone", arrange: func(w *world) { w.Latch.UnpairFromPhone(appID, w.account) }, want: gate.ClassUnpaired},
		{name: "exempt", extra: `exempt_groups = ["root"]`, req: gate.Request{User: "root", Service: "sshd"}, want: gate.ClassExempt},
		{name: "invalid name", req: gate.Request{User: "a/b", Service: "sshd"}, want: gate.ClassAccount},
		{name: "no such account", req: gate.Request{User: "nobody-here", Service: "sshd"}, want: gate.ClassAccount},
		{name: "fail open", mode: "open", arrange: fault(latchtest.Fault{HTTPStatus: 503}), want: gate.ClassFailOpen},
		{name: "fail closed", arrange: fault(latchtest.Fault{HTTPStatus: 503}), want: gate.ClassFailClosed},
		{name: "fail open refused", mode: "open", arrange: func(w *world) {
			w.Latch.SetFault(w.account, latchtest.Fault{HTTPStatus: 503})
			w.core.FailOpenGuard = func(timeout time.Duration) (string, string) { return "guarded", "" }
		}, want: gate.ClassFailOpenRefused},
		{name: "code verified", arrange: func(w *world) { w.Latch.SetTwoFactor(opSSHD, true) },
			run: func(w *world, req gate.Request) gate.Decision {
				req.Interactive = true
				d := w.core.Decide(ctx, req)
				tok, _ := w.Latch.LastTwoFactorToken(w.account, opSSHD)
				return w.core.Finish(req, d, tok)
			}, want: gate.ClassOTPVerified},
		{name: "wrong code", arrange: func(w *world) { w.Latch.SetTwoFactor(opSSHD, true) },
			run: func(w *world, req gate.Request) gate.Decision {
				req.Interactive = true
				return w.core.Finish(req, w.core.Decide(ctx, req), "WRONG1")
			}, want: gate.ClassOTPWrong},
		{name: "no code", arrange: func(w *world) { w.Latch.SetTwoFactor(opSSHD, true) },
			run: func(w *world, req gate.Request) gate.Decision {
				req.Interactive = true
				return w.core.Finish(req, w.core.Decide(ctx, req), "")
			}, want: gate.ClassOTPMissing},
		{name: "refused by the front end", run: func(w *world, req gate.Request) gate.Decision {
			return w.core.Refuse(req, "rate limit")
		}, want: gate.ClassRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = "closed"
			}
			w := newWorld(t, mode, tc.extra)
			obs := &classObserver{}
			w.core.Observer = obs
			if tc.arrange != nil {
				tc.arrange(w)
			}
			req := tc.req
			if req.User == "" {
				req = alice
			}
			run := tc.run
			if run == nil {
				run = func(w *world, req gate.Request) gate.Decision { return w.core.Decide(ctx, req) }
			}
			d := run(w, req)
			if d.Class != tc.want {
				t.Fatalf("class %q, want %q (%s: %s)", d.Class, tc.want, d.Outcome, d.Reason)
			}
			if !slices.Contains(gate.Classes(), d.Class) {
				t.Fatalf("class %q is not in gate.Classes()", d.Class)
			}
			if len(obs.decisions) != w.audit.count() || len(obs.decisions) != 1 || obs.decisions[0].Class != tc.want || obs.frontEnds[0] != req.FrontEnd {
				t.Fatalf("observer told %v %v, audit log %d records; want the one decision with front end %q", obs.frontEnds, obs.decisions, w.audit.count(), req.FrontEnd)
			}
		})
	}
	// No configuration: the class says so.
	c := &gate.Core{ConfigErr: errors.New("bad"), Observer: &classObserver{}}
	if d := c.Decide(ctx, alice); d.Class != gate.ClassConfig {
		t.Fatalf("no configuration: class %q", d.Class)
	}
}
