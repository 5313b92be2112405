package sshserver

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// otherKeySigner claims one public key and signs with another: what a client
// that does not hold the key it names can do at best.
type otherKeySigner struct {
	claimed gossh.PublicKey
	real    gossh.Signer
}

func (s otherKeySigner) PublicKey() gossh.PublicKey { return s.claimed }
func (s otherKeySigner) Sign(r io.Reader, data []byte) (*gossh.Signature, error) {
	return s.real.Sign(r, data)
}

// TestAuthFlow is the authentication table: which methods and keys get in,
// with which latch state, and how many Latch calls each costs.
func TestAuthFlow(t *testing.T) {
	f := newFixture(t)
	alice, acc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	stranger := newSigner(t)
	code := func() string { tok, _ := f.latch.LastTwoFactorToken(acc, appID); return tok }

	tests := []struct {
		name string
		// latchOff closes alice's latch; twoFactor turns the one-time
		// code on for the application.
		latchOff, twoFactor bool
		auth                func(prompts *[]string) []gossh.AuthMethod
		wantIn              bool
		wantBanner          string
		wantDecision        string // last audit record, "" for none
		wantCalls           int
		wantPrompts         []string
	}{
		{name: "none is refused",
			auth:      func(*[]string) []gossh.AuthMethod { return nil },
			wantCalls: 0},
		{name: "password is refused",
			auth:      func(*[]string) []gossh.AuthMethod { return []gossh.AuthMethod{gossh.Password("hunter2")} },
			wantCalls: 0},
		{name: "keyboard-interactive alone is refused",
			auth: func(p *[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{otpAnswer(p, func() string { return "000000" })}
			},
			wantCalls: 0},
		{name: "a key not in authorized_keys is refused without asking Latch",
			auth:      func(*[]string) []gossh.AuthMethod { return []gossh.AuthMethod{gossh.PublicKeys(stranger)} },
			wantCalls: 0},
		{name: "a signature by another key than the one named is refused",
			auth: func(*[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{gossh.PublicKeys(otherKeySigner{claimed: alice.Signer.PublicKey(), real: stranger})}
			},
			wantCalls: 0},
		{name: "latch open: in",
			auth:         func(*[]string) []gossh.AuthMethod { return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer)} },
			wantIn:       true,
			wantDecision: "allow: latch open",
			wantCalls:    1},
		{name: "latch closed: refused before any channel, with the reason shown",
			latchOff:     true,
			auth:         func(*[]string) []gossh.AuthMethod { return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer)} },
			wantBanner:   "your latch is closed",
			wantDecision: "deny: latch closed",
			wantCalls:    1},
		{name: "latch closed: one Latch call however many keys the client tries",
			latchOff: true,
			auth: func(*[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer, alice.Signer, stranger)}
			},
			wantBanner:   "your latch is closed",
			wantDecision: "deny: latch closed",
			wantCalls:    1},
		{name: "one-time code, right code: in",
			twoFactor: true,
			auth: func(p *[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer), otpAnswer(p, code)}
			},
			wantIn:       true,
			wantDecision: "allow: latch open, one-time code verified",
			wantCalls:    1,
			wantPrompts:  []string{OTPPrompt}},
		{name: "one-time code, wrong code: refused",
			twoFactor: true,
			auth: func(p *[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer), otpAnswer(p, func() string { return "WRONG1" })}
			},
			wantBanner:   "wrong one-time code",
			wantDecision: "deny: latch open, wrong one-time code",
			wantCalls:    1,
			wantPrompts:  []string{OTPPrompt}},
		{name: "one-time code, client cannot answer: refused",
			twoFactor:    true,
			auth:         func(*[]string) []gossh.AuthMethod { return []gossh.AuthMethod{gossh.PublicKeys(alice.Signer)} },
			wantDecision: "deny: latch open, one-time code not given",
			wantCalls:    1},
		{name: "keyboard-interactive before the key does not replace it",
			twoFactor: true,
			auth: func(p *[]string) []gossh.AuthMethod {
				return []gossh.AuthMethod{otpAnswer(p, code), gossh.PublicKeys(stranger)}
			},
			wantCalls: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.latch.SetLatch(acc, appID, !tc.latchOff)
			f.latch.SetTwoFactor(appID, tc.twoFactor)
			t.Cleanup(func() { f.latch.SetLatch(acc, appID, true); f.latch.SetTwoFactor(appID, false) })
			f.latch.ResetRequests()
			before := len(f.decisions(t, alice.Name))

			var prompts []string
			r := f.dial(t, alice.Name, tc.auth(&prompts)...)
			if got := r.err == nil; got != tc.wantIn {
				t.Fatalf("logged in = %v (err %v), want %v", got, r.err, tc.wantIn)
			}
			if tc.wantIn {
				out, _, code := run(t, r.client, "id -un")
				if code != 0 || strings.TrimSpace(out) != alice.Name {
					t.Errorf("id -un in the session = %q (exit %d), want %q", out, code, alice.Name)
				}
				r.client.Close()
			}
			if tc.wantBanner != "" && !strings.Contains(strings.Join(r.banners, ""), tc.wantBanner) {
				t.Errorf("banners %q, want one containing %q", r.banners, tc.wantBanner)
			}
			if !tc.wantIn && tc.wantBanner == "" && len(r.banners) > 0 {
				t.Errorf("unexpected banners %q", r.banners)
			}
			if !slices.Equal(prompts, tc.wantPrompts) {
				t.Errorf("prompts %q, want %q", prompts, tc.wantPrompts)
			}
			// A refused connection is recorded when it closes.
			var got []string
			waitFor(t, "the audit record", func() bool {
				got = f.decisions(t, alice.Name)[before:]
				return (tc.wantDecision == "") == (len(got) == 0)
			})
			if tc.wantDecision != "" && (len(got) != 1 || got[0] != tc.wantDecision) {
				t.Errorf("audit records %q, want exactly [%q]", got, tc.wantDecision)
			}
			if calls := f.latchCalls(acc); calls != tc.wantCalls {
				t.Errorf("%d Latch status calls, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// TestVerifiedKeyDecidesOptions: of two keys of the same user with different
// forced commands, the session runs with the options of the key whose
// signature was verified, not of the one the client named first.
func TestVerifiedKeyDecidesOptions(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	keyA, keyB := newSigner(t), newSigner(t)
	alice.WriteFile(t, ".ssh/authorized_keys",
		`command="echo A" `+string(gossh.MarshalAuthorizedKey(keyA.PublicKey()))+
			`command="echo B" `+string(gossh.MarshalAuthorizedKey(keyB.PublicKey())), 0o600)
	f.start(t, nil)
	// The client names A first; A's signature is refused (it is B's), then
	// B proves itself.
	r := f.dial(t, alice.Name, gossh.PublicKeys(otherKeySigner{claimed: keyA.PublicKey(), real: keyB}))
	if r.err == nil {
		t.Fatal("a signature by B for A was accepted")
	}
	r = f.dial(t, alice.Name, gossh.PublicKeys(keyB))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if out, _, _ := run(t, r.client, "whatever"); strings.TrimSpace(out) != "B" {
		t.Errorf("session ran %q, want B's forced command", out)
	}
}

// TestUserNameChange drives the callbacks the way a client that changes
// its user name between requests would: the identity is that of the
// request whose signature was verified, and no change is possible once the
// one-time code is asked.
func TestUserNameChange(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	bob, bobAcc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	c := newConn(f.srv, fakeNetConn{}, &f.core.Load().Config.Server)
	defer c.Close()

	// Offered as alice (accepted: it is alice's key), verified as bob.
	if _, err := c.publicKey(meta{user: alice.Name}, alice.Signer.PublicKey()); err != nil {
		t.Fatalf("alice's key for alice: %v", err)
	}
	if perms, err := c.verified(meta{user: bob.Name}, alice.Signer.PublicKey(), nil, ""); err == nil || perms != nil {
		t.Fatalf("alice's key verified as bob: perms %v, err %v", perms, err)
	}

	// bob with the one-time code; the code step arrives as alice.
	f.latch.SetTwoFactor(appID, true)
	t.Cleanup(func() { f.latch.SetTwoFactor(appID, false) })
	c2 := newConn(f.srv, fakeNetConn{}, &f.core.Load().Config.Server)
	defer c2.Close()
	if _, err := c2.verified(meta{user: bob.Name}, bob.Signer.PublicKey(), nil, ""); err == nil {
		t.Fatal("no partial success for a two-factor login")
	}
	asked := false
	perms, err := c2.oneTimeCode(meta{user: alice.Name}, func(string, string, []string, []bool) ([]string, error) {
		asked = true
		tok, _ := f.latch.LastTwoFactorToken(bobAcc, appID)
		return []string{tok}, nil
	})
	if err == nil || perms != nil || asked {
		t.Fatalf("code step under another name: perms %v, err %v, asked %v", perms, err, asked)
	}
	if c2.grant != nil {
		t.Fatal("a grant was recorded")
	}
}

// meta is a gossh.ConnMetadata for driving the callbacks directly.
type meta struct{ user string }

func (m meta) User() string          { return m.user }
func (m meta) SessionID() []byte     { return []byte("session") }
func (m meta) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (m meta) ServerVersion() []byte { return []byte("SSH-2.0-latch-ssh") }
func (m meta) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }
func (m meta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22} }

// fakeNetConn is a net.Conn that is never read.
type fakeNetConn struct{ net.Conn }

func (fakeNetConn) RemoteAddr() net.Addr { return meta{}.RemoteAddr() }
func (fakeNetConn) Close() error         { return nil }

// TestForwarding: -L and -R are refused unless the admin
// allows them, and a restrict key never gets them.
func TestForwarding(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name    string
		allow   bool
		options string
		want    bool
	}{
		{"default", false, "", false},
		{"allowed", true, "", true},
		{"allowed but restrict key", true, "restrict", false},
		{"allowed but no-port-forwarding key", true, "no-port-forwarding", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			u, _ := f.user(t, systest.UserOptions{KeyOptions: tc.options})
			if tc.allow {
				f.server = "allow_tcp_forwarding = true"
			}
			f.start(t, nil)
			r := f.login(t, u)
			c, err := r.client.Dial("tcp", target.Addr().String())
			if (err == nil) != tc.want {
				t.Fatalf("local forward: err %v, want allowed=%v", err, tc.want)
			}
			if err == nil {
				b, _ := io.ReadAll(c)
				c.Close()
				if string(b) != "hello" {
					t.Errorf("forwarded %q, want hello", b)
				}
			}
			ln, err := r.client.Listen("tcp", "127.0.0.1:0")
			if (err == nil) != tc.want {
				t.Fatalf("remote forward: err %v, want allowed=%v", err, tc.want)
			}
			if err == nil {
				ln.Close()
			}
			if _, err := r.client.Listen("tcp", "0.0.0.0:0"); err == nil {
				t.Error("remote forward on all interfaces was allowed")
			}
		})
	}
}

// TestLimits: the handshake timeout, the login grace time and the cap on
// unauthenticated connections, each against a client that stalls.
func TestLimits(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.server = "handshake_timeout = \"1s\"\nlogin_grace_time = \"2s\"\nmax_unauthenticated = 2\nmax_auth_tries = 2"
	f.start(t, nil)

	// A client that never speaks is closed after the handshake timeout.
	// Each comes from its own address: one address may hold only one slot
	// of 2 (max_unauthenticated_per_source, a quarter, at least 1).
	idle := func(ip string) (net.Conn, string) {
		c := dialFrom(t, f, ip)
		line := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		n, _ := c.Read(line)
		return c, string(line[:n])
	}
	c1, v1 := idle("127.0.0.2")
	c2, v2 := idle("127.0.0.3")
	if !strings.HasPrefix(v1, "SSH-2.0-latch-ssh") || !strings.HasPrefix(v2, "SSH-2.0-latch-ssh") {
		t.Fatalf("server versions %q %q", v1, v2)
	}
	// Two are waiting: a third is dropped at once, without a version line.
	c3, v3 := idle("127.0.0.4")
	c3.Close()
	if v3 != "" {
		t.Errorf("third unauthenticated connection got %q, want it dropped", v3)
	}
	start := time.Now()
	for _, c := range []net.Conn{c1, c2} {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("read: %v", err)
		}
		c.Close()
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stalled connections closed after %v, want about 1s", el)
	}
	if !strings.Contains(f.log.String(), "handshake not finished within 1s") {
		t.Error("the log does not say why the connections were closed")
	}
	// The slots are free again: a real login works.
	waitFor(t, "the slots to be released", func() bool { return f.srv.unauthenticated() == 0 })
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err != nil {
		t.Fatalf("login after the stalled ones: %v", r.err)
	}
	// max_auth_tries = 2: two wrong keys end the connection.
	r = f.dial(t, u.Name, gossh.PublicKeys(newSigner(t), newSigner(t), newSigner(t), u.Signer))
	if r.err == nil {
		t.Error("a third key was tried after max_auth_tries = 2")
	}
}

// TestLoginGraceTime: a client that completes the key exchange and then
// stalls in the authentication is closed after login_grace_time.
func TestLoginGraceTime(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.server = "login_grace_time = \"1s\""
	f.start(t, nil)
	f.latch.SetTwoFactor(appID, true)
	// The client proves its key, is asked for the code and never answers
	// (until the test lets it).
	stall := make(chan struct{})
	start := time.Now()
	done := make(chan dialResult, 1)
	go func() {
		done <- f.dial(t, u.Name, gossh.PublicKeys(u.Signer), gossh.KeyboardInteractive(
			func(string, string, []string, []bool) ([]string, error) { <-stall; return []string{"late"}, nil }))
	}()
	waitFor(t, "the refusal to be recorded", func() bool {
		d := f.decisions(t, u.Name)
		return len(d) == 1 && d[0] == "deny: latch open, one-time code not given"
	})
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("closed after %v, want about 1s", el)
	}
	close(stall)
	if r := <-done; r.err == nil {
		t.Fatal("logged in without the code")
	}
	if !strings.Contains(f.log.String(), "not authenticated within login_grace_time 1s") {
		t.Error("the log does not say why the connection was closed")
	}
}

// TestNotRootServesOnlyItself: a server that cannot change credentials
// refuses every other user before asking Latch.
func TestNotRootServesOnlyItself(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	bob, bobAcc := f.user(t, systest.UserOptions{})
	f.start(t, func(o *Options) { uid := uint32(alice.UID); o.euid = &uid })
	f.latch.ResetRequests()
	if r := f.dial(t, bob.Name, gossh.PublicKeys(bob.Signer)); r.err == nil {
		t.Fatal("a non-root server let another user in")
	}
	if n := f.latchCalls(bobAcc); n != 0 {
		t.Errorf("%d Latch calls for a user the server cannot serve", n)
	}
	if !strings.Contains(f.log.String(), "serves only the account it runs as") {
		t.Error("the log does not say why")
	}
}

// TestFromOption: from= limits where a key may be used from.
func TestFromOption(t *testing.T) {
	f := newFixture(t)
	yes, _ := f.user(t, systest.UserOptions{KeyOptions: `from="127.0.0.0/8"`})
	no, noAcc := f.user(t, systest.UserOptions{KeyOptions: `from="10.0.0.0/8"`})
	f.start(t, nil)
	if r := f.dial(t, yes.Name, gossh.PublicKeys(yes.Signer)); r.err != nil {
		t.Errorf("from=127.0.0.0/8 from 127.0.0.1: %v", r.err)
	}
	f.latch.ResetRequests()
	if r := f.dial(t, no.Name, gossh.PublicKeys(no.Signer)); r.err == nil {
		t.Error("from=10.0.0.0/8 let 127.0.0.1 in")
	}
	if n := f.latchCalls(noAcc); n != 0 {
		t.Errorf("%d Latch calls for a key refused by from=", n)
	}
}

// TestCaseInsensitiveDirectory: with an NSS source that matches names
// case-insensitively, "ALICE" is alice: her keys, her latch, her account
// for the session.
func TestCaseInsensitiveDirectory(t *testing.T) {
	f := newFixture(t)
	alice, acc := f.user(t, systest.UserOptions{})
	f.start(t, func(o *Options) {
		o.Lookup = func(name string) (spawn.Account, error) {
			if strings.EqualFold(name, alice.Name) {
				name = alice.Name
			}
			return spawn.Lookup(name)
		}
	})
	typed := strings.ToUpper(alice.Name)
	r := f.dial(t, typed, gossh.PublicKeys(alice.Signer))
	if r.err != nil {
		t.Fatalf("%s: %v", typed, r.err)
	}
	if out, _, code := run(t, r.client, "id -un"); code != 0 || strings.TrimSpace(out) != alice.Name {
		t.Errorf("session of %s runs as %q (exit %d), want %s", typed, out, code, alice.Name)
	}
	f.latch.SetLatch(acc, appID, false)
	if r := f.dial(t, typed, gossh.PublicKeys(alice.Signer)); r.err == nil {
		t.Errorf("%s logged in with alice's latch closed", typed)
	}
	if got := f.decisions(t, alice.Name); len(got) != 2 || got[1] != "deny: latch closed" {
		t.Errorf("alice's decisions %q", got)
	}
}
