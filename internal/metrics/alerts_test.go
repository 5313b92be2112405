package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// alertRules is the example alerting-rule file the package ships.
const alertRules = "../../packaging/examples/prometheus/latch-ssh-alerts.yml"

// alertTests are promtool unit tests of the example rules: each alert
// fires on the series that should fire it (and the fail-open alert not
// before a fail-open).
const alertTests = `rule_files:
  - RULES
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'latch_ssh_fail_open_decisions_total{job="latch-ssh",instance="web-1",front_end="pam"}'
        values: '0 0 0 1 1 1'
      - series: 'latch_ssh_config_last_reload_successful{job="latch-ssh",instance="web-1"}'
        values: '1 0 0 0 0 0 0 0'
      - series: 'latch_ssh_latch_errors_total{job="latch-ssh",instance="web-1",call="status",kind="credentials",code="102"}'
        values: '0 0 3 3 3'
      - series: 'latch_ssh_latch_errors_total{job="latch-ssh",instance="web-3",call="status",kind="network",code="none"}'
        values: '0+1x30'
      - series: 'latch_ssh_latch_request_duration_seconds_count{job="latch-ssh",instance="web-3",call="status"}'
        values: '0+2x30'
      - series: 'up{job="latch-ssh",instance="web-2"}'
        values: '1 0 0 0 0 0 0 0'
      - series: 'node_textfile_mtime_seconds{instance="db-1",file="/var/lib/prometheus/node-exporter/latch_ssh.prom"}'
        values: '0 0 0 0 0 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 2m
        alertname: LatchSSHFailOpen
        exp_alerts: []
      - eval_time: 4m
        alertname: LatchSSHFailOpen
        exp_alerts:
          - exp_labels: {severity: critical, job: latch-ssh, instance: web-1, front_end: pam}
            exp_annotations:
              summary: "latch-ssh let logins in without checking the latch (web-1, pam)"
              description: "Latch could not answer and fail_mode = \"open\" let 1 login(s) in over the last 10 minutes. Check the daemon's log (journalctl -u latch-ssh) for the reason and latch_ssh_latch_errors_total for the kind of error."
      - eval_time: 7m
        alertname: LatchSSHConfigReloadFailed
        exp_alerts:
          - exp_labels: {severity: warning, job: latch-ssh, instance: web-1}
            exp_annotations:
              summary: "latch-ssh refused its configuration on web-1"
              description: "The daemon serves with the previous configuration. Run latch-ssh check-config on the host."
      - eval_time: 3m
        alertname: LatchSSHLatchMisconfigured
        exp_alerts:
          - exp_labels: {severity: critical, instance: web-1, kind: credentials, code: "102"}
            exp_annotations:
              summary: "Latch refuses latch-ssh's requests on web-1 (credentials, code 102)"
              description: "Run latch-ssh check-config --online on the host; it names the setting to fix."
      - eval_time: 10m
        alertname: LatchSSHLatchErrors
        exp_alerts: []
      - eval_time: 20m
        alertname: LatchSSHLatchErrors
        exp_alerts:
          - exp_labels: {severity: warning, instance: web-3}
            exp_annotations:
              summary: "More than 10% of Latch calls fail on web-3"
              description: "50% of the calls to Latch failed over 5 minutes; logins follow fail_mode meanwhile. See latch_ssh_latch_errors_total by kind and code."
      - eval_time: 7m
        alertname: LatchSSHDaemonDown
        exp_alerts:
          - exp_labels: {severity: critical, job: latch-ssh, instance: web-2}
            exp_annotations:
              summary: "latch-ssh's metrics endpoint on web-2 does not answer"
              description: "Check systemctl status latch-ssh on the host."
      - eval_time: 11m
        alertname: LatchSSHTextfileStale
        exp_alerts:
          - exp_labels: {severity: critical, instance: db-1, file: /var/lib/prometheus/node-exporter/latch_ssh.prom}
            exp_annotations:
              summary: "latch-ssh has not written its metrics textfile on db-1 for 5 minutes"
              description: "The daemon is probably down. Check systemctl status latch-ssh on the host."
`

// TestAlertRules: the example alerting rules pass promtool check rules,
// fire in promtool's unit tests, and name only metrics latch-ssh exports.
func TestAlertRules(t *testing.T) {
	tools := systest.Require(t, "promtool")
	abs, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tools["promtool"], "check", "rules", abs).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	tests := filepath.Join(t.TempDir(), "alerts_test.yml")
	if err := os.WriteFile(tests, []byte(strings.Replace(alertTests, "RULES", abs, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(tools["promtool"], "test", "rules", tests).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}

	data, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	m := New("test")
	feed(m)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range regexp.MustCompile(`latch_ssh_[a-z_]+`).FindAllString(string(data), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && have[b] {
				base = b
			}
		}
		if !have[base] && !strings.HasSuffix(name, "_") {
			t.Errorf("the alert rules name %s, which latch-ssh does not export", name)
		}
	}
}
