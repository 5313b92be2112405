package sshserver

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestKeyOptions: authorized_keys options are honoured, a line with an
// option we do not support is skipped (and logged), and StrictModes
// refuses a file others may write.
func TestKeyOptions(t *testing.T) {
	f := newFixture(t)
	noPTY, _ := f.user(t, systest.UserOptions{KeyOptions: "no-pty"})
	odd, oddAcc := f.user(t, systest.UserOptions{KeyOptions: `environment="X=1"`})
	loose, looseAcc := f.user(t, systest.UserOptions{})
	loose.WriteFile(t, ".ssh/authorized_keys", loose.AuthorizedKey, 0o620)
	f.start(t, nil)

	r := f.login(t, noPTY)
	s := newSession(t, r.client, false)
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
		t.Error("no-pty key got a terminal")
	}
	out, err := s.Output("tty")
	if strings.TrimSpace(string(out)) != "not a tty" {
		t.Errorf("tty in a no-pty session: %q %v", out, err)
	}

	f.latch.ResetRequests()
	if r := f.dial(t, odd.Name, gossh.PublicKeys(odd.Signer)); r.err == nil {
		t.Error("a key with an unsupported option (environment=) was accepted")
	}
	if r := f.dial(t, loose.Name, gossh.PublicKeys(loose.Signer)); r.err == nil {
		t.Error("a group-writable authorized_keys was used")
	}
	if n := f.latchCalls(oddAcc) + f.latchCalls(looseAcc); n != 0 {
		t.Errorf("%d Latch calls for refused keys", n)
	}
	var skipped, refused bool
	for _, e := range f.log.entries(t) {
		if e["message"] == "authorized_keys line skipped" && e["user"] == odd.Name && e["line"] == float64(1) {
			skipped = true
		}
		if e["message"] == "authorized_keys refused" && e["user"] == loose.Name && strings.Contains(e["error"].(string), "chmod") {
			refused = true
		}
	}
	if !skipped || !refused {
		t.Errorf("log: skipped line logged %v, StrictModes refusal with its fix logged %v\n%s", skipped, refused, f.log)
	}
}

// TestTerminalSession: the PTY gets the client's size, follows window
// changes, and a signal request reaches the process (exit-signal, as with
// sshd).
func TestTerminalSession(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	s := newSession(t, r.client, false)
	if err := s.RequestPty("xterm", 30, 90, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.Start(`stty size; read x; stty size; exec sleep 60`); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(waitLimit):
			t.Fatal("no output")
			return ""
		}
	}
	if l := next(); l != "30 90" {
		t.Errorf("initial size %q, want 30 90", l)
	}
	if err := s.WindowChange(40, 100); err != nil {
		t.Fatal(err)
	}
	// The resize is applied in request order, before the line arrives.
	_, _ = io.WriteString(stdin, "go\n")
	if l := next(); l != "40 100" {
		t.Errorf("size after window-change %q, want 40 100", l)
	}
	if err := s.Signal(gossh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := s.Wait()
	ee, ok := err.(*gossh.ExitError)
	if !ok || ee.Signal() != "TERM" {
		t.Errorf("after SIGTERM: %v, want exit-signal TERM", err)
	}
}

// TestTerminalSessionEndsWithItsShell: a background process that keeps the
// terminal open does not keep the session open after the shell exits
// (drainAfterExit), and is hung up with it.
func TestTerminalSessionEndsWithItsShell(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	s := newSession(t, r.client, true)
	start := time.Now()
	out, err := s.Output("setsid sleep 60 & echo bye; exit 5")
	if ee, ok := err.(*gossh.ExitError); !ok || ee.ExitStatus() != 5 || !strings.Contains(string(out), "bye") {
		t.Errorf("output %q, err %v; want bye and exit 5", out, err)
	}
	if el := time.Since(start); el > drainAfterExit+3*time.Second {
		t.Errorf("session took %v to end; the background process held it", el)
	}
}

// TestMaxSessions: one connection gets at most maxSessions sessions at
// once, like sshd's MaxSessions.
func TestMaxSessions(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	var open []*gossh.Session
	for range maxSessions {
		s, err := r.client.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", len(open)+1, err)
		}
		open = append(open, s)
	}
	if s, err := r.client.NewSession(); err == nil {
		s.Close()
		t.Fatalf("session %d was opened", maxSessions+1)
	}
	open[0].Close()
	waitFor(t, "a slot to free", func() bool {
		s, err := r.client.NewSession()
		if err == nil {
			s.Close()
		}
		return err == nil
	})
}

// TestLogs: one login leaves a line per connection event and auth step in
// the server log, and one decision record with the hook's fields in the
// audit log.
func TestLogs(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.dial(t, u.Name, gossh.PublicKeys(newSigner(t), u.Signer))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if _, _, code := run(t, r.client, "true"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	r.client.Close()
	want := []string{"connect", "auth-step", "login", "session", "logout"}
	waitFor(t, "the logout line", func() bool { return strings.Contains(f.log.String(), `"event":"logout"`) })
	seen := map[string]bool{}
	var steps []string
	for _, e := range f.log.entries(t) {
		ev, _ := e["event"].(string)
		seen[ev] = true
		if ev == "auth-step" {
			steps = append(steps, fmt.Sprintf("%v %v", e["method"], e["result"]))
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no %q line in the server log", w)
		}
	}
	// The stranger key is refused, then the user's key accepted.
	if w := "none failed, publickey failed, publickey accepted"; strings.Join(steps, ", ") != w {
		t.Errorf("auth steps %q, want %s", steps, w)
	}
	var decisions []map[string]any
	for _, e := range f.audit.entries(t) {
		if e["event"] == "decision" {
			decisions = append(decisions, e)
		}
	}
	if len(decisions) != 1 {
		t.Fatalf("%d decision records, want 1", len(decisions))
	}
	d := decisions[0]
	for k, v := range map[string]any{"user": u.Name, "service": Service, "outcome": "allow", "reason": "latch open", "fail_mode_applied": false} {
		if d[k] != v {
			t.Errorf("decision %s = %v, want %v", k, d[k], v)
		}
	}
	if rem, _ := d["remote"].(string); !strings.HasPrefix(rem, "127.0.0.1:") {
		t.Errorf("decision remote = %q", rem)
	}
}
