package sshserver

import (
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestSecuritySharedUIDAlias (issue 12, item 5): alias is a second name of
// alice's uid (useradd -o), not in [users]. With unpaired = "allow" the
// embedded server let alias in, as alice's uid, while alice's latch was
// closed; the decision core now resolves the name to its uid, and alice's
// latch decides.
func TestSecuritySharedUIDAlias(t *testing.T) {
	f := newFixture(t)
	alice, acc := f.user(t, systest.UserOptions{})
	alias := systest.CreateUser(t, systest.UserOptions{UID: alice.UID})
	f.start(t, nil)
	// The fixture runs with unpaired = "deny"; the bypass needs "allow".
	cfg := f.config(t)
	cfg.Policy.Unpaired = users.UnpairedAllow
	client, err := gate.NewLatchClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if old := f.core.Swap(&gate.Core{Config: cfg, Latch: client, Groups: gate.NSSGroups{}, Audit: gate.NewWriterAudit(f.audit)}); old != nil {
		old.Close()
	}

	f.latch.SetLatch(acc, appID, false)
	if r := f.dial(t, alias.Name, gossh.PublicKeys(alias.Signer)); r.err == nil {
		t.Fatalf("%s (uid %d, alice's) logged in with alice's latch closed", alias.Name, alias.UID)
	}
	f.latch.SetLatch(acc, appID, true)
	if r := f.dial(t, alias.Name, gossh.PublicKeys(alias.Signer)); r.err != nil {
		t.Fatalf("%s with alice's latch open: %v", alias.Name, r.err)
	}
}
