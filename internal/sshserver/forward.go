package sshserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/asuser"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
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

// remoteGrant decides a tcpip-forward request (ssh -R): like sshd with
// GatewayPorts no, the listener is on loopback only; like sshd, only root
// may listen on a port below 1024 (0 asks for any port). The kernel would
// refuse such a port too (the listener is created as the user), unless
// net.ipv4.ip_unprivileged_port_start says otherwise; sshd's rule holds
// whatever the sysctl.
func (s *Server) remoteGrant(ctx glssh.Context, host string, port uint32) *grant {
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		s.o.Log.Info().Str("event", "forward").Str("kind", "remote").Str("host", safetext.Clean(host)).
			Msg("refused: remote forwarding listens on loopback only")
		return nil
	}
	g := s.forwardGrant(ctx, "remote", host, port)
	if g == nil {
		return nil
	}
	if port != 0 && port < 1024 && g.acct.UID != 0 {
		s.o.Log.Info().Str("event", "forward").Str("user", g.user).Uint32("port", port).
			Msg("refused: only root may listen on a port below 1024")
		return nil
	}
	return g
}

// The forwarding handlers below replace gliderlabs' DirectTCPIPHandler and
// ForwardedTCPHandler, which dial and listen with the net package, that is
// as the daemon: root. sshd forwards in the user's unprivileged process, so
// per-uid rules (iptables -m owner --uid-owner, the owner shown by ss -e)
// see the user; with gliderlabs' handlers they saw root, and a user barred
// from the network by such a rule could walk around it through ssh -L.
// Ours create every socket as the user (asuser.DialTCP, asuser.ListenTCP,
// whose listener also accepts as the user). Only the name resolution of a
// -L destination is done by the daemon (it hops goroutines, and so
// threads); the connection itself is the user's.

// dialTimeout bounds one -L connection attempt, all addresses together.
const dialTimeout = 30 * time.Second

// credsOf returns the credentials the kernel should see for acct.
func credsOf(acct spawn.Account) asuser.Creds {
	return asuser.Creds{UID: acct.UID, GID: acct.GID, Groups: acct.Groups}
}

// directTCPIPData is the direct-tcpip channel payload (RFC 4254 7.2).
type directTCPIPData struct {
	DestAddr   string
	DestPort   uint32
	OriginAddr string
	OriginPort uint32
}

// directTCPIP is the "direct-tcpip" channel handler (ssh -L): it connects
// to the destination as the user.
func (s *Server) directTCPIP(_ *glssh.Server, _ *gossh.ServerConn, newChan gossh.NewChannel, ctx glssh.Context) {
	var d directTCPIPData
	if err := gossh.Unmarshal(newChan.ExtraData(), &d); err != nil {
		_ = newChan.Reject(gossh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	g := s.forwardGrant(ctx, "local", d.DestAddr, d.DestPort)
	if g == nil {
		_ = newChan.Reject(gossh.Prohibited, "port forwarding is disabled")
		return
	}
	if d.DestPort == 0 || d.DestPort > 65535 {
		_ = newChan.Reject(gossh.ConnectionFailed, "bad port")
		return
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	dconn, err := dialAs(dctx, credsOf(g.acct), d.DestAddr, uint16(d.DestPort))
	if err != nil {
		s.o.Log.Info().Str("event", "forward").Str("kind", "local").Str("user", g.user).
			Str("host", safetext.Clean(d.DestAddr)).Uint32("port", d.DestPort).
			Str("error", safetext.Clean(err.Error())).Msg("connect failed")
		_ = newChan.Reject(gossh.ConnectionFailed, "connect failed")
		return
	}
	ch, reqs, err := newChan.Accept()
	if err != nil {
		dconn.Close()
		return
	}
	go gossh.DiscardRequests(reqs)
	pipe(ch, dconn)
}

// dialAs resolves host (as the daemon) and connects to each of its
// addresses in turn as c, until one answers.
func dialAs(ctx context.Context, c asuser.Creds, host string, port uint16) (net.Conn, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve: %w", err)
		}
	}
	err := errors.New("no address")
	for _, a := range addrs {
		var conn net.Conn
		if conn, err = asuser.DialTCP(ctx, c, netip.AddrPortFrom(a.Unmap(), port)); err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// pipe copies between a channel and a connection both ways, and closes
// both when either side is done.
func pipe(ch gossh.Channel, conn net.Conn) {
	go func() {
		defer ch.Close()
		defer conn.Close()
		_, _ = io.Copy(ch, conn)
	}()
	go func() {
		defer ch.Close()
		defer conn.Close()
		_, _ = io.Copy(conn, ch)
	}()
}

// The tcpip-forward payloads (RFC 4254 7.1).
type (
	tcpipForwardData struct {
		BindAddr string
		BindPort uint32
	}
	tcpipForwardReply struct {
		BindPort uint32
	}
	forwardedTCPIPData struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
)

// forwarder handles tcpip-forward and cancel-tcpip-forward (ssh -R). Its
// listeners are kept per SSH connection, keyed by the requested address
// and the port actually bound (as sshd does), so that a connection can
// cancel only its own forwards.
type forwarder struct {
	s  *Server
	mu sync.Mutex
	ls map[*gossh.ServerConn]map[string]net.Listener
}

func newForwarder(s *Server) *forwarder {
	return &forwarder{s: s, ls: map[*gossh.ServerConn]map[string]net.Listener{}}
}

// handle is the gliderlabs RequestHandler for both request types.
func (f *forwarder) handle(ctx glssh.Context, _ *glssh.Server, req *gossh.Request) (bool, []byte) {
	sc, _ := ctx.Value(glssh.ContextKeyConn).(*gossh.ServerConn)
	if sc == nil {
		return false, nil
	}
	var d tcpipForwardData
	if err := gossh.Unmarshal(req.Payload, &d); err != nil || d.BindPort > 65535 {
		return false, nil
	}
	switch req.Type {
	case "tcpip-forward":
		return f.listen(ctx, sc, d)
	case "cancel-tcpip-forward":
		key := net.JoinHostPort(d.BindAddr, strconv.Itoa(int(d.BindPort)))
		f.mu.Lock()
		ln := f.ls[sc][key]
		f.mu.Unlock()
		if ln == nil {
			return false, nil
		}
		ln.Close()
		return true, nil
	}
	return false, nil
}

// listen opens one -R listener as the user.
func (f *forwarder) listen(ctx glssh.Context, sc *gossh.ServerConn, d tcpipForwardData) (bool, []byte) {
	g := f.s.remoteGrant(ctx, d.BindAddr, d.BindPort)
	if g == nil {
		return false, nil
	}
	host := d.BindAddr
	if host == "localhost" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil
	}
	ln, err := asuser.ListenTCP(credsOf(g.acct), netip.AddrPortFrom(a.Unmap(), uint16(d.BindPort)))
	if err != nil {
		f.s.o.Log.Info().Str("event", "forward").Str("kind", "remote").Str("user", g.user).
			Str("host", safetext.Clean(d.BindAddr)).Uint32("port", d.BindPort).
			Str("error", safetext.Clean(err.Error())).Msg("listen failed")
		return false, nil
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	key := net.JoinHostPort(d.BindAddr, strconv.Itoa(int(port)))
	f.mu.Lock()
	if ctx.Err() != nil || f.ls[sc][key] != nil {
		f.mu.Unlock()
		ln.Close()
		return false, nil
	}
	if f.ls[sc] == nil {
		f.ls[sc] = map[string]net.Listener{}
		// The connection's end closes all its listeners.
		go func() {
			<-ctx.Done()
			f.mu.Lock()
			all := f.ls[sc]
			delete(f.ls, sc)
			f.mu.Unlock()
			for _, l := range all {
				l.Close()
			}
		}()
	}
	f.ls[sc][key] = ln
	f.mu.Unlock()
	go f.serve(sc, ln, key, forwardedTCPIPData{DestAddr: d.BindAddr, DestPort: port})
	return true, gossh.Marshal(&tcpipForwardReply{BindPort: port})
}

// serve accepts on one -R listener until it is closed, and forwards each
// connection over a forwarded-tcpip channel.
func (f *forwarder) serve(sc *gossh.ServerConn, ln net.Listener, key string, d forwardedTCPIPData) {
	defer func() {
		ln.Close()
		f.mu.Lock()
		if f.ls[sc][key] == ln {
			delete(f.ls[sc], key)
		}
		f.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.s.o.Log.Warn().Str("event", "forward").Str("kind", "remote").Str("listen", key).
					Str("error", safetext.Clean(err.Error())).Msg("accept failed; forward closed")
			}
			return
		}
		go func() {
			p := d
			if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
				p.OriginAddr, p.OriginPort = ra.IP.String(), uint32(ra.Port)
			}
			ch, reqs, err := sc.OpenChannel("forwarded-tcpip", gossh.Marshal(&p))
			if err != nil {
				c.Close()
				return
			}
			go gossh.DiscardRequests(reqs)
			pipe(ch, c)
		}()
	}
}
