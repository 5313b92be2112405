package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
)

// secretish are values a careless metric would put in a label: none may
// appear in any scrape.
var secretish = []string{"alice-the-user", "203.0.113.9", "ACCOUNTIDACCOUNTIDACCOUNTIDACCOUNTIDACCOUNTIDACCOUNTIDACCOUNTID12", "free text reason"}

// feed sends every kind of event, with hostile values where a caller
// could put anything, to m.
func feed(m *Metrics) {
	for _, fe := range []string{gate.FrontEndPAM, gate.FrontEndForceCommand, gate.FrontEndServer, "openssh", secretish[0], ""} {
		for _, c := range append(gate.Classes(), gate.Class(secretish[3]), "") {
			for _, o := range []gate.Outcome{gate.Allow, gate.Deny, gate.AskOTP, gate.Outcome(42)} {
				m.Decided(fe, gate.Decision{Outcome: o, Class: c, Reason: secretish[3] + " " + secretish[2], FailModeApplied: c == gate.ClassFailOpen})
			}
		}
		m.Rechecked(fe, "kept")
		m.Rechecked(fe, "ended")
		m.Rechecked(fe, "error")
		m.Rechecked(fe, secretish[3])
		m.Ended(fe, 2)
	}
	errs := []error{
		nil,
		&latch.Error{Code: latch.CodeAccountNotPaired, Message: secretish[3]},
		&latch.Error{Code: latch.CodeInvalidSignature},
		&latch.Error{Code: 701},
		&latch.Error{Code: 123456, Message: secretish[0]},
		&latch.Error{Code: -5},
		&latch.HTTPError{StatusCode: 503},
		&latch.HTTPError{StatusCode: 1234},
		fmt.Errorf("x: %w", context.DeadlineExceeded),
		context.Canceled,
		&latch.TransportError{Op: "GET /status/" + secretish[2], Err: errors.New(secretish[1])},
		fmt.Errorf("%s: %w", secretish[2], latch.ErrMalformed),
		errors.New(secretish[3]),
	}
	for _, call := range []string{"status", "pair", "unpair", "instance", secretish[2], ""} {
		for _, err := range errs {
			m.LatchCall(call, 30*time.Millisecond, err)
		}
	}
	m.Reloaded(true)
	m.Reloaded(false)
	m.AddLive(func() map[string]int { return map[string]int{gate.FrontEndServer: 2, secretish[0]: 1} })
	m.AddLive(func() map[string]int { return map[string]int{gate.FrontEndServer: 1, gate.FrontEndPAM: 4} })
}

// TestLabelsBounded: whatever the callers pass (user names, addresses,
// account ids, free text, unknown codes), every label value of every
// latch_ssh_* series is in its fixed allowlist (Allowlists), and none of
// those values appears anywhere in a scrape. build_info's labels are the
// version and the Go version, nothing else.
func TestLabelsBounded(t *testing.T) {
	m := New("1.2.3-test")
	feed(m)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allow := Allowlists()
	series := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), Namespace+"_") {
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", mf.GetName())
		}
		for _, metric := range mf.GetMetric() {
			series++
			for _, lp := range metric.GetLabel() {
				name, v := lp.GetName(), lp.GetValue()
				if mf.GetName() == Namespace+"_build_info" {
					want := map[string]string{"version": "1.2.3-test", "goversion": runtime.Version()}[name]
					if v != want {
						t.Errorf("build_info label %s = %q, want %q", name, v, want)
					}
					continue
				}
				list, ok := allow[name]
				if !ok {
					t.Errorf("%s has label %s, which has no allowlist", mf.GetName(), name)
					continue
				}
				if !slices.Contains(list, v) {
					t.Errorf("%s{%s=%q}: value not in the allowlist", mf.GetName(), name, v)
				}
			}
		}
	}
	if series < 50 {
		t.Errorf("only %d series: the feed did not reach the metrics", series)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, s := range secretish {
		if strings.Contains(rec.Body.String(), s) {
			t.Errorf("the scrape holds %q", s)
		}
	}
	scrape := systest.ParseMetrics(t, rec.Body.String())
	// The hostile front end was counted, as "other".
	if got := scrape.Value("latch_ssh_live_sessions", "front_end", "other"); got != 1 {
		t.Errorf("live sessions of other = %v, want 1", got)
	}
	if got := scrape.Value("latch_ssh_live_sessions", "front_end", "server"); got != 3 {
		t.Errorf("live sessions of server = %v, want 3 (2+1 from two sources)", got)
	}
}

// TestCounts: each observer method lands in its metric with the labels
// the alert rules and the docs use.
func TestCounts(t *testing.T) {
	m := New("test")
	m.Decided(gate.FrontEndPAM, gate.Decision{Outcome: gate.Allow, Class: gate.ClassFailOpen, FailModeApplied: true})
	m.Decided(gate.FrontEndPAM, gate.Decision{Outcome: gate.Deny, Class: gate.ClassFailClosed, FailModeApplied: true})
	m.Decided(gate.FrontEndServer, gate.Decision{Outcome: gate.Allow, Class: gate.ClassOpen})
	m.Decided(gate.FrontEndServer, gate.Decision{Outcome: gate.Allow, Class: gate.ClassExempt})
	m.LatchCall("status", 20*time.Millisecond, nil)
	m.LatchCall("status", 20*time.Millisecond, &latch.Error{Code: latch.CodeRequestExpired})
	m.LatchCall("status", 20*time.Millisecond, &latch.HTTPError{StatusCode: 502})
	m.LatchCall("status", 20*time.Millisecond, context.DeadlineExceeded)
	m.Rechecked(gate.FrontEndServer, "ended")
	m.Ended(gate.FrontEndServer, 3)
	m.Reloaded(false)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	s := systest.ParseMetrics(t, rec.Body.String())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"latch_ssh_fail_open_decisions_total", []string{"front_end", "pam"}, 1},
		{"latch_ssh_fail_open_decisions_total", []string{"front_end", "server"}, 0},
		{"latch_ssh_fail_open_decisions_total", nil, 1},
		{"latch_ssh_decisions_total", []string{"front_end", "pam", "outcome", "deny", "reason", "fail-closed"}, 1},
		{"latch_ssh_decisions_total", []string{"front_end", "server", "outcome", "allow"}, 2},
		{"latch_ssh_decisions_total", []string{"reason", "exempt"}, 1},
		{"latch_ssh_latch_request_duration_seconds", []string{"call", "status"}, 4},
		{"latch_ssh_latch_errors_total", []string{"call", "status", "kind", "clock", "code", "109"}, 1},
		{"latch_ssh_latch_errors_total", []string{"kind", "http", "code", "http-502"}, 1},
		{"latch_ssh_latch_errors_total", []string{"kind", "timeout", "code", "none"}, 1},
		{"latch_ssh_rechecks_total", []string{"front_end", "server", "result", "ended"}, 1},
		{"latch_ssh_sessions_ended_total", []string{"front_end", "server"}, 3},
		{"latch_ssh_config_reloads_total", []string{"result", "failed"}, 1},
		{"latch_ssh_config_reloads_total", []string{"result", "ok"}, 0},
		{"latch_ssh_config_last_reload_successful", nil, 0},
		{"latch_ssh_build_info", []string{"version", "test"}, 1},
	} {
		if got := s.Value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The series the alerts watch exist before anything happened.
	for _, name := range []string{"latch_ssh_fail_open_decisions_total", "latch_ssh_config_reloads_total"} {
		if len(s[name].GetMetric()) < 2 {
			t.Errorf("%s: %d series, want them all from the start", name, len(s[name].GetMetric()))
		}
	}
}

// TestTextfile: the textfile is written atomically with mode 0644, holds
// only latch_ssh_* (node_exporter has its own go_* and process_*), parses,
// and leaves no temporary file behind; an unwritable directory is an
// error naming the path.
func TestTextfile(t *testing.T) {
	m := New("test")
	m.Decided(gate.FrontEndForceCommand, gate.Decision{Outcome: gate.Deny, Class: gate.ClassClosed})
	dir := t.TempDir()
	path := filepath.Join(dir, "latch_ssh.prom")
	// An older file is replaced whole.
	if err := os.WriteFile(path, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := systest.ParseMetrics(t, string(data))
	if got := s.Value("latch_ssh_decisions_total", "front_end", "forcecommand", "reason", "latch-closed"); got != 1 {
		t.Errorf("decisions in the textfile = %v, want 1:\n%s", got, data)
	}
	for name := range s {
		if !strings.HasPrefix(name, "latch_ssh_") {
			t.Errorf("the textfile holds %s", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the textfile", len(entries))
	}
	bad := filepath.Join(dir, "missing", "latch_ssh.prom")
	if err := m.WriteTextfile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("writing under a missing directory: %v", err)
	}
}

// TestPromtoolCheckMetrics: a scrape passes promtool's lint of the
// Prometheus naming conventions (units, _total on counters, HELP).
func TestPromtoolCheckMetrics(t *testing.T) {
	tools := systest.Require(t, "promtool")
	m := New("test")
	feed(m)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	systest.PromtoolCheckMetrics(t, tools["promtool"], rec.Body.String())
}

// TestEveryMetricDocumented: latch-ssh(8) lists every latch_ssh_* metric
// (packaging/cmd/mangen/pages.go, METRICS).
func TestEveryMetricDocumented(t *testing.T) {
	pages, err := os.ReadFile("../../packaging/cmd/mangen/pages.go")
	if err != nil {
		t.Fatal(err)
	}
	m := New("test")
	feed(m)
	mfs, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 10 {
		t.Fatalf("only %d families gathered", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.Contains(string(pages), "**"+mf.GetName()+"**") {
			t.Errorf("latch-ssh(8) does not list %s", mf.GetName())
		}
	}
}
