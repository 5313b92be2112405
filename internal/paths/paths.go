// Package paths holds the file system paths compiled into the binaries that
// run as an ordinary user (the ForceCommand gate, self-service pairing).
// They cannot read the root-only configuration, and must not take paths
// from the environment or their arguments (a user could point them at a
// socket of their own), so the path of the daemon's socket is fixed at
// build time.
package paths

// gateSocket may be set at link time, only by tests and packagers:
// -ldflags "-X github.com/latch-ssh/latch-ssh/internal/paths.gateSocket=/path".
// Nothing writes it at run time.
var gateSocket = ""

// DefaultGateSocket is the daemon's socket when the build does not say
// otherwise; it is also the default of [daemon] socket in latch.toml.
const DefaultGateSocket = "/run/latch-ssh/gate.sock"

// GateSocket returns the path of the daemon's gate socket.
func GateSocket() string {
	if gateSocket != "" {
		return gateSocket
	}
	return DefaultGateSocket
}

// LinkFlag returns the -ldflags -X argument that compiles socket in, for
// tests that build the binaries.
func LinkFlag(socket string) string {
	return "-X github.com/latch-ssh/latch-ssh/internal/paths.gateSocket=" + socket
}
