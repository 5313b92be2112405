package systest

import (
	"fmt"
	"log/syslog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// login runs `ssh u@sshd cmd` and returns stdout, stderr and the exit status.
func login(t *testing.T, s *SSHD, u *User, cmd string) (string, string, int) {
	t.Helper()
	return Run(t, s.SSH(t, u, cmd))
}

func TestSSHDLogin(t *testing.T) {
	for _, usePAM := range []bool{true, false} {
		t.Run(fmt.Sprintf("UsePAM=%v", usePAM), func(t *testing.T) {
			t.Parallel()
			u := CreateUser(t, UserOptions{})
			s := StartSSHD(t, SSHDOptions{UsePAM: usePAM})
			if out, errOut, code := login(t, s, u, "exit 7"); code != 7 {
				t.Fatalf("exit 7: got %d, %q %q", code, out, errOut)
			}
			if out, errOut, code := login(t, s, u, "echo hi"); code != 0 || out != "hi\n" {
				t.Fatalf("echo hi: got %d, %q %q", code, out, errOut)
			}
			// The user's identity on the server is the created account.
			if out, _, _ := login(t, s, u, "id -un; echo $HOME"); out != u.Name+"\n"+u.Home+"\n" {
				t.Fatalf("id/HOME: %q", out)
			}
		})
	}
}

// TestSSHDPrivatePAMService proves that sshd run through the sshd-<random>
// link uses /etc/pam.d/sshd-<random>: a deny stack refuses, a pam_exec hook
// decides by its exit status and sees the PAM items of this service, and
// what the hook logs through log/syslog reaches CaptureSyslog.
func TestSSHDPrivatePAMService(t *testing.T) {
	hook := BuildBinary(t, "./testdata/pamhook")
	logs := CaptureSyslog(t)
	u := CreateUser(t, UserOptions{})
	s := StartSSHD(t, SSHDOptions{UsePAM: true, PAM: PAMStack("account requisite pam_deny.so")})

	if _, errOut, code := login(t, s, u, "true"); code != 255 {
		t.Fatalf("pam_deny in account: ssh exit %d, want 255 (refused); %s", code, errOut)
	}
	s.WaitLog(t, "Access denied for user "+u.Name+" by PAM account configuration", 10*time.Second)

	envFile := filepath.Join(t.TempDir(), "env")
	// Subtests may change the stack of their parent's sshd.
	t.Run("hook exits 1", func(t *testing.T) {
		s.SetPAM(t, PAMStack("account required pam_exec.so quiet "+hook+" "+envFile+" 1"))
		if _, errOut, code := login(t, s, u, "true"); code != 255 {
			t.Fatalf("ssh exit %d, want 255 (refused); %s", code, errOut)
		}
	})
	t.Run("hook exits 0", func(t *testing.T) {
		s.SetPAM(t, PAMStack("account required pam_exec.so quiet "+hook+" "+envFile+" 0"))
		if out, errOut, code := login(t, s, u, "echo in"); code != 0 || out != "in\n" {
			t.Fatalf("ssh exit %d, %q %q", code, out, errOut)
		}
	})
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PAM_USER=" + u.Name, "PAM_SERVICE=" + s.PAMService,
		"PAM_TYPE=account", "PAM_RHOST=127.0.0.1", "SSH_CONNECTION=127.0.0.1 "} {
		if !strings.Contains("\n"+string(env), "\n"+want) {
			t.Errorf("hook environment lacks %q:\n%s", want, env)
		}
	}
	l := logs.WaitFor(t, func(l SyslogLine) bool {
		return l.Tag == "latch-ssh" && strings.Contains(l.Message, "user="+u.Name)
	}, 10*time.Second)
	if l.Facility != 10 || l.Severity != 4 || !strings.Contains(l.Message, "type=account") {
		t.Errorf("hook's syslog line: %+v", l)
	}
}

func TestPAMTester(t *testing.T) {
	hook := BuildBinary(t, "./testdata/pamhook")
	u := CreateUser(t, UserOptions{})
	svc := randomName("ltpam", 6)

	WritePAMService(t, svc, PAMStack("account required pam_permit.so"))
	if code, out := PAMTester(t, svc, u.Name, "acct_mgmt"); code != 0 {
		t.Fatalf("pam_permit: exit %d\n%s", code, out)
	}
	WritePAMService(t, svc, PAMStack("account requisite pam_deny.so"))
	if code, out := PAMTester(t, svc, u.Name, "acct_mgmt"); code == 0 {
		t.Fatalf("pam_deny: exit 0\n%s", out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	WritePAMService(t, svc, PAMStack("account required pam_exec.so quiet "+hook+" "+envFile+" 0"))
	code, out := PAMTester(t, svc, u.Name, "acct_mgmt", PAMItem("rhost", "192.0.2.7"),
		PAMEnv("SSH_CONNECTION", "192.0.2.7 50000 127.0.0.1 22"))
	if code != 0 {
		t.Fatalf("pam_exec hook: exit %d\n%s", code, out)
	}
	env, _ := os.ReadFile(envFile)
	for _, want := range []string{"PAM_USER=" + u.Name, "PAM_SERVICE=" + svc, "PAM_TYPE=account",
		"PAM_RHOST=192.0.2.7", "SSH_CONNECTION=192.0.2.7 50000 127.0.0.1 22"} {
		if !strings.Contains("\n"+string(env), "\n"+want+"\n") {
			t.Errorf("hook environment lacks %q:\n%s", want, env)
		}
	}
}

// fatalRecorder records a Fatalf instead of failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWritePAMServiceRefusesForeignFile(t *testing.T) {
	Require(t)
	before, err := os.ReadFile("/etc/pam.d/other")
	if err != nil {
		t.Skip("no /etc/pam.d/other:", err)
	}
	rec := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { WritePAMService(rec, "other", "account required pam_permit.so\n") })
	wg.Wait()
	if !strings.Contains(rec.msg, "refusing to overwrite") {
		t.Errorf("want a refusal, got %q", rec.msg)
	}
	if after, _ := os.ReadFile("/etc/pam.d/other"); string(after) != string(before) {
		t.Fatal("/etc/pam.d/other was modified")
	}
}

func TestSyslogCapture(t *testing.T) {
	logs := CaptureSyslog(t)
	w, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_WARNING, "latch-ssh")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("decision user=alice outcome=deny")); err != nil {
		t.Fatal(err)
	}
	l := logs.WaitFor(t, func(l SyslogLine) bool { return l.Tag == "latch-ssh" }, 5*time.Second)
	want := SyslogLine{Facility: 10, Severity: 4, Tag: "latch-ssh", PID: os.Getpid(),
		Message: "decision user=alice outcome=deny", Raw: l.Raw}
	if l != want {
		t.Errorf("got %+v\nwant %+v", l, want)
	}
}

func TestParseSyslog(t *testing.T) {
	for raw, want := range map[string]SyslogLine{
		// Go's log/syslog, local socket.
		"<84>Nov 24 06:35:31 latch-check[42]: outcome=deny\n": {Facility: 10, Severity: 4, Tag: "latch-check", PID: 42, Message: "outcome=deny"},
		// glibc syslog(3) from a PAM module, with ": " inside the message.
		"<86>Jan  2 03:04:05 sshd-x[7]: pam_unix(sshd-x:session): session opened": {Facility: 10, Severity: 6, Tag: "sshd-x", PID: 7, Message: "pam_unix(sshd-x:session): session opened"},
		// RFC3164 with a hostname, no pid.
		"<13>Feb 10 10:00:00 host1 tag: hi": {Facility: 1, Severity: 5, Tag: "tag", Message: "hi"},
		"garbage":                           {Facility: -1, Severity: -1, Message: "garbage"},
	} {
		want.Raw = raw
		if got := ParseSyslog(raw); got != want {
			t.Errorf("ParseSyslog(%q)\n got %+v\nwant %+v", raw, got, want)
		}
	}
}

func TestUser(t *testing.T) {
	g := CreateGroup(t)
	u := CreateUser(t, UserOptions{Groups: []string{g}})
	for p, mode := range map[string]os.FileMode{
		filepath.Join(u.Home, ".ssh"):                 os.ModeDir | 0o700,
		filepath.Join(u.Home, ".ssh/authorized_keys"): 0o600,
		u.KeyPath: 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
	}
	if out, errOut, code := Run(t, u.Command("id", "-nG")); code != 0 || !strings.Contains(" "+out, " "+g) {
		t.Errorf("id -nG as the user: %d %q %q, want group %s", code, out, errOut, g)
	}
	// A binary from BuildBinary is executable by the user (SecureDir path).
	hook := BuildBinary(t, "./testdata/pamhook")
	if _, _, code := Run(t, u.Command(hook)); code != 2 {
		t.Errorf("pamhook without arguments as the user: exit %d, want 2 (usage)", code)
	}
}

// TestClients drives scp (SFTP and legacy protocol), sftp, rsync and git
// over the harness's sshd.
func TestClients(t *testing.T) {
	tools := Require(t, "rsync", "git", "/usr/lib/openssh/sftp-server")
	u := CreateUser(t, UserOptions{})
	s := StartSSHD(t, SSHDOptions{UsePAM: true})
	local := filepath.Join(t.TempDir(), "local.txt")
	if err := os.WriteFile(local, []byte("payload\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(name string, cmd *exec.Cmd, remote string) {
		t.Helper()
		if out, errOut, code := Run(t, cmd); code != 0 {
			t.Errorf("%s: exit %d %q %q", name, code, out, errOut)
			return
		}
		if got, err := os.ReadFile(filepath.Join(u.Home, remote)); err != nil || string(got) != "payload\n" {
			t.Errorf("%s: remote file %q, %v", name, got, err)
		}
	}
	check("scp", s.SCP(t, u, local, s.Remote(u, "scp.txt")), "scp.txt")
	check("scp -O", s.SCP(t, u, "-O", local, s.Remote(u, "scp-O.txt")), "scp-O.txt")
	check("sftp", s.SFTP(t, u, "put "+local+" sftp.txt\n"), "sftp.txt")
	check("rsync", exec.Command(tools["rsync"], "-e", s.RsyncSSH(t, u), local, s.Remote(u, "rsync.txt")), "rsync.txt")

	if _, errOut, code := Run(t, u.Command(tools["git"], "init", "-q", "--bare", "repo.git")); code != 0 {
		t.Fatalf("git init: %s", errOut)
	}
	clone := exec.Command(tools["git"], "clone", "-q", s.Remote(u, "repo.git"), filepath.Join(t.TempDir(), "clone"))
	clone.Env = append(os.Environ(), "GIT_SSH_COMMAND="+s.GitSSHCommand(t, u))
	if out, errOut, code := Run(t, clone); code != 0 {
		t.Errorf("git clone: exit %d %q %q", code, out, errOut)
	}
}

func TestRequireFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "true")
	rec := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { Require(rec, "sh", "no-such-tool-xyz", "rsync") })
	wg.Wait()
	if !strings.Contains(rec.msg, "no-such-tool-xyz (apt package ?)") || strings.Contains(rec.msg, "rsync") {
		t.Errorf("Require message: %q", rec.msg)
	}
}

// TestRequirePythonModule: "python3:MODULE" is a module Debian's python3
// imports; a missing one names its package.
func TestRequirePythonModule(t *testing.T) {
	Require(t, "/usr/bin/python3")
	if p, err := lookTool("python3:json"); err != nil || p != "/usr/bin/python3" {
		t.Errorf(`lookTool("python3:json") = %q, %v; want /usr/bin/python3`, p, err)
	}
	if _, err := lookTool("python3:no_such_module_xyz"); err == nil {
		t.Error("a module that does not exist was found")
	}
	t.Setenv("CI", "true")
	rec := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { Require(rec, "python3:no_such_module_xyz", "python3:paramiko") })
	wg.Wait()
	if !strings.Contains(rec.msg, "python3:no_such_module_xyz (apt package ?)") {
		t.Errorf("Require message: %q", rec.msg)
	}
	if aptPackage["python3:paramiko"] != "python3-paramiko" || aptPackage["plink"] != "putty-tools" {
		t.Error("the new tools do not name their Debian packages")
	}
}
