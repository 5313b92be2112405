package main

import (
	"maps"
	"slices"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/users"
)

// checkOperations warns about an [operations] (or [user_operations.USER])
// key "latch-ssh". Earlier documentation named it as the ForceCommand
// gate's, but the gate has always decided as gatesocket.ForceCommandService
// ("sshd"), and since issue 12 the daemon decides every non-root caller for
// that service whatever it asks: an operation under "latch-ssh" guards
// nothing, and an admin who put the SSH switch there believes logins check
// a latch that is never asked.
func checkOperations(r *report, cfg *users.Config) {
	const stale = "latch-ssh"
	if op, ok := cfg.Operations[stale]; ok && cfg.Operations[gatesocket.ForceCommandService] != op {
		r.warnf("%s: [operations] %s: the ForceCommand gate decides as %q, like the PAM hook in sshd's stack, not as %q: this operation guards no SSH login (fix: rename the key to %s)",
			r.at(cfg, "operations", stale), stale, gatesocket.ForceCommandService, stale, gatesocket.ForceCommandService)
	}
	for _, u := range slices.Sorted(maps.Keys(cfg.UserOperations)) {
		if op, ok := cfg.UserOperations[u][stale]; ok && cfg.UserOperations[u][gatesocket.ForceCommandService] != op {
			r.warnf("%s: [user_operations.%s] %s: the ForceCommand gate decides as %q, not as %q: this operation guards no SSH login (fix: rename the key to %s)",
				r.at(cfg, "user_operations", u, stale), u, stale, gatesocket.ForceCommandService, stale, gatesocket.ForceCommandService)
		}
	}
}
