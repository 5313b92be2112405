package checkconfig

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/users"
)

// checkFailMode warns that fail_mode = "open" lets everyone in when Latch
// cannot be reached.
func checkFailMode(_ context.Context, r *run) []Finding {
	if r.cfg == nil || r.cfg.Policy.FailMode != users.FailOpen {
		return nil
	}
	return []Finding{r.finding(Warning, []string{"policy", "fail_mode"},
		`[policy] fail_mode = "open": when Latch cannot be reached, everyone is let in (logged as FAIL-OPEN)`,
		`fail_mode = "closed", unless an outage of Latch must not lock anyone out`)}
}

// checkOperations warns about an [operations] (or [user_operations.USER])
// key "latch-ssh". Earlier documentation named it as the ForceCommand
// gate's, but the gate has always decided as gatesocket.ForceCommandService
// ("sshd"), and since issue 12 the daemon decides every non-root caller for
// that service whatever it asks: an operation under "latch-ssh" guards
// nothing, and an admin who put the SSH switch there believes logins check
// a latch that is never asked.
func checkOperations(_ context.Context, r *run) []Finding {
	cfg := r.cfg
	if cfg == nil {
		return nil
	}
	const stale = "latch-ssh"
	fix := "rename the key to " + gatesocket.ForceCommandService
	var out []Finding
	if op, ok := cfg.Operations[stale]; ok && cfg.Operations[gatesocket.ForceCommandService] != op {
		out = append(out, r.finding(Warning, []string{"operations", stale},
			fmt.Sprintf("[operations] %s: the ForceCommand gate decides as %q, like the PAM hook in sshd's stack, not as %q: this operation guards no SSH login",
				stale, gatesocket.ForceCommandService, stale), fix))
	}
	for _, u := range slices.Sorted(maps.Keys(cfg.UserOperations)) {
		if op, ok := cfg.UserOperations[u][stale]; ok && cfg.UserOperations[u][gatesocket.ForceCommandService] != op {
			out = append(out, r.finding(Warning, []string{"user_operations", u, stale},
				fmt.Sprintf("[user_operations.%s] %s: the ForceCommand gate decides as %q, not as %q: this operation guards no SSH login",
					u, stale, gatesocket.ForceCommandService, stale), fix))
		}
	}
	return out
}
