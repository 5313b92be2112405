package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

const statusHelp = `Shows whether a local user is paired with a Latch account and the live
state of each of their latches: the application's, and the operation of
every service in [operations]. Asking never sends a one-time code to the
phone.
Root asks about any user; others about themselves, through the latch-ssh
daemon, if the administrator set allow_self_pairing = true.
With --sessions (root only), lists instead the OpenSSH and su/sudo
sessions the daemon tracks to end them when their latch closes: user,
front end (pam or forcecommand), service, the process that stands for the
login, terminal, since when, and the last recheck.
Exit 0: shown; 1: not shown, or some latch could not be read (state
"error"); 2: bad usage.`

// runStatus implements `latch-ssh status [--user U] [-c FILE] [--json]`.
func runStatus(args []string, stdout, stderr io.Writer) int {
	var asJSON, listSessions bool
	c, rest, code, ok := pairingFlags("status", "status [--user USER] [-c FILE] [--json] [--sessions]", statusHelp, args, stdout, stderr,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the status as JSON, for scripts")
			fs.BoolVar(&listSessions, "sessions", false, "list the sessions the daemon tracks (root only)")
		})
	if !ok {
		return code
	}
	if len(rest) != 0 {
		printError(stderr, "status", "takes no arguments (use --user USER to name the user)")
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	if listSessions {
		return statusSessions(ctx, c, asJSON, stdout, stderr)
	}
	var st gatesocket.UserStatus
	if c.direct {
		direct, err := c.manager().Status(ctx, c.user)
		if err != nil {
			return finish("status", "", err, stdout, stderr)
		}
		// The daemon's wire form, so that --json prints the same whichever
		// way the status came.
		st = gatesocket.WireStatus(direct)
	} else {
		resp, err := callDaemon(ctx, gatesocket.SocketRequest{Op: gatesocket.OpStatus})
		if err == nil && resp.OK && resp.Status == nil {
			err = errors.New("the latch-ssh daemon answered without a status")
		}
		if err != nil || !resp.OK {
			return finishDaemon("status", resp, err, stdout, stderr)
		}
		st = *resp.Status
	}
	st = cleanStatus(st)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			printError(stderr, "status", err.Error())
			return exitFailed
		}
	} else {
		fmt.Fprint(stdout, formatStatus(st))
	}
	for _, l := range st.Latches {
		if l.State == pairing.StateError {
			return exitFailed
		}
	}
	return exitOK
}

// statusSessions prints the daemon's tracked sessions (root only: the
// daemon refuses anyone else).
func statusSessions(ctx context.Context, c pairingCall, asJSON bool, stdout, stderr io.Writer) int {
	if !c.direct {
		printError(stderr, "status", "only root can list the tracked sessions")
		return exitUsage
	}
	socket := paths.GateSocket()
	if cfg, err := users.Load(c.configPath); err == nil {
		socket = cfg.Daemon.Socket
	}
	ctx, cancel := context.WithTimeout(ctx, daemonLimit)
	defer cancel()
	list, err := gatesocket.ListSessions(ctx, socket)
	if err != nil {
		printError(stderr, "status", "cannot list the sessions (is latch-ssh.service running?): "+err.Error())
		return exitFailed
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			printError(stderr, "status", err.Error())
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprint(stdout, formatSessions(list))
	return exitOK
}

// formatSessions renders the tracked sessions for people:
//
//	USER   FRONT END  SERVICE  PID   TTY    SINCE                LAST RECHECK
//	alice  pam        sshd     4242  pts/3  2026-12-07 10:00:01  10:04:31 kept
func formatSessions(list []gatesocket.SessionInfo) string {
	if len(list) == 0 {
		return "no tracked sessions\n"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tFRONT END\tSERVICE\tPID\tTTY\tSINCE\tLAST RECHECK")
	for _, s := range list {
		last := "-"
		if !s.LastCheck.IsZero() {
			last = s.LastCheck.Local().Format(time.TimeOnly) + " " + s.LastResult
		}
		tty := s.TTY
		if tty == "" {
			tty = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", safetext.Clean(s.User), safetext.Clean(s.FrontEnd), safetext.Clean(s.Service),
			s.PID, safetext.Clean(tty), s.Since.Local().Format(time.DateTime), safetext.Clean(last))
	}
	tw.Flush()
	return b.String()
}

// cleanStatus strips control characters from every string of st: it may
// come from the daemon, and its details quote Latch.
func cleanStatus(st gatesocket.UserStatus) gatesocket.UserStatus {
	st.User, st.Account, st.Note = safetext.Clean(st.User), safetext.Clean(st.Account), safetext.Clean(st.Note)
	latches := make([]gatesocket.LatchState, len(st.Latches))
	for i, l := range st.Latches {
		latches[i] = gatesocket.LatchState{Service: safetext.Clean(l.Service), Operation: safetext.Clean(l.Operation),
			State: safetext.Clean(l.State), Detail: safetext.Clean(l.Detail)}
	}
	st.Latches = latches
	return st
}

// formatStatus renders st for people:
//
//	alice: paired with Latch account 7hN2…9kLq
//	  application latch: open
//	  sshd (operation OPSSHD…): closed
func formatStatus(st gatesocket.UserStatus) string {
	var b strings.Builder
	if st.Paired {
		fmt.Fprintf(&b, "%s: paired with Latch account %s\n", st.User, st.Account)
	} else {
		fmt.Fprintf(&b, "%s: not paired with Latch\n", st.User)
	}
	for _, l := range st.Latches {
		name := "application latch"
		if l.Service != "" {
			name = fmt.Sprintf("%s (operation %s)", l.Service, l.Operation)
		}
		line := fmt.Sprintf("  %s: %s", name, l.State)
		if l.State == pairing.StateError && l.Detail != "" {
			line += ": " + l.Detail
		}
		b.WriteString(line + "\n")
	}
	if st.Note != "" {
		fmt.Fprintf(&b, "  note: %s\n", st.Note)
	}
	return b.String()
}
