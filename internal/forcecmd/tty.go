package forcecmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether fd is a terminal.
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// openControllingTTY opens the session's terminal. The gate prompts there
// rather than on stdin/stderr: it is a new open file description, so the
// non-blocking mode Go sets on it (for read deadlines) never reaches the
// stdin the shell inherits.
func openControllingTTY() (*os.File, error) {
	return os.OpenFile("/dev/tty", os.O_RDWR|syscall.O_NOCTTY, 0)
}

// ttyGuard remembers a terminal whose settings the gate changed (echo off
// while a one-time code is typed) and puts them back. Every path out of
// the gate calls restore: a normal answer, a timeout, a signal. Safe for
// concurrent use: the prompt runs in the decision's goroutine while the
// main goroutine may give up on it.
type ttyGuard struct {
	mu    sync.Mutex
	f     *os.File
	saved unix.Termios
}

// echoOff turns echo off on f, discarding input typed before the prompt
// (TCSAFLUSH, like readpassphrase), and remembers the old settings.
func (g *ttyGuard) echoOff(f *os.File) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	cerr := control(f, func(fd int) {
		var old *unix.Termios
		if old, err = unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			return
		}
		quiet := *old
		quiet.Lflag &^= unix.ECHO | unix.ECHONL
		// NOFLSH: a Ctrl-C at the prompt must not flush the output queue.
		// The line discipline sends SIGINT and then flushes; a gate that
		// prints its refusal quickly would otherwise see it discarded
		// (seen under load: the session ended with no refusal line).
		quiet.Lflag |= unix.NOFLSH
		if err = unix.IoctlSetTermios(fd, unix.TCSETSF, &quiet); err != nil {
			return
		}
		g.f, g.saved = f, *old
	})
	return errors.Join(cerr, err)
}

// restore puts the saved settings back (TCSANOW: keep what the person
// typed after the code, it is meant for their shell). It does nothing when
// nothing was changed or it already ran.
func (g *ttyGuard) restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return
	}
	_ = control(g.f, func(fd int) { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &g.saved) })
	g.f = nil
}

// control runs fn with f's descriptor without f.Fd(), which would switch
// the file back to blocking mode and disable read deadlines.
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// maxCodeLine bounds what is kept of the line typed at the prompt.
const maxCodeLine = 256

// readCode writes prompt to the terminal f, reads one line with echo off
// and returns it without the line end and surrounding spaces. It gives up
// with an error after timeout, or when ctx is done (the gate was
// interrupted), and always restores the terminal before returning.
func readCode(ctx context.Context, f *os.File, g *ttyGuard, prompt string, timeout time.Duration) (string, error) {
	if err := g.echoOff(f); err != nil {
		return "", err
	}
	defer g.restore()
	// The read deadline bounds the wait; cancelling ctx moves it to now,
	// which wakes the blocked Read at once. (If the terminal did not
	// support deadlines, the gate's own timer would still end the wait.)
	_ = f.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := f.WriteString(prompt); err != nil {
		return "", err
	}
	// Echo was off, so the Enter the person pressed did not move the
	// cursor: end the prompt line ourselves, whatever happens.
	defer f.WriteString("\n")
	var line []byte
	buf := make([]byte, 64)
	for {
		n, err := f.Read(buf)
		chunk := buf[:n]
		end := bytes.IndexByte(chunk, '\n')
		if end >= 0 {
			chunk = chunk[:end]
		}
		if len(line) < maxCodeLine {
			line = append(line, chunk[:min(len(chunk), maxCodeLine-len(line))]...)
		}
		if end >= 0 {
			break
		}
		if err != nil { // io.EOF (Ctrl-D), the deadline, a hang-up
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", err
		}
	}
	return string(bytes.TrimSpace(line)), nil
}

// drainTerminal waits (tcdrain) until what was written to fd, if it is a
// terminal, has been read from the other side. On an ssh -t session the
// refusal is the last thing the gate writes before it exits, and sshd can
// close the pty before reading a line written just before the exit; the
// person would then see nothing. Bounded, so a terminal nobody reads
// cannot hold the gate.
func drainTerminal(fd int) {
	if !isTerminal(fd) {
		return
	}
	done := make(chan struct{})
	go func() {
		_ = unix.IoctlSetInt(fd, unix.TCSBRK, 1) // tcdrain
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}
