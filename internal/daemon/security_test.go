package daemon

import (
	"crypto/rand"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// closedAccount makes a Latch user whose application latch is closed and
// returns its id with a pairing token for it, as the person's phone would
// show.
func (f *fixture) closedAccount(t *testing.T) (account, token string) {
	t.Helper()
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 64)
	rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	account = string(b)
	f.Latch.SetLatch(account, appID, false)
	return account, f.Latch.IssuePairingTokenFor(appID, account)
}

// TestSecurityRootPairAppliesAtOnce (issue 12, item 3): root's
// `latch-ssh pair` edits the file itself; the running daemon must follow
// before the command returns, or a user just paired to a closed latch
// still gets in through the ForceCommand gate (unpaired = "allow"). The
// file watcher is off, so only the command's own request can do it.
func TestSecurityRootPairAppliesAtOnce(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{}))
	// Built without the test socket: root's command finds the daemon by
	// the configuration's [daemon] socket.
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh")
	f.start(t, func(o *Options) { o.NoWatch = true })
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("before pairing, with unpaired = allow: %q", got)
	}
	_, token := f.closedAccount(t)
	root := func(args ...string) {
		t.Helper()
		stdout, stderr, code := systest.Run(t, exec.Command(bin, args...))
		if code != 0 || stderr != "" {
			t.Fatalf("latch-ssh %s: exit %d\n%s%s\nlog:\n%s", strings.Join(args, " "), code, stdout, stderr, f.log)
		}
	}
	root("pair", "-c", f.cfgPath, "--user", u.Name, token)
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("right after root's pair to a closed latch: %q, want %q", got, closedMessage)
	}
	root("unpair", "-c", f.cfgPath, "--user", u.Name)
	if got := f.decide(t, u); got != "allow" {
		t.Errorf("right after root's unpair, with unpaired = allow: %q", got)
	}

	// Only root may ask for a reload.
	out := f.ask(t, u, "raw", f.socket, `{"v":1,"op":"reload"}`)
	if len(out) != 1 || strings.Contains(out[0], `"ok":true`) || !strings.Contains(out[0], "only root") {
		t.Errorf("reload asked by a user: %q", out)
	}

	// With no daemon there is nothing to tell: pairing works and is quiet.
	f.stop(t)
	_, token = f.closedAccount(t)
	root("pair", "-c", f.cfgPath, "--user", u.Name, token)
}

// TestSecuritySelfServicePairAppliesAtOnce (issue 12, item 3): a person's
// self-service pairing goes through the daemon, which must put its own
// edit in force before answering. The file watcher is off.
func TestSecuritySelfServicePairAppliesAtOnce(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{policy: "allow_self_pairing = true"}))
	f.start(t, func(o *Options) {
		o.NoWatch = true
		o.SelfService = func(path string, _ func() *gate.Core, logf func(string, ...any)) gatesocket.SelfService {
			return pairing.SelfService{Manager: &pairing.Manager{ConfigPath: path}, Logf: logf}
		}
	})
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("before pairing, with unpaired = allow: %q", got)
	}
	_, token := f.closedAccount(t)
	out := f.ask(t, u, "raw", f.socket, `{"v":1,"op":"pair","token":"`+token+`"}`)
	if len(out) != 1 || !strings.Contains(out[0], `"ok":true`) {
		t.Fatalf("self-service pair: %q\nlog:\n%s", out, f.log)
	}
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("right after a self-service pair to a closed latch: %q, want %q", got, closedMessage)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// TestSecurityConfigFileWatched (issue 12, item 3): an admin's own edit of
// latch.toml applies within seconds without SIGHUP, saved the way vim
// saves (the old file moved aside, a new one written, the old removed) or
// by a rename over it; an invalid edit is logged as an error and the
// configuration in force stays.
func TestSecurityConfigFileWatched(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{}))
	f.start(t, nil)
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("before the edit, with unpaired = allow: %q", got)
	}
	acc := f.pair(t)
	f.Latch.SetLatch(acc, appID, false)

	// vim's save: rename the old file to a backup, write the new, remove
	// the backup.
	backup := f.cfgPath + "~"
	if err := os.Rename(f.cfgPath, backup); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cfgPath, []byte(f.configText(conf{users: map[string]string{u.Name: acc}})), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	// Polling the log, not decisions: a login a millisecond costs Latch
	// calls and runs into rate_limit.
	waitUntil(t, 10*time.Second, "the edit to be in force", func() bool {
		for _, e := range f.log.find(t, "reload") {
			if e.str("trigger") == "file changed" {
				return true
			}
		}
		return false
	})
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("after the edit: %q, want %q", got, closedMessage)
	}

	// A broken edit, renamed over the file: refused loudly, the old
	// configuration stays.
	before := len(f.log.find(t, "reload-refused"))
	f.writeConfig(t, f.configText(conf{})+"\nthis is = = not toml\n")
	waitUntil(t, 10*time.Second, "the broken edit to be refused", func() bool { return len(f.log.find(t, "reload-refused")) > before })
	refused := f.log.find(t, "reload-refused")[before]
	if refused.str("level") != "error" || refused.str("trigger") != "file changed" {
		t.Errorf("refusal line: %v", refused)
	}
	if got := f.decide(t, u); got != closedMessage {
		t.Errorf("after a broken edit: %q, want %q (the previous configuration)", got, closedMessage)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	systest.WaitFor(t, what, limit, cond)
}
