package checkconfig

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestCheckServer: with [server] listen set, check-config finds host keys
// the server would refuse, a missing host-key directory, a bad
// sftp_server, and warns about recheck = "0" and forwarding.
func TestCheckServer(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose_key")
	if err := os.WriteFile(loose, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "new_key")
	noDir := filepath.Join(dir, "nodir", "key")
	for _, tc := range []struct {
		name, server string
		errors       int
		want         []string
	}{
		{"off", `listen = ""`, 0, nil},
		{"fine", fmt.Sprintf("listen = \"127.0.0.1:2222\"\nhost_key = [%q]", missing), 0,
			[]string{"does not exist yet: serve generates"}},
		{"bad keys", fmt.Sprintf("listen = \"127.0.0.1:2222\"\nhost_key = [%q, %q]\nsftp_server = \"/nonexistent/sftp\"", loose, noDir), 3,
			[]string{"chmod 600 " + loose, "mkdir -p -m 755 " + filepath.Dir(noDir), "sftp_server /nonexistent/sftp is not an executable"}},
		{"warnings", fmt.Sprintf("listen = \"127.0.0.1:2222\"\nhost_key = [%q]\nrecheck = \"0\"\nallow_tcp_forwarding = true", missing), 0,
			[]string{`recheck = "0"`, "allow_tcp_forwarding = true", "penalty_exempt is empty"}},
		// Issue 12, item 7: admission settings that undo themselves.
		{"admission warnings", fmt.Sprintf("listen = \"127.0.0.1:2222\"\nhost_key = [%q]\npenalty_noauth = \"0\"\n"+
			"penalty_authfail = \"0\"\npenalty_timeout = \"0\"\npenalty_exempt = [\"0.0.0.0/0\"]", missing), 0,
			[]string{"are all \"0\": a few hosts can hold", "penalty_exempt has 0.0.0.0/0: every address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := systest.OfflineLatch +
				"[policy]\nfail_mode = \"closed\"\n[server]\n" + tc.server + "\n"
			cfg, err := users.Parse("latch.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			rep := &Report{Findings: checkServer(context.Background(), &run{cfg: cfg})}
			out := render(rep)
			if errors, _ := rep.Count(); errors != tc.errors {
				t.Errorf("%d errors, want %d:\n%s", errors, tc.errors, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(missing); err == nil {
				t.Error("check-config created a host key")
			}
		})
	}
}

// render prints the findings of rep as check-config does.
func render(rep *Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// TestCheckMetrics: check-config warns when [metrics] listen is reachable
// from other hosts and when the textfile's directory does not exist, and
// says nothing about a loopback endpoint and an existing directory.
func TestCheckMetrics(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, metrics string
		want          []string
	}{
		{"off", "", nil},
		{"loopback v4", `listen = "127.0.0.1:9469"`, nil},
		{"loopback v6", `listen = "[::1]:9469"`, nil},
		{"localhost", `listen = "localhost:9469"`, nil},
		{"every address", `listen = "0.0.0.0:9469"`, []string{`[metrics] listen = "0.0.0.0:9469" is not a loopback address`}},
		{"a host name", `listen = "metrics.example:9469"`, []string{"reveal login activity"}},
		{"existing dir", fmt.Sprintf("textfile = %q", filepath.Join(dir, "latch_ssh.prom")), nil},
		{"missing dir", fmt.Sprintf("textfile = %q", filepath.Join(dir, "nope", "latch_ssh.prom")),
			[]string{"the directory " + filepath.Join(dir, "nope") + " does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := systest.OfflineLatch + "[policy]\nfail_mode = \"closed\"\n[metrics]\n" + tc.metrics + "\n"
			cfg, err := users.Parse("latch.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			rep := &Report{Findings: checkMetrics(context.Background(), &run{cfg: cfg})}
			out := render(rep)
			if len(rep.Findings) != len(tc.want) {
				t.Errorf("%d findings, want %d:\n%s", len(rep.Findings), len(tc.want), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
