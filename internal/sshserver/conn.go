package sshserver

import (
	"context"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/authkeys"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/users"
)

// conn is one client connection: the net.Conn gliderlabs reads and writes
// (so closing it ends everything), the authentication state, and, once
// authenticated, the grant its sessions run under.
//
// One conn is one authentication: x/crypto calls our callbacks one at a
// time for a connection, but the timers and the recheck loop close it from
// other goroutines, so the state is under mu.
type conn struct {
	net.Conn
	s      *Server
	remote string
	// src is where the connection comes from: its unauthenticated slot
	// and any penalty count under src.block.
	src source
	// set is the [server] table when the connection arrived; it stays the
	// same for the life of the connection.
	set users.Server
	// ctx ends when the connection closes, so a Latch call for a client
	// that left is cancelled (and denies).
	ctx    context.Context
	cancel context.CancelFunc

	handshake, grace *time.Timer
	closeOnce        sync.Once
	releaseOnce      sync.Once

	mu sync.Mutex
	// keyrings caches, per user name tried on this connection, the
	// account and its authorized keys.
	keyrings map[string]*keyring
	// denied is set once the gate refused: every later attempt on this
	// connection ends it, without asking Latch again.
	denied bool
	// pending is the decision waiting for its one-time code.
	pending *pending
	// grant is set when authentication succeeded.
	grant    *grant
	grantID  string
	sessions map[*session]struct{}
	// ended is why the server ended the connection, for the sessions.
	ended string
	// pre is x/crypto's handle of the connection, from the start of the
	// authentication: it sends banners, and carries SSH_MSG_DISCONNECT
	// (disconnect.go) before and after the authentication.
	pre gossh.ServerPreAuthConn
	// tried is set by the first authentication request other than
	// "none", timedOut when handshake_timeout or login_grace_time closed
	// the connection: together they say which penalty a connection that
	// ends without logging in earns.
	tried, timedOut bool
}

// keyring is what one user name resolved to on a connection.
type keyring struct {
	acct spawn.Account
	keys []authkeys.Key
	err  error
}

// pending is a login that passed the key and the latch and waits for the
// one-time code.
type pending struct {
	core *gate.Core
	req  gate.Request
	d    gate.Decision
	// login is the user name the client sent; req.User is the account
	// NSS resolved it to (they differ with a case-insensitive directory).
	login string
	acct  spawn.Account
	key   authkeys.Key
	// pub is the key whose signature was verified.
	pub gossh.PublicKey
}

// grant is what an authenticated connection may do: who it runs as and
// which key options apply.
type grant struct {
	// login is the user name the client authenticated with, which the
	// connection's final user name must equal; user is the account it
	// resolved to, which everything runs as and is decided for.
	login string
	user  string
	acct  spawn.Account
	key   authkeys.Key
	// fingerprint is the SHA256 fingerprint of the verified key.
	fingerprint string
}

// maxUserNames bounds the user names one connection may try: each costs an
// NSS lookup and a file read.
const maxUserNames = 4

func newConn(s *Server, nc net.Conn, set *users.Server) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		Conn:     nc,
		s:        s,
		remote:   nc.RemoteAddr().String(),
		set:      *set,
		ctx:      ctx,
		cancel:   cancel,
		keyrings: map[string]*keyring{},
		sessions: map[*session]struct{}{},
	}
	// The key exchange must finish within the handshake timeout, and the
	// whole authentication within the login grace time (sshd's
	// LoginGraceTime): a client that stalls holds one of the
	// max_unauthenticated slots, so stalling must not be free.
	c.handshake = time.AfterFunc(set.HandshakeTimeout.Duration, func() {
		c.timeout("handshake not finished within " + set.HandshakeTimeout.Duration.String())
	})
	c.grace = time.AfterFunc(set.LoginGraceTime.Duration, func() {
		c.timeout("not authenticated within login_grace_time " + set.LoginGraceTime.Duration.String())
	})
	return c
}

// Close closes the connection, once: it stops the timers, frees the
// unauthenticated slot, records a pending one-time code as not given, and
// ends the sessions' processes (see session.hangup).
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.handshake.Stop()
		c.grace.Stop()
		c.penalise()
		c.release()
		c.cancel()
		err = c.Conn.Close()

		c.mu.Lock()
		p, g := c.pending, c.grant
		c.pending = nil
		sessions := make([]*session, 0, len(c.sessions))
		for ss := range c.sessions {
			sessions = append(sessions, ss)
		}
		c.mu.Unlock()
		if p != nil {
			// The client left (or the grace time ran out) while being asked
			// for the code: that is a refusal, and it is logged as one.
			final := p.core.Finish(p.req, p.d, "")
			c.s.decided(p.req, final)
		}
		if g != nil {
			c.s.track(g.user, c, false)
			c.s.o.Log.Info().Str("event", "logout").Str("user", g.user).Str("remote", c.remote).Msg("connection closed")
		}
		for _, ss := range sessions {
			ss.hangup()
		}
	})
	return err
}

// penalise charges the connection's source block, when it ends without
// logging in, for the slot it held (startups.go): unless the server is
// stopping and closed it. It runs before the socket is closed and the slot
// given back, so that the client cannot come back before its penalty is
// in force.
func (c *conn) penalise() {
	c.mu.Lock()
	in, tried, timedOut := c.grant != nil, c.tried, c.timedOut
	c.mu.Unlock()
	if in || c.s.isStopped() {
		return
	}
	kind := penaltyNoAuth
	switch {
	case timedOut:
		kind = penaltyTimeout
	case tried:
		kind = penaltyAuthFail
	}
	logPenalty(c.s.o.Log, c.s.adm.penalise(c.src, kind, &c.set))
}

// closeWhy logs why the server is ending the connection and closes it.
func (c *conn) closeWhy(why string) {
	c.mu.Lock()
	if c.ended == "" {
		c.ended = why
	}
	c.mu.Unlock()
	c.s.o.Log.Info().Str("event", "close").Str("remote", c.remote).Str("reason", why).Msg("closing connection")
	_ = c.Close()
}

// timeout closes the connection for a handshake_timeout or
// login_grace_time that ran out.
func (c *conn) timeout(why string) {
	c.mu.Lock()
	c.timedOut = true
	c.mu.Unlock()
	c.closeWhy(why)
}

// attempted records an authentication request of method. It is called
// from each authentication callback, not only from authLog: x/crypto does
// not call AuthLogCallback for a public key query, nor for a signature that
// does not verify (it ends the handshake), and a gate refusal closes the
// connection from inside the callback (deny), before AuthLogCallback runs.
// Counting on authLog alone charged those connections the lighter
// penalty_noauth, as if they had never tried (issue 14, TestAuthTable).
func (c *conn) attempted(method string) {
	if method == "none" {
		return
	}
	c.mu.Lock()
	c.tried = true
	c.mu.Unlock()
}

// release gives back the unauthenticated slot, once.
func (c *conn) release() {
	c.releaseOnce.Do(func() { c.s.adm.release(c.src.block) })
}

// kexDone is PreAuthConnCallback: the key exchange is over and the
// authentication begins.
func (c *conn) kexDone(pre gossh.ServerPreAuthConn) {
	c.handshake.Stop()
	c.mu.Lock()
	c.pre = pre
	c.mu.Unlock()
}

// disconnect sends SSH_MSG_DISCONNECT "by application" with message, then
// half-closes the socket so that the client reads the message before the
// end of the stream; the caller closes the connection. It reports false
// when the message could not be sent (see disconnect.go), or not within
// noticeTimeout: a client that stopped reading cannot hold the connection.
func (c *conn) disconnect(message string) bool {
	if !c.s.disconnects {
		return false
	}
	c.mu.Lock()
	pre := c.pre
	c.mu.Unlock()
	if pre == nil {
		return false
	}
	done := make(chan error, 1)
	go func() { done <- writeDisconnect(pre, disconnectByApplication, safetext.Clean(message)) }()
	t := time.NewTimer(noticeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			c.s.o.Log.Debug().Str("event", "close").Str("remote", c.remote).Str("error", err.Error()).Msg("disconnect message not sent")
			return false
		}
	case <-t.C:
		return false
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return true
}

// maxSessions is how many sessions one connection may have open at once,
// sshd's MaxSessions default: each is a process of the user's.
const maxSessions = 10

// addSession registers a session so that the connection can write to it
// and hang it up; it reports false when the connection is already closing
// or has maxSessions open.
func (c *conn) addSession(ss *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || len(c.sessions) >= maxSessions {
		return false
	}
	c.sessions[ss] = struct{}{}
	return true
}

func (c *conn) removeSession(ss *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, ss)
}

// end is how a recheck that found the latch closed, or a stop, ends
// someone's work, in the order that lets every client show the person why
// (issue 13, point 4): message on every session's stderr; then the
// sessions hang up, and each reports how its process ended (exit-signal
// HUP, as sshd reports a process killed by a signal) and closes its
// channel, as when the process ends by itself; then SSH_MSG_DISCONNECT "by
// application" with message; then the close. A bare close would make
// OpenSSH print "closed by remote host" and plink, on a terminal, lose the
// notice. why goes to the log.
func (c *conn) end(why, message string) {
	c.mu.Lock()
	sessions := make([]*session, 0, len(c.sessions))
	for ss := range c.sessions {
		sessions = append(sessions, ss)
	}
	c.mu.Unlock()
	// A client that stopped reading cannot hold the connection open: each
	// step is best effort and bounded, the close is not.
	waitBounded(noticeTimeout, func() {
		for _, ss := range sessions {
			ss.notice(message)
		}
	})
	waitBounded(endTimeout, func() {
		dones := make([]<-chan struct{}, 0, len(sessions))
		for _, ss := range sessions {
			dones = append(dones, ss.end())
		}
		for _, d := range dones {
			<-d
		}
	})
	c.disconnect(message)
	c.closeWhy(why)
}

// waitBounded runs fn and waits at most d for it to return.
func waitBounded(d time.Duration, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// noticeTimeout bounds how long ending a connection waits for the notice to
// be written to its sessions, and for the disconnect message.
const noticeTimeout = time.Second

// endTimeout bounds how long ending a connection waits for its sessions'
// processes to end after SIGHUP and their channels to close, before the
// connection closes anyway (what ignores SIGHUP gets SIGKILL later, see
// session.hangup).
const endTimeout = 2 * time.Second
