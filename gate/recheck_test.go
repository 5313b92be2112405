package gate_test

import (
	"context"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestRecheck: only a definite refusal ends live sessions; errors keep
// them whatever the fail mode, and nothing goes to the audit log.
func TestRecheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failMode string
		extra    string
		user     string
		setup    func(w *world)
		want     gate.Verdict
		wantErr  bool
		calls    int
	}{
		{name: "open", failMode: "closed", user: "alice", want: gate.Keep, calls: 1},
		{name: "closed", failMode: "closed", user: "alice", setup: func(w *world) { w.Latch.SetLatch(w.account, opSSHD, false) }, want: gate.End, calls: 1},
		{name: "error keeps, fail closed", failMode: "closed", user: "alice", setup: func(w *world) { w.Latch.SetFault(w.account, latchtest.Fault{HTTPStatus: 500}) }, want: gate.Keep, wantErr: true, calls: 1},
		{name: "error keeps, fail open", failMode: "open", user: "alice", setup: func(w *world) { w.Latch.SetFault(w.account, latchtest.Fault{HTTPStatus: 503}) }, want: gate.Keep, wantErr: true, calls: 1},
		{name: "unpaired from the phone, unpaired = deny", failMode: "closed", extra: `unpaired = "deny"`, user: "alice", setup: func(w *world) { w.Latch.UnpairFromPhone(appID, w.account) }, want: gate.End, calls: 1},
		{name: "unpaired from the phone, unpaired = allow", failMode: "closed", extra: `unpaired = "allow"`, user: "alice", setup: func(w *world) { w.Latch.UnpairFromPhone(appID, w.account) }, want: gate.Keep, calls: 1},
		{name: "not in [users], unpaired = deny", failMode: "closed", extra: `unpaired = "deny"`, user: "bob", want: gate.End, calls: 0},
		{name: "not in [users], unpaired = allow", failMode: "closed", extra: `unpaired = "allow"`, user: "bob", want: gate.Keep, calls: 0},
		{name: "invalid name", failMode: "closed", user: "../x", want: gate.Keep, wantErr: true, calls: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.failMode, tc.extra)
			if tc.setup != nil {
				tc.setup(w)
			}
			w.Latch.ResetRequests()
			r := w.core.Recheck(context.Background(), tc.user, "sshd")
			if r.Verdict != tc.want || (r.Err != nil) != tc.wantErr {
				t.Errorf("verdict %v, err %v (%s); want %v, error %v", r.Verdict, r.Err, r.Reason, tc.want, tc.wantErr)
			}
			reqs := w.Latch.Requests()
			if len(reqs) != tc.calls {
				t.Errorf("%d Latch calls, want %d", len(reqs), tc.calls)
			}
			for _, q := range reqs {
				if !q.NoOTP || q.Operation != opSSHD {
					t.Errorf("recheck asked %s: want /nootp on the sshd operation", q.Path)
				}
			}
			if n := w.audit.count(); n != 0 {
				t.Errorf("%d audit records, want none", n)
			}
		})
	}
}
