package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// notifier speaks systemd's sd_notify protocol: one datagram of
// newline-separated KEY=VALUE assignments to the socket named by
// NOTIFY_SOCKET. It is written here (a dial and a write) rather than taken
// from a library because that is all there is to it. The zero notifier
// (not run by systemd) sends nothing.
type notifier struct {
	addr *net.UnixAddr
}

// notifierFromEnv takes NOTIFY_SOCKET from the environment and removes it,
// so that no process the daemon starts (the embedded server's shells) can
// talk to systemd in its name. Only an absolute path or an abstract socket
// ("@name") is accepted: systemd sets nothing else for a local service, and
// a relative path would depend on the working directory. The value is the
// systemd protocol, not a security setting: the worst a forged one does is
// receive our status lines.
func notifierFromEnv() (notifier, error) {
	v := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	if v == "" {
		// Not run by systemd (libsystemd reads an empty value the same way).
		return notifier{}, nil
	}
	if len(v) < 2 || (v[0] != '/' && v[0] != '@') {
		return notifier{}, fmt.Errorf("ignoring NOTIFY_SOCKET %q: not an absolute path or an abstract socket (@name)", v)
	}
	// The net package turns a leading "@" into the NUL byte of Linux
	// abstract socket addresses.
	return notifier{addr: &net.UnixAddr{Name: v, Net: "unixgram"}}, nil
}

// send sends one notification made of the given KEY=VALUE lines.
func (n notifier) send(lines ...string) error {
	if n.addr == nil {
		return nil
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') || !strings.Contains(l, "=") {
			return fmt.Errorf("sd_notify: malformed assignment %q", l)
		}
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	// A datagram to a live systemd never blocks for long; a stuck receiver
	// must not stall a reload or a stop.
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// reloading is the notification that starts a reload. systemd
// (Type=notify-reload) needs MONOTONIC_USEC, the CLOCK_MONOTONIC time, to
// tell this reload from an older one.
func reloading() []string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// Cannot happen on Linux; RELOADING=1 alone still works with
		// Type=notify.
		return []string{"RELOADING=1"}
	}
	return []string{"RELOADING=1", "MONOTONIC_USEC=" + strconv.FormatInt(ts.Sec*1_000_000+ts.Nsec/1_000, 10)}
}
