package daemon

// Issue 12 (security round two), the gate socket against a local user.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecurityConnectFlood (issue 12, item 6): a local user floods the
// gate socket with connections, as fast as it can, holding them. Before the
// fix this denied everybody's ForceCommand logins (connect failed with
// EAGAIN once the listen backlog was full, and the gate denied at once)
// and wrote one warning per refused connection (~100k lines in 10s). Now
// the daemon refuses an over-cap uid's connections in its accept loop,
// before any work, the gate retries a full backlog within its deadline,
// and the refusals are folded into one line per uid per interval: another
// user's decision is made, and the log stays small.
func TestSecurityConnectFlood(t *testing.T) {
	f := newFixture(t)
	attacker := systest.CreateUser(t, systest.UserOptions{})
	victim := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.writeConfig(t, f.configText(conf{users: map[string]string{victim.Name: acc}}))
	f.start(t, nil)
	if got := f.decide(t, victim); got != "allow" {
		t.Fatalf("control, before the flood: %q", got)
	}
	flood := systest.BuildBinary(t, "./testdata/flood")
	const floodFor = 8 * time.Second
	var floods []*exec.Cmd
	var outs []*syncBuffer
	for range 2 {
		c := attacker.Command(flood, f.socket, floodFor.String())
		out := &syncBuffer{}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		floods, outs = append(floods, c), append(outs, out)
	}
	started := time.Now()
	waitFor(t, "the flood to reach the per-uid cap", func() bool {
		return strings.Contains(f.log.String(), fmt.Sprintf("uid %d", attacker.UID))
	})
	// The ForceCommand gate's decision must come within its deadline while
	// the flood goes on.
	for i := 0; time.Since(started) < floodFor-3*time.Second; i++ {
		start := time.Now()
		got := f.decide(t, victim, "-timeout", "10s")
		if got != "allow" {
			t.Fatalf("decision %d during the flood (after %v): %q, want allow", i, time.Since(start), got)
		}
		t.Logf("decision %d during the flood: allow in %v", i, time.Since(start))
	}
	for i, c := range floods {
		if err := c.Wait(); err != nil {
			t.Errorf("flood: %v", err)
		}
		t.Logf("flood: %s", outs[i])
	}
	var floodLines int
	for _, e := range f.log.entries(t) {
		if e.str("event") != "decision" || e.str("user") != victim.Name {
			floodLines++
		}
	}
	if floodLines >= 50 {
		t.Errorf("%d log lines for a %v flood, want < 50; the first ones:\n%s", floodLines, floodFor, head(f.log.String(), 10))
	} else {
		t.Logf("%d log lines besides the victim's decisions:\n%s", floodLines, strings.Join(lines(f.log.find(t, "socket")), "\n"))
	}
	// The refusals are not lost, only counted: a summary line for the
	// attacker's uid comes at most one interval (and a tick) after the
	// first refusal.
	summary := fmt.Sprintf("uid %d: ", attacker.UID)
	waitFor(t, "the count of refused connections", func() bool {
		for _, e := range f.log.find(t, "socket") {
			if m := e.str("message"); strings.Contains(m, summary) && strings.Contains(m, "connections refused (too many open) in the last") {
				return true
			}
		}
		return false
	})
	f.stop(t)
	f.checkNoLeak(t)
}

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestSecurityServiceChosenByCaller (issue 12, item 11): a local user
// talks to the gate socket by hand and asks as "sudo", whose operation is
// open, while the SSH operation (that of the ForceCommand gate, which is
// all a non-root caller can be) is closed. Before the fix the daemon
// decided for whatever service the caller named, so the user got an
// allow for a latch that is closed for them, and the audit log recorded
// the remote address and command they made up as the login's. Now a
// caller other than root is decided as the ForceCommand gate, whatever it
// sends, and what it said is logged as claimed_*; root (the PAM hook)
// still chooses its service.
func TestSecurityServiceChosenByCaller(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	const opSudo, opSSH = "SUDOOPERATION0000000", "SSHOPERATION00000000"
	f.Latch.AddOperation(appID, opSudo, "")
	f.Latch.AddOperation(appID, opSSH, "")
	f.Latch.SetLatch(acc, opSudo, true)
	f.Latch.SetLatch(acc, opSSH, false)
	extra := fmt.Sprintf("[operations]\nsudo = %q\nsshd = %q\n", opSudo, opSSH)
	// root shares the account, for the control at the end.
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc, "root": acc}, extra: extra}))
	f.start(t, nil)

	for _, args := range [][]string{
		{"-service", "sudo", "-remote", "203.0.113.7", "-command", "made up"},
		{"-service", "server"},
		{"-service", "no such service"},
		{},
	} {
		if got := f.decide(t, u, args...); got != closedMessage {
			t.Errorf("a user asking with %q: %q, want the SSH operation's closed latch %q", args, got, closedMessage)
		}
	}
	for _, r := range statusRequests(f.Latch) {
		if !strings.Contains(r.Path, opSSH) {
			t.Errorf("the daemon asked Latch %s for a non-root caller, want the SSH operation %s", r.Path, opSSH)
		}
	}
	ds := f.log.find(t, "decision")
	if len(ds) != 4 {
		t.Fatalf("%d decision lines, want 4:\n%s", len(ds), f.log)
	}
	d := ds[0]
	for k, v := range map[string]string{"service": "sshd", "operation": opSSH, "claimed_service": "sudo",
		"claimed_remote": "203.0.113.7", "claimed_command": "made up", "outcome": "deny"} {
		if d.str(k) != v {
			t.Errorf("decision: %s = %q, want %q", k, d.str(k), v)
		}
	}
	for _, k := range []string{"remote", "command"} {
		if _, ok := d[k]; ok {
			t.Errorf("decision: %s = %v logged as a fact; it is only what the caller said", k, d[k])
		}
	}

	// Control: root, the PAM hook's identity, chooses the service, and
	// its context is logged as such.
	f.Latch.ResetRequests()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, err := gatesocket.AskDecision(ctx, f.socket, gatesocket.SocketRequest{Service: "sudo", Remote: "192.0.2.1", Command: "id"}, nil)
	if err != nil || resp.Outcome != "allow" {
		t.Errorf("root asking for sudo (open): %+v, %v; want allow", resp, err)
	}
	ds = f.log.find(t, "decision")
	if last := ds[len(ds)-1]; last.str("service") != "sudo" || last.str("remote") != "192.0.2.1" || last.str("command") != "id" || last.str("claimed_service") != "" {
		t.Errorf("root's decision: %v, want service sudo with its remote and command as facts", last)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

func lines(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.str("message"))
	}
	return out
}

// TestSecuritySelfServiceRateLimited (issue 12, item 6, sibling): pair,
// unpair and status through the socket cost Latch calls, and Latch limits
// the whole application, so a user looping on `latch-ssh status` could
// use up the quota every login needs. Before the fix only decisions were
// rate-limited; now self-service shares the uid's budget.
func TestSecuritySelfServiceRateLimited(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{policy: "allow_self_pairing = true", rateLimit: 3}))
	rec := &recordingSelfService{}
	f.start(t, func(o *Options) {
		o.SelfService = func(string, func() *gate.Core, func(string, ...any)) gatesocket.SelfService { return rec }
	})
	var refused int
	for range 5 {
		out := f.ask(t, u, "raw", f.socket, `{"v":1,"op":"status"}`)
		if len(out) == 1 && strings.Contains(out[0], "too many requests") {
			refused++
		}
	}
	if len(rec.calls) != 3 || refused != 2 {
		t.Errorf("5 status requests with rate_limit = 3: %d served, %d refused; want 3 and 2", len(rec.calls), refused)
	}
	f.stop(t)
	f.checkNoLeak(t)
}
