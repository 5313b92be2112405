package checkconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// checkFile reports every problem users.Inspect found (every reason Load
// refuses the file), one per line, each with its file:line (where the file
// has one) and its fix; then, when there is any, that the file denies
// every login until it loads.
func checkFile(_ context.Context, r *run) []Finding {
	in := r.in
	var out []Finding
	for _, p := range in.Problems {
		out = append(out, fromProblem(p))
	}
	switch {
	case in.Err == nil:
	case errors.Is(in.Err, os.ErrNotExist):
		out = append(out, Finding{Severity: Error, File: in.Path, Message: "no such file",
			Fix: "copy " + r.opts.ExampleConfig + " there, chmod 600 it and fill it in"})
	default:
		out = append(out, Finding{Severity: Error, Message: in.Err.Error()})
	}
	if len(in.Problems) > 0 || in.Err != nil {
		msg := "every login through latch-ssh is denied until this file loads"
		if len(in.Files) > 1 {
			msg = fmt.Sprintf("every login through latch-ssh is denied until this file and its %d drop-in(s) load", len(in.Files)-1)
		}
		out = append(out, Finding{Severity: Error, File: in.Path, Message: msg})
	}
	return out
}

// loads reports whether the file checked loads (Load would accept it).
func (r *run) loads() bool {
	return r.cfg != nil && (r.in == nil || len(r.in.Problems) == 0 && r.in.Err == nil)
}
