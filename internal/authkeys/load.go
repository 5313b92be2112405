package authkeys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/asuser"
)

// Match returns the first key in keys equal to offered, comparing the wire
// encodings (Marshal). A certificate never equals a plain key, so a client
// offering a certificate matches nothing (certificates are not supported).
//
// The comparison is not constant-time on purpose: public keys are not
// secrets, and the SSH protocol itself tells a client whether the server
// would accept a key before any signature (the "publickey" query), so
// timing reveals nothing the protocol does not.
func Match(keys []Key, offered ssh.PublicKey) (*Key, bool) {
	if offered == nil {
		return nil, false
	}
	want := offered.Marshal()
	for i := range keys {
		if keys[i].Key != nil && bytes.Equal(keys[i].Key.Marshal(), want) {
			return &keys[i], true
		}
	}
	return nil, false
}

// ExpandPath expands an sshd AuthorizedKeysFile pattern for one user: %h is
// the home directory, %u the user name, %% a literal %; any other % sequence
// is an error. A relative result is taken relative to home, as sshd does.
// home must be absolute; user must not hold a '/' or be "." or ".." (it
// would lead the path elsewhere). The result is cleaned.
func ExpandPath(pattern, user, home string) (string, error) {
	if !filepath.IsAbs(home) {
		return "", fmt.Errorf("authorized keys path %q: home directory %q is not absolute", pattern, home)
	}
	if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\x00") {
		return "", fmt.Errorf("authorized keys path %q: unsafe user name %q", pattern, user)
	}
	if pattern == "" || strings.ContainsRune(pattern, 0) {
		return "", fmt.Errorf("authorized keys path %q: empty or holds a NUL", pattern)
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '%' {
			b.WriteByte(pattern[i])
			continue
		}
		if i+1 == len(pattern) {
			return "", fmt.Errorf("authorized keys path %q: ends with a lone %%", pattern)
		}
		i++
		switch pattern[i] {
		case 'h':
			b.WriteString(home)
		case 'u':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("authorized keys path %q: unknown token %%%c (only %%h, %%u and %%%% are supported)", pattern, pattern[i])
		}
	}
	p := b.String()
	if !filepath.IsAbs(p) {
		p = filepath.Join(home, p)
	}
	return filepath.Clean(p), nil
}

// PermissionError says why an authorized_keys file, or a directory above
// it, is not safe to trust, and the command that makes it safe.
type PermissionError struct {
	// Path is the file or directory at fault.
	Path string
	// Problem says what is wrong and why it matters.
	Problem string
	// Fix is the shell command that fixes it, or what to do.
	Fix string
}

// Error formats the error as "path: problem (fix: command)".
func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: %s (fix: %s)", e.Path, e.Problem, e.Fix)
}

// maxSymlinks bounds the symlink chain Load follows.
const maxSymlinks = 8

// Load checks and parses the authorized_keys file at path for user (whose
// uid owns the keys) with home directory home, with sshd's StrictModes
// rules made stricter:
//
//   - the file must be a regular file owned by root or the user, not
//     writable by group or others;
//   - every directory from the file up to / (the home included and every
//     directory above it) must be owned by root or the user and not
//     writable by group or others. Unlike users.CheckDirs there is no
//     exception for sticky directories: a home or key file under /tmp is
//     refused. (sshd stops at the home directory; we also check above it.)
//
// Everything, from the first lstat to the last read, is done with the
// user's credentials (asuser.Run), as sshd does with temporarily_use_uid:
// the daemon is root, and the user controls the path (a symbolic link in
// their home can point anywhere). Read as root, a link to a root-only file
// would let the user learn which keys it holds, or copy /etc/shadow into
// the log through the parse errors. Read as the user, such a link fails
// with "permission denied" like any other file the user cannot read, so
// nothing leaves the user's control: a link is followed only as far as the
// user could follow it themselves.
//
// A symlink is followed, as sshd does, but the directories holding the link
// and those holding each target are all checked, at most 8 links deep; the
// final file is opened with O_NOFOLLOW and checked with fstat on the open
// descriptor, so what is read is what was checked. Only root and the user
// can change anything along the checked paths, and the user may edit the
// file anyway, so a race between the checks and the open gains nobody
// anything.
//
// Errors: a *PermissionError (with the path and the fix), an error wrapping
// fs.ErrNotExist when the file (or a directory) does not exist (the server
// treats that as "no keys"), an error wrapping fs.ErrPermission when the
// user may not read it, or a Parse error (which never quotes the file's
// content). home is used to word the fixes: inside it, "chown UID"; above
// it, "chown root".
func Load(path string, user asuser.Creds, home string) ([]Key, []Skipped, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("authorized keys file %q: not an absolute path", path)
	}
	var (
		keys    []Key
		skipped []Skipped
	)
	err := asuser.Run(user, func() error {
		var err error
		keys, skipped, err = load(path, user.UID, home)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keys, skipped, nil
}

// load is Load with the caller's credentials (already the user's).
func load(path string, owner uint32, home string) ([]Key, []Skipped, error) {
	c := checker{owner: owner, home: filepath.Clean(home)}
	f, real, err := c.open(filepath.Clean(path))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", real, err)
	}
	if err := c.checkFile(real, fi); err != nil {
		return nil, nil, err
	}
	if err := checkFS(f, real); err != nil {
		return nil, nil, err
	}
	return Parse(f, real)
}

type checker struct {
	owner uint32
	home  string
}

func (c checker) trusted(uid uint32) bool { return uid == 0 || uid == c.owner }

// chownFix names the owner a path should have: the user inside the home,
// root elsewhere.
func (c checker) chownFix(p string) string {
	if c.home != "" && c.home != "/" && (p == c.home || strings.HasPrefix(p, c.home+"/")) {
		return fmt.Sprintf("chown %d %s", c.owner, p)
	}
	return "chown root " + p
}

// open follows path's symlinks (checking the directories of each hop) and
// opens the final file without following a symlink, non-blocking (a FIFO
// must not hang the server). It returns the file and its real path.
func (c checker) open(path string) (*os.File, string, error) {
	cur := path
	for hops := 0; ; hops++ {
		dir, err := filepath.EvalSymlinks(filepath.Dir(cur))
		if err != nil {
			return nil, "", fmt.Errorf("authorized keys file %s: %w", path, err)
		}
		if err := c.checkDirs(dir); err != nil {
			return nil, "", err
		}
		cur = filepath.Join(dir, filepath.Base(cur))
		fi, err := os.Lstat(cur)
		if err != nil {
			return nil, "", fmt.Errorf("authorized keys file: %w", err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		if hops == maxSymlinks {
			return nil, "", &PermissionError{path, fmt.Sprintf("leads through more than %d symbolic links", maxSymlinks),
				"point the link straight at the file"}
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return nil, "", fmt.Errorf("authorized keys file: %w", err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		cur = filepath.Clean(target)
	}
	f, err := os.OpenFile(cur, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, "", fmt.Errorf("authorized keys file %s: became a symbolic link while being opened: %w", cur, err)
		}
		return nil, "", fmt.Errorf("authorized keys file: %w", err)
	}
	return f, cur, nil
}

// checkFS refuses a file on /proc or /sys. Their files look regular and
// root-owned, and some of /proc/self (maps, for one) are readable by any
// thread of the daemon, even one acting as the user, because the kernel
// lets a process's threads read each other's. A link there reads the
// daemon's own state: no content ever reaches the log or the client, but
// nothing there is a key file either.
func checkFS(f *os.File, p string) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s: statfs: %w", p, err)
	}
	if st.Type == unix.PROC_SUPER_MAGIC || st.Type == unix.SYSFS_MAGIC {
		return &PermissionError{p, "is on /proc or /sys, not a key file", "point authorized_keys at a real file"}
	}
	return nil
}

// checkFile checks the Stat of the open file.
func (c checker) checkFile(p string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &PermissionError{p, "is not a regular file", "replace it with a regular file"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &PermissionError{p, "has no owner information", "use a local file system"}
	}
	perm := fi.Mode().Perm()
	switch {
	case !c.trusted(st.Uid):
		return &PermissionError{p, fmt.Sprintf("is owned by uid %d, neither root nor the user (uid %d), so that user could add keys", st.Uid, c.owner),
			c.chownFix(p)}
	case perm&0o022 != 0:
		return &PermissionError{p, fmt.Sprintf("is writable by %s (mode %04o), so they could add keys", others(perm), perm),
			"chmod go-w " + p}
	}
	return nil
}

// checkDirs checks dir (absolute, symlink-free) and every directory above
// it, from / down, so the first problem reported is the outermost one.
func (c checker) checkDirs(dir string) error {
	dirs := []string{"/"}
	for _, p := range strings.Split(dir, "/") {
		if p != "" {
			dirs = append(dirs, filepath.Join(dirs[len(dirs)-1], p))
		}
	}
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("authorized keys directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		switch {
		case !fi.IsDir():
			return &PermissionError{d, "is not a directory", "use a path without symbolic links"}
		case !ok:
			return &PermissionError{d, "has no owner information", "use a local file system"}
		case !c.trusted(st.Uid):
			return &PermissionError{d, fmt.Sprintf("is owned by uid %d, neither root nor the user (uid %d), so that user could replace the keys below it", st.Uid, c.owner),
				c.chownFix(d)}
		case perm&0o022 != 0:
			problem := fmt.Sprintf("is writable by %s (mode %04o), so they could replace the keys below it", others(perm), perm)
			if fi.Mode()&os.ModeSticky != 0 {
				return &PermissionError{d, problem + " (sticky directories such as /tmp are not accepted on the way to authorized_keys)",
					"move the home directory or key file out of " + d}
			}
			return &PermissionError{d, problem, "chmod go-w " + d}
		}
	}
	return nil
}

// others names who besides the owner may write.
func others(perm os.FileMode) string {
	switch {
	case perm&0o020 != 0 && perm&0o002 != 0:
		return "group and others"
	case perm&0o020 != 0:
		return "its group"
	}
	return "others"
}
