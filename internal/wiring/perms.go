package wiring

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

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
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("%s cannot run (%s): the login is refused", p, clean(errText(err))), "install latch-ssh, or fix the path"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return p + " is not an executable file: the login is refused", "chmod 0755 " + p
	case !ok:
		return p + ": cannot read its owner", ""
	case st.Uid != 0:
		return fmt.Sprintf("%s is owned by uid %d, not root: its owner can make it allow anyone", p, st.Uid), "chown root:root " + p
	case fi.Mode().Perm()&0o022 != 0:
		return p + " is group or world writable: anyone who can write it decides who logs in", "chmod go-w " + p
	case fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0:
		return p + " is setuid or setgid, which latch-ssh binaries must never be", "chmod ug-s " + p
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Sprintf("%s: %s", p, clean(errText(err))), ""
	}
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		if di, err := os.Stat(d); err == nil {
			dst, ok := di.Sys().(*syscall.Stat_t)
			// A root-owned sticky directory (like /tmp) is fine: others
			// cannot rename or delete root's file in it.
			writable := di.Mode().Perm()&0o022 != 0 && di.Mode()&fs.ModeSticky == 0
			if !ok || dst.Uid != 0 || writable {
				return fmt.Sprintf("%s is in directory %s, which someone other than root can write: they can replace it", p, clean(d)),
					"chown root:root " + clean(d) + " && chmod go-w " + clean(d)
			}
		}
		if d == "/" || d == "." {
			return "", ""
		}
	}
}

// errText drops the path Go repeats in *PathError: the message names it.
func errText(err error) string {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
