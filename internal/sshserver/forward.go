package sshserver

import (
	"net"

	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// forwardGrant returns the grant of the connection behind ctx when TCP
// forwarding is allowed for it: [server] allow_tcp_forwarding, and no
// no-port-forwarding (or restrict) on the key's line.
func (s *Server) forwardGrant(ctx glssh.Context, what, host string, port uint32) *grant {
	c := connOf(ctx)
	sc, _ := ctx.Value(glssh.ContextKeyConn).(*gossh.ServerConn)
	g := c.grantFor(sc)
	log := s.o.Log.Info().Str("event", "forward").Str("kind", what).Str("host", safetext.Clean(host)).Uint32("port", port)
	switch {
	case g == nil:
		log.Msg("refused: not authenticated")
		return nil
	case !c.set.AllowTCPForwarding:
		log.Str("user", g.user).Msg("refused: [server] allow_tcp_forwarding is false")
		return nil
	case g.key.Options.NoPortForwarding:
		log.Str("user", g.user).Msg("refused: no-port-forwarding (or restrict) on the authorized_keys line")
		return nil
	}
	log.Str("user", g.user).Msg("allowed")
	return g
}

// localForward is LocalPortForwardingCallback (ssh -L, direct-tcpip).
func (s *Server) localForward(ctx glssh.Context, host string, port uint32) bool {
	return s.forwardGrant(ctx, "local", host, port) != nil
}

// remoteForward is ReversePortForwardingCallback (ssh -R, tcpip-forward).
// Like sshd with GatewayPorts no, the listener is on loopback only; like
// sshd, only root may listen on a port below 1024 (0 asks for any port).
func (s *Server) remoteForward(ctx glssh.Context, host string, port uint32) bool {
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		s.o.Log.Info().Str("event", "forward").Str("kind", "remote").Str("host", safetext.Clean(host)).
			Msg("refused: remote forwarding listens on loopback only")
		return false
	}
	g := s.forwardGrant(ctx, "remote", host, port)
	if g == nil {
		return false
	}
	if port != 0 && port < 1024 && g.acct.UID != 0 {
		s.o.Log.Info().Str("event", "forward").Str("user", g.user).Uint32("port", port).
			Msg("refused: only root may listen on a port below 1024")
		return false
	}
	return true
}
