package gate

import "strings"

// Message is the one line shown to the person whose login was refused. It
// says what they can do about it and nothing about the server's internals
// (no error details, no operation ids): those go to the audit log.
func (d Decision) Message() string {
	switch {
	case d.Outcome == Allow:
		return ""
	case strings.HasPrefix(d.Reason, "latch closed"):
		return "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again"
	case d.Outcome == Deny && d.Reason == "latch open, wrong one-time code":
		return "latch-ssh: access denied: wrong one-time code"
	default:
		return "latch-ssh: access denied"
	}
}
