package main

// The PAM hook against hostile input and a bad network (issue 8): each test
// is one attack or fault, named after it, with what would happen without
// the defence it proves.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// hasControl reports whether s holds a byte or rune that moves a cursor,
// changes colours or starts a line.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) })
}

// pamRun runs the hook binary the way pam_exec does (PAM items in the
// environment, no arguments but -c) and returns its exit code and stdout.
func (f *fixture) pamRun(t *testing.T, cfg string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(f.bin, "-c", cfg)
	cmd.Env = env
	stdout, _, code := systest.Run(t, cmd)
	return code, stdout
}

// auditLines returns the decision lines the hook sent to syslog, decoded:
// those holding mark (this test's runs: tests of other packages running
// meanwhile log there too).
func auditLines(t *testing.T, logs *systest.Syslog, mark string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logs.Lines() {
		if l.Tag != "latch-ssh" || !strings.Contains(l.Message, mark) {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l.Message), &e); err != nil {
			t.Fatalf("syslog line is not JSON: %q", l.Message)
		}
		if hasControl(strings.TrimSuffix(l.Raw, "\n")) {
			t.Errorf("raw syslog line holds a control character: %q", l.Raw)
		}
		out = append(out, e)
	}
	return out
}

// TestAttackHostilePAMUser: PAM_USER is whatever the client typed at the
// login prompt. Without checking it, "../" or "/" would reach anything that
// builds a path from it, a newline or an escape would forge a syslog line
// or take over the terminal of the admin reading the log, and a look-alike
// of a paired user (Cyrillic "а", a bidi override) could be confused with
// her. With the check, names no account can have are denied whatever the
// unpaired policy, with a one-line refusal; names that are merely not
// accounts are denied too (since issue 12, item 5: a name NSS does not know
// is never let in under unpaired = "allow"), never decided as the paired
// user; Latch is never asked about her account; and every
// syslog line holds the name only escaped.
func TestAttackHostilePAMUser(t *testing.T) {
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	cfg := f.config(t, "fail_mode = \"closed\"\nunpaired = \"allow\"", map[string]string{alice.Name: acc})
	f.SetLatch(acc, false)
	logs := systest.CaptureSyslog(t)
	const rhost = "192.0.2.81" // this test's runs in the shared syslog
	base := []string{"PAM_TYPE=account", "PAM_SERVICE=sshd", "PAM_RHOST=" + rhost}

	// Control: alice herself is refused (her latch is closed).
	if code, out := f.pamRun(t, cfg, append(base, "PAM_USER="+alice.Name)...); code != 1 || !strings.Contains(out, "your latch is closed") {
		t.Fatalf("alice, closed latch: exit %d, %q", code, out)
	}
	f.Latch.ResetRequests()
	invalid := []string{
		"../../etc/passwd", alice.Name + "/../root", "root\nlatch-ssh: forged", "\x1b]0;pwned\x07\x1b[2J" + alice.Name,
		"\x01\x02\x03", alice.Name + "\x7f", alice.Name + "\r", "\xff\xfe" + alice.Name, "-" + alice.Name,
		alice.Name + "\u0085", alice.Name + " ", strings.Repeat("a", 300), alice.Name + ":0",
	}
	for _, name := range invalid {
		code, out := f.pamRun(t, cfg, append(base, "PAM_USER="+name)...)
		if code != 1 || out != "latch-ssh: access denied\n" {
			t.Errorf("PAM_USER=%q: exit %d, stdout %q; want denied with one plain line", name, code, out)
		}
	}
	unknown := []string{"аlice", alice.Name + "\u202e", strings.ToUpper(alice.Name), "ünïcödé"}
	for _, name := range unknown {
		if code, out := f.pamRun(t, cfg, append(base, "PAM_USER="+name)...); code != 1 || out != "latch-ssh: access denied\n" {
			t.Errorf("PAM_USER=%q (no such account, unpaired = allow): exit %d, %q; want denied with one plain line", name, code, out)
		}
	}
	if n := len(f.Latch.Requests()); n != 0 {
		t.Errorf("%d Latch calls for names that are not alice", n)
	}
	var lines []map[string]any
	want := 1 + len(invalid) + len(unknown)
	logs.WaitFor(t, func(systest.SyslogLine) bool {
		lines = auditLines(t, logs, `"remote":"`+rhost+`"`)
		return len(lines) >= want
	}, 10*time.Second)
	for _, e := range lines[1:] {
		user, _ := e["user"].(string)
		if user == alice.Name || hasControl(user) {
			t.Errorf("decision logged for user %q", user)
		}
		reason, _ := e["reason"].(string)
		if e["outcome"] == "allow" && !strings.Contains(reason, "no Latch account") {
			t.Errorf("allowed %q for %q: want only the unpaired policy", user, reason)
		}
	}
}

// TestAttackCaseInsensitiveNSSUser: with an LDAP or SSSD back end that
// matches names without regard to case, a client can log in as alice by
// typing "ALICE": sshd finds alice's account through NSS, but PAM_USER
// stays "ALICE". Without resolving PAM_USER through NSS, the hook would
// look for "ALICE" in [users], find nothing, and apply the unpaired policy
// (allow by default): alice's closed latch bypassed by a change of case.
// With it the hook decides for the account that logs in.
func TestAttackCaseInsensitiveNSSUser(t *testing.T) {
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	cfg := f.config(t, "fail_mode = \"closed\"\nunpaired = \"allow\"", map[string]string{alice.Name: acc})
	f.SetLatch(acc, false)
	typed := strings.ToUpper(alice.Name)
	// NSS as a case-insensitive back end answers.
	lookupAccount := caseInsensitive{alice.Name}
	a := &recordingAudit{}
	var out, errb bytes.Buffer
	env := []string{"PAM_TYPE=account", "PAM_SERVICE=sshd", "PAM_USER=" + typed}
	if code := runWith(hooks{accounts: lookupAccount}, []string{"-c", cfg}, env, 0, &out, &errb, a); code != exitDeny || !strings.Contains(out.String(), "your latch is closed") {
		t.Fatalf("PAM_USER=%s, alice's latch closed: exit %d, %q", typed, code, out.String())
	}
	if len(a.reqs) != 1 || a.reqs[0].User != alice.Name {
		t.Fatalf("decided for %+v, want alice's account %s", a.reqs, alice.Name)
	}
	// By hand too.
	out.Reset()
	if code := runWith(hooks{accounts: lookupAccount}, []string{"-c", cfg, typed}, nil, 0, &out, &errb, a); code != exitDeny {
		t.Fatalf("latch-check %s by hand: exit %d, %s", typed, code, errb.String())
	}
}

// caseInsensitive is NSS as a case-insensitive back end answers for name.
type caseInsensitive struct{ name string }

func (c caseInsensitive) LookupAccount(name string) (gate.UserAccount, error) {
	if strings.EqualFold(name, c.name) {
		name = c.name
	}
	return gate.NSSAccounts{}.LookupAccount(name)
}

// recordingAudit keeps the requests of every decision.
type recordingAudit struct{ reqs []gate.Request }

func (a *recordingAudit) Record(r gate.Request, _ gate.Decision) { a.reqs = append(a.reqs, r) }

// TestAttackEscapesInLatchErrorMessage: the answer of Latch (or of whoever
// answers in its place) carries an error message with terminal escapes, a
// bell and a forged line. Without cleaning, it would reach the terminal of
// whoever runs latch-check by hand (retitled, cleared) and forge a syslog
// line; with it stderr and syslog hold it escaped, and the person refused
// under PAM sees only the fixed refusal.
func TestAttackEscapesInLatchErrorMessage(t *testing.T) {
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	cfg := f.config(t, `fail_mode = "closed"`, map[string]string{alice.Name: acc})
	const hostile = "\x1b]0;pwned\x07\x1b[2J\r\nallowed: latch open"
	f.Latch.SetFault(acc, latchtest.Fault{ErrorCode: 202, Message: hostile})
	logs := systest.CaptureSyslog(t)

	code, stderr, _ := f.check(t, cfg, alice.Name)
	if code != 1 || !strings.Contains(stderr, "Latch error 202") || !strings.Contains(stderr, `\x1b]0;pwned\x07`) {
		t.Fatalf("by hand: exit %d, stderr %q; want the error, escaped", code, stderr)
	}
	if strings.ContainsAny(stderr, "\x1b\x07\r") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q holds control characters or more than one line", stderr)
	}
	code, out := f.pamRun(t, cfg, "PAM_TYPE=account", "PAM_SERVICE=sshd", "PAM_USER="+alice.Name)
	if code != 1 || out != "latch-ssh: access denied\n" {
		t.Errorf("under PAM: exit %d, stdout %q; want the fixed refusal", code, out)
	}
	var lines []map[string]any
	logs.WaitFor(t, func(systest.SyslogLine) bool {
		lines = auditLines(t, logs, `"user":"`+alice.Name+`"`)
		return len(lines) >= 2
	}, 10*time.Second)
	for _, e := range lines {
		reason, _ := e["reason"].(string)
		if !strings.Contains(reason, "Latch error 202") || hasControl(reason) {
			t.Errorf("logged reason %q", reason)
		}
	}
}

// TestAttackSlowDripAnswer: Latch's answer trickles in one byte a second.
// Without one deadline over the whole call, the hook (and with it sshd's
// account phase, and the person at the prompt) would wait for as long as
// the server keeps dripping; with it the hook gives the fail mode's answer
// at [latch] timeout (1s here).
func TestAttackSlowDripAnswer(t *testing.T) {
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	users := map[string]string{alice.Name: acc}
	f.Latch.SetFault(acc, latchtest.Fault{Drip: time.Second})
	for _, tc := range []struct {
		mode string
		want int
	}{{"closed", 1}, {"open", 0}} {
		code, stderr, took := f.check(t, f.config(t, fmt.Sprintf("fail_mode = %q", tc.mode), users), alice.Name)
		if code != tc.want || !strings.Contains(stderr, "did not answer within 1s") {
			t.Errorf("fail_mode = %s: exit %d, %q; want %d with the deadline as the reason", tc.mode, code, stderr, tc.want)
		}
		// Without the deadline: a byte a second, minutes for the answer.
		if took > 3*time.Second {
			t.Errorf("fail_mode = %s: took %v with a 1s timeout", tc.mode, took)
		}
	}
}

// TestAttackClockTenMinutesOff: Latch's clock is 10 minutes ahead, so it
// answers 109 (request expired) to what the hook signs. Without learning
// the offset from that answer's Date header and retrying once within the
// deadline, every login would get the fail mode (nobody in with "closed",
// everybody unchecked with "open"); with it each run of the hook costs one
// more round trip and gets Latch's real answer.
func TestAttackClockTenMinutesOff(t *testing.T) {
	f := newFixture(t, latchtest.WithClock(func() time.Time { return time.Now().Add(10 * time.Minute) }))
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	cfg := f.config(t, `fail_mode = "open"`, map[string]string{alice.Name: acc})
	expired := func() int {
		return f.Latch.CountRequests(func(r latchtest.Request) bool { return r.Code == latch.CodeRequestExpired })
	}

	f.SetLatch(acc, false)
	if code, stderr, _ := f.check(t, cfg, alice.Name); code != 1 || stderr != "denied: latch closed\n" {
		t.Fatalf("closed latch, clock 10 minutes off: exit %d, %q; want Latch's own answer", code, stderr)
	}
	f.SetLatch(acc, true)
	if code, stderr, _ := f.check(t, cfg, alice.Name); code != 0 || stderr != "allowed: latch open\n" {
		t.Fatalf("open latch, clock 10 minutes off: exit %d, %q", code, stderr)
	}
	if n := expired(); n != 2 {
		t.Errorf("Latch answered 109 %d times for two runs, want once each", n)
	}
}
