package pairing_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/latch-ssh/latch-ssh/users"
)

// cmWrite replaces path with text the way configuration management does
// (Ansible's template module: a temporary file renamed over the target,
// mode 0600), knowing nothing of pairings.
func cmWrite(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".ansible_tmp_latch.toml")
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The fleet layout (issue 17): configuration management owns latch.toml
// and rewrites it on every run; latch-ssh pair writes new pairings into
// [policy] pairing_file only. Pairings made between the runs all survive,
// and latch.toml is byte for byte what configuration management wrote.
// A user an admin mapped in latch.toml is unpaired from latch.toml, as
// before.
func TestFleetPairingSurvivesConfigManagementRewrites(t *testing.T) {
	f := newFixture(t, options{})
	carolAcc := f.account(t)
	// The admin's template: [users] holds only what the admin maps by
	// hand (carol); pairings go to the drop-in.
	template := func(run int) string {
		return "# Managed by Ansible (run " + string(rune('0'+run)) + "); local changes are overwritten.\n" +
			f.LatchTable() +
			"[policy]\nfail_mode = \"closed\"\npairing_file = \"latch.d/50-paired.toml\"\n\n" +
			"[operations]\nsshd = \"" + opSSHD + "\"\n\n" +
			"[users]\ncarol = \"" + carolAcc + "\"   # mapped by the admin\n"
	}
	dir := filepath.Dir(f.path)
	paired := filepath.Join(dir, users.DropInDirName, "50-paired.toml")
	ctx := context.Background()

	var accounts []string
	for run, name := range []string{"alice", "bob", "dave"} {
		want := template(run + 1)
		cmWrite(t, f.path, want)
		if _, err := f.m.Pair(ctx, name, f.Latch.IssuePairingToken(appID)); err != nil {
			t.Fatalf("run %d: Pair %s: %v", run+1, name, err)
		}
		if got, _ := os.ReadFile(f.path); string(got) != want {
			t.Fatalf("run %d: pairing %s touched the admin's file:\n%s", run+1, name, got)
		}
		cfg := f.load(t)
		acc, ok := cfg.Account(name)
		if !ok || cfg.UserSources[name].File != paired {
			t.Fatalf("run %d: %s mapped at %v", run+1, name, cfg.UserSources[name])
		}
		accounts = append(accounts, acc)
	}
	cmWrite(t, f.path, template(4))
	cfg := f.load(t)
	for i, name := range []string{"alice", "bob", "dave"} {
		if acc, ok := cfg.Account(name); !ok || acc != accounts[i] {
			t.Errorf("after the last run, %s maps to %q (%v), want %q", name, acc, ok, accounts[i])
		}
	}
	if acc, _ := cfg.Account("carol"); acc != carolAcc || cfg.UserSources["carol"].File != f.path {
		t.Errorf("carol: %q at %v", acc, cfg.UserSources["carol"])
	}
	fi, err := os.Stat(paired)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || int(st.Uid) != os.Geteuid() {
		t.Errorf("%s: mode %v uid %d, want 0600 and this process's uid", paired, fi.Mode(), st.Uid)
	}
	b, _ := os.ReadFile(paired)
	if !strings.HasPrefix(string(b), "# Written by latch-ssh pair") {
		t.Errorf("%s has no header:\n%s", paired, b)
	}

	// Unpair: each user's line is removed from the file that holds it.
	admin := template(4)
	if _, err := f.m.Unpair(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.path); string(got) != admin {
		t.Errorf("unpairing bob touched the admin's file:\n%s", got)
	}
	if _, err := f.m.Unpair(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.path); string(got) != strings.Replace(admin, "carol = \""+carolAcc+"\"   # mapped by the admin\n", "", 1) {
		t.Errorf("unpairing carol did not remove exactly her line from latch.toml:\n%s", got)
	}
	cfg = f.load(t)
	if _, ok := cfg.Account("bob"); ok {
		t.Error("bob is still mapped")
	}
	if got := f.Latch.Accounts(appID); slices.Contains(got, accounts[1]) || slices.Contains(got, carolAcc) ||
		!slices.Contains(got, accounts[0]) || !slices.Contains(got, accounts[2]) {
		t.Errorf("Latch still pairs %q; want alice's and dave's only", got)
	}
}

// Without pairing_file, pair writes into the default drop-in, created
// root-only, and leaves latch.toml as it was; a user already mapped in a
// drop-in is refused by pair (and named by file).
func TestPairDropInDefaultsAndDuplicates(t *testing.T) {
	f := newFixture(t, options{policy: "# no pairing_file"})
	admin, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(f.path)
	if err := os.Mkdir(filepath.Join(dir, users.DropInDirName), 0o755); err != nil {
		t.Fatal(err)
	}
	bobAcc := f.account(t)
	drop := filepath.Join(dir, users.DropInDirName, "20-hand.toml")
	if err := os.WriteFile(drop, []byte("[users]\nbob = \""+bobAcc+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	paired := filepath.Join(dir, users.DefaultPairingFile)
	if cfg := f.load(t); cfg.UserSources["alice"].File != paired {
		t.Errorf("without pairing_file alice went to %v, want %s", cfg.UserSources["alice"], paired)
	}
	if fi, err := os.Stat(paired); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the default pairing file: %v, %v; want mode 0600", fi, err)
	}
	if got, _ := os.ReadFile(f.path); string(got) != string(admin) {
		t.Errorf("pairing alice changed latch.toml:\n%s", got)
	}
	before, _ := os.ReadFile(drop)
	_, err = f.m.Pair(context.Background(), "bob", f.Latch.IssuePairingToken(appID))
	if err == nil || !strings.Contains(err.Error(), "already paired") {
		t.Errorf("pairing bob again: %v", err)
	}
	if _, err := f.m.Unpair(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(drop); string(after) != strings.Replace(string(before), "bob = \""+bobAcc+"\"\n", "", 1) {
		t.Errorf("unpairing bob: %s is\n%s", drop, after)
	}
	if got, _ := os.ReadFile(f.path); strings.Contains(string(got), bobAcc) {
		t.Errorf("latch.toml mentions bob's account:\n%s", got)
	}
}

// A user mapped in latch.toml while Latch was pairing them into the
// pairing file (configuration management's run racing latch-ssh pair):
// the configuration would map them twice and deny every login, so the new
// line is taken out again and the Latch pairing undone.
func TestPairRacingAnotherFileIsUndone(t *testing.T) {
	f := newFixture(t, options{policy: `pairing_file = "latch.d/50-paired.toml"`})
	adminAcc := f.account(t)
	f.m.Hostname = func() (string, error) {
		// Between the load and the Latch call.
		f.write(t, options{policy: `pairing_file = "latch.d/50-paired.toml"`, users: userLine("alice", adminAcc)})
		return "testhost", nil
	}
	_, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if err == nil || !strings.Contains(err.Error(), "is mapped in both") || !strings.Contains(err.Error(), "undone") {
		t.Fatalf("Pair = %v, want the double mapping named and the pairing undone", err)
	}
	cfg := f.load(t)
	if acc, _ := cfg.Account("alice"); acc != adminAcc || cfg.UserSources["alice"].File != f.path {
		t.Errorf("alice maps to %q at %v, want the admin's line", acc, cfg.UserSources["alice"])
	}
	if got := f.Latch.Accounts(appID); len(got) != 1 || got[0] != adminAcc {
		t.Errorf("Latch pairs %q, want only the admin's account", got)
	}
}
