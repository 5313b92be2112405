package systest

import (
	"os"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/users"
)

// TestWorld: the configurations a World writes load with latch-ssh's own
// loader (permission checks included), point at the fake with the World's
// timeout and CA, and carry the pairings PairUser made.
func TestWorld(t *testing.T) {
	w := NewWorld(t, WorldOptions{Timeout: "1s"})
	u, acc := w.PairUser(t, UserOptions{})
	if got := w.Paired(); len(got) != 1 || got[u.Name] != acc {
		t.Fatalf("Paired: %v, want %s = %s", got, u.Name, acc)
	}
	other := w.Pair()
	path := w.WriteConfig(t, Config{Policy: `fail_mode = "open"`, Tables: "[daemon]\nrate_limit = 7",
		Users: UsersFor(other, "zed", "amy")})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	cfg, err := users.Load(path)
	if err != nil {
		t.Fatalf("users.Load: %v\n%s", err, w.ConfigText(Config{}))
	}
	if cfg.Latch.AppID != AppID || cfg.Latch.CAFile != w.CAFile || cfg.Latch.APIURL != w.Latch.URL() ||
		cfg.Latch.Timeout.Duration != time.Second || cfg.Policy.FailMode != users.FailOpen || cfg.Daemon.RateLimit != 7 ||
		len(cfg.Users) != 2 || cfg.Users["amy"] != other || cfg.Users["zed"] != other {
		t.Fatalf("loaded %+v\nfrom:\n%s", cfg, w.ConfigText(Config{}))
	}
	noCA, err := users.Parse("latch.toml", []byte(w.ConfigText(Config{Policy: `fail_mode = "closed"`, NoCAFile: true})))
	if err != nil {
		t.Fatalf("NoCAFile: %v", err)
	}
	if noCA.Latch.CAFile != "" {
		t.Fatalf("NoCAFile: ca_file %q", noCA.Latch.CAFile)
	}
	// The helpers act on the application the configurations name.
	w.SetLatch(acc, false)
	w.SetTwoFactor(true)
	if w.TwoFactorCode(acc) != "" {
		t.Fatal("a one-time code before any status request")
	}
}
