package sshserver

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestRecheckEndsSessions: with recheck = "1s", closing alice's latch ends
// her `ssh host sleep 60` within recheck + 2 s, with the notice on her
// stderr and her processes gone, while bob's session stays.
func TestRecheckEndsSessions(t *testing.T) {
	systest.Require(t, "ssh", "pgrep")
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	bob, _ := f.user(t, systest.UserOptions{})
	f.server = `recheck = "1s"`
	f.start(t, nil)

	start := func(u *systest.User) (*exec.Cmd, *bytes.Buffer, <-chan error) {
		cmd := f.target.SSH(t, u, "echo started; exec sleep 60")
		var stderr bytes.Buffer
		out := &lineWaiter{want: "started\n", seen: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = out, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-out.seen:
		case err := <-done:
			t.Fatalf("session of %s ended before starting: %v: %s", u.Name, err, stderr.String())
		case <-time.After(waitLimit):
			t.Fatalf("session of %s did not start", u.Name)
		}
		return cmd, &stderr, done
	}
	aliceCmd, aliceErr, aliceDone := start(alice)
	_, _, bobDone := start(bob)

	closed := time.Now()
	f.latch.SetLatch(aliceAcc, appID, false)
	select {
	case <-aliceDone:
	case <-time.After(waitLimit):
		t.Fatal("alice's session did not end")
	}
	el := time.Since(closed)
	t.Logf("server: ssh host 'sleep 60' ended %v after the latch closed", el.Round(time.Millisecond))
	if el > 3*time.Second {
		t.Errorf("alice's session ended %v after the latch closed, want within recheck (1s) + 2s", el)
	}
	if code := aliceCmd.ProcessState.ExitCode(); code != 255 {
		t.Errorf("alice's ssh exit %d, want 255 (connection closed)", code)
	}
	if !strings.Contains(aliceErr.String(), ClosedNotice) {
		t.Errorf("alice's stderr %q lacks %q", aliceErr.String(), ClosedNotice)
	}
	// Her sleep is gone too: a session's processes end with it.
	waitFor(t, "alice's processes to end", func() bool {
		return exec.Command("pgrep", "-u", alice.Name).Run() != nil
	})
	select {
	case err := <-bobDone:
		t.Fatalf("bob's session ended too: %v", err)
	default:
	}
	if n := f.srv.Users()[bob.Name]; n != 1 {
		t.Errorf("bob has %d connections, want 1", n)
	}
	if got := f.decisions(t, alice.Name); len(got) != 2 || got[1] != "deny: session ended by recheck: latch closed" {
		t.Errorf("alice's audit records %q", got)
	}
}

// TestRecheckCoalescesAndKeepsOnError: one Latch call per user per round,
// however many connections; an error keeps the sessions.
func TestRecheckCoalescesAndKeepsOnError(t *testing.T) {
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	bob, bobAcc := f.user(t, systest.UserOptions{})
	f.server = `recheck = "0"`
	f.start(t, nil)
	var clients []*gossh.Client
	for _, u := range []*systest.User{alice, alice, alice, bob} {
		r := f.login(t, u)
		clients = append(clients, r.client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	f.latch.ResetRequests()
	f.srv.Recheck(ctx)
	if a, b := f.latchCalls(aliceAcc), f.latchCalls(bobAcc); a != 1 || b != 1 {
		t.Errorf("one round: %d calls for alice (3 connections), %d for bob; want 1 and 1", a, b)
	}
	for _, r := range f.latch.Requests() {
		if !r.NoOTP {
			t.Errorf("recheck asked without /nootp: %s", r.Path)
		}
	}

	// Latch fails for bob: his session stays, and the log says so.
	f.latch.SetFault(bobAcc, latchtest.Fault{HTTPStatus: 500})
	f.latch.SetLatch(aliceAcc, appID, false)
	f.srv.Recheck(ctx)
	if n := f.srv.Users(); n[alice.Name] != 0 || n[bob.Name] != 1 {
		t.Errorf("after the round: connections %v, want alice 0 and bob 1", n)
	}
	if _, _, code := run(t, clients[3], "true"); code != 0 {
		t.Errorf("bob's connection no longer works: exit %d", code)
	}
	if !strings.Contains(f.log.String(), "recheck failed; sessions kept") {
		t.Error("the failed recheck is not logged")
	}
}

// lineWaiter closes seen once want has been written to it.
type lineWaiter struct {
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

// TestRecheckEndUser: with [policy] end = "user", a closed latch also ends
// the user's processes the server did not start (here one started beside
// it, in a session of its own, as an OpenSSH login or cron would leave).
func TestRecheckEndUser(t *testing.T) {
	systest.Require(t, "ssh", "setsid")
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	f.server = `recheck = "1s"`
	f.policy = `end = "user"`
	f.start(t, nil)
	outside := alice.Command("setsid", "sleep", "600")
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { outside.Wait(); close(exited) }()
	t.Cleanup(func() { outside.Process.Kill(); <-exited })
	cmd := f.target.SSH(t, alice, "sleep 60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitFor(t, "alice's connection", func() bool { return f.srv.Users()[alice.Name] == 1 })
	f.latch.SetLatch(aliceAcc, appID, false)
	for name, ch := range map[string]chan struct{}{"her session": done, "her process outside the server": exited} {
		select {
		case <-ch:
		case <-time.After(waitLimit):
			t.Fatalf("%s did not end", name)
		}
	}
}
