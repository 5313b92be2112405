package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/latch-ssh/latch-ssh/internal/demo"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

const demoHelp = `Try latch-ssh with no Latch credentials, configuration or root: starts the
embedded SSH server for the current user on ADDR, with a simulated Latch in
this process and a throwaway key pair, and prints the ssh command to try.
In a terminal: l closes the latch, o opens it, t turns the one-time code on
and off, q quits; each login decision is shown as it happens. Without a
terminal, the same commands are read one a line on stdin, and the demo runs
until q, SIGINT or SIGTERM. Everything it creates is removed on exit.
Exit 0: stopped; 1: could not start (e.g. the port is taken); 2: bad usage.`

// runDemo implements `latch-ssh demo [--listen ADDR]`.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", demo.DefaultListen, "address `ADDR` (host:port) of the demo's SSH server")
	if code, done := parseNoArgs(fs, "demo [--listen ADDR]", demoHelp, args, stdout, stderr); done {
		return code
	}
	// The demo's sessions must not get what this process inherited (see
	// runServe).
	if err := spawn.MarkCloseOnExec(); err != nil {
		fmt.Fprintf(stderr, "latch-ssh demo: %v\n", err)
		return 1
	}
	// SIGHUP too (the terminal window was closed), so the keys are still
	// removed; but not under nohup, which asked for SIGHUP to be ignored.
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	err := demo.Run(ctx, demo.Options{Listen: *listen, In: os.Stdin, Out: stdout})
	var le *demo.ListenError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE):
		fmt.Fprintf(stderr, "latch-ssh demo: %s is already in use; pick another address with --listen, e.g. --listen 127.0.0.1:2223\n", le.Addr)
	case errors.As(err, &le):
		fmt.Fprintf(stderr, "latch-ssh demo: %v (choose the address with --listen HOST:PORT)\n", err)
	default:
		fmt.Fprintf(stderr, "latch-ssh demo: %v\n", err)
	}
	return 1
}
