package daemon

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecurityNewUIDSeenAtOnce (issue 15): the daemon reuses NSS's answers
// about [users] names for up to gate.AccountMemoTTL (one lookup per name
// per second instead of per decision), but a change of /etc/passwd must be
// seen by the very next decision. Here a [users] name with a closed latch
// does not exist yet, so bob (not in [users]) gets in as unpaired; then
// `useradd -o -u <bob's uid>` gives bob's uid that name, and bob's next
// login, a moment later, must follow its latch (the uid rule, issue 12).
func TestSecurityNewUIDSeenAtOnce(t *testing.T) {
	f := newFixture(t)
	bob := systest.CreateUser(t, systest.UserOptions{})
	ghost := fmt.Sprintf("ltm%09d", rand.IntN(1_000_000_000))
	account := f.pair(t)
	f.SetLatch(account, false)
	f.writeConfig(t, f.configText(conf{users: map[string]string{ghost: account}}))
	f.start(t, func(o *Options) { o.NoWatch = true })
	if got := f.decide(t, bob); got != "allow" {
		t.Fatalf("before %s exists, bob is unpaired (allow): %q", ghost, got)
	}
	systest.CreateUser(t, systest.UserOptions{Name: ghost, UID: bob.UID})
	if got := f.decide(t, bob); got != closedMessage {
		t.Fatalf("right after useradd -o -u %d %s (closed latch): %q, want %q", bob.UID, ghost, got, closedMessage)
	}
}
