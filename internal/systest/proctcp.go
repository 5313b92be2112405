package systest

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TCPSocket is one line of /proc/net/tcp or /proc/net/tcp6.
type TCPSocket struct {
	Local, Remote netip.AddrPort
	// State is the kernel's TCP state: 1 established, 10 listen.
	State int
	// UID is the socket's owner: the file-system uid of the thread that
	// created it, what iptables -m owner matches.
	UID int
}

// TCP states in TCPSocket.State.
const (
	TCPEstablished = 1
	TCPListen      = 10
)

// TCPSockets returns the TCP sockets of the network namespace.
func TCPSockets(t testing.TB) []TCPSocket {
	t.Helper()
	var out []TCPSocket
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("systest: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines[1:] {
			fs := strings.Fields(l)
			if len(fs) < 8 {
				t.Fatalf("systest: %s: short line %q", f, l)
			}
			local, err1 := procAddr(fs[1])
			remote, err2 := procAddr(fs[2])
			state, err3 := strconv.ParseInt(fs[3], 16, 32)
			uid, err4 := strconv.Atoi(fs[7])
			for _, err := range []error{err1, err2, err3, err4} {
				if err != nil {
					t.Fatalf("systest: %s: line %q: %v", f, l, err)
				}
			}
			out = append(out, TCPSocket{Local: local, Remote: remote, State: int(state), UID: uid})
		}
	}
	return out
}

// procAddr parses "0100007F:1F90": the address as 32-bit words in host
// byte order (little-endian here), the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	a, p, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, err
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		binary.LittleEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
