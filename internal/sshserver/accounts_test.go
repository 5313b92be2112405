package sshserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// debianSSHDPAM is Debian 12's /etc/pam.d/sshd as far as a key login goes:
// pam_nologin, then common-account as pam-auth-update writes it (pam_unix,
// with new_authtok_reqd=done), and a session stack that does nothing
// visible. auth is denied: key logins never run it.
const debianSSHDPAM = `auth     required pam_deny.so
account  required pam_nologin.so
account  [success=1 new_authtok_reqd=done default=ignore] pam_unix.so
account  requisite pam_deny.so
account  required pam_permit.so
password required pam_deny.so
session  required pam_permit.so
`

// loginResult is what a person running `ssh host 'echo logged-in'` sees.
type loginResult struct {
	in             bool // a session ran (ssh did not exit 255)
	exit           int
	stdout, stderr string
}

func (r loginResult) String() string {
	return fmt.Sprintf("in=%v exit=%d stdout=%q stderr=%q", r.in, r.exit, r.stdout, r.stderr)
}

// sshLogin runs OpenSSH's client against target as u, with banners shown
// (LogLevel INFO) and ssh's own known-hosts chatter dropped.
func sshLogin(t *testing.T, target *systest.Target, u *systest.User) loginResult {
	t.Helper()
	stdout, stderr, code := systest.Run(t, target.SSHOpts(t, u, []string{"-o", "LogLevel=INFO"}, "echo logged-in"))
	var keep []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if l != "" && !strings.HasPrefix(l, "Warning: Permanently added") {
			keep = append(keep, l)
		}
	}
	return loginResult{in: code != 255, exit: code, stdout: stdout, stderr: strings.Join(keep, "")}
}

// TestRealUsersAccountStates (issue 13, point 2: real users' accounts):
// for real accounts in every state that useradd, passwd, usermod and chage
// leave them in, the embedded server and the distribution's own sshd
// (UsePAM yes, Debian's account stack) give a key login the same outcome:
// logged in or refused, and the same words to the person. A locked
// password ("!" from useradd, passwd -l, usermod -L; "!!", "*", "*LK*")
// does not block a key: cloud images lock the default user's password and
// log them in by key. The one deliberate difference is a password that
// must be changed: sshd lets the key in only to run passwd (nothing without
// a terminal), the embedded server, which cannot change passwords, refuses;
// either way no command runs. Latch is never asked for a refused account.
func TestRealUsersAccountStates(t *testing.T) {
	tools := systest.Require(t, "ssh", "sshd", "usermod", "chage", "chpasswd", "passwd", "getent",
		"/usr/sbin/nologin", "/bin/false")
	f := newFixture(t)
	today := time.Now().Unix() / 86400
	sh := func(args ...string) func(t *testing.T, u *systest.User) {
		return func(t *testing.T, u *systest.User) {
			t.Helper()
			cmd := exec.Command(tools[args[0]], append(args[1:], u.Name)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v %s: %v: %s", args, u.Name, err, out)
			}
		}
	}
	withPassword := func(t *testing.T, u *systest.User) {
		t.Helper()
		cmd := exec.Command(tools["chpasswd"])
		cmd.Stdin = strings.NewReader(u.Name + ":correct horse battery staple\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chpasswd: %v: %s", err, out)
		}
	}
	const (
		expired   = "Your account has expired; please contact your system administrator."
		nologin   = "This account is currently not available."
		mustAdmin = "You are required to change your password immediately (administrator enforced)."
		mustAged  = "You are required to change your password immediately (password expired)."
		noTTY     = "Password change required but no TTY available."
		noChange  = "this server cannot change passwords"
	)
	cases := []struct {
		name  string
		opts  systest.UserOptions
		setup []func(*testing.T, *systest.User)
		// field is the password field the setup must leave (checked, so
		// that the test knows which state it tests); "" skips the check,
		// "!$" means "!" followed by a hash.
		field string
		in    bool     // logged in on both servers (unless sshdOnly)
		see   []string // what the person sees, from both servers
		// sshdOnly: the deliberate difference (a password that must be
		// changed): sshd logs the key in to run only passwd, the embedded
		// server refuses; embeddedSees is its extra line.
		sshdOnly          bool
		sshdSees, embSees []string
	}{
		{name: "plain useradd", opts: systest.UserOptions{PlainUseradd: true}, field: "!", in: true},
		{name: "star", field: "*", in: true},
		{name: "passwd -l", setup: []func(*testing.T, *systest.User){withPassword, sh("passwd", "-l")}, field: "!$", in: true},
		{name: "usermod -L", setup: []func(*testing.T, *systest.User){withPassword, sh("usermod", "-L")}, field: "!$", in: true},
		{name: "RHEL useradd !!", setup: []func(*testing.T, *systest.User){sh("usermod", "-p", "!!")}, field: "!!", in: true},
		{name: "Solaris *LK*", setup: []func(*testing.T, *systest.User){sh("usermod", "-p", "*LK*")}, field: "*LK*", in: true},
		{name: "usermod -e 1", opts: systest.UserOptions{PlainUseradd: true}, setup: []func(*testing.T, *systest.User){sh("usermod", "-e", "1")},
			see: []string{expired}},
		{name: "chage -E today", setup: []func(*testing.T, *systest.User){sh("chage", "-E", fmt.Sprint(today))}, see: []string{expired}},
		{name: "chage -E tomorrow", setup: []func(*testing.T, *systest.User){sh("chage", "-E", fmt.Sprint(today+1))}, in: true},
		{name: "nologin shell", opts: systest.UserOptions{Shell: tools["/usr/sbin/nologin"]}, in: true, see: []string{nologin}},
		{name: "false shell", opts: systest.UserOptions{Shell: tools["/bin/false"]}, in: true},
		{name: "missing shell", opts: systest.UserOptions{Shell: "/nonexistent/shell"}},
		{name: "chage -d 0", opts: systest.UserOptions{PlainUseradd: true}, setup: []func(*testing.T, *systest.User){sh("chage", "-d", "0")},
			sshdOnly: true, see: []string{mustAdmin}, sshdSees: []string{noTTY}, embSees: []string{noChange}},
		{name: "aged past max", setup: []func(*testing.T, *systest.User){sh("chage", "-d", fmt.Sprint(today-10), "-M", "5")},
			sshdOnly: true, see: []string{mustAged}, sshdSees: []string{noTTY}, embSees: []string{noChange}},
		{name: "aged, warned", setup: []func(*testing.T, *systest.User){sh("chage", "-d", fmt.Sprint(today-3), "-M", "5")}, in: true,
			see: []string{"Warning: your password will expire in 2 days."}},
		{name: "aged, not yet warned", setup: []func(*testing.T, *systest.User){sh("chage", "-d", fmt.Sprint(today-3), "-M", "30", "-W", "7")}, in: true},
		{name: "aging without a last change", setup: []func(*testing.T, *systest.User){sh("chage", "-d", "-1", "-M", "5")},
			sshdOnly: true, see: []string{mustAged}, sshdSees: []string{noTTY}, embSees: []string{noChange}},
		{name: "aged past max and inactive", setup: []func(*testing.T, *systest.User){sh("chage", "-d", fmt.Sprint(today-10), "-M", "5", "-I", "2")},
			see: []string{expired}},
		{name: "aged past max, within inactive", setup: []func(*testing.T, *systest.User){sh("chage", "-d", fmt.Sprint(today-10), "-M", "5", "-I", "20")},
			sshdOnly: true, see: []string{mustAged}, sshdSees: []string{noTTY}, embSees: []string{noChange}},
	}
	us := make([]*systest.User, len(cases))
	accs := make([]string, len(cases))
	for i, tc := range cases {
		us[i], accs[i] = f.user(t, tc.opts)
		for _, fn := range tc.setup {
			fn(t, us[i])
		}
		if tc.field != "" {
			out, err := exec.Command(tools["getent"], "shadow", us[i].Name).Output()
			if err != nil {
				t.Fatalf("getent shadow %s: %v", us[i].Name, err)
			}
			pw := strings.Split(string(out), ":")[1]
			if ok := pw == tc.field || (tc.field == "!$" && strings.HasPrefix(pw, "!$")); !ok {
				t.Fatalf("%s: password field %q, want %q", tc.name, pw, tc.field)
			}
		}
	}
	f.start(t, nil)
	sshd := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, PAM: debianSSHDPAM})
	f.latch.ResetRequests()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := us[i]
			real := sshLogin(t, &sshd.Target, u)
			emb := sshLogin(t, &f.target, u)
			if real.in != (tc.in || tc.sshdOnly) {
				t.Errorf("sshd: %v, want logged in = %v", real, tc.in || tc.sshdOnly)
			}
			if emb.in != tc.in {
				t.Errorf("embedded: %v, want logged in = %v", emb, tc.in)
			}
			if tc.in && (real.exit != emb.exit || real.stdout != emb.stdout || real.stderr != emb.stderr) {
				t.Errorf("the person sees different things:\nsshd:     %v\nembedded: %v", real, emb)
			}
			if tc.in && len(tc.see) == 0 && tc.opts.Shell == "" && emb.stdout != "logged-in\n" {
				t.Errorf("embedded: %v, want the command's output", emb)
			}
			for _, w := range append(append([]string{}, tc.see...), tc.sshdSees...) {
				if !strings.Contains(real.stdout+real.stderr, w) {
					t.Errorf("sshd: %v, want %q", real, w)
				}
			}
			for _, w := range append(append([]string{}, tc.see...), tc.embSees...) {
				if !strings.Contains(emb.stdout+emb.stderr, w) {
					t.Errorf("embedded: %v, want %q", emb, w)
				}
			}
			if !tc.in && !tc.sshdOnly && strings.Contains(real.stdout+emb.stdout, "logged-in") {
				t.Errorf("a refused login ran the command: sshd %v, embedded %v", real, emb)
			}
			if n := f.latchCalls(accs[i]); tc.in && n == 0 {
				t.Errorf("embedded: logged in without asking Latch")
			} else if !tc.in && n != 0 {
				t.Errorf("embedded: %d Latch calls for an account that cannot log in", n)
			}
		})
	}
}

// TestRealUsersNologinFile (issue 13, point 2: real users' accounts):
// while a nologin file exists, the distribution's sshd (pam_nologin heads
// Debian's and Fedora's sshd account stack) and the embedded server refuse
// a key login and show the person its content; once it is gone, both let
// them in. systemd writes /run/nologin before a shutdown and while booting.
// The file here is a private one (pam_nologin file=, and the account rule given it through
// Options.checkLogin): the
// real /etc/nologin would stop every login on the machine.
func TestRealUsersNologinFile(t *testing.T) {
	systest.Require(t, "ssh", "sshd")
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{PlainUseradd: true})
	file := filepath.Join(t.TempDir(), "nologin")
	const notice = "Maintenance until 06:00, back soon."
	if err := os.WriteFile(file, []byte(notice+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start(t, func(o *Options) {
		o.checkLogin = func(acct spawn.Account, now time.Time) (string, error) {
			return spawn.CheckLogin(acct, now, []string{file})
		}
	})
	sshd := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true,
		PAM: strings.Replace(debianSSHDPAM, "pam_nologin.so", "pam_nologin.so file="+file, 1)})
	targets := map[string]*systest.Target{"sshd": &sshd.Target, "embedded": &f.target}
	for name, target := range targets {
		if r := sshLogin(t, target, u); r.in || !strings.Contains(r.stderr, notice) {
			t.Errorf("%s with a nologin file: %v, want refused, showing %q", name, r, notice)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	for name, target := range targets {
		if r := sshLogin(t, target, u); !r.in || r.stdout != "logged-in\n" {
			t.Errorf("%s without the nologin file: %v, want logged in", name, r)
		}
	}
}
