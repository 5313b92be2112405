package checkconfig

import (
	"context"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestSecurityCheckStaleGateOperation (issue 12, item 11): the docs once
// named "latch-ssh" as the ForceCommand gate's key in [operations], but
// the gate decides as "sshd", and the daemon now forces that for every
// non-root caller. check-config warns that such an operation guards no SSH
// login, and says to rename the key.
func TestSecurityCheckStaleGateOperation(t *testing.T) {
	const op = "\"OPERATIONOPERATION01\""
	for _, tc := range []struct {
		name, tables string
		warnings     int
	}{
		{"none", "[operations]\nsudo = " + op + "\n", 0},
		{"stale key", "[operations]\nlatch-ssh = " + op + "\n", 1},
		{"stale per-user key", "[users]\nalice = \"" + strings.Repeat("a", 64) + "\"\n[user_operations.alice]\nlatch-ssh = " + op + "\n", 1},
		{"both keys, same operation", "[operations]\nlatch-ssh = " + op + "\nsshd = " + op + "\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := systest.OfflineLatch +
				"[policy]\nfail_mode = \"closed\"\n" + tc.tables
			cfg, err := users.Parse("latch.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			rep := &Report{Findings: checkOperations(context.Background(), &run{cfg: cfg})}
			out := render(rep)
			if errors, warnings := rep.Count(); warnings != tc.warnings || errors != 0 {
				t.Errorf("%d warnings, %d errors, want %d warnings:\n%s", warnings, errors, tc.warnings, out)
			}
			if tc.warnings > 0 && !strings.Contains(out, "rename the key to sshd") {
				t.Errorf("the warning gives no fix:\n%s", out)
			}
		})
	}
}
