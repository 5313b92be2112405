package pairing_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

const (
	// appID and secret are short for the one application of every test
	// World.
	appID  = systest.AppID
	secret = systest.Secret
	opSSHD = "OPSSHDOPSSHDOPSSHD01"
	opSudo = "OPSUDOOPSUDOOPSUDO01"
)

// fixture is a systest.World (fake Latch, a directory that passes the
// permission checks) and a configuration file for it there, with a
// Manager on that file.
type fixture struct {
	*systest.World
	path string
	m    *pairing.Manager
}

// options shape the configuration a fixture writes.
type options struct {
	policy string // extra [policy] lines
	users  string // the lines of [users]
	extra  string // text after [users]
	// inline, if set, is written as users = { inline } before [latch],
	// instead of a [users] table: a layout that loads but that the
	// in-place edit refuses.
	inline  string
	timeout string             // [latch] timeout, default "2s"; newFixture only
	fake    []latchtest.Option // newFixture only
}

// configText is the admin's file: comments everywhere, so tests can check
// that edits keep them byte for byte.
const configText = `# latch-ssh configuration of the test server.
# Edited by hand; keep these comments.
%s
# The fake Latch.
%s
[policy]
fail_mode = "closed"   # closed: an outage keeps the door shut
%s

# Operations, one per service.
[operations]
sshd = %q   # SSH logins
sudo = %q

# People paired by hand or with latch-ssh pair.
%s
%s
# (end of users)
%s
[daemon]
# socket = "/run/latch-ssh/gate.sock"
`

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	systest.Require(t)
	if o.timeout == "" {
		o.timeout = "2s"
	}
	f := &fixture{World: systest.NewWorld(t, systest.WorldOptions{Timeout: o.timeout, Fake: o.fake})}
	f.Latch.AddOperation(appID, opSSHD, "")
	f.Latch.AddOperation(appID, opSudo, "")
	f.write(t, o)
	f.m = &pairing.Manager{
		ConfigPath: f.path,
		Hostname:   func() (string, error) { return "testhost", nil },
		LookupUser: fakeUsers,
	}
	return f
}

// write (re)writes the configuration file from o (o.timeout and o.fake
// are the World's, set by newFixture).
func (f *fixture) write(t *testing.T, o options) {
	t.Helper()
	top, header := "", "[users]"
	if o.inline != "" {
		top, header = "users = { "+o.inline+" }\n", "# (users are inline, above)"
	}
	policy := o.policy
	if !strings.Contains(policy, "pairing_file") {
		// These tests read latch.toml after pairing: keep new pairings
		// there (the default drop-in has tests of its own in
		// dropin_test.go).
		policy += "\npairing_file = \"latch.toml\""
	}
	text := fmt.Sprintf(configText, top, f.LatchTable(), policy, opSSHD, opSudo, header, o.users, o.extra)
	f.path = f.WriteFile(t, "latch.toml", text)
	if _, err := users.Load(f.path); err != nil {
		t.Fatalf("the test configuration does not load: %v\n%s", err, text)
	}
}

// fakeUsers makes every name starting with "nosuch" unknown and every
// other name a local user, so tests can pair many users without creating
// them. TestPairNeedsLocalUser checks the real NSS lookup.
func fakeUsers(name string) (*user.User, error) {
	if strings.HasPrefix(name, "nosuch") {
		return nil, user.UnknownUserError(name)
	}
	// Each name its own uid, except "…alias" names, which share the uid
	// of the name without the suffix (`useradd -o`).
	base := strings.TrimSuffix(name, "alias")
	h := fnv.New32a()
	h.Write([]byte(base))
	uid := strconv.FormatUint(uint64(10000+h.Sum32()%1000000), 10)
	return &user.User{Username: name, Uid: uid, Gid: uid}, nil
}

// account pairs a new Latch account with the application directly (as if
// an earlier pairing had happened) and returns its id.
func (f *fixture) account(t *testing.T) string {
	t.Helper()
	return f.Pair()
}

func (f *fixture) read(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) load(t *testing.T) *users.Config {
	t.Helper()
	cfg, err := users.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// noRequests fails the test if the fake received any request.
func (f *fixture) noRequests(t *testing.T) {
	t.Helper()
	if r := f.Latch.Requests(); len(r) != 0 {
		t.Errorf("Latch was called %d time(s), want none: first %s %s", len(r), r[0].Method, r[0].Path)
	}
}

// checkText fails the test if a message for people holds the secret or a
// control character.
func checkText(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Errorf("%s holds the secret: %q", what, s)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' || r == 0x7f {
			t.Errorf("%s holds control character %U: %q", what, r, s)
			break
		}
	}
}

func userLine(name, acc string) string { return fmt.Sprintf("%s = %q\n", name, acc) }

func TestPairWritesLineKeepsCommentsAndSendsCommonName(t *testing.T) {
	f := newFixture(t, options{users: "# alice = \"...\" (example)"})
	before := f.read(t)
	tok := f.Latch.IssuePairingToken(appID)
	msg, err := f.m.Pair(context.Background(), "alice", tok)
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	acc, ok := f.load(t).Account("alice")
	if !ok {
		t.Fatalf("alice is not in [users] after pairing:\n%s", f.read(t))
	}
	after := f.read(t)
	if strings.Count(after, userLine("alice", acc)) != 1 {
		t.Fatalf("want exactly one line %q in:\n%s", userLine("alice", acc), after)
	}
	if got := strings.Replace(after, userLine("alice", acc), "", 1); got != before {
		t.Errorf("pairing changed more than its line:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if got := f.Latch.CommonName(appID, acc); got != "alice@testhost" {
		t.Errorf("commonName sent = %q, want alice@testhost", got)
	}
	if !strings.Contains(msg, "paired alice") || !strings.Contains(msg, pairing.ShortAccount(acc)) || strings.Contains(msg, acc) {
		t.Errorf("message %q: want the user and the shortened account, never the whole id", msg)
	}
	if r := f.Latch.Requests(); len(r) != 1 || r[0].Method != "POST" || r[0].Code != 0 {
		t.Errorf("requests = %+v, want one successful POST /pair", r)
	}
}

func TestPairWithoutCommonName(t *testing.T) {
	f := newFixture(t, options{policy: "pair_common_name = false"})
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	acc, _ := f.load(t).Account("alice")
	if got := f.Latch.CommonName(appID, acc); got != "" {
		t.Errorf("commonName = %q, want none", got)
	}
	if r := f.Latch.Requests(); len(r) != 1 || r[0].Method != "GET" {
		t.Errorf("requests = %+v, want one GET /pair", r)
	}
}

func TestPairBadTokenCallsNothing(t *testing.T) {
	f := newFixture(t, options{})
	before := f.read(t)
	for _, tok := range []string{"", "abc12", "abc1234", "abc-12", "ab c12", "ÄBC123", "../../x", "ABC12\n", "AbC123/op"} {
		_, err := f.m.Pair(context.Background(), "alice", tok)
		if err == nil || !strings.Contains(err.Error(), "6 letters and digits") {
			t.Errorf("token %q: err = %v, want the format explained", tok, err)
		}
		if pairing.CheckToken(tok) == nil {
			t.Errorf("CheckToken(%q) accepted it", tok)
		}
	}
	if err := pairing.CheckToken("AbC123"); err != nil {
		t.Errorf("CheckToken(AbC123): %v", err)
	}
	f.noRequests(t)
	if f.read(t) != before {
		t.Error("the configuration changed")
	}
}

func TestPairNeedsLocalUser(t *testing.T) {
	f := newFixture(t, options{})
	f.m.LookupUser = nil // the real NSS lookup
	_, err := f.m.Pair(context.Background(), "nosuchuserlt", f.Latch.IssuePairingToken(appID))
	if err == nil || !strings.Contains(err.Error(), "no user nosuchuserlt") {
		t.Errorf("err = %v, want no such user", err)
	}
	for _, bad := range []string{"-rf", "a/b", "a\nb", ".hidden", strings.Repeat("a", 33)} {
		if _, err := f.m.Pair(context.Background(), bad, "AbC123"); err == nil || !strings.Contains(err.Error(), "not a valid user name") {
			t.Errorf("user %q: err = %v, want invalid name", bad, err)
		}
	}
	f.noRequests(t)
	// Root may pair any existing local user, root included.
	if _, err := f.m.Pair(context.Background(), "root", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Errorf("pairing root: %v", err)
	}
}

func TestPairAlreadyPaired(t *testing.T) {
	f := newFixture(t, options{})
	acc := f.account(t)
	f.write(t, options{users: userLine("alice", acc)})
	_, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if err == nil || !strings.Contains(err.Error(), "already paired") || !strings.Contains(err.Error(), "run latch-ssh unpair first") {
		t.Errorf("err = %v, want already paired; run latch-ssh unpair first", err)
	}
	f.noRequests(t)
}

// fakeClock is a settable clock for the fake.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestPairLatchErrors(t *testing.T) {
	clock := &fakeClock{}
	for _, tc := range []struct {
		name    string
		timeout string
		// arrange returns the token to pair alice with.
		arrange func(t *testing.T, f *fixture) string
		want    string
		code    int
	}{
		{name: "206 unknown token", want: "that code is wrong or has expired: generate a new one in the Latch app", code: 206,
			arrange: func(t *testing.T, f *fixture) string { return "ZZZZZ9" }},
		{name: "206 expired token", want: "that code is wrong or has expired: generate a new one in the Latch app", code: 206,
			arrange: func(t *testing.T, f *fixture) string {
				tok := f.Latch.IssuePairingToken(appID)
				clock.advance(latchtest.DefaultPairingTTL + time.Second)
				return tok
			}},
		{name: "205 already paired", want: "already paired with this server (Latch 205)", code: 205,
			arrange: func(t *testing.T, f *fixture) string { return f.Latch.IssuePairingTokenFor(appID, f.account(t)) }},
		{name: "109 clock", want: "this server's clock is off", code: 109,
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{ErrorCode: 109})
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "102 credentials, fault keyed by the token's Latch user", want: "the application id or secret is wrong (ask an administrator", code: 102,
			arrange: func(t *testing.T, f *fixture) string {
				acc := strings.Repeat("K", 64)
				f.Latch.SetFault(acc, latchtest.Fault{ErrorCode: 102})
				return f.Latch.IssuePairingTokenFor(appID, acc)
			}},
		{name: "203 pairing error", want: "Latch could not pair the account (Latch 203)", code: 203,
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{ErrorCode: 203})
				return f.Latch.IssuePairingToken(appID)
			}},
		// Issue 13, point 1: 7xx is the application's subscription limit,
		// not the person's account.
		{name: "701 subscription limit", want: "reached a limit of its Latch subscription (Latch 701): ask an administrator", code: 701,
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{ErrorCode: 701})
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "unknown code, hostile message", want: "Latch refused the request (Latch 999: evil", code: 999,
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{ErrorCode: 999, Message: "evil\x1b[2J\r\nforged "})
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "timeout", timeout: "300ms", want: "Latch did not answer in time",
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{Hang: true})
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "wrong TLS host", want: "could not be verified (TLS",
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetWrongHost(true)
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "HTTP 503", want: "Latch is having trouble (HTTP 503)",
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{HTTPStatus: 503})
				return f.Latch.IssuePairingToken(appID)
			}},
		{name: "garbage", want: "Latch sent an answer latch-ssh cannot read",
			arrange: func(t *testing.T, f *fixture) string {
				f.Latch.SetFault("", latchtest.Fault{Body: []byte("<html>")})
				return f.Latch.IssuePairingToken(appID)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, options{timeout: tc.timeout, fake: []latchtest.Option{latchtest.WithClock(clock.now)}})
			before := f.read(t)
			tok := tc.arrange(t, f)
			_, err := f.m.Pair(context.Background(), "alice", tok)
			if err == nil {
				t.Fatal("Pair succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
			if got := latch.ErrorCode(err); got != tc.code {
				t.Errorf("ErrorCode(err) = %d, want %d (the cause must stay reachable)", got, tc.code)
			}
			checkText(t, "the error", err.Error())
			if f.read(t) != before {
				t.Errorf("a failed pairing changed the configuration:\n%s", f.read(t))
			}
		})
	}
}

func TestPairRollsBackWhenTheEditFails(t *testing.T) {
	// [users] as an inline table loads fine, but the in-place edit
	// refuses it (it would have to rewrite the admin's layout).
	f := newFixture(t, options{inline: "carol = \"" + strings.Repeat("C", 64) + "\""})
	before := f.read(t)
	_, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if err == nil {
		t.Fatal("Pair succeeded")
	}
	if !errors.Is(err, pairing.ErrConfig) || !strings.Contains(err.Error(), "inline table") || !strings.Contains(err.Error(), "undone") {
		t.Errorf("err = %q, want the edit's reason and that the pairing was undone", err)
	}
	if got := f.Latch.Accounts(appID); len(got) != 0 {
		t.Errorf("Latch still pairs %v", got)
	}
	if n := f.Latch.CountRequests(func(r latchtest.Request) bool { return strings.Contains(r.Path, "/unpair/") }); n != 1 {
		t.Errorf("%d unpair calls, want 1", n)
	}
	if f.read(t) != before {
		t.Error("the configuration changed")
	}
}

func TestPairRollbackKeepsAnAccountOthersUse(t *testing.T) {
	// carol's line names an account the phone had unpaired; alice pairs
	// the same Latch user again, so the account is carol's too, and
	// undoing alice's pairing would unpair carol.
	shared := strings.Repeat("S", 64)
	f := newFixture(t, options{inline: "carol = \"" + shared + "\""})
	_, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingTokenFor(appID, shared))
	if err == nil || !strings.Contains(err.Error(), "stays") || !strings.Contains(err.Error(), "carol") {
		t.Errorf("err = %v, want the pairing kept because carol uses it", err)
	}
	if got := f.Latch.Accounts(appID); len(got) != 1 || got[0] != shared {
		t.Errorf("Latch pairs %v, want the shared account still", got)
	}
}

func TestUnpairAloneCallsLatchAndRestoresTheFile(t *testing.T) {
	f := newFixture(t, options{users: "bob = \"" + strings.Repeat("B", 64) + "\"   # bob's, by hand"})
	before := f.read(t)
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	acc, _ := f.load(t).Account("alice")
	f.Latch.ResetRequests()
	msg, err := f.m.Unpair(context.Background(), "alice")
	if err != nil {
		t.Fatalf("Unpair: %v", err)
	}
	if !strings.Contains(msg, "unpaired alice") {
		t.Errorf("msg = %q", msg)
	}
	if got := f.read(t); got != before {
		t.Errorf("pair then unpair did not give the file back byte for byte:\n--- before\n%s\n--- after\n%s", before, got)
	}
	r := f.Latch.Requests()
	if len(r) != 1 || r[0].Path != "/api/3.0/unpair/"+acc || r[0].Code != 0 {
		t.Errorf("requests = %+v, want one successful unpair of %s", r, acc)
	}
	if got := f.Latch.Accounts(appID); len(got) != 0 {
		t.Errorf("Latch still pairs %v", got)
	}
}

func TestUnpairSharedAccountCallsNothing(t *testing.T) {
	f := newFixture(t, options{})
	acc := f.account(t)
	f.write(t, options{users: userLine("alice", acc) + userLine("bob", acc)})
	before := f.read(t)
	msg, err := f.m.Unpair(context.Background(), "alice")
	if err != nil {
		t.Fatalf("Unpair: %v", err)
	}
	if !strings.Contains(msg, "stays paired because bob") {
		t.Errorf("msg = %q, want it to say bob keeps the account", msg)
	}
	f.noRequests(t)
	if got := f.read(t); got != strings.Replace(before, userLine("alice", acc), "", 1) {
		t.Errorf("want only alice's line removed:\n%s", got)
	}
	if a, ok := f.load(t).Account("bob"); !ok || a != acc {
		t.Error("bob's line is gone")
	}
}

func TestUnpairAfterThePhoneUnpaired(t *testing.T) {
	f := newFixture(t, options{})
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	acc, _ := f.load(t).Account("alice")
	f.Latch.UnpairFromPhone(appID, acc)
	msg, err := f.m.Unpair(context.Background(), "alice")
	if err != nil {
		t.Fatalf("Unpair: %v", err)
	}
	if !strings.Contains(msg, "already been unpaired from the phone") {
		t.Errorf("msg = %q", msg)
	}
	if _, ok := f.load(t).Account("alice"); ok {
		t.Error("alice is still in [users]")
	}
}

func TestUnpairWhenLatchFails(t *testing.T) {
	f := newFixture(t, options{})
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	acc, _ := f.load(t).Account("alice")
	f.Latch.SetFault(acc, latchtest.Fault{ErrorCode: 102})
	_, err := f.m.Unpair(context.Background(), "alice")
	if err == nil {
		t.Fatal("Unpair reported success although Latch refused")
	}
	for _, want := range []string{"removed alice from [users]", "Latch was not told", "the application id or secret is wrong", "Latch app"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %q", err, want)
		}
	}
	if _, ok := f.load(t).Account("alice"); ok {
		t.Error("the local line must go even when Latch cannot be told")
	}
}

func TestUnpairRefusals(t *testing.T) {
	f := newFixture(t, options{})
	acc := f.account(t)
	f.write(t, options{users: userLine("alice", acc), extra: "\n[user_operations.alice]\nsshd = \"" + opSudo + "\"\n"})
	before := f.read(t)
	if _, err := f.m.Unpair(context.Background(), "bob"); err == nil || !strings.Contains(err.Error(), "not paired") {
		t.Errorf("bob: err = %v, want not paired", err)
	}
	if _, err := f.m.Unpair(context.Background(), "alice"); err == nil || !strings.Contains(err.Error(), "[user_operations.alice]") {
		t.Errorf("alice: err = %v, want the [user_operations] table named", err)
	}
	f.noRequests(t)
	if f.read(t) != before {
		t.Error("the configuration changed")
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t, options{policy: "silent = true"})
	if _, err := f.m.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID)); err != nil {
		t.Fatal(err)
	}
	acc, _ := f.load(t).Account("alice")
	// Two-factor on everything: asking for the status must still not
	// generate a code (nor push a prompt to the phone).
	f.Latch.SetTwoFactor(appID, true)
	f.Latch.SetTwoFactor(opSSHD, true)
	f.Latch.ResetRequests()

	states := func(st pairing.UserStatus) string {
		var s []string
		for _, l := range st.Latches {
			s = append(s, l.Service+"="+l.State)
		}
		return strings.Join(s, " ")
	}
	st, err := f.m.Status(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Paired || st.User != "alice" || st.Account != pairing.ShortAccount(acc) || st.Note != "" {
		t.Errorf("status = %+v", st)
	}
	if got := states(st); got != "=open sshd=open sudo=open" {
		t.Errorf("states = %q", got)
	}
	if st.Latches[1].Operation != "OPSSHD…" {
		t.Errorf("operation shown as %q, want OPSSHD…", st.Latches[1].Operation)
	}
	for _, r := range f.Latch.Requests() {
		if !r.NoOTP || !r.Silent {
			t.Errorf("request %s without /nootp or /silent", r.Path)
		}
	}
	if tok, ok := f.Latch.LastTwoFactorToken(acc, appID); ok {
		t.Errorf("status generated a one-time code %q", tok)
	}

	f.Latch.SetLatch(acc, opSSHD, false)
	st, _ = f.m.Status(context.Background(), "alice")
	if got := states(st); got != "=open sshd=closed sudo=open" {
		t.Errorf("sshd closed: states = %q", got)
	}

	f.Latch.SetFault(acc, latchtest.Fault{ErrorCode: 109})
	st, _ = f.m.Status(context.Background(), "alice")
	if got := states(st); got != "=error sshd=error sudo=error" || !strings.Contains(st.Latches[0].Detail, "clock is off") {
		t.Errorf("109: status = %+v", st)
	}
	f.Latch.ClearFaults()

	f.Latch.UnpairFromPhone(appID, acc)
	st, _ = f.m.Status(context.Background(), "alice")
	if got := states(st); got != "=unpaired sshd=unpaired sudo=unpaired" || st.Note != pairing.NoteUnpairedFromPhone {
		t.Errorf("201: status = %+v", st)
	}
	if !strings.Contains(st.Note, "unpaired from the phone (Latch 201): pair again") {
		t.Errorf("note = %q", st.Note)
	}

	st, err = f.m.Status(context.Background(), "bob")
	if err != nil || st.Paired || len(st.Latches) != 0 || !strings.Contains(st.Note, "not paired") {
		t.Errorf("bob: %+v, %v", st, err)
	}
}

func TestStatusUserOperations(t *testing.T) {
	f := newFixture(t, options{})
	acc := f.account(t)
	f.write(t, options{users: userLine("alice", acc), extra: "\n[user_operations.alice]\nsshd = \"" + opSudo + "\"\n"})
	st, err := f.m.Status(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	// alice's sshd uses the sudo operation: two services, one latch, one
	// call for it.
	if len(st.Latches) != 3 || st.Latches[1].Operation != "OPSUDO…" || st.Latches[2].Operation != "OPSUDO…" {
		t.Errorf("latches = %+v", st.Latches)
	}
	if n := len(f.Latch.Requests()); n != 2 {
		t.Errorf("%d Latch calls, want 2 (application, one operation)", n)
	}
}

func TestConcurrentPairingsKeepEveryEntry(t *testing.T) {
	f := newFixture(t, options{users: "zed = \"" + strings.Repeat("Z", 64) + "\"   # by hand"})
	before := f.read(t)
	const n = 10
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = f.Latch.IssuePairingToken(appID)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// A Manager each, like separate processes (root's command,
			// the daemon): only the file lock keeps them apart.
			m := &pairing.Manager{ConfigPath: f.path, LookupUser: fakeUsers}
			_, errs[i] = m.Pair(context.Background(), fmt.Sprintf("user%d", i), tokens[i])
		})
	}
	wg.Wait()
	cfg := f.load(t)
	after := f.read(t)
	for i, err := range errs {
		name := fmt.Sprintf("user%d", i)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		acc, ok := cfg.Account(name)
		if !ok {
			t.Errorf("%s is missing from [users]", name)
			continue
		}
		after = strings.Replace(after, userLine(name, acc), "", 1)
	}
	if after != before {
		t.Errorf("concurrent pairings changed more than their lines:\n--- before\n%s\n--- after, less the new lines\n%s", before, after)
	}
	if got := len(f.Latch.Accounts(appID)); got != n {
		t.Errorf("Latch pairs %d accounts, want %d", got, n)
	}
}

func TestConcurrentPairingsOfOneUser(t *testing.T) {
	f := newFixture(t, options{})
	const n = 5
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = f.Latch.IssuePairingToken(appID)
	}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range n {
		wg.Go(func() {
			if _, err := f.m.Pair(context.Background(), "alice", tokens[i]); err == nil {
				ok.Add(1)
			} else if !strings.Contains(err.Error(), "in progress") && !strings.Contains(err.Error(), "already paired") {
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d pairings of alice succeeded, want 1", ok.Load())
	}
	// The losers never reached Latch, so no account is orphaned.
	if got := len(f.Latch.Accounts(appID)); got != 1 {
		t.Errorf("Latch pairs %d accounts, want 1", got)
	}
}

func TestMessage(t *testing.T) {
	for code, want := range map[int]string{
		201: "unpaired from the phone", 202: "Latch 202", 203: "Latch 203", 204: "Latch app",
		205: "already paired", 206: "that code is wrong or has expired: generate a new one in the Latch app",
		207: "the Latch account is not activated or is disabled", 208: "Latch says: x", 701: "subscription",
		109: "this server's clock is off",
		101: "the application id or secret is wrong (ask an administrator", 102: "the application id or secret is wrong (ask an administrator",
		103: "the application id or secret is wrong", 104: "the application id or secret is wrong", 105: "the application id or secret is wrong",
		108: "the application id or secret is wrong", 110: "the application id or secret is wrong",
		301: "Latch 301", 401: "latch-ssh bug", 402: "latch-ssh bug", 501: "one-time code",
	} {
		if got := pairing.Message(&latch.Error{Code: code, Message: "x"}); !strings.Contains(got, want) {
			t.Errorf("Message(%d) = %q, want %q in it", code, got, want)
		}
	}
	wrapped := fmt.Errorf("context: %w", &latch.Error{Code: 206})
	if got := pairing.Message(wrapped); !strings.HasPrefix(got, "that code is wrong") {
		t.Errorf("wrapped 206: %q", got)
	}
	if got := pairing.Message(&latch.TransportError{Op: "GET /api/3.0/status/" + strings.Repeat("A", 64), Err: context.DeadlineExceeded}); !strings.Contains(got, "did not answer in time") {
		t.Errorf("timeout: %q", got)
	}
	te := &latch.TransportError{Op: "GET /api/3.0/status/" + strings.Repeat("A", 64), Err: errors.New("connection refused\x1b[31m")}
	got := pairing.Message(te)
	if strings.Contains(got, strings.Repeat("A", 64)) || !strings.Contains(got, "cannot reach Latch") {
		t.Errorf("transport error: %q (must not show the request path with the account)", got)
	}
	checkText(t, "transport message", got)
	if got := pairing.Message(&latch.HTTPError{StatusCode: 429}); !strings.Contains(got, "429") {
		t.Errorf("429: %q", got)
	}
	if pairing.Message(nil) != "" {
		t.Error("Message(nil) is not empty")
	}
}

func TestShortAccount(t *testing.T) {
	if got := pairing.ShortAccount("abcd" + strings.Repeat("x", 56) + "wxyz"); got != "abcd…wxyz" {
		t.Errorf("ShortAccount = %q", got)
	}
}
