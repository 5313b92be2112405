// Package wiring checks that sshd and Linux-PAM are wired so that latch-ssh
// actually protects logins. It backs `latch-ssh check-config`: the admin must
// learn about a hole (a hook that cannot deny, a ForceCommand that forwards
// bypass) or a lockout (an include loop, an unrunnable hook) before it bites.
//
// The PAM part is pure (it reads a pam.d directory); the sshd part reads the
// effective configuration from `sshd -T`, so Match blocks, Includes and
// defaults are exactly what the running sshd would use.
package wiring

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// Severity ranks a Finding. check-config reports every finding, its own
// and these, with this one type.
type Severity int

const (
	// Info is advice; nothing is wrong.
	Info Severity = iota
	// Warning is a setup that works but can leave a hole in some cases.
	Warning
	// Error is a hole (a login that is not gated) or a lockout.
	Error
	// OK is a check that passed and says so (check-config's --online
	// call); the wiring checks themselves never report it.
	OK
)

// String returns "info", "warning", "error" or "ok".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	case OK:
		return "ok"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Finding is one result of a check. File and Line point at the line to edit
// when it is known (Line 0 when not); Fix says what to do, "" when nothing.
type Finding struct {
	Severity Severity
	File     string
	Line     int
	Message  string
	Fix      string
}

// String formats f as "file:line: severity: message (fix: ...)", leaving out
// the parts that are unknown.
func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		b.WriteString(f.File)
		if f.Line > 0 {
			fmt.Fprintf(&b, ":%d", f.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(f.Severity.String() + ": " + f.Message)
	if f.Fix != "" {
		b.WriteString(" (fix: " + f.Fix + ")")
	}
	return b.String()
}

// clean strips control characters from text read from files or programs
// before it goes into a Finding: check-config prints findings on the admin's
// terminal, and a crafted include name must not be able to move the cursor.
func clean(s string) string { return safetext.Clean(s) }

// dedupe drops repeated findings, keeping the first: a shared file such as
// common-account is reached from several services.
func dedupe(in []Finding) []Finding {
	seen := map[Finding]bool{}
	out := in[:0:0]
	for _, f := range in {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// Default locations, used by Check when an Options field is empty.
const (
	DefaultPAMDir     = "/etc/pam.d"
	DefaultSSHDPath   = "/usr/sbin/sshd"
	DefaultSSHDConfig = "/etc/ssh/sshd_config"
	DefaultHookPath   = "/usr/sbin/latch-check"
	DefaultGatePath   = "/usr/bin/latch-ssh"
)

// DefaultServices are the PAM services Check looks at when Options.Services
// is empty: the ones the shipped recipes cover, plus console login.
func DefaultServices() []string { return []string{"sshd", "sudo", "sudo-i", "su", "su-l", "login"} }

// Options selects what Check looks at. Zero values mean the defaults above.
type Options struct {
	PAMDir   string   // pam.d directory
	Services []string // PAM services to check; missing service files are skipped
	SSHDPath string   // sshd binary; when absent, the sshd checks are skipped with an Info
	// SSHDConfigFile is passed to `sshd -T -f` when set, and is the file
	// scanned to put line numbers on sshd findings (default DefaultSSHDConfig).
	SSHDConfigFile string
	// Users are evaluated one by one with `sshd -T -C user=...`, so Match
	// blocks (a ForceCommand for some users only) are seen. Normally the
	// users of latch.toml's [users].
	Users        []string
	HookPaths    []string // extra names or paths that identify the PAM hook (besides latch-check)
	GatePaths    []string // extra names or paths that identify the ForceCommand gate (besides latch-ssh)
	ServerListen bool     // latch.toml has [server] listen: the embedded server is a front end
}

// Check runs every check that can run here and returns the findings, most
// important first within each area (PAM, then sshd, then overall wiring).
func Check(ctx context.Context, o Options) []Finding {
	if o.PAMDir == "" {
		o.PAMDir = DefaultPAMDir
	}
	if len(o.Services) == 0 {
		o.Services = DefaultServices()
	}
	if o.SSHDPath == "" {
		o.SSHDPath = DefaultSSHDPath
	}
	out, hooked := checkPAM(o.PAMDir, o.Services, o.HookPaths)
	if !slices.Contains(o.Services, "sshd") {
		// UsePAM no only matters if the sshd stack has the hook, so look
		// even when the caller did not ask for the sshd service.
		_, h := checkPAM(o.PAMDir, []string{"sshd"}, o.HookPaths)
		hooked["sshd"] = h["sshd"]
	}
	anyHook := false
	for _, h := range hooked {
		anyHook = anyHook || h
	}

	gate := false
	if _, err := os.Stat(o.SSHDPath); err != nil {
		out = append(out, Finding{Severity: Info, File: clean(o.SSHDPath),
			Message: "sshd not found, so the sshd checks were skipped"})
	} else {
		var f []Finding
		f, gate = checkSSHDHere(ctx, o, hooked["sshd"])
		out = append(out, f...)
	}

	switch {
	case !anyHook && !gate && !o.ServerListen:
		hook := DefaultHookPath
		if len(o.HookPaths) > 0 && strings.HasPrefix(o.HookPaths[0], "/") {
			hook = clean(o.HookPaths[0])
		}
		out = append(out, Finding{Severity: Warning,
			Message: "no front end is wired: latch-ssh protects nothing yet",
			Fix: "add `account required pam_exec.so quiet seteuid " + hook + "` to " + clean(o.PAMDir) +
				"/sshd before `@include common-account` (recommended; packaging/pam has the sshd, sudo and su recipes), or `ForceCommand " +
				DefaultGatePath + "` with `DisableForwarding yes` and `PermitUserRC no` in sshd_config, " +
				"or set [server] listen in latch.toml for the embedded server"})
	case anyHook && !hooked["sshd"] && !gate:
		// Wired for sudo or su only: fine if intended, but admins usually
		// expect SSH to be covered first.
		out = append(out, Finding{Severity: Info, File: clean(o.PAMDir + "/sshd"),
			Message: "the PAM hook is wired for other services but not for sshd, and there is no ForceCommand gate: SSH logins are not gated"})
	}
	return dedupe(out)
}

// checkSSHDHere reads the effective sshd configuration (globally and per
// user), checks it, and puts sshd_config line numbers on the findings.
func checkSSHDHere(ctx context.Context, o Options, hookInSSHD bool) ([]Finding, bool) {
	global, err := runSSHDT(ctx, o.SSHDPath, o.SSHDConfigFile, "")
	if err != nil {
		return []Finding{{Severity: Error, File: "sshd -T",
			Message: "cannot read sshd's effective configuration: " + err.Error(),
			Fix:     "run check-config as root, and fix what sshd reports (sshd would not start with it either)"}}, false
	}
	var out []Finding
	perUser := map[string]SSHDConfig{}
	for _, u := range o.Users {
		if !plainUserName(u) {
			out = append(out, Finding{Severity: Warning, File: "sshd -T",
				Message: fmt.Sprintf("user %q skipped: not a plain user name, cannot be passed to sshd -C", clean(u))})
			continue
		}
		c, err := runSSHDT(ctx, o.SSHDPath, o.SSHDConfigFile, "user="+u+",host=localhost,addr=127.0.0.1")
		if err != nil {
			out = append(out, Finding{Severity: Warning, File: "sshd -T",
				Message: fmt.Sprintf("cannot evaluate sshd's configuration for user %s: %v", u, err)})
			continue
		}
		perUser[u] = c
	}

	cfgPath := o.SSHDConfigFile
	if cfgPath == "" {
		cfgPath = DefaultSSHDConfig
	}
	var lines []cfgLine
	scanSSHDConfig(cfgPath, 0, false, &lines)
	for _, f := range checkSSHD(global, perUser, hookInSSHD, o.GatePaths) {
		if l, ok := locate(lines, f.key, f.want); ok {
			f.File, f.Line = clean(l.file), l.n
		}
		out = append(out, f.Finding)
	}

	// The gate binary runs at every login of a gated user: same trust rules
	// as the PAM hook. A gate set only inside a Match block for users that
	// were not passed in is still "wired", so the overall warning is right.
	gate := false
	seen := map[string]bool{}
	for _, c := range append([]SSHDConfig{global}, mapValues(perUser)...) {
		if cmd, ok := gateCommand(c, o.GatePaths); ok {
			gate = true
			if !seen[cmd] {
				seen[cmd] = true
				if msg, fix := execProblem(cmd); msg != "" {
					f := Finding{Severity: Error, File: "sshd -T",
						Message: "ForceCommand gate " + msg, Fix: fix}
					if l, ok := locate(lines, "forcecommand", cmd); ok {
						f.File, f.Line = clean(l.file), l.n
					}
					out = append(out, f)
				}
			}
		}
	}
	for _, l := range lines {
		if l.key == "forcecommand" && l.match && !gate {
			if f := strings.Fields(l.value); len(f) > 0 && isNamed(f[0], "latch-ssh", o.GatePaths) {
				gate = true
				out = append(out, Finding{Severity: Info, File: clean(l.file), Line: l.n,
					Message: "the ForceCommand gate is set inside a Match block, but no user it matches was checked",
					Fix:     "run check-config with the users of [users] so each one is evaluated with sshd -T -C"})
			}
		}
	}
	return out, gate
}

func mapValues(m map[string]SSHDConfig) []SSHDConfig {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]SSHDConfig, 0, len(m))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// plainUserName accepts what useradd accepts in practice. Anything else
// (a comma, '=') would smuggle extra keys into sshd's -C argument.
func plainUserName(u string) bool {
	if u == "" || len(u) > 256 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '-' || r == '@' || r == '$'
		if !ok {
			return false
		}
	}
	return true
}
