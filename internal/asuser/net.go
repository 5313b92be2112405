package asuser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sockaddr converts an address to the raw form and its family.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, int) {
	a := ap.Addr().WithZone("")
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}, unix.AF_INET
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}, unix.AF_INET6
}

// fileConn turns a socket descriptor into a net.Conn (the net package dups
// it, so fd is closed here).
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "tcp")
	defer f.Close()
	return net.FileConn(f)
}

// DialTCP connects to addr (an IP address, never a name: resolve it first,
// on any goroutine) with a socket created as c, so the connection is c's
// for the kernel: iptables -m owner, /proc/net/tcp and ss -e see c.UID. The
// connect is non-blocking: no thread waits for a peer that does not answer;
// ctx bounds the wait.
func DialTCP(ctx context.Context, c Creds, addr netip.AddrPort) (net.Conn, error) {
	if !addr.IsValid() {
		return nil, errors.New("asuser: dial: invalid address")
	}
	fd, err := socketAs(c, addr, func(s, _ int, sa unix.Sockaddr) error {
		if err := unix.Connect(s, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			return fmt.Errorf("connect: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("asuser: dial %s as uid %d: %w", addr, c.UID, err)
	}
	conn, err := fileConn(fd)
	if err != nil {
		return nil, fmt.Errorf("asuser: dial %s: %w", addr, err)
	}
	if err := waitConnected(ctx, conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("asuser: dial %s: %w", addr, err)
	}
	return conn, nil
}

// socketAs creates a non-blocking TCP socket for addr's family on a thread
// running as c, and runs setup (connect, or bind and listen) on it there:
// the socket and what setup does with it are c's for the kernel. The socket
// is closed when setup fails.
func socketAs(c Creds, addr netip.AddrPort, setup func(s, family int, sa unix.Sockaddr) error) (int, error) {
	sa, family := sockaddr(addr)
	fd := -1
	err := Run(c, func() error {
		s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := setup(s, family, sa); err != nil {
			unix.Close(s)
			return err
		}
		fd = s
		return nil
	})
	return fd, err
}

// waitConnected waits, in the net package's poller, for a non-blocking
// connect to finish, and returns its outcome.
func waitConnected(ctx context.Context, conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	// Cancelling ctx (or its deadline) ends the wait through the write
	// deadline, which is cleared again afterwards.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		if _, err := unix.Getpeername(int(fd)); err == nil {
			return true
		}
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = err
			return true
		case v != 0:
			cerr = syscall.Errno(v)
			return true
		}
		return false // still connecting: wait until writable
	})
	if !stop() || ctx.Err() != nil {
		return fmt.Errorf("connect: %w", context.Cause(ctx))
	}
	if werr != nil {
		return fmt.Errorf("connect: %w", werr)
	}
	if cerr != nil {
		return fmt.Errorf("connect: %w", cerr)
	}
	return conn.SetWriteDeadline(time.Time{})
}

// ListenTCP listens on addr with a socket created and bound as c: the
// kernel applies c's rights (a port below 1024 needs
// CAP_NET_BIND_SERVICE) and records c as its owner. The listener accepts
// as c too, so each accepted connection is c's as well.
func ListenTCP(c Creds, addr netip.AddrPort) (net.Listener, error) {
	if !addr.IsValid() {
		return nil, errors.New("asuser: listen: invalid address")
	}
	fd, err := socketAs(c, addr, listen)
	if err != nil {
		return nil, fmt.Errorf("asuser: listen on %s as uid %d: %w", addr, c.UID, err)
	}
	sa2, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("asuser: listen on %s: getsockname: %w", addr, err)
	}
	// An *os.File, not net.FileListener: the net package's listeners do
	// not offer a wait for readiness without accepting (their RawConn's
	// Read is EINVAL), and the accept itself must run as the user. A
	// non-blocking descriptor given to os.NewFile is in the poller.
	f := os.NewFile(uintptr(fd), "tcp-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("asuser: listen on %s: %w", addr, err)
	}
	return &listener{f: f, rc: rc, addr: tcpAddr(sa2), c: c}, nil
}

// tcpAddr converts a raw socket address.
func tcpAddr(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// listen binds and listens, with the options net.Listen sets.
func listen(s, family int, sa unix.Sockaddr) error {
	if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	if err := unix.Bind(s, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(s, unix.SOMAXCONN); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

// listener accepts as its user: the kernel gives an accepted socket the
// credentials of the thread that calls accept, not the listener's.
type listener struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	addr   *net.TCPAddr
	c      Creds
}

// Addr returns the address listened on.
func (l *listener) Addr() net.Addr { return l.addr }

// Close closes the listener; a blocked Accept returns net.ErrClosed.
func (l *listener) Close() error {
	l.closed.Store(true)
	return l.f.Close()
}

// Accept waits in the poller for a pending connection and accepts it on a
// thread that is the user.
func (l *listener) Accept() (net.Conn, error) {
	nfd := -1
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		aerr = Run(l.c, func() error {
			s, _, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				return err
			}
			nfd = s
			return nil
		})
		// Nothing pending (another Accept won the race, or the client
		// gave up before we took it): wait again, as net.Listener does.
		return !errors.Is(aerr, unix.EAGAIN) && !errors.Is(aerr, unix.ECONNABORTED)
	})
	if err != nil && l.closed.Load() {
		// The poller's "use of closed file" is no os.ErrClosed.
		return nil, net.ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("asuser: accept: %w", err)
	}
	if aerr != nil {
		return nil, fmt.Errorf("asuser: accept as uid %d: %w", l.c.UID, aerr)
	}
	conn, err := fileConn(nfd)
	if err != nil {
		return nil, fmt.Errorf("asuser: accept: %w", err)
	}
	return conn, nil
}
