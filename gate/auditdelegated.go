package gate

import (
	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// RecordByDaemon writes the PAM hook's line for a decision the daemon made
// (issue 15): the daemon wrote the decision line itself, in its own log,
// with the same fields as always, so this is not a second decision line
// (event "decision-by-daemon", not "decision") but the pointer to it in
// AUTHPRIV, where the hook's lines have always been: who, what service,
// from where, the outcome and reason the daemon gave, whether its fail mode
// decided, the hook's own latency, and the daemon's pid (journalctl
// _PID=...). Fail-opens are warnings, as in the daemon's line.
func (a *AuditLog) RecordByDaemon(req Request, d Decision, daemonPID int32) {
	ev := a.log.Info()
	if d.Severity >= Warning || (d.FailModeApplied && d.Allowed()) {
		ev = a.log.Warn()
	}
	ev.Str("event", "decision-by-daemon").
		Str("user", safetext.Clean(req.User)).
		Str("service", safetext.Clean(req.Service)).
		Str("remote", safetext.Clean(req.RemoteAddr)).
		Str("outcome", d.Outcome.String()).
		Str("reason", d.Reason).
		Int64("latency_ms", d.Latency.Milliseconds()).
		Bool("fail_mode_applied", d.FailModeApplied).
		Int32("daemon_pid", daemonPID).
		Msg("latch-ssh decision made by the daemon (its log has the decision line)")
}

// Note writes one line that is not a decision (event, message) at
// severity sev: the PAM hook says so when the daemon failed it and it
// decided itself.
func (a *AuditLog) Note(sev Severity, event, msg string) {
	ev := a.log.Info()
	switch sev {
	case Error:
		ev = a.log.Error()
	case Warning:
		ev = a.log.Warn()
	}
	ev.Str("event", event).Msg(safetext.Clean(msg))
}
