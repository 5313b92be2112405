// Package pathtrust decides whether root may trust a file: the rule
// "whoever could change this file, or swap it through a directory or a
// symbolic link on its way, must be root or one trusted user", written once
// for the four files latch-ssh trusts:
//
//   - latch.toml, its secret_file and ca_file (package users);
//   - a user's authorized_keys (package authkeys, read as the user);
//   - the embedded server's host keys (package sshserver);
//   - the PAM hook and ForceCommand gate executables (package wiring).
//
// Each caller passes a Policy: who besides root is trusted, whether a
// sticky directory such as /tmp may lie on the way, whether the file is
// private (a secret) or an executable, and the words its messages use.
//
// # The walk
//
// Open resolves the path itself, one component at a time from /, the way
// the kernel does, and checks every directory before reading an entry of
// it: the directory must be owned by root or the trusted user and be
// writable by nobody else. A symbolic link is followed (at most MaxLinks
// of them, counting links to directories): its target is resolved from the
// directory holding the link (already checked), or from / for an absolute
// target, and ".." means the parent of the directory reached so far, not a
// textual step back (the kernel's meaning, and realpath's in OpenSSH's
// safe_path; filepath.Clean's textual meaning differs when a link precedes
// the ".."). The final file is opened with O_NOFOLLOW, O_NOCTTY (a link
// to a terminal must not become the daemon's controlling terminal) and
// O_NONBLOCK (a FIFO must not hang the daemon) and checked with fstat on the open
// descriptor, so what is read is what was checked; it must be a regular
// file owned by root or the trusted user, writable by nobody else, not on
// /proc or /sys.
//
// Every directory from / to the file is checked, and so is every directory
// holding a link on the way: sshd's secure_filename checks only the
// directories of the final, realpath-resolved file, which lets whoever can
// write the directory holding a link repoint it at another file.
//
// Between the walk and the open only root and the trusted user can change
// anything on the checked path, and they may change the file anyway, so a
// race gains nobody anything.
package pathtrust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxLinks bounds the symbolic links Open follows for one path (the kernel
// allows 40; a real configuration needs one or two).
const MaxLinks = 8

// Policy says what a caller trusts. The zero Policy trusts root only,
// refuses sticky directories, and has generic words.
type Policy struct {
	// User, when HasUser, is trusted like root: the user whose
	// authorized_keys it is, or this process's own uid when it does not
	// run as root (tests, the unprivileged demo).
	User    uint32
	HasUser bool
	// UserName names User in messages: "the user", "this process's user".
	UserName string
	// Home limits where User's ownership is the fix: inside Home the fix
	// for a bad owner is "chown User", elsewhere "chown root". "" means
	// everywhere (when HasUser), and "chown root:root" for root.
	Home string

	// Sticky accepts a directory writable by others when it is sticky
	// (like /tmp: only an entry's owner may rename or remove it) and is
	// not the directory holding the file itself: there anyone could plant
	// the file before it exists, or a hard link to another root-owned
	// file (fs.protected_hardlinks off). A symbolic link in a sticky
	// directory must then be owned by root or User, since its owner
	// chooses where it points. Without Sticky, sshd's StrictModes rule
	// holds: no directory on the way may be writable by others.
	Sticky bool
	// Moved names what to move out of a refused sticky directory in the
	// fix ("the home directory or key file"); "" means "the file".
	Moved string

	// Private requires the file to give group and others no access at all
	// (it holds a secret: the Latch secret, a host private key).
	Private bool
	// Exec requires an executable file that is neither setuid nor setgid
	// (a Go binary must never be: the runtime is not built for it).
	Exec bool
	// CheckLater leaves the file's owner and mode to the caller, who
	// calls CheckFile after reading it: whether a configuration holds a
	// secret (and so must be Private) is only known then. Open still
	// refuses anything but a regular file.
	CheckLater bool

	// FileRisk ends the problem of a file others could change: "so that
	// user could " + FileRisk ("add keys", "change it").
	FileRisk string
	// DirRisk ends the problem of a directory: "replace the keys below it".
	DirRisk string
	// ReadRisk ends the problem of a private file others may read: "so
	// they could " + ReadRisk ("read the Latch secret").
	ReadRisk string
}

// Kind classifies an Error, for callers that word their own messages.
type Kind int

// The kinds of Error.
const (
	// NotRegular: the file is not a regular file (or not executable).
	NotRegular Kind = iota + 1
	// NoOwner: the file system gives no owner.
	NoOwner
	// BadOwner: owned by someone not trusted (and maybe writable too).
	BadOwner
	// Writable: writable by group or others.
	Writable
	// Readable: a private file others may access.
	Readable
	// SetID: a setuid or setgid executable.
	SetID
	// TooManyLinks: more than MaxLinks symbolic links.
	TooManyLinks
	// ProcFS: on /proc or /sys.
	ProcFS
)

// Error says why a file or directory is not safe to trust, and the command
// that makes it safe.
type Error struct {
	// Path is the file or directory at fault.
	Path string
	// Problem says what is wrong and why it matters.
	Problem string
	// Fix is the shell command that fixes it, or what to do.
	Fix string
	// Kind classifies the problem; Dir says Path is a directory (on the
	// way to the file) rather than the file; UID and Mode are what was
	// found at Path, when Kind is about them.
	Kind Kind
	Dir  bool
	UID  uint32
	Mode fs.FileMode
}

// Error formats the error as "path: problem (fix: command)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s (fix: %s)", e.Path, e.Problem, e.Fix)
}

// Open opens the file at path for reading after checking, as described in
// the package comment, every directory and link on its way and the file
// itself. It returns the open file, its symlink-free path and its Stat.
//
// Errors: an *Error, or an *fs.PathError from the file system (wrapping
// fs.ErrNotExist when the file or a directory does not exist, after every
// directory before it passed; fs.ErrPermission when the caller may not
// read it). path must be absolute.
func Open(path string, p Policy) (*os.File, string, os.FileInfo, error) {
	return p.open(path, os.O_RDONLY|syscall.O_NONBLOCK)
}

// Stat is Open without reading: it checks the file at path as Open does
// (opening it with O_PATH, which needs no read permission, as for an
// executable of mode 0711) and returns its symlink-free path and Stat.
func Stat(path string, p Policy) (string, os.FileInfo, error) {
	f, real, fi, err := p.open(path, unix.O_PATH)
	if err != nil {
		return "", nil, err
	}
	f.Close()
	return real, fi, nil
}

func (p Policy) open(path string, flags int) (*os.File, string, os.FileInfo, error) {
	real, err := p.resolve(path, false)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) && pe.Path != path {
			// The walk stopped at a missing directory on the way; the
			// person asked about path, and os.Open would name it too.
			return nil, "", nil, &fs.PathError{Op: "open", Path: path, Err: pe.Err}
		}
		return nil, "", nil, err
	}
	// O_NOCTTY: the file may be a terminal (a link to /dev/pts/N, refused
	// below as not regular, but only after the open), and a session leader
	// without a controlling terminal, as a daemon under systemd is, that
	// opens a terminal without it acquires it: whoever holds the master
	// side could then send the daemon SIGINT or SIGQUIT by typing ^C or ^\
	// (issue 12 re-check, item 9).
	f, err := os.OpenFile(real, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, "", nil, fmt.Errorf("%s: became a symbolic link while being opened: %w", real, err)
		}
		return nil, "", nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case p.CheckLater && !fi.Mode().IsRegular():
		err = &Error{Path: real, Problem: "is not a regular file", Fix: "replace it with a regular file", Kind: NotRegular}
	case !p.CheckLater:
		err = CheckFile(real, fi, p)
	}
	if err == nil {
		err = checkFS(f, real)
	}
	if err != nil {
		f.Close()
		return nil, "", nil, err
	}
	return f, real, fi, nil
}

// CheckDir checks dir, every directory above it and every link on its way,
// as Open does for the directories of a file, dir being the one that would
// hold the file (so not sticky). It returns dir's symlink-free path.
func CheckDir(dir string, p Policy) (string, error) {
	return p.resolve(dir, true)
}

// CheckFile checks fi, the Stat of the open file at path (Stat the open
// file, not the path, so the checked file is the one read). Open calls it;
// a caller that learns more about the file after reading it (that it
// holds a secret) calls it again with a stricter Policy.
func CheckFile(path string, fi os.FileInfo, p Policy) error {
	notRegular := &Error{Path: path, Problem: "is not a regular file", Fix: "replace it with a regular file", Kind: NotRegular}
	if !fi.Mode().IsRegular() {
		return notRegular
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &Error{Path: path, Problem: "has no owner information", Fix: "use a local file system", Kind: NoOwner}
	}
	perm := fi.Mode().Perm()
	if e := p.check(path, st.Uid, fi.Mode(), false); e != nil {
		return e
	}
	switch {
	case p.Private && perm&0o077 != 0:
		verb := "readable"
		if perm&0o044 == 0 {
			verb = "usable"
		}
		return &Error{Path: path, Problem: fmt.Sprintf("is %s by %s (mode %04o), so they could %s", verb, others(perm&0o077), perm, or(p.ReadRisk, "read it")),
			Fix: "chmod 600 " + path, Kind: Readable, UID: st.Uid, Mode: fi.Mode()}
	case p.Exec && perm&0o111 == 0:
		notRegular.Problem, notRegular.Fix = "is not an executable file", "chmod 0755 "+path
		return notRegular
	case p.Exec && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0:
		return &Error{Path: path, Problem: "is setuid or setgid, which latch-ssh binaries must never be", Fix: "chmod ug-s " + path,
			Kind: SetID, UID: st.Uid, Mode: fi.Mode()}
	}
	return nil
}

// check applies the owner and write rules to a file or directory (dir):
// nil when uid may own it and nobody else may write it. A sticky directory
// writable by others is the caller's business (it is not refused here).
func (p Policy) check(path string, uid uint32, mode fs.FileMode, dir bool) *Error {
	perm := mode.Perm()
	risk := or(p.FileRisk, "change it")
	if dir {
		risk = or(p.DirRisk, "replace what it holds")
	}
	writable := perm&0o022 != 0 && !(dir && mode&fs.ModeSticky != 0)
	var problems, fixes []string
	kind := Writable
	if !p.trusted(uid) {
		kind = BadOwner
		who := "not root"
		if p.HasUser && p.User != 0 {
			who = fmt.Sprintf("neither root nor %s (uid %d)", or(p.UserName, "the trusted user"), p.User)
		}
		problems = append(problems, fmt.Sprintf("is owned by uid %d, %s, so that user could %s", uid, who, risk))
		fixes = append(fixes, p.chownFix(path))
	}
	if writable {
		also := ""
		if len(problems) > 0 {
			also = "also "
		}
		problems = append(problems, fmt.Sprintf("is %swritable by %s (mode %04o), so they could %s", also, others(perm&0o022), perm, risk))
		fix := "chmod go-w " + path
		if p.Private && !dir {
			fix = "chmod 600 " + path
		}
		fixes = append(fixes, fix)
	}
	if len(problems) == 0 {
		return nil
	}
	// Both problems at once, with both fixes: one round of fixing.
	return &Error{Path: path, Problem: strings.Join(problems, "; it "), Fix: strings.Join(fixes, " && "),
		Kind: kind, Dir: dir, UID: uid, Mode: mode}
}

func (p Policy) trusted(uid uint32) bool { return uid == 0 || p.HasUser && uid == p.User }

// chownFix names the owner path should have: User inside Home, root
// elsewhere. Around a home (Home set) the fix leaves the group alone:
// directories such as /home may carry a group on purpose, and with no
// group write (checked separately) it does not matter for trust. latch-ssh's
// own files and directories get root's group too, as packaged.
func (p Policy) chownFix(path string) string {
	switch {
	case p.HasUser && p.User != 0 && (p.Home == "" || within(path, p.Home)):
		return fmt.Sprintf("chown %d %s", p.User, path)
	case p.Home != "":
		return "chown root " + path
	}
	return "chown root:root " + path
}

// within reports whether path is dir or below it (both clean, absolute).
func within(path, dir string) bool {
	dir = filepath.Clean(dir)
	return dir != "/" && (path == dir || strings.HasPrefix(path, dir+"/"))
}

// checkDir checks the directory at d (Lstat: not a link). It returns
// whether d was accepted only because it is sticky.
func (p Policy) checkDir(d string) (sticky bool, err error) {
	fi, err := os.Lstat(d)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, &fs.PathError{Op: "open", Path: d, Err: syscall.ENOTDIR}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, &Error{Path: d, Problem: "has no owner information", Fix: "use a local file system", Kind: NoOwner, Dir: true}
	}
	if e := p.check(d, st.Uid, fi.Mode(), true); e != nil {
		return false, e
	}
	if fi.Mode().Perm()&0o022 == 0 {
		return false, nil
	}
	// Sticky and writable by others.
	if !p.Sticky {
		return false, p.stickyError(d, fi.Mode(), st.Uid, " (a sticky directory such as /tmp is not accepted on this path)")
	}
	return true, nil
}

func (p Policy) stickyError(d string, mode fs.FileMode, uid uint32, why string) *Error {
	perm := mode.Perm()
	e := &Error{Path: d, Kind: Writable, Dir: true, UID: uid, Mode: mode,
		Problem: fmt.Sprintf("is writable by %s (mode %04o), so they could %s%s", others(perm&0o022), perm, or(p.DirRisk, "replace what it holds"), why),
		Fix:     "chmod go-w " + d}
	if !p.Sticky {
		e.Fix = "move " + or(p.Moved, "the file") + " out of " + d
	}
	return e
}

// resolve walks path as the package comment says and returns the
// symlink-free path of its final component, every directory before it
// checked. With wantDir the final component must be a directory, which is
// checked too.
func (p Policy) resolve(path string, wantDir bool) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s: not an absolute path", path)
	}
	if strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("%q: holds a NUL byte", path)
	}
	// cur is symlink-free and checked; sticky holds the checked
	// directories accepted only because they are sticky.
	cur := "/"
	sticky := map[string]bool{}
	if s, err := p.checkDir(cur); err != nil {
		return "", err
	} else if s {
		sticky[cur] = true
	}
	todo := strings.Split(path, "/")
	links := 0
	for {
		if !hasName(todo) {
			// The path ends in a directory (cur): "/", "..", "dir/.".
			// Wanted as a file, Open finds it is not a regular file.
			if wantDir && sticky[cur] {
				return "", p.parentSticky(cur)
			}
			return cur, nil
		}
		c := todo[0]
		todo = todo[1:]
		last := !hasName(todo)
		switch c {
		case "", ".":
			continue
		case "..":
			// cur is symlink-free, so its textual parent is its real
			// parent, checked on the way down to cur.
			cur = filepath.Dir(cur)
			continue
		}
		if last && !wantDir && sticky[cur] {
			// Refused before looking: a missing file here must not be
			// created (host keys are), nor found planted later.
			return "", p.parentSticky(cur)
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if sticky[cur] && !p.trusted(uidOf(fi)) {
				return "", &Error{Path: next, Kind: BadOwner, UID: uidOf(fi),
					Problem: fmt.Sprintf("is a symbolic link owned by uid %d in the sticky directory %s, so that user chooses what it points to", uidOf(fi), cur),
					Fix:     "use the path it points to, or remove it"}
			}
			links++
			if links > MaxLinks {
				return "", &Error{Path: path, Kind: TooManyLinks, Problem: fmt.Sprintf("too many symbolic links: it leads through more than %d symbolic links (a loop?)", MaxLinks),
					Fix: "point the link straight at the file"}
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", err
			}
			if target == "" {
				return "", &fs.PathError{Op: "readlink", Path: next, Err: syscall.ENOENT}
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if last && !wantDir {
			return next, nil
		}
		s, err := p.checkDir(next)
		if err != nil {
			return "", err
		}
		if s {
			sticky[next] = true
		}
		cur = next
	}
}

// parentSticky is the error for a sticky directory that would hold the
// file.
func (p Policy) parentSticky(d string) error {
	fi, err := os.Lstat(d)
	if err != nil {
		return err
	}
	return p.stickyError(d, fi.Mode(), uidOf(fi), " (a sticky directory is accepted above the file's directory, not as it)")
}

// hasName reports whether the components left name anything: trailing
// "" and "." do not.
func hasName(todo []string) bool {
	for _, c := range todo {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

func uidOf(fi os.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// checkFS refuses a file on /proc or /sys. Their files look regular and
// root-owned, and some of /proc/self (maps, for one) are readable by any
// thread of the daemon, even one acting as a user (the kernel lets a
// process's threads read each other's): a link there reads the daemon's
// own state. Nothing latch-ssh trusts lives there.
func checkFS(f *os.File, p string) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("%s: statfs: %w", p, err)
	}
	if st.Type == unix.PROC_SUPER_MAGIC || st.Type == unix.SYSFS_MAGIC {
		return &Error{Path: p, Problem: "is on /proc or /sys, not a file latch-ssh can trust", Fix: "use a regular file on a real file system", Kind: ProcFS}
	}
	return nil
}

// others names who besides the owner has the bits set in perm (group and
// other bits only).
func others(perm fs.FileMode) string {
	switch {
	case perm&0o070 != 0 && perm&0o007 != 0:
		return "group and others"
	case perm&0o070 != 0:
		return "its group"
	}
	return "others"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
