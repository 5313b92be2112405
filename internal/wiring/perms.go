package wiring

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// execPolicy is the rule for an executable that runs at every login
// (pathtrust): owned by root and writable by no one else, and so is every
// directory on its way (a sticky one such as /tmp only above the program's
// own directory); executable, and neither setuid nor setgid.
func execPolicy() pathtrust.Policy {
	return pathtrust.Policy{
		Sticky:   true,
		Exec:     true,
		FileRisk: "make it allow anyone",
		DirRisk:  "replace the program in it",
	}
}

// execProblem says what is wrong with an executable that runs at every
// login (the PAM hook as root, the gate as the user), or "" when nothing.
//
// A hook that cannot run denies everyone (pam_exec fails, `required` fails
// the stack). A hook that someone other than root can replace, directly or
// through a writable directory, hands that someone root at the next login.
// Go binaries must never be setuid/setgid (the runtime is not built for it).
func execProblem(path string) (msg, fix string) {
	p := clean(path)
	if !filepath.IsAbs(path) {
		return p + " is not an absolute path: what runs depends on the working directory and PATH", "use the full path"
	}
	_, _, err := pathtrust.Stat(path, execPolicy())
	var pe *pathtrust.Error
	switch {
	case err == nil:
		return "", ""
	case !errors.As(err, &pe):
		return fmt.Sprintf("%s cannot run (%s): the login is refused", p, clean(errText(err))), "install latch-ssh, or fix the path"
	case pe.Dir:
		return fmt.Sprintf("%s is in directory %s, which someone other than root can write: it %s", p, clean(pe.Path), clean(pe.Problem)),
			clean(pe.Fix)
	case pe.Kind == pathtrust.NotRegular:
		return p + " is not an executable file: the login is refused", clean(pe.Fix)
	case pe.Kind == pathtrust.Writable:
		return fmt.Sprintf("%s is group or world writable (mode %04o): anyone who can write it decides who logs in", p, pe.Mode.Perm()),
			clean(pe.Fix)
	case pe.Path != path:
		// The problem is with the file a link leads to, or with a link.
		return fmt.Sprintf("%s: %s %s", p, clean(pe.Path), clean(pe.Problem)), clean(pe.Fix)
	}
	return p + " " + clean(pe.Problem), clean(pe.Fix)
}

// errText drops the path Go repeats in *PathError: the message names it.
func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
