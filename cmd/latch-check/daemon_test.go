package main

// Issue 15: the PAM hook asks the daemon when it runs, and decides itself
// when it does not. Real Linux-PAM (pamtester), the real hook binary, a
// real daemon (internal/daemon.Run, as `latch-ssh serve` runs it) or a
// misbehaving stand-in on the socket, and the fake Latch.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/daemon"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// daemonConfig is f.config with [daemon] socket set to a socket in f.Dir.
func (f *fixture) daemonConfig(t *testing.T, policy string, users map[string]string) (cfg, socket string) {
	t.Helper()
	socket = filepath.Join(f.Dir, "run", "gate.sock")
	return f.WriteConfig(t, systest.Config{Policy: policy, Users: users,
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 1000\n", socket)}), socket
}

// runningDaemon is a daemon (daemon.Run) serving cfg in this process.
type runningDaemon struct {
	log    *systest.Buffer
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t testing.TB, cfg, socket string) *runningDaemon {
	t.Helper()
	t.Setenv("NOTIFY_SOCKET", "")
	ctx, cancel := context.WithCancel(context.Background())
	d := &runningDaemon{log: &systest.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- daemon.Run(ctx, daemon.Options{ConfigPath: cfg, Log: d.log, NoWatch: true}) }()
	t.Cleanup(func() { d.stop(t) })
	systest.WaitFor(t, "the daemon's socket", 20*time.Second, func() bool {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("the daemon did not start: %v\n%s", err, d.log)
		default:
		}
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return d
}

// stop stops the daemon and waits for it; the socket file goes with it.
func (d *runningDaemon) stop(t testing.TB) {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(60 * time.Second):
		t.Errorf("the daemon did not stop")
	}
}

// decisionLines counts the daemon's decision lines for user.
func (d *runningDaemon) decisionLines(user string) int {
	n := 0
	for _, l := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(l, `"event":"decision"`) && strings.Contains(l, `"user":"`+user+`"`) {
			n++
		}
	}
	return n
}

// syslogCount counts the hook's syslog lines of event for user.
func syslogCount(logs *systest.Syslog, event, user string) int {
	n := 0
	for _, l := range logs.Lines() {
		if l.Tag == "latch-ssh" && strings.Contains(l.Message, `"event":"`+event+`"`) && strings.Contains(l.Message, `"user":"`+user+`"`) {
			n++
		}
	}
	return n
}

// latchCalls counts the fake's requests for account.
func (f *fixture) latchCalls(account string) int {
	return f.Latch.CountRequests(func(r latchtest.Request) bool { return r.Account == account })
}

// TestHookThroughDaemon: with the daemon up the decision is the daemon's
// (one Latch call, made by the daemon, which logs the decision; the hook
// writes only its pointer line), with the same outcome as the hook alone
// and no one-time code asked for; with the daemon down the hook decides
// directly, silently. A closed latch denies on both paths.
func TestHookThroughDaemon(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	alice := systest.CreateUser(t, systest.UserOptions{})
	cfg, socket := f.daemonConfig(t, `fail_mode = "closed"`, map[string]string{alice.Name: acc})
	service := "latch-hookd-" + alice.Name
	writeHookService(t, service, recipe(t, "sshd", f.bin, cfg))
	logs := systest.CaptureSyslog(t)
	d := startDaemon(t, cfg, socket)

	login := func(t *testing.T, open bool) int {
		t.Helper()
		f.Latch.SetLatch(acc, systest.AppID, open)
		f.Latch.ResetRequests()
		code, out := systest.PAMTester(t, service, alice.Name, "acct_mgmt", systest.PAMItem("rhost", "192.0.2.9"))
		if (code == 0) != open {
			t.Fatalf("latch open=%v: pamtester exit %d\n%s\ndaemon log:\n%s\nsyslog:\n%s", open, code, out, d.log, logs)
		}
		if n := f.latchCalls(acc); n != 1 {
			t.Fatalf("latch open=%v: %d Latch calls, want 1", open, n)
		}
		// The hook never prompts: Latch is asked with /nootp on every path.
		for _, r := range f.Latch.Requests() {
			if !r.NoOTP {
				t.Fatalf("Latch asked without /nootp: %+v", r)
			}
		}
		return code
	}

	t.Run("daemon up: the daemon decides", func(t *testing.T) {
		for i, open := range []bool{true, false} {
			login(t, open)
			if n := d.decisionLines(alice.Name); n != i+1 {
				t.Fatalf("%d decision lines in the daemon's log after %d logins, want %d:\n%s", n, i+1, i+1, d.log)
			}
			outcome := map[bool]string{true: "allow", false: "deny"}[open]
			logs.WaitFor(t, func(l systest.SyslogLine) bool {
				return strings.Contains(l.Message, `"event":"decision-by-daemon"`) && strings.Contains(l.Message, `"user":"`+alice.Name+`"`) &&
					strings.Contains(l.Message, `"outcome":"`+outcome+`"`) && strings.Contains(l.Message, `"remote":"192.0.2.9"`)
			}, 5*time.Second)
		}
		if !strings.Contains(d.log.String(), `"remote":"192.0.2.9"`) {
			t.Fatalf("the daemon's decision line lacks the remote address:\n%s", d.log)
		}
		// Not logged twice: the hook wrote no decision line of its own.
		if n := syslogCount(logs, "decision", alice.Name); n != 0 {
			t.Fatalf("the hook wrote %d decision lines besides the daemon's:\n%s", n, logs)
		}
	})

	t.Run("daemon down: the hook decides", func(t *testing.T) {
		d.stop(t)
		before := d.decisionLines(alice.Name)
		login(t, true)
		login(t, false)
		if n := d.decisionLines(alice.Name); n != before {
			t.Fatalf("the stopped daemon decided")
		}
		logs.WaitFor(t, decisionFor(alice.Name, "deny"), 5*time.Second)
		if n := syslogCount(logs, "decision", alice.Name); n != 2 {
			t.Fatalf("%d decision lines from the hook for 2 logins:\n%s", n, logs)
		}
		// A daemon that does not run is no news: no warning.
		for _, l := range logs.Lines() {
			if strings.Contains(l.Message, `"event":"daemon"`) {
				t.Fatalf("warning for a daemon that is simply not running: %s", l.Message)
			}
		}
	})
}

// fakeDaemon serves socket with behave, one connection at a time, until the
// test ends; connections still open then are closed.
func fakeDaemon(t *testing.T, socket string, behave func(c net.Conn, r *bufio.Reader)) {
	t.Helper()
	ln, err := gatesocket.ListenSocket(socket)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				behave(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// TestHookDaemonMisbehaves: whatever the thing on the socket does (dies
// after accepting, hangs before or after acknowledging, answers like an
// older daemon deciding for root, answers about someone else), the hook
// decides itself: a closed latch denies, an open one allows, and the fake
// Latch sees the hook's own call.
func TestHookDaemonMisbehaves(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	alice := systest.CreateUser(t, systest.UserOptions{})
	service := "latch-hookbad-" + alice.Name
	logs := systest.CaptureSyslog(t)
	warnings := func() int {
		n := 0
		for _, l := range logs.Lines() {
			if strings.Contains(l.Message, `"event":"daemon"`) && strings.Contains(l.Message, "deciding directly") {
				n++
			}
		}
		return n
	}
	readReq := func(r *bufio.Reader) gatesocket.SocketRequest {
		var req gatesocket.SocketRequest
		line, _ := r.ReadBytes('\n')
		_ = json.Unmarshal(line, &req)
		return req
	}
	hang := func(c net.Conn) { c.Read(make([]byte, 1)) } // until the hook or the cleanup closes it
	ack := func(c net.Conn, user string) {
		fmt.Fprintf(c, `{"v":1,"outcome":"accepted","user":%q}`+"\n", user)
	}
	for _, tc := range []struct {
		name   string
		behave func(c net.Conn, r *bufio.Reader)
	}{
		{"accepts and closes", func(c net.Conn, r *bufio.Reader) { c.Close() }},
		{"reads the request and closes", func(c net.Conn, r *bufio.Reader) { readReq(r); c.Close() }},
		{"hangs without a word", func(c net.Conn, r *bufio.Reader) { readReq(r); hang(c) }},
		{"acknowledges, then dies", func(c net.Conn, r *bufio.Reader) { ack(c, readReq(r).User); c.Close() }},
		{"acknowledges, then hangs", func(c net.Conn, r *bufio.Reader) { ack(c, readReq(r).User); hang(c) }},
		{"an older daemon: allow, for root", func(c net.Conn, r *bufio.Reader) {
			readReq(r)
			fmt.Fprint(c, `{"v":1,"outcome":"allow"}`+"\n")
		}},
		{"acknowledges someone else, then allows", func(c net.Conn, r *bufio.Reader) {
			readReq(r)
			ack(c, "root")
			fmt.Fprint(c, `{"v":1,"outcome":"allow","user":"root"}`+"\n")
		}},
		{"acknowledges, then allows someone else", func(c net.Conn, r *bufio.Reader) {
			ack(c, readReq(r).User)
			fmt.Fprint(c, `{"v":1,"outcome":"allow","user":"root"}`+"\n")
		}},
		{"acknowledges, then garbage", func(c net.Conn, r *bufio.Reader) {
			ack(c, readReq(r).User)
			fmt.Fprint(c, "allow\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, socket := f.daemonConfig(t, `fail_mode = "closed"`, map[string]string{alice.Name: acc})
			fakeDaemon(t, socket, tc.behave)
			writeHookService(t, service, recipe(t, "sshd", f.bin, cfg))
			before := warnings()
			for _, open := range []bool{false, true} {
				f.Latch.SetLatch(acc, systest.AppID, open)
				f.Latch.ResetRequests()
				code, out := systest.PAMTester(t, service, alice.Name, "acct_mgmt")
				if (code == 0) != open {
					t.Fatalf("latch open=%v: pamtester exit %d\n%s", open, code, out)
				}
				if n := f.latchCalls(acc); n != 1 {
					t.Fatalf("latch open=%v: %d Latch calls, want the hook's own", open, n)
				}
			}
			// Each failure of the daemon is logged, as a warning.
			systest.WaitFor(t, "the hook's warnings about the daemon", 5*time.Second, func() bool { return warnings() >= before+2 })
		})
	}
}

// TestSecurityDaemonFailOpenGuarded (issue 15 with issue 12, item 4): a
// fail-open the daemon answers is a fail-open of the hook, and goes
// through the hook's guard: a hook run without seteuid by a setuid program
// (real uid the caller) or one stopped and continued does not let the
// login in, although the daemon said allow. The control, seteuid and not
// stopped, gets the admin's fail-open.
func TestSecurityDaemonFailOpenGuarded(t *testing.T) {
	systest.Require(t, "pamtester", "useradd", "kill")
	f := newFixture(t)
	acc := f.Pair()
	caller := systest.CreateUser(t, systest.UserOptions{})
	target := systest.CreateUser(t, systest.UserOptions{})
	suid := setuidPAMTester(t)
	cfg, socket := f.daemonConfig(t, `fail_mode = "open"`, map[string]string{target.Name: acc})
	d := startDaemon(t, cfg, socket)
	for _, tc := range []struct {
		name    string
		seteuid bool
		stop    bool
		allowed bool
	}{
		{name: "control: seteuid, the daemon's fail-open applies", seteuid: true, allowed: true},
		{name: "no seteuid: real uid the caller", seteuid: false},
		{name: "seteuid, stopped and continued", seteuid: true, stop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Latch.ClearFaults()
			f.Latch.ResetRequests()
			f.Latch.SetLatch(acc, systest.AppID, false)
			f.Latch.SetFault(acc, latchtest.Fault{Hang: true})
			before := d.decisionLines(target.Name)
			service := "latch-hookguard-" + target.Name
			writeHookService(t, service, hookLine(f.bin, cfg, tc.seteuid))
			cmd := caller.Command(suid, service, target.Name, "acct_mgmt")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; done <- nil })
			if tc.stop {
				pid, _ := hookProcess(t, f.bin, cfg)
				systest.WaitFor(t, "the daemon's Latch request", 10*time.Second, func() bool { return f.latchCalls(acc) > 0 })
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				// Past the daemon's 1s deadline: the daemon answers its
				// fail-open while the hook is stopped.
				systest.WaitFor(t, "the daemon's fail-open", 10*time.Second, func() bool { return d.decisionLines(target.Name) > before })
				if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			select {
			case err = <-done:
				done <- err
			case <-time.After(30 * time.Second):
				t.Fatalf("pamtester did not finish:\n%s", out.String())
			}
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if allowed := err == nil; allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (latch closed, Latch hangs, fail_mode = open)\n%s\ndaemon log:\n%s", allowed, tc.allowed, out.String(), d.log)
			}
			if !tc.stop && d.decisionLines(target.Name) != before+1 {
				t.Fatalf("the decision was not the daemon's:\n%s", d.log)
			}
			if !strings.Contains(d.log.String(), `FAIL-OPEN`) {
				t.Fatalf("the daemon did not fail open:\n%s", d.log)
			}
		})
	}
}
