package main

import (
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
Exit 0: paired; 1: not paired (the reason is printed); 2: bad usage.`

// runPair implements `latch-ssh pair [--user U] [-c FILE] TOKEN`.
func runPair(args []string, stdout, stderr io.Writer) int {
	c, rest, code, ok := pairingFlags("pair", "pair [--user USER] [-c FILE] TOKEN", pairHelp, args, stdout, stderr, nil)
	if !ok {
		return code
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
