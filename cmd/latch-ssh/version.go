package main

import (
	"fmt"
	"io"

	"github.com/latch-ssh/latch-ssh/internal/version"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: latch-ssh version")
		return 2
	}
	fmt.Fprintln(stdout, "latch-ssh", version.String())
	return 0
}
