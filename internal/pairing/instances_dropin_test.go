package pairing_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/users"
)

// With drop-ins, configuration management owns latch.toml
// (account lines included); instances go to the pairing file, and
// rewriting latch.toml keeps them.
func TestInstancesInPairingFileSurviveRewrite(t *testing.T) {
	f := newFixture(t, options{})
	bobAcc := f.account(t)
	text := f.LatchTable() + "instance = \"host\"\n[policy]\nfail_mode = \"closed\"\npairing_file = \"latch.d/50-paired.toml\"\n\n[operations]\nsshd = \"" + opSSHD + "\"\n\n[users]\nbob = \"" + bobAcc + "\"\n"
	cmWrite(t, f.path, text)
	ctx := context.Background()
	if _, err := f.m.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Repair(ctx, ""); err != nil {
		t.Fatal(err)
	}
	paired := filepath.Join(filepath.Dir(f.path), users.DropInDirName, "50-paired.toml")
	got, _ := os.ReadFile(paired)
	if !strings.Contains(string(got), "[instances]\nalice = { account = ") || !strings.Contains(string(got), "bob = { account = \""+bobAcc+"\", app = ") {
		t.Fatalf("pairing file:\n%s", got)
	}
	cmWrite(t, f.path, text)
	cfg := f.load(t)
	if cfg.MissingInstances("alice") != nil || cfg.MissingInstances("bob") != nil {
		t.Fatalf("after a CM run: %+v", cfg.Instances)
	}
	id, _ := cfg.Instance("bob", "")
	f.Latch.RemoveInstance(id)
	if _, err := f.m.Repair(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.path); string(b) != text {
		t.Fatalf("main file touched:\n%s", b)
	}
	if _, err := f.m.Unpair(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(paired); strings.Contains(string(got), "alice") || !strings.Contains(string(got), "bob = { account = \""+bobAcc+"\", app = ") {
		t.Fatalf("after unpair:\n%s", got)
	}
}
