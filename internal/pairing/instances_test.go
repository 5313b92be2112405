package pairing_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

// instancesOn turns [latch] instance = "host" on in f's file, with name
// as instance_name when not "".
func (f *fixture) instancesOn(t *testing.T, name string) {
	t.Helper()
	line := "instance = \"host\"\n"
	if name != "" {
		line += "instance_name = \"" + name + "\"\n"
	}
	f.path = f.WriteFile(t, "latch.toml", strings.Replace(f.read(t), "[policy]", line+"[policy]", 1))
	if !f.load(t).InstancesOn() {
		t.Fatal("instances are not on")
	}
}

// latchesOf returns the fake's instances of acc by latch key.
func (f *fixture) latchesOf(acc string) map[string]latchtest.InstanceInfo {
	out := map[string]latchtest.InstanceInfo{}
	for _, in := range f.Latch.Instances(appID, acc) {
		out[users.InstanceKey(in.Operation)] = in
	}
	return out
}

// Issue 17: with instances on, pairing creates this server's instance of
// the application latch and of each operation the user's services use,
// named instance_name, and records their ids on the user's own line; the
// rest of the file is untouched.
func TestPairCreatesInstances(t *testing.T) {
	f := newFixture(t, options{users: "# people"})
	f.instancesOn(t, "SSH %h")
	before := f.read(t)
	msg, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	if !strings.Contains(msg, `its own instance "SSH testhost"`) {
		t.Errorf("message %q", msg)
	}
	cfg := f.load(t)
	acc, _ := cfg.Account("alice")
	got := f.latchesOf(acc)
	if len(got) != 3 || got["app"].Name != "SSH testhost" || got[opSSHD].Name != "SSH testhost" || got[opSudo].ID == "" {
		t.Fatalf("instances at Latch: %+v", got)
	}
	for key, in := range got {
		if id, ok := cfg.Instance("alice", strings.TrimPrefix(key, "app")); !ok || id != in.ID {
			t.Errorf("recorded %s = %q, %v; Latch has %s", key, id, ok, in.ID)
		}
	}
	table := "\n# This server's Latch instances of each user's latch: latch-ssh pair writes them.\n[instances]\n" +
		"alice = { account = \"" + acc + "\", app = \"" + got["app"].ID + "\", " + opSSHD + " = \"" + got[opSSHD].ID + "\", " + opSudo + " = \"" + got[opSudo].ID + "\" }\n"
	if after := f.read(t); after != strings.Replace(before, "[users]\n", "[users]\n"+userLine("alice", acc), 1)+table {
		t.Errorf("pairing wrote more than its line and instances:\n--- before\n%s\n--- after\n%s", before, after)
	}

	// Unpairing removes this server's instances and the pairing.
	if _, err := f.m.Unpair(context.Background(), "alice"); err != nil {
		t.Fatalf("Unpair: %v", err)
	}
	if left := f.Latch.Instances(appID, acc); len(left) != 0 {
		t.Fatalf("instances left at Latch: %+v", left)
	}
	var deletes int
	for _, r := range f.Latch.Requests() {
		if r.Method == "DELETE" && r.Code == 0 {
			deletes++
		}
	}
	if deletes != 3 {
		t.Errorf("%d instances deleted through the API, want 3", deletes)
	}
	if f.read(t) != before+"\n# This server's Latch instances of each user's latch: latch-ssh pair writes them.\n[instances]\n" {
		t.Errorf("file after unpair:\n%s", f.read(t))
	}
}

// Unpairing one of two local users mapped to the same account removes
// only that user's instances and keeps the pairing (today's rule).
func TestUnpairKeepsSharedAccountAndOthersInstances(t *testing.T) {
	f := newFixture(t, options{})
	acc := f.account(t)
	mine := f.Latch.AddInstance(appID, acc, "", "", "ssh testhost")
	theirs := f.Latch.AddInstance(appID, acc, "", "", "ssh testhost bob")
	f.write(t, options{users: userLine("alice", acc) + userLine("bob", acc),
		extra: "\n[instances]\nalice = { app = \"" + mine + "\" }\nbob = { app = \"" + theirs + "\" }\n"})
	f.instancesOn(t, "")
	msg, err := f.m.Unpair(context.Background(), "alice")
	if err != nil || !strings.Contains(msg, "stays paired because bob") {
		t.Fatalf("Unpair: %q, %v", msg, err)
	}
	if got := f.Latch.Instances(appID, acc); len(got) != 1 || got[0].ID != theirs {
		t.Fatalf("instances left: %+v", got)
	}
	if len(f.Latch.Accounts(appID)) != 1 {
		t.Fatal("the shared account was unpaired")
	}
}

// A failed instance creation after a successful pairing: a clear error
// naming the repair command, the pairing recorded (its logins ask the
// whole latch), nothing half-written; the repair then finishes without a
// new code, adopting an instance created by a call whose answer was lost
// rather than creating it twice.
func TestPairInstanceFailureThenRepair(t *testing.T) {
	f := newFixture(t, options{})
	f.instancesOn(t, "")
	acc := strings.Repeat("Acc0", 16)
	tok := f.Latch.IssuePairingTokenFor(appID, acc)
	// The pairing answers; every instance call fails (a limit of the
	// application's plan).
	f.Latch.SetFault(acc, latchtest.Fault{Endpoint: "instance", ErrorCode: 701})
	_, err := f.m.Pair(context.Background(), "alice", tok)
	f.Latch.ClearFaults()
	if err == nil || !strings.Contains(err.Error(), "latch-ssh pair --repair --user alice") || !strings.Contains(err.Error(), "Latch subscription") ||
		!strings.Contains(err.Error(), "paired alice with Latch account") || !strings.Contains(err.Error(), "follow the whole latch") {
		t.Fatalf("Pair with a failing instance call: %v", err)
	}
	cfg := f.load(t)
	if got, _ := cfg.Account("alice"); got != acc {
		t.Fatalf("alice maps to %q, want %q", got, acc)
	}
	if missing := cfg.MissingInstances("alice"); len(missing) != 3 {
		t.Fatalf("missing instances after the failure: %q", missing)
	}
	// An instance whose creation's answer was lost: Latch has it, the
	// file does not.
	lost := f.Latch.AddInstance(appID, acc, opSSHD, "", "ssh testhost")

	msg, err := f.m.Repair(context.Background(), "")
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	if !strings.Contains(msg, "alice: ") || !strings.Contains(msg, "found instance") || strings.Count(msg, "created instance") != 2 {
		t.Errorf("Repair said %q", msg)
	}
	cfg = f.load(t)
	if id, _ := cfg.Instance("alice", opSSHD); id != lost {
		t.Errorf("the lost instance was not adopted: %q, want %q", id, lost)
	}
	if got := f.Latch.Instances(appID, acc); len(got) != 3 || cfg.MissingInstances("alice") != nil {
		t.Fatalf("after repair: Latch %+v, missing %q", got, cfg.MissingInstances("alice"))
	}
	// Nothing to do the second time; no instance is made twice.
	if msg, err := f.m.Repair(context.Background(), "alice"); err != nil || !strings.Contains(msg, "nothing to do") {
		t.Fatalf("second Repair: %q, %v", msg, err)
	}
	if got := f.Latch.Instances(appID, acc); len(got) != 3 {
		t.Fatalf("second repair made instances: %+v", got)
	}
}

// Repair migrates users paired before instances were turned on, and
// replaces an instance Latch no longer knows; it needs instances on.
func TestRepairMigratesAndReplacesUnknown(t *testing.T) {
	f := newFixture(t, options{})
	alice, bob := f.account(t), f.account(t)
	f.write(t, options{users: userLine("alice", alice) + userLine("bob", bob)})
	if _, err := f.m.Repair(context.Background(), ""); err == nil || !strings.Contains(err.Error(), `instance = "host"`) {
		t.Fatalf("Repair with instances off: %v", err)
	}
	f.instancesOn(t, "")
	if _, err := f.m.Repair(context.Background(), "nosuchuser"); err == nil || !strings.Contains(err.Error(), "not paired") {
		t.Fatalf("Repair of an unmapped user: %v", err)
	}
	if _, err := f.m.Repair(context.Background(), ""); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	cfg := f.load(t)
	for _, u := range []string{"alice", "bob"} {
		if cfg.MissingInstances(u) != nil {
			t.Fatalf("%s still misses %q", u, cfg.MissingInstances(u))
		}
	}
	old, _ := cfg.Instance("bob", "")
	f.Latch.RemoveInstance(old)
	if _, err := f.m.Repair(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	cfg2 := f.load(t)
	if id, _ := cfg2.Instance("bob", ""); id == old || id == "" {
		t.Fatalf("bob's unknown instance was not replaced: %q", id)
	}
	if !maps.Equal(cfg2.Instances["alice"], cfg.Instances["alice"]) {
		t.Fatal("repairing bob changed alice")
	}
	keys := slices.Sorted(maps.Keys(cfg2.Instances["bob"]))
	if !slices.Equal(keys, []string{opSSHD, opSudo, "app"}) {
		t.Fatalf("bob's instance keys %q", keys)
	}
}

// Self-service pairing through the daemon creates the instances too, and
// the person's status asks about this server's instance.
func TestSelfServicePairCreatesInstances(t *testing.T) {
	f := newFixture(t, options{policy: "allow_self_pairing = true"})
	f.instancesOn(t, "")
	ss := pairing.SelfService{Manager: f.m}
	ctx := context.Background()
	resp := ss.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID))
	if !resp.OK || !strings.Contains(resp.Message, "its own instance") {
		t.Fatalf("pair: %+v", resp)
	}
	cfg := f.load(t)
	acc, _ := cfg.Account("alice")
	id, ok := cfg.Instance("alice", opSSHD)
	if !ok || cfg.MissingInstances("alice") != nil {
		t.Fatalf("instances %+v", cfg.Instances)
	}
	f.Latch.SetLatch(acc, id, false)
	st := ss.Status(ctx, "alice")
	if !st.OK || st.Status == nil {
		t.Fatalf("status: %+v", st)
	}
	for _, l := range st.Status.Latches {
		if want := map[bool]string{true: pairing.StateClosed, false: pairing.StateOpen}[l.Service == "sshd"]; l.State != want {
			t.Errorf("latch %+v, want %s (only sshd's instance is closed)", l, want)
		}
	}
}

// Configuration management moves alice to another Latch account while the
// pairing file keeps the instance ids of the old one: the ids are stale
// (users.Config.StaleInstances), check-config's list names her, and
// --repair gives the new account instances of its own, recorded with it.
func TestRepairReplacesInstancesOfAnotherAccount(t *testing.T) {
	f := newFixture(t, options{})
	oldAcc, newAcc := f.account(t), f.account(t)
	f.write(t, options{users: userLine("alice", oldAcc)})
	f.instancesOn(t, "")
	if _, err := f.m.Repair(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	before := f.load(t)
	if before.InstanceAccounts["alice"] != oldAcc || before.StaleInstances("alice") {
		t.Fatalf("after repair: account %q, stale %v; want %s recorded", before.InstanceAccounts["alice"], before.StaleInstances("alice"), oldAcc)
	}
	if err := users.SetUser(f.path, "alice", newAcc); err != nil {
		t.Fatal(err)
	}
	moved := f.load(t)
	if !moved.StaleInstances("alice") || moved.MissingInstances("alice") == nil {
		t.Fatalf("ids of %s for a user now on %s: stale %v, missing %q", oldAcc, newAcc, moved.StaleInstances("alice"), moved.MissingInstances("alice"))
	}
	if _, err := f.m.Repair(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	after := f.load(t)
	got := f.latchesOf(newAcc)
	id, ok := after.Instance("alice", "")
	if after.InstanceAccounts["alice"] != newAcc || !ok || id != got["app"].ID || id == before.Instances["alice"]["app"] {
		t.Fatalf("after repair on the new account: recorded %q for %s, Latch has %+v", id, after.InstanceAccounts["alice"], got)
	}
}
