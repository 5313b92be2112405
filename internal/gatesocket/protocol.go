package gatesocket

// The gate socket protocol, spoken between the daemon (`latch-ssh serve`)
// and the processes that run as the person logging in: the ForceCommand
// gate and self-service pair/unpair/status.
//
// Transport: a Unix stream socket (default /run/latch-ssh/gate.sock). One
// connection carries one exchange. Each message is one JSON object on one
// line ending in "\n", at most MaxMessageSize bytes; anything else ends the
// connection with a deny.
//
// Identity: the daemon identifies the caller by SO_PEERCRED (uid, gid, pid)
// read from the connection, and resolves the uid to a user name through NSS.
// Only root's "decide-for" (the PAM hook, below) names a user; from any
// other caller it is refused, and a "user" in any other message is
// ignored: an ordinary caller can only ever ask about itself, so there is
// nothing to spoof.
//
// What else a caller says counts only as far as its privilege goes (issue
// 12, item 11; see decisionRequest): a caller other than root is decided
// for ForceCommandService whatever "service" it sends, and its "remote"
// and "command" are logged as claimed_remote and claimed_command. Only root
// (the PAM hook) chooses the service.
//
// Connections: a uid may have DefaultMaxConnsPerUID exchanges open; past
// that, its connections get a deny at once. Decisions and self-service
// requests share the uid's rate limit ([daemon] rate_limit). Root has
// neither limit. A connect(2) that fails with
// EAGAIN (the listen backlog is full) is retried by the clients within their
// deadline.
//
// A login (op "decide"):
//
//	gate   -> {"v":1,"op":"decide","service":"sshd","interactive":true,"command":"...","remote":"192.0.2.1"}
//	daemon -> {"v":1,"outcome":"ask-otp","prompt":"Latch one-time code: "}   only when interactive and Latch sent a code
//	gate   -> {"v":1,"op":"otp","code":"g2sEXg"}                              "" if the person gave none
//	daemon -> {"v":1,"outcome":"allow"}  or  {"v":1,"outcome":"deny","message":"latch-ssh: access denied: ..."}
//
// The one-time code never leaves the daemon: the gate sends what the person
// typed and gets the verdict. The connection stays open while the person
// types, under a deadline (gate.OTPTimeout); closing it denies.
//
// Self-service (ops "pair", "unpair", "status"), allowed only when
// [policy] allow_self_pairing = true:
//
//	client -> {"v":1,"op":"pair","token":"AbC123"}
//	daemon -> {"v":1,"message":"paired ...","ok":true}  or  {"v":1,"message":"that code is wrong or has expired: ..."}
//	client -> {"v":1,"op":"status"}
//	daemon -> {"v":1,"ok":true,"status":{...}}
//
// A login decided for the PAM hook (op "decide-for"), only for root
// (SO_PEERCRED uid 0): latch-check runs as root under pam_exec and asks the
// daemon, whose Latch connection is warm, to decide for PAM_USER. The
// daemon first acknowledges (at once, before asking Latch: the hook bounds
// that wait, see HookAckTimeout), then answers; both messages name the user
// decided for, so an answer about anyone else (an older daemon that does
// not know the op) is never taken for it. config is the configuration file
// the hook reads; a daemon serving another file refuses (and the hook
// decides itself), so `latch-check -c FILE` keeps meaning FILE. The hook
// never prompts: the daemon asks Latch with /nootp. fail_mode says the
// daemon's fail mode decided (the hook then applies its own guard of
// fail-opens); reason and fix are the audit log's, for root's eyes:
//
//	hook   -> {"v":1,"op":"decide-for","service":"sshd","remote":"192.0.2.1","user":"alice","config":"/etc/latch-ssh/latch.toml"}
//	daemon -> {"v":1,"outcome":"accepted","user":"alice"}
//	daemon -> {"v":1,"outcome":"allow","user":"alice","reason":"latch open"}
//	          or {"v":1,"outcome":"deny","message":"latch-ssh: access denied","user":"alice","reason":"fail-closed: ...","fail_mode":true}
//
// Under pam_exec the hook adds "track":true after "config": on an allow
// the daemon then tracks the login's session (see sessions.go).
//
// Any other caller gets a deny and nothing is decided; a "user" in an
// ordinary "decide" is ignored (the caller is decided as itself).
//
// Reload (op "reload"), only for root (SO_PEERCRED uid 0) or the daemon's
// own user: root's `latch-ssh pair` and `unpair` edit the file directly,
// then ask the running daemon to put the file in force; the answer comes
// once it is (ok) or says why it is not:
//
//	client -> {"v":1,"op":"reload"}
//	daemon -> {"v":1,"message":"...","ok":true}  or  {"v":1,"message":"..."}
//
// Session registration and the session list (ops "register",
// "session-open", "session-close", "sessions"): see sessions.go.
//
// Any answer with an unknown outcome, a missing field or another version is
// a deny for the gate. The lines above are the exact bytes (fields in this
// order, false and empty fields left out): TestWireBytes pins them.

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
)

// Protocol constants.
const (
	ProtocolVersion = 1
	// MaxMessageSize bounds one protocol line.
	MaxMessageSize = 16 << 10
)

// ForceCommandService is the service the ForceCommand gate decides for,
// and so the key of its operation in [operations]: "sshd", like the PAM
// hook in sshd's stack, since both gate the same SSH logins. The daemon
// decides every caller but root for it, whatever the caller sends.
const ForceCommandService = "sshd"

// Operations of the gate socket.
const (
	OpDecide = "decide"
	OpOTP    = "otp"
	OpPair   = "pair"
	OpUnpair = "unpair"
	OpStatus = "status"
	OpReload = "reload"
	// OpDecideFor is the PAM hook's decision for another user (root only).
	OpDecideFor = "decide-for"
)

// OutcomeAccepted is the daemon's acknowledgement of an OpDecideFor: it
// has the request and is deciding.
const OutcomeAccepted = "accepted"

// SocketRequest is a message from a client to the daemon.
type SocketRequest struct {
	V           int    `json:"v"`
	Op          string `json:"op"`
	Service     string `json:"service,omitempty"`
	Interactive bool   `json:"interactive,omitempty"`
	Command     string `json:"command,omitempty"`
	Remote      string `json:"remote,omitempty"`
	Code        string `json:"code,omitempty"`
	Token       string `json:"token,omitempty"`
	// User is whom OpDecideFor decides for; honoured only from root.
	User string `json:"user,omitempty"`
	// Config is the configuration file the sender of OpDecideFor reads.
	Config string `json:"config,omitempty"`
	// Track asks the daemon, with OpDecideFor, to track the session of
	// the login it allows (the PAM hook under pam_exec; not by hand).
	Track bool `json:"track,omitempty"`
}

// SocketResponse is a message from the daemon to a client.
type SocketResponse struct {
	V int `json:"v"`
	// Outcome is "allow", "deny" or "ask-otp" for decide and otp.
	Outcome string `json:"outcome,omitempty"`
	// Prompt is shown to the person with ask-otp.
	Prompt string `json:"prompt,omitempty"`
	// Message is the line to show the person (a refusal, or the result of
	// a pairing operation). The daemon cleans it of control characters.
	Message string `json:"message,omitempty"`
	// OK reports success for pair, unpair and status.
	OK bool `json:"ok,omitempty"`
	// Status is the answer to status.
	Status *UserStatus `json:"status,omitempty"`
	// User, Reason, Fix and FailMode answer OpDecideFor only (root): the
	// user decided for, the decision's reason and fix as logged, and
	// whether the fail mode decided.
	User     string `json:"user,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Fix      string `json:"fix,omitempty"`
	FailMode bool   `json:"fail_mode,omitempty"`
	// SessionList answers OpSessions (root only; see sessions.go).
	SessionList []SessionInfo `json:"sessions,omitempty"`
}

// UserStatus describes one local user's mapping and live latch state, for
// `latch-ssh status` (human-readable, or --json as is).
type UserStatus struct {
	User string `json:"user"`
	// Paired is true when the user has an account in [users].
	Paired bool `json:"paired"`
	// Account is the account id, shortened for display ("abcd...wxyz").
	Account string `json:"account,omitempty"`
	// Latches lists the live state per service/operation.
	Latches []LatchState `json:"latches,omitempty"`
	// Note is a plain-language remark, e.g. "unpaired from the phone".
	Note string `json:"note,omitempty"`
}

// LatchState is the state of one latch of a user.
type LatchState struct {
	// Service is the service or front end, "" for the application latch.
	Service   string `json:"service,omitempty"`
	Operation string `json:"operation,omitempty"`
	// State is "open", "closed", "unpaired" or "error".
	State string `json:"state"`
	// Detail explains an error state.
	Detail string `json:"detail,omitempty"`
}

// WireStatus is the wire form of a status from pairing: the daemon's
// answer to OpStatus, and what `latch-ssh status --json` prints whichever
// way it got the status (root asks pairing directly), so scripts see one
// format. The wire types are the protocol's own, not pairing's, so that
// changing pairing can never change what an older client reads.
func WireStatus(st pairing.UserStatus) UserStatus {
	w := UserStatus{User: st.User, Paired: st.Paired, Account: st.Account, Note: st.Note}
	for _, l := range st.Latches {
		w.Latches = append(w.Latches, LatchState{Service: l.Service, Operation: l.Operation, State: l.State, Detail: l.Detail})
	}
	return w
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
func writeMessage(conn io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = conn.Write(append(b, '\n'))
	return err
}
