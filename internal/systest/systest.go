// Package systest is the harness for latch-ssh's integration tests, which drive
// the real OpenSSH and Linux-PAM of the machine on loopback: it creates test
// users and groups, private PAM services, private sshd instances, ssh/scp/sftp/
// rsync/git client commands, and captures syslog. NewWorld is where a test
// of a front end starts: the fake Latch, a latch.toml that passes the
// permission checks, and paired users.
//
// It is imported only from _test.go files. Everything it creates is removed in
// t.Cleanup. It needs root (it runs useradd, writes /etc/pam.d, binds /dev/log);
// Require skips a test when root or a tool is missing, or fails it when
// CI=true, where a silent skip would hide an untested front end.
//
// Paths that sshd or a non-root test user must reach: t.TempDir() is under a
// 0700 directory made by the testing package and under world-writable /tmp, so
// a test user cannot traverse it and sshd's safe-path checks (StrictModes,
// AuthorizedKeysCommand) reject it. Put such files in SecureDir instead.
package systest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CommandTimeout bounds every command the harness runs (Run, PAMTester,
// useradd...), so a hung ssh or PAM conversation fails the test instead of
// hanging it until go test's global timeout.
const CommandTimeout = 60 * time.Second

// aptPackage names the Debian package providing each tool we know, for the
// "install it" hint.
var aptPackage = map[string]string{
	"plink": "putty-tools", "pscp": "putty-tools", "psftp": "putty-tools", "puttygen": "putty-tools",
	"/usr/bin/python3": "python3", "python3:asyncssh": "python3-asyncssh", "python3:paramiko": "python3-paramiko",
	"sshd": "openssh-server", "ssh": "openssh-client", "scp": "openssh-client",
	"sftp": "openssh-client", "ssh-keygen": "openssh-client",
	"/usr/lib/openssh/sftp-server": "openssh-sftp-server",
	"pamtester":                    "pamtester", "rsync": "rsync", "git": "git", "git-shell": "git",
	"useradd": "passwd", "userdel": "passwd", "usermod": "passwd",
	"groupadd": "passwd", "groupdel": "passwd", "pkill": "procps", "kill": "procps",
	"prlimit": "util-linux", "nice": "coreutils",
	"go": "golang (or a Go toolchain in PATH)", "ssh-audit": "ssh-audit",
	"promtool": "prometheus",
}

// Tools maps each tool name given to Require to its absolute path.
type Tools map[string]string

// Require checks that the test runs as root and that every tool exists, in
// PATH or in /usr/sbin and /sbin (root's PATH may lack them under sudo); a
// tool containing a slash is taken as a path. When something is missing it
// skips the test, or fails it when CI=true. It returns the resolved paths.
// "python3:MODULE" requires a module Debian's /usr/bin/python3 can import
// (a python3 earlier in PATH, such as a pyenv shim, may lack Debian's
// modules); it resolves to /usr/bin/python3.
func Require(t testing.TB, tools ...string) Tools {
	t.Helper()
	var missing []string
	found := Tools{}
	for _, tool := range tools {
		if p, err := lookTool(tool); err == nil {
			found[tool] = p
			continue
		}
		pkg := aptPackage[tool]
		if pkg == "" {
			pkg = "?"
		}
		missing = append(missing, tool+" (apt package "+pkg+")")
	}
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root (integration tests create users, write /etc/pam.d and start sshd)")
	}
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, ", ")+"; `make deps` installs them")
	}
	if len(problems) > 0 {
		msg := "systest: " + strings.Join(problems, "; ")
		// Reading the environment is fine here: this is test code only.
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: refusing to skip)", msg)
		}
		t.Skip(msg)
	}
	return found
}

func lookTool(tool string) (string, error) {
	if mod, ok := strings.CutPrefix(tool, "python3:"); ok {
		const py = "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import "+mod).Run(); err != nil {
			return "", errors.New("cannot import " + mod)
		}
		return py, nil
	}
	if strings.Contains(tool, "/") {
		fi, err := os.Stat(tool)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", errors.New("not executable")
		}
		return tool, nil
	}
	if p, err := exec.LookPath(tool); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p, err := lookTool(filepath.Join(dir, tool)); err == nil {
			return p, nil
		}
	}
	return "", errors.New("not found")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before it is used; StartSSHD retries on that.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("systest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// SecureDir returns a new empty directory, removed at cleanup, whose every
// path component is root-owned, mode 0755 and not group/world-writable. Use
// it for anything sshd or a test user must read or execute: sshd's safe-path
// rules (AuthorizedKeysCommand, StrictModes) reject world-writable /tmp, and a
// test user cannot traverse t.TempDir()'s 0700 parent. It lives in /var/lib
// (root-owned, 0755, on a filesystem that allows exec).
func SecureDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "latch-ssh-systest-")
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("systest: %v", err)
	}
	return dir
}

// BuildBinary runs `go build -o DIR/NAME [flags] pkg` into a fresh SecureDir
// and returns the binary's path, executable by any user (0755) and safe for
// sshd to run (ForceCommand, AuthorizedKeysCommand, pam_exec). pkg is an
// import path or a directory relative to the calling test's package. It
// builds on every call (the Go build cache makes repeats cheap); build once
// per test and share the path between subtests when that matters.
func BuildBinary(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	goTool := Require(t, "go")["go"]
	out := filepath.Join(SecureDir(t), path.Base(filepath.ToSlash(pkg)))
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.Command(goTool, args...)
	if stdout, stderr, code := Run(t, cmd); code != 0 {
		t.Fatalf("systest: go %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatalf("systest: %v", err)
	}
	return out
}

// Run runs cmd to completion and returns its output and exit status (-1 when
// killed by a signal). Stdin defaults to /dev/null; Stdout and Stderr are
// captured unless the caller set them. After CommandTimeout the command and
// its process group (for example the ssh that rsync spawned) are killed and
// the test fails. Call it from the test's goroutine.
func Run(t testing.TB, cmd *exec.Cmd) (stdout, stderr string, exitCode int) {
	t.Helper()
	var outBuf, errBuf bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &outBuf
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errBuf
	}
	setpgid(cmd)
	// Output pipes held open by a grandchild must not block Wait forever.
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("systest: start %s: %v", cmd, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	done := make(chan struct{})
	timedOut := make(chan bool, 1)
	go func() {
		select {
		case <-ctx.Done():
			killGroup(cmd.Process.Pid)
			timedOut <- true
		case <-done:
			timedOut <- false
		}
	}()
	err := cmd.Wait()
	close(done)
	if <-timedOut {
		t.Fatalf("systest: %s did not finish within %v\nstdout: %s\nstderr: %s", cmd, CommandTimeout, outBuf.String(), errBuf.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("systest: %s: %v", cmd, err)
	}
	return outBuf.String(), errBuf.String(), cmd.ProcessState.ExitCode()
}

// setpgid puts cmd in its own process group so killGroup reaches its
// children too. Setsid already does (and setpgid after setsid would fail).
func setpgid(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
	}
}

func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// run is Run for the harness's own administrative commands: any failure is
// fatal, with the output.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	stdout, stderr, code := Run(t, exec.Command(name, args...))
	if code != 0 {
		t.Fatalf("systest: %s %s: exit %d: %s%s", name, strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// randomName returns prefix followed by n random lower-case letters and
// digits: valid as a user, group, or PAM service name.
func randomName(prefix string, n int) string {
	return prefix + strings.ToLower(rand.Text()[:n])
}
