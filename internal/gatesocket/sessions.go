package gatesocket

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

// Session registration (issue 16): the daemon rechecks the OpenSSH
// sessions the PAM hook and the ForceCommand gate let in, and ends them
// when their latch closes. The messages (see protocol.go for the framing):
//
// The ForceCommand gate, after an allow and before it execs the shell
// (op "register", any uid). The daemon takes pid and uid from SO_PEERCRED
// and finds the login the caller descends from in /proc; the caller names
// nothing (service is ForceCommandService for every caller but root,
// remote is logged as the caller's claim):
//
//	gate   -> {"v":1,"op":"register","remote":"192.0.2.1"}
//	daemon -> {"v":1,"message":"session tracked","ok":true}
//	          or {"v":1,"outcome":"deny","message":"latch-ssh: access denied","reason":"session not tracked: ..."}
//
// The refusal (outcome deny with a reason) comes only when rechecks are
// on and fail_mode is "closed": a login the daemon could not tie to an
// sshd connection would escape the owner's off switch. Otherwise the
// answer is ok with a message saying it is not tracked. An older daemon
// answers an unknown op with a deny and no reason; the gate goes on then
// (it does not track sessions, and said so in its own log).
//
// The PAM hook at PAM open_session and close_session (ops "session-open"
// and "session-close", root only), and at account time the daemon
// registers the session of every "decide-for" it allows that says
// "track":true (the hook under pam_exec). The session is
// the hook's parent process (pam_exec's caller), read from /proc:
//
//	hook   -> {"v":1,"op":"session-open","service":"sshd","remote":"192.0.2.1","user":"alice","config":"/etc/latch-ssh/latch.toml"}
//	daemon -> {"v":1,"message":"session tracked","ok":true}  or  {"v":1,"message":"session not tracked: ..."}
//	hook   -> {"v":1,"op":"session-close"}
//	daemon -> {"v":1,"message":"1 session(s) forgotten","ok":true}
//
// The list, for `latch-ssh status --sessions` (op "sessions", root only):
//
//	client -> {"v":1,"op":"sessions"}
//	daemon -> {"v":1,"ok":true,"sessions":[{"user":"alice","front_end":"pam",...}]}

// Session registration ops.
const (
	OpRegister     = "register"
	OpSessionOpen  = "session-open"
	OpSessionClose = "session-close"
	OpSessions     = "sessions"
)

// SessionInfo is one tracked session as `latch-ssh status --sessions`
// shows it.
type SessionInfo struct {
	User     string `json:"user"`
	FrontEnd string `json:"front_end"`
	Service  string `json:"service"`
	Remote   string `json:"remote,omitempty"`
	// PID is the process that stands for the login (sshd's monitor, su).
	PID        int       `json:"pid"`
	TTY        string    `json:"tty,omitempty"`
	Since      time.Time `json:"since"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	LastResult string    `json:"last_result,omitempty"`
}

// SessionTable is the daemon's table of tracked sessions
// (internal/sessions behind an adapter, so the wire types stay this
// package's own).
type SessionTable interface {
	// RegisterGate registers the login the process pid, running as uid
	// (both SO_PEERCRED), descends from.
	RegisterGate(pid int32, uid uint32, user, service, remote string) error
	// RegisterHook registers the login of the PAM hook pid (root).
	RegisterHook(pid int32, user, service, remote string) error
	// UnregisterHook forgets it, returning how many sessions it forgot.
	UnregisterHook(pid int32) int
	// Sessions lists the tracked sessions.
	Sessions() []SessionInfo
}

// register answers OpRegister.
func (s *SocketServer) register(cred PeerCred, name string, req SocketRequest) SocketResponse {
	if s.Sessions == nil {
		return SocketResponse{V: ProtocolVersion, OK: true, Message: "this daemon does not track sessions"}
	}
	greq := decisionRequest(cred, name, req)
	if !serviceName.MatchString(greq.Service) {
		return SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied", Reason: "invalid service name"}
	}
	err := s.Sessions.RegisterGate(cred.PID, cred.UID, name, greq.Service, greq.RemoteAddr)
	if err == nil {
		return SocketResponse{V: ProtocolVersion, OK: true, Message: "session tracked"}
	}
	if mustTrack(s.Core().Config) {
		if s.quiet.first(uidKey(cred.UID), "sessions refused (not tracked)") {
			s.logf("gate socket: uid %d (pid %d): login refused: %v", cred.UID, cred.PID, err)
		}
		return SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied", Reason: safetext.Clean(err.Error())}
	}
	return SocketResponse{V: ProtocolVersion, OK: true, Message: safetext.Clean(err.Error())}
}

// mustTrack reports whether a login the daemon cannot track is refused:
// when rechecks are on and fail_mode is "closed". With rechecks off there
// is nothing to track; with fail_mode "open" the admin chose logins over
// certainty.
func mustTrack(cfg *users.Config) bool {
	return cfg == nil || (cfg.Server.Recheck.Duration > 0 && cfg.Policy.FailMode != users.FailOpen)
}

// hookSession answers OpSessionOpen and OpSessionClose (root only).
func (s *SocketServer) hookSession(cred PeerCred, req SocketRequest) SocketResponse {
	if cred.UID != 0 {
		if s.quiet.first(uidKey(cred.UID), "session ops refused (not root)") {
			s.logf("gate socket: uid %d (pid %d) sent %s; only root may", cred.UID, cred.PID, safetext.Clean(req.Op))
		}
		return SocketResponse{V: ProtocolVersion, Message: "latch-ssh: only root may register PAM sessions"}
	}
	if s.Sessions == nil {
		return SocketResponse{V: ProtocolVersion, Message: "this daemon does not track sessions"}
	}
	if req.Op == OpSessionClose {
		n := s.Sessions.UnregisterHook(cred.PID)
		return SocketResponse{V: ProtocolVersion, OK: true, Message: fmt.Sprintf("%d session(s) forgotten", n)}
	}
	if s.ConfigPath == "" || req.Config == "" || filepath.Clean(req.Config) != filepath.Clean(s.ConfigPath) {
		return SocketResponse{V: ProtocolVersion, Message: fmt.Sprintf("this daemon serves %s, not %s", s.ConfigPath, safetext.Clean(req.Config))}
	}
	if req.Service == "" {
		req.Service = ForceCommandService
	}
	if !serviceName.MatchString(req.Service) || req.User == "" {
		return SocketResponse{V: ProtocolVersion, Message: "invalid service or user"}
	}
	if err := s.Sessions.RegisterHook(cred.PID, req.User, req.Service, safetext.Clean(req.Remote)); err != nil {
		return SocketResponse{V: ProtocolVersion, Message: safetext.Clean(err.Error())}
	}
	return SocketResponse{V: ProtocolVersion, OK: true, Message: "session tracked"}
}

// listSessions answers OpSessions (root only).
func (s *SocketServer) listSessions(cred PeerCred) SocketResponse {
	if cred.UID != 0 {
		if s.quiet.first(uidKey(cred.UID), "session lists refused (not root)") {
			s.logf("gate socket: uid %d (pid %d) asked for the session list; only root may", cred.UID, cred.PID)
		}
		return SocketResponse{V: ProtocolVersion, Message: "latch-ssh: only root may list the tracked sessions"}
	}
	if s.Sessions == nil {
		return SocketResponse{V: ProtocolVersion, Message: "this daemon does not track sessions"}
	}
	list := s.Sessions.Sessions()
	for i := range list {
		list[i].User = safetext.Clean(list[i].User)
		list[i].Remote = safetext.Clean(list[i].Remote)
		list[i].LastResult = safetext.Clean(list[i].LastResult)
	}
	if list == nil {
		list = []SessionInfo{}
	}
	return SocketResponse{V: ProtocolVersion, OK: true, SessionList: list}
}

// ErrNotTracked is returned by RegisterSession when the daemon refused to
// track the login: the gate denies it.
var ErrNotTracked = errors.New("the latch-ssh daemon cannot track this session")

// RegisterSession is the ForceCommand gate's registration (OpRegister).
// It returns nil when the login may go on: tracked, or a daemon that
// does not track sessions (an older one, or rechecks off); ErrNotTracked
// when the daemon refused; another error (wrapping ErrDaemon) when there
// was no clear answer.
func RegisterSession(ctx context.Context, socket string, req SocketRequest) (string, error) {
	req.Op = OpRegister
	resp, err := CallSelfService(ctx, socket, req)
	if err != nil {
		return "", err
	}
	switch {
	case resp.OK:
		return resp.Message, nil
	case resp.Outcome == "deny" && resp.Reason != "":
		return "", fmt.Errorf("%w: %s", ErrNotTracked, safetext.Clean(resp.Reason))
	default:
		// An older daemon: the op is unknown to it.
		return "the daemon does not know session registration", nil
	}
}

// ListSessions asks the daemon (as root) for its tracked sessions.
func ListSessions(ctx context.Context, socket string) ([]SessionInfo, error) {
	resp, err := CallSelfService(ctx, socket, SocketRequest{Op: OpSessions})
	if err != nil {
		return nil, err
	}
	if !resp.OK {
		return nil, fmt.Errorf("%w: %s", ErrDaemon, resp.Message)
	}
	return resp.SessionList, nil
}
