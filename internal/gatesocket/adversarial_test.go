package gatesocket_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestAttackSocketDirectoryTakenByUser: the gate socket's directory is in
// the hands of someone other than the daemon's user: owned by them,
// writable by a group or by everyone, a symlink to a directory of theirs,
// or holding a file of theirs where the socket goes. Without refusing to
// start, the daemon would serve from a directory where that person can
// rename its socket away and bind their own, which answers "allow" to
// every gate (the gate's own SO_PEERCRED check is the second line, see
// forcecmd's TestAttackImpostorDaemon). With it the daemon does not start,
// says which directory and how to fix it, and creates nothing.
func TestAttackSocketDirectoryTakenByUser(t *testing.T) {
	systest.Require(t) // chown to another uid
	const other = 65534
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the socket path
		want  string
	}{
		{"directory owned by another user", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/run", 0o755)
			if err := os.Chown(dir+"/run", other, other); err != nil {
				t.Fatal(err)
			}
			return dir + "/run/gate.sock"
		}, "chown 0 " + "%s/run"},
		{"world-writable directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/run", 0o777)
			return dir + "/run/gate.sock"
		}, "chmod 755 %s/run"},
		{"sticky world-writable directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/run", os.ModeSticky|0o777)
			return dir + "/run/gate.sock"
		}, "chmod 755 %s/run"},
		{"group-writable directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/run", 0o775)
			return dir + "/run/gate.sock"
		}, "chmod 755 %s/run"},
		{"symlink to another user's directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/theirs", 0o755)
			if err := os.Chown(dir+"/theirs", other, other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(dir+"/theirs", dir+"/run"); err != nil {
				t.Fatal(err)
			}
			return dir + "/run/gate.sock"
		}, "must be a directory owned by uid 0"},
		{"a file planted where the socket goes", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/run", 0o755)
			if err := os.WriteFile(dir+"/run/gate.sock", []byte("not a socket"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir + "/run/gate.sock"
		}, "exists and is not a socket; remove it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := systest.SecureDir(t)
			path := tc.setup(t, dir)
			before := entries(t, filepath.Dir(path))
			ln, err := gatesocket.ListenSocket(path)
			if err == nil {
				ln.Close()
				t.Fatal("the daemon would serve from a directory another user controls")
			}
			want := strings.ReplaceAll(tc.want, "%s", dir)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if after := entries(t, filepath.Dir(path)); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("the directory changed from %q to %q", before, after)
			}
		})
	}
	// Control: the same directory, root's and 0755, works.
	dir := systest.SecureDir(t)
	mkdir(t, dir+"/run", 0o755)
	ln, err := gatesocket.ListenSocket(dir + "/run/gate.sock")
	if err != nil {
		t.Fatalf("a safe directory was refused: %v", err)
	}
	ln.Close()
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
