package wiring

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SSHDConfig is sshd's effective configuration as `sshd -T` prints it:
// lower-case keyword -> values, one per output line (Port, HostKey,
// AcceptEnv, Subsystem... repeat).
type SSHDConfig map[string][]string

// Get returns the first value of key, or "" when sshd did not print it.
func (c SSHDConfig) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseSSHDT parses `sshd -T` output. Values are kept as printed (only
// surrounding space trimmed); keywords are lower-cased.
func ParseSSHDT(out []byte) SSHDConfig {
	c := SSHDConfig{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		c[k] = append(c[k], strings.TrimSpace(v))
	}
	return c
}

// sshdTimeout bounds one `sshd -T`, which reads files only and takes
// milliseconds; a hung NSS lookup in a Match must not hang check-config.
const sshdTimeout = 10 * time.Second

// EffectiveSSHD runs `sshdPath -T`, with `-C conn` when conn is set (for
// example "user=alice,host=localhost,addr=127.0.0.1", so Match blocks
// apply), and parses its output. The error includes sshd's stderr, cleaned
// of control characters.
func EffectiveSSHD(ctx context.Context, sshdPath string, conn string) (SSHDConfig, error) {
	return runSSHDT(ctx, sshdPath, "", conn)
}

// runSSHDT is EffectiveSSHD with an optional config file (-f).
func runSSHDT(ctx context.Context, sshdPath, cfgFile, conn string) (SSHDConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, sshdTimeout)
	defer cancel()
	args := []string{"-T"}
	if cfgFile != "" {
		args = append(args, "-f", cfgFile)
	}
	if conn != "" {
		args = append(args, "-C", conn)
	}
	cmd := exec.CommandContext(ctx, sshdPath, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		return nil, fmt.Errorf("%s %s: %v: %s", clean(sshdPath), clean(strings.Join(args, " ")), err, clean(msg))
	}
	return ParseSSHDT(stdout.Bytes()), nil
}

// sshdFinding is a Finding plus the sshd_config keyword (and a value it
// should contain) that Check uses to find the line to point at.
type sshdFinding struct {
	Finding
	key, want string
}

// CheckSSHD checks sshd's effective configuration: global is `sshd -T`,
// perUser maps user names to `sshd -T -C user=NAME,...`. pamHookInSSHD says
// whether the sshd PAM stack has the hook; gatePaths are extra names or
// paths of the ForceCommand gate (besides latch-ssh). Findings have File
// "sshd -T" and Line 0; Check replaces them with sshd_config lines.
func CheckSSHD(global SSHDConfig, perUser map[string]SSHDConfig, pamHookInSSHD bool, gatePaths []string) []Finding {
	var out []Finding
	for _, f := range checkSSHD(global, perUser, pamHookInSSHD, gatePaths) {
		out = append(out, f.Finding)
	}
	return out
}

// gateCommand returns ForceCommand's program when it is the latch-ssh gate.
func gateCommand(c SSHDConfig, gatePaths []string) (string, bool) {
	f := strings.Fields(c.Get("forcecommand"))
	if len(f) == 0 || !isNamed(f[0], "latch-ssh", gatePaths) {
		return "", false
	}
	return f[0], true
}

// riskyEnv are variables that make the user's shell run code of the
// client's choosing before it runs ForceCommand (bash reads BASH_ENV, sh
// ENV, bash imports functions, even one named /usr/bin/latch-ssh, from
// BASH_FUNC_*; the dynamic loader LD_*).
func riskyEnv() []string {
	return []string{"BASH_ENV", "ENV", "BASH_FUNC_x%%", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
		"PATH", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "ZDOTDIR", "IFS"}
}

// sshMatch is sshd's pattern match: '*' any run, '?' one character.
func sshMatch(pat, s string) bool {
	for pat != "" {
		switch pat[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if sshMatch(pat[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pat[0] {
				return false
			}
		}
		pat, s = pat[1:], s[1:]
	}
	return s == ""
}

// gateProblems are the ways a connection under ForceCommand latch-ssh can
// do something before, or without, the gate deciding.
func gateProblems(c SSHDConfig, gateFields []string) []sshdFinding {
	var out []sshdFinding
	add := func(sev Severity, msg, fix string) {
		out = append(out, sshdFinding{Finding{Severity: sev, Message: msg, Fix: fix}, "forcecommand", gateFields[0]})
	}
	if len(gateFields) > 1 {
		add(Warning, "ForceCommand gives latch-ssh arguments; the gate takes none (with arguments latch-ssh runs a subcommand, not the gate)",
			"ForceCommand "+clean(gateFields[0]))
	}
	// ForceCommand only replaces the command of a session channel: port,
	// socket, agent and X11 forwarding and tunnels (ssh -N -L/-R/-D) never
	// start a session, so the gate never runs for them.
	if c.Get("disableforwarding") != "yes" {
		off := c.Get("allowtcpforwarding") == "no" && c.Get("allowstreamlocalforwarding") == "no" &&
			c.Get("allowagentforwarding") == "no" && c.Get("x11forwarding") == "no" && c.Get("permittunnel") == "no"
		if off {
			add(Warning, "forwarding is off option by option, not with DisableForwarding yes: a later edit to one of them opens a path around the gate",
				"set `DisableForwarding yes`")
		} else {
			add(Error, "ForceCommand does not gate forwarding: `ssh -N -L/-R/-D`, agent and X11 forwarding and tunnels run without the gate; DisableForwarding yes turns off AllowTcpForwarding, AllowStreamLocalForwarding, AllowAgentForwarding, X11Forwarding and PermitTunnel at once (OpenSSH 7.4+)",
				"set `DisableForwarding yes` where ForceCommand is set")
		}
	}
	// ~/.ssh/rc runs as the user before ForceCommand: user code ahead of the gate.
	if c.Get("permituserrc") != "no" {
		add(Error, "~/.ssh/rc runs before ForceCommand, so a planted rc file runs before the gate decides",
			"set `PermitUserRC no` where ForceCommand is set")
	}
	// ~/.ssh/environment and authorized_keys environment="" set BASH_ENV,
	// LD_PRELOAD... for the shell that starts the gate.
	if v := c.Get("permituserenvironment"); v != "no" && v != "" {
		add(Error, "PermitUserEnvironment lets ~/.ssh/environment set BASH_ENV or LD_PRELOAD for the shell that starts the gate: code before the gate",
			"set `PermitUserEnvironment no`")
	}
	var risky []string
	for _, pat := range c["acceptenv"] {
		for _, p := range strings.Fields(pat) {
			if slices.ContainsFunc(riskyEnv(), func(v string) bool { return sshMatch(p, v) }) {
				risky = append(risky, clean(p))
			}
		}
	}
	if len(risky) > 0 {
		add(Error, "AcceptEnv "+strings.Join(risky, " ")+" lets the client set variables (BASH_ENV, LD_PRELOAD, BASH_FUNC_*...) that run code in the shell that starts the gate",
			"accept only LANG and LC_*")
	}
	return out
}

func checkSSHD(global SSHDConfig, perUser map[string]SSHDConfig, hook bool, gatePaths []string) []sshdFinding {
	if global == nil {
		return nil
	}
	var out []sshdFinding
	add := func(sev Severity, key, want, msg, fix string) {
		out = append(out, sshdFinding{Finding{Severity: sev, File: "sshd -T", Message: msg, Fix: fix}, key, want})
	}
	usePAM := global.Get("usepam") != "no"
	if hook && !usePAM {
		add(Error, "usepam", "", "sshd does not use PAM (UsePAM no), so the hook in /etc/pam.d/sshd never runs",
			"set `UsePAM yes` in sshd_config and restart sshd")
	}
	if hook && usePAM {
		// The hook sits in account, after authentication: worth knowing
		// how the person meets it, nothing to fix.
		if global.Get("kbdinteractiveauthentication") == "yes" {
			add(Info, "kbdinteractiveauthentication", "", "KbdInteractiveAuthentication yes: password logins go through the PAM auth stack first; the hook runs after it, in account, so a closed latch refuses after the password is typed", "")
		}
		if am := global.Get("authenticationmethods"); am != "" && am != "any" {
			add(Info, "authenticationmethods", "", "AuthenticationMethods "+clean(am)+": whichever methods succeed, sshd then runs the PAM account stack, so the hook still sees every login", "")
		}
	}

	users := make([]string, 0, len(perUser))
	for u := range perUser {
		users = append(users, u)
	}
	slices.Sort(users)
	type scoped struct {
		f   sshdFinding
		who []string
	}
	var groups []*scoped
	var gated, ungated []string
	for _, who := range append([]string{""}, users...) {
		c := global
		if who != "" {
			c = perUser[who]
		}
		if _, ok := gateCommand(c, gatePaths); !ok {
			if who != "" {
				ungated = append(ungated, clean(who)+" (ForceCommand "+clean(c.Get("forcecommand"))+")")
			}
			continue
		}
		gated = append(gated, who)
		for _, f := range gateProblems(c, strings.Fields(c.Get("forcecommand"))) {
			i := slices.IndexFunc(groups, func(g *scoped) bool { return g.f == f })
			if i < 0 {
				groups = append(groups, &scoped{f: f})
				i = len(groups) - 1
			}
			groups[i].who = append(groups[i].who, who)
		}
	}
	if len(gated) == 0 {
		return out
	}
	for _, g := range groups {
		g.f.File = "sshd -T"
		g.f.Message += " (" + scope(g.who) + ")"
		out = append(out, g.f)
	}
	first, _ := gateCommand(global, gatePaths)
	if first == "" {
		first, _ = gateCommand(perUser[gated[0]], gatePaths)
	}
	if len(ungated) > 0 {
		add(Info, "forcecommand", first, "the ForceCommand gate does not cover: "+strings.Join(ungated, ", "), "")
	}
	// sshd runs ForceCommand as `shell -c command`, and shells read the
	// user's own files first: Debian's bash (SSH_SOURCE_BASHRC) reads
	// ~/.bashrc when started by sshd, zsh always reads ~/.zshenv. That is
	// the same gap as ~/.ssh/rc, and no sshd option closes it.
	add(Warning, "forcecommand", first, "sshd starts ForceCommand through the user's login shell, which first reads the user's own startup files (~/.bashrc for Debian's bash under sshd, ~/.zshenv for zsh): a planted file runs before the gate",
		"prefer the PAM hook (`account required pam_exec.so quiet seteuid "+DefaultHookPath+"` in /etc/pam.d/sshd), or make those files root-owned for gated users")
	for _, s := range global["subsystem"] {
		if f := strings.Fields(s); len(f) >= 2 && f[0] == "sftp" && f[1] == "internal-sftp" {
			add(Info, "subsystem", "", "Subsystem sftp internal-sftp under the gate: the gate maps internal-sftp to the system sftp-server (OK)", "")
		}
	}
	return out
}

// scope names where a problem applies: the global settings and/or users.
func scope(who []string) string {
	var parts []string
	var users []string
	for _, w := range who {
		if w == "" {
			parts = append(parts, "global settings")
		} else {
			users = append(users, clean(w))
		}
	}
	if len(users) == 1 {
		parts = append(parts, "user "+users[0])
	} else if len(users) > 1 {
		parts = append(parts, "users "+strings.Join(users, ", "))
	}
	return strings.Join(parts, "; ")
}

// cfgLine is one keyword line of sshd_config or a file it includes.
type cfgLine struct {
	file       string
	n          int
	key, value string
	match      bool // inside a Match block
}

// scanSSHDConfig lists the keyword lines of path and its Includes in the
// order sshd reads them, only to put line numbers on findings: the
// configuration itself always comes from `sshd -T`.
func scanSSHDConfig(path string, depth int, inMatch bool, out *[]cfgLine) {
	data, err := readSmall(path)
	if err != nil || depth > 16 {
		return
	}
	m := inMatch
	for i, raw := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(raw)
		if s == "" || s[0] == '#' {
			continue
		}
		j := strings.IndexAny(s, " \t=")
		if j < 0 {
			j = len(s)
		}
		key := strings.ToLower(s[:j])
		val := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s[j:]), "="))
		*out = append(*out, cfgLine{path, i + 1, key, val, m})
		switch key {
		case "match":
			m = true
		case "include":
			for _, pat := range strings.Fields(val) {
				if !filepath.IsAbs(pat) {
					pat = filepath.Join("/etc/ssh", pat) // sshd's SSHDIR
				}
				files, _ := filepath.Glob(pat)
				for _, f := range files {
					scanSSHDConfig(f, depth+1, m, out)
				}
			}
		}
	}
}

// locate finds the line that sets key (with want in its value, if given),
// preferring one outside Match blocks.
func locate(lines []cfgLine, key, want string) (cfgLine, bool) {
	var found []cfgLine
	for _, l := range lines {
		if l.key == key && (want == "" || strings.Contains(l.value, want)) {
			found = append(found, l)
		}
	}
	if len(found) == 0 {
		return cfgLine{}, false
	}
	if i := slices.IndexFunc(found, func(l cfgLine) bool { return !l.match }); i >= 0 {
		return found[i], true
	}
	return found[0], true
}
