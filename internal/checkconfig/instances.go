package checkconfig

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// checkInstances (issue 17) lists, with [latch] instance = "host", the
// users who have no instance of this server for some latch their logins
// ask: paired before instances were turned on, or a service given an
// operation since. Their logins ask the whole latch, which still closes
// every server, so it is a warning, not an error: but closing only this
// server from the Latch app does not work for them until
// `latch-ssh pair --repair` has run. With instances off, stored ids are
// noted as unused; ids of a user not in [users] are a warning either way.
func checkInstances(_ context.Context, r *run) []Finding {
	cfg := r.cfg
	if cfg == nil {
		return nil
	}
	var out []Finding
	for _, u := range slices.Sorted(maps.Keys(cfg.Instances)) {
		if _, ok := cfg.Users[u]; !ok {
			out = append(out, r.finding(Warning, []string{"instances", u},
				fmt.Sprintf("[instances] has ids for %s, who is not in [users]: nothing asks about them (left by an unpair that could not finish, or the account line was removed)", u),
				fmt.Sprintf("remove the line, and the instances in the Latch app; or map %s in [users] again", u)))
		}
	}
	if !cfg.InstancesOn() {
		if len(cfg.Instances) > 0 {
			out = append(out, r.finding(Note, []string{"latch", "instance"},
				fmt.Sprintf("%d user(s) have instance ids in [instances], but [latch] instance is off: their logins ask the whole latch", len(cfg.Instances)),
				`set instance = "host" in [latch] to ask each server's own instance`))
		}
		return out
	}
	for _, u := range slices.Sorted(maps.Keys(cfg.Users)) {
		missing := cfg.MissingInstances(u)
		if len(missing) == 0 {
			continue
		}
		names := make([]string, len(missing))
		for i, op := range missing {
			names[i] = "operation " + op
			if op == "" {
				names[i] = "the application latch"
			}
		}
		out = append(out, r.finding(Warning, []string{"users", u},
			fmt.Sprintf("%s has no instance of this server for %s: its logins ask the whole latch (closing this server alone in the Latch app does not stop them)",
				u, strings.Join(names, ", ")),
			"latch-ssh pair --repair --user "+u+" (or latch-ssh pair --repair for every user)"))
	}
	return out
}
