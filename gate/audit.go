package gate

import (
	"io"
	"log/syslog"

	"github.com/rs/zerolog"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// AuditLog writes one structured (JSON) line per decision through zerolog.
// Use NewSyslogAudit in the hook and the gate, where stdout and stderr belong
// to the person logging in, and NewWriterAudit in the daemon.
type AuditLog struct {
	log zerolog.Logger
}

// NewWriterAudit logs JSON lines to w (stderr under systemd, so journald
// keeps them).
func NewWriterAudit(w io.Writer) *AuditLog {
	return &AuditLog{log: zerolog.New(w).With().Timestamp().Logger()}
}

// NewSyslogAudit logs to syslog with facility AUTHPRIV and tag "latch-ssh",
// where sshd and PAM log too. If syslog cannot be reached it returns an
// AuditLog that discards everything: the hook must never fall back to
// printing on the person's terminal.
func NewSyslogAudit() *AuditLog {
	w, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_INFO, "latch-ssh")
	if err != nil {
		return &AuditLog{log: zerolog.Nop()}
	}
	return &AuditLog{log: zerolog.New(zerolog.SyslogLevelWriter(w))}
}

// Record implements Auditor: one line with user, service, remote address,
// operation, outcome, reason, latency in ms and whether the fail mode was
// applied. Fail-open allows and exemptions are warnings; configuration
// problems are errors carrying the fix. What an unprivileged caller merely
// said (Request.Claimed) is logged under claimed_remote, claimed_command
// and claimed_service, so that nothing reading the log takes it for a
// fact.
func (a *AuditLog) Record(req Request, d Decision) {
	remote, command := "remote", "command"
	if req.Claimed {
		remote, command = "claimed_remote", "claimed_command"
	}
	var ev *zerolog.Event
	switch d.Severity {
	case Error:
		ev = a.log.Error()
	case Warning:
		ev = a.log.Warn()
	default:
		ev = a.log.Info()
	}
	ev = ev.Str("event", "decision").
		Str("user", safetext.Clean(req.User)).
		Str("service", safetext.Clean(req.Service)).
		Str(remote, safetext.Clean(req.RemoteAddr)).
		Str("operation", d.Operation).
		Str("outcome", d.Outcome.String()).
		Str("reason", d.Reason).
		Int64("latency_ms", d.Latency.Milliseconds()).
		Bool("fail_mode_applied", d.FailModeApplied)
	if req.Command != "" {
		ev = ev.Str(command, safetext.Clean(req.Command))
	}
	if req.ClaimedService != "" {
		ev = ev.Str("claimed_service", safetext.Clean(req.ClaimedService))
	}
	if d.Instance != "" {
		ev = ev.Str("instance", d.Instance)
	}
	if d.Fix != "" {
		ev = ev.Str("fix", d.Fix)
	}
	ev.Msg("latch-ssh decision")
}
