package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// The hook asks the daemon first (issue 15). A cold latch-check pays DNS,
// TCP, TLS and the request to Latch on every login; the daemon (`latch-ssh
// serve`), when it runs, has a warm connection and decides in one round
// trip. So, as root, the hook sends PAM_USER, the service and the remote
// address over the gate socket ([daemon] socket of the hook's own
// configuration file) and takes the daemon's answer. It never depends on
// the daemon:
//
//   - no daemon (no socket, nobody accepting): decide directly, silently;
//   - a daemon that does not connect and acknowledge within
//     gatesocket.HookAckTimeout (stopped, wedged), refuses the request
//     (another configuration file, an older daemon), dies after accepting
//     it, or does not answer within the Latch deadline plus
//     gatesocket.HookAnswerSlack: log a warning, decide directly. The ack
//     comes before the daemon asks Latch, so a slow Latch behind a live
//     daemon is waited for (up to the deadline), not taken for a dead
//     daemon, and the hook does not ask Latch a second time.
//
// The direct decision after a failed daemon runs under the same guard of
// fail-opens as ever, which measures the whole run: if the wait for the
// daemon plus a failing Latch took longer than the deadline and its slack,
// a fail-open is refused (deny). A closed latch is a deny on every path.
//
// The daemon writes the decision line in its own log; the hook writes a
// pointer to it in AUTHPRIV (gate.AuditLog.RecordByDaemon), so auth.log
// still shows every login's outcome and the decision is not logged twice.
// The daemon's answer says whether its fail mode decided; an allow that
// is a fail-open goes through the hook's guard (tamperWatch) like a
// fail-open of its own, and a refusal is logged here as a decision line,
// since it overrides the daemon's.

// auditByDaemon is the part of gate.AuditLog the daemon path writes with;
// an Auditor without it (tests) gets nothing for those lines.
type auditByDaemon interface {
	RecordByDaemon(req gate.Request, d gate.Decision, daemonPID int32)
	Note(sev gate.Severity, event, msg string)
}

// decideViaDaemon asks the daemon to decide req under the configuration
// file configPath that core was loaded from. ok is false when the daemon
// gave no answer, and the hook must decide itself.
// track asks the daemon to track the login's session on an allow (under
// pam_exec only: by hand there is no login).
func decideViaDaemon(h hooks, core *gate.Core, configPath string, req gate.Request, track bool, audit gate.Auditor) (d gate.Decision, ok bool) {
	start := time.Now()
	ab, _ := audit.(auditByDaemon)
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return gate.Decision{}, false
	}
	timeout := gate.LatchTimeout(core.Config)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+gatesocket.HookAnswerSlack)
	defer cancel()
	ans, err := gatesocket.AskForUser(ctx, core.Config.Daemon.Socket, gatesocket.SocketRequest{
		User: req.User, Service: req.Service, Remote: req.RemoteAddr, Config: abs, Track: track,
	}, gatesocket.HookAckTimeout)
	if err != nil {
		if !errors.Is(err, gatesocket.ErrNotRunning) && ab != nil {
			ab.Note(gate.Warning, "daemon", "the latch-ssh daemon at "+core.Config.Daemon.Socket+" gave no answer ("+err.Error()+"); deciding directly")
		}
		return gate.Decision{}, false
	}
	d = gate.Decision{Reason: ans.Reason, Fix: ans.Fix, FailModeApplied: ans.FailMode}
	if ans.Allowed {
		d.Outcome = gate.Allow
	}
	if d.FailModeApplied {
		d.Severity = gate.Warning
	}
	if d.Allowed() && d.FailModeApplied && h.failOpenGuard != nil {
		// The daemon's fail-open is the hook's fail-open: the person
		// could have stopped the hook (or the daemon's answer could have
		// come too late) just as well.
		if why, fix := h.failOpenGuard(timeout); why != "" {
			d.Outcome, d.Severity, d.Fix = gate.Deny, gate.Error, fix
			d.Reason = "fail-open REFUSED (" + safetext.Clean(why) + "): " + strings.TrimPrefix(ans.Reason, "FAIL-OPEN: ")
			d.Latency = time.Since(start)
			audit.Record(req, d)
			return d, true
		}
	}
	d.Latency = time.Since(start)
	if ab != nil {
		ab.RecordByDaemon(req, d, ans.DaemonPID)
	}
	return d, true
}
