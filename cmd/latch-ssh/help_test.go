package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/helptext"
)

// TestNewUserHelp (issue 13, point 5: what a new user meets first): every
// way of asking for help exits 0 and prints on stdout, and each command's
// usage line names exactly the flags its list shows, spelled the same way
// (--user, not -user in one place and --user in the other).
func TestNewUserHelp(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := dispatch(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := run(args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: latch-ssh COMMAND") || !strings.Contains(out, "ForceCommand gate") {
			t.Errorf("latch-ssh %s: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
		}
	}
	for _, c := range commands() {
		var first string
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {"--help", c.name}} {
			code, out, errOut := run(args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "usage: latch-ssh "+c.name) {
				t.Errorf("latch-ssh %s: exit %d, stderr %q, stdout %q", strings.Join(args, " "), code, errOut, out)
				continue
			}
			if first == "" {
				first = out
			} else if out != first {
				t.Errorf("latch-ssh %s differs from latch-ssh %s --help", strings.Join(args, " "), c.name)
			}
			if m := helptext.Mismatch(out); m != nil {
				t.Errorf("latch-ssh %s: %s\n%s", strings.Join(args, " "), strings.Join(m, "; "), out)
			}
		}
	}
	if code, _, errOut := run("help", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("help of an unknown command: exit %d, stderr %q", code, errOut)
	}
}

// TestNewUserVersion (issue 13, point 5): --version and -V work like
// version, as most commands' do.
func TestNewUserVersion(t *testing.T) {
	var want string
	for _, arg := range []string{"version", "--version", "-V"} {
		var out, errOut bytes.Buffer
		code := dispatch([]string{arg}, &out, &errOut)
		if code != 0 || errOut.Len() != 0 || !strings.HasPrefix(out.String(), "latch-ssh ") {
			t.Fatalf("latch-ssh %s: exit %d, stdout %q, stderr %q", arg, code, out.String(), errOut.String())
		}
		if want == "" {
			want = out.String()
		} else if out.String() != want {
			t.Errorf("latch-ssh %s printed %q, version %q", arg, out.String(), want)
		}
	}
}
