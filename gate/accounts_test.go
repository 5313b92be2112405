package gate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
)

// TestSecuritySharedUIDFollowsLatch (issue 12, item 5): `useradd -o -u
// <alice's uid> alias` gives alice's account a second name that is not in
// [users]. Deciding by name let "alias" in under unpaired = "allow" while
// alice's latch was closed. The latch follows the uid: every front end asks
// Decide, and Decide resolves the name through NSS first.
func TestSecuritySharedUIDFollowsLatch(t *testing.T) {
	type want struct {
		outcome gate.Outcome
		reason  string // substring
		sev     gate.Severity
		calls   int
	}
	for _, tc := range []struct {
		name     string
		policy   string
		accounts fakeAccounts
		users    map[string]string // more [users] names: "" = alice's account, "other" = a second account
		latchOn  bool
		login    string
		want     want
	}{
		{name: "alias of alice, latch closed", policy: `unpaired = "allow"`, login: "alias",
			want: want{gate.Deny, "latch closed", gate.Info, 1}},
		{name: "alias of alice, latch open", policy: `unpaired = "allow"`, latchOn: true, login: "alias",
			want: want{gate.Allow, "latch open", gate.Info, 1}},
		{name: "alias of alice, unpaired deny, latch open", policy: `unpaired = "deny"`, latchOn: true, login: "alias",
			want: want{gate.Allow, "whose latch is alice's", gate.Info, 1}},
		{name: "alice herself, latch closed", policy: `unpaired = "allow"`, login: "alice",
			want: want{gate.Deny, "latch closed", gate.Info, 1}},
		{name: "unrelated unmapped user", policy: `unpaired = "allow"`, login: "bob",
			want: want{gate.Allow, "unpaired = allow", gate.Info, 0}},
		{name: "name NSS does not know, unpaired allow", policy: `unpaired = "allow"`, login: "ghost",
			want: want{gate.Deny, "no such account", gate.Warning, 0}},
		{name: "mapped name NSS does not know decides as given", policy: `unpaired = "allow"`, login: "alice",
			accounts: fakeAccounts{"bob": 1002}, latchOn: true, want: want{gate.Allow, "latch open", gate.Info, 1}},
		{name: "NSS fails for the login", policy: `unpaired = "allow"`, login: "broken",
			want: want{gate.Deny, "account lookup failed", gate.Warning, 0}},
		{name: "NSS fails for a mapped name", policy: `unpaired = "allow"`, login: "bob",
			users: map[string]string{"broken": "other"}, want: want{gate.Deny, "cannot be told", gate.Warning, 0}},
		{name: "two mapped names, one uid, different accounts", policy: `unpaired = "allow"`, latchOn: true, login: "alias",
			users: map[string]string{"alias": "other"}, want: want{gate.Deny, "several names", gate.Error, 0}},
		{name: "two mapped names, one uid, same account", policy: `unpaired = "allow"`, login: "alias",
			users: map[string]string{"alias": ""}, want: want{gate.Deny, "latch closed", gate.Info, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "open", tc.policy)
			w.core.Accounts = fakeAccounts{"alice": 1001, "alias": 1001, "bob": 1002, "broken": -1}
			if tc.accounts != nil {
				w.core.Accounts = tc.accounts
			}
			other := w.Latch.PairedAccount(appID)
			for name, acc := range tc.users {
				if acc == "" {
					acc = w.account
				} else {
					acc = other
				}
				w.core.Config.Users[name] = acc
			}
			w.Latch.SetLatch(w.account, appID, tc.latchOn)
			d := w.core.Decide(context.Background(), gate.Request{User: tc.login, Service: "sshd"})
			if d.Outcome != tc.want.outcome || !strings.Contains(d.Reason, tc.want.reason) || d.Severity != tc.want.sev {
				t.Fatalf("decision %v %v %q, want %v %v containing %q", d.Outcome, d.Severity, d.Reason, tc.want.outcome, tc.want.sev, tc.want.reason)
			}
			if n := len(w.Latch.Requests()); n != tc.want.calls {
				t.Fatalf("%d Latch calls, want %d", n, tc.want.calls)
			}
			if tc.want.reason == "latch closed" && !strings.Contains(d.Message(), "your latch is closed") {
				t.Fatalf("refusal message %q does not say the latch is closed", d.Message())
			}
			// Live sessions follow the same rule.
			r := w.core.Recheck(context.Background(), tc.login, "sshd")
			if tc.want.reason == "latch closed" && r.Verdict != gate.End {
				t.Fatalf("recheck of %s with the latch closed: %v (%s)", tc.login, r.Verdict, r.Reason)
			}
		})
	}
}
