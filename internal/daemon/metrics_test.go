package daemon

// Issue 17, part 3: /metrics scraped after real logins through each front
// end (the PAM hook asking the daemon, the ForceCommand gate run as a real
// user, the embedded server with OpenSSH's client), a fail-open, a
// Latch error, a recheck ending a session, reloads; the textfile written
// at shutdown.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestMetricsAfterLogins counts logins through every front end of one
// daemon and reads them back from /metrics, then from the textfile the
// stopped daemon leaves.
func TestMetricsAfterLogins(t *testing.T) {
	tools := systest.Require(t, "pamtester", "ssh", "promtool")
	f := newFixture(t)
	u, acc := f.PairUser(t, systest.UserOptions{})
	hook := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-check")
	sshPort, metricsPort := systest.FreePort(t), systest.FreePort(t)
	textfile := filepath.Join(f.Dir, "textfile", "latch_ssh.prom")
	if err := os.Mkdir(filepath.Dir(textfile), 0o755); err != nil {
		t.Fatal(err)
	}
	f.writeConfig(t, f.ConfigText(systest.Config{
		Policy: `fail_mode = "open"`,
		Users:  map[string]string{u.Name: acc},
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 1000\n\n[server]\nlisten = \"127.0.0.1:%d\"\nhost_key = [%q]\nrecheck = \"1s\"\n\n"+
			"[metrics]\nlisten = \"127.0.0.1:%d\"\ntextfile = %q\n",
			f.socket, sshPort, filepath.Join(f.Dir, "ssh_host_ed25519_key"), metricsPort, textfile),
	}))
	service := "latch-metrics-" + u.Name
	systest.WritePAMService(t, service, "auth required pam_permit.so\n"+
		"account required pam_exec.so quiet seteuid "+hook+" -c "+f.cfgPath+"\naccount required pam_permit.so\n")
	f.start(t, nil)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	target := &systest.Target{Addr: fmt.Sprintf("127.0.0.1:%d", sshPort), Port: sshPort}
	waitFor(t, "the SSH server to accept connections", func() bool {
		c, err := net.Dial("tcp", target.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	const decisions = "latch_ssh_decisions_total"

	// The PAM hook: latch-check asks the daemon (decide-for).
	if code, out := systest.PAMTester(t, service, u.Name, "acct_mgmt"); code != 0 {
		t.Fatalf("PAM hook, latch open: exit %d\n%s\n%s", code, out, f.log)
	}
	systest.WaitMetric(t, url, waitLimit, 1, decisions, "front_end", "pam", "outcome", "allow", "reason", "latch-open")

	// The ForceCommand gate itself (latch-ssh with no arguments, built
	// with this daemon's socket), run as the user as sshd runs it.
	gateBin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(f.socket))
	runGate := func() (string, int) {
		c := u.Command(gateBin)
		c.Env = append(c.Env, "SSH_ORIGINAL_COMMAND=echo RAN", "SSH_CONNECTION=192.0.2.9 50022 127.0.0.1 22")
		stdout, stderr, code := systest.Run(t, c)
		return stdout + stderr, code
	}
	if out, code := runGate(); code != 0 || out != "RAN\n" {
		t.Fatalf("gate, latch open: exit %d, %q\n%s", code, out, f.log)
	}
	f.SetLatch(acc, false)
	if out, code := runGate(); code != 1 || strings.Contains(out, "RAN") {
		t.Fatalf("gate, latch closed: exit %d, %q", code, out)
	}
	systest.WaitMetric(t, url, waitLimit, 1, decisions, "front_end", "forcecommand", "outcome", "deny", "reason", "latch-closed")
	f.SetLatch(acc, true)

	// The embedded server, with OpenSSH's client: a session stays open.
	ssh := target.SSH(t, u, "echo up; exec sleep 60")
	stdout, err := ssh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ssh.Process.Kill(); ssh.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "up\n" {
		t.Fatalf("embedded server session: %q, %v\n%s", line, err, f.log)
	}
	systest.WaitMetric(t, url, waitLimit, 1, decisions, "front_end", "server", "outcome", "allow", "reason", "latch-open")
	systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_live_sessions", "front_end", "server")
	// The latch closes: the next recheck ends the session.
	f.SetLatch(acc, false)
	systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_sessions_ended_total", "front_end", "server")
	if err := ssh.Wait(); err == nil {
		t.Error("the session survived the closed latch")
	}
	systest.WaitMetric(t, url, waitLimit, 0, "latch_ssh_live_sessions", "front_end", "server")
	f.SetLatch(acc, true)

	// Latch fails: fail_mode = "open" lets the gate's login in, counted
	// as a fail-open and as a Latch error by kind and code.
	f.Latch.SetFault("", latchtest.Fault{HTTPStatus: 503})
	if out, code := runGate(); code != 0 || out != "RAN\n" {
		t.Fatalf("gate, Latch 503, fail open: exit %d, %q", code, out)
	}
	f.Latch.SetFault("", latchtest.Fault{ErrorCode: 102})
	if code, out := systest.PAMTester(t, service, u.Name, "acct_mgmt"); code != 0 {
		t.Fatalf("PAM hook, Latch 102, fail open: exit %d\n%s", code, out)
	}
	f.Latch.ClearFaults()
	m := systest.WaitMetric(t, url, waitLimit, 2, "latch_ssh_fail_open_decisions_total")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"latch_ssh_fail_open_decisions_total", []string{"front_end", "forcecommand"}, 1},
		{"latch_ssh_fail_open_decisions_total", []string{"front_end", "pam"}, 1},
		{"latch_ssh_fail_open_decisions_total", []string{"front_end", "server"}, 0},
		{decisions, []string{"reason", "fail-open"}, 2},
		{"latch_ssh_latch_errors_total", []string{"call", "status", "kind", "http", "code", "http-503"}, 1},
		{"latch_ssh_latch_errors_total", []string{"call", "status", "kind", "credentials", "code", "102"}, 1},
		// pam 2, forcecommand 3, server 1: one Latch call each.
		{decisions, nil, 6},
		{"latch_ssh_latch_request_duration_seconds", []string{"call", "status"}, 6 + m.Value("latch_ssh_rechecks_total")},
		{"latch_ssh_config_reloads_total", []string{"result", "ok"}, 1},
		{"latch_ssh_config_last_reload_successful", nil, 1},
	} {
		if got := m.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A later round may find processes the first one was still ending
	// (and end them again), so at least one.
	if got := m.Value("latch_ssh_rechecks_total", "front_end", "server", "result", "ended"); got < 1 {
		t.Errorf("rechecks ended = %v, want at least 1", got)
	}
	// No user name, account id or address in any label.
	scrape := systest.Scrape(t, url)
	for _, s := range []string{u.Name, acc, "127.0.0.1"} {
		if strings.Contains(scrape, s) {
			t.Errorf("the scrape holds %q", s)
		}
	}
	systest.PromtoolCheckMetrics(t, tools["promtool"], scrape)

	// Stopped, the daemon leaves the textfile with the last counts; the
	// endpoint is gone.
	f.stop(t)
	data, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatalf("textfile: %v\n%s", err, f.log)
	}
	fi, _ := os.Stat(textfile)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode %v, want 0644", fi.Mode().Perm())
	}
	tf := systest.ParseMetrics(t, string(data))
	if got := tf.Value(decisions); got != 6 {
		t.Errorf("textfile: %v decisions, want 6:\n%s", got, data)
	}
	if got := tf.Value("latch_ssh_fail_open_decisions_total"); got != 2 {
		t.Errorf("textfile: %v fail-opens, want 2", got)
	}
	for name := range tf {
		if !strings.HasPrefix(name, "latch_ssh_") {
			t.Errorf("textfile holds %s (node_exporter exports its own)", name)
		}
	}
	systest.PromtoolCheckMetrics(t, tools["promtool"], string(data))
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", metricsPort)); err == nil {
		c.Close()
		t.Error("the metrics endpoint still answers after the daemon stopped")
	}
	f.checkNoLeak(t)
}

// TestMetricsReload: a reload and a refused reload are counted, and the
// last-reload gauge says whether the configuration on disk is in force;
// the textfile is rewritten at the interval, not only at the end.
func TestMetricsReload(t *testing.T) {
	f := newFixture(t)
	port := systest.FreePort(t)
	textfile := filepath.Join(f.Dir, "latch_ssh.prom")
	good := f.configText(conf{extra: fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\ntextfile = %q\n", port, textfile)})
	f.writeConfig(t, good)
	f.start(t, func(o *Options) { o.NoWatch = true; o.TextfileInterval = 50 * time.Millisecond })
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_config_last_reload_successful")

	f.reload(t)
	systest.WaitMetric(t, url, waitLimit, 2, "latch_ssh_config_reloads_total", "result", "ok")
	f.writeConfig(t, good+"\n[metrics]\nlisten = \"nonsense\"\n")
	f.reload(t)
	m := systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_config_reloads_total", "result", "failed")
	if got := m.Value("latch_ssh_config_last_reload_successful"); got != 0 {
		t.Errorf("last reload successful = %v after a refused reload, want 0", got)
	}
	if m.Value("latch_ssh_config_last_reload_success_timestamp_seconds") < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("the last successful reload's time is not recent")
	}
	// The textfile follows within the interval, while the daemon runs.
	waitFor(t, "the textfile to show the refused reload", func() bool {
		data, err := os.ReadFile(textfile)
		return err == nil && systest.ParseMetrics(t, string(data)).Value("latch_ssh_config_reloads_total", "result", "failed") == 1
	})
	f.writeConfig(t, good)
	f.reload(t)
	systest.WaitMetric(t, url, waitLimit, 1, "latch_ssh_config_last_reload_successful")
	f.stop(t)
	f.checkNoLeak(t)
}

// TestMetricsListenRefused: a [metrics] listen address the daemon cannot
// listen on does not stop it from starting (the port may be another
// user's squat, see TestSecurityMetricsPortSquatKeepsLogins): the daemon
// serves the gate socket and logs the error naming the address.
func TestMetricsListenRefused(t *testing.T) {
	f := newFixture(t)
	// 192.0.2.1 (TEST-NET-1) is no address of this host.
	f.writeConfig(t, f.configText(conf{extra: "[metrics]\nlisten = \"192.0.2.1:9469\"\n"}))
	f.start(t, func(o *Options) { o.MetricsRetry = 10 * time.Millisecond })
	waitFor(t, "the refused [metrics] listen in the log", func() bool {
		for _, e := range f.log.find(t, "metrics") {
			if e.str("listen") == "192.0.2.1:9469" && strings.Contains(e.str("error"), "192.0.2.1:9469") {
				return true
			}
		}
		return false
	})
	f.stop(t)
	f.checkNoLeak(t)
}
