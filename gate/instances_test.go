package gate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// Issue 17: with an instance stored, every decision and recheck asks about
// this server's instance: closing it denies here while another server's
// instance of the same latch stays open, and a closed parent latch still
// closes every instance.
func TestDecideAsksThisServersInstance(t *testing.T) {
	w := newWorld(t, "closed", "")
	here := w.Latch.AddInstance(appID, w.account, opSSHD, "", "ssh here")
	other := w.Latch.AddInstance(appID, w.account, opSSHD, "", "ssh other")
	hereApp := w.Latch.AddInstance(appID, w.account, "", "", "ssh here")
	w = rebuild(t, w, "closed", map[string]string{"app": hereApp, opSSHD: here})
	ctx := context.Background()
	decide := func(service string) gate.Decision {
		t.Helper()
		return w.core.Decide(ctx, gate.Request{User: "alice", Service: service})
	}
	if d := decide("sshd"); !d.Allowed() || d.Instance != here || d.Operation != opSSHD {
		t.Fatalf("open instance: %+v", d)
	}
	last := w.Latch.Requests()[len(w.Latch.Requests())-1]
	if last.Instance != here || last.Operation != opSSHD {
		t.Fatalf("Latch was asked %+v, want instance %s of %s", last, here, opSSHD)
	}
	w.Latch.SetLatch(w.account, here, false)
	if d := decide("sshd"); d.Allowed() || d.Reason != "latch closed" {
		t.Fatalf("this server's instance closed: %+v", d)
	}
	if r := w.core.Recheck(ctx, "alice", "sshd"); r.Verdict != gate.End {
		t.Fatalf("recheck with this server's instance closed: %+v", r)
	}
	if d := decide("sudo"); !d.Allowed() || d.Instance != hereApp {
		t.Fatalf("sudo asks the application latch's instance: %+v", d)
	}
	w.Latch.SetLatch(w.account, here, true)
	w.Latch.SetLatch(w.account, other, false)
	if d := decide("sshd"); !d.Allowed() {
		t.Fatalf("another server's instance closed must not deny here: %+v", d)
	}
	w.Latch.SetLatch(w.account, opSSHD, false)
	if d := decide("sshd"); d.Allowed() {
		t.Fatalf("the operation's own latch closed must close its instances: %+v", d)
	}
	if recs := w.audit.recs; recs[len(recs)-1].Instance != here {
		t.Fatalf("the audit record has no instance: %+v", recs[len(recs)-1])
	}
}

// An instance Latch no longer knows goes through the fail mode, with a
// reason naming the instance and a fix naming the repair command.
func TestUnknownInstanceFollowsFailMode(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t, mode, "")
			gone := w.Latch.AddInstance(appID, w.account, opSSHD, "", "ssh here")
			w.Latch.RemoveInstance(gone)
			w = rebuild(t, w, mode, map[string]string{opSSHD: gone})
			d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"})
			if d.Allowed() != (mode == "open") || !d.FailModeApplied || d.Severity != gate.Error ||
				!strings.Contains(d.Reason, "does not know this server's instance "+gone) ||
				!strings.Contains(d.Fix, "latch-ssh pair --repair --user alice") {
				t.Fatalf("decision %+v", d)
			}
			if r := w.core.Recheck(context.Background(), "alice", "sshd"); r.Verdict != gate.Keep || r.Err == nil {
				t.Fatalf("recheck: %+v", r)
			}
		})
	}
}

// A user paired before instances were turned on is asked about the latch
// itself (the instances' parent), with a fix naming the repair command.
func TestNoInstanceYetAsksTheLatch(t *testing.T) {
	w := newWorld(t, "closed", "")
	w = rebuild(t, w, "closed", nil)
	d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"})
	if !d.Allowed() || d.Instance != "" || !strings.Contains(d.Fix, "latch-ssh pair --repair --user alice") {
		t.Fatalf("decision %+v", d)
	}
	if last := w.Latch.Requests()[len(w.Latch.Requests())-1]; last.Instance != "" || last.Operation != opSSHD {
		t.Fatalf("Latch was asked %+v", last)
	}
	w.Latch.SetLatch(w.account, opSSHD, false)
	if d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"}); d.Allowed() {
		t.Fatalf("closed latch: %+v", d)
	}
}

// rebuild gives w a configuration with instance = "host", fail_mode mode
// and alice's instances.
func rebuild(t *testing.T, w *world, mode string, instances map[string]string) *world {
	t.Helper()
	text := w.ConfigText(systest.Config{
		Policy: fmt.Sprintf("fail_mode = %q\n", mode),
		Tables: fmt.Sprintf("[operations]\nsshd = %q", opSSHD),
		Users:  map[string]string{"alice": w.account},
	})
	text = strings.Replace(text, "[policy]", "instance = \"host\"\n\n[policy]", 1)
	if len(instances) > 0 {
		var parts []string
		for k, v := range instances {
			parts = append(parts, fmt.Sprintf("%s = %q", k, v))
		}
		text += fmt.Sprintf("\n[instances]\nalice = { %s }\n", strings.Join(parts, ", "))
	}
	cfg, err := users.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	w.core.Config = cfg
	return w
}

// Instance ids recorded for another account than the user's [users] line
// names (configuration management moved the user to a new pairing and the
// pairing file kept the old ids) are never asked about: the user is asked
// about their whole latch, as a user without instances is. Before, the
// stale id was an unknown instance at every login, and fail_mode = "open"
// let the user in without any latch deciding.
func TestSecurityStaleInstanceNeverFailsOpen(t *testing.T) {
	w := newWorld(t, "open", "")
	oldAccount := strings.Repeat("O", 64)
	stale := w.Latch.AddInstance(appID, w.account, opSSHD, "", "ssh here")
	w.Latch.RemoveInstance(stale)
	w = rebuild(t, w, "open", map[string]string{users.InstanceAccountKey: oldAccount, opSSHD: stale})
	if !w.core.Config.StaleInstances("alice") {
		t.Fatal("StaleInstances = false for ids recorded under another account")
	}
	if got := w.core.Config.MissingInstances("alice"); len(got) == 0 {
		t.Error("MissingInstances is empty: check-config would not ask for latch-ssh pair --repair")
	}
	w.Latch.SetLatch(w.account, opSSHD, false)
	d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"})
	if d.Allowed() || d.FailModeApplied || d.Instance != "" {
		t.Fatalf("closed latch, stale instance id, fail_mode open: %+v; want a deny by the latch itself", d)
	}
	// The same ids recorded under the user's own account are asked about.
	w = rebuild(t, w, "open", map[string]string{users.InstanceAccountKey: w.account, opSSHD: stale})
	if d := w.core.Decide(context.Background(), gate.Request{User: "alice", Service: "sshd"}); d.Instance != stale || !d.FailModeApplied {
		t.Fatalf("ids of the user's own account: %+v; want the (unknown) instance asked", d)
	}
}
