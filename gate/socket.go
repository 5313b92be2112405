package gate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
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

// SelfService answers pairing requests a user makes for themselves through
// the socket. The user name comes from the peer's uid, never from the
// request.
type SelfService interface {
	Pair(ctx context.Context, user, token string) SocketResponse
	Unpair(ctx context.Context, user string) SocketResponse
	Status(ctx context.Context, user string) SocketResponse
}

// SocketServer answers the gate socket (see protocol.go).
type SocketServer struct {
	// Core returns the decision core in force; the daemon swaps it on
	// reload, and an exchange keeps the one it started with.
	Core func() *Core
	// SelfService handles pair/unpair/status; nil refuses them.
	SelfService SelfService
	// Reload, if set, answers OpReload, which only root (or this
	// process's own user) may send: it puts the configuration file's
	// current content in force and returns once it is, or why it is not.
	// nil refuses the op.
	Reload func(ctx context.Context) error
	// Limiter, if set, bounds decisions per uid.
	Limiter *RateLimiter
	// LookupUser maps a uid to a user name through NSS; default
	// os/user.LookupId.
	LookupUser func(uid uint32) (string, error)
	// Logf reports problems that are not decisions (bad messages, peers
	// that cannot be identified); nil discards them.
	Logf func(format string, args ...any)
	// MaxConnsPerUID caps the exchanges one uid may have open at once
	// (0: DefaultMaxConnsPerUID), so one local user holding connections
	// cannot use up the daemon's descriptors and lock everyone out.
	MaxConnsPerUID int

	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[uint32]int
}

// DefaultMaxConnsPerUID is SocketServer.MaxConnsPerUID's default: a
// person rarely has more than a few logins in flight.
const DefaultMaxConnsPerUID = 16

// enter counts an exchange for uid, reporting false when uid is at its cap.
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
	if s.active[uid] >= max {
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

// Serve accepts connections on ln until ctx is done or ln fails, then
// waits for the exchanges in progress (drain) before returning.
func (s *SocketServer) Serve(ctx context.Context, ln *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.wg.Wait()
	var backoff time.Duration
	for {
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
				s.logf("gate socket: accept: %v; retrying in %v", err, backoff)
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
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.handle(ctx, conn)
		}()
	}
}

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

// handle runs one exchange. Every path that is not a clear allow from the
// core answers deny (or closes the connection, which the gate reads as
// deny).
func (s *SocketServer) handle(ctx context.Context, conn *net.UnixConn) {
	cred, err := PeerCredOf(conn)
	if err != nil {
		s.logf("gate socket: %v", err)
		return
	}
	if !s.enter(cred.UID) {
		s.logf("gate socket: uid %d (pid %d) has too many connections open; refused", cred.UID, cred.PID)
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied: too many connections"})
		return
	}
	defer s.leave(cred.UID)
	// The first message must come quickly: a local user holding idle
	// connections must not be able to tie up the daemon's descriptors for
	// long. The whole exchange, a person typing a code included, is bounded.
	conn.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	conn.SetWriteDeadline(time.Now().Add(OTPTimeout + 30*time.Second))
	r := bufio.NewReaderSize(conn, 4096)
	var req SocketRequest
	err = readMessage(r, &req)
	conn.SetReadDeadline(time.Now().Add(OTPTimeout + 30*time.Second))
	if err != nil || req.V != ProtocolVersion {
		s.logf("gate socket: bad request from uid %d pid %d: %v", cred.UID, cred.PID, err)
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied"})
		return
	}
	lookup := s.LookupUser
	if lookup == nil {
		lookup = lookupUserName
	}
	name, err := lookup(cred.UID)
	if err != nil {
		s.logf("gate socket: uid %d (pid %d) has no user name: %v", cred.UID, cred.PID, err)
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied"})
		return
	}
	switch req.Op {
	case OpDecide:
		s.decide(ctx, conn, r, cred, name, req)
	case OpPair, OpUnpair, OpStatus:
		writeMessage(conn, s.selfService(ctx, name, req))
	case OpReload:
		writeMessage(conn, s.reload(ctx, cred))
	default:
		s.logf("gate socket: unknown op %q from uid %d", safetext.Clean(req.Op), cred.UID)
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied"})
	}
}

func (s *SocketServer) decide(ctx context.Context, conn *net.UnixConn, r *bufio.Reader, cred PeerCred, name string, req SocketRequest) {
	deny := func(msg string) {
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: msg})
	}
	service := req.Service
	if service == "" {
		service = "sshd"
	}
	greq := Request{User: name, Service: service, RemoteAddr: safetext.Clean(req.Remote), Interactive: req.Interactive, Command: req.Command}
	core := s.Core()
	if !serviceName.MatchString(service) {
		core.record(greq, Decision{Outcome: Deny, Reason: "invalid service name from the gate", Severity: Warning})
		deny("latch-ssh: access denied")
		return
	}
	if s.Limiter != nil && !s.Limiter.Allow(cred.UID) {
		core.record(greq, Decision{Outcome: Deny, Reason: "rate limit: too many logins for this user", Severity: Warning})
		deny("latch-ssh: access denied: too many attempts, wait a minute")
		return
	}
	d := core.Decide(ctx, greq)
	if d.Outcome == AskOTP {
		if err := writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "ask-otp", Prompt: "Latch one-time code: "}); err != nil {
			core.Finish(greq, d, "")
			return
		}
		conn.SetReadDeadline(time.Now().Add(OTPTimeout))
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
	var resp SocketResponse
	switch req.Op {
	case OpPair:
		resp = s.SelfService.Pair(ctx, name, req.Token)
	case OpUnpair:
		resp = s.SelfService.Unpair(ctx, name)
	default:
		resp = s.SelfService.Status(ctx, name)
	}
	resp.V = ProtocolVersion
	resp.Message = safetext.Clean(resp.Message)
	return resp
}

// reload answers OpReload. Only root may ask (or the daemon's own user,
// for a daemon run unprivileged): any other user could make the daemon
// drop its warm Latch connections as often as they like.
func (s *SocketServer) reload(ctx context.Context, cred PeerCred) SocketResponse {
	if s.Reload == nil || (cred.UID != 0 && int(cred.UID) != os.Geteuid()) {
		s.logf("gate socket: reload refused for uid %d (pid %d)", cred.UID, cred.PID)
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

// readMessage reads one protocol line into v. The line must end in "\n":
// a message cut short by a closed connection is not a message.
func readMessage(r *bufio.Reader, v any) error {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxMessageSize {
			return errors.New("message too long")
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
	return json.Unmarshal(line, v)
}

// writeMessage writes v as one protocol line.
func writeMessage(conn net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = conn.Write(append(b, '\n'))
	return err
}

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
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("gate socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("gate socket: %w", err)
	}
	return ln, nil
}

// ErrDaemon wraps every failure to get a clear answer from the daemon: not
// running, a broken connection, a malformed answer. The gate denies on it.
var ErrDaemon = errors.New("no answer from the latch-ssh daemon")

// AskDecision asks the daemon at socket whether the calling process's user
// may log in. When the daemon asks for a one-time code, otp is called with
// the prompt (nil means nobody can be asked: the empty code is sent). The
// returned response is either an allow or a deny; any error means deny.
func AskDecision(ctx context.Context, socket string, req SocketRequest, otp func(prompt string) (string, error)) (SocketResponse, error) {
	conn, r, err := dial(ctx, socket)
	if err != nil {
		return SocketResponse{}, err
	}
	defer conn.Close()
	// A blocked read ends when ctx does, not only at the connection deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.V, req.Op = ProtocolVersion, OpDecide
	resp, err := exchange(conn, r, req)
	if err != nil {
		return SocketResponse{}, err
	}
	if resp.Outcome == "ask-otp" {
		code := ""
		if otp != nil {
			// Errors (no terminal, timeout, interrupted) send the empty
			// code, which the daemon denies and logs.
			code, _ = otp(safetext.Clean(resp.Prompt))
		}
		conn.SetDeadline(deadlineOf(ctx, 30*time.Second))
		if resp, err = exchange(conn, r, SocketRequest{V: ProtocolVersion, Op: OpOTP, Code: code}); err != nil {
			return SocketResponse{}, err
		}
	}
	if resp.Outcome != "allow" && resp.Outcome != "deny" {
		return SocketResponse{}, fmt.Errorf("%w: unexpected outcome %q", ErrDaemon, safetext.Clean(resp.Outcome))
	}
	resp.Message = safetext.Clean(resp.Message)
	return resp, nil
}

// CallSelfService sends a pair, unpair or status request for the calling
// process's user and returns the daemon's answer.
func CallSelfService(ctx context.Context, socket string, req SocketRequest) (SocketResponse, error) {
	conn, r, err := dial(ctx, socket)
	if err != nil {
		return SocketResponse{}, err
	}
	defer conn.Close()
	req.V = ProtocolVersion
	resp, err := exchange(conn, r, req)
	if err != nil {
		return SocketResponse{}, err
	}
	resp.Message = safetext.Clean(resp.Message)
	return resp, nil
}

func dial(ctx context.Context, socket string) (*net.UnixConn, *bufio.Reader, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrDaemon, err)
	}
	conn := c.(*net.UnixConn)
	// Defence in depth: the socket's directory is root's, but make sure
	// the answer comes from root (or from our own user, for an
	// unprivileged daemon), not from whoever managed to bind the path.
	cred, err := PeerCredOf(conn)
	if err != nil || (cred.UID != 0 && int(cred.UID) != os.Geteuid()) {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: the socket %s is not served by root", ErrDaemon, socket)
	}
	conn.SetDeadline(deadlineOf(ctx, 30*time.Second))
	return conn, bufio.NewReaderSize(conn, 4096), nil
}

func exchange(conn *net.UnixConn, r *bufio.Reader, req SocketRequest) (SocketResponse, error) {
	if err := writeMessage(conn, req); err != nil {
		return SocketResponse{}, fmt.Errorf("%w: %v", ErrDaemon, err)
	}
	var resp SocketResponse
	if err := readMessage(r, &resp); err != nil {
		return SocketResponse{}, fmt.Errorf("%w: %v", ErrDaemon, err)
	}
	if resp.V != ProtocolVersion {
		return SocketResponse{}, fmt.Errorf("%w: protocol version %d", ErrDaemon, resp.V)
	}
	return resp, nil
}

func deadlineOf(ctx context.Context, def time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(def)
}

// RateLimiter allows up to N decisions per uid per minute (a token bucket
// refilled continuously). Safe for concurrent use.
type RateLimiter struct {
	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[uint32]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRateLimiter returns a limiter allowing perMinute decisions per uid.
func NewRateLimiter(perMinute int) *RateLimiter {
	return &RateLimiter{perMinute: perMinute, now: time.Now, buckets: map[uint32]*bucket{}}
}

// SetPerMinute changes the rate (on reload). Buckets are kept, so a reload
// does not hand every uid a fresh burst.
func (l *RateLimiter) SetPerMinute(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perMinute = n
}

// Allow takes one token for uid, reporting whether there was one.
func (l *RateLimiter) Allow(uid uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[uid]
	if !ok {
		b = &bucket{tokens: float64(l.perMinute), last: now}
		l.buckets[uid] = b
	}
	b.tokens = min(float64(l.perMinute), b.tokens+now.Sub(b.last).Minutes()*float64(l.perMinute))
	b.last = now
	// Forget full buckets so the map does not grow with every uid seen.
	if len(l.buckets) > 4096 {
		for k, v := range l.buckets {
			if v.tokens >= float64(l.perMinute) {
				delete(l.buckets, k)
			}
		}
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
