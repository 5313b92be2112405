package checkconfig

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/users"
)

// TestChecksWithoutConfig: every check of the list runs on a file that
// did not parse (cfg nil) without panicking, and only the file's own
// check reports anything: a new check must not trip over a configuration
// that does not load, since check-config runs them all in one pass.
func TestChecksWithoutConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	r := &run{opts: Options{ConfigPath: path, SkipWiring: true}, in: users.Inspect(path)}
	for _, c := range checks() {
		t.Run(c.what, func(t *testing.T) {
			got := c.run(context.Background(), r)
			if strings.HasPrefix(c.what, "the file") {
				if len(got) != 2 || got[0].Message != "no such file" {
					t.Errorf("findings %v, want no such file and the lockout", got)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("findings on a file that does not load: %v", got)
			}
		})
	}
}

// TestCheckWiringAsRootOnly: the sshd and PAM checks run only as root (a
// non-root run says so in a note instead of reporting false holes), and
// not at all with --no-wiring.
func TestCheckWiringAsRootOnly(t *testing.T) {
	r := &run{opts: Options{Root: false}}
	got := checkWiring(context.Background(), r)
	if len(got) != 1 || got[0].String() != "note: run as root to check the sshd and PAM wiring too" {
		t.Errorf("not root: %v", got)
	}
	r.opts.SkipWiring = true
	if got := checkWiring(context.Background(), r); len(got) != 0 {
		t.Errorf("--no-wiring: %v", got)
	}
}
