package gate

import (
	"errors"
	"os"
	"sync"
	"time"
)

// The uid rule (resolve) looks up every [users] name through NSS on each
// decision, to learn whether it shares the login's uid. With glibc's
// "files" back end each lookup opens, reads and parses /etc/passwd: on a
// daemon whose [users] has a dozen names that was more than half of the CPU
// a warm decision costs (issue 15, BenchmarkAskDecision in internal/daemon).
// A daemon built by LoadCore therefore reuses those answers briefly:
//
//   - an answer is reused for at most AccountMemoTTL after the first lookup
//     of its window; then every answer is looked up again;
//   - none survives a change of /etc/passwd or /etc/nsswitch.conf (another
//     file at the path, another size or modification time): useradd,
//     usermod -u, userdel (which replace the file), vipw and an edit of the
//     NSS order are seen by the next decision;
//   - only found accounts and "no such account" are kept: an NSS failure is
//     asked again (and denies) every time;
//   - the login name itself is never memoized: it is looked up on every
//     decision, so the memo holds at most the [users] names, and a
//     client typing a million names cannot grow it;
//   - a reload builds a new Core, so a new configuration starts empty.
//
// So a uid changed in a network back end (LDAP, SSSD) reaches decisions
// within AccountMemoTTL of when this host's NSS reports it; SSSD's own cache
// (entry_cache_timeout, 90 minutes by default) is the larger bound there.
// When the files cannot be stat'ed, nothing is reused.

// AccountMemoTTL bounds how long the daemon reuses NSS's answer about a
// [users] name (see accountmemo.go).
const AccountMemoTTL = time.Second

// accountMemo reuses LookupAccount answers for [users] names.
type accountMemo struct {
	// base answers what the memo does not hold (NSSAccounts in a daemon).
	base AccountLookup
	// files are stat'ed on every lookup: a change drops every answer.
	files []string
	now   func() time.Time
	ttl   time.Duration

	mu      sync.Mutex
	stamp   []os.FileInfo
	gen     uint64
	expires time.Time
	entries map[string]memoEntry
}

type memoEntry struct {
	acct UserAccount
	err  error // nil or wrapping ErrNoAccount
}

// newAccountMemo memoizes base, keyed by the NSS files.
func newAccountMemo(base AccountLookup) *accountMemo {
	return &accountMemo{base: base, files: []string{"/etc/passwd", "/etc/nsswitch.conf"}, now: time.Now, ttl: AccountMemoTTL}
}

// LookupAccount answers like base, from the memo when the window is open
// and the NSS files have not changed.
func (m *accountMemo) LookupAccount(name string) (UserAccount, error) {
	stamp, ok := statAll(m.files)
	if !ok {
		return m.base.LookupAccount(name)
	}
	now := m.now()
	m.mu.Lock()
	if !sameFiles(stamp, m.stamp) || !now.Before(m.expires) {
		m.stamp, m.expires, m.entries = stamp, now.Add(m.ttl), map[string]memoEntry{}
		m.gen++
	}
	gen := m.gen
	e, hit := m.entries[name]
	m.mu.Unlock()
	if hit {
		return e.acct, e.err
	}
	// The files were stat'ed before this lookup: if they change while it
	// runs, the next lookup sees the change and drops the answer.
	a, err := m.base.LookupAccount(name)
	if err == nil || errors.Is(err, ErrNoAccount) {
		m.mu.Lock()
		if m.gen == gen {
			m.entries[name] = memoEntry{acct: a, err: err}
		}
		m.mu.Unlock()
	}
	return a, err
}

// statAll stats files; false when one cannot be stat'ed.
func statAll(files []string) ([]os.FileInfo, bool) {
	out := make([]os.FileInfo, len(files))
	for i, path := range files {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, false
		}
		out[i] = fi
	}
	return out, true
}

// sameFiles reports whether a and b describe the same files unchanged:
// the same file at each path (device and inode), same size, same
// modification time.
func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) {
			return false
		}
	}
	return true
}
