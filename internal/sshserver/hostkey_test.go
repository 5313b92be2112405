package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestHostKeyPaths (issue 14): host keys follow the one path-trust rule
// (internal/pathtrust) like the configuration: a key in a directory others
// can write is refused (they could swap in their own key and impersonate
// the server, or read it), a sticky directory such as /tmp may not hold
// one (nor receive a generated one), and a symbolic link to a key in safe
// directories is followed, not refused.
func TestHostKeyPaths(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the host_key path
		want  string                                // "" = loads; else in both errors
	}{
		{"key 0600 in a safe directory", func(t *testing.T, dir string) string {
			writeKey(t, filepath.Join(dir, "key"), priv)
			return filepath.Join(dir, "key")
		}, ""},
		{"key in a world-writable directory", func(t *testing.T, dir string) string {
			mkdirMode(t, filepath.Join(dir, "open"), 0o777)
			writeKey(t, filepath.Join(dir, "open", "key"), priv)
			return filepath.Join(dir, "open", "key")
		}, "chmod go-w " + "DIR/open"},
		{"missing key in a sticky directory is not generated", func(t *testing.T, dir string) string {
			mkdirMode(t, filepath.Join(dir, "tmp"), os.ModeSticky|0o777)
			return filepath.Join(dir, "tmp", "ssh_host_ed25519_key")
		}, "chmod go-w " + "DIR/tmp"},
		{"link to a key in a safe directory", func(t *testing.T, dir string) string {
			mkdirMode(t, filepath.Join(dir, "real"), 0o755)
			writeKey(t, filepath.Join(dir, "real", "key"), priv)
			if err := os.Symlink("real/key", filepath.Join(dir, "key")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "key")
		}, ""},
		{"key readable by others", func(t *testing.T, dir string) string {
			writeKey(t, filepath.Join(dir, "key"), priv)
			if err := os.Chmod(filepath.Join(dir, "key"), 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "key")
		}, "chmod 600 DIR/key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path := tc.setup(t, dir)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			signers, err := LoadHostKeys([]string{path}, zerolog.Nop())
			_, cerr := CheckHostKey(path)
			if want == "" {
				if err != nil || len(signers) != 1 || cerr != nil {
					t.Fatalf("LoadHostKeys = %d keys, %v; CheckHostKey: %v; want the key", len(signers), err, cerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("LoadHostKeys = %d keys, %v; want an error with %q", len(signers), err, want)
			}
			if cerr == nil || !strings.Contains(cerr.Error(), want) {
				t.Errorf("CheckHostKey: %v; want an error with %q", cerr, want)
			}
			if _, err := os.Lstat(path); strings.Contains(tc.name, "not generated") && err == nil {
				t.Errorf("a host key was generated at %s", path)
			}
		})
	}
}

func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
