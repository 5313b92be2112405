package forcecmd

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
)

// These tests run the gate in-process against the real daemon code
// (gatesocket.SocketServer with a decision core) and the fake Latch, and against
// the in-process path root takes.

func aliceIs(uint32) (string, error) { return "alice", nil }

func TestRunWithDaemon(t *testing.T) {
	f := newLatchFixture(t)
	d := startDaemon(t, filepath.Join(shortDir(t), "gate.sock"), aliceIs)
	d.useConfig(t, f.config(t, `fail_mode = "closed"`, "alice"))

	t.Run("open", func(t *testing.T) {
		h := newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi", "SSH_CONNECTION=192.0.2.9 50022 127.0.0.1 22")
		h.wantExec(t, h.r.run(), "/bin/bash", "bash", "-c", "echo hi")
		if !f.LastStatus(t).NoOTP {
			t.Error("a command was decided without /nootp")
		}
		recs := d.audit.records()
		last := recs[len(recs)-1]
		if last.d.Outcome != gate.Allow || last.req.User != "alice" || last.req.Service != "sshd" ||
			last.req.RemoteAddr != "192.0.2.9" || last.req.Command != "echo hi" {
			t.Fatalf("daemon logged %+v", last)
		}
		if len(h.ownDenials()) != 0 {
			t.Fatalf("the gate logged %q on an allow", h.ownDenials())
		}
	})
	t.Run("closed", func(t *testing.T) {
		f.SetLatch(f.acc, false)
		defer f.SetLatch(f.acc, true)
		h := newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi")
		h.wantDenied(t, h.r.run(), "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again")
		if len(h.ownDenials()) != 0 {
			t.Fatalf("the gate logged %q; the daemon logs its own decisions", h.ownDenials())
		}
	})
	t.Run("two-factor, command", func(t *testing.T) {
		f.SetTwoFactor(true)
		defer f.SetTwoFactor(false)
		h := newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi")
		h.wantExec(t, h.r.run(), "/bin/bash", "bash", "-c", "echo hi")
		if !f.LastStatus(t).NoOTP {
			t.Error("not asked with /nootp")
		}
	})
	t.Run("two-factor, terminal", func(t *testing.T) {
		f.SetTwoFactor(true)
		defer f.SetTwoFactor(false)
		for _, right := range []bool{true, false} {
			master, slave := openPTY(t)
			screen := watch(master)
			h := newHarness(d.sock, sshdConn)
			h.r.interactive = true
			h.r.openTTY = func() (*os.File, error) { return os.OpenFile(slave.Name(), os.O_RDWR|syscall.O_NOCTTY, 0) }
			go func() {
				screen.waitFor(t, "Latch one-time code: ", 10*time.Second)
				tok := f.TwoFactorCode(f.acc)
				if !right {
					tok = strings.ToLower(tok) + "x"
				}
				master.WriteString(tok + "\n")
			}()
			code := h.r.run()
			if f.LastStatus(t).NoOTP {
				t.Error("a person at a terminal was decided with /nootp")
			}
			if right {
				h.wantExec(t, code, "/bin/bash", "-bash")
			} else {
				h.wantDenied(t, code, "latch-ssh: access denied: wrong one-time code")
			}
			if !echoOn(t, slave) {
				t.Error("echo not restored")
			}
		}
	})
	t.Run("two-factor, no answer in time", func(t *testing.T) {
		f.SetTwoFactor(true)
		defer f.SetTwoFactor(false)
		_, slave := openPTY(t)
		h := newHarness(d.sock, sshdConn)
		h.r.interactive = true
		h.r.otpTimeout = 300 * time.Millisecond
		h.r.openTTY = func() (*os.File, error) { return os.OpenFile(slave.Name(), os.O_RDWR|syscall.O_NOCTTY, 0) }
		h.wantDenied(t, h.r.run(), denyLine)
		recs := d.audit.records()
		if last := recs[len(recs)-1]; last.d.Outcome != gate.Deny || !strings.Contains(last.d.Reason, "not given") {
			t.Fatalf("daemon logged %+v", last)
		}
	})
	t.Run("daemon stopped", func(t *testing.T) {
		d.stop()
		defer d.start(t)
		h := newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi")
		h.wantDenied(t, h.r.run(), denyLine)
	})
	// With fail_mode = "open" a Latch that never answers would let the
	// login through after [latch] timeout: a signal while waiting must deny
	// at once instead.
	t.Run("signal while Latch hangs, fail open", func(t *testing.T) {
		d.useConfig(t, f.config(t, `fail_mode = "open"`, "alice"))
		f.Latch.SetFault(f.acc, faultHang())
		defer f.Latch.ClearFaults()
		d.drainCalls()
		h := newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi")
		go func() { d.waitCall(t); h.sigs <- syscall.SIGTERM }()
		start := time.Now()
		h.wantDenied(t, h.r.run(), denyLine)
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("denied after %v: the signal did not end the wait", took)
		}
	})
}

// TestRunAsRoot: root decides in-process when it can read the
// configuration (the daemon is not even running), with the same core.
func TestRunAsRoot(t *testing.T) {
	f := newLatchFixture(t)
	cfg := f.config(t, `fail_mode = "closed"`, "alice")
	nowhere := filepath.Join(shortDir(t), "gate.sock")

	h := newHarness(nowhere, "SSH_ORIGINAL_COMMAND=echo hi")
	h.r.rootConfig = cfg
	h.wantExec(t, h.r.run(), "/bin/bash", "bash", "-c", "echo hi")
	if recs := h.audit.records(); len(recs) == 0 || recs[0].d.Outcome != gate.Allow || recs[0].req.User != "alice" || len(h.ownDenials()) != 0 {
		t.Fatalf("in-process decisions logged: %+v", recs)
	}

	f.SetLatch(f.acc, false)
	h = newHarness(nowhere, "SSH_ORIGINAL_COMMAND=echo hi")
	h.r.rootConfig = cfg
	h.wantDenied(t, h.r.run(), "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again")
	f.SetLatch(f.acc, true)

	// One-time code at the terminal, in-process.
	f.SetTwoFactor(true)
	master, slave := openPTY(t)
	screen := watch(master)
	h = newHarness(nowhere, sshdConn)
	h.r.rootConfig = cfg
	h.r.interactive = true
	h.r.openTTY = func() (*os.File, error) { return os.OpenFile(slave.Name(), os.O_RDWR|syscall.O_NOCTTY, 0) }
	go func() {
		screen.waitFor(t, "Latch one-time code: ", 10*time.Second)
		tok := f.TwoFactorCode(f.acc)
		master.WriteString(tok + "\n")
	}()
	h.wantExec(t, h.r.run(), "/bin/bash", "-bash")
	f.SetTwoFactor(false)

	// An unreadable configuration: ask the daemon (absent here: deny).
	h = newHarness(nowhere, "SSH_ORIGINAL_COMMAND=echo hi")
	h.r.rootConfig = filepath.Join(shortDir(t), "missing.toml")
	h.wantDenied(t, h.r.run(), denyLine)
	if d := h.ownDenials(); len(d) != 1 || !strings.Contains(d[0], "daemon") {
		t.Fatalf("own denials: %q", d)
	}

	// A readable but invalid configuration denies; it does not fall back.
	bad := filepath.Join(f.Dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[latch]\nnonsense = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(shortDir(t), "gate.sock"), aliceIs)
	d.useConfig(t, cfg)
	h = newHarness(d.sock, "SSH_ORIGINAL_COMMAND=echo hi")
	h.r.rootConfig = bad
	h.wantDenied(t, h.r.run(), denyLine)
}
