package gatesocket

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// The PAM hook's decisions through the daemon (issue 15, "the PAM hook asks
// the daemon when it runs"). latch-check is a fresh process per login: on
// its own it pays DNS, TCP, TLS and the request to Latch every time. The
// daemon holds warm connections, so the hook, which runs as root, asks it
// to decide for PAM_USER (OpDecideFor) and decides itself only when no
// daemon answers. See protocol.go for the messages.
//
// Why the daemon trusts the "user" field only from root: identity on this
// socket comes from SO_PEERCRED, and any other caller is at best the
// ForceCommand gate of the person logging in, who must never have another
// user decided (or probed) through the daemon. Root runs with the secret
// in reach anyway.

// decideFor answers OpDecideFor (see protocol.go). Only root may ask; the
// answer names the user it is about, so that the hook cannot mistake it
// for anyone else's.
func (s *SocketServer) decideFor(ctx context.Context, conn exchangeConn, cred PeerCred, req SocketRequest) {
	refuse := func(reason string) {
		writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied", Reason: reason})
	}
	if cred.UID != 0 {
		// An ordinary user asking to decide for someone else: refused,
		// nothing decided, nothing asked of Latch.
		if s.quiet.first(uidKey(cred.UID), "decisions for another user refused") {
			s.logf("gate socket: uid %d (pid %d) asked to decide for another user; only root may", cred.UID, cred.PID)
		}
		refuse("only root may ask for another user's decision")
		return
	}
	// Not accepted (so the hook decides itself, as it always did): a
	// daemon serving another file than the one the hook was told to read
	// would decide by the wrong rules, and a service name the socket does
	// not take would be decided differently here than by the hook alone.
	if s.ConfigPath == "" || req.Config == "" || filepath.Clean(req.Config) != filepath.Clean(s.ConfigPath) {
		refuse(fmt.Sprintf("this daemon serves %s, not %s", s.ConfigPath, safetext.Clean(req.Config)))
		return
	}
	service := req.Service
	if service == "" {
		service = ForceCommandService
	}
	if !serviceName.MatchString(service) {
		refuse("invalid service name")
		return
	}
	// The acknowledgement goes out before anything slow (Latch): the hook
	// bounds only this wait tightly, so a slow Latch behind a live daemon
	// is not taken for a dead daemon.
	if err := writeMessage(conn, SocketResponse{V: ProtocolVersion, Outcome: OutcomeAccepted, User: req.User}); err != nil {
		return
	}
	// Root's word is a fact: remote is the client's address as sshd gave
	// it to PAM. Nobody can be prompted (the hook never prompts), so Latch
	// is asked with /nootp, as the hook alone does.
	greq := gate.Request{User: req.User, Service: service, RemoteAddr: safetext.Clean(req.Remote), FrontEnd: gate.FrontEndPAM}
	core := s.Core()
	d := core.Decide(ctx, greq)
	if d.Outcome == gate.AskOTP {
		// Cannot happen without Interactive; were it to, it is a deny.
		d = core.Finish(greq, d, "")
	}
	resp := SocketResponse{V: ProtocolVersion, Outcome: "deny", User: req.User, Reason: d.Reason, Fix: d.Fix, FailMode: d.FailModeApplied}
	if d.Allowed() {
		resp.Outcome = "allow"
		// The login's session, for rechecks: the hook's parent is the
		// process that stands for it (internal/sessions). A failure is
		// logged there; the hook's own session line tries again. Only
		// under pam_exec (track): by hand, the parent is whoever ran it.
		if req.Track && s.Sessions != nil {
			_ = s.Sessions.RegisterHook(cred.PID, req.User, service, greq.RemoteAddr)
		}
	} else {
		resp.Message = d.Message()
	}
	writeMessage(conn, resp)
}

// HookAckTimeout bounds how long the PAM hook waits for the daemon to
// connect and acknowledge its request before deciding itself. A daemon
// that runs answers in well under a millisecond (accept, SO_PEERCRED, one
// read, one write, no network); 300 ms leaves room for a machine under
// load while costing little when the daemon is stopped or wedged (a
// stopped process still has its connections queued by the kernel, so only
// an answer tells it is alive). It is well inside the slack the hook's
// fail-open guard allows beyond the Latch deadline (2 s), so a hook that
// waited for a dead daemon and then finds Latch unreachable still has its
// fail-open honoured.
const HookAckTimeout = 300 * time.Millisecond

// HookAnswerSlack is how much longer than the Latch deadline the hook
// waits, once the daemon has acknowledged, for its answer: the daemon's
// own decision is bounded by the same deadline (same configuration file).
const HookAnswerSlack = 500 * time.Millisecond

// HookAnswer is the daemon's decision for the PAM hook.
type HookAnswer struct {
	// Allowed is the outcome.
	Allowed bool
	// Message is the line for the person (a refusal), Reason and Fix the
	// audit log's, all cleaned of control characters.
	Message, Reason, Fix string
	// FailMode is true when the daemon's fail mode decided: the hook must
	// apply its own guard of fail-opens to it.
	FailMode bool
	// DaemonPID is the daemon's process id (SO_PEERCRED), for the log.
	DaemonPID int32
}

// ErrNotRunning wraps (with ErrDaemon) the failures that only mean no
// daemon listens: no socket file, or a socket nobody accepts on. The hook
// decides itself then without complaint.
var ErrNotRunning = errors.New("the latch-ssh daemon is not running")

// AskForUser asks the daemon at socket, as root, to decide req.User's
// login for the PAM hook (OpDecideFor, with req.Config the hook's
// configuration file). The connection and the daemon's acknowledgement
// must come within ack; the answer then within ctx. Any error wraps
// ErrDaemon (and ErrNotRunning when nobody listens): the hook then decides
// itself.
func AskForUser(ctx context.Context, socket string, req SocketRequest, ack time.Duration) (HookAnswer, error) {
	ackCtx, cancel := context.WithTimeout(ctx, ack)
	defer cancel()
	conn, r, err := dial(ackCtx, socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return HookAnswer{}, fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return HookAnswer{}, err
	}
	defer conn.Close()
	cred, err := PeerCredOf(conn)
	if err != nil {
		return HookAnswer{}, fmt.Errorf("%w: %w", ErrDaemon, err)
	}
	// The acknowledgement within ack (dial set that deadline); the answer
	// within ctx, and no later than ctx's end whatever happens.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.V, req.Op, req.Interactive = ProtocolVersion, OpDecideFor, false
	first, err := exchange(conn, r, req)
	if err != nil {
		return HookAnswer{}, fmt.Errorf("no acknowledgement within %v: %w", ack, err)
	}
	if first.Outcome != OutcomeAccepted || first.User != req.User {
		// An older daemon that does not know the op, a daemon serving
		// another file, or an answer about someone else.
		why := first.Reason
		if why == "" {
			why = fmt.Sprintf("answered %q for %q", first.Outcome, first.User)
		}
		return HookAnswer{}, fmt.Errorf("%w: request not accepted: %s", ErrDaemon, safetext.Clean(why))
	}
	conn.SetDeadline(deadlineOf(ctx, 30*time.Second))
	var resp SocketResponse
	if err := readMessage(r, &resp); err != nil {
		return HookAnswer{}, fmt.Errorf("%w: no answer after the acknowledgement: %w", ErrDaemon, err)
	}
	if resp.V != ProtocolVersion || resp.User != req.User || (resp.Outcome != "allow" && resp.Outcome != "deny") {
		return HookAnswer{}, fmt.Errorf("%w: unexpected answer (version %d, outcome %q, user %q)", ErrDaemon,
			resp.V, safetext.Clean(resp.Outcome), safetext.Clean(resp.User))
	}
	return HookAnswer{Allowed: resp.Outcome == "allow", Message: safetext.Clean(resp.Message),
		Reason: safetext.Clean(resp.Reason), Fix: safetext.Clean(resp.Fix), FailMode: resp.FailMode, DaemonPID: cred.PID}, nil
}
