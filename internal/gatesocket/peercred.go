package gatesocket

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred is who is at the other end of a Unix socket, as the kernel says.
type PeerCred struct {
	UID, GID uint32
	PID      int32
}

// PeerCredOf reads SO_PEERCRED from conn: the credentials the peer had
// when it connected. Nothing the peer sends can change them.
func PeerCredOf(conn *net.UnixConn) (PeerCred, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return PeerCred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return PeerCred{}, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return PeerCred{}, fmt.Errorf("peer credentials: %w", serr)
	}
	return PeerCred{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}
