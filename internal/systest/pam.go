package systest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// PAMDir is where Linux-PAM reads service files.
const PAMDir = "/etc/pam.d"

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// pamMarker is the first line of every service file the harness writes; it
// is how WritePAMService knows that a file exists because this same test
// wrote it, so a test may change its stack mid-way but never clobbers a
// system file (or another test's). It names the top-level test, so subtests
// may change the stack of their parent's sshd.
func pamMarker(t testing.TB) string {
	top, _, _ := strings.Cut(t.Name(), "/")
	return "# written by latch-ssh internal/systest for " + top + "; removed when it ends\n"
}

// WritePAMService writes /etc/pam.d/NAME and removes it at cleanup. It
// refuses (fails the test) to overwrite a file this test (or its top-level
// parent) did not write;
// rewriting its own file is allowed and atomic (rename), so a running sshd
// sees either stack, never a torn one. PAM reads the file on every pam_start.
func WritePAMService(t testing.TB, name, content string) {
	t.Helper()
	if !serviceName.MatchString(name) {
		t.Fatalf("systest: bad PAM service name %q", name)
	}
	p := filepath.Join(PAMDir, name)
	marker := pamMarker(t)
	old, err := os.ReadFile(p)
	switch {
	case err == nil && !strings.HasPrefix(string(old), marker):
		t.Fatalf("systest: refusing to overwrite %s: this test did not create it", p)
	case err != nil && !os.IsNotExist(err):
		t.Fatalf("systest: %v", err)
	}
	tmp := filepath.Join(PAMDir, "."+name+".systest-tmp")
	if err := os.WriteFile(tmp, []byte(marker+content), 0o644); err != nil {
		t.Fatalf("systest: %v", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		t.Fatalf("systest: %v", err)
	}
	if old == nil {
		t.Cleanup(func() { os.Remove(p) })
	}
}

// PAMStack returns a complete, self-contained PAM service: the given account
// lines first, then pam_unix for account (expiry, as common-account does),
// auth and password denied (public-key logins never run auth, and tests use
// no passwords), and a quiet pam_permit session. Write every type: when a
// service file lacks a type, Linux-PAM falls back to /etc/pam.d/other for it
// (an empty file permits logins through other's common-account).
func PAMStack(account ...string) string {
	var b strings.Builder
	b.WriteString("auth     required pam_deny.so\n")
	for _, l := range account {
		b.WriteString(l + "\n")
	}
	b.WriteString("account  required pam_unix.so\n")
	b.WriteString("password required pam_deny.so\n")
	b.WriteString("session  required pam_permit.so\n")
	return b.String()
}

// PAMEnv returns a PAMTester argument that sets KEY=VALUE in the PAM
// environment (pamtester -E). pam_exec gives its program only the PAM
// environment and the PAM_* items, never pamtester's own environment, so this
// is how to fake what sshd puts there (SSH_CONNECTION, SSH_AUTH_INFO_0).
func PAMEnv(key, value string) string { return "-E" + key + "=" + value }

// PAMItem returns a PAMTester argument that sets a PAM item (pamtester -I):
// rhost, ruser, tty (pam_exec exports them as PAM_RHOST, PAM_RUSER, PAM_TTY).
func PAMItem(item, value string) string { return "-I" + item + "=" + value }

// PAMTester runs `pamtester -v [flags] service user ops...` and returns its
// exit status (0: every operation succeeded) and combined output. ops are
// pamtester operations (acct_mgmt, open_session, authenticate, ...) and
// PAMEnv/PAMItem arguments, in any order. stdin is /dev/null, so a module
// that prompts fails instead of hanging.
func PAMTester(t testing.TB, service, user string, ops ...string) (exitCode int, output string) {
	t.Helper()
	tool := Require(t, "pamtester")["pamtester"]
	args := []string{"-v"}
	var rest []string
	for _, op := range ops {
		if strings.HasPrefix(op, "-") {
			args = append(args, op)
		} else {
			rest = append(rest, op)
		}
	}
	args = append(append(args, service, user), rest...)
	cmd := exec.Command(tool, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_, _, code := Run(t, cmd)
	return code, out.String()
}
