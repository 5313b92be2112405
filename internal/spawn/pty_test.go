package spawn

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPTYMasterIsPollable: the master StartPTY returns is non-blocking and
// served by Go's poller, before and after a Resize, so a quiet terminal
// holds no OS thread while the server waits on it, and a read deadline
// ends a read that nothing would otherwise end (the embedded server bounds
// the drain of a finished session that way). Through creack/pty alone the
// descriptor is left blocking, and the deadline never fires.
func TestPTYMasterIsPollable(t *testing.T) {
	_, acct := newAccount(t)
	// The shell waits for a line and prints nothing before it.
	cmd := mustCommand(t, Spec{Account: acct, PTY: true, Command: "read x; echo done"})
	ptmx, err := StartPTY(cmd, 24, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer cmd.Process.Kill()

	nonblocking := func() bool {
		t.Helper()
		rc, err := ptmx.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var fl int
		if cerr := rc.Control(func(fd uintptr) { fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); cerr != nil || err != nil {
			t.Fatal(cerr, err)
		}
		return fl&unix.O_NONBLOCK != 0
	}
	// readTimesOut reads with a deadline 100ms away; the read must end
	// with ErrDeadlineExceeded, soon.
	readTimesOut := func(when string) {
		t.Helper()
		if err := ptmx.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatalf("%s: SetReadDeadline: %v", when, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := ptmx.Read(make([]byte, 64))
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s: read ended with %v; want the deadline", when, err)
			}
		case <-time.After(5 * time.Second):
			// Unblock the stuck read so the test can end.
			_, _ = ptmx.Write([]byte("x\n"))
			t.Fatalf("%s: the read deadline did not end a read on a quiet terminal (blocking descriptor)", when)
		}
	}

	if !nonblocking() {
		t.Error("master is in blocking mode after StartPTY")
	}
	readTimesOut("after StartPTY")
	if err := Resize(ptmx, 30, 90); err != nil {
		t.Fatal(err)
	}
	if !nonblocking() {
		t.Error("master is in blocking mode after Resize")
	}
	readTimesOut("after Resize")

	// The terminal still works both ways.
	if err := ptmx.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := ptmx.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 256)
	for !containsDone(out) {
		n, err := ptmx.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q then %v; want done", out, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
}

func containsDone(b []byte) bool {
	for i := 0; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == "done" {
			return true
		}
	}
	return false
}
