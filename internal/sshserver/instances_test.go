package sshserver

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestRecheckFollowsThisServersInstance (issue 17): with [latch] instance =
// "host", the embedded server decides and rechecks alice's instance of
// this server. Closing another server's instance of her latch neither
// refuses her nor ends her session (two recheck rounds pass); closing this
// server's instance ends the session within recheck + 2 s and refuses a
// new login.
func TestRecheckFollowsThisServersInstance(t *testing.T) {
	systest.Require(t, "ssh")
	f := newFixture(t)
	alice, acc := f.user(t, systest.UserOptions{})
	here := f.latch.AddInstance(appID, acc, "", "", "ssh here")
	other := f.latch.AddInstance(appID, acc, "", "", "ssh other")
	f.server = `recheck = "1s"`
	f.editConfig = func(text string) string {
		text = strings.Replace(text, "[policy]", "instance = \"host\"\n\n[policy]", 1)
		return text + fmt.Sprintf("\n[instances]\n%s = { app = %q }\n", alice.Name, here)
	}
	f.start(t, nil)
	asked := func() int {
		n := 0
		for _, r := range f.latch.Requests() {
			if r.Instance == here && r.Account == acc {
				n++
			}
		}
		return n
	}

	cmd := f.target.SSH(t, alice, "echo started; exec sleep 60")
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
		t.Fatalf("the session ended before starting: %v: %s", err, stderr.String())
	case <-time.After(waitLimit):
		t.Fatal("the session did not start")
	}

	f.latch.SetLatch(acc, other, false)
	before := asked()
	waitFor(t, "two recheck rounds on this server's instance", func() bool { return asked() >= before+2 })
	select {
	case err := <-done:
		t.Fatalf("closing another server's instance ended the session: %v: %s", err, stderr.String())
	default:
	}

	closed := time.Now()
	f.latch.SetLatch(acc, here, false)
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("closing this server's instance did not end the session")
	}
	if el := time.Since(closed); el > 3*time.Second {
		t.Errorf("the session ended %v after the instance closed, want within recheck (1s) + 2s", el)
	}
	if !strings.Contains(stderr.String(), ClosedNotice) {
		t.Errorf("stderr %q lacks %q", stderr.String(), ClosedNotice)
	}
	if _, _, code := systest.Run(t, f.target.SSH(t, alice, "true")); code != 255 {
		t.Fatalf("a new login with this server's instance closed: exit %d, want 255", code)
	}
	f.latch.SetLatch(acc, here, true)
	if _, _, code := systest.Run(t, f.target.SSH(t, alice, "exit 3")); code != 3 {
		t.Fatalf("a new login with this server's instance open, another's closed: exit %d, want 3", code)
	}
}
