package checkconfig

import (
	"context"
	"maps"
	"slices"

	"github.com/latch-ssh/latch-ssh/internal/wiring"
)

// checkWiring inspects sshd and PAM (package wiring), as root only: sshd
// -T needs root, and a non-root run would report holes that are not there.
// It runs even when the file does not load, for the [users] of what did
// parse.
func checkWiring(ctx context.Context, r *run) []Finding {
	if r.opts.SkipWiring {
		return nil
	}
	if !r.opts.Root {
		return []Finding{{Severity: Note, Message: "run as root to check the sshd and PAM wiring too"}}
	}
	opts := r.opts.Wiring
	if r.cfg != nil {
		opts.Users = slices.Sorted(maps.Keys(r.cfg.Users))
		opts.ServerListen = r.cfg.Server.Listen != ""
	}
	var out []Finding
	for _, f := range wiring.Check(ctx, opts) {
		out = append(out, fromWiring(f))
	}
	return out
}
