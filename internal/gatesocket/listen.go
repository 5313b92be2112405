package gatesocket

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenSocket creates the gate socket at path: the directory is created
// (0755, root) if missing and must otherwise be owned by this process's user
// and not writable by others, so no user can swap the socket for their
// own; a stale socket is removed; the socket is 0666, since every user must
// reach it and identity comes from SO_PEERCRED.
func ListenSocket(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gate socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("gate socket directory: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("gate socket directory %s must be a directory owned by uid %d and not writable by others (fix: chown %d %s && chmod 755 %s)",
			dir, os.Geteuid(), os.Geteuid(), dir, dir)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it", path)
		}
		os.Remove(path)
	}
	// Built by hand rather than with net.ListenUnix, for two reasons. The
	// backlog: net takes it from /proc/sys/net/core/somaxconn, or 128 when
	// it cannot read that; a backlog is what a connect flood fills (issue
	// 12, item 6), so ask for the most the kernel gives (it caps the value
	// at somaxconn) whatever /proc shows. And the order: the socket is
	// made reachable by everyone (0666) after bind and before listen, so
	// no gate ever finds it listening with the umask's mode and is denied
	// EACCES; between bind and listen a gate gets ECONNREFUSED, which it
	// retries.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gate socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("gate socket: bind %s: %w", path, err)
	}
	fail := func(what string, err error) (*net.UnixListener, error) {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("gate socket: %s %s: %w", what, path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		return fail("chmod", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return fail("listen", err)
	}
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f) // a duplicate of fd
	f.Close()
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("gate socket: %s: %w", path, err)
	}
	ln, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("gate socket: %s: not a Unix listener", path)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// listenBacklog is the backlog the gate socket asks for; Linux caps it at
// net.core.somaxconn (4096 by default since 5.4).
const listenBacklog = 1<<16 - 1
