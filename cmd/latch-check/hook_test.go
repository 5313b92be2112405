package main

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// fixture is a systest.World (the fake Latch, a directory for
// configurations that passes the permission checks) and a built
// latch-check. Its configurations give Latch 1s ([latch] timeout).
type fixture struct {
	*systest.World
	bin string
}

// newFixture builds the fixture; fake are options for the fake Latch.
func newFixture(t *testing.T, fake ...latchtest.Option) *fixture {
	t.Helper()
	return &fixture{
		World: systest.NewWorld(t, systest.WorldOptions{Timeout: "1s", Fake: fake}),
		bin:   systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-check"),
	}
}

// config writes a latch.toml (0600) and returns its path. policy holds the
// [policy] lines; users maps local users to accounts.
func (f *fixture) config(t *testing.T, policy string, users map[string]string) string {
	t.Helper()
	return f.WriteConfig(t, systest.Config{Policy: policy, Users: users})
}

// check runs latch-check by hand for user and returns its exit code,
// stderr, and how long it took.
func (f *fixture) check(t *testing.T, cfg, user string, env ...string) (int, string, time.Duration) {
	t.Helper()
	cmd := exec.Command(f.bin, "-c", cfg, user)
	cmd.Env = env
	start := time.Now()
	_, stderr, code := systest.Run(t, cmd)
	return code, stderr, time.Since(start)
}

// TestFaultMatrix runs every fault of the fake through the latch-check
// binary in both fail modes.
func TestFaultMatrix(t *testing.T) {
	f := newFixture(t)
	acc := f.Pair()
	cfgs := map[string]string{
		"open":   f.config(t, `fail_mode = "open"`, map[string]string{"alice": acc}),
		"closed": f.config(t, `fail_mode = "closed"`, map[string]string{"alice": acc}),
	}
	const A, D = 0, 1
	for _, tc := range []struct {
		name         string
		fault        latchtest.Fault
		wrongHost    bool
		open, closed int
	}{
		{name: "no fault", open: A, closed: A},
		{name: "delay within deadline", fault: latchtest.Fault{Delay: 200 * time.Millisecond}, open: A, closed: A},
		{name: "delay beyond deadline", fault: latchtest.Fault{Delay: 3 * time.Second}, open: A, closed: D},
		{name: "hang", fault: latchtest.Fault{Hang: true}, open: A, closed: D},
		{name: "http 500", fault: latchtest.Fault{HTTPStatus: 500}, open: A, closed: D},
		{name: "http 503", fault: latchtest.Fault{HTTPStatus: 503}, open: A, closed: D},
		{name: "429 retry-after beyond deadline", fault: latchtest.Fault{HTTPStatus: 429, RetryAfter: "10"}, open: A, closed: D},
		{name: "429 once, retry fits", fault: latchtest.Fault{HTTPStatus: 429, RetryAfter: "0", Times: 1}, open: A, closed: A},
		{name: "non-JSON", fault: latchtest.Fault{Body: []byte("<html>oops</html>")}, open: A, closed: D},
		{name: "truncated", fault: latchtest.Fault{Truncate: true}, open: A, closed: D},
		{name: "closed mid-answer", fault: latchtest.Fault{CloseMidAnswer: true}, open: A, closed: D},
		{name: "wrong TLS host", wrongHost: true, open: A, closed: D},
		{name: "unknown status", fault: latchtest.Fault{Status: "maybe"}, open: A, closed: D},
		{name: "missing id", fault: latchtest.Fault{WrongID: true}, open: A, closed: D},
		{name: "1xx: 102 signature", fault: latchtest.Fault{ErrorCode: 102}, open: A, closed: D},
		{name: "1xx: 109 clock", fault: latchtest.Fault{ErrorCode: 109}, open: A, closed: D},
		{name: "2xx: 201 unpaired (unpaired=allow)", fault: latchtest.Fault{ErrorCode: 201}, open: A, closed: A},
		{name: "2xx: 202 account", fault: latchtest.Fault{ErrorCode: 202}, open: A, closed: D},
		{name: "3xx: 301 operation", fault: latchtest.Fault{ErrorCode: 301}, open: A, closed: D},
		{name: "4xx: 401 parameter", fault: latchtest.Fault{ErrorCode: 401}, open: A, closed: D},
		{name: "5xx: 501 token", fault: latchtest.Fault{ErrorCode: 501}, open: A, closed: D},
		{name: "7xx: 701 generic", fault: latchtest.Fault{ErrorCode: 701}, open: A, closed: D},
	} {
		for _, mode := range []string{"open", "closed"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				f.Latch.ClearFaults()
				f.Latch.SetWrongHost(tc.wrongHost)
				if !reflect.ValueOf(tc.fault).IsZero() {
					f.Latch.SetFault(acc, tc.fault)
				}
				t.Cleanup(func() { f.Latch.ClearFaults(); f.Latch.SetWrongHost(false) })
				want := tc.closed
				if mode == "open" {
					want = tc.open
				}
				code, stderr, took := f.check(t, cfgs[mode], "alice")
				if code != want {
					t.Fatalf("exit %d, want %d; stderr: %s", code, want, stderr)
				}
				if took > time.Second+500*time.Millisecond {
					t.Fatalf("took %v with a 1s deadline", took)
				}
			})
		}
	}
}

// TestLatchStates: open allows, closed denies with the reason on stderr,
// an unmapped user follows the unpaired policy.
func TestLatchStates(t *testing.T) {
	f := newFixture(t)
	acc := f.Pair()
	cfg := f.config(t, `fail_mode = "closed"`, map[string]string{"alice": acc})
	deny := f.config(t, "fail_mode = \"closed\"\nunpaired = \"deny\"", map[string]string{"alice": acc})
	if code, stderr, _ := f.check(t, cfg, "alice"); code != 0 || !strings.Contains(stderr, "allowed") {
		t.Fatalf("open latch: exit %d, %s", code, stderr)
	}
	f.SetLatch(acc, false)
	if code, stderr, _ := f.check(t, cfg, "alice"); code != 1 || !strings.Contains(stderr, "latch closed") {
		t.Fatalf("closed latch: exit %d, %s", code, stderr)
	}
	if code, _, _ := f.check(t, cfg, "root"); code != 0 {
		t.Fatalf("unmapped user, unpaired=allow: exit %d", code)
	}
	if code, _, _ := f.check(t, deny, "root"); code != 1 {
		t.Fatalf("unmapped user, unpaired=deny: exit %d", code)
	}
}

func TestUsage(t *testing.T) {
	f := newFixture(t)
	for _, args := range [][]string{{}, {"a", "b"}, {"--nosuchflag", "a"}} {
		_, _, code := systest.Run(t, exec.Command(f.bin, args...))
		if code != 2 {
			t.Errorf("latch-check %q: exit %d, want 2", args, code)
		}
	}
	// A config that cannot be read denies (exit 1), it is not a usage error.
	if code, stderr, _ := f.check(t, "/nonexistent/latch.toml", "alice"); code != 1 || !strings.Contains(stderr, "denied") {
		t.Fatalf("missing config: exit %d, %s", code, stderr)
	}
}

// TestHostileEnvironment: variables a user or a broken profile could set do
// not change decisions.
func TestHostileEnvironment(t *testing.T) {
	f := newFixture(t)
	acc := f.Pair()
	cfg := f.config(t, `fail_mode = "closed"`, map[string]string{"alice": acc})
	hostile := []string{
		"HTTPS_PROXY=http://127.0.0.1:1", "https_proxy=http://127.0.0.1:1", "ALL_PROXY=http://127.0.0.1:1",
		"SSL_CERT_FILE=/dev/null", "SSL_CERT_DIR=/nonexistent",
		"GODEBUG=netdns=go+2,x509usefallbackroots=1,tlsrsakex=1",
		"USER=root", "LOGNAME=root", "HOME=/", "LOCALDOMAIN=evil.example",
	}
	// Open latch: a proxy in the environment would make the call fail.
	if code, stderr, _ := f.check(t, cfg, "alice", hostile...); code != 0 {
		t.Fatalf("open latch under a hostile environment: exit %d, %s", code, stderr)
	}
	if _, stderr, _ := f.check(t, cfg, "alice", hostile...); strings.Contains(stderr, "go package net") {
		t.Fatalf("GODEBUG from the environment took effect: %s", stderr)
	}
	// Closed latch: USER=alice-is-root changes nothing.
	f.SetLatch(acc, false)
	if code, _, _ := f.check(t, cfg, "alice", hostile...); code != 1 {
		t.Fatalf("closed latch under a hostile environment: exit %d", code)
	}
	// SSL_CERT_FILE pointing at the fake's CA must not make system roots
	// trust it: without ca_file, fail closed.
	noCA := f.WriteConfig(t, systest.Config{Policy: `fail_mode = "closed"`, Users: map[string]string{"alice": acc}, NoCAFile: true})
	f.SetLatch(acc, true)
	if code, stderr, _ := f.check(t, noCA, "alice", "SSL_CERT_FILE="+f.CAFile, "SSL_CERT_DIR="+filepath.Dir(f.CAFile)); code != 1 || !strings.Contains(stderr, "TLS") {
		t.Fatalf("SSL_CERT_FILE was honoured: exit %d, %s", code, stderr)
	}
}

// TestPAMModeEnvironment drives the binary as pam_exec does, without PAM:
// the user comes from PAM_USER only, open_session, close_session and
// password pass (the session phases only register the session),
// unknown types deny, and a PAM_USER smuggled in twice is refused.
func TestPAMModeEnvironment(t *testing.T) {
	f := newFixture(t)
	acc := f.Pair()
	// unpaired = "allow": a smuggled or mangled PAM_USER naming an
	// unmapped user would be let in, so these cases can tell.
	cfg := f.config(t, `fail_mode = "closed"`+"\nunpaired = \"allow\"", map[string]string{"alice": acc})
	f.SetLatch(acc, false)
	run := func(env ...string) (int, string) {
		cmd := exec.Command(f.bin, "-c", cfg)
		cmd.Env = env
		stdout, _, code := systest.Run(t, cmd)
		return code, stdout
	}
	base := []string{"PAM_SERVICE=sshd", "PAM_RHOST=192.0.2.7"}
	for _, tc := range []struct {
		name string
		env  []string
		code int
	}{
		{"account, closed latch", append([]string{"PAM_TYPE=account", "PAM_USER=alice", "USER=bob"}, base...), 1},
		{"auth, closed latch", append([]string{"PAM_TYPE=auth", "PAM_USER=alice"}, base...), 1},
		// The session line registers the session; account decides.
		{"open_session passes", append([]string{"PAM_TYPE=open_session", "PAM_USER=alice"}, base...), 0},
		{"close_session passes", append([]string{"PAM_TYPE=close_session", "PAM_USER=alice"}, base...), 0},
		{"password passes", append([]string{"PAM_TYPE=password", "PAM_USER=alice"}, base...), 0},
		{"unknown type denies", append([]string{"PAM_TYPE=weird", "PAM_USER=alice"}, base...), 1},
		{"no PAM_USER denies", append([]string{"PAM_TYPE=account"}, base...), 1},
		{"PAM_USER twice denies", append([]string{"PAM_USER=bob", "PAM_TYPE=account", "PAM_USER=alice"}, base...), 1},
		{"PAM_USER with a newline", append([]string{"PAM_TYPE=account", "PAM_USER=bob\nalice"}, base...), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout := run(tc.env...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stdout %q)", code, tc.code, stdout)
			}
			if code != 0 && strings.Count(stdout, "\n") != 1 {
				t.Fatalf("refusal should be one line on stdout, got %q", stdout)
			}
		})
	}
	// Under pam_exec a USER argument is a usage error.
	cmd := exec.Command(f.bin, "-c", cfg, "alice")
	cmd.Env = []string{"PAM_TYPE=account", "PAM_USER=alice"}
	if _, _, code := systest.Run(t, cmd); code != 2 {
		t.Fatalf("USER argument under pam_exec: exit %d, want 2", code)
	}
}
