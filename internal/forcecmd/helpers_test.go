package forcecmd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal pair through /dev/ptmx (creack/pty is
// not a dependency): master is the "keyboard and screen" side the test
// drives, slave the terminal the code under test uses.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals:", err)
	}
	t.Cleanup(func() { m.Close() })
	var n int
	var ierr error
	if err := control(m, func(fd int) {
		if ierr = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); ierr == nil {
			n, ierr = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		}
	}); err != nil || ierr != nil {
		t.Fatalf("unlock pty: %v %v", err, ierr)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// watched collects what a reader produces and lets the test wait for a
// string to appear, without polling.
type watched struct {
	mu     sync.Mutex
	buf    strings.Builder
	notify chan struct{}
	done   bool
}

// watch copies r into a new watched buffer until r fails.
func watch(r io.Reader) *watched {
	w := &watched{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			w.mu.Lock()
			w.buf.Write(b[:n])
			if err != nil {
				w.done = true
			}
			if w.notify != nil {
				close(w.notify)
				w.notify = nil
			}
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return w
}

func (w *watched) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains s, failing the test after
// timeout or when the reader ends without it.
func (w *watched) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		have, done := w.buf.String(), w.done
		if w.notify == nil {
			w.notify = make(chan struct{})
		}
		ch := w.notify
		w.mu.Unlock()
		if strings.Contains(have, s) {
			return
		}
		if done {
			t.Fatalf("output ended without %q:\n%q", s, have)
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no %q within %v; output so far:\n%q", s, timeout, have)
		}
	}
}

// echoOn reports whether f's terminal echoes input.
func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	var tio *unix.Termios
	var ierr error
	if err := control(f, func(fd int) { tio, ierr = unix.IoctlGetTermios(fd, unix.TCGETS) }); err != nil || ierr != nil {
		t.Fatalf("tcgetattr: %v %v", err, ierr)
	}
	return tio.Lflag&unix.ECHO != 0
}
