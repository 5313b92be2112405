package pathtrust_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

const (
	userUID  = 4321  // the trusted user of the authorized_keys-like policy
	otherUID = 65534 // someone trusted by no policy
)

// tree builds files under a root-owned 0755 base directory.
type tree struct {
	t    *testing.T
	base string
}

func (tr tree) p(rel string) string { return filepath.Join(tr.base, rel) }

func (tr tree) dir(rel string, mode os.FileMode, uid int) string {
	tr.t.Helper()
	p := tr.p(rel)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		tr.t.Fatal(err)
	}
	tr.own(p, mode, uid)
	return p
}

func (tr tree) file(rel string, mode os.FileMode, uid int) string {
	tr.t.Helper()
	p := tr.p(rel)
	if err := os.WriteFile(p, []byte(rel), 0o600); err != nil {
		tr.t.Fatal(err)
	}
	tr.own(p, mode, uid)
	return p
}

func (tr tree) link(target, rel string, uid int) string {
	tr.t.Helper()
	p := tr.p(rel)
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

// chain makes etc/l0, a file, and n links etc/lN -> etc/lN-1 ... -> l0,
// and returns etc/lN.
func (tr tree) chain(n int) string {
	tr.t.Helper()
	tr.dir("etc", 0o755, 0)
	tr.file("etc/l0", 0o644, 0)
	for i := 1; i <= n; i++ {
		tr.link("l"+strconv.Itoa(i-1), "etc/l"+strconv.Itoa(i), 0)
	}
	return tr.p("etc/l" + strconv.Itoa(n))
}

func (tr tree) own(p string, mode os.FileMode, uid int) {
	tr.t.Helper()
	if err := os.Lchown(p, uid, uid); err != nil {
		tr.t.Fatal(err)
	}
	// After chown, which clears setuid bits.
	if err := os.Chmod(p, mode); err != nil {
		tr.t.Fatal(err)
	}
}

// TestPolicies is the rule of the package over real directory trees, for
// the policies its four callers use (see their policy functions): root
// only with sticky directories above the file (latch.toml, host keys,
// executables), root plus a user without sticky directories
// (authorized_keys), private and executable files.
func TestPolicies(t *testing.T) {
	systest.Require(t)
	var (
		rootP    = pathtrust.Policy{Sticky: true}
		privateP = pathtrust.Policy{Sticky: true, Private: true}
		execP    = pathtrust.Policy{Sticky: true, Exec: true}
		userP    = func(tr tree) pathtrust.Policy {
			return pathtrust.Policy{User: userUID, HasUser: true, UserName: "the user", Home: tr.p("home"), Moved: "the key file"}
		}
	)
	type want struct {
		real string         // success: the symlink-free path (relative to base); "=" the path given
		path string         // an *Error at this path (relative to base; "=" the path given)
		fix  string         // its fix, with BASE for the base directory
		kind pathtrust.Kind // its kind
		err  error          // else a file-system error (errors.Is)
		text string         // else an error containing this
	}
	for _, tc := range []struct {
		name   string
		policy func(tr tree) pathtrust.Policy
		setup  func(tr tree) string // builds the tree, returns the path to open
		want   want
	}{
		{name: "root file in root directories",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.file("etc/f", 0o644, 0) },
			want:  want{real: "etc/f"}},
		{name: "file owned by another user",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.file("etc/f", 0o644, otherUID) },
			want:  want{path: "etc/f", fix: "chown root:root BASE/etc/f", kind: pathtrust.BadOwner}},
		{name: "group-writable file",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.file("etc/f", 0o664, 0) },
			want:  want{path: "etc/f", fix: "chmod go-w BASE/etc/f", kind: pathtrust.Writable}},
		{name: "directory owned by another user and group-writable: both fixes at once",
			setup: func(tr tree) string { tr.dir("etc", 0o775, otherUID); return tr.file("etc/f", 0o644, 0) },
			want:  want{path: "etc", fix: "chown root:root BASE/etc && chmod go-w BASE/etc", kind: pathtrust.BadOwner}},
		{name: "world-writable directory two levels up",
			setup: func(tr tree) string {
				tr.dir("a", 0o777, 0)
				tr.dir("a/b", 0o755, 0)
				return tr.file("a/b/f", 0o644, 0)
			},
			want: want{path: "a", fix: "chmod go-w BASE/a", kind: pathtrust.Writable}},
		{name: "missing file below a bad directory: the directory is reported",
			setup: func(tr tree) string { tr.dir("etc", 0o777, 0); return tr.p("etc/missing") },
			want:  want{path: "etc", fix: "chmod go-w BASE/etc", kind: pathtrust.Writable}},
		{name: "missing file in good directories",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.p("etc/missing") },
			want:  want{err: fs.ErrNotExist}},

		// Sticky directories.
		{name: "sticky world-writable directory above the file's directory",
			setup: func(tr tree) string {
				tr.dir("tmp", os.ModeSticky|0o777, 0)
				tr.dir("tmp/d", 0o755, 0)
				return tr.file("tmp/d/f", 0o644, 0)
			},
			want: want{real: "tmp/d/f"}},
		{name: "sticky directory refused by a policy without Sticky", policy: userP,
			setup: func(tr tree) string {
				tr.dir("tmp", os.ModeSticky|0o777, 0)
				tr.dir("tmp/d", 0o755, userUID)
				return tr.file("tmp/d/f", 0o644, userUID)
			},
			want: want{path: "tmp", fix: "move the key file out of BASE/tmp", kind: pathtrust.Writable}},
		{name: "sticky directory holding the file itself",
			setup: func(tr tree) string { tr.dir("tmp", os.ModeSticky|0o777, 0); return tr.file("tmp/f", 0o644, 0) },
			want:  want{path: "tmp", fix: "chmod go-w BASE/tmp", kind: pathtrust.Writable}},
		{name: "sticky directory that would hold a missing file: refused, not 'does not exist'",
			setup: func(tr tree) string { tr.dir("tmp", os.ModeSticky|0o777, 0); return tr.p("tmp/new_key") },
			want:  want{path: "tmp", fix: "chmod go-w BASE/tmp", kind: pathtrust.Writable}},
		{name: "directory of another user in a sticky directory",
			setup: func(tr tree) string {
				tr.dir("tmp", os.ModeSticky|0o777, 0)
				tr.dir("tmp/d", 0o755, otherUID)
				return tr.file("tmp/d/f", 0o644, 0)
			},
			want: want{path: "tmp/d", fix: "chown root:root BASE/tmp/d", kind: pathtrust.BadOwner}},
		{name: "link of another user in a sticky directory",
			setup: func(tr tree) string {
				tr.dir("tmp", os.ModeSticky|0o777, 0)
				tr.dir("etc", 0o755, 0)
				tr.file("etc/f", 0o644, 0)
				tr.link(tr.p("etc"), "tmp/d", otherUID)
				return tr.p("tmp/d/f")
			},
			want: want{path: "tmp/d", fix: "use the path it points to, or remove it", kind: pathtrust.BadOwner}},
		{name: "root's link in a sticky directory",
			setup: func(tr tree) string {
				tr.dir("tmp", os.ModeSticky|0o777, 0)
				tr.dir("etc", 0o755, 0)
				tr.file("etc/f", 0o644, 0)
				tr.link(tr.p("etc"), "tmp/d", 0)
				return tr.p("tmp/d/f")
			},
			want: want{real: "etc/f"}},

		// Symbolic links.
		{name: "link to a file elsewhere",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.dir("real", 0o755, 0)
				tr.file("real/f", 0o644, 0)
				return tr.link("../real/f", "etc/f", 0)
			},
			want: want{real: "real/f"}},
		{name: "link to a file in a world-writable directory",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.dir("open", 0o777, 0)
				tr.file("open/f", 0o644, 0)
				return tr.link(tr.p("open/f"), "etc/f", 0)
			},
			want: want{path: "open", fix: "chmod go-w BASE/open", kind: pathtrust.Writable}},
		{name: "link to a directory, the link in a world-writable directory",
			setup: func(tr tree) string {
				tr.dir("open", 0o777, 0)
				tr.dir("safe", 0o755, 0)
				tr.file("safe/f", 0o644, 0)
				tr.link(tr.p("safe"), "open/d", 0)
				return tr.p("open/d/f")
			},
			want: want{path: "open", fix: "chmod go-w BASE/open", kind: pathtrust.Writable}},
		{name: "link to a group-writable file",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.file("etc/real", 0o660, 0)
				return tr.link("real", "etc/f", 0)
			},
			want: want{path: "etc/real", fix: "chmod go-w BASE/etc/real", kind: pathtrust.Writable}},
		{name: "link loop",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.link("f", "etc/f", 0) },
			want:  want{path: "=", fix: "point the link straight at the file", kind: pathtrust.TooManyLinks}},
		{name: "two links in a loop",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.link("b", "etc/a", 0)
				return tr.link("a", "etc/b", 0)
			},
			want: want{path: "=", fix: "point the link straight at the file", kind: pathtrust.TooManyLinks}},
		{name: "a chain of MaxLinks links",
			setup: func(tr tree) string { return tr.chain(pathtrust.MaxLinks) },
			want:  want{real: "etc/l0"}},
		{name: "a chain of MaxLinks+1 links",
			setup: func(tr tree) string { return tr.chain(pathtrust.MaxLinks + 1) },
			want:  want{path: "=", kind: pathtrust.TooManyLinks, fix: "point the link straight at the file"}},
		{name: "dangling link",
			setup: func(tr tree) string { tr.dir("etc", 0o755, 0); return tr.link("nowhere", "etc/f", 0) },
			want:  want{err: fs.ErrNotExist}},

		// Path forms.
		{name: "relative path",
			setup: func(tr tree) string { return "etc/f" },
			want:  want{text: "not an absolute path"}},
		{name: "dot-dot after a link is the parent of its target, as for the kernel",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.file("etc/f", 0o644, 0) // what filepath.Clean would pick
				tr.dir("real", 0o755, 0)
				tr.dir("real/sub", 0o755, 0)
				tr.file("real/f", 0o644, 0)
				tr.link(tr.p("real/sub"), "etc/link", 0)
				return tr.p("etc/link") + "/../f"
			},
			want: want{real: "real/f"}},
		{name: "dot-dot into a bad directory",
			setup: func(tr tree) string {
				tr.dir("open", 0o777, 0)
				tr.file("open/f", 0o644, 0)
				tr.dir("etc", 0o755, 0)
				return tr.p("etc") + "/../open/./f"
			},
			want: want{path: "open", fix: "chmod go-w BASE/open", kind: pathtrust.Writable}},
		{name: "doubled slashes and dots",
			setup: func(tr tree) string {
				tr.dir("etc", 0o755, 0)
				tr.file("etc/f", 0o644, 0)
				return tr.base + "//./etc//f"
			},
			want: want{real: "etc/f"}},
		{name: "a directory",
			setup: func(tr tree) string { return tr.dir("etc", 0o755, 0) + "/" },
			want:  want{path: "etc", fix: "replace it with a regular file", kind: pathtrust.NotRegular}},
		{name: "a FIFO does not hang",
			setup: func(tr tree) string {
				if err := syscall.Mkfifo(tr.p("fifo"), 0o600); err != nil {
					tr.t.Fatal(err)
				}
				return tr.p("fifo")
			},
			want: want{path: "fifo", fix: "replace it with a regular file", kind: pathtrust.NotRegular}},
		{name: "a link to /proc",
			setup: func(tr tree) string { return tr.link("/proc/self/status", "status", 0) },
			want:  want{path: "/proc/", kind: pathtrust.ProcFS, fix: "use a regular file on a real file system"}},

		// Trusted user (authorized_keys).
		{name: "user's file in the user's home", policy: userP,
			setup: func(tr tree) string { tr.dir("home", 0o755, userUID); return tr.file("home/f", 0o600, userUID) },
			want:  want{real: "home/f"}},
		{name: "user's file refused by a root-only policy",
			setup: func(tr tree) string { tr.dir("home", 0o755, userUID); return tr.file("home/f", 0o600, userUID) },
			want:  want{path: "home", fix: "chown root:root BASE/home", kind: pathtrust.BadOwner}},
		{name: "another user's file in the home: chown to the user", policy: userP,
			setup: func(tr tree) string { tr.dir("home", 0o755, userUID); return tr.file("home/f", 0o644, otherUID) },
			want:  want{path: "home/f", fix: "chown 4321 BASE/home/f", kind: pathtrust.BadOwner}},
		{name: "another user's directory above the home: chown to root", policy: userP,
			setup: func(tr tree) string {
				tr.dir("up", 0o755, otherUID)
				return tr.p("up/f")
			},
			want: want{path: "up", fix: "chown root BASE/up", kind: pathtrust.BadOwner}},

		// Private and executable files.
		{name: "private file readable by its group", policy: func(tree) pathtrust.Policy { return privateP },
			setup: func(tr tree) string { return tr.file("key", 0o640, 0) },
			want:  want{path: "key", fix: "chmod 600 BASE/key", kind: pathtrust.Readable}},
		{name: "private file writable by others: chmod 600, not go-w", policy: func(tree) pathtrust.Policy { return privateP },
			setup: func(tr tree) string { return tr.file("key", 0o602, 0) },
			want:  want{path: "key", fix: "chmod 600 BASE/key", kind: pathtrust.Writable}},
		{name: "private file 0600", policy: func(tree) pathtrust.Policy { return privateP },
			setup: func(tr tree) string { return tr.file("key", 0o600, 0) },
			want:  want{real: "key"}},
		{name: "executable", policy: func(tree) pathtrust.Policy { return execP },
			setup: func(tr tree) string { return tr.file("hook", 0o755, 0) },
			want:  want{real: "hook"}},
		{name: "not executable", policy: func(tree) pathtrust.Policy { return execP },
			setup: func(tr tree) string { return tr.file("hook", 0o644, 0) },
			want:  want{path: "hook", fix: "chmod 0755 BASE/hook", kind: pathtrust.NotRegular}},
		{name: "setuid executable", policy: func(tree) pathtrust.Policy { return execP },
			setup: func(tr tree) string { return tr.file("hook", os.ModeSetuid|0o755, 0) },
			want:  want{path: "hook", fix: "chmod ug-s BASE/hook", kind: pathtrust.SetID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tree{t, systest.SecureDir(t)}
			path := tc.setup(tr)
			p := rootP
			if tc.policy != nil {
				p = tc.policy(tr)
			}
			f, real, fi, err := pathtrust.Open(path, p)
			if f != nil {
				defer f.Close()
			}
			sreal, _, serr := pathtrust.Stat(path, p)
			if (err == nil) != (serr == nil) || sreal != real {
				t.Errorf("Stat = %q, %v; Open = %q, %v: they disagree", sreal, serr, real, err)
			}
			w := tc.want
			switch {
			case w.real != "":
				if err != nil {
					t.Fatalf("Open(%s) = %v; want %s", path, err, w.real)
				}
				if want := tr.p(w.real); real != want {
					t.Errorf("real path %s, want %s", real, want)
				}
				// What was opened is what the kernel finds at path.
				got, _ := io.ReadAll(f)
				byKernel, kerr := os.ReadFile(path)
				if kerr != nil || string(got) != string(byKernel) || !fi.Mode().IsRegular() {
					t.Errorf("read %q, the kernel reads %q (%v)", got, byKernel, kerr)
				}
			case w.kind != 0:
				var pe *pathtrust.Error
				if !errors.As(err, &pe) {
					t.Fatalf("Open(%s) = %v; want a *pathtrust.Error", path, err)
				}
				wantPath := tr.p(w.path)
				switch {
				case w.path == "=":
					wantPath = path
				case strings.HasPrefix(w.path, "/"):
					wantPath = pe.Path // checked by prefix below
					if !strings.HasPrefix(pe.Path, w.path) {
						t.Errorf("path %s, want under %s", pe.Path, w.path)
					}
				}
				wantFix := strings.ReplaceAll(w.fix, "BASE", tr.base)
				if pe.Path != wantPath || pe.Fix != wantFix || pe.Kind != w.kind {
					t.Errorf("got %v (kind %d)\nwant path %s, fix %q, kind %d", pe, pe.Kind, wantPath, wantFix, w.kind)
				}
				if !strings.Contains(pe.Error(), pe.Fix) || pe.Problem == "" {
					t.Errorf("message %q lacks the problem or the fix", pe.Error())
				}
			case w.err != nil:
				if !errors.Is(err, w.err) {
					t.Errorf("Open(%s) = %v; want %v", path, err, w.err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), w.text) {
					t.Errorf("Open(%s) = %v; want an error with %q", path, err, w.text)
				}
			}
		})
	}
}

// TestCheckDir: a directory is checked as the one that would hold a file,
// so a sticky one is refused, and one above it is not.
func TestCheckDir(t *testing.T) {
	systest.Require(t)
	tr := tree{t, systest.SecureDir(t)}
	p := pathtrust.Policy{Sticky: true}
	tr.dir("tmp", os.ModeSticky|0o777, 0)
	tr.dir("tmp/d", 0o755, 0)
	tr.link("tmp/d", "l", 0)
	if real, err := pathtrust.CheckDir(tr.p("l"), p); err != nil || real != tr.p("tmp/d") {
		t.Errorf("CheckDir(l) = %q, %v; want %s", real, err, tr.p("tmp/d"))
	}
	var pe *pathtrust.Error
	if _, err := pathtrust.CheckDir(tr.p("tmp"), p); !errors.As(err, &pe) || pe.Path != tr.p("tmp") {
		t.Errorf("CheckDir(tmp) = %v; want refused", err)
	}
	if _, err := pathtrust.CheckDir(tr.p("tmp/d"), pathtrust.Policy{}); !errors.As(err, &pe) || pe.Path != tr.p("tmp") {
		t.Errorf("CheckDir(tmp/d) without Sticky = %v; want tmp refused", err)
	}
}
