// Package checkconfig is `latch-ssh check-config`: every check of the
// configuration and of the machine it protects, in one list (checks), each
// reporting through one Finding type. A check lives here when it reads
// latch.toml's settings, and calls into the package that owns the rule:
// users for the file itself (syntax, values, permissions, the files it
// names), gate for what logins are decided by (accounts, operations, the
// Latch client), sshserver for host keys, wiring for the sshd and PAM
// wiring. A new setting's check is one more function in the list, next to
// the checks of its table ([server] in server.go, and so on).
//
// The command (cmd/latch-ssh) only parses flags and prints the Report.
package checkconfig

import (
	"context"
	"fmt"

	"github.com/latch-ssh/latch-ssh/internal/wiring"
	"github.com/latch-ssh/latch-ssh/users"
)

// Options are the inputs of check-config.
type Options struct {
	// ConfigPath is the latch.toml to check.
	ConfigPath string
	// ExampleConfig names the template to copy when ConfigPath does not
	// exist (a file that exists on this machine).
	ExampleConfig string
	// Root says the caller is root: only then are sshd and PAM inspected,
	// since sshd -T needs root and a non-root run would report holes that
	// are not there.
	Root bool
	// SkipWiring leaves out the sshd and PAM checks (--no-wiring).
	SkipWiring bool
	// Wiring selects what the sshd and PAM checks look at; its Users and
	// ServerListen are filled in from the configuration.
	Wiring wiring.Options
	// Online also asks Latch whether it accepts app_id and secret (one
	// API call).
	Online bool
	// ListUsers adds one note per [users] name: the file and line that
	// map it (--users).
	ListUsers bool
}

// run is one check-config run: its options and what Inspect read.
type run struct {
	opts Options
	// in is the inspection of the file checked; nil in tests that check
	// a parsed configuration only (then findings have no line).
	in *users.Inspection
	// cfg is what parsed (in.Config): nil when nothing did, and then the
	// checks of settings have nothing to look at.
	cfg *users.Config
}

// finding returns a finding located at the key or table path of the file
// checked: "file:line" when the file defines it (or its nearest parent),
// else the file alone.
func (r *run) finding(sev Severity, path []string, msg, fix string) Finding {
	f := Finding{Severity: sev, File: r.cfg.Path, Message: msg, Fix: fix}
	if r.in != nil && r.in.Path == r.cfg.Path {
		f.File, f.Line = r.in.Locate(path...)
	}
	return f
}

// check is one entry of the list of checks.
type check struct {
	// what the check looks at, and the package that owns its rules.
	what string
	run  func(context.Context, *run) []Finding
}

// checks is every check, in the order check-config reports them: first
// why the file does not load, then what a file that parses can still get
// wrong (run on what did parse, so that one run reports everything; issue
// 13, point 5), then the machine's sshd and PAM.
func checks() []check {
	return []check{
		{"the file: permissions, syntax, values, files it names (users)", checkFile},
		{"the drop-ins read and ignored, and the file mapping each user (users)", checkSources},
		{"[users] names and [policy] exempt_groups on this system (NSS)", checkAccounts},
		{"[users] names sharing a uid (gate)", checkSharedUIDs},
		{"[policy] fail_mode", checkFailMode},
		{"[server]: host keys (sshserver), sftp_server, recheck, forwarding, admission", checkServer},
		{"[metrics]: an endpoint other hosts can reach, the textfile's directory", checkMetrics},
		{"[operations] and [user_operations] keys (gate)", checkOperations},
		{"[latch] instance: users without this server's instances (users)", checkInstances},
		{"[latch]: the client, and with --online the credentials (gate)", checkLatch},
		{"sshd and PAM wiring (wiring)", checkWiring},
	}
}

// Report is the result of a check-config run.
type Report struct {
	// Path is the configuration file checked.
	Path string
	// Findings is every finding, in the order of checks.
	Findings []Finding
}

// Run runs every check and returns what they found.
func Run(ctx context.Context, o Options) *Report {
	// Inspect, not Load: every problem in one run (issue 13, point 5). A
	// file others can read still has its values checked, and a bad value
	// does not hide an unknown user.
	in := users.Inspect(o.ConfigPath)
	r := &run{opts: o, in: in, cfg: in.Config}
	rep := &Report{Path: o.ConfigPath}
	for _, c := range checks() {
		rep.Findings = append(rep.Findings, c.run(ctx, r)...)
	}
	return rep
}

// Count returns the number of errors and warnings.
func (rep *Report) Count() (errors, warnings int) {
	for _, f := range rep.Findings {
		switch f.Severity {
		case Error:
			errors++
		case Warning:
			warnings++
		}
	}
	return errors, warnings
}

// Summary is the last line check-config prints.
func (rep *Report) Summary() string {
	errors, warnings := rep.Count()
	switch {
	case errors > 0:
		return fmt.Sprintf("%s: %d error(s), %d warning(s): logins are not protected as configured until the errors are fixed", rep.Path, errors, warnings)
	case warnings > 0:
		return fmt.Sprintf("%s: OK with %d warning(s)", rep.Path, warnings)
	}
	return rep.Path + ": OK"
}

// ExitCode is check-config's exit status: 1 when there is an error, else 0
// (warnings allowed).
func (rep *Report) ExitCode() int {
	if errors, _ := rep.Count(); errors > 0 {
		return 1
	}
	return 0
}
