package main

import (
	"flag"
	"io"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
)

const pairHelp = `Pairs a local user with the Latch account of the person who generated TOKEN,
the 6-character pairing code of the Latch app, and writes the user into
[users] of the configuration, keeping every comment.
Root pairs any existing local user; others pair themselves through the
latch-ssh daemon, if the administrator set allow_self_pairing = true, and
only when they are not paired yet (changing a pairing needs root).
With --repair (root only, no TOKEN), gives users paired before [latch]
instance = "host" was turned on, or whose instance Latch no longer knows,
this server's own instances without a new code: --user USER, or every user.
Exit 0: paired (repaired); 1: not paired (the reason is printed); 2: bad usage.`

// runPair implements `latch-ssh pair [--user U] [-c FILE] TOKEN`.
func runPair(args []string, stdout, stderr io.Writer) int {
	var repair bool
	c, rest, code, ok := pairingFlags("pair", "pair [--user USER] [-c FILE] TOKEN\n       latch-ssh pair [--repair] [--user USER] [-c FILE]", pairHelp, args, stdout, stderr,
		func(fs *flag.FlagSet) {
			fs.BoolVar(&repair, "repair", false, "create this server's missing instances for USER, or every user (root only)")
		})
	if !ok {
		return code
	}
	if repair {
		return runRepair(c, rest, stdout, stderr)
	}
	if len(rest) != 1 {
		printError(stderr, "pair", "give the pairing code from the Latch app: latch-ssh pair TOKEN (flags go before it)")
		return exitUsage
	}
	token := rest[0]
	// Checked here too, so a typo costs no trip to the daemon or Latch.
	if err := pairing.CheckToken(token); err != nil {
		printError(stderr, "pair", err.Error())
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	if c.direct {
		msg, err := c.manager().Pair(ctx, c.user, token)
		return finishDirect(ctx, c.configPath, "pair", msg, err, stdout, stderr)
	}
	resp, err := callDaemon(ctx, gatesocket.SocketRequest{Op: gatesocket.OpPair, Token: token})
	return finishDaemon("pair", resp, err, stdout, stderr)
}

// runRepair implements `latch-ssh pair --repair [--user U] [-c FILE]`
// (issue 17): root only, since it writes the configuration and calls
// Latch with the application's secret for users other than the caller.
func runRepair(c pairingCall, rest []string, stdout, stderr io.Writer) int {
	switch {
	case !c.direct:
		printError(stderr, "pair", "only root can run --repair")
		return exitUsage
	case len(rest) != 0:
		printError(stderr, "pair", "--repair takes no pairing code: latch-ssh pair --repair [--user USER]")
		return exitUsage
	}
	user := ""
	if c.userGiven {
		user = c.user
	}
	ctx, stop := signalContext()
	defer stop()
	msg, err := c.manager().Repair(ctx, user)
	return finishDirect(ctx, c.configPath, "pair", msg, err, stdout, stderr)
}
