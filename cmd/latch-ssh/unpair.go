package main

import (
	"io"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
)

const unpairHelp = `Removes a local user from [users] of the configuration, keeping every
comment, and unpairs the Latch account at Latch unless another local user
maps to the same account.
Only root unpairs: a person who wants to move their latch to another
phone asks an administrator, so that someone who gets into an account
cannot move its latch to their own phone (the phone's owner can always
remove this server in the Latch app).
Exit 0: unpaired; 1: not, or only partly (the message says how to finish);
2: bad usage.`

// runUnpair implements `latch-ssh unpair [--user U] [-c FILE]`.
func runUnpair(args []string, stdout, stderr io.Writer) int {
	c, rest, code, ok := pairingFlags("unpair", "unpair [--user USER] [-c FILE]", unpairHelp, args, stdout, stderr, nil)
	if !ok {
		return code
	}
	if len(rest) != 0 {
		printError(stderr, "unpair", "takes no arguments (use --user USER to name the user)")
		return exitUsage
	}
	ctx, stop := signalContext()
	defer stop()
	if c.direct {
		msg, err := c.manager().Unpair(ctx, c.user)
		return finishDirect(ctx, c.configPath, "unpair", msg, err, stdout, stderr)
	}
	resp, err := callDaemon(ctx, gatesocket.SocketRequest{Op: gatesocket.OpUnpair})
	return finishDaemon("unpair", resp, err, stdout, stderr)
}
