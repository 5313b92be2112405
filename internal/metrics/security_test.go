package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// swapCollector plays the owner of a textfile directory that is not
// root's (node_exporter's user, or a group-writable directory): while the
// daemon (root) writes its temporary file, it replaces that file's name
// with a symbolic link to a root-only file. It runs inside Gather, which
// is called after the temporary file is created and before it is made
// readable and renamed: the window an attacker watching the directory
// with inotify gets every interval.
type swapCollector struct {
	t      *testing.T
	dir    string
	target string
}

func (swapCollector) Describe(chan<- *prometheus.Desc) {}

func (s swapCollector) Collect(chan<- prometheus.Metric) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.t.Error(err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".prom") || !strings.Contains(name, "latch_ssh.prom") {
			continue
		}
		p := filepath.Join(s.dir, name)
		if err := os.Remove(p); err != nil {
			s.t.Error(err)
		}
		if err := os.Symlink(s.target, p); err != nil {
			s.t.Error(err)
		}
	}
}

// TestSecurityTextfileNoChmodThroughSymlink: the textfile is written by
// root into a directory that may belong to someone else (node_exporter's
// textfile directory is often owned by its user). Making the temporary
// file readable must act on the file created, never on whatever its name
// points to by then: client_golang's WriteToTextfile chmods by name, so a
// symbolic link swapped in made any root-only file (/etc/shadow, the
// Latch secret) mode 0644.
func TestSecurityTextfileNoChmodThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := New("test")
	m.reg.MustRegister(swapCollector{t: t, dir: dir, target: secret})
	_ = m.WriteTextfile(filepath.Join(dir, "latch_ssh.prom"))
	fi, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the root-only file behind the swapped link is now mode %v, want 0600", fi.Mode().Perm())
	}
}
