package checkconfig

import (
	"fmt"
	"strings"

	"github.com/latch-ssh/latch-ssh/internal/wiring"
	"github.com/latch-ssh/latch-ssh/users"
)

// Severity ranks a Finding: wiring's type, so that the sshd and PAM
// findings need no translation. Errors and warnings are counted in the
// summary; notes and OK lines are not.
type Severity = wiring.Severity

// The severities, by check-config's names.
const (
	// Note is advice; nothing is wrong ("note" first in a line, "info"
	// after a location, the word the wiring findings have always used).
	Note = wiring.Info
	// Warning is a setting that works but can leave a hole in some cases,
	// or protects less than it seems to.
	Warning = wiring.Warning
	// Error is a hole (a login that is not gated), a lockout, or a file
	// the login path refuses.
	Error = wiring.Error
	// OK is a check that passed and says so (the --online call).
	OK = wiring.OK
)

// Finding is one result of check-config: what is wrong (or worth knowing),
// where (File and Line, when known: Line 0 when the file has no line for
// it, File "" when it is about no file), and the edit that fixes it (Fix,
// "" when there is none). Every check, whoever owns its rule, reports
// through this type, so that every line check-config prints has the same
// parts.
type Finding struct {
	Severity Severity
	File     string
	Line     int
	Message  string
	Fix      string
	// LocationFirst prints the location before the severity
	// ("pam.d/sshd:3: error: ..."), as the sshd and PAM wiring findings
	// always have: they point at other programs' files, like a compiler's
	// diagnostics, and scripts match on that layout. latch.toml's findings
	// print the severity first ("error: latch.toml:3: ...").
	LocationFirst bool
}

// String formats f as one line: "severity: file:line: message (fix: ...)",
// or with LocationFirst "file:line: severity: message (fix: ...)", leaving
// out the parts that are unknown. A Note says "info" in the LocationFirst
// layout, the word the wiring findings have always used.
func (f Finding) String() string {
	var loc string
	switch {
	case f.File == "" && f.Line > 0:
		loc = fmt.Sprintf("line %d: ", f.Line)
	case f.File != "" && f.Line > 0:
		loc = fmt.Sprintf("%s:%d: ", f.File, f.Line)
	case f.File != "":
		loc = f.File + ": "
	}
	var b strings.Builder
	if f.LocationFirst {
		b.WriteString(loc + f.Severity.String() + ": ")
	} else if f.Severity == Note {
		b.WriteString("note: " + loc)
	} else {
		b.WriteString(f.Severity.String() + ": " + loc)
	}
	b.WriteString(f.Message)
	if f.Fix != "" {
		b.WriteString(" (fix: " + f.Fix + ")")
	}
	return b.String()
}

// fromProblem is a finding of users (a reason Load refuses the file): an
// error at the problem's file:line, its key leading the message.
func fromProblem(p users.Problem) Finding {
	msg := p.Message
	if p.Key != "" {
		msg = p.Key + ": " + msg
	}
	return Finding{Severity: Error, File: p.File, Line: p.Line, Message: msg, Fix: p.Fix}
}

// fromWiring is a finding of the sshd and PAM checks (package wiring).
func fromWiring(f wiring.Finding) Finding {
	line := f.Line
	if f.File == "" {
		line = 0 // wiring prints no line without a file
	}
	return Finding{Severity: f.Severity, File: f.File, Line: line, Message: f.Message, Fix: f.Fix, LocationFirst: true}
}
