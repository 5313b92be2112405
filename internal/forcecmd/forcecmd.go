// Package forcecmd is the ForceCommand gate: `latch-ssh` with no
// arguments, run by sshd for every session of a gated user through
//
//	Match Group latch-users
//	    ForceCommand /usr/bin/latch-ssh
//	    DisableForwarding yes
//	    PermitUserRC no
//
// (packaging/sshd/latch-ssh-forcecommand.conf). It runs as the person
// logging in, so it cannot read the configuration's secret: it asks the
// daemon (`latch-ssh serve`) over the gate socket compiled in at build time
// (internal/paths), and the daemon identifies it by SO_PEERCRED. On allow it
// replaces itself with what sshd would have run without ForceCommand, so
// exit codes, signals, stdin EOF and the scp/sftp/rsync/git byte streams
// pass untouched; on anything else it prints one line on stderr and exits 1.
//
// Started outside sshd (no SSH_CONNECTION nor SSH_ORIGINAL_COMMAND, one of
// which sshd always sets: a person typing latch-ssh at a terminal), it
// still refuses, but says what it is and points at `latch-ssh help`, and
// exits 2, like a usage error (issue 13, point 5): it asks nobody and never
// runs a shell.
//
// Its rules, each for a reason:
//   - Identity from the kernel (getuid) and NSS (getpwuid_r), never from
//     $USER, $LOGNAME, $HOME or $SHELL, which the client can set through
//     AcceptEnv.
//   - Nothing on stdout, ever: with a command, stdout is the protocol
//     stream of scp, sftp, rsync or git.
//   - Fail closed: daemon unreachable, a malformed answer, a timeout, or a
//     signal (SIGINT, SIGHUP, SIGTERM, SIGPIPE) while deciding all deny.
//   - The one-time code is asked only where a person is typing (stdin,
//     stdout and stderr are terminals and there is no command); elsewhere
//     the daemon asks Latch with /nootp.
//   - Root may decide in-process when it can read the configuration, so
//     the administrator is not locked out by a stopped daemon.
//   - The environment is read once and cleared: nothing in the gate (the
//     HTTP client of the in-process path included) can be steered by it,
//     and the shell gets it back unchanged, minus latch-ssh's own
//     variables.
package forcecmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

const (
	// service is the PAM-style service the gate decides for: "sshd", like
	// the PAM hook for sshd logins, so [operations] sshd = "..." applies to
	// both front ends. The daemon decides every caller but root for it
	// whatever the request says (see gatesocket.ForceCommandService).
	service = gatesocket.ForceCommandService
	// decisionTimeout bounds the wait for the daemon's answer (the daemon
	// bounds its Latch call by [latch] timeout, a few seconds). When a
	// one-time code is asked, the person has gate.OTPTimeout more.
	decisionTimeout = 30 * time.Second
	// denyLine is the refusal when the gate denies on its own; the daemon's
	// own refusals say more (a closed latch, a wrong code).
	denyLine = "latch-ssh: access denied"
	// exitDenied is the gate's exit status for every refusal.
	exitDenied = 1
	// exitNotSSHD is the exit status when the gate was not started by
	// sshd: a usage error, told apart from a refusal of a login.
	exitNotSSHD = 2
	// notSSHDLine says what the gate is to someone who ran it by hand.
	notSSHDLine = "latch-ssh: not started by sshd (no SSH_CONNECTION), so nothing to let in: with no arguments latch-ssh is the ForceCommand gate sshd runs for each login of a gated user. Run `latch-ssh help` for its commands."
)

// gateSignals are the signals that interrupt a decision, and deny.
func gateSignals() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE}
}

// Main runs the gate and returns the exit status on refusal; when the
// login is allowed it does not return (the process becomes the shell),
// except with status 1 when the shell cannot be started.
func Main() int {
	// Before anything can block: a hang-up or a kill while deciding must
	// deny, not kill the gate half-way or be ignored.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, gateSignals()...)
	env := os.Environ()
	os.Clearenv()
	r := &runner{
		uid: os.Getuid(), euid: os.Geteuid(), gid: os.Getgid(), egid: os.Getegid(),
		env:             env,
		interactive:     isTerminal(0) && isTerminal(1) && isTerminal(2),
		socket:          paths.GateSocket(),
		lookup:          lookupPasswd,
		findSFTP:        findSFTPServer,
		openTTY:         openControllingTTY,
		audit:           func() gate.Auditor { return gate.NewSyslogAudit() },
		stderr:          os.Stderr,
		sigs:            sigs,
		resetSignals:    func() { signal.Reset(gateSignals()...) },
		exec:            syscall.Exec,
		decisionTimeout: decisionTimeout,
		otpTimeout:      gate.OTPTimeout,
	}
	if r.uid == 0 {
		r.rootConfig = users.DefaultPath
	}
	code := r.run()
	drainTerminal(2)
	return code
}

// runner is one run of the gate, with every outside dependency a field so
// that tests can drive it in-process.
type runner struct {
	uid, euid, gid, egid int
	// env is the environment the gate was started with.
	env []string
	// interactive: stdin, stdout and stderr are terminals.
	interactive bool
	socket      string
	// rootConfig, when set, is the configuration to decide with in-process
	// if it can be opened (Main sets it only for root).
	rootConfig string
	lookup     func(uid int) (passwdEntry, error)
	findSFTP   func() (string, error)
	openTTY    func() (*os.File, error)
	// audit returns where the gate logs the denials it makes itself (and
	// the in-process decisions): syslog AUTHPRIV, never the person's
	// terminal.
	audit        func() gate.Auditor
	stderr       io.Writer
	sigs         <-chan os.Signal
	resetSignals func()
	// exec replaces the process; it returns only on failure.
	exec                        func(path string, argv, env []string) error
	decisionTimeout, otpTimeout time.Duration
	// register asks the daemon to track the session
	// (gatesocket.RegisterSession when nil).
	register func(ctx context.Context, socket string, req gatesocket.SocketRequest) (string, error)
}

// run decides and then execs the shell, or returns exitDenied.
func (r *runner) run() int {
	var tty ttyGuard
	defer tty.restore()
	command, hasCommand := lookupEnv(r.env, "SSH_ORIGINAL_COMMAND")
	req := gate.Request{
		Service:    service,
		RemoteAddr: safetext.Clean(remoteAddr(r.env)),
		// A person typing: a terminal on every standard descriptor (ssh -t
		// or an interactive login) and no command (scp, rsync, git run
		// commands even with -t).
		Interactive: r.interactive && !hasCommand,
		Command:     truncateCommand(command),
		FrontEnd:    gate.FrontEndForceCommand,
	}
	// A setuid or setgid gate would run the shell with someone else's
	// rights; Go programs must never be setuid anyway (design.md).
	if r.euid != r.uid || r.egid != r.gid {
		return r.refuse(req, denyLine, fmt.Sprintf("the gate is setuid or setgid (uid %d euid %d gid %d egid %d); remove the bits", r.uid, r.euid, r.gid, r.egid))
	}
	pw, err := r.lookup(r.uid)
	if err != nil {
		req.User = "uid=" + strconv.Itoa(r.uid)
		return r.refuse(req, denyLine, err.Error())
	}
	req.User = pw.Name
	// sshd sets SSH_CONNECTION for every session (and SSH_ORIGINAL_COMMAND
	// with a command). Without either, a person ran the gate by hand: tell
	// them what it is rather than a bare "access denied". Still a refusal,
	// decided before the daemon is asked; it is logged too, so an admin
	// whose SSH server sets neither sees why every login is refused. A
	// client cannot reach this branch to any advantage: it only refuses.
	if !startedBySSHD(r.env) {
		r.logDenial(req, "not started by sshd: neither SSH_CONNECTION nor SSH_ORIGINAL_COMMAND is set")
		fmt.Fprintln(r.stderr, notSSHDLine)
		return exitNotSSHD
	}
	// Planned before asking, so that a host that cannot serve the session
	// (internal-sftp without an sftp-server) says so without a Latch call.
	plan, err := planExec(pw.Shell, command, hasCommand, r.findSFTP)
	if err != nil {
		return r.refuse(req, "latch-ssh: "+safetext.Clean(err.Error()), err.Error())
	}

	allowed, msg := r.decide(&tty, req)
	if !allowed {
		fmt.Fprintln(r.stderr, msg)
		return exitDenied
	}
	// Before the shell runs, the daemon ties this login to its sshd
	// connection, so that closing the latch later ends it (rechecks,
	// internal/sessions). The daemon finds the connection from this
	// process's SO_PEERCRED pid; killing this process afterwards changes
	// nothing, since what it registered is sshd's monitor.
	if err := r.registerSession(req); err != nil {
		return r.refuse(req, denyLine, "allowed, but "+err.Error())
	}
	// Back to the dispositions the gate started with, so that the shell
	// gets what sshd gave (exec resets caught signals to their default and
	// keeps ignored ones ignored; Go catches SIGPIPE whatever it inherited,
	// so the shell always starts with SIGPIPE at its default). A signal
	// that arrived between the verdict and here still denies; one arriving
	// after it acts as it would on the shell.
	r.resetSignals()
	select {
	case s := <-r.sigs:
		return r.refuse(req, denyLine, "interrupted by "+s.String()+" after the decision")
	default:
	}
	err = r.exec(plan.Path, plan.Argv, sessionEnv(r.env))
	return r.refuse(req, "latch-ssh: cannot run "+safetext.Clean(plan.Path)+": "+safetext.Clean(err.Error()),
		"allowed, but exec "+plan.Path+" failed: "+err.Error())
}

// registerTimeout bounds the session registration: the daemon only reads
// /proc to answer.
const registerTimeout = 10 * time.Second

// registerSession asks the daemon to track the login (gatesocket
// OpRegister). It fails closed: a daemon that answered the decision but
// cannot be reached now, or refuses to track the login (rechecks on and
// fail_mode "closed"), denies. Root, who decided in-process from the
// configuration, goes on when no daemon runs, as it does for the decision.
func (r *runner) registerSession(req gate.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
	defer cancel()
	register := r.register
	if register == nil {
		register = gatesocket.RegisterSession
	}
	_, err := register(ctx, r.socket, gatesocket.SocketRequest{Service: req.Service, Remote: req.RemoteAddr})
	if err != nil && r.rootConfig != "" && !errors.Is(err, gatesocket.ErrNotTracked) {
		return nil
	}
	return err
}

// startedBySSHD reports whether env looks like a session sshd started: it
// always sets SSH_CONNECTION, and SSH_ORIGINAL_COMMAND with a command.
func startedBySSHD(env []string) bool {
	_, conn := lookupEnv(env, "SSH_CONNECTION")
	_, cmd := lookupEnv(env, "SSH_ORIGINAL_COMMAND")
	return conn || cmd
}

// refuse logs a denial the gate makes itself (the daemon logs its own),
// prints line on stderr and returns exitDenied.
func (r *runner) refuse(req gate.Request, line, reason string) int {
	r.logDenial(req, reason)
	fmt.Fprintln(r.stderr, line)
	return exitDenied
}

func (r *runner) logDenial(req gate.Request, reason string) {
	r.audit().Record(req, gate.Decision{Outcome: gate.Deny, Reason: "gate: " + safetext.Clean(reason), Severity: gate.Warning})
}

// verdict is the answer of one decision.
type verdict struct {
	allowed bool
	// message is the refusal line from the decision core, "" on allow.
	message string
	// err is a failure to get a decision at all (the daemon is down or
	// answered garbage).
	err error
}

// decide gets the verdict for req, bounded in time and interruptible by
// the gate's signals, and returns whether to go on and, if not, the line
// to print. The decision itself runs in a goroutine because
// gatesocket.AskDecision does not stop a blocked socket read when its context is
// cancelled; the gate gives up on it instead (the process exits).
func (r *runner) decide(tty *ttyGuard, req gate.Request) (bool, string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.NewTimer(r.decisionTimeout)
	defer timer.Stop()
	prompting := make(chan struct{}, 1)
	var otp func(prompt string) (string, error)
	if req.Interactive {
		otp = func(prompt string) (string, error) {
			select {
			case prompting <- struct{}{}:
			default:
			}
			f, err := r.openTTY()
			if err != nil {
				return "", err
			}
			defer f.Close()
			return readCode(ctx, f, tty, safetext.Clean(prompt), r.otpTimeout)
		}
	}
	done := make(chan verdict, 1)
	go func() { done <- r.ask(ctx, req, otp) }()
	for {
		select {
		case v := <-done:
			switch {
			case v.err != nil:
				r.logDenial(req, v.err.Error())
				return false, denyLine
			case v.allowed:
				return true, ""
			case v.message == "":
				return false, denyLine
			default:
				return false, v.message
			}
		case <-prompting:
			// The person now has their own time limit to type the code.
			timer.Reset(r.otpTimeout + r.decisionTimeout)
		case s := <-r.sigs:
			cancel()
			tty.restore()
			r.logDenial(req, "interrupted by "+s.String()+" while deciding")
			return false, denyLine
		case <-timer.C:
			cancel()
			tty.restore()
			r.logDenial(req, "no decision in time")
			return false, denyLine
		}
	}
}

// ask decides in-process when rootConfig can be read (root), else asks the
// daemon. otp is nil when nobody can type a code.
func (r *runner) ask(ctx context.Context, req gate.Request, otp func(string) (string, error)) verdict {
	if r.rootConfig != "" {
		if f, err := os.Open(r.rootConfig); err == nil {
			f.Close()
			return r.askCore(ctx, req, otp)
		}
	}
	resp, err := gatesocket.AskDecision(ctx, r.socket, gatesocket.SocketRequest{
		Service: req.Service, Interactive: req.Interactive, Command: req.Command, Remote: req.RemoteAddr,
	}, otp)
	if err != nil {
		return verdict{err: err}
	}
	return verdict{allowed: resp.Outcome == "allow", message: resp.Message}
}

// askCore is the decision of the daemon, made here: root can read the
// secret, and must not depend on the daemon running to log in.
func (r *runner) askCore(ctx context.Context, req gate.Request, otp func(string) (string, error)) verdict {
	core := gate.LoadCore(r.rootConfig, r.audit())
	defer core.Close()
	d := core.Decide(ctx, req)
	if d.Outcome == gate.AskOTP {
		code := ""
		if otp != nil {
			code, _ = otp("Latch one-time code: ")
		}
		d = core.Finish(req, d, code)
	}
	return verdict{allowed: d.Allowed(), message: d.Message()}
}
