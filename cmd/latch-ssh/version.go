package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/latch-ssh/latch-ssh/internal/version"
)

// runVersion implements `latch-ssh version` (also --version and -V).
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if code, done := parseNoArgs(fs, "version", "Prints the version. Also: latch-ssh --version, latch-ssh -V.", args, stdout, stderr); done {
		return code
	}
	fmt.Fprintln(stdout, "latch-ssh", version.String())
	return 0
}
