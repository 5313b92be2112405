package daemon

import (
	"fmt"
	"net/http"
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
	systest.Require(t, "setpriv", "python3")
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
