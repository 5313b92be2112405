package spawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// StartPTY starts cmd (from Command) on a new pseudo-terminal of rows x
// cols and returns the master side, which the caller reads, writes and
// closes. Before the start the terminal is made the user's, like sshd's
// pty_setowner: owner the account (from cmd.SysProcAttr.Credential, else the
// current user), group "tty" and mode 0620 when that group exists, else the
// account's group and mode 0600. The child gets the terminal as stdin,
// stdout, stderr and controlling terminal (Setsid, Setctty), and SSH_TTY is
// added to its environment. modes, the terminal modes of an SSH pty-req
// (RFC 4254 section 8 encoding; nil for none), are applied before the
// start: the client's erase and interrupt characters, echo, and the other
// modes OpenSSH carries; modes this package does not know are ignored, as
// sshd does. Read errors with syscall.EIO on the master mean the terminal
// was closed (the session ended). Like Start, it marks this process's
// descriptors close-on-exec first.
func StartPTY(cmd *exec.Cmd, rows, cols uint16, modes []byte) (*os.File, error) {
	if cmd.Process != nil {
		return nil, errors.New("spawn: StartPTY: command already started")
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("spawn: open pty: %w", err)
	}
	defer tty.Close() // the child holds its own copies after Start
	fail := func(err error) (*os.File, error) {
		ptmx.Close()
		return nil, err
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		return fail(fmt.Errorf("spawn: set pty size: %w", err))
	}
	// The last ioctl through creack/pty (see pollable).
	if ptmx, err = pollable(ptmx); err != nil {
		return nil, fmt.Errorf("spawn: pty: %w", err)
	}
	if err := applyModes(tty, modes); err != nil {
		return fail(err)
	}
	if err := setTTYOwner(tty, cmd.SysProcAttr); err != nil {
		return fail(err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // the child's stdin, which is tty
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(withoutVar(cmd.Env, "SSH_TTY"), "SSH_TTY="+tty.Name())
	if err := Start(cmd); err != nil {
		return fail(err)
	}
	return ptmx, nil
}

// setTTYOwner gives tty to the credential's user (or the current one).
func setTTYOwner(tty *os.File, attr *syscall.SysProcAttr) error {
	uid, gid := os.Getuid(), os.Getgid()
	if attr != nil && attr.Credential != nil {
		uid, gid = int(attr.Credential.Uid), int(attr.Credential.Gid)
	}
	mode := os.FileMode(0o600)
	if g, err := user.LookupGroup("tty"); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			gid, mode = n, 0o620
		}
	}
	if os.Geteuid() == 0 {
		if err := tty.Chown(uid, gid); err != nil {
			return fmt.Errorf("spawn: chown %s: %w", tty.Name(), err)
		}
	} else if fi, err := tty.Stat(); err != nil {
		return fmt.Errorf("spawn: stat %s: %w", tty.Name(), err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
		return fmt.Errorf("spawn: %s is not owned by uid %d", tty.Name(), uid)
	}
	if err := tty.Chmod(mode); err != nil {
		return fmt.Errorf("spawn: chmod %s: %w", tty.Name(), err)
	}
	return nil
}

// withoutVar returns env without the entries for name.
func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)] == name && kv[len(name)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Resize sets the window size of the terminal whose master StartPTY
// returned (an SSH window-change request); the kernel sends SIGWINCH to the
// terminal's foreground process group. It keeps the master non-blocking
// (see pollable).
func Resize(f *os.File, rows, cols uint16) error {
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("spawn: resize pty: %w", err)
	}
	return nil
}

// pollable returns the terminal master f as a new *os.File in non-blocking
// mode, served by Go's poller, and closes f. creack/pty's ioctls call
// (*os.File).Fd, which switches the descriptor to blocking mode for good:
// every Read would then hold an OS thread for as long as the terminal is
// quiet (one thread per open interactive session, about 30 kB of the
// daemon's resident memory each, measured with `make bench`), and
// SetReadDeadline could not interrupt it. After this, nothing may call Fd
// on the master: use SyscallConn.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	cerr := rc.Control(func(old uintptr) { fd, err = unix.FcntlInt(old, unix.F_DUPFD_CLOEXEC, 0) })
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK belongs to the open file, which the copy shares; f is
	// closed right after. os.NewFile registers a non-blocking descriptor
	// with the poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
