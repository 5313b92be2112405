// Package version holds the version string of the latch-ssh binaries.
package version

import "runtime/debug"

// version is set at link time by the Makefile and packaging:
// -ldflags "-X github.com/latch-ssh/latch-ssh/internal/version.version=v1.2.3".
// It is the one package-level variable of the project that is not a
// constant, and nothing writes it at run time.
var version = ""

// String returns the version: the link-time value, else the module version
// recorded by the Go toolchain, else "dev".
func String() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// UserAgent is the User-Agent sent to Latch, naming latch-ssh and its version.
func UserAgent() string { return "latch-ssh/" + String() }
