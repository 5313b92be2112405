package authkeys

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/asuser"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// fakeOwner is the uid that owns the fake homes (no such user is needed:
// Load works on numbers).
const fakeOwner = 4321

// fakeCreds are the credentials of fakeOwner, who Load acts as.
func fakeCreds() asuser.Creds { return asuser.Creds{UID: fakeOwner, GID: fakeOwner} }

// userCreds are a real user's credentials.
func userCreds(u *systest.User) asuser.Creds {
	return asuser.Creds{UID: uint32(u.UID), GID: uint32(u.GID)}
}

// fakeHome builds base/home/.ssh/authorized_keys in a SecureDir, the layout
// sshd accepts: home 0755 and .ssh 0700 owned by fakeOwner, the file 0600.
// It returns the base directory, the home and the file.
func fakeHome(t *testing.T, keyLine string) (base, home, file string) {
	t.Helper()
	systest.Require(t)
	base = systest.SecureDir(t)
	home = filepath.Join(base, "home")
	mkdir(t, home, 0o755, fakeOwner)
	mkdir(t, filepath.Join(home, ".ssh"), 0o700, fakeOwner)
	file = filepath.Join(home, ".ssh", "authorized_keys")
	writeFile(t, file, keyLine+"\n", 0o600, fakeOwner)
	return base, home, file
}

func mkdir(t *testing.T, dir string, perm os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(dir, perm); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	chmodChown(t, dir, perm, uid)
}

func writeFile(t *testing.T, p, data string, perm os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	chmodChown(t, p, perm, uid)
}

func chmodChown(t *testing.T, p string, perm os.FileMode, uid int) {
	t.Helper()
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	_, keyLine := testKey(t)
	type env struct{ base, home, file, ssh string }
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e env) string // returns the path to load; "" = e.file
		// wantPath/wantFix: a *PermissionError for this path (relative to
		// base) with this fix; both empty: success with one key.
		wantPath, wantFix, wantProblem string
	}{
		{name: "good"},
		{name: "root-owned file", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.file, 0o644, 0)
			return ""
		}},
		{name: "group-writable file", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.file, 0o620, fakeOwner)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "chmod go-w ", wantProblem: "writable by its group (mode 0620)"},
		{name: "world-writable file", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.file, 0o606, fakeOwner)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "chmod go-w ", wantProblem: "writable by others"},
		{name: "file owned by another user", setup: func(t *testing.T, e env) string {
			// Readable by the user, so the ownership check is what refuses.
			chmodChown(t, e.file, 0o644, 65534)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "chown 4321 ", wantProblem: "owned by uid 65534"},
		{name: "world-writable .ssh", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.ssh, 0o777, fakeOwner)
			return ""
		}, wantPath: "home/.ssh", wantFix: "chmod go-w ", wantProblem: "group and others"},
		{name: "sticky world-writable .ssh", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.ssh, os.ModeSticky|0o777, fakeOwner)
			return ""
		}, wantPath: "home/.ssh", wantFix: "move the home directory or key file out of ", wantProblem: "sticky"},
		{name: "home owned by another user", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.home, 0o755, 65534)
			return ""
		}, wantPath: "home", wantFix: "chown 4321 ", wantProblem: "owned by uid 65534"},
		{name: "group-writable home", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.home, 0o775, fakeOwner)
			return ""
		}, wantPath: "home", wantFix: "chmod go-w "},
		{name: "dir above home owned by another user", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.base, 0o755, 65534)
			return ""
		}, wantPath: ".", wantFix: "chown root "},
		{name: "dir above home group-writable", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.base, 0o775, 0)
			return ""
		}, wantPath: ".", wantFix: "chmod go-w "},
		{name: "dir above home owned by the user", setup: func(t *testing.T, e env) string {
			chmodChown(t, e.base, 0o755, fakeOwner)
			return ""
		}},
		{name: "symlink to a file in the home", setup: func(t *testing.T, e env) string {
			real := filepath.Join(e.home, "keys")
			writeFile(t, real, keyLine+"\n", 0o600, fakeOwner)
			os.Remove(e.file)
			symlink(t, "../keys", e.file)
			return ""
		}},
		{name: "symlinked .ssh directory", setup: func(t *testing.T, e env) string {
			other := filepath.Join(e.home, "dotssh")
			if err := os.Rename(e.ssh, other); err != nil {
				t.Fatal(err)
			}
			symlink(t, "dotssh", e.ssh)
			return ""
		}},
		{name: "symlink to a file in a world-writable dir", setup: func(t *testing.T, e env) string {
			pub := filepath.Join(e.base, "pub")
			mkdir(t, pub, 0o777, 0)
			writeFile(t, filepath.Join(pub, "keys"), keyLine+"\n", 0o600, fakeOwner)
			os.Remove(e.file)
			symlink(t, filepath.Join(pub, "keys"), e.file)
			return ""
		}, wantPath: "pub", wantFix: "chmod go-w "},
		// Issue 14: the directory holding a link to a directory is
		// checked (it used to be resolved away: anyone able to write pub
		// could repoint pub/d).
		{name: "symlinked directory, the link in a world-writable dir", setup: func(t *testing.T, e env) string {
			pub := filepath.Join(e.base, "pub")
			mkdir(t, pub, 0o777, 0)
			symlink(t, e.ssh, filepath.Join(pub, "d"))
			return filepath.Join(pub, "d", "authorized_keys")
		}, wantPath: "pub", wantFix: "chmod go-w "},
		{name: "symlink to a group-writable file", setup: func(t *testing.T, e env) string {
			real := filepath.Join(e.home, "keys")
			writeFile(t, real, keyLine+"\n", 0o660, fakeOwner)
			os.Remove(e.file)
			symlink(t, real, e.file)
			return ""
		}, wantPath: "home/keys", wantFix: "chmod go-w "},
		{name: "symlink loop", setup: func(t *testing.T, e env) string {
			os.Remove(e.file)
			symlink(t, "authorized_keys", e.file)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "point the link", wantProblem: "more than 8 symbolic links"},
		{name: "directory", setup: func(t *testing.T, e env) string {
			os.Remove(e.file)
			mkdir(t, e.file, 0o700, fakeOwner)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "replace it with a regular file"},
		{name: "fifo does not hang", setup: func(t *testing.T, e env) string {
			os.Remove(e.file)
			if err := syscall.Mkfifo(e.file, 0o600); err != nil {
				t.Fatal(err)
			}
			chmodChown(t, e.file, 0o600, fakeOwner)
			return ""
		}, wantPath: "home/.ssh/authorized_keys", wantFix: "replace it with a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, home, file := fakeHome(t, keyLine)
			path := file
			if tc.setup != nil {
				if p := tc.setup(t, env{base, home, file, filepath.Join(home, ".ssh")}); p != "" {
					path = p
				}
			}
			keys, skipped, err := Load(path, fakeCreds(), home)
			if tc.wantFix == "" {
				if err != nil || len(keys) != 1 || len(skipped) != 0 {
					t.Fatalf("Load = %d keys, %v, %v; want 1 key", len(keys), skipped, err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) {
				t.Fatalf("Load = %d keys, err %v; want a *PermissionError", len(keys), err)
			}
			wantPath := filepath.Join(base, tc.wantPath)
			if pe.Path != wantPath || !strings.HasPrefix(pe.Fix, tc.wantFix) || !strings.Contains(pe.Problem, tc.wantProblem) {
				t.Errorf("got %v\nwant path %s, fix %q..., problem with %q", pe, wantPath, tc.wantFix, tc.wantProblem)
			}
			if strings.HasPrefix(tc.wantFix, "ch") && !strings.HasSuffix(pe.Fix, " "+wantPath) {
				t.Errorf("fix %q does not name %s", pe.Fix, wantPath)
			}
			if keys != nil {
				t.Errorf("keys returned with an error")
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, fakeOwner, fakeOwner); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, keyLine := testKey(t)
	_, home, file := fakeHome(t, keyLine)
	if _, _, err := Load(filepath.Join(home, ".ssh", "missing"), fakeCreds(), home); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, _, err := Load(filepath.Join(home, "nodir", "authorized_keys"), fakeCreds(), home); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v, want fs.ErrNotExist", err)
	}
	if _, _, err := Load(".ssh/authorized_keys", fakeCreds(), home); err == nil {
		t.Error("relative path accepted")
	}
	// A limit error names the real file and line.
	big := strings.Repeat(keyLine+"\n", MaxKeys+1)
	writeFile(t, file, big, 0o600, fakeOwner)
	if _, _, err := Load(file, fakeCreds(), home); err == nil || !strings.Contains(err.Error(), file+":10001: more than") {
		t.Errorf("limit: %v", err)
	}
	// Skipped lines come back with the keys.
	writeFile(t, file, "junk\n"+keyLine+"\n", 0o600, fakeOwner)
	keys, skipped, err := Load(file, fakeCreds(), home)
	if err != nil || len(keys) != 1 || len(skipped) != 1 || skipped[0].Line != 1 {
		t.Errorf("Load = %d keys, %v, %v", len(keys), skipped, err)
	}
}

// TestLoadRealUser loads the authorized_keys that systest.CreateUser writes
// in a real home made by useradd, and finds the user's key in it.
func TestLoadRealUser(t *testing.T) {
	u := systest.CreateUser(t, systest.UserOptions{KeyOptions: `restrict,pty,from="127.0.0.1"`})
	p, err := ExpandPath(".ssh/authorized_keys", u.Name, u.Home)
	if err != nil {
		t.Fatal(err)
	}
	keys, skipped, err := Load(p, userCreds(u), u.Home)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("Load(%s) = %v, %v", p, skipped, err)
	}
	k, ok := Match(keys, u.Signer.PublicKey())
	if !ok || !k.Options.Restrict || k.Options.NoPTY || !k.Options.NoPortForwarding {
		t.Fatalf("Match = %+v, %v", k, ok)
	}
	if !k.Options.AllowsFrom([]byte{127, 0, 0, 1}, "") || k.Options.AllowsFrom([]byte{127, 0, 0, 2}, "") {
		t.Error("from=127.0.0.1 not applied")
	}
	// The same file is refused for another uid: the home is not theirs
	// (and, read with that uid's rights, maybe not even searchable).
	var pe *PermissionError
	other := asuser.Creds{UID: uint32(u.UID) + 1, GID: uint32(u.GID) + 1}
	keys, _, err = Load(p, other, u.Home)
	if keys != nil || !(errors.As(err, &pe) && pe.Path == u.Home || errors.Is(err, fs.ErrPermission)) {
		t.Errorf("other uid: %d keys, %v", len(keys), err)
	}
}

// TestSecurityLoadReadsAsUser (issue 12 item 9): authorized_keys is read
// with the user's rights. A link to a file only root may read (here one
// holding a key) must not be read: as root, Load would follow it and the
// server would accept that key for the user, telling them what a root-only
// file holds. A link to a file the user may read still works.
func TestSecurityLoadReadsAsUser(t *testing.T) {
	_, keyLine := testKey(t)
	base, home, file := fakeHome(t, keyLine)
	secret := filepath.Join(base, "root-only")
	writeFile(t, secret, keyLine+"\n", 0o600, 0)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	symlink(t, secret, file)
	keys, skipped, err := Load(file, fakeCreds(), home)
	if keys != nil || skipped != nil || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("link to a root-only file: %d keys, %v, %v; want permission denied", len(keys), skipped, err)
	}

	// /proc/self is the daemon, and some of it is readable by any of its
	// threads: not a key file.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/proc/self/maps", file)
	var pe *PermissionError
	if keys, _, err := Load(file, fakeCreds(), home); keys != nil || !errors.As(err, &pe) || !strings.Contains(pe.Problem, "/proc") {
		t.Fatalf("link to /proc/self/maps: %d keys, %v; want refused", len(keys), err)
	}

	// The same key, in a file of the user's (through a link) is fine.
	own := filepath.Join(home, "keys")
	writeFile(t, own, keyLine+"\n", 0o600, fakeOwner)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../keys", file)
	if keys, _, err := Load(file, fakeCreds(), home); err != nil || len(keys) != 1 {
		t.Fatalf("link to the user's own file: %d keys, %v", len(keys), err)
	}
}
