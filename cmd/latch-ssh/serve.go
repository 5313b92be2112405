package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/daemon"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// selfServicePerMinute bounds pair/unpair/status requests per uid.
const selfServicePerMinute = 6

const serveHelp = `Runs the daemon: the gate socket for the ForceCommand gate and self-service pairing, and, when
[server] listen is set, the embedded SSH server (its sessions live in this process).
SIGHUP reloads the configuration, and so does any change to the file (a broken one is refused
and the old one kept); pair and unpair wait until the daemon has put their edit in force. SIGTERM stops
after the logins in progress and ends embedded-server sessions, telling each why. Logs are JSON
lines on stderr.
Exit 0: stopped cleanly; 1: could not start, or the socket failed; 2: bad usage.`

// runServe implements `latch-ssh serve`: the daemon (see internal/daemon).
// It runs until SIGTERM or SIGINT; SIGHUP reloads the configuration. Logs
// are JSON lines on stderr, which journald keeps under systemd. Exit 0
// after a clean stop, 1 when it cannot start or the socket fails, 2 for bad
// usage.
func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := configFlag(fs)
	if code, done := parseNoArgs(fs, "serve [-c FILE]", serveHelp, args, stdout, stderr); done {
		return code
	}
	// The daemon answers for every user; another user's file must not
	// decide that, even for a daemon they start themselves on a socket the
	// gate would not use.
	if !configAllowed("serve", *configPath, os.Geteuid(), stderr) {
		return 2
	}
	// Descriptors this process inherited without close-on-exec (a pipe of
	// whatever started it) must never reach a session of the embedded
	// server (issue 12, item 12). spawn.Start marks them again before every
	// session; this covers anything else the daemon might ever start. The
	// daemon uses no socket activation (LISTEN_FDS), and marked
	// descriptors stay usable here anyway.
	if err := spawn.MarkCloseOnExec(); err != nil {
		fmt.Fprintf(stderr, "latch-ssh serve: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	err := daemon.Run(context.Background(), daemon.Options{
		ConfigPath: *configPath,
		Log:        stderr,
		Signals:    sigs,
		// Self-service pair/unpair/status, for users whose config says
		// allow_self_pairing. Its own limiter: each request is a Latch call
		// with the server's credentials, and must not share the budget of
		// logins.
		// Its failures go to the daemon's own log, as JSON lines like all
		// the others.
		SelfService: func(cfgPath string, _ func() *gate.Core, logf func(string, ...any)) gatesocket.SelfService {
			return pairing.SelfService{
				Manager: &pairing.Manager{ConfigPath: cfgPath},
				Limiter: gatesocket.NewRateLimiter(selfServicePerMinute),
				Logf:    logf,
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "latch-ssh serve: %v\n", err)
		return 1
	}
	return 0
}
