package gate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/users"
)

// countingAccounts is an NSS stand-in that counts its lookups per name.
type countingAccounts struct {
	uids  map[string]int // -1: NSS fails
	calls map[string]int
}

func (c *countingAccounts) LookupAccount(name string) (UserAccount, error) {
	c.calls[name]++
	uid, ok := c.uids[name]
	switch {
	case !ok:
		return UserAccount{}, fmt.Errorf("user %q: %w", name, ErrNoAccount)
	case uid < 0:
		return UserAccount{}, errors.New("NSS is down")
	}
	return UserAccount{Name: name, UID: uint32(uid)}, nil
}

// memoWorld is a memo over look whose "NSS files" are two temporary files
// the test can change, and whose clock the test moves.
type memoWorld struct {
	look  *countingAccounts
	memo  *accountMemo
	files []string
	now   time.Time
}

func newMemoWorld(t *testing.T, uids map[string]int) *memoWorld {
	dir := t.TempDir()
	w := &memoWorld{look: &countingAccounts{uids: uids, calls: map[string]int{}}, now: time.Unix(1_700_000_000, 0)}
	for _, name := range []string{"passwd", "nsswitch.conf"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		w.files = append(w.files, p)
	}
	w.memo = newAccountMemo(w.look)
	w.memo.files = w.files
	w.memo.now = func() time.Time { return w.now }
	return w
}

// replace puts a new file at path, as useradd and vipw do (rename over).
func (w *memoWorld) replace(t *testing.T, path string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (w *memoWorld) core() *Core {
	return &Core{Config: &users.Config{Users: map[string]string{"alice": "ACC-A", "bob": "ACC-B", "carol": "ACC-C"}}, memo: w.memo}
}

// TestResolveReusesUsersLookups (issue 15): a daemon's decisions look up
// the [users] names once per window, not once per decision; the login
// name is looked up every time.
func TestResolveReusesUsersLookups(t *testing.T) {
	w := newMemoWorld(t, map[string]int{"alice": 1001, "bob": 1002, "carol": 1003, "dave": 1004})
	c := w.core()
	for range 5 {
		s, d := c.resolve("dave", "sshd")
		if d != nil || s.mapped {
			t.Fatalf("resolve(dave) = %+v, %+v; want unmapped, no refusal", s, d)
		}
	}
	if got := w.look.calls["dave"]; got != 5 {
		t.Errorf("the login name was looked up %d times in 5 decisions, want 5 (never memoized)", got)
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		if got := w.look.calls[name]; got != 1 {
			t.Errorf("[users] %s looked up %d times in 5 decisions of one window, want 1", name, got)
		}
	}
	// A Core with its own Accounts (tests, other back ends) is not memoized.
	c.Accounts = w.look
	c.resolve("dave", "sshd")
	if got := w.look.calls["alice"]; got != 2 {
		t.Errorf("with Accounts set, [users] alice looked up %d times in all, want 2", got)
	}
}

// TestSecurityAccountMemoSeesChanges (issue 15): the memo must not make
// the uid rule decide by a stale map. A changed NSS file drops every
// answer at once, no answer outlives AccountMemoTTL, and NSS failures are
// never reused (they deny, and must be asked again).
func TestSecurityAccountMemoSeesChanges(t *testing.T) {
	uids := map[string]int{"alice": 1001, "bob": 1002, "carol": 1003, "alias": 1009}
	w := newMemoWorld(t, uids)
	c := w.core()
	if s, d := c.resolve("alias", "sshd"); d != nil || s.mapped {
		t.Fatalf("before the change: resolve(alias) = %+v, %+v; want unmapped", s, d)
	}
	// usermod -o -u 1009 alice: /etc/passwd is replaced. The very next
	// decision for alias must follow alice's latch.
	uids["alice"] = 1009
	w.replace(t, w.files[0])
	if s, d := c.resolve("alias", "sshd"); d != nil || !s.mapped || s.name != "alice" {
		t.Fatalf("after /etc/passwd changed: resolve(alias) = %+v, %+v; want alice's latch", s, d)
	}
	// A change NSS reports without a file changing (LDAP, SSSD) is seen
	// once the window ends.
	uids["alice"] = 1001
	if s, _ := c.resolve("alias", "sshd"); !s.mapped {
		t.Fatalf("inside the window the memo should still answer (the test's premise): %+v", s)
	}
	w.now = w.now.Add(AccountMemoTTL)
	if s, d := c.resolve("alias", "sshd"); d != nil || s.mapped {
		t.Fatalf("after AccountMemoTTL: resolve(alias) = %+v, %+v; want unmapped", s, d)
	}
	// An edit of nsswitch.conf drops the answers too.
	before := w.look.calls["bob"]
	w.replace(t, w.files[1])
	c.resolve("alias", "sshd")
	if w.look.calls["bob"] != before+1 {
		t.Errorf("after nsswitch.conf changed, bob was not looked up again")
	}
	// NSS failures are asked again every time, and deny.
	uids["carol"] = -1
	w.now = w.now.Add(AccountMemoTTL)
	for range 2 {
		if _, d := c.resolve("alias", "sshd"); d == nil || d.Outcome != Deny {
			t.Fatalf("with NSS failing for carol: %+v, want deny", d)
		}
	}
	if got := w.look.calls["carol"]; got < 2+2 {
		t.Errorf("carol looked up %d times; the failures must not be memoized", got)
	}
	// Files that cannot be stat'ed: nothing reused.
	w.memo.files = []string{filepath.Join(t.TempDir(), "missing")}
	uids["carol"] = 1003
	before = w.look.calls["bob"]
	c.resolve("alias", "sshd")
	c.resolve("alias", "sshd")
	if got := w.look.calls["bob"] - before; got != 2 {
		t.Errorf("with the NSS files missing, bob looked up %d times in 2 decisions, want 2", got)
	}
}
