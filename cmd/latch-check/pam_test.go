package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// recipe returns the account line of packaging/pam/NAME (the file the
// README tells admins to use), pointed at the binary under test and its
// config. The file has exactly that line and the session line, both
// running /usr/sbin/latch-check.
func recipe(t *testing.T, name, bin, cfg string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "packaging", "pam", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			typ, _, _ := strings.Cut(l, " ")
			if lines[typ] != "" || (typ != "account" && typ != "session") {
				t.Fatalf("packaging/pam/%s: unexpected PAM line %q", name, l)
			}
			if !strings.Contains(l, "/usr/sbin/latch-check") {
				t.Fatalf("packaging/pam/%s does not run /usr/sbin/latch-check: %q", name, l)
			}
			lines[typ] = l
		}
	}
	if lines["account"] == "" || lines["session"] == "" {
		t.Fatalf("packaging/pam/%s lacks the account or the session line: %q", name, lines)
	}
	return strings.Replace(lines["account"], "/usr/sbin/latch-check", bin+" -c "+cfg, 1)
}

// writeHookService writes the PAM service name whose account stack is the
// hook line between pam_permit lines (auth permitted), as the tests that
// run pamtester in place of su or sudo need.
func writeHookService(t *testing.T, name, hook string) {
	t.Helper()
	systest.WritePAMService(t, name, "auth required pam_permit.so\n"+hook+"\naccount required pam_permit.so\n")
}

// hookLine is a pam_exec account line running bin with cfg, with or
// without seteuid (the shipped lines all have it; the tests show why).
func hookLine(bin, cfg string, seteuid bool) string {
	opt := "quiet"
	if seteuid {
		opt = "quiet seteuid"
	}
	return "account required pam_exec.so " + opt + " " + bin + " -c " + cfg
}

// TestRealPAM drives real Linux-PAM stacks with pamtester.
func TestRealPAM(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	exemptGroup := systest.CreateGroup(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	admin := systest.CreateUser(t, systest.UserOptions{Groups: []string{exemptGroup}})
	adminAcc := f.Pair()
	users := map[string]string{alice.Name: acc, admin.Name: adminAcc}
	cfgs := map[string]string{
		"closed":        f.config(t, `fail_mode = "closed"`, users),
		"open":          f.config(t, `fail_mode = "open"`, users),
		"unpaired-deny": f.config(t, "fail_mode = \"closed\"\nunpaired = \"deny\"", users),
		"exempt":        f.config(t, "fail_mode = \"closed\"\nexempt_groups = [\""+exemptGroup+"\"]", users),
	}
	service := "latch-pamtest-" + alice.Name
	stack := func(cfg string) string {
		return "auth required pam_permit.so\n" +
			"auth required pam_exec.so quiet " + f.bin + " -c " + cfg + "\n" +
			"account required pam_exec.so quiet " + f.bin + " -c " + cfg + "\n" +
			"account required pam_permit.so\n"
	}
	for _, tc := range []struct {
		name    string
		cfg     string
		user    *systest.User
		arrange func()
		op      string
		want    int // 0 success, 1 any failure
	}{
		{"account: open latch", "closed", alice, func() { f.SetLatch(acc, true) }, "acct_mgmt", 0},
		{"account: closed latch", "closed", alice, func() { f.SetLatch(acc, false) }, "acct_mgmt", 1},
		{"auth: open latch", "closed", alice, func() { f.SetLatch(acc, true) }, "authenticate", 0},
		{"auth: closed latch", "closed", alice, func() { f.SetLatch(acc, false) }, "authenticate", 1},
		{"unpaired allow", "closed", nil, nil, "acct_mgmt", 0},
		{"unpaired deny", "unpaired-deny", nil, nil, "acct_mgmt", 1},
		{"fail closed on hang", "closed", alice, func() { f.SetLatch(acc, true); f.Latch.SetFault(acc, latchtest.Fault{Hang: true}) }, "acct_mgmt", 1},
		{"fail open on hang", "open", alice, func() { f.Latch.SetFault(acc, latchtest.Fault{Hang: true}) }, "acct_mgmt", 0},
		{"exempt group, closed latch", "exempt", admin, func() { f.SetLatch(adminAcc, false) }, "acct_mgmt", 0},
		{"not exempt, closed latch", "exempt", alice, func() { f.SetLatch(acc, false) }, "acct_mgmt", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Latch.ClearFaults()
			if tc.arrange != nil {
				tc.arrange()
			}
			systest.WritePAMService(t, service, stack(cfgs[tc.cfg]))
			user := "root" // in no [users]: the unpaired policy
			if tc.user != nil {
				user = tc.user.Name
			}
			code, out := systest.PAMTester(t, service, user, tc.op)
			if (code == 0) != (tc.want == 0) {
				t.Fatalf("pamtester %s %s: exit %d, want success=%v\n%s", user, tc.op, code, tc.want == 0, out)
			}
		})
	}
}

// TestSuLikeServiceWithSeteuid runs the su recipe (pam_exec with seteuid)
// from a setuid-root copy of pamtester started by an ordinary user, as su
// is: real uid the caller, effective uid root. The hook must still read
// the root-only config and decide for PAM_USER, not for the caller.
func TestSuLikeServiceWithSeteuid(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	caller := systest.CreateUser(t, systest.UserOptions{})
	target := systest.CreateUser(t, systest.UserOptions{})
	cfg := f.config(t, `fail_mode = "closed"`, map[string]string{target.Name: acc})
	// The config directory must be readable only by root for this to mean
	// anything: the caller cannot read the config.
	if err := os.Chmod(f.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	suid := setuidPAMTester(t)
	logs := systest.CaptureSyslog(t)
	service := "latch-sutest-" + target.Name
	run := func() int {
		cmd := caller.Command(suid, service, target.Name, "acct_mgmt")
		_, _, code := systest.Run(t, cmd)
		return code
	}
	writeHookService(t, service, recipe(t, "su", f.bin, cfg))
	if code := run(); code != 0 {
		t.Fatalf("su-like with seteuid, open latch: exit %d, want 0\n%s", code, logs.String())
	}
	f.SetLatch(acc, false)
	if code := run(); code == 0 {
		t.Fatal("su-like with seteuid, closed latch: allowed")
	}
}

// TestRealSSHD puts the README's hook (packaging/pam/sshd) in the account
// stack of a real sshd and logs in with the real ssh client and a public key.
func TestRealSSHD(t *testing.T) {
	systest.Require(t, "sshd", "ssh", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	alice := systest.CreateUser(t, systest.UserOptions{})
	cfg := f.config(t, `fail_mode = "closed"`, map[string]string{alice.Name: acc})
	hook := recipe(t, "sshd", f.bin, cfg)
	sshd := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, PAM: systest.PAMStack(hook)})
	logs := systest.CaptureSyslog(t)
	marker := filepath.Join(alice.Home, "ran")

	// Open: the command runs and its exit code comes back.
	_, stderr, code := systest.Run(t, sshd.SSH(t, alice, "touch "+marker+"; exit 7"))
	if code != 7 {
		t.Fatalf("open latch: exit %d, want 7; %s", code, stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("open latch: command did not run: %v", err)
	}
	os.Remove(marker)
	line := logs.WaitFor(t, decisionFor(alice.Name, "allow"), 5*time.Second)
	assertAuditFields(t, line.Message, alice.Name)
	if line.Facility != 10 {
		t.Fatalf("audit facility %d, want 10 (authpriv)", line.Facility)
	}

	// Closed: refused, the command's side effect does not happen.
	f.SetLatch(acc, false)
	_, stderr, code = systest.Run(t, sshd.SSH(t, alice, "touch "+marker))
	if code != 255 {
		t.Fatalf("closed latch: exit %d, want 255; %s", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("closed latch: the command ran")
	}
	logs.WaitFor(t, decisionFor(alice.Name, "deny"), 5*time.Second)

	// Closed: a port forward without a command (ssh -N -L) is refused too.
	port := systest.FreePort(t)
	_, stderr, code = systest.Run(t, sshd.SSH(t, alice, "-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:"+strconv.Itoa(port)+":127.0.0.1:"+strconv.Itoa(sshd.Port)))
	if code != 255 {
		t.Fatalf("closed latch, ssh -N -L: exit %d, want 255; %s", code, stderr)
	}
	// Exactly one decision line per login attempt: open, closed, forward.
	if n := countDecisions(logs, alice.Name); n != 3 {
		t.Fatalf("%d audit decision lines for 3 logins:\n%s", n, logs.String())
	}

	// With pam_exec's stdout option the refusal line reaches a BatchMode
	// client (sshd sends it as a banner when the account stack fails).
	sshd.SetPAM(t, systest.PAMStack(strings.Replace(hook, " quiet ", " quiet stdout ", 1)))
	// ssh keeps the first value of an option, so swap the harness's
	// LogLevel=ERROR (which hides banners) for INFO.
	cmd := sshd.SSH(t, alice, "true")
	for i, a := range cmd.Args {
		if a == "LogLevel=ERROR" {
			cmd.Args[i] = "LogLevel=INFO"
		}
	}
	_, stderr, code = systest.Run(t, cmd)
	if code != 255 || !strings.Contains(stderr, "your latch is closed") {
		t.Fatalf("refusal line with stdout: exit %d, stderr %q", code, stderr)
	}
}

func decisionFor(user, outcome string) func(systest.SyslogLine) bool {
	return func(l systest.SyslogLine) bool {
		return l.Tag == "latch-ssh" && strings.Contains(l.Message, `"user":"`+user+`"`) && strings.Contains(l.Message, `"outcome":"`+outcome+`"`)
	}
}

func countDecisions(s *systest.Syslog, user string) int {
	n := 0
	for _, l := range s.Lines() {
		if l.Tag == "latch-ssh" && strings.Contains(l.Message, `"event":"decision"`) && strings.Contains(l.Message, `"user":"`+user+`"`) {
			n++
		}
	}
	return n
}

func assertAuditFields(t *testing.T, msg, user string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(msg[strings.Index(msg, "{"):]), &m); err != nil {
		t.Fatalf("audit line is not JSON: %q", msg)
	}
	for _, k := range []string{"user", "service", "remote", "operation", "outcome", "reason", "latency_ms", "fail_mode_applied"} {
		if _, ok := m[k]; !ok {
			t.Errorf("audit line lacks %q: %s", k, msg)
		}
	}
	if m["user"] != user || m["remote"] != "127.0.0.1" {
		t.Errorf("audit line user/remote: %s", msg)
	}
}
