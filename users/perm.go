package users

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// PermissionError says why a file or directory is not safe to trust, and
// the command that makes it safe.
type PermissionError struct {
	Path    string
	Problem string
	Fix     string // a shell command
}

// Error formats the error as "path: problem (fix: command)".
func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: %s (fix: %s)", e.Path, e.Problem, e.Fix)
}

// chownFix is the command that gives path to root, or to the user this
// process runs as when that is not root (tests, an unprivileged demo).
func chownFix(path string) string {
	if euid := os.Geteuid(); euid != 0 {
		return fmt.Sprintf("chown %d %s", euid, path)
	}
	return "chown root:root " + path
}

// trustedOwner reports whether uid may own the files this process trusts:
// root, or the process's own user.
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// CheckFile checks fi, the Stat of an open file at path (Stat the open
// file, not the path, so the checked file is the one read): a regular file
// owned by root (or this process's user) that no one else can write, nor
// read when holdsSecret. It returns a *PermissionError.
func CheckFile(path string, fi os.FileInfo, holdsSecret bool) error {
	if !fi.Mode().IsRegular() {
		return &PermissionError{path, "is not a regular file", "replace it with a regular file"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &PermissionError{path, "has no owner information", "use a local file system"}
	}
	perm := fi.Mode().Perm()
	switch {
	case !trustedOwner(st.Uid):
		return &PermissionError{path, fmt.Sprintf("is owned by uid %d, so that user could change it", st.Uid), chownFix(path)}
	case perm&0o022 != 0:
		fix := "chmod go-w " + path
		if holdsSecret {
			fix = "chmod 600 " + path
		}
		return &PermissionError{path, fmt.Sprintf("is writable by %s (mode %04o)", others(perm, 0o020), perm), fix}
	case holdsSecret && perm&0o044 != 0:
		return &PermissionError{path, fmt.Sprintf("holds the Latch secret but is readable by %s (mode %04o)", others(perm, 0o040), perm),
			"chmod 600 " + path}
	}
	return nil
}

// others names who besides the owner has a permission: groupBit is its
// group bit, and the world bit is three bits lower.
func others(perm os.FileMode, groupBit os.FileMode) string {
	switch {
	case perm&groupBit != 0 && perm&(groupBit>>3) != 0:
		return "group and others"
	case perm&groupBit != 0:
		return "its group"
	}
	return "others"
}

// CheckDirs checks dir and every directory above it, like sshd's
// StrictModes: each must be owned by root (or this process's user) and not
// writable by group or others, else someone else could swap the files
// below. One exception keeps /tmp usable: a sticky directory above dir
// (only an entry's owner may rename it there). dir must be absolute and
// free of symlinks (filepath.EvalSymlinks). It returns a *PermissionError.
func CheckDirs(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("checking %s: not an absolute path", dir)
	}
	// Walk from the root down, so the first problem reported is the
	// outermost one.
	dirs := []string{"/"}
	for _, p := range strings.Split(filepath.Clean(dir), "/") {
		if p != "" {
			dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], p))
		}
	}
	for i, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("checking directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		switch {
		case !fi.IsDir():
			return &PermissionError{d, "is not a directory", "use a path without symbolic links"}
		case !ok:
			return &PermissionError{d, "has no owner information", "use a local file system"}
		case !trustedOwner(st.Uid):
			return &PermissionError{d, fmt.Sprintf("is owned by uid %d, so that user could replace what it holds", st.Uid), chownFix(d)}
		case perm&0o022 != 0 && (fi.Mode()&os.ModeSticky == 0 || i == len(dirs)-1):
			return &PermissionError{d, fmt.Sprintf("is writable by %s (mode %04o), so they could replace what it holds",
				others(perm, 0o020), perm), "chmod go-w " + d}
		}
	}
	return nil
}

// maxSymlinks bounds the symlink chain at a checked path.
const maxSymlinks = 8

// openChecked opens the regular file at path for reading after checking
// every directory leading to it and to each symlink hop on the way. It opens
// without following a symlink, so the file cannot be swapped after the
// checks. It returns the open file, its symlink-free path and its Stat, for
// the caller to pass to CheckFile: whether the file holds a secret may only
// be known after reading it.
func openChecked(path string) (*os.File, string, os.FileInfo, error) {
	cur, err := filepath.Abs(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%s: %w", path, err)
	}
	for hops := 0; ; hops++ {
		dir, err := filepath.EvalSymlinks(filepath.Dir(cur))
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := CheckDirs(dir); err != nil {
			return nil, "", nil, err
		}
		cur = filepath.Join(dir, filepath.Base(cur))
		fi, err := os.Lstat(cur)
		if err != nil {
			return nil, "", nil, err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		if hops == maxSymlinks {
			return nil, "", nil, fmt.Errorf("%s: too many symbolic links", path)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return nil, "", nil, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		cur = target
	}
	// O_NONBLOCK: a FIFO planted here must not hang the open.
	f, err := os.OpenFile(cur, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, "", nil, fmt.Errorf("%s: became a symbolic link while being opened: %w", cur, err)
		}
		return nil, "", nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &PermissionError{cur, "is not a regular file", "replace it with a regular file"}
	}
	if err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return f, cur, fi, nil
}
