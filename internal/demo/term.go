package demo

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// control runs fn with f's descriptor without putting it in blocking mode
// (which f.Fd would do).
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	var ierr error
	if err := control(f, func(fd int) { _, ierr = unix.IoctlGetTermios(fd, unix.TCGETS) }); err != nil {
		return false
	}
	return ierr == nil
}

// cbreak puts the terminal f in cbreak mode: each key is read as it is
// typed (ICANON off, one byte at a time) and not echoed, while Ctrl-C
// still sends SIGINT (ISIG) and output processing stays on (OPOST), so
// "\n" still returns the carriage. restore puts the old settings back; it
// may be called more than once.
func cbreak(f *os.File) (restore func() error, err error) {
	var saved *unix.Termios
	var ierr error
	cerr := control(f, func(fd int) {
		if saved, ierr = unix.IoctlGetTermios(fd, unix.TCGETS); ierr != nil {
			return
		}
		t := *saved
		t.Lflag &^= unix.ICANON | unix.ECHO | unix.ECHONL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		ierr = unix.IoctlSetTermios(fd, unix.TCSETS, &t)
	})
	if cerr != nil {
		return nil, fmt.Errorf("terminal: %w", cerr)
	}
	if ierr != nil {
		return nil, fmt.Errorf("terminal: setting cbreak mode: %w", ierr)
	}
	restore = func() error {
		var rerr error
		if err := control(f, func(fd int) { rerr = unix.IoctlSetTermios(fd, unix.TCSETS, saved) }); err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		if rerr != nil {
			return fmt.Errorf("terminal: restoring its settings: %w", rerr)
		}
		return nil
	}
	return restore, nil
}
