package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/latch-ssh/latch-ssh/users"
)

// configFlag registers -c, the configuration file, on fs.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("c", users.DefaultPath, "configuration `file` (honoured only for root)")
}

// parseNoArgs parses args for a subcommand that takes flags only. done
// reports that the caller must return code now: 0 after --help, 2 after a
// bad flag or a stray argument.
func parseNoArgs(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() != 0 {
		fs.Usage()
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
