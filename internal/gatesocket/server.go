package gatesocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// SelfService answers pairing requests a user makes for themselves through
// the socket. The user name comes from the peer's uid, never from the
// request. pairing.SelfService implements it; its results are pairing's
// own, and the server turns them into wire messages (see response), so
// pairing knows nothing of the protocol.
type SelfService interface {
	Pair(ctx context.Context, user, token string) pairing.Result
	Unpair(ctx context.Context, user string) pairing.Result
	Status(ctx context.Context, user string) pairing.Result
}

// SocketServer answers the gate socket (see protocol.go).
type SocketServer struct {
	// Core returns the decision core in force; the daemon swaps it on
	// reload, and an exchange keeps the one it started with.
	Core func() *gate.Core
	// SelfService handles pair/unpair/status; nil refuses them.
	SelfService SelfService
	// Reload, if set, answers OpReload, which only root (or this
	// process's own user) may send: it puts the configuration file's
	// current content in force and returns once it is, or why it is not.
	// nil refuses the op.
	Reload func(ctx context.Context) error
	// Limiter, if set, bounds decisions per uid (root excepted, see
	// enter).
	Limiter *RateLimiter
	// LookupUser maps a uid to a user name through NSS; default
	// os/user.LookupId.
	LookupUser func(uid uint32) (string, error)
	// Logf reports problems that are not decisions (bad messages, peers
	// that cannot be identified, refused connections); nil discards them.
	// Repeats of a uid's problems are folded into one line per
	// QuietInterval with their count.
	Logf func(format string, args ...any)
	// QuietInterval is the window over which a uid's repeated problems
	// are counted rather than logged (0: DefaultQuietInterval).
	QuietInterval time.Duration
	// MaxConnsPerUID caps the exchanges one uid other than root may have
	// open at once (0: DefaultMaxConnsPerUID), so one local user holding
	// connections cannot use up the daemon's descriptors and lock everyone
	// out.
	MaxConnsPerUID int
	// ConfigPath is the configuration file the daemon serves. The PAM
	// hook's OpDecideFor names the file it reads; another file is refused
	// (the hook then decides itself). "" refuses every OpDecideFor.
	ConfigPath string
	// Sessions, if set, is the table of tracked sessions: the gate's
	// OpRegister, the hook's OpSessionOpen/OpSessionClose and root's
	// OpSessions, and the session of every OpDecideFor it allows.
	Sessions SessionTable

	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[uint32]int
	// quiet is set by Serve before any exchange starts.
	quiet *quietLog
}

// DefaultMaxConnsPerUID is SocketServer.MaxConnsPerUID's default: a
// person rarely has more than a few logins in flight.
const DefaultMaxConnsPerUID = 16

// enter counts an exchange for uid, reporting false when uid is at its cap.
// Root has none: its callers are the PAM hook and root's own gate, which
// ask for every login of every user at once (a cap, or a rate limit,
// keyed on uid 0 would make everybody's logins share one), and root needs
// no socket to exhaust the daemon anyway.
func (s *SocketServer) enter(uid uint32) bool {
	max := s.MaxConnsPerUID
	if max <= 0 {
		max = DefaultMaxConnsPerUID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		s.active = map[uint32]int{}
	}
	if uid != 0 && s.active[uid] >= max {
		return false
	}
	s.active[uid]++
	return true
}

func (s *SocketServer) leave(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[uid]--; s.active[uid] <= 0 {
		delete(s.active, uid)
	}
}

// busyAnswer is what a uid over its connection cap gets, written by the
// accept loop itself.
var busyAnswer = []byte(`{"v":1,"outcome":"deny","message":"latch-ssh: access denied: too many connections"}` + "\n")

// Serve accepts connections on ln until ctx is done or ln fails, then
// waits for the exchanges in progress (drain) before returning.
//
// The accept loop is the one thing every local user shares, so it does as
// little as it can per connection (issue 12, item 6): it reads the peer's
// uid (SO_PEERCRED) and, when that uid already has MaxConnsPerUID
// exchanges open, answers deny and closes the connection at once, with a
// non-blocking write and no goroutine, no log line (the refusal is
// counted, see quietLog) and, while connections keep coming, not even a
// net.Conn (see drain). A flooder thus cannot make the loop slow enough to
// keep the listen backlog full for everybody else, and what backlog it
// does fill the gate rides out by retrying (see dial).
func (s *SocketServer) Serve(ctx context.Context, ln *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s.quiet = newQuietLog(s.QuietInterval, s.logf)
	quietStop, quietDone := make(chan struct{}), make(chan struct{})
	go func() { s.quiet.run(quietStop); close(quietDone) }()
	// Runs after the drain below, so that the last counts are logged.
	defer func() { close(quietStop); <-quietDone }()
	defer s.wg.Wait()
	rawLn, err := ln.SyscallConn()
	if err != nil {
		return fmt.Errorf("gate socket: %w", err)
	}
	var backoff time.Duration
	for {
		// AcceptUnix waits (in the netpoller) for a connection; then the
		// queue is drained with bare accept4(2) calls while it is not
		// empty, which is when a flood is on.
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if transientAcceptError(err) {
				// Any local user can open connections until this process
				// runs out of file descriptors; returning here would stop
				// the daemon for everyone. Wait for descriptors to free up
				// instead (as net/http does), without spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if s.quiet.first("accept", "accept errors") {
					s.logf("gate socket: accept: %v; retrying in %v", err, backoff)
				}
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil
				}
				continue
			}
			return fmt.Errorf("gate socket: %w", err)
		}
		backoff = 0
		if cred, err := PeerCredOf(conn); err != nil {
			s.unidentified(err)
			conn.Close()
		} else if !s.enter(cred.UID) {
			s.refuseBusy(cred)
			if raw, err := conn.SyscallConn(); err == nil {
				raw.Write(func(fd uintptr) bool {
					unix.Write(int(fd), busyAnswer)
					return true
				})
			}
			conn.Close()
		} else {
			s.start(ctx, conn, cred)
		}
		rawLn.Control(func(fd uintptr) { s.drain(ctx, int(fd)) })
	}
}

// drainBatch bounds one drain, so that closing the listener (which waits
// for drain to return) is never held up for long by a flood.
const drainBatch = 256

// drain accepts the connections waiting on the listening descriptor lfd
// with bare accept4(2) calls, at most drainBatch of them, until the queue
// is empty or accept fails (Serve's AcceptUnix then sees the failure
// again and deals with it). The refusal path costs four system calls
// (accept4, getsockopt, write, close): no poller registration, no
// allocation, no goroutine; only a connection that is served becomes a
// (pollable) *os.File.
func (s *SocketServer) drain(ctx context.Context, lfd int) {
	for range drainBatch {
		r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return
		}
		fd := int(r)
		ucred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			s.unidentified(err)
			unix.Close(fd)
			continue
		}
		cred := PeerCred{UID: ucred.Uid, GID: ucred.Gid, PID: ucred.Pid}
		if !s.enter(cred.UID) {
			s.refuseBusy(cred)
			// The descriptor is non-blocking and its buffer empty: the
			// answer fits, and if it did not the peer would read only the
			// close, a deny too.
			unix.Write(fd, busyAnswer)
			unix.Close(fd)
			continue
		}
		// The descriptor itself, made pollable (it is non-blocking): a
		// net.Conn would need a duplicate, which can fail for want of
		// descriptors and lose a connection already admitted.
		conn := os.NewFile(uintptr(fd), "gate socket connection")
		s.start(ctx, conn, cred)
	}
}

// start runs the exchange on conn, counted against cred.UID by enter.
// exchangeConn is one accepted connection: a *net.UnixConn, or a pollable
// *os.File when drain accepted it.
type exchangeConn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func (s *SocketServer) start(ctx context.Context, conn exchangeConn, cred PeerCred) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.leave(cred.UID)
		defer conn.Close()
		s.handle(ctx, conn, cred)
	}()
}

func (s *SocketServer) unidentified(err error) {
	if s.quiet.first("unidentified peers", "connections refused (no peer credentials)") {
		s.logf("gate socket: peer credentials: %v", err)
	}
}

func (s *SocketServer) refuseBusy(cred PeerCred) {
	if s.quiet.first(uidKey(cred.UID), "connections refused (too many open)") {
		s.logf("gate socket: uid %d (pid %d) has too many connections open; refused", cred.UID, cred.PID)
	}
}

func uidKey(uid uint32) string { return "uid " + strconv.FormatUint(uint64(uid), 10) }

// transientAcceptError reports whether an accept error says nothing about
// the listener itself: a timeout, or resources (descriptors, memory) that
// come back once connections close.
func transientAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *SocketServer) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// firstMessageTimeout bounds the wait for a client's first message; the
// gate sends it right after connecting.
const firstMessageTimeout = 10 * time.Second

var serviceName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// handle runs one exchange with the peer cred (counted against its uid's
// cap by Serve). Every path that is not a clear allow from the core
// answers deny (or closes the connection, which the gate reads as deny).
func (s *SocketServer) handle(ctx context.Context, conn exchangeConn, cred PeerCred) {
	deny := func() {
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied"})
	}
	// The first message must come quickly: a local user holding idle
	// connections must not be able to tie up the daemon's descriptors for
	// long. The whole exchange, a person typing a code included, is bounded.
	conn.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	conn.SetWriteDeadline(time.Now().Add(gate.OTPTimeout + 30*time.Second))
	r := bufio.NewReaderSize(conn, 4096)
	var req SocketRequest
	err := readMessage(r, &req)
	conn.SetReadDeadline(time.Now().Add(gate.OTPTimeout + 30*time.Second))
	if err != nil || req.V != ProtocolVersion {
		if s.quiet.first(uidKey(cred.UID), "bad requests") {
			s.logf("gate socket: bad request from uid %d pid %d: %v", cred.UID, cred.PID, err)
		}
		deny()
		return
	}
	lookup := s.LookupUser
	if lookup == nil {
		lookup = lookupUserName
	}
	name, err := lookup(cred.UID)
	if err != nil {
		if s.quiet.first(uidKey(cred.UID), "requests refused (no user name)") {
			s.logf("gate socket: uid %d (pid %d) has no user name: %v", cred.UID, cred.PID, err)
		}
		deny()
		return
	}
	switch req.Op {
	case OpDecide:
		s.decide(ctx, conn, r, cred, name, req)
	case OpDecideFor:
		s.decideFor(ctx, conn, cred, req)
	case OpPair, OpUnpair, OpStatus:
		// Each of these can cost Latch calls, and Latch limits the whole
		// application: one user asking for their status in a loop must
		// not use up everybody's quota. They share the uid's budget with
		// its decisions.
		if s.Limiter != nil && cred.UID != 0 && !s.Limiter.Allow(cred.UID) {
			if s.quiet.first(uidKey(cred.UID), "self-service requests refused by the rate limit") {
				s.logf("gate socket: uid %d (pid %d): %s refused by the rate limit", cred.UID, cred.PID, req.Op)
			}
			writeMessage(conn, SocketResponse{V: ProtocolVersion, Message: "latch-ssh: too many requests, wait a minute"})
			return
		}
		writeMessage(conn, s.selfService(ctx, name, req))
	case OpReload:
		writeMessage(conn, s.reload(ctx, cred))
	case OpRegister:
		writeMessage(conn, s.register(cred, name, req))
	case OpSessionOpen, OpSessionClose:
		writeMessage(conn, s.hookSession(cred, req))
	case OpSessions:
		writeMessage(conn, s.listSessions(cred))
	default:
		if s.quiet.first(uidKey(cred.UID), "unknown ops") {
			s.logf("gate socket: unknown op %q from uid %d", safetext.Clean(req.Op), cred.UID)
		}
		deny()
	}
}

// decisionRequest turns what a caller sent into the Request the core
// decides (issue 12, item 11). The kernel tells who the caller is; the
// caller's own word is trusted only as far as its privilege goes:
//
//   - root (the PAM hook, or root's own ForceCommand gate) runs with the
//     secret in reach anyway, and is the one front end that asks for
//     another service (sudo, su, ...): its service is honoured, and its
//     remote address and command are recorded as facts.
//   - any other uid is, at best, the ForceCommand gate, which decides for
//     ForceCommandService only; at worst it is the user talking to the
//     socket by hand. So the service is ForceCommandService whatever it
//     sent (asking as "sudo" must not pick sudo's operation when the SSH
//     one is closed), the service it asked for is recorded as
//     claimed_service when it differs, and its remote address and command
//     are recorded as claimed_remote and claimed_command, never as the
//     remote and command of a login.
//
// The interactive flag stays the caller's choice: the gate sets it from
// its terminals and the absence of a command, both of which the SSH client
// chooses anyway (ssh -t host), so claiming it gets nothing the gate would
// not do (Latch may then ask for a one-time code, which the person must
// type; without it Latch is asked with /nootp).
func decisionRequest(cred PeerCred, name string, req SocketRequest) gate.Request {
	r := gate.Request{User: name, Service: req.Service, RemoteAddr: safetext.Clean(req.Remote), Interactive: req.Interactive, Command: req.Command,
		FrontEnd: gate.FrontEndForceCommand}
	if cred.UID == 0 {
		if r.Service == "" {
			r.Service = ForceCommandService
		}
		return r
	}
	if r.Service != "" && r.Service != ForceCommandService {
		r.ClaimedService = safetext.Clean(truncate(r.Service, 64))
	}
	r.Service = ForceCommandService
	r.Claimed = true
	return r
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (s *SocketServer) decide(ctx context.Context, conn exchangeConn, r *bufio.Reader, cred PeerCred, name string, req SocketRequest) {
	deny := func(msg string) {
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: msg})
	}
	greq := decisionRequest(cred, name, req)
	core := s.Core()
	if !serviceName.MatchString(greq.Service) {
		core.Refuse(greq, "invalid service name from the gate")
		deny("latch-ssh: access denied")
		return
	}
	if s.Limiter != nil && cred.UID != 0 && !s.Limiter.Allow(cred.UID) { // root: see enter
		// One line per uid per interval: a user hammering the socket must
		// not fill the log with refusals.
		if s.quiet.first(uidKey(cred.UID), "decisions refused by the rate limit") {
			core.Refuse(greq, "rate limit: too many logins for this user")
		}
		deny("latch-ssh: access denied: too many attempts, wait a minute")
		return
	}
	d := core.Decide(ctx, greq)
	if d.Outcome == gate.AskOTP {
		if err := writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "ask-otp", Prompt: "Latch one-time code: "}); err != nil {
			core.Finish(greq, d, "")
			return
		}
		conn.SetReadDeadline(time.Now().Add(gate.OTPTimeout))
		var answer SocketRequest
		code := ""
		if err := readMessage(r, &answer); err == nil && answer.V == ProtocolVersion && answer.Op == OpOTP {
			code = answer.Code
		}
		d = core.Finish(greq, d, code)
	}
	if d.Allowed() {
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "allow"})
		return
	}
	deny(d.Message())
}

func (s *SocketServer) selfService(ctx context.Context, name string, req SocketRequest) SocketResponse {
	core := s.Core()
	if s.SelfService == nil || core.Config == nil || !core.Config.Policy.AllowSelfPairing {
		return SocketResponse{V: ProtocolVersion, Message: "self-service pairing is turned off on this server: ask an administrator (allow_self_pairing)"}
	}
	var res pairing.Result
	switch req.Op {
	case OpPair:
		res = s.SelfService.Pair(ctx, name, req.Token)
	case OpUnpair:
		res = s.SelfService.Unpair(ctx, name)
	default:
		res = s.SelfService.Status(ctx, name)
	}
	return response(res)
}

// response is the wire form of a self-service result.
func response(res pairing.Result) SocketResponse {
	resp := SocketResponse{V: ProtocolVersion, OK: res.OK, Message: safetext.Clean(res.Message)}
	if res.Status != nil {
		st := WireStatus(*res.Status)
		resp.Status = &st
	}
	return resp
}

// reload answers OpReload. Only root may ask (or the daemon's own user,
// for a daemon run unprivileged): any other user could make the daemon
// drop its warm Latch connections as often as they like.
func (s *SocketServer) reload(ctx context.Context, cred PeerCred) SocketResponse {
	if s.Reload == nil || (cred.UID != 0 && int(cred.UID) != os.Geteuid()) {
		if s.quiet.first(uidKey(cred.UID), "reload requests refused") {
			s.logf("gate socket: reload refused for uid %d (pid %d)", cred.UID, cred.PID)
		}
		return SocketResponse{V: ProtocolVersion, Message: "latch-ssh: only root can make the daemon reload its configuration"}
	}
	if err := s.Reload(ctx); err != nil {
		return SocketResponse{V: ProtocolVersion, Message: safetext.Clean(err.Error())}
	}
	return SocketResponse{V: ProtocolVersion, OK: true, Message: "the configuration on disk is in force"}
}

func lookupUserName(uid uint32) (string, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", err
	}
	return u.Username, nil
}
