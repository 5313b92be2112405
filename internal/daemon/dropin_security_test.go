package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecurityReloadWarnsUnmappedUsers: with the pairings in a drop-in
// (issue 17), configuration management that purges latch.d (Puppet's
// purge => true, an Ansible task syncing the directory) deletes every
// self-service pairing in one run, and the configuration still loads. With
// unpaired = "allow" (the default) those users then log in without any
// latch, silently. The reload must say so, naming how many users lost
// their mapping and the file to look at.
func TestSecurityReloadWarnsUnmappedUsers(t *testing.T) {
	f := newFixture(t)
	u, acc := f.PairUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{}))
	if err := os.Mkdir(filepath.Join(f.Dir, "latch.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	paired := f.WriteFile(t, "latch.d/50-paired.toml", "[users]\n"+u.Name+" = \""+acc+"\"\n")
	f.start(t, func(o *Options) { o.NoWatch = true })
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("decide with the latch open: %q", got)
	}
	if err := os.Remove(paired); err != nil {
		t.Fatal(err)
	}
	f.reload(t)
	found := false
	for _, e := range f.log.find(t, "reload") {
		if strings.Contains(e.str("message"), "no longer mapped") && strings.Contains(e.str("message"), "unpaired") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning that 1 user lost its [users] line on reload; log:\n%s", f.log)
	}
	f.stop(t)
}
