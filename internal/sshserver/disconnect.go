package sshserver

import (
	"errors"
	"reflect"
	"runtime/debug"
	"unsafe"

	gossh "golang.org/x/crypto/ssh"
)

// Sending SSH_MSG_DISCONNECT with our reason (issue 13, point 4).
//
// A client shows the person why the server ended a connection only if the
// server says so in SSH_MSG_DISCONNECT (RFC 4253 section 11.1): PuTTY and
// plink print "Remote side sent disconnect message type 11 (by
// application)" with the text, asyncssh raises a DisconnectError carrying
// it, OpenSSH prints "Received disconnect from ...: 11: text". The
// authentication banner is not enough: OpenSSH shows it, but plink in batch
// mode, asyncssh and paramiko do not, and a bare TCP close leaves them all
// with "connection closed" or "no supported authentication methods".
//
// golang.org/x/crypto/ssh (v0.58.0) has no public way to send that message
// from a server: the only disconnects it writes are its own, with fixed
// texts (MaxAuthTries: reason 2 "too many authentication failures"); no
// error value a callback can return, no ServerConfig field, and no method
// of ServerConn or ServerPreAuthConn writes a packet of our choosing
// (SendAuthBanner and SendRequest wrap what they are given in their own
// message types). The packets are encrypted, so nothing written on the
// net.Conn underneath can stand in for one either.
//
// So, without forking x/crypto, the message is written through x/crypto's
// own, unexported packet writer, the same call its server uses for its
// disconnects: (*handshakeTransport).writePacket, reached with a linkname
// directive (the Go linker allows pulling a symbol of a package outside
// the standard library) on the transport field of the connection. That
// reaches into another module's internals, so it is fenced in:
//
//   - it is used only with the x/crypto version it was read against
//     (disconnectVerified), as the binary's build information reports it;
//     any other version, a replace directive included, turns it off (a
//     refusal then goes as before: the banner, a failure, a plain close)
//     and the server says so in its log at start; TestDisconnectMechanism
//     fails, so a dependency bump can neither lose it silently nor run it
//     unchecked;
//   - the dynamic types are checked by name and package before the
//     pointer is used: the connection must be x/crypto's *ssh.connection,
//     its transport field an interface holding *ssh.handshakeTransport;
//   - the packet goes through the transport's lock and its rekeying logic,
//     exactly like a packet x/crypto writes itself, and only the
//     disconnect message is ever written this way.
//
// Upstream: golang/go#37913 (open) proposes a public Disconnect on
// ssh.Conn; when it lands, this file goes and the public call replaces it.

// disconnectVerified is the golang.org/x/crypto version whose internals
// writeDisconnect was read against.
const disconnectVerified = "v0.58.0"

// disconnectByApplication is SSH_DISCONNECT_BY_APPLICATION.
const disconnectByApplication = 11

//go:linkname xcryptoWritePacket golang.org/x/crypto/ssh.(*handshakeTransport).writePacket
func xcryptoWritePacket(t unsafe.Pointer, p []byte) error

// disconnectMsg is SSH_MSG_DISCONNECT (message number 1).
type disconnectMsg struct {
	Reason   uint32 `sshtype:"1"`
	Message  string
	Language string
}

// disconnectSupport reports whether writeDisconnect may be used with the
// x/crypto this binary was built with, and why not. version, when not
// empty, stands for the version in the build information (test binaries
// have no dependency list; the tests read go.mod instead).
func disconnectSupport(version string) (bool, string) {
	if version == "" {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return false, "no build information to check the golang.org/x/crypto version"
		}
		for _, m := range bi.Deps {
			if m.Path != "golang.org/x/crypto" {
				continue
			}
			if m.Replace != nil {
				return false, "golang.org/x/crypto is replaced (" + m.Replace.Path + " " + m.Replace.Version + ")"
			}
			version = m.Version
		}
		if version == "" {
			return false, "golang.org/x/crypto not found in the build information"
		}
	}
	if version != disconnectVerified {
		return false, "golang.org/x/crypto " + version + " is not " + disconnectVerified + ", the version the disconnect writer was checked against"
	}
	return true, ""
}

var errNoDisconnect = errors.New("cannot send SSH_MSG_DISCONNECT on this connection")

// transportOf returns x/crypto's *handshakeTransport of conn, which must be
// the *ssh.connection behind a ConnMetadata, ServerPreAuthConn or
// ServerConn.Conn, or nil.
func transportOf(conn any) unsafe.Pointer {
	if conn == nil {
		return nil
	}
	v := reflect.ValueOf(conn)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	st := v.Type().Elem()
	if st.Kind() != reflect.Struct || st.Name() != "connection" || st.PkgPath() != "golang.org/x/crypto/ssh" {
		return nil
	}
	f := v.Elem().FieldByName("transport")
	if !f.IsValid() || f.Kind() != reflect.Interface || f.IsNil() {
		return nil
	}
	e := f.Elem()
	if e.Kind() != reflect.Pointer || e.IsNil() {
		return nil
	}
	if tt := e.Type().Elem(); tt.Name() != "handshakeTransport" || tt.PkgPath() != "golang.org/x/crypto/ssh" {
		return nil
	}
	return e.UnsafePointer()
}

// writeDisconnect sends SSH_MSG_DISCONNECT with reason and message to the
// client of conn. The caller closes the connection afterwards.
func writeDisconnect(conn any, reason uint32, message string) error {
	t := transportOf(conn)
	if t == nil {
		return errNoDisconnect
	}
	return xcryptoWritePacket(t, gossh.Marshal(&disconnectMsg{Reason: reason, Message: message}))
}
