package daemon

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecurityMetricsPortSquatKeepsLogins: [metrics] listen is a TCP port
// above 1024, so any local user can bind it first (before the daemon
// starts at boot, or while it restarts for an upgrade). That must cost
// the admin the metrics, never the logins: a daemon that refused to start
// left no gate socket, so every ForceCommand login was denied for as long
// as the squatter held the port. The daemon starts, says why the metrics
// are missing, and serves them once the port is free.
func TestSecurityMetricsPortSquatKeepsLogins(t *testing.T) {
	systest.Require(t, "setpriv", "/usr/bin/python3")
	f := newFixture(t)
	u, acc := f.PairUser(t, systest.UserOptions{})
	port := systest.FreePort(t)
	// The squatter: an unprivileged process (nobody) holding the port.
	squat := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c",
		fmt.Sprintf("import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',%d))\ns.listen()\nprint('bound',flush=True)\nsys.stdin.read()", port))
	stdin, err := squat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := squat.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := squat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = squat.Wait() })
	buf := make([]byte, 5)
	if n, err := out.Read(buf); err != nil || string(buf[:n]) != "bound" {
		t.Fatalf("the squatter did not bind: %q %v", buf[:n], err)
	}

	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc},
		extra: fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", port)}))
	f.start(t, func(o *Options) { o.NoWatch = true; o.MetricsRetry = 20 * time.Millisecond })
	if got := f.decide(t, u); got != "allow" {
		t.Errorf("a login while the metrics port is squatted: %q, want allow", got)
	}
	waitFor(t, "the metrics error in the log", func() bool {
		for _, e := range f.log.find(t, "metrics") {
			if strings.Contains(e.str("error"), "address already in use") {
				return true
			}
		}
		return false
	})
	// The squatter leaves: the daemon takes the port.
	stdin.Close()
	_ = squat.Wait()
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	waitFor(t, "the daemon to listen once the port is free", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_config_last_reload_successful")
	f.stop(t)
	f.checkNoLeak(t)
}

// TestSecurityMetricsConnectionsBounded: any local user can connect to
// [metrics] listen. Each connection the daemon accepts costs it a file
// descriptor until the header timeout, and the daemon's descriptors are
// also those of the gate socket and of every Latch call: a user opening
// connections faster than they time out could make every login fail. The
// daemon accepts at most maxMetricsConns at once; the rest wait in the
// kernel's backlog, costing the daemon nothing.
func TestSecurityMetricsConnectionsBounded(t *testing.T) {
	f := newFixture(t)
	port := systest.FreePort(t)
	f.writeConfig(t, f.configText(conf{extra: fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", port)}))
	f.start(t, func(o *Options) { o.NoWatch = true })
	const n = 3 * maxMetricsConns
	for range n {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	waitFor(t, "the daemon to accept connections", func() bool { return acceptedConns(t, port) >= maxMetricsConns })
	// Give the daemon a bounded time to accept more than it should.
	deadline := time.Now().Add(300 * time.Millisecond)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if got := acceptedConns(t, port); got > maxMetricsConns {
			t.Fatalf("the daemon holds %d accepted metrics connections from one client, want at most %d", got, maxMetricsConns)
		}
		<-tick.C
	}
}

// acceptedConns counts the established TCP sockets whose local port is
// port and that a process holds (inode not 0: accepted, not waiting in
// the backlog).
func acceptedConns(t *testing.T, port int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "01" && f[9] != "0" {
			n++
		}
	}
	return n
}
