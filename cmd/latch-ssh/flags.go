package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/latch-ssh/latch-ssh/internal/helptext"
	"github.com/latch-ssh/latch-ssh/users"
)

// configFlag registers -c, the configuration file, on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", users.DefaultPath, "configuration file `FILE` (honoured only for root)")
}

// printUsage writes a command's help: its usage line (synopsis, after
// "latch-ssh "), what it does, and every flag, spelled as the usage line
// spells them (--user, -c; see helptext).
func printUsage(w io.Writer, synopsis, help string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: latch-ssh %s\n", synopsis)
	if help != "" {
		fmt.Fprintln(w, help)
	}
	helptext.PrintFlags(w, fs)
}

// parseFlags parses args into fs. done reports that the caller must return
// code now: 0 after --help or -h, which prints the help on stdout; 2 after
// a bad flag, with the error and the help on stderr.
func parseFlags(fs *flag.FlagSet, synopsis, help string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(stderr) // where flag reports a bad flag
	fs.Usage = func() {} // printed below, where it belongs
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, synopsis, help, fs)
			return 0, true
		}
		printUsage(stderr, synopsis, help, fs)
		return 2, true
	}
	return 0, false
}

// parseNoArgs is parseFlags for a subcommand that takes flags only: a
// stray argument is a usage error too.
func parseNoArgs(fs *flag.FlagSet, synopsis, help string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if code, done := parseFlags(fs, synopsis, help, args, stdout, stderr); done {
		return code, done
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "latch-ssh %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		printUsage(stderr, synopsis, help, fs)
		return 2, true
	}
	return 0, false
}

// configAllowed reports whether a process running as euid may use the
// configuration at path, and says why not on stderr. Only root may point
// a command at another file: the file decides for every user, so another
// user's copy must not.
func configAllowed(cmd, path string, euid int, stderr io.Writer) bool {
	if path != users.DefaultPath && euid != 0 {
		fmt.Fprintf(stderr, "latch-ssh %s: -c is honoured only for root\n", cmd)
		return false
	}
	return true
}
