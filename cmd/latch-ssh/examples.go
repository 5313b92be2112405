package main

import (
	"os"
	"path/filepath"
	"runtime"
)

// packagedExamples is where the package installs the examples.
const packagedExamples = "/usr/share/doc/latch-ssh/examples"

// exampleConfig names the commented configuration template, which lives at
// the top of the source tree (design.md's layout).
func exampleConfig() string { return exampleFile("latch.toml.example") }

// exampleFile names the example file name where it exists on this machine
// (issue 13, point 5: a message must point at a file that is there): the
// package's copy, else the source tree this binary was built from (a
// `go build` or `go run` in a checkout, or `make build`'s bin/, where it is
// at the top), else it says where to find one.
func exampleFile(name string) string {
	candidates := []string{filepath.Join(packagedExamples, name)}
	// The path of this source file as compiled: absolute unless built
	// with -trimpath (the package is, and has its own copy).
	if _, src, _, ok := runtime.Caller(0); ok && filepath.IsAbs(src) {
		candidates = append(candidates, filepath.Join(filepath.Dir(src), "..", "..", name))
	}
	// `make build` builds with -trimpath into bin/ of the checkout.
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", name))
	}
	// Run from the top of a checkout.
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, name))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c
		}
	}
	return name + " (at the top of the latch-ssh source, " + packagedExamples + "/" + name + " once installed)"
}
