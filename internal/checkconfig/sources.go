package checkconfig

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/latch-ssh/latch-ssh/users"
)

// checkSources says which files make up the configuration when there is
// more than latch.toml: the drop-ins read, in order, the names in latch.d
// that are not read (a backup that looks like a drop-in is a common
// surprise), and how many users each file maps. With ListUsers it adds one
// line per user, "file:line: maps NAME", so that an admin can tell at a
// glance whether a pairing lives in the file configuration management
// writes or in the pairing file. With latch.toml alone it says nothing
// unless asked: the default output stays what it was.
func checkSources(_ context.Context, r *run) []Finding {
	in := r.in
	if in == nil {
		return nil
	}
	var out []Finding
	dir := users.DropInDir(in.Path)
	if len(in.Files) > 1 {
		out = append(out, Finding{Severity: Note, File: dir,
			Message: fmt.Sprintf("drop-ins read after %s, in this order: %s", in.Path, strings.Join(baseNames(in.Files[1:]), ", "))})
	}
	if len(in.Ignored) > 0 {
		out = append(out, Finding{Severity: Note, File: dir,
			Message: fmt.Sprintf("not read (only *.toml names not starting with \".\" are): %s", strings.Join(baseNames(in.Ignored), ", ")),
			Fix:     "remove leftovers, or rename a file to NAME.toml to have it read"})
	}
	if r.cfg == nil {
		return out
	}
	if len(in.Files) > 1 {
		per := map[string]int{}
		for _, s := range r.cfg.UserSources {
			per[s.File]++
		}
		var counts []string
		for _, f := range in.Files {
			if per[f] > 0 {
				counts = append(counts, fmt.Sprintf("%d in %s", per[f], f))
			}
		}
		if len(counts) > 0 {
			out = append(out, Finding{Severity: Note, Message: "[users] names mapped: " + strings.Join(counts, ", ") +
				" (check-config --users lists each with its file:line)"})
		}
	}
	if r.opts.ListUsers {
		for _, u := range slices.Sorted(maps.Keys(r.cfg.UserSources)) {
			s := r.cfg.UserSources[u]
			out = append(out, Finding{Severity: Note, File: s.File, Line: s.Line, Message: "maps " + u})
		}
	}
	return out
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
