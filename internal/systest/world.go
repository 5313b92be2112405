package systest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// AppID and Secret are the Latch application every World's fake Latch
// knows and every configuration it writes uses: one pair for all tests, so
// no test file keeps its own copy.
const (
	AppID  = "APPIDAPPIDAPPIDAPPID"
	Secret = "SECRETSECRETSECRETSECRETSECRETSECRET1234"
)

// OfflineLatch is the [latch] table of a configuration that a test parses
// or inspects but that never reaches Latch (check-config's offline
// checks): AppID, Secret and the default api_url, three lines with no
// blank line after them, so tests that count lines can rely on it.
const OfflineLatch = "[latch]\napp_id = \"" + AppID + "\"\nsecret = \"" + Secret + "\"\n"

// WorldOptions configures NewWorld. The zero value is a fine default.
type WorldOptions struct {
	// Timeout is the [latch] timeout the configurations carry; default
	// "3s".
	Timeout string
	// Fake are options for the fake Latch (latchtest.WithClock, ...).
	Fake []latchtest.Option
	// InMemory keeps the World off the disk: no SecureDir, no CA file,
	// so no root needed. Dir and CAFile stay empty, WriteConfig and
	// WriteFile fail the test, ConfigText leaves ca_file out; the test
	// parses the text itself (users.Parse) and trusts Latch.CertPool().
	// For unit tests of the decision core.
	InMemory bool
}

// World is what a test of a login front end starts from: a strict fake
// Latch with the application AppID/Secret, a directory whose
// configurations pass latch-ssh's permission checks, the fake's CA there,
// and the pairings made through it. Build it with NewWorld; it needs root
// (the directory is a SecureDir in /var/lib).
type World struct {
	// Latch is the fake Latch; the helpers below cover the usual calls,
	// Latch itself the rest (faults, requests).
	Latch *latchtest.Server
	// Dir is the SecureDir that WriteConfig writes into.
	Dir string
	// CAFile is the fake's CA certificate, in Dir.
	CAFile string

	timeout string
	mu      sync.Mutex
	paired  map[string]string // local user -> account, made by PairUser
	seq     atomic.Int64      // names WriteConfig's files
}

// NewWorld starts the fake Latch and prepares the directory.
func NewWorld(t testing.TB, o WorldOptions) *World {
	t.Helper()
	w := &World{timeout: o.Timeout, paired: map[string]string{}}
	if w.timeout == "" {
		w.timeout = "3s"
	}
	if o.InMemory {
		w.Latch = latchtest.New(t, o.Fake...)
		w.Latch.AddApp(AppID, Secret)
		return w
	}
	w.Latch, w.Dir, w.CAFile = FakeLatch(t, AppID, Secret, o.Fake...)
	return w
}

// Pair pairs a new Latch account with the application and returns its id.
func (w *World) Pair() string { return w.Latch.PairedAccount(AppID) }

// PairUser creates a real local user (CreateUser) paired with a new
// account, remembered for Paired.
func (w *World) PairUser(t testing.TB, o UserOptions) (*User, string) {
	t.Helper()
	u := CreateUser(t, o)
	acc := w.Pair()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paired[u.Name] = acc
	return u, acc
}

// Paired returns a copy of the pairings PairUser made: local user ->
// account, ready for Config.Users.
func (w *World) Paired() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]string, len(w.paired))
	for u, a := range w.paired {
		m[u] = a
	}
	return m
}

// SetLatch opens or closes account's latch for the application.
func (w *World) SetLatch(account string, open bool) { w.Latch.SetLatch(account, AppID, open) }

// SetTwoFactor turns the application's one-time code on or off.
func (w *World) SetTwoFactor(on bool) { w.Latch.SetTwoFactor(AppID, on) }

// TwoFactorCode returns the one-time code Latch last sent account ("" if
// none), as the person would read it in the app.
func (w *World) TwoFactorCode(account string) string {
	tok, _ := w.Latch.LastTwoFactorToken(account, AppID)
	return tok
}

// LastStatus returns the last status request the fake received, failing
// the test when there was none.
func (w *World) LastStatus(t testing.TB) latchtest.Request {
	t.Helper()
	reqs := w.Latch.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.Contains(reqs[i].Path, "/status/") {
			return reqs[i]
		}
	}
	t.Fatal("the fake Latch received no status request")
	return latchtest.Request{}
}

// Config is the content of a latch.toml written by a World.
type Config struct {
	// Policy holds the lines of [policy] (fail_mode, unpaired, ...).
	Policy string
	// NoCAFile leaves ca_file out of [latch]: the fake is then trusted
	// only if the system roots trust it (they must not).
	NoCAFile bool
	// Tables is written between [policy] and [users]: [server],
	// [daemon], [operations] tables.
	Tables string
	// Users are the lines of [users]: local user -> account id, written
	// in name order.
	Users map[string]string
}

// LatchTable returns the [latch] table of ConfigText, for a test that
// lays out the rest of its file itself (comments, odd orders): the fake's
// URL, AppID, Secret, the World's timeout and CAFile (left out when the
// World is InMemory), ending in a blank line.
func (w *World) LatchTable() string {
	latch := LatchTable(w.Latch, AppID, Secret, w.CAFile, w.timeout)
	if w.CAFile == "" {
		latch = strings.Replace(latch, "ca_file = \"\"\n", "", 1)
	}
	return latch
}

// ConfigText returns the latch.toml for c: [latch] pointing at the fake
// with the World's timeout, then [policy], c.Tables and [users].
func (w *World) ConfigText(c Config) string {
	var b strings.Builder
	latch := w.LatchTable()
	if c.NoCAFile && w.CAFile != "" {
		latch = strings.Replace(latch, fmt.Sprintf("ca_file = %q\n", w.CAFile), "", 1)
	}
	b.WriteString(latch)
	fmt.Fprintf(&b, "[policy]\n%s\n\n", c.Policy)
	if c.Tables != "" {
		fmt.Fprintf(&b, "%s\n\n", c.Tables)
	}
	b.WriteString("[users]\n")
	names := make([]string, 0, len(c.Users))
	for u := range c.Users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		fmt.Fprintf(&b, "%s = %q\n", u, c.Users[u])
	}
	return b.String()
}

// WriteConfig writes ConfigText(c) to a new root-owned 0600 file in Dir,
// as latch-ssh's permission checks want it, and returns its path.
func (w *World) WriteConfig(t testing.TB, c Config) string {
	t.Helper()
	return w.WriteFile(t, fmt.Sprintf("latch-%d.toml", w.seq.Add(1)), w.ConfigText(c))
}

// WriteFile writes text to Dir/name, root-owned and 0600, and returns its
// path. It replaces the file whole (a temporary file renamed over it), so
// a daemon reloading it never reads half a file: tests that rewrite one
// configuration in place (reloads, pairing edits) use it with a fixed
// name.
func (w *World) WriteFile(t testing.TB, name, text string) string {
	t.Helper()
	if w.Dir == "" {
		t.Fatal("systest: an InMemory World writes no files")
	}
	p := filepath.Join(w.Dir, name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatalf("systest: %v", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatalf("systest: %v", err)
	}
	return p
}

// UsersFor maps each of users to account, for Config.Users.
func UsersFor(account string, users ...string) map[string]string {
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[u] = account
	}
	return m
}
