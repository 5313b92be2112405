// Package sshserver is the embedded SSH server of `latch-ssh serve`
// (design.md, front end 3): public-key authentication against the user's
// authorized_keys, the Latch gate at authentication time, sessions run as
// the user, and continuous authorization (a closed latch ends live
// sessions).
//
// It is built on github.com/gliderlabs/ssh for the listener, connection
// tracking and shutdown, and on raw golang.org/x/crypto/ssh for everything
// that decides who gets in. This is the only package that imports
// gliderlabs, because its convenience API has traps a security gate must
// not fall into (peers.md):
//
//   - its bool auth handlers accept any single method, so there is no
//     second factor; we install x/crypto callbacks with ServerConfigCallback
//     and ask for the one-time code through a PartialSuccessError;
//   - with no gliderlabs handler set it turns on NoClientAuth ("none"
//     logs anyone in); we set a NoClientAuthCallback that always refuses,
//     and the session handler refuses a connection without our grant;
//   - its PublicKeyHandler runs for keys the client never proved it holds
//     (CVE-2024-45337) and records the last one offered as "the" key; we
//     decide only in VerifiedPublicKeyCallback, for the key whose signature
//     was checked, and read the outcome only from the connection's final
//     Permissions;
//   - its Context keeps the first attempt's user name; we use the name of
//     the request that succeeded;
//   - its Session rewrites "\n" to "\r\n" on a PTY and blocks its request
//     loop on unread signal and window-change channels; sessions here are
//     our own channel handler on the raw x/crypto channel.
package sshserver

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	glssh "github.com/gliderlabs/ssh"
	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/authkeys"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/users"
)

// Service is the gate service name of the embedded server: the key of its
// operation in [operations] and [user_operations].
const Service = "server"

// Options configure New.
type Options struct {
	// Core returns the decision core in force. It is called once per
	// login and once per recheck round, so a configuration reload applies
	// to the next ones. Its Config must not be nil (the daemon refuses to
	// start without one); a nil Config refuses every login.
	Core func() *gate.Core
	// HostSigners are the host keys (see LoadHostKeys). At least one.
	HostSigners []gossh.Signer
	// Log receives one JSON line per connection event and auth step. The
	// decisions themselves go to the core's audit log.
	Log zerolog.Logger
	// Lookup finds a local account; nil means spawn.Lookup (NSS). It is
	// one of the seams of backend.go.
	Lookup func(name string) (spawn.Account, error)
	// Keys, when set, returns the authorized keys of acct instead of
	// reading [server] authorized_keys with the StrictModes checks. It is
	// for the demo, whose throwaway key lives in a temporary directory
	// that StrictModes rightly refuses, and for the tests that run the
	// authentication in memory (backend.go); production leaves it nil.
	Keys func(acct spawn.Account) ([]authkeys.Key, error)
	// OnDecision, when set, is called with every login decision: the
	// final ones, and AskOTP when a one-time code is asked (the demo
	// shows them, and the code, as the phone would).
	OnDecision func(user, remote string, d gate.Decision)
	// Observer, when set, is told about every recheck and every connection
	// a recheck ends (the daemon's metrics).
	Observer gate.RecheckObserver
	// ProcessGroupsOnly ends sessions through their process group and
	// session even where a cgroup per session would work (see
	// spawn.Groups); for tests of that fallback.
	ProcessGroupsOnly bool

	// xcrypto, when set, is the golang.org/x/crypto version in go.mod:
	// test binaries carry no dependency versions (see disconnectSupport).
	xcrypto string
	// now and intn, when set, replace the clock and the randomness of
	// admission (startups.go), so that tests can be deterministic.
	now  func() time.Time
	intn func(n int) int
	// checkLogin and euid, when set, replace the account rule and the
	// uid the server runs as (backend.go): tests run the authentication
	// without root and without real users.
	checkLogin func(acct spawn.Account, now time.Time) (warning string, err error)
	euid       *uint32
}

// Server is the embedded SSH server. Build it with New, run it with Serve,
// stop it with Close or Shutdown.
type Server struct {
	o  Options
	gl *glssh.Server
	// root says we run as root: any local user may log in. Otherwise only
	// the account we run as (self) can be served, since we cannot change
	// credentials.
	root bool
	self uint32
	// adm decides which new connections may start (startups.go).
	adm *startups

	mu sync.Mutex
	// live holds the authenticated connections by user, for recheck.
	live map[string]map[*conn]struct{}
	// stopped is set by Close, Stop and Shutdown; listeners are those
	// Serve was given, closed by them.
	stopped   bool
	listeners []net.Listener

	// groups holds every process each session starts, so that a closed
	// latch or a stop ends them all.
	groups *spawn.Groups
	// disconnects says SSH_MSG_DISCONNECT can be sent (disconnect.go).
	disconnects bool
}

// New builds a server from o. It does not listen; call Serve.
func New(o Options) (*Server, error) {
	if o.Core == nil {
		return nil, errors.New("sshserver: Options.Core is nil")
	}
	if len(o.HostSigners) == 0 {
		return nil, errors.New("sshserver: no host key")
	}
	o.systemDefaults()
	hostSigners, err := hostSigners(o.HostSigners)
	if err != nil {
		return nil, err
	}
	s := &Server{
		o:      o,
		root:   *o.euid == 0,
		self:   *o.euid,
		live:   map[string]map[*conn]struct{}{},
		groups: spawn.NewGroups(spawn.GroupsOptions{ProcessGroupsOnly: o.ProcessGroupsOnly}),
		adm:    newStartups(),
	}
	var why string
	if s.disconnects, why = disconnectSupport(o.xcrypto); !s.disconnects {
		s.o.Log.Warn().Str("event", "disconnect-messages").Str("reason", why).
			Msg("refusals and ended sessions close without SSH_MSG_DISCONNECT: PuTTY, asyncssh and paramiko users will not see why")
	}
	if o.now != nil {
		s.adm.now = o.now
	}
	if o.intn != nil {
		s.adm.intn = o.intn
	}
	if s.groups.Mechanism() == spawn.MechanismCgroup {
		ev := s.o.Log.Info().Str("event", "session-groups").Str("mechanism", spawn.MechanismCgroup).Str("dir", s.groups.Dir())
		if n := s.groups.Note(); n != "" {
			ev = ev.Str("note", n)
		}
		ev.Msg("each session runs in its own cgroup: ending it ends every process it started")
	} else {
		s.o.Log.Warn().Str("event", "session-groups").Str("mechanism", spawn.MechanismProcessGroup).
			Str("reason", s.groups.Note()).
			Msg("no cgroup per session: ending a session ends its process group and session, not processes that left it with setsid")
	}
	// Forwarding is ours, not gliderlabs': its sockets must be the
	// user's (see forward.go).
	fwd := newForwarder(s)
	s.gl = &glssh.Server{
		// No version number: it would only help someone shopping for a
		// known bug.
		Version:                  "latch-ssh",
		HostSigners:              hostSigners,
		ConnCallback:             s.accept,
		ServerConfigCallback:     s.serverConfig,
		ConnectionFailedCallback: s.failed,
		// Every channel and global request type is ours or refused: the
		// gliderlabs defaults (its session handler, its agent-request
		// "yes") are replaced, not extended.
		ChannelHandlers: map[string]glssh.ChannelHandler{
			"session":      s.sessionChannel,
			"direct-tcpip": s.directTCPIP,
		},
		RequestHandlers: map[string]glssh.RequestHandler{
			"tcpip-forward":        fwd.handle,
			"cancel-tcpip-forward": fwd.handle,
		},
		SubsystemHandlers: map[string]glssh.SubsystemHandler{},
	}
	return s, nil
}

// Serve accepts connections on ln until Close or Shutdown, and runs the
// recheck loop meanwhile. It returns nil after Close or Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	// gliderlabs forgets a Close that came before its Serve tracked the
	// listener (it resets its done channel and serves on): a stop racing
	// with the start would leave the server running. So the listener is
	// known here first, and closed by our own stop.
	ln = &onceCloseListener{Listener: ln}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.recheckLoop(ctx)
	fps := make([]string, len(s.o.HostSigners))
	for i, hk := range s.o.HostSigners {
		fps[i] = hk.PublicKey().Type() + " " + gossh.FingerprintSHA256(hk.PublicKey())
	}
	s.o.Log.Info().Str("event", "listen").Str("addr", ln.Addr().String()).
		Str("host_key", gossh.FingerprintSHA256(s.o.HostSigners[0].PublicKey())).
		Strs("host_keys", fps).
		Msg("embedded SSH server listening")
	err := s.gl.Serve(ln)
	if errors.Is(err, glssh.ErrServerClosed) || s.isStopped() {
		return nil
	}
	return err
}

// stop marks the server stopped and closes the listeners Serve was given,
// so that no Serve accepts after a stop, however the two race.
func (s *Server) stop() {
	s.mu.Lock()
	s.stopped = true
	lns := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

// onceCloseListener closes its listener once, so that our stop and
// gliderlabs' can both close it and the caller of Close sees the result of
// the first.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

func (s *Server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Close closes the listener and every connection at once, and kills
// every process the sessions started.
func (s *Server) Close() error {
	s.stop()
	err := s.gl.Close()
	s.endAll(0)
	return err
}

// endAll ends every process any session started, the ones left running
// after their session ended included (see spawn.Groups), giving them grace
// after SIGHUP, and lets no new session start.
func (s *Server) endAll(grace time.Duration) {
	if err := s.groups.Shutdown(grace); err != nil {
		s.o.Log.Error().Str("event", "stop").Str("error", err.Error()).Msg("some session processes could not be ended")
	}
}

// Stop closes the listener, writes notice to every session's stderr,
// closes every connection, and ends every process the sessions started
// (SIGHUP, then SIGKILL after hangupGrace), the ones left running after
// their session ended included. It returns when they are gone.
func (s *Server) Stop(notice string) {
	// Listeners first: no new connection arrives while the others end.
	s.stop()
	s.mu.Lock()
	var conns []*conn
	for _, cs := range s.live {
		for c := range cs {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.end("server stopping", notice)
		}()
	}
	wg.Wait()
	_ = s.gl.Close()
	s.endAll(hangupGrace)
}

// Shutdown closes the listener and waits, until ctx is done, for the open
// connections to end by themselves; then it ends the processes the
// sessions left (as Stop does).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	err := s.gl.Shutdown(ctx)
	if err == nil {
		s.endAll(hangupGrace)
	}
	return err
}

// settings returns the [server] table in force, or nil when the core has
// no configuration.
func (s *Server) settings() (*gate.Core, *users.Server) {
	core := s.o.Core()
	if core == nil || core.Config == nil {
		return core, nil
	}
	return core, &core.Config.Server
}

// accept is gliderlabs' ConnCallback: the first thing a new TCP connection
// meets. It applies the admission rules (startups.go: penalties, the caps
// on unauthenticated connections, random early drop) and arms the
// handshake and login-grace timers. A refused connection is closed at once,
// before the SSH version line, and holds nothing.
func (s *Server) accept(ctx glssh.Context, nc net.Conn) net.Conn {
	_, set := s.settings()
	remote := nc.RemoteAddr().String()
	if set == nil {
		s.o.Log.Error().Str("event", "refused").Str("remote", remote).Msg("no valid configuration: refusing connections")
		return nil
	}
	src := sourceOf(nc.RemoteAddr(), set)
	if v := s.adm.admit(src, set); v != admitted {
		s.refused(v, remote, src, set)
		return nil
	}
	c := newConn(s, nc, set)
	c.src = src
	ctx.SetValue(connKey{}, c)
	s.o.Log.Info().Str("event", "connect").Str("remote", remote).Msg("connection")
	return c
}

// refused logs a refusal at accept, at most once per logEvery for each
// kind: a flood must not become a flood of log lines.
func (s *Server) refused(v int, remote string, src source, set *users.Server) {
	ok, skipped := s.adm.logRefusal(v)
	if !ok {
		return
	}
	ev := s.o.Log.Warn().Str("event", "refused").Str("remote", remote).Str("source", src.block)
	if skipped > 0 {
		ev = ev.Int("more_not_logged", skipped)
	}
	switch v {
	case refusedPenalty:
		ev.Msg("source under penalty (it held connections without logging in, or failed): dropped this one")
	case refusedOverflow:
		ev.Int("penalty_max_sources", set.PenaltyMaxSources).
			Msg(`penalty table full and penalty_overflow = "deny-all": dropped this one`)
	case refusedSource:
		ev.Int("max_unauthenticated_per_source", set.MaxUnauthenticatedPerSource).
			Msg("too many connections still authenticating from this source; dropped this one")
	case refusedEarly:
		ev.Int("early_drop_start", set.EarlyDropStart).Int("max_unauthenticated", set.MaxUnauthenticated).
			Msg("many connections still authenticating: dropped this one at random (early drop)")
	default:
		ev.Int("max_unauthenticated", set.MaxUnauthenticated).
			Msg("too many connections still authenticating; dropped this one")
	}
}

// unauthenticated returns the number of connections still authenticating.
func (s *Server) unauthenticated() int { return s.adm.unauthenticated() }

// failed is gliderlabs' ConnectionFailedCallback: the handshake or the
// authentication did not succeed.
func (s *Server) failed(nc net.Conn, err error) {
	remote := nc.RemoteAddr().String()
	s.o.Log.Info().Str("event", "disconnect").Str("remote", remote).Str("error", safetext.Clean(err.Error())).
		Msg("connection closed before a session")
}

// connKey is the gliderlabs Context key of the *conn.
type connKey struct{}

// connOf returns the *conn of a gliderlabs context.
func connOf(ctx glssh.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// track adds or removes an authenticated connection of user.
func (s *Server) track(user string, c *conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.live[user] == nil {
			s.live[user] = map[*conn]struct{}{}
		}
		s.live[user][c] = struct{}{}
		return
	}
	delete(s.live[user], c)
	if len(s.live[user]) == 0 {
		delete(s.live, user)
	}
}

// Users returns the users with an authenticated connection, and how many
// connections each has.
func (s *Server) Users() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.live))
	for u, cs := range s.live {
		out[u] = len(cs)
	}
	return out
}

// Live returns how many authenticated connections (logins in progress)
// the server holds, by front end (gate.FrontEndServer): the shape of the
// daemon's live-sessions metric.
func (s *Server) Live() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, cs := range s.live {
		n += len(cs)
	}
	return map[string]int{gate.FrontEndServer: n}
}

// drainAfterExit is how long a finished session's output may keep draining
// after the process exited, when a background process still holds the
// terminal (sshd waits the same way, without a bound).
const drainAfterExit = time.Second
