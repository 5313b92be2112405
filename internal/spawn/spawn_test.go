package spawn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// newAccount creates a user with two supplementary groups and returns it
// with its Lookup result, checked against what useradd created.
func newAccount(t *testing.T) (*systest.User, Account) {
	t.Helper()
	systest.Require(t)
	g1, g2 := systest.CreateGroup(t), systest.CreateGroup(t)
	u := systest.CreateUser(t, systest.UserOptions{Groups: []string{g1, g2}})
	acct, err := Lookup(u.Name)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", u.Name, err)
	}
	want := []uint32{uint32(u.GID)}
	for _, g := range []string{g1, g2} {
		gr, err := user.LookupGroup(g)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(gr.Gid)
		want = append(want, uint32(n))
	}
	if acct.Name != u.Name || acct.UID != uint32(u.UID) || acct.GID != uint32(u.GID) ||
		acct.Home != u.Home || acct.Shell != "/bin/bash" || !sameSet(acct.Groups, want) {
		t.Fatalf("Lookup(%s) = %+v; want uid %d gid %d groups %v home %s shell /bin/bash",
			u.Name, acct, u.UID, u.GID, want, u.Home)
	}
	return u, acct
}

func sameSet(a, b []uint32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func mustCommand(t *testing.T, spec Spec) *exec.Cmd {
	t.Helper()
	cmd, err := Command(spec)
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	return cmd
}

// direct makes cmd, built by Command, run program instead of the login
// shell, keeping everything else Command set (credentials, environment,
// directory): for tests that must see exactly what Command built, with no
// shell in between. The server never does this.
func direct(cmd *exec.Cmd, program string) *exec.Cmd {
	cmd.Path, cmd.Args = program, []string{program}
	return cmd
}

// run runs cmd through systest.Run and fails the test on a non-zero exit.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stdout, stderr, code := systest.Run(t, cmd)
	if code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", cmd, code, stdout, stderr)
	}
	return stdout
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("no-such-user-latch-ssh-test"); err == nil {
		t.Fatal("Lookup of an unknown user succeeded")
	}
	if _, err := Lookup("bad\x00name"); err == nil {
		t.Fatal("Lookup of a name with NUL succeeded")
	}
	root, err := Lookup("root")
	if err != nil || root.UID != 0 || root.GID != 0 || root.Home == "" || root.Shell == "" {
		t.Fatalf("Lookup(root) = %+v, %v", root, err)
	}
}

// LookupUID and LookupName agree with Lookup on the passwd fields, without
// groups, and refuse an id or name with no entry.
func TestLookupUID(t *testing.T) {
	_, acct := newAccount(t)
	byUID, err := LookupUID(acct.UID)
	byName, err2 := LookupName(acct.Name)
	for _, got := range []Account{byUID, byName} {
		if err != nil || err2 != nil || got.Name != acct.Name || got.UID != acct.UID || got.GID != acct.GID ||
			got.Home != acct.Home || got.Shell != acct.Shell || got.Groups != nil {
			t.Fatalf("LookupUID/LookupName = %+v, %v, %v; Lookup gave %+v", got, err, err2, acct)
		}
	}
	if _, err := LookupUID(2147480001); err == nil {
		t.Fatal("LookupUID of a uid with no passwd entry succeeded")
	}
	if _, err := LookupName("no-such-user-latch-ssh-test"); err == nil {
		t.Fatal("LookupName of an unknown user succeeded")
	}
}

func TestIdentity(t *testing.T) {
	_, acct := newAccount(t)
	out := run(t, mustCommand(t, Spec{Account: acct, Command: "id -u; id -g; id -G"}))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q: want 3 lines", out)
	}
	if lines[0] != strconv.Itoa(int(acct.UID)) || lines[1] != strconv.Itoa(int(acct.GID)) {
		t.Errorf("id -u, id -g = %s, %s; want %d, %d", lines[0], lines[1], acct.UID, acct.GID)
	}
	var groups []uint32
	for _, f := range strings.Fields(lines[2]) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, uint32(n))
	}
	if !sameSet(groups, acct.Groups) || len(acct.Groups) != 3 {
		t.Errorf("id -G = %v; want %v (3 groups)", groups, acct.Groups)
	}
}

func envNames(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

func TestEnvironment(t *testing.T) {
	u, acct := newAccount(t)
	clientEnv := map[string]string{
		"LC_ALL": "C.UTF-8", "LANG": "en_US.UTF-8",
		"LD_PRELOAD": "/tmp/evil.so", "PATH": "/tmp/evil", "HOME": "/tmp",
		"LC_lower": "x", "LC_CTRL": "a\x1bb", "LC_LONG": strings.Repeat("x", 257),
		"BASH_ENV": "/tmp/evil",
	}
	spec := Spec{Account: acct, Env: clientEnv,
		SSHClient: "192.0.2.1 50000 22", SSHConnection: "192.0.2.1 50000 192.0.2.2 22"}
	want := map[string]string{
		"HOME": u.Home, "USER": u.Name, "LOGNAME": u.Name, "SHELL": "/bin/bash",
		"PATH": "/usr/local/bin:/usr/bin:/bin", "MAIL": "/var/mail/" + u.Name,
		"SSH_CLIENT": spec.SSHClient, "SSH_CONNECTION": spec.SSHConnection,
		"LC_ALL": "C.UTF-8", "LANG": "en_US.UTF-8",
	}
	check := func(name string, got map[string]string) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s=%q; want %q", name, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: unexpected variable %s=%q", name, k, got[k])
			}
		}
	}
	// Run directly, with the shell swapped out by the test: exactly the
	// environment Command built.
	s := spec
	check("built env", envNames(run(t, direct(mustCommand(t, s), "/usr/bin/env"))))
	// Through the shell, minus what bash itself exports.
	s = spec
	s.Command = "env"
	got := envNames(run(t, mustCommand(t, s)))
	for _, k := range []string{"PWD", "SHLVL", "_"} {
		delete(got, k)
	}
	check("shell env", got)

	// With a PTY, TERM and SSH_TTY are added.
	s = spec
	s.Command, s.PTY, s.TERM = "env", true, "xterm-256color"
	cmd := mustCommand(t, s)
	ptmx, err := StartPTY(cmd, 24, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := readAll(t, ptmx)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("env on a pty: %v\n%s", err, out)
	}
	got = envNames(strings.ReplaceAll(out, "\r", ""))
	for _, k := range []string{"PWD", "SHLVL", "_"} {
		delete(got, k)
	}
	if !strings.HasPrefix(got["SSH_TTY"], "/dev/pts/") {
		t.Errorf("pty env: SSH_TTY=%q", got["SSH_TTY"])
	}
	want["SSH_TTY"] = got["SSH_TTY"]
	want["TERM"] = "xterm-256color"
	check("pty env", got)
}

// readAll reads the pty master until the terminal closes (EIO).
func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatalf("read pty: %v", err)
	}
	return string(b)
}

func TestRootPath(t *testing.T) {
	systest.Require(t)
	root, err := Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	got := envNames(run(t, direct(mustCommand(t, Spec{Account: root}), "/usr/bin/env")))
	if got["PATH"] != rootPath || !strings.Contains(got["PATH"], "sbin") {
		t.Errorf("root PATH=%q; want %q", got["PATH"], rootPath)
	}
}

func TestLoginShell(t *testing.T) {
	_, acct := newAccount(t)
	cmd := mustCommand(t, Spec{Account: acct})
	if cmd.Args[0] != "-bash" {
		t.Errorf("argv0 = %q; want -bash", cmd.Args[0])
	}
	cmd.Stdin = strings.NewReader("echo \"$0\"; pwd\n")
	lines := strings.Split(strings.TrimSpace(run(t, cmd)), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "-") || lines[len(lines)-1] != acct.Home {
		t.Errorf("login shell printed %q; want $0 starting with '-' and pwd %s", lines, acct.Home)
	}
}

func TestHomeFallback(t *testing.T) {
	_, acct := newAccount(t)
	if err := os.Chmod(acct.Home, 0); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	cmd := mustCommand(t, Spec{Account: acct, Command: "pwd",
		Warn: func(m string) { warnings = append(warnings, m) }})
	if out := strings.TrimSpace(run(t, cmd)); out != "/" {
		t.Errorf("pwd = %q; want /", out)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "Could not chdir to home directory "+acct.Home) {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestExitStatus(t *testing.T) {
	_, acct := newAccount(t)
	for _, tc := range []struct {
		command string
		want    int
	}{{"true", 0}, {"exit 7", 7}, {"kill -TERM $$", 128 + 15}, {"kill -KILL $$", 128 + 9}} {
		cmd := mustCommand(t, Spec{Account: acct, Command: tc.command})
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if got := ExitStatus(cmd.Run()); got != tc.want {
			t.Errorf("%q: ExitStatus = %d; want %d (output %q)", tc.command, got, tc.want, out.String())
		}
	}
	if got := ExitStatus(errors.New("start failed")); got != 255 {
		t.Errorf("ExitStatus(other error) = %d; want 255", got)
	}
	if got := ExitStatus(exec.ErrWaitDelay); got != 0 {
		t.Errorf("ExitStatus(ErrWaitDelay) = %d; want 0", got)
	}
}

func TestPTY(t *testing.T) {
	_, acct := newAccount(t)
	cmd := mustCommand(t, Spec{Account: acct, PTY: true, TERM: "xterm",
		Command: `tty; echo "tty=$SSH_TTY"; (: </dev/tty) 2>/dev/null && echo ctty=yes; stty size; read x; stty size`})
	ptmx, err := StartPTY(cmd, 24, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(ptmx)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("pty closed early")
			}
			return l
		case <-time.After(systest.CommandTimeout):
			t.Fatal("timeout reading the pty")
		}
		return ""
	}
	ttyName := next()
	if !strings.HasPrefix(ttyName, "/dev/pts/") {
		t.Fatalf("tty printed %q", ttyName)
	}
	if l := next(); l != "tty="+ttyName {
		t.Errorf("SSH_TTY line %q; want tty=%s", l, ttyName)
	}
	if l := next(); l != "ctty=yes" {
		t.Errorf("got %q; want ctty=yes (the pty is the controlling terminal)", l)
	}
	fi, err := os.Stat(ttyName)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != acct.UID {
		t.Errorf("%s owned by uid %d; want %d", ttyName, st.Uid, acct.UID)
	}
	if g, err := user.LookupGroup("tty"); err == nil {
		if strconv.Itoa(int(st.Gid)) != g.Gid || fi.Mode().Perm() != 0o620 {
			t.Errorf("%s: gid %d mode %v; want gid %s (tty) mode 0620", ttyName, st.Gid, fi.Mode().Perm(), g.Gid)
		}
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v; want 0600 (no tty group)", ttyName, fi.Mode().Perm())
	}
	if l := next(); l != "24 80" {
		t.Errorf("stty size = %q; want 24 80", l)
	}
	if err := AssertPrivilegesDropped(cmd.Process.Pid, acct); err != nil {
		t.Error(err)
	}
	if err := Resize(ptmx, 40, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := ptmx.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
	if len(rest) == 0 || rest[len(rest)-1] != "40 100" {
		t.Errorf("after Resize the output ended %q; want 40 100", rest)
	}
}

func TestAssertPrivilegesDropped(t *testing.T) {
	_, acct := newAccount(t)
	cmd := mustCommand(t, Spec{Account: acct, Command: "read x"})
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := stdin.Write([]byte("\n")); err != nil {
			t.Error(err)
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("wait: %v", err)
		}
	}()
	pid := cmd.Process.Pid
	if err := AssertPrivilegesDropped(pid, acct); err != nil {
		t.Errorf("spawned child: %v", err)
	}
	if err := AssertPrivilegesDropped(os.Getpid(), acct); err == nil {
		t.Error("AssertPrivilegesDropped accepted the (root) test process")
	}
	fewer := acct
	fewer.Groups = acct.Groups[:len(acct.Groups)-1]
	if err := AssertPrivilegesDropped(pid, fewer); err == nil {
		t.Error("AssertPrivilegesDropped accepted a group set with an extra group")
	}
	other := acct
	other.GID++
	if err := AssertPrivilegesDropped(pid, other); err == nil {
		t.Error("AssertPrivilegesDropped accepted the wrong gid")
	}
}

// helperEnv names the variable that turns TestNonRootHelper on in a copy
// of the test binary run as an unprivileged user.
const helperEnv = "LATCH_SPAWN_NONROOT_HELPER"

func TestNonRootCannotSpawnOthers(t *testing.T) {
	u, acct := newAccount(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(systest.SecureDir(t), "spawn.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := u.Command(bin, "-test.run=^TestNonRootHelper$", "-test.v")
	cmd.Dir = "/"
	cmd.Env = append(cmd.Env, helperEnv+"="+acct.Name)
	out := run(t, cmd)
	if !strings.Contains(out, "--- PASS: TestNonRootHelper") {
		t.Errorf("helper did not run:\n%s", out)
	}
}

// TestNonRootHelper runs only inside TestNonRootCannotSpawnOthers, as the
// test user: it may spawn its own account, not root's.
func TestNonRootHelper(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("helper for TestNonRootCannotSpawnOthers")
	}
	if os.Geteuid() == 0 {
		t.Fatal("helper runs as root")
	}
	own, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := Command(Spec{Account: own, Command: "id -u"})
	if err != nil {
		t.Fatalf("own account: %v", err)
	}
	if cmd.SysProcAttr.Credential != nil {
		t.Error("non-root Command set a credential")
	}
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(os.Getuid()) {
		t.Errorf("own account: id -u = %q, %v", out, err)
	}
	root, err := Lookup("root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Command(Spec{Account: root, Command: "id -u"}); err == nil {
		t.Error("non-root Command accepted root's account")
	}
	other := own
	other.UID++
	if _, err := Command(Spec{Account: other}); err == nil {
		t.Error("non-root Command accepted another uid")
	}
}

// TestPTYControllingTerminal checks that the pty becomes the session's
// controlling terminal through Setctty, not by accident: the program runs
// directly (no shell that might open the terminal itself) and prints its
// session id and tty_nr from /proc/self/stat.
func TestPTYControllingTerminal(t *testing.T) {
	_, acct := newAccount(t)
	script := filepath.Join(systest.SecureDir(t), "stat")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec cat /proc/self/stat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := direct(mustCommand(t, Spec{Account: acct, PTY: true}), script)
	ptmx, err := StartPTY(cmd, 24, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := readAll(t, ptmx)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wait: %v\n%s", err, out)
	}
	// pid (comm) state ppid pgrp session tty_nr ...
	_, after, ok := strings.Cut(out, ") ")
	f := strings.Fields(after)
	if !ok || len(f) < 5 {
		t.Fatalf("cannot parse /proc/self/stat %q", out)
	}
	if f[3] != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("session %s; want %d (Setsid)", f[3], cmd.Process.Pid)
	}
	if f[4] == "0" {
		t.Errorf("tty_nr 0: the pty is not the controlling terminal")
	}
}

// TestAssertPrivilegesDroppedAfterSetuidExec: a session whose shell has
// already exec'd a set-user-ID program (`ssh host sudo ...`) shows another
// effective uid; that is the program's doing, not a failed drop, and is
// accepted only when the executable explains it.
func TestAssertPrivilegesDroppedAfterSetuidExec(t *testing.T) {
	_, acct := newAccount(t)
	dir := systest.SecureDir(t)
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(dir, "suid-sleep")
	if err := os.WriteFile(suid, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o4755); err != nil {
		t.Fatal(err)
	}
	cmd := mustCommand(t, Spec{Account: acct, Command: "exec " + suid + " 30"})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	waitExe(t, pid, suid)
	if err := AssertPrivilegesDropped(pid, acct); err != nil {
		t.Errorf("after exec of a setuid-root program: %v", err)
	}
	// The real ids still prove who the session is: another account is
	// refused even though the effective uid is explained.
	other := acct
	other.UID++
	if err := AssertPrivilegesDropped(pid, other); err == nil {
		t.Error("accepted a session whose real uid is not the account's")
	}
}

// waitExe waits until /proc/PID/exe is path.
func waitExe(t *testing.T, pid int, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil && exe == path {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never exec'd %s", pid, path)
		}
		<-tick.C
	}
}

// TestStartPTYModes: the client's terminal modes reach the terminal
// before the process starts; unknown and truncated entries are ignored.
func TestStartPTYModes(t *testing.T) {
	_, acct := newAccount(t)
	cmd := mustCommand(t, Spec{Account: acct, Command: "stty -a", PTY: true})
	mode := func(op byte, v uint32) []byte { return []byte{op, byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	var modes []byte
	modes = append(modes, mode(53, 0)...)   // ECHO off
	modes = append(modes, mode(3, 0x08)...) // VERASE ^H
	modes = append(modes, mode(50, 0)...)   // ISIG off
	modes = append(modes, mode(150, 1)...)  // unknown: ignored
	modes = append(modes, 0, 7, 7)          // TTY_OP_END, then garbage
	ptmx, err := StartPTY(cmd, 24, 80, modes)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out, _ := io.ReadAll(ptmx) // ends with EIO when stty exits
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stty: %v: %s", err, out)
	}
	s := string(out)
	for _, want := range []string{"-echo ", "erase = ^H;", "-isig "} {
		if !strings.Contains(s, want) {
			t.Errorf("stty -a lacks %q:\n%s", want, s)
		}
	}
}

func TestFindSFTPServer(t *testing.T) {
	p, err := FindSFTPServer()
	if err != nil {
		for _, c := range sftpServerPaths() {
			if _, serr := os.Stat(c); serr == nil {
				t.Fatalf("%s exists but: %v", c, err)
			}
		}
		t.Skip("no sftp-server installed:", err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s: %v", p, err)
	}
}
