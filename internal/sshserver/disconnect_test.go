package sshserver

import (
	"os"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// xcryptoInGoMod returns the golang.org/x/crypto version go.mod requires.
func xcryptoInGoMod(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatalf("go.mod: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "golang.org/x/crypto" {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == "golang.org/x/crypto" {
			return f[2]
		}
	}
	t.Fatal("go.mod does not require golang.org/x/crypto")
	return ""
}

// TestDisconnectMechanism (issue 13, point 4): the SSH_MSG_DISCONNECT
// writer (disconnect.go) is on for the golang.org/x/crypto in go.mod, and
// a refusal reaches an x/crypto client as a disconnect "by application"
// with the reason. When go.mod moves to another x/crypto, this fails: read
// x/crypto's connection and handshakeTransport again, then update
// disconnectVerified.
func TestDisconnectMechanism(t *testing.T) {
	if ok, why := disconnectSupport(xcryptoInGoMod(t)); !ok {
		t.Fatalf("disconnect writer off for the x/crypto in go.mod: %s", why)
	}
	if ok, _ := disconnectSupport("v0.99.0"); ok {
		t.Error("disconnect writer on for an x/crypto it was not checked against")
	}
	for _, v := range []any{nil, 42, &struct{ transport any }{}, (*gossh.ServerConn)(nil)} {
		if p := transportOf(v); p != nil {
			t.Errorf("transportOf(%T) = %v, want nil", v, p)
		}
	}

	f := newFixture(t)
	u, acc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	f.latch.SetLatch(acc, appID, false)
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err == nil {
		t.Fatal("logged in with the latch closed")
	}
	want := `ssh: disconnect, reason 11: "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again"`
	if !strings.Contains(r.err.Error(), want) {
		t.Errorf("client error %q, want it to contain %q", r.err, want)
	}
	if len(r.banners) != 1 || !strings.Contains(r.banners[0], "your latch is closed") {
		t.Errorf("banners %q, want the refusal once (OpenSSH shows it)", r.banners)
	}
}

// TestDisconnectFallback: with an x/crypto the writer was not checked
// against, a refusal goes as before: the banner, a failure, no disconnect.
func TestDisconnectFallback(t *testing.T) {
	f := newFixture(t)
	u, acc := f.user(t, systest.UserOptions{})
	f.start(t, func(o *Options) { o.xcrypto = "v0.99.0" })
	if !strings.Contains(f.log.String(), "close without SSH_MSG_DISCONNECT") {
		t.Error("the server does not say that refusals will close without a reason")
	}
	f.latch.SetLatch(acc, appID, false)
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err == nil || strings.Contains(r.err.Error(), "disconnect") {
		t.Errorf("client error %v, want a refusal without disconnect", r.err)
	}
	if len(r.banners) != 1 || !strings.Contains(r.banners[0], "your latch is closed") {
		t.Errorf("banners %q, want the refusal once", r.banners)
	}
}

// TestStopSaysWhy (issue 13, point 4): a stop ends a session the way a
// recheck does: the notice on stderr, the process's end and the channel's
// close, then a disconnect "by application" with the notice, so OpenSSH
// does not report a broken connection.
func TestStopSaysWhy(t *testing.T) {
	systest.Require(t, "ssh")
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	cmd := f.target.SSHOpts(t, u, []string{"-o", "LogLevel=INFO"}, "echo started; exec sleep 60")
	out := &lineWaiter{want: "started", seen: make(chan struct{})}
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-out.seen:
	case <-time.After(waitLimit):
		t.Fatalf("session did not start: %s", stderr.String())
	}
	const notice = "latch-ssh: server stopping"
	f.srv.Stop(notice)
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("ssh did not exit after the stop")
	}
	got := stderr.String()
	// Whether ssh prints the disconnect too depends on whether it read it
	// before leaving on the channel's close: not asserted.
	if !strings.Contains(got, notice+"\r\n") || strings.Contains(got, "closed by remote host") {
		t.Errorf("ssh stderr %q: want the notice and no broken connection", got)
	}
}
