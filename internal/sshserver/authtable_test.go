package sshserver

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/authkeys"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

// This file runs the authentication state machine in memory: a fake
// directory behind the seams of backend.go (and behind the gate's account
// and group lookups), the fake Latch, a real server on loopback TCP and
// the x/crypto client. It needs neither root nor real users, so it runs
// everywhere `go test` does; the real-user tests (TestAuthFlow,
// TestRealUsersAccountStates, ...) stay, for what only real users show.
//
// To test a new rule of the authentication, add a row to TestAuthTable:
// what the world looks like (arrange, policy, server, opts), what the
// client does (login), and what must come out of it (want).

// Accounts of the fake directory; every row starts with these.
const (
	tblAlice = "alice"
	tblBob   = "bob"
	tblCarol = "carol" // has an account and a key, but no [users] line
)

// dirEntry is one account of the fake directory.
type dirEntry struct {
	name string // the account's own name (case-insensitive directories)
	uid  uint32
	// keys is the account's authorized_keys text.
	keys string
	// groups are the account's group names, for exempt_groups.
	groups []string
	// warning and refuse are what the account rule says (see
	// spawn.CheckLogin): a warning for a login that goes on, or a refusal.
	warning string
	refuse  error
}

// directory is a fake passwd, authorized_keys and shadow in one table, so
// that the server's seams (backend.go) and the gate's lookups see one
// consistent machine.
type directory struct {
	mu      sync.Mutex
	entries map[string]*dirEntry
	// fold makes name lookups case-insensitive, as some LDAP and SSSD
	// back ends are.
	fold bool
}

func (d *directory) find(name string) (*dirEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fold {
		name = strings.ToLower(name)
	}
	e, ok := d.entries[name]
	return e, ok
}

// lookup is Options.Lookup.
func (d *directory) lookup(name string) (spawn.Account, error) {
	e, ok := d.find(name)
	if !ok {
		return spawn.Account{}, fmt.Errorf("user %q: no such user", name)
	}
	return spawn.Account{Name: e.name, UID: e.uid, GID: e.uid, Groups: []uint32{e.uid},
		Home: "/nonexistent/" + e.name, Shell: "/bin/sh"}, nil
}

// keys is Options.Keys.
func (d *directory) keys(acct spawn.Account) ([]authkeys.Key, error) {
	e, ok := d.find(acct.Name)
	if !ok {
		return nil, errors.New("no such user")
	}
	keys, _, err := authkeys.Parse(strings.NewReader(e.keys), acct.Name+"/.ssh/authorized_keys")
	return keys, err
}

// checkLogin is Options.checkLogin.
func (d *directory) checkLogin(acct spawn.Account, _ time.Time) (string, error) {
	e, ok := d.find(acct.Name)
	if !ok {
		return "", errors.New("no such user")
	}
	return e.warning, e.refuse
}

// LookupAccount is gate.AccountLookup: the shared-uid rule.
func (d *directory) LookupAccount(name string) (gate.UserAccount, error) {
	e, ok := d.find(name)
	if !ok {
		return gate.UserAccount{}, fmt.Errorf("user %q: %w", name, gate.ErrNoAccount)
	}
	return gate.UserAccount{Name: e.name, UID: e.uid}, nil
}

// InAnyGroup is gate.GroupLookup: exempt_groups.
func (d *directory) InAnyGroup(user string, groups []string) (bool, error) {
	e, ok := d.find(user)
	if !ok {
		return false, errors.New("no such user")
	}
	for _, g := range e.groups {
		if slices.Contains(groups, g) {
			return true, nil
		}
	}
	return false, nil
}

// auditLog is a gate.Auditor keeping "user outcome: reason" lines.
type auditLog struct {
	mu  sync.Mutex
	got []string
}

func (a *auditLog) Record(req gate.Request, d gate.Decision) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, fmt.Sprintf("%s %s: %s", req.User, d.Outcome, d.Reason))
}

func (a *auditLog) records() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// authWorld is one row's machine: the fake directory, the fake Latch with
// a paired account per [users] name, and the server.
type authWorld struct {
	t     *testing.T
	dir   *directory
	latch *latchtest.Server
	// users are the [users] lines: name -> Latch account id.
	users map[string]string
	// keys of the directory's accounts; stranger is in nobody's file.
	alice, bob, carol, stranger gossh.Signer
	hostKey                     gossh.Signer
	audit                       *auditLog
	log                         *syncBuffer
	srv                         *Server
	addr                        string
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	w := &authWorld{t: t, dir: &directory{entries: map[string]*dirEntry{}}, users: map[string]string{},
		alice: newSigner(t), bob: newSigner(t), carol: newSigner(t), stranger: newSigner(t), hostKey: newSigner(t),
		audit: &auditLog{}, log: &syncBuffer{}}
	w.latch = latchtest.New(t)
	w.latch.AddApp(appID, secret)
	for i, a := range []struct {
		name string
		key  gossh.Signer
	}{{tblAlice, w.alice}, {tblBob, w.bob}, {tblCarol, w.carol}} {
		w.dir.entries[a.name] = &dirEntry{name: a.name, uid: uint32(2001 + i),
			keys: string(gossh.MarshalAuthorizedKey(a.key.PublicKey()))}
	}
	w.users[tblAlice] = w.latch.PairedAccount(appID)
	w.users[tblBob] = w.latch.PairedAccount(appID)
	return w
}

// start builds the core and the server, and serves on 127.0.0.1:0.
// penalty_exempt is empty, so every row's single client earns the penalty
// its connection deserves (startups.go).
func (w *authWorld) start(policy, server string, edit func(*Options)) {
	t := w.t
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[latch]\napp_id = %q\nsecret = %q\napi_url = %q\ntimeout = \"3s\"\n\n", appID, secret, w.latch.URL())
	if !strings.Contains(policy, "unpaired") {
		policy += "\nunpaired = \"deny\""
	}
	fmt.Fprintf(&b, "[policy]\nfail_mode = \"closed\"\n%s\n\n", policy)
	fmt.Fprintf(&b, "[server]\nlisten = \"127.0.0.1:0\"\nhost_key = [\"/nonexistent/host_key\"]\n%s\n\n[users]\n", server)
	for _, u := range slices.Sorted(maps.Keys(w.users)) {
		fmt.Fprintf(&b, "%s = %q\n", u, w.users[u])
	}
	cfg, err := users.Parse("latch.toml", []byte(b.String()))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	client, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: w.latch.URL(),
		RootCAs: w.latch.CertPool(), Timeout: cfg.Latch.Timeout.Duration})
	if err != nil {
		t.Fatal(err)
	}
	core := &gate.Core{Config: cfg, Latch: client, Groups: w.dir, Accounts: w.dir, Audit: w.audit}
	root := uint32(0)
	o := Options{Core: func() *gate.Core { return core }, HostSigners: []gossh.Signer{w.hostKey},
		Log: zerolog.New(zerolog.SyncWriter(w.log)), xcrypto: xcryptoInGoMod(t),
		Lookup: w.dir.lookup, Keys: w.dir.keys, checkLogin: w.dir.checkLogin, euid: &root}
	if edit != nil {
		edit(&o)
	}
	w.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- w.srv.Serve(ln) }()
	t.Cleanup(func() {
		w.srv.Close()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Serve did not return after Close")
		}
		core.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", w.log.String())
		}
	})
}

// latchCalls counts the status calls the fake Latch answered, for every
// account.
func (w *authWorld) latchCalls() int {
	return w.latch.CountRequests(func(r latchtest.Request) bool { return strings.Contains(r.Path, "/status/") })
}

// code returns the one-time code Latch last sent alice's phone.
func (w *authWorld) code() string {
	tok, _ := w.latch.LastTwoFactorToken(w.users[tblAlice], appID)
	return tok
}

// tableResult is what a client saw.
type tableResult struct {
	err     error
	banners []string
	prompts []string
}

// dial logs in as user with auth, from 127.0.0.1, and closes the client
// once in: the row checks the grant through Server.Users first.
func (w *authWorld) dial(user string, auth ...gossh.AuthMethod) (tableResult, *gossh.Client) {
	w.t.Helper()
	var r tableResult
	var mu sync.Mutex
	cfg := &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(w.hostKey.PublicKey()),
		Timeout:         waitLimit,
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			r.banners = append(r.banners, msg)
			return nil
		},
	}
	nc, err := net.DialTimeout("tcp", w.addr, waitLimit)
	if err != nil {
		w.t.Fatal(err)
	}
	sc, chans, reqs, err := gossh.NewClientConn(nc, w.addr, cfg)
	mu.Lock()
	defer mu.Unlock()
	r.err = err
	if err != nil {
		nc.Close()
		return r, nil
	}
	c := gossh.NewClient(sc, chans, reqs)
	w.t.Cleanup(func() { c.Close() })
	return r, c
}

// rawConn is a connection the test drives by calling the x/crypto
// callbacks itself, for what no x/crypto client can send (another user
// name between two steps): it is admitted as accept admits one.
func (w *authWorld) rawConn() *conn {
	_, set := w.srv.settings()
	src := sourceOf(meta{}.RemoteAddr(), set)
	if v := w.srv.adm.admit(src, set); v != admitted {
		w.t.Fatalf("raw connection not admitted: %d", v)
	}
	c := newConn(w.srv, fakeNetConn{}, set)
	c.src = src
	return c
}

// The penalties a row may expect (startups.go): the kind of the last one
// the source earned, or penNone.
const (
	penNone     = ""
	penNoAuth   = "noauth"
	penAuthFail = "authfail"
	penTimeout  = "timeout"
)

// penalty returns the kind of the penalty the source 127.0.0.1 is under.
func (w *authWorld) penalty() string {
	st := w.srv.adm
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.penalties["127.0.0.1"]
	if p == nil {
		return penNone
	}
	for kind, name := range map[int]string{penaltyNoAuth: penNoAuth, penaltyAuthFail: penAuthFail, penaltyTimeout: penTimeout} {
		if p.reason == penaltyReasons[kind] {
			return name
		}
	}
	return "unknown: " + p.reason
}

// authWant is what must come out of a row.
type authWant struct {
	// in says the client logged in; account is whom the grant is for.
	in      bool
	account string
	// decisions are the audit records, "user outcome: reason", in order.
	decisions []string
	// calls is the number of Latch status calls, every account counted.
	calls int
	// banner is a text the banners must contain; with none, a refused
	// client must have seen no banner.
	banner string
	// disconnect is a text the client's error must contain: the
	// SSH_MSG_DISCONNECT "by application" with the reason.
	disconnect string
	prompts    []string
	// penalty is the kind of penalty 127.0.0.1 is under after the row:
	// penNone, penNoAuth, penAuthFail or penTimeout.
	penalty string
}

// TestAuthTable is the authentication state machine as a table, in memory
// and without root (see the top of this file): each row says what the
// client does and what comes out of it, the number of Latch calls always
// included.
func TestAuthTable(t *testing.T) {
	pk := func(s ...gossh.Signer) gossh.AuthMethod { return gossh.PublicKeys(s...) }
	closed := func(w *authWorld) { w.latch.SetLatch(w.users[tblAlice], appID, false) }
	twoFactor := func(w *authWorld) { w.latch.SetTwoFactor(appID, true) }
	const closedMsg = "your latch is closed"
	const closedDisconnect = `ssh: disconnect, reason 11: "latch-ssh: access denied: your latch is closed`
	alsoAlice := func(name string) func(w *authWorld) {
		return func(w *authWorld) {
			a := w.dir.entries[tblAlice]
			w.dir.entries[name] = &dirEntry{name: name, uid: a.uid, keys: a.keys}
		}
	}
	tests := []struct {
		name string
		// arrange edits the world before the server starts.
		arrange func(w *authWorld)
		// policy and server are extra [policy] and [server] lines.
		policy, server string
		opts           func(o *Options)
		// login is what the client does; nil logs in as alice with her key.
		login func(w *authWorld, prompts *[]string) (tableResult, *gossh.Client)
		// drive, instead of login, calls the callbacks directly.
		drive func(t *testing.T, w *authWorld) bool
		want  authWant
	}{
		// Methods: only a key opens the door, and only for its account.
		{name: "none alone is refused",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) { return w.dial(tblAlice) },
			want:  authWant{penalty: penNoAuth}},
		{name: "password alone is refused (never offered)",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, gossh.Password("hunter2"))
			},
			want: authWant{penalty: penNoAuth}},
		{name: "keyboard-interactive alone is refused (offered only after a key)",
			arrange: twoFactor,
			login: func(w *authWorld, prompts *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, otpAnswer(prompts, w.code))
			},
			want: authWant{penalty: penNoAuth}},
		{name: "unknown user",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial("mallory", pk(w.alice))
			},
			want: authWant{penalty: penAuthFail}},
		{name: "key not authorized: refused without asking Latch",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.stranger))
			},
			want: authWant{penalty: penAuthFail}},
		{name: "another user's key: refused without asking Latch",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.bob))
			},
			want: authWant{penalty: penAuthFail}},
		{name: "signature by another key than the one named",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(otherKeySigner{claimed: w.alice.PublicKey(), real: w.stranger}))
			},
			want: authWant{penalty: penAuthFail}},
		{name: "from= refuses this address: Latch not asked",
			arrange: func(w *authWorld) {
				w.dir.entries[tblAlice].keys = `from="10.0.0.0/8" ` + w.dir.entries[tblAlice].keys
			},
			want: authWant{penalty: penAuthFail}},

		// The gate, asked once the key is proven.
		{name: "latch open: in",
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1}},
		{name: "latch closed: refused with the reason, in a banner and the disconnect",
			arrange: closed,
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, disconnect: closedDisconnect, penalty: penAuthFail}},
		{name: "latch closed, disconnect writer off: the banner alone says why",
			arrange: closed,
			opts:    func(o *Options) { o.xcrypto = "v0.99.0" },
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, penalty: penAuthFail}},
		{name: "latch closed: one Latch call however many keys the client tries",
			arrange: closed,
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.alice, w.alice, w.stranger))
			},
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, disconnect: closedDisconnect, penalty: penAuthFail}},
		{name: "latch closed, disconnect writer off: still one Latch call however many keys",
			arrange: closed,
			opts:    func(o *Options) { o.xcrypto = "v0.99.0" },
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.alice, w.alice, w.stranger))
			},
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, penalty: penAuthFail}},
		{name: "a wrong key before the right one: in",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.stranger, w.alice))
			},
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1}},

		// The one-time code, by keyboard-interactive after the key.
		{name: "one-time code, right code: in",
			arrange: twoFactor,
			login: func(w *authWorld, prompts *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.alice), otpAnswer(prompts, w.code))
			},
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open, one-time code verified"},
				calls: 1, prompts: []string{OTPPrompt}}},
		{name: "one-time code, wrong code: refused",
			arrange: twoFactor,
			login: func(w *authWorld, prompts *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.alice), otpAnswer(prompts, func() string { return "WRONG1" }))
			},
			want: authWant{decisions: []string{"alice deny: latch open, wrong one-time code"}, calls: 1,
				prompts: []string{OTPPrompt}, banner: "wrong one-time code",
				disconnect: `reason 11: "latch-ssh: access denied: wrong one-time code"`, penalty: penAuthFail}},
		{name: "one-time code, the client cannot answer: refused",
			arrange: twoFactor,
			want: authWant{decisions: []string{"alice deny: latch open, one-time code not given"}, calls: 1,
				penalty: penAuthFail}},
		{name: "keyboard-interactive before the key does not replace it",
			arrange: twoFactor,
			login: func(w *authWorld, prompts *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, otpAnswer(prompts, w.code), pk(w.stranger))
			},
			want: authWant{penalty: penAuthFail}},

		// User names: the identity is the verified request's, and cannot
		// change once the code is asked. No x/crypto client can change
		// its user name between two requests, so these drive the
		// callbacks as x/crypto would call them for one that does.
		{name: "key accepted for alice, then verified as bob: refused",
			drive: func(t *testing.T, w *authWorld) bool {
				c := w.rawConn()
				defer c.Close()
				_, err := c.publicKey(meta{user: tblAlice}, w.alice.PublicKey())
				c.authLog(meta{user: tblAlice}, "publickey", err)
				if err != nil {
					t.Fatalf("alice's key for alice: %v", err)
				}
				perms, err := c.verified(meta{user: tblBob}, w.alice.PublicKey(), nil, "")
				c.authLog(meta{user: tblBob}, "publickey", err)
				return err == nil && perms != nil
			},
			want: authWant{penalty: penAuthFail}},
		{name: "user name changed between the key and the code: refused, code not asked",
			arrange: twoFactor,
			drive: func(t *testing.T, w *authWorld) bool {
				c := w.rawConn()
				defer c.Close()
				_, err := c.verified(meta{user: tblAlice}, w.alice.PublicKey(), nil, "")
				c.authLog(meta{user: tblAlice}, "publickey", err)
				var ps *gossh.PartialSuccessError
				if !errors.As(err, &ps) {
					t.Fatalf("no partial success for a two-factor login: %v", err)
				}
				asked := false
				perms, err := c.oneTimeCode(meta{user: tblBob}, func(string, string, []string, []bool) ([]string, error) {
					asked = true
					return []string{w.code()}, nil
				})
				c.authLog(meta{user: tblBob}, "keyboard-interactive", err)
				if asked {
					t.Error("the code was asked under another user name")
				}
				return err == nil && perms != nil
			},
			want: authWant{decisions: []string{"alice deny: latch open, one-time code not given"}, calls: 1,
				penalty: penAuthFail}},

		// max_auth_tries counts the keys that fail.
		{name: "max_auth_tries = 2: a third key is not tried",
			server: "max_auth_tries = 2",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(newSigner(w.t), newSigner(w.t), w.alice))
			},
			want: authWant{disconnect: `reason 2: "too many authentication failures"`, penalty: penAuthFail}},
		{name: "max_auth_tries = 3: the third key is tried",
			server: "max_auth_tries = 3",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(newSigner(w.t), newSigner(w.t), w.alice))
			},
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1}},

		// Policies.
		{name: "exempt group: in without asking Latch, even with the latch closed",
			arrange: func(w *authWorld) { closed(w); w.dir.entries[tblAlice].groups = []string{"ops"} },
			policy:  `exempt_groups = ["ops"]`,
			want: authWant{in: true, account: tblAlice,
				decisions: []string{"alice allow: exempt group: Latch not asked"}}},
		{name: "not in an exempt group: Latch decides",
			arrange: func(w *authWorld) { closed(w); w.dir.entries[tblBob].groups = []string{"ops"} },
			policy:  `exempt_groups = ["ops"]`,
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, disconnect: closedDisconnect, penalty: penAuthFail}},
		{name: "unpaired = deny: a user without [users] line is refused",
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblCarol, pk(w.carol))
			},
			want: authWant{decisions: []string{"carol deny: user has no Latch account in [users]; unpaired = deny"},
				banner: "access denied", disconnect: `reason 11: "latch-ssh: access denied"`, penalty: penAuthFail}},
		{name: "unpaired = allow: a user without [users] line is let in, Latch not asked",
			policy: `unpaired = "allow"`,
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblCarol, pk(w.carol))
			},
			want: authWant{in: true, account: tblCarol, decisions: []string{"carol allow: user has no Latch account in [users]; unpaired = allow"}}},

		// The shared-uid rule: the latch follows the uid, whatever name
		// reaches it (gate.Core.resolve, through the lookup seam).
		{name: "another name of alice's uid: alice's latch decides",
			arrange: func(w *authWorld) { alsoAlice("alias")(w); closed(w) },
			policy:  `unpaired = "allow"`,
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial("alias", pk(w.alice))
			},
			want: authWant{decisions: []string{"alias deny: latch closed (alias is uid 2001, whose latch is alice's)"}, calls: 1,
				banner: closedMsg, disconnect: "reason 11", penalty: penAuthFail}},
		{name: "two [users] names of one uid with different accounts: refused, Latch not asked",
			arrange: func(w *authWorld) { alsoAlice("alias")(w); w.users["alias"] = w.users[tblBob] },
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial(tblAlice, pk(w.alice))
			},
			want: authWant{decisions: []string{"alice deny: uid 2001 has several names in [users] (alias, alice) with different Latch accounts or operations"},
				banner: "access denied", disconnect: `reason 11: "latch-ssh: access denied"`, penalty: penAuthFail}},
		{name: "case-insensitive directory: ALICE is alice",
			arrange: func(w *authWorld) { w.dir.fold = true },
			login: func(w *authWorld, _ *[]string) (tableResult, *gossh.Client) {
				return w.dial("ALICE", pk(w.alice))
			},
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1}},

		// The account rule, after the key and before Latch.
		{name: "account rule refuses, with words for the person: Latch not asked",
			arrange: func(w *authWorld) {
				w.dir.entries[tblAlice].refuse = &spawn.LoginRefused{Reason: "account expired", Message: "Your account has expired."}
			},
			want: authWant{banner: "Your account has expired.", penalty: penAuthFail}},
		{name: "account rule refuses without words: Latch not asked",
			arrange: func(w *authWorld) {
				w.dir.entries[tblAlice].refuse = &spawn.LoginRefused{Reason: "login shell /bin/nope does not exist"}
			},
			want: authWant{penalty: penAuthFail}},
		{name: "account rule cannot tell: refused, Latch not asked",
			arrange: func(w *authWorld) { w.dir.entries[tblAlice].refuse = errors.New("shadow unreadable") },
			want:    authWant{penalty: penAuthFail}},
		{name: "account rule warns: in, the warning shown",
			arrange: func(w *authWorld) { w.dir.entries[tblAlice].warning = "Warning: your password will expire in 3 days." },
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1,
				banner: "your password will expire in 3 days"}},

		// Whom the server can serve: only root serves every account.
		{name: "not root: another account is refused before Latch",
			opts: func(o *Options) { uid := uint32(4242); o.euid = &uid },
			want: authWant{penalty: penAuthFail}},
		{name: "not root: its own account is served",
			opts: func(o *Options) { uid := uint32(2001); o.euid = &uid },
			want: authWant{in: true, account: tblAlice, decisions: []string{"alice allow: latch open"}, calls: 1}},

		// Penalties: a refusal charges the source, unless it is exempt.
		{name: "penalty_exempt source: refused, not penalised",
			arrange: closed,
			server:  `penalty_exempt = ["127.0.0.0/8"]`,
			want: authWant{decisions: []string{"alice deny: latch closed"}, calls: 1,
				banner: closedMsg, disconnect: closedDisconnect}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newAuthWorld(t)
			if tc.arrange != nil {
				tc.arrange(w)
			}
			server := tc.server
			if !strings.Contains(server, "penalty_exempt") {
				server += "\npenalty_exempt = []"
			}
			w.start(tc.policy, server, tc.opts)

			var r tableResult
			var in bool
			var users map[string]int
			switch {
			case tc.drive != nil:
				in = tc.drive(t, w)
				users = w.srv.Users()
			case tc.login != nil:
				var c *gossh.Client
				var prompts []string
				r, c = tc.login(w, &prompts)
				r.prompts = prompts
				in, users = r.err == nil, w.srv.Users()
				if c != nil {
					c.Close()
				}
			default:
				var c *gossh.Client
				r, c = w.dial(tblAlice, pk(w.alice))
				in, users = r.err == nil, w.srv.Users()
				if c != nil {
					c.Close()
				}
			}
			if in != tc.want.in {
				t.Fatalf("logged in = %v (err %v), want %v", in, r.err, tc.want.in)
			}
			if tc.want.in && (len(users) != 1 || users[tc.want.account] != 1) {
				t.Errorf("authenticated connections %v, want one of %s", users, tc.want.account)
			}
			if !tc.want.in && len(users) != 0 {
				t.Errorf("authenticated connections %v after a refusal", users)
			}
			banners := strings.Join(r.banners, "")
			if tc.want.banner != "" && !strings.Contains(banners, tc.want.banner) {
				t.Errorf("banners %q, want one containing %q", r.banners, tc.want.banner)
			}
			if tc.want.banner == "" && len(r.banners) > 0 {
				t.Errorf("unexpected banners %q", r.banners)
			}
			if tc.want.disconnect != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.want.disconnect)) {
				t.Errorf("client error %v, want it to contain %q", r.err, tc.want.disconnect)
			}
			if tc.want.disconnect == "" && r.err != nil && strings.Contains(r.err.Error(), "disconnect") {
				t.Errorf("client error %v: an unexpected disconnect", r.err)
			}
			if !slices.Equal(r.prompts, tc.want.prompts) {
				t.Errorf("prompts %q, want %q", r.prompts, tc.want.prompts)
			}
			// A refused connection is recorded, penalised and released
			// when it closes, which may come after the client gave up.
			systest.WaitFor(t, "the connection to end its authentication", waitLimit, func() bool {
				return len(w.audit.records()) >= len(tc.want.decisions) && w.srv.unauthenticated() == 0
			})
			if got := w.audit.records(); !slices.Equal(got, tc.want.decisions) {
				t.Errorf("decisions %q, want %q", got, tc.want.decisions)
			}
			if got := w.latchCalls(); got != tc.want.calls {
				t.Errorf("%d Latch status calls, want %d", got, tc.want.calls)
			}
			if got := w.penalty(); got != tc.want.penalty {
				t.Errorf("penalty %q, want %q", got, tc.want.penalty)
			}
		})
	}
}
