package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

// Exit codes of pair, unpair and status.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// daemonLimit bounds a self-service exchange with the daemon: see callDaemon.
const daemonLimit = 3 * time.Minute

// pairingCall is what pair, unpair and status share once their flags are
// read: who runs the command, on whom, and how.
type pairingCall struct {
	cmd        string // "pair", "unpair" or "status"
	configPath string
	// user is the local user acted on.
	user string
	// direct is true for root, who runs the Manager on the configuration
	// itself; everyone else asks the daemon, which holds the secret.
	direct bool
	// userGiven is true when --user named the user.
	userGiven bool
}

// pairingFlags parses the flags common to pair, unpair and status (and
// those extra adds), checks who may do what, and returns the call and the
// remaining arguments. When ok is false, the command exits with code.
//
// Identity comes from the kernel (the effective uid, resolved through
// NSS), never from $USER: a non-root caller can only act on themselves, and
// the daemon checks that again from SO_PEERCRED.
func pairingFlags(cmd, synopsis, help string, args []string, stdout, stderr io.Writer, extra func(*flag.FlagSet)) (c pairingCall, rest []string, code int, ok bool) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.StringVar(&c.configPath, "c", users.DefaultPath, "configuration file `FILE` (root only)")
	target := fs.String("user", "", "act on the local user `USER` (root only; default: yourself)")
	if extra != nil {
		extra(fs)
	}
	if code, done := parseFlags(fs, synopsis, help, args, stdout, stderr); done {
		return c, nil, code, false
	}
	c.cmd, c.userGiven = cmd, *target != ""
	euid := os.Geteuid()
	self, err := user.LookupId(strconv.Itoa(euid))
	if err != nil {
		printError(stderr, cmd, fmt.Sprintf("cannot find your user name (uid %d): %v", euid, err))
		return c, nil, exitFailed, false
	}
	c.user = self.Username
	if euid == 0 {
		c.direct = true
		if *target != "" {
			c.user = *target
		}
		return c, fs.Args(), exitOK, true
	}
	if !configAllowed(cmd, c.configPath, euid, stderr) {
		return c, nil, exitUsage, false
	}
	if *target != "" && *target != self.Username {
		printError(stderr, cmd, "only root can "+cmd+" another user (leave out --user to act on yourself)")
		return c, nil, exitUsage, false
	}
	return c, fs.Args(), exitOK, true
}

// manager returns the Manager root uses on the configuration.
func (c pairingCall) manager() *pairing.Manager {
	return &pairing.Manager{ConfigPath: c.configPath}
}

// signalContext is cancelled by SIGINT, SIGTERM and SIGHUP, so an
// interrupted command stops waiting for Latch (a pairing whose [users]
// line could not be written is still undone: see pairing.Manager).
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// callDaemon sends a self-service request to the daemon at the socket
// compiled into this binary (never one named by the caller). The deadline
// covers the daemon's own Latch calls (pairing and, if the edit fails,
// undoing it), whose timeout only the root-only configuration knows.
func callDaemon(ctx context.Context, req gatesocket.SocketRequest) (gatesocket.SocketResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, daemonLimit)
	defer cancel()
	resp, err := gatesocket.CallSelfService(ctx, paths.GateSocket(), req)
	if errors.Is(err, gatesocket.ErrDaemon) {
		return resp, fmt.Errorf("the latch-ssh daemon is not running (ask an administrator to start latch-ssh.service): %w", err)
	}
	return resp, err
}

// finish prints the outcome of pair or unpair and returns the exit code.
func finish(cmd, msg string, err error, stdout, stderr io.Writer) int {
	if err != nil {
		printError(stderr, cmd, err.Error())
		return exitFailed
	}
	printLines(stdout, msg)
	return exitOK
}

// finishDirect is finish for root's pair and unpair, which edit the file
// themselves: then the running daemon, if any, is told to put the file in
// force, and the command returns only once it has, so the ForceCommand
// gate, the embedded server and rechecks follow the change at once
// (latch-check reads the file at each login anyway). It is told even after
// a failure: an unpair Latch could not be told about has still removed
// the line. When the daemon cannot confirm, the exit code is 1, like any
// change done only in part.
func finishDirect(ctx context.Context, configPath, cmd, msg string, err error, stdout, stderr io.Writer) int {
	code := finish(cmd, msg, err, stdout, stderr)
	// An interrupted command still tells the daemon what it did.
	applyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := gatesocket.ApplyToDaemon(applyCtx, daemonSocket(configPath)); err != nil {
		printError(stderr, cmd, err.Error())
		return exitFailed
	}
	return code
}

// daemonSocket is the socket of the daemon serving the configuration at
// path: its [daemon] socket, which root can read, else the one built in.
func daemonSocket(path string) string {
	if cfg, err := users.Load(path); err == nil && cfg.Daemon.Socket != "" {
		return cfg.Daemon.Socket
	}
	return paths.GateSocket()
}

// finishDaemon is finish for an answer from the daemon.
func finishDaemon(cmd string, resp gatesocket.SocketResponse, err error, stdout, stderr io.Writer) int {
	switch {
	case err != nil:
		return finish(cmd, "", err, stdout, stderr)
	case !resp.OK:
		msg := resp.Message
		if msg == "" {
			msg = "the latch-ssh daemon refused the request"
		}
		return finish(cmd, "", errors.New(msg), stdout, stderr)
	}
	return finish(cmd, resp.Message, nil, stdout, stderr)
}

// printError prints "latch-ssh CMD: msg", each line cleaned of control
// characters (a message may quote Latch or a user).
func printError(w io.Writer, cmd, msg string) {
	printLines(w, "latch-ssh "+cmd+": "+msg)
}

// printLines prints s line by line, each cleaned of control characters.
func printLines(w io.Writer, s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintln(w, safetext.Clean(l))
	}
}
