// Command latch-ssh is the admin's and the person's tool for latch-ssh:
//
//	latch-ssh                         ForceCommand gate (no arguments)
//	latch-ssh serve                   daemon: gate socket, and the SSH server if [server] listen is set
//	latch-ssh pair [--user U] TOKEN   pair a local user with a Latch account
//	latch-ssh pair --repair [--user U] give paired users this server's Latch instances
//	latch-ssh unpair [--user U]       unpair
//	latch-ssh status [--user U]       mapping and live latch state
//	latch-ssh check-config            validate config, permissions and the sshd/PAM wiring
//	latch-ssh demo                    try it with no Latch credentials
//	latch-ssh version                 also --version, -V
//	latch-ssh help [COMMAND]          also -h, --help; COMMAND --help
//
// Each subcommand lives in its own file of this package.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/latch-ssh/latch-ssh/internal/forcecmd"
)

// command is one subcommand: run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"pair", "pair a local user with a Latch account (root: any user; others: themselves, if allowed)", runPair},
		{"unpair", "unpair a local user; tells Latch only if no other local user maps to the account", runUnpair},
		{"status", "show a user's Latch account and live latch state (--json for scripts)", runStatus},
		{"serve", "run the daemon: the gate socket, and the SSH server if [server] listen is set", runServe},
		{"check-config", "validate the configuration, its permissions and the sshd/PAM wiring", runCheckConfig},
		{"demo", "try it with no Latch credentials: embedded server + simulated Latch, toggled from the terminal", runDemo},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return forcecmd.Main()
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		// help COMMAND is COMMAND --help.
		if len(args) == 2 {
			if c, ok := lookupCommand(args[1]); ok {
				return c.run([]string{"--help"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "latch-ssh: unknown command %q\n", args[1])
			usage(stderr)
			return 2
		}
		if len(args) > 2 {
			usage(stderr)
			return 2
		}
		usage(stdout)
		return 0
	case "--version", "-V":
		return runVersion(args[1:], stdout, stderr)
	}
	if c, ok := lookupCommand(name); ok {
		return c.run(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "latch-ssh: unknown command %q\n", name)
	usage(stderr)
	return 2
}

// lookupCommand returns the subcommand called name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: latch-ssh COMMAND [options]")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "Run latch-ssh help COMMAND (or latch-ssh COMMAND --help) for a command's options;")
	fmt.Fprintln(w, "latch-ssh --version (or -V) prints the version.")
	fmt.Fprintln(w, "With no arguments, latch-ssh is the ForceCommand gate that sshd runs for each login of a")
	fmt.Fprintln(w, "gated user (sshd_config: ForceCommand /usr/bin/latch-ssh); run by hand, it only says so.")
}
