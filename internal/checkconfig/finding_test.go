package checkconfig

import (
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/wiring"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestFindingLayouts: the findings of users and wiring print exactly as
// they did before check-config gathered them into one type (issue 14):
// latch.toml's problems as "error: " and users.Problem's own text, the
// sshd and PAM findings as wiring.Finding prints them (location first,
// "info" for advice). Scripts and tests match on both layouts.
func TestFindingLayouts(t *testing.T) {
	for _, p := range []users.Problem{
		{File: "/etc/latch-ssh/latch.toml", Line: 3, Key: "latch.app_id", Message: "must be 20", Fix: "copy it"},
		{File: "/etc/latch-ssh/latch.toml", Key: "policy.fail_mode", Message: "is required"},
		{File: "/etc/latch-ssh/latch.toml", Message: "is writable by its group (mode 0660)", Fix: "chmod 600 /etc/latch-ssh/latch.toml"},
		{Line: 4, Message: "syntax error"},
		{Message: "no file, no line"},
	} {
		if got, want := fromProblem(p).String(), "error: "+p.Error(); got != want {
			t.Errorf("users.Problem printed as\n%s\nwant\n%s", got, want)
		}
	}
	for _, f := range []wiring.Finding{
		{Severity: wiring.Error, File: "/etc/pam.d/sshd", Line: 3, Message: "hook in auth", Fix: "move it"},
		{Severity: wiring.Warning, File: "sshd -T", Message: "user skipped"},
		{Severity: wiring.Info, File: "sshd -T", Message: "KbdInteractiveAuthentication yes"},
		{Severity: wiring.Warning, Message: "no front end is wired", Fix: "add the hook"},
		{Severity: wiring.Info, Line: 7, Message: "a line but no file"},
	} {
		if got, want := fromWiring(f).String(), f.String(); got != want {
			t.Errorf("wiring.Finding printed as\n%s\nwant\n%s", got, want)
		}
	}
}

// TestReportSummary: the exit status and the last line follow the counts
// of errors and warnings; notes and OK lines count for nothing.
func TestReportSummary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sev     []Severity
		summary string
		code    int
	}{
		{"clean", []Severity{Note, OK}, "latch.toml: OK", 0},
		{"warnings", []Severity{Warning, Note, Warning}, "latch.toml: OK with 2 warning(s)", 0},
		{"errors", []Severity{Error, Warning, OK}, "latch.toml: 1 error(s), 1 warning(s): logins are not protected as configured until the errors are fixed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &Report{Path: "latch.toml"}
			for _, s := range tc.sev {
				rep.Findings = append(rep.Findings, Finding{Severity: s, Message: "m"})
			}
			if got := rep.Summary(); got != tc.summary {
				t.Errorf("summary %q, want %q", got, tc.summary)
			}
			if got := rep.ExitCode(); got != tc.code {
				t.Errorf("exit %d, want %d", got, tc.code)
			}
		})
	}
}
