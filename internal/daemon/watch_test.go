package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatcherFollowsSymlinkAndRenames: the watcher sees a save by rename
// in the configuration's directory and, when the configuration is a
// symbolic link, in the directory of the file it leads to; changes to
// watch runs a watcher of path until the test ends and returns expect,
// which checks whether what the test just did was reported as a change:
// a change is reported after the watcher's delay (10 ms here); nothing is
// reported for others within many times that.
func watch(t *testing.T, path string) (expect func(what string, want bool)) {
	t.Helper()
	w, err := newWatcher(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx, 10*time.Millisecond, changed, func(msg string) { t.Log(msg) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func(what string, want bool) {
		t.Helper()
		select {
		case <-changed:
			if !want {
				t.Errorf("%s: reported as a change of the configuration", what)
			}
		case <-time.After(500 * time.Millisecond):
			if want {
				t.Errorf("%s: not reported", what)
			}
		}
	}
}

// other files there are not reported.
func TestWatcherFollowsSymlinkAndRenames(t *testing.T) {
	top, other := t.TempDir(), t.TempDir()
	real := filepath.Join(other, "real.toml")
	if err := os.WriteFile(real, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(top, "latch.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	expect := watch(t, link)
	replace := func(path string) {
		t.Helper()
		tmp := filepath.Join(filepath.Dir(path), ".tmp")
		if err := os.WriteFile(tmp, []byte("b"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	replace(filepath.Join(other, "unrelated.toml"))
	expect("a save of another file next to the target", false)
	replace(real)
	expect("a save of the symlink's target by rename", true)
	if err := os.WriteFile(real, []byte("c"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("a write in place", true)
	if err := os.Chmod(real, 0o644); err != nil {
		t.Fatal(err)
	}
	expect("a chmod", true)
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("d"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect("the link replaced by a file", true)
}

// TestWatcherSeesDropIns: the drop-in directory is watched for *.toml
// names and its own mode, also when it is created after the watcher
// started; editor backups and dpkg leftovers there are not reported.
func TestWatcherSeesDropIns(t *testing.T) {
	top := t.TempDir()
	path := filepath.Join(top, "latch.toml")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect := watch(t, path)
	write := func(path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(top, "latch.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expect("latch.d created", true)
	write(filepath.Join(dir, "50-paired.toml"))
	expect("a drop-in created in a latch.d made after the start", true)
	for _, name := range []string{"50-paired.toml~", ".#50-paired.toml", "50-paired.toml.dpkg-old", "README"} {
		write(filepath.Join(dir, name))
	}
	expect("backups and leftovers written", false)
	tmp := filepath.Join(dir, ".50-paired.toml.tmp-1")
	write(tmp)
	if err := os.Rename(tmp, filepath.Join(dir, "50-paired.toml")); err != nil {
		t.Fatal(err)
	}
	expect("a drop-in replaced by rename (latch-ssh pair's save)", true)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	expect("latch.d's mode changed", true)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect("latch.d removed", true)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	expect("latch.d created again", true)
	write(filepath.Join(dir, "10-admin.toml"))
	expect("a drop-in in the new latch.d", true)
}
