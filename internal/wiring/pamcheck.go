package wiring

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CheckPAM checks how the latch-check hook is wired in each of services
// under dir (normally /etc/pam.d). Service files that do not exist are
// skipped. The hook is a pam_exec line whose command is named latch-check,
// or is (or is named like) one of hookPaths. A service without the hook
// gives no finding: whether that matters is the caller's decision.
func CheckPAM(dir string, services []string, hookPaths []string) []Finding {
	f, _ := checkPAM(dir, services, hookPaths)
	return f
}

// checkPAM also reports which services have the hook anywhere in their stack.
func checkPAM(dir string, services, hookPaths []string) ([]Finding, map[string]bool) {
	var out []Finding
	hooked := map[string]bool{}
	for _, svc := range services {
		st, err := ParsePAMService(dir, svc)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			out = append(out, Finding{Severity: Error, File: clean(filepath.Join(dir, svc)),
				Message: "cannot read the PAM service: " + clean(err.Error())})
			continue
		}
		out = append(out, st.Problems...)
		f, ok := checkStack(dir, st, hookPaths)
		out = append(out, f...)
		hooked[svc] = ok
	}
	return dedupe(out), hooked
}

// hookExec is how pam_exec reads its arguments: options up to the first
// word that starts with '/' or is not an option; that word is the command.
type hookExec struct {
	opts []string
	cmd  string
}

func parseExec(args []string) hookExec {
	for i, a := range args {
		la := strings.ToLower(a)
		switch {
		case strings.HasPrefix(a, "/"):
		case la == "debug" || la == "stdout" || la == "seteuid" || la == "quiet" ||
			la == "quiet_log" || la == "expose_authtok" ||
			strings.HasPrefix(la, "log=") || strings.HasPrefix(la, "type="):
			continue
		}
		return hookExec{opts: args[:i], cmd: a}
	}
	return hookExec{opts: args}
}

func (e hookExec) has(opt string) bool {
	return slices.ContainsFunc(e.opts, func(o string) bool { return strings.EqualFold(o, opt) })
}

// isNamed says whether cmd is the program base (latch-check, latch-ssh) or
// one of the extra paths or names the caller gave.
func isNamed(cmd, base string, extra []string) bool {
	if filepath.Base(cmd) == base {
		return true
	}
	return slices.ContainsFunc(extra, func(p string) bool { return cmd == p || filepath.Base(cmd) == filepath.Base(p) })
}

func hookOf(l PAMLine, hookPaths []string) (hookExec, bool) {
	if filepath.Base(l.Module) != "pam_exec.so" {
		return hookExec{}, false
	}
	e := parseExec(l.Args)
	return e, e.cmd != "" && isNamed(e.cmd, "latch-check", hookPaths)
}

// setuidServices are the PAM services of setuid-root programs that any user
// may start: su, sudo, the password and shell changers, newgrp, polkit's
// helper. Their PAM stack runs with the caller's real uid, and pam_exec
// runs the command with that real uid unless told `seteuid`, so the caller
// may signal the hook: SIGSTOP it past its Latch deadline, and fail_mode =
// "open" turns the timeout it wakes up to into an allow. (sshd, login and
// cron run PAM as root: there seteuid changes nothing.)
var setuidServices = []string{"su", "su-l", "sudo", "sudo-i", "passwd", "chfn", "chsh", "newgrp", "polkit-1"}

// needsSeteuid says whether a hook line in file, reached from service,
// must have seteuid: in a setuid program's service, or in a file the
// service includes (common-account and its like), which every other
// service including it runs too, su and sudo among them.
func needsSeteuid(dir, service, file string) bool {
	return slices.Contains(setuidServices, service) || filepath.Clean(file) != filepath.Join(dir, service)
}

// recipe is the line to add to a service: the shipped one, with the hook
// path the admin already uses. seteuid everywhere: it changes nothing
// where PAM runs as root, and a line copied into su or common-account
// stays safe.
func recipe(_, cmd string) string {
	return "account required pam_exec.so quiet seteuid " + cmd
}

func at(l PAMLine) string { return fmt.Sprintf("%s:%d", clean(l.File), l.Line) }

// text rebuilds a line for messages.
func (l PAMLine) text() string {
	t := l.Type
	if l.Dash {
		t = "-" + t
	}
	return clean(strings.Join(append([]string{t, l.Control, l.Module}, l.Args...), " "))
}

func checkStack(dir string, st *PAMStack, hookPaths []string) ([]Finding, bool) {
	var out []Finding
	add := func(sev Severity, l PAMLine, msg, fix string) {
		out = append(out, Finding{Severity: sev, File: clean(l.File), Line: l.Line, Message: msg, Fix: fix})
	}
	var hooks []PAMLine
	var acct []PAMLine
	for _, l := range st.Lines {
		if l.Type == "account" {
			acct = append(acct, l)
		}
		if _, ok := hookOf(l, hookPaths); ok {
			hooks = append(hooks, l)
		}
	}
	if len(hooks) == 0 {
		return nil, false
	}
	checked := map[string]bool{}
	types := map[string]bool{}
	for _, l := range hooks {
		types[l.Type] = true
		e, _ := hookOf(l, hookPaths)
		cmd := clean(e.cmd)
		if !checked[e.cmd] {
			checked[e.cmd] = true
			if msg, fix := execProblem(e.cmd); msg != "" {
				add(Error, l, "the hook "+msg, fix)
			}
		}
		// pam_exec's type= option makes it return PAM_IGNORE in every
		// other stack: in account that silently disables the hook.
		for _, o := range e.opts {
			if v, ok := strings.CutPrefix(strings.ToLower(o), "type="); ok && l.Type == "account" && v != "account" {
				add(Error, l, fmt.Sprintf("pam_exec option %s skips the hook in the account stack: it never runs", clean(o)),
					"remove "+clean(o))
			}
		}
		if !e.has("seteuid") && needsSeteuid(dir, st.Service, l.File) {
			add(Error, l, "setuid programs (su, sudo) run this line, or may through an include: without `seteuid` pam_exec runs latch-check with the caller's real uid, so the caller can stop it (SIGSTOP) past its Latch deadline, and with fail_mode = \"open\" the timeout lets them in; latch-check now refuses that fail-open, which denies everyone here during a Latch outage",
				"add seteuid before the command: `"+recipe(st.Service, cmd)+"`")
		}
		if !e.has("quiet") {
			add(Info, l, "without `quiet`, pam_exec also tells the person \""+cmd+" failed: exit code 1\" on each refusal",
				"add quiet before the command")
		}
		if e.has("stdout") {
			add(Info, l, "with `stdout`, the refusal line latch-check prints is shown to the person", "")
		}
		if e.has("expose_authtok") {
			add(Info, l, "`expose_authtok` hands the password to latch-check, which never reads it", "remove expose_authtok")
		}
	}

	first := hooks[0]
	firstCmd := clean(parseExec(first.Args).cmd)
	if !types["account"] {
		// sshd runs only account and session for public-key logins; auth
		// runs for passwords. session runs after the login is accepted.
		msg := fmt.Sprintf("the hook is in the %s stack only, which not every login runs: put the hook in the account stack", first.Type)
		if types["auth"] {
			msg = "public-key SSH logins skip the auth stack: put the hook in the account stack"
		}
		add(Error, first, msg, fmt.Sprintf("add `%s` to %s (before other account lines)", recipe(st.Service, firstCmd), clean(filepath.Join(dir, st.Service))))
		return out, true
	}
	if st.Service == "sshd" && !types["session"] {
		// Issue 16: the daemon tracks every login it allows at account
		// time; the session line covers the logins the hook decided
		// alone and tells the daemon when a session closes.
		add(Warning, first, "the hook is in sshd's account stack but not in its session stack: a login the hook decided alone "+
			"(the daemon down or restarting) is not tracked, so closing the latch will not end that session",
			fmt.Sprintf("add `session optional pam_exec.so quiet seteuid %s` to %s", firstCmd, clean(filepath.Join(dir, st.Service))))
	}
	if types["auth"] {
		for _, l := range hooks {
			if l.Type == "auth" {
				add(Info, l, "the hook is in auth as well as account: password logins ask Latch twice", "remove the auth line")
				break
			}
		}
	}

	for i, l := range acct {
		if _, ok := hookOf(l, hookPaths); !ok {
			continue
		}
		switch l.Control {
		case "required", "requisite":
		case "optional", "sufficient":
			add(Error, l, fmt.Sprintf("with control %q the hook cannot deny: Linux-PAM ignores a failing %s module when another module succeeds", l.Control, l.Control),
				"use required: `"+recipe(st.Service, clean(parseExec(l.Args).cmd))+"`")
		default:
			// pam_exec turns every non-zero exit into PAM_SYSTEM_ERR; the
			// bracket decides whether that denies.
			if a := action(l.Actions, "system_err"); a != "bad" && a != "die" {
				add(Error, l, fmt.Sprintf("the hook cannot deny: pam_exec reports every refusal as system_err, and this control maps it to %q", clean(a)),
					"use required")
			} else {
				add(Warning, l, fmt.Sprintf("bracket control on the hook: it denies only while system_err (every refusal) maps to bad or die, as it does now (%s)", clean(a)),
					"use required, which cannot be loosened by accident")
			}
		}
		for j := range i {
			if why := skipsOver(acct, j, i); why != "" {
				msg := fmt.Sprintf("`%s` (%s) can end or jump over the account stack before the hook at %s, which then does not run for those logins",
					acct[j].text(), why, at(l))
				if strings.HasPrefix(why, "new_authtok_reqd") {
					// Debian's common-account: pam_unix says new_authtok_reqd
					// for an expired password, sshd accepts that and lets the
					// person change it and log in.
					msg += " (a user whose password has expired)"
				}
				add(Warning, acct[j], msg, "move the hook line above this line, or above the include that brings it in")
			}
		}
	}
	return out, true
}

// skipsOver says how acct[j] can stop acct[h] (j < h) from running, following
// Linux-PAM's dispatcher: "done" ends the stack (or the substack it is in),
// a number N skips the next N entries of its level, a substack counting as
// one. "" when it cannot. required/requisite only ever deny, so never skip.
func skipsOver(acct []PAMLine, j, h int) string {
	l := acct[j]
	if l.Control == "sufficient" {
		if doneReaches(acct, j, h) {
			return "sufficient: a success ends the stack"
		}
		return ""
	}
	keys := make([]string, 0, len(l.Actions))
	for k := range l.Actions {
		keys = append(keys, k)
	}
	// success first: it is the common case and the most telling.
	slices.SortFunc(keys, func(a, b string) int {
		if (a == "success") != (b == "success") {
			if a == "success" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		a := l.Actions[k]
		if a == "done" && doneReaches(acct, j, h) {
			return clean(k + "=done")
		}
		if n, err := strconv.Atoi(a); err == nil && n > 0 && jumpReaches(acct, j, h, n) {
			return clean(k + "=" + a)
		}
	}
	return ""
}

func doneReaches(acct []PAMLine, j, h int) bool {
	for k := j + 1; k <= h; k++ {
		if acct[k].Level < acct[j].Level {
			return false
		}
	}
	return true
}

func jumpReaches(acct []PAMLine, j, h, n int) bool {
	lvl, k := acct[j].Level, j
	for ; n > 0 && k+1 < len(acct) && acct[k+1].Level >= lvl; n-- {
		k++
		for k+1 < len(acct) && acct[k+1].Level > lvl {
			k++
		}
	}
	return h <= k
}
