package main

// The Latch secret against a logged-in user (issue 8): each test is one
// attack, named after it, with what would happen without the defence it
// proves.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestAttackReadTheSecret: a logged-in user tries every way to the Latch
// secret: the configuration file, the commands they may run (status, pair,
// check-config, latch-check, pointed at the real file or not), the
// daemon's /proc entries, and the error and log lines a broken
// configuration produces. Without the file's mode and the checks that
// refuse it otherwise, -c honoured only for root, the daemon answering
// only with the caller's own state, and errors that quote no secret, the
// secret would let that user sign any request to Latch for this
// application (unlock, unpair, read every account's state). With them no
// output, file or log line they can read holds it, or even its first
// half.
func TestAttackReadTheSecret(t *testing.T) {
	w := newPairingWorld(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := w.Latch.PairedAccount(testAppID)
	sock := filepath.Join(w.Dir, "run", "gate.sock")
	w.write(t, true)
	base, err := os.ReadFile(w.path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(base) + fmt.Sprintf("%s = %q\n\n[daemon]\nsocket = %q\n", u.Name, acc, sock)
	if err := os.WriteFile(w.path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(sock))
	hook := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-check")

	log := &serveLog{}
	daemon := exec.Command(bin, "serve", "-c", w.path)
	daemon.Env = []string{"PATH=/usr/bin:/bin"}
	daemon.Stderr = log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()
	t.Cleanup(func() { daemon.Process.Kill(); <-exited })
	serveWaitFor(t, "the daemon's socket", log, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	pid := daemon.Process.Pid

	// Anything the user can get, with whether it must have worked.
	leaks := func(what, s string) {
		t.Helper()
		for _, part := range []string{testSecret, testSecret[:20], testSecret[20:]} {
			if strings.Contains(s, part) {
				t.Errorf("%s holds the secret (or half of it): %q", what, s)
				return
			}
		}
	}
	as := func(name string, args ...string) (string, int) {
		t.Helper()
		stdout, stderr, code := systest.Run(t, u.Command(name, args...))
		out := stdout + stderr
		leaks(fmt.Sprintf("`%s %s` as %s", filepath.Base(name), strings.Join(args, " "), u.Name), out)
		return out, code
	}
	for _, c := range []struct {
		args   []string
		wantOK bool
	}{
		{[]string{"status"}, true},
		{[]string{"status", "--json"}, true},
		{[]string{"status", "-c", w.path}, false},
		{[]string{"pair", "ZZZZZ9"}, false},
		{[]string{"pair", "--user", "root", "ZZZZZ9"}, false},
		{[]string{"check-config"}, false},
		{[]string{"check-config", "-c", w.path}, false},
		{[]string{"serve", "-c", w.path}, false},
	} {
		if out, code := as(bin, c.args...); (code == 0) != c.wantOK {
			t.Errorf("latch-ssh %s as a user: exit %d:\n%s", strings.Join(c.args, " "), code, out)
		}
	}
	for _, args := range [][]string{{"-c", w.path, u.Name}, {u.Name}} {
		if out, code := as(hook, args...); code == 0 {
			t.Errorf("latch-check %s as a user: exit 0:\n%s", strings.Join(args, " "), out)
		}
	}
	if out, code := as("cat", w.path); code == 0 {
		t.Errorf("the user can read %s:\n%s", w.path, out)
	}

	// The daemon's process: what ptrace rules hide must stay hidden, and
	// what is public must not hold the secret.
	procDir := fmt.Sprintf("/proc/%d", pid)
	fds, _ := os.ReadDir(procDir + "/fd")
	hidden := []string{"environ", "mem", "maps", "smaps", "stack", "auxv", "io", "syscall", "pagemap", "cwd/", "root/"}
	for _, fd := range fds {
		hidden = append(hidden, "fd/"+fd.Name())
	}
	for _, p := range hidden {
		if out, code := as("cat", procDir+"/"+p); code == 0 {
			t.Errorf("the user can read %s/%s (%d bytes)", procDir, p, len(out))
		}
	}
	for _, p := range []string{"cmdline", "status", "stat", "comm"} {
		if _, code := as("cat", procDir+"/"+p); code != 0 {
			t.Errorf("%s/%s is unreadable: the check above proves nothing", procDir, p)
		}
	}

	// A broken configuration, broken on the secret's own line: the
	// daemon's log of the refused reload, which an admin may paste
	// anywhere, does not quote it.
	broken := strings.Replace(text, fmt.Sprintf("secret = %q", testSecret), fmt.Sprintf("secret = %q garbage", testSecret), 1)
	if err := os.WriteFile(w.path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	serveWaitFor(t, "the refused reload", log, func() bool {
		return strings.Contains(log.String(), `"event":"reload-refused"`)
	})
	// Self-service reads the file afresh: the person hears of a problem,
	// not of its line.
	if out, _ := as(bin, "status"); !strings.Contains(out, "ask an administrator") {
		t.Errorf("status as the user with the file broken:\n%s", out)
	}
	leaks("the daemon's log", log.String())
	// check-config by root names the line, without the value.
	stdout, stderr, _ := systest.Run(t, exec.Command(bin, "check-config", "-c", w.path))
	if !strings.Contains(stdout+stderr, w.path+":") {
		t.Errorf("check-config does not name the broken line:\n%s%s", stdout, stderr)
	}
	leaks("check-config's report", stdout+stderr)
}
