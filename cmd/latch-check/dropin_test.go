package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestRealPAMReadsDropIns: the hook, run by pam_exec under pamtester,
// decides with latch.toml and its drop-ins merged: a user mapped only in
// the pairing drop-in follows their latch, and a drop-in that maps a user
// latch.toml maps too makes the configuration invalid, which denies.
func TestRealPAMReadsDropIns(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	alice := systest.CreateUser(t, systest.UserOptions{})
	bob := systest.CreateUser(t, systest.UserOptions{})
	cfg := f.config(t, "fail_mode = \"closed\"\npairing_file = \"latch.d/50-paired.toml\"", map[string]string{bob.Name: acc})
	dir := filepath.Join(filepath.Dir(cfg), "latch.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("50-paired.toml", "[users]\n"+alice.Name+" = \""+acc+"\"\n")
	service := "latch-dropin-" + alice.Name
	writeHookService(t, service, hookLine(f.bin, cfg, true))
	login := func(what string, want int) {
		t.Helper()
		if code, out := systest.PAMTester(t, service, alice.Name, "acct_mgmt"); (code == 0) != (want == 0) {
			t.Errorf("%s: pamtester exit %d, want success=%v\n%s", what, code, want == 0, out)
		}
	}
	f.SetLatch(acc, false)
	login("closed latch, alice mapped in the drop-in", 1)
	f.SetLatch(acc, true)
	login("open latch", 0)
	write("60-dup.toml", "[users]\n"+bob.Name+" = \""+acc+"\"\n")
	login("bob mapped in latch.toml and a drop-in", 1)
	if err := os.Rename(filepath.Join(dir, "60-dup.toml"), filepath.Join(dir, "60-dup.toml.dpkg-old")); err != nil {
		t.Fatal(err)
	}
	login("the duplicate renamed to a name that is not read", 0)
}
