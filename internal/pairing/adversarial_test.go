package pairing_test

// Pairing on a bad day (issue 8): each test is one fault, named after it,
// with what would happen without the defence it proves.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
)

// TestAttackDiskFullWhilePairing: the file system holding latch.toml is
// full when a person pairs. Without writing the new version to a
// temporary file and renaming it only once it is whole (and undoing the
// Latch pairing when that fails), a full disk would leave latch.toml
// truncated or empty (every login then denied: google-authenticator's
// zero-byte files), or a Latch pairing no line points to. With it the
// configuration is byte for byte what it was, no temporary file is left,
// Latch no longer pairs the account, logins are still decided from the
// file (the login path never writes it), and pairing works once there is
// room again.
func TestAttackDiskFullWhilePairing(t *testing.T) {
	f := newFixture(t, options{})
	etc := filepath.Join(f.Dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", etc, "tmpfs", 0, "size=256k,mode=0755"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); users' TestEditFailureLeavesFileIntact covers a failed write", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(etc, 0); err != nil {
			t.Errorf("unmount %s: %v", etc, err)
		}
	})
	before := f.read(t)
	f.path = filepath.Join(etc, "latch.toml")
	if err := os.WriteFile(f.path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	f.m.ConfigPath = f.path
	filler := filepath.Join(etc, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := fill.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	fill.Close()

	_, err = f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if err == nil {
		t.Fatal("Pair succeeded on a full disk")
	}
	if !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "undone") {
		t.Errorf("err = %q; want the disk full and the pairing undone", err)
	}
	checkText(t, "the error", err.Error())
	if got := f.read(t); got != before {
		t.Fatalf("the configuration changed on a full disk:\n%s", got)
	}
	ents, _ := os.ReadDir(etc)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %q, want latch.toml and the filler", etc, names)
	}
	if got := f.Latch.Accounts(appID); len(got) != 0 {
		t.Errorf("Latch still pairs %v", got)
	}

	// Logins are decided from the file all along.
	core := gate.LoadCore(f.path, nil)
	defer core.Close()
	if d := core.Decide(context.Background(), gate.Request{User: "root", Service: "sshd"}); !d.Allowed() {
		t.Errorf("a login on the full disk: %+v (root, an account not in [users], unpaired = allow)", d)
	}

	// Room again: the same pairing works.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatalf("Pair with room again: %v", err)
	}
	if acc, ok := f.load(t).Account("alice"); !ok || len(f.Latch.Accounts(appID)) != 1 || f.Latch.Accounts(appID)[0] != acc {
		t.Errorf("after pairing again: [users] alice = %q, Latch pairs %v", acc, f.Latch.Accounts(appID))
	}
}
