// Command latch-check is the PAM hook of latch-ssh. Under pam_exec:
//
//	account required pam_exec.so quiet seteuid /usr/sbin/latch-check
//	session optional pam_exec.so quiet seteuid /usr/sbin/latch-check
//
// the account line decides every login of the PAM service (public-key SSH
// logins included, since sshd runs the account stack for them) from
// PAM_USER and PAM_SERVICE, and exits 0 to allow or 1 to deny. The session
// line decides nothing: at open_session it asks the daemon to track the
// session, so that closing the latch later ends it, and at close_session
// to forget it (session.go); it always exits 0. By hand:
//
//	latch-check [-c FILE] [--service NAME] USER
//
// exits 0 when USER may log in, 1 when not (a fail-closed error included),
// 2 on bad usage, with the reason on stderr.
//
// It trusts nothing else from the environment: the whole environment is
// cleared before the configuration is read, so HTTPS_PROXY, SSL_CERT_FILE,
// GODEBUG or LOCALDOMAIN set by whoever started it change nothing. It never
// reads stdin and never prompts.
//
// As root, it has the daemon (`latch-ssh serve`) decide when one runs,
// over its warm Latch connection, and decides itself otherwise (daemon.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/helptext"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/version"
	"github.com/latch-ssh/latch-ssh/users"
)

// Exit codes.
const (
	exitAllow = 0
	exitDeny  = 1
	exitUsage = 2
)

func main() {
	// First of all: from here on a stop is noticed (see tamperWatch).
	watch := newTamperWatch()
	env := os.Environ()
	// Clear the environment before anything else reads it. Unsetting
	// GODEBUG also resets the runtime's GODEBUG settings (the runtime
	// re-reads it on change), so a hostile value cannot weaken TLS.
	os.Clearenv()
	os.Exit(runWith(hooks{accounts: gate.NSSAccounts{}, failOpenGuard: watch.guard},
		os.Args[1:], env, os.Geteuid(), os.Stdout, os.Stderr, gate.NewSyslogAudit()))
}

// hooks are what main gives runWith beyond its arguments: the NSS account
// lookup (tests stand in for a case-insensitive directory) and the guard
// of fail-opens (nil in tests that call run).
type hooks struct {
	accounts      gate.AccountLookup
	failOpenGuard func(timeout time.Duration) (why, fix string)
}

// pamItems are the PAM items pam_exec exports.
type pamItems struct {
	typ, user, service, rhost, sshConnection string
}

// readPAMItems takes the PAM items from the environment pam_exec built.
// pam_exec appends its own items after the PAM environment list, so when a
// name appears twice the last one is pam_exec's; Go's os.Getenv would
// return the first. A PAM_USER that appears twice with different values is
// refused outright.
func readPAMItems(env []string) (pamItems, error) {
	var p pamItems
	seen := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if old, dup := seen[k]; dup && old != v && (k == "PAM_USER" || k == "PAM_SERVICE" || k == "PAM_TYPE") {
			return pamItems{}, fmt.Errorf("%s appears twice in the environment with different values", k)
		}
		seen[k] = v
	}
	p.typ, p.user, p.service = seen["PAM_TYPE"], seen["PAM_USER"], seen["PAM_SERVICE"]
	p.rhost, p.sshConnection = seen["PAM_RHOST"], seen["SSH_CONNECTION"]
	return p, nil
}

func run(args []string, env []string, euid int, stdout, stderr io.Writer, audit gate.Auditor) int {
	return runWith(hooks{accounts: gate.NSSAccounts{}}, args, env, euid, stdout, stderr, audit)
}

// runWith is run with the hooks given.
func runWith(h hooks, args []string, env []string, euid int, stdout, stderr io.Writer, audit gate.Auditor) int {
	fs := flag.NewFlagSet("latch-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("c", users.DefaultPath, "configuration file `FILE` (honoured only for root)")
	service := fs.String("service", "", "decide for the PAM service `NAME` (default: PAM_SERVICE, or \"sshd\")")
	showVersion := fs.Bool("version", false, "print the version and exit")
	// The usage line names every flag as the list below spells it (issue
	// 13, point 5; helptext).
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: latch-check [-c FILE] [--service NAME] USER\n"+
			"       latch-check [--version]\n"+
			"Decides whether USER may log in, as the PAM hook does. Under pam_exec, with no USER:\n"+
			"    account required pam_exec.so quiet seteuid /usr/sbin/latch-check\n"+
			"    session optional pam_exec.so quiet seteuid /usr/sbin/latch-check   (tracks the session)\n"+
			"Exit status: 0 allowed, 1 denied, 2 bad usage.\n")
		helptext.PrintFlags(w, fs)
	}
	fs.Usage = func() {} // printed below, where it belongs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Asked for help (-h, --help; not "help", which may be a
			// user's name): not a decision. On stdout, so it pipes to less.
			usage(stdout)
			return 0
		}
		usage(stderr)
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "latch-check", version.String())
		return exitAllow
	}
	pam, err := readPAMItems(env)
	if err != nil {
		fmt.Fprintln(stdout, "latch-ssh: access denied")
		audit.Record(gate.Request{Service: "pam"}, gate.Decision{Outcome: gate.Deny, Reason: err.Error(), Severity: gate.Error})
		return exitDeny
	}
	underPAM := pam.typ != ""
	configGiven := false
	fs.Visit(func(f *flag.Flag) { configGiven = configGiven || f.Name == "c" })
	if configGiven && euid != 0 {
		fmt.Fprintln(stderr, "latch-check: -c is honoured only for root")
		return exitUsage
	}

	req := gate.Request{Service: *service, FrontEnd: gate.FrontEndPAM}
	if underPAM {
		if fs.NArg() != 0 {
			fmt.Fprintln(stderr, "latch-check: no USER argument under pam_exec: the user comes from PAM_USER")
			return exitUsage
		}
		switch pam.typ {
		case "password":
			// Nothing to decide: the login was decided before.
			return exitAllow
		case "open_session", "close_session":
			// Not a decision (account decided): the session is tracked
			// for rechecks (session.go).
		case "auth", "account":
		default:
			fmt.Fprintln(stdout, "latch-ssh: access denied")
			audit.Record(gate.Request{User: pam.user, Service: pam.service},
				gate.Decision{Outcome: gate.Deny, Reason: "unknown PAM_TYPE " + safetext.Clean(pam.typ), Severity: gate.Error})
			return exitDeny
		}
		req.User = pam.user
		if req.Service == "" {
			req.Service = pam.service
		}
		req.RemoteAddr = remoteAddr(pam)
	} else {
		if fs.NArg() != 1 {
			usage(stderr)
			return exitUsage
		}
		req.User = fs.Arg(0)
	}
	if req.Service == "" {
		req.Service = "sshd"
	}
	// PAM_USER is the name the client typed, which NSS may resolve to an
	// account of another name (case-insensitive LDAP and SSSD back ends:
	// "ALICE" logs in as alice). Log the account that logs in, as the
	// daemon and the embedded server do. The decision itself goes by the
	// account's uid (gate.Core resolves the name again: a name NSS does
	// not know is denied unless [users] maps it).
	if acct, err := h.accounts.LookupAccount(req.User); err == nil && acct.Name != "" {
		req.User = acct.Name
	}

	if pam.typ == "open_session" || pam.typ == "close_session" {
		trackSession(*configPath, pam.typ, req, euid, audit)
		return exitAllow
	}

	core := gate.LoadCore(*configPath, audit)
	defer core.Close()
	core.Accounts = h.accounts
	core.FailOpenGuard = h.failOpenGuard
	// As root, the daemon decides when it runs (daemon.go).
	d, ok := gate.Decision{}, false
	if core.Config != nil && euid == 0 {
		d, ok = decideViaDaemon(h, core, *configPath, req, underPAM, audit)
	}
	if !ok {
		d = core.Decide(context.Background(), req)
	}
	if d.Allowed() {
		if !underPAM {
			fmt.Fprintf(stderr, "allowed: %s\n", d.Reason)
		}
		return exitAllow
	}
	if underPAM {
		// Seen only when the admin adds pam_exec's "stdout" option.
		fmt.Fprintln(stdout, d.Message())
	} else {
		fmt.Fprintf(stderr, "denied: %s\n", d.Reason)
		if d.Fix != "" {
			fmt.Fprintf(stderr, "fix: %s\n", d.Fix)
		}
	}
	return exitDeny
}

// remoteAddr is the client address: the first field of SSH_CONNECTION when
// sshd set it, else PAM_RHOST.
func remoteAddr(p pamItems) string {
	if f := strings.Fields(p.sshConnection); len(f) >= 1 {
		return f[0]
	}
	return p.rhost
}
