package pairing_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
)

// TestSecuritySelfServiceCannotMoveALatch (issue 12, item 2): someone with
// a shell in a paired account must not be able to move its latch to their
// own phone through self-service, under unpaired = "deny" as much as under
// "allow": not by unpairing (which would also remove the owner's pairing
// at Latch), not by pairing over the existing line, not by the two in a
// row. A user with no line can still pair themselves, and root can still
// change anything.
func TestSecuritySelfServiceCannotMoveALatch(t *testing.T) {
	for _, unpaired := range []string{"deny", "allow"} {
		t.Run("unpaired="+unpaired, func(t *testing.T) {
			f := newFixture(t, options{policy: "allow_self_pairing = true\nunpaired = \"" + unpaired + "\""})
			owner := f.account(t)
			f.write(t, options{policy: "allow_self_pairing = true\nunpaired = \"" + unpaired + "\"", users: userLine("alice", owner)})
			ss := pairing.SelfService{Manager: f.m}
			ctx := context.Background()
			before := f.read(t)
			f.Latch.ResetRequests()

			// The intruder's own phone generates a code.
			intruderToken := f.Latch.IssuePairingToken(appID)
			for i := range 2 { // twice: a refusal must not open the way for the next try
				resp := ss.Unpair(ctx, "alice")
				if resp.OK || !strings.Contains(resp.Message, "only root can change or remove a pairing") {
					t.Errorf("try %d: self-service unpair of a paired user: %+v, want refused", i, resp)
				}
				resp = ss.Pair(ctx, "alice", intruderToken)
				if resp.OK || !strings.Contains(resp.Message, "already paired") || !strings.Contains(resp.Message, "only root can change") {
					t.Errorf("try %d: self-service pair over an existing pairing: %+v, want refused", i, resp)
				}
			}
			if got := f.read(t); got != before {
				t.Errorf("the configuration changed:\n%s", got)
			}
			if acc, _ := f.load(t).Account("alice"); acc != owner {
				t.Errorf("alice maps to %s, want the owner's %s", acc, owner)
			}
			// Latch was never called: the owner's pairing is intact and the
			// intruder's code was not used.
			f.noRequests(t)
			if accs := f.Latch.Accounts(appID); !slices.Equal(accs, []string{owner}) {
				t.Errorf("Latch pairs %v, want only the owner's %s", accs, owner)
			}

			// A user who was never paired can still pair themselves.
			resp := ss.Pair(ctx, "bob", f.Latch.IssuePairingToken(appID))
			if !resp.OK {
				t.Fatalf("first self-service pairing of bob: %+v", resp)
			}
			if _, ok := f.load(t).Account("bob"); !ok {
				t.Error("bob is not in [users] after a first pairing")
			}

			// Root changes pairings: unpairing alice opens her account to a
			// new first pairing (a new phone).
			if _, err := f.m.Unpair(ctx, "alice"); err != nil {
				t.Fatalf("root unpair: %v", err)
			}
			if resp := ss.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID)); !resp.OK {
				t.Errorf("self-service pairing after root's unpair: %+v", resp)
			}
		})
	}
}

// TestSecuritySelfServiceAliasOfPairedUID (issue 12 re-check, items 2 and
// 5): the latch follows the uid, so a name whose uid is already paired
// under another name (an alias from `useradd -o`, a shared LDAP uid) is
// paired already. Self-service used to check the name only: someone with a
// foothold in the account, whose uid the daemon resolves to the unpaired
// name, added a second line with their own phone's account, and the gate
// then denied every login of the uid as a misconfiguration (the owner
// locked out, a line of the intruder's in [users]). Refused now, without a
// call to Latch; root may still do it.
func TestSecuritySelfServiceAliasOfPairedUID(t *testing.T) {
	const policy = "allow_self_pairing = true\nunpaired = \"deny\""
	f := newFixture(t, options{policy: policy})
	owner := f.account(t)
	// "carolalias" has carol's uid (fakeUsers); the admin paired the alias.
	f.write(t, options{policy: policy, users: userLine("carolalias", owner)})
	ss := pairing.SelfService{Manager: f.m}
	before := f.read(t)
	f.Latch.ResetRequests()
	resp := ss.Pair(context.Background(), "carol", f.Latch.IssuePairingToken(appID))
	if resp.OK || !strings.Contains(resp.Message, "already paired") || !strings.Contains(resp.Message, "carolalias") {
		t.Errorf("self-service pairing of a name whose uid is paired: %+v, want refused", resp)
	}
	if got := f.read(t); got != before {
		t.Errorf("the configuration changed:\n%s", got)
	}
	f.noRequests(t)
	// Another uid is still free to pair itself.
	if resp := ss.Pair(context.Background(), "dave", f.Latch.IssuePairingToken(appID)); !resp.OK {
		t.Errorf("first self-service pairing of dave: %+v", resp)
	}
}
