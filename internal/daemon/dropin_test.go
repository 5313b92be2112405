package daemon

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestDaemonReloadsOnDropInChange: a drop-in written into latch.d (here
// the pairing file, as configuration management or another latch-ssh
// would write it) is in force in the running daemon within the watch
// delay, without SIGHUP; a drop-in that conflicts with latch.toml, or
// that others may write, is refused loudly and the configuration in force
// stays.
func TestDaemonReloadsOnDropInChange(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{}))
	dir := filepath.Join(filepath.Dir(f.cfgPath), "latch.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.start(t, nil)
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("before the drop-in, with unpaired = allow: %q", got)
	}
	acc := f.pair(t)
	f.Latch.SetLatch(acc, appID, false)
	reloads := func(event string) int {
		n := 0
		for _, e := range f.log.find(t, event) {
			if e.str("trigger") == "file changed" {
				n++
			}
		}
		return n
	}
	drop := filepath.Join(dir, "50-paired.toml")
	tmp := filepath.Join(dir, ".50-paired.toml.tmp")
	if err := os.WriteFile(tmp, []byte("[users]\n"+u.Name+" = \""+acc+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, drop); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the drop-in to be in force", func() bool { return reloads("reload") > 0 })
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("after the drop-in: %q, want %q", got, closedMessage)
	}

	for i, bad := range []struct {
		what string
		make func() error
	}{
		{"a drop-in setting fail_mode again", func() error {
			return os.WriteFile(filepath.Join(dir, "60-policy.toml"), []byte("[policy]\nfail_mode = \"open\"\n"), 0o644)
		}},
		{"a drop-in others may write", func() error {
			if err := os.Remove(filepath.Join(dir, "60-policy.toml")); err != nil {
				return err
			}
			return os.Chmod(drop, 0o666)
		}},
	} {
		if err := bad.make(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, bad.what+" to be refused", func() bool { return reloads("reload-refused") > i })
		if got := f.decide(t, u); got != closedMessage {
			t.Errorf("after %s: %q, want %q (the configuration in force)", bad.what, got, closedMessage)
		}
	}
	f.stop(t)
	f.checkNoLeak(t)
}
