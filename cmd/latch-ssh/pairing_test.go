package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

const (
	// testAppID and testSecret are short for the one application of
	// every test World.
	testAppID  = systest.AppID
	testSecret = systest.Secret
	testOpSSHD = "OPSSHDOPSSHDOPSSHD01"
)

// pairingWorld is a systest.World (fake Latch, a directory that passes
// the permission checks) and a root-only configuration for it there, with
// comments a pairing must keep.
type pairingWorld struct {
	*systest.World
	path string
}

func newPairingWorld(t *testing.T) *pairingWorld {
	t.Helper()
	w := &pairingWorld{World: systest.NewWorld(t, systest.WorldOptions{Timeout: "2s"})}
	w.Latch.AddOperation(testAppID, testOpSSHD, "")
	w.write(t, false)
	return w
}

// write (re)writes the configuration, 0600 root: a test user cannot read
// it, so whatever they achieve goes through the daemon.
func (w *pairingWorld) write(t *testing.T, allowSelf bool) {
	t.Helper()
	text := "# test server\n" + w.LatchTable() + fmt.Sprintf(`[policy]
fail_mode = "closed"
unpaired = "deny"     # logins of users not in [users] are refused
allow_self_pairing = %t

[operations]
sshd = %q   # ssh

[users]
# people
`, allowSelf, testOpSSHD)
	w.path = w.WriteFile(t, "latch.toml", text)
}

// TestSelfServiceAsAUser runs the real latch-ssh binary as a created test
// user against an in-process daemon socket (gatesocket.SocketServer with the
// pairing adapter), as `latch-ssh serve` will.
func TestSelfServiceAsAUser(t *testing.T) {
	w := newPairingWorld(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	sock := filepath.Join(w.Dir, "run", "gate.sock")
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(sock))

	var core atomic.Pointer[gate.Core]
	reload := func() {
		c := gate.LoadCore(w.path, nil)
		if c.ConfigErr != nil {
			t.Fatalf("config: %v", c.ConfigErr)
		}
		core.Store(c)
	}
	reload()
	ln, err := gatesocket.ListenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
	}
	server := &gatesocket.SocketServer{
		Core:        core.Load,
		SelfService: pairing.SelfService{Manager: &pairing.Manager{ConfigPath: w.path}, Logf: logf},
		Logf:        logf,
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, ln) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)

	run := func(args ...string) (string, string, int) {
		t.Helper()
		return systest.Run(t, u.Command(bin, args...))
	}
	expect := func(wantCode int, wantOut, wantErr string, args ...string) string {
		t.Helper()
		stdout, stderr, code := run(args...)
		if code != wantCode || !strings.Contains(stdout, wantOut) || !strings.Contains(stderr, wantErr) {
			t.Errorf("latch-ssh %s as %s: exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q",
				strings.Join(args, " "), u.Name, code, wantCode, stdout, stderr, wantOut, wantErr)
		}
		return stdout
	}
	calls := func() int { return len(w.Latch.Requests()) }

	// Self-service off (the default): refused plainly, Latch not called.
	expect(1, "", "self-service pairing is turned off on this server: ask an administrator (allow_self_pairing)",
		"pair", w.Latch.IssuePairingToken(testAppID))
	expect(1, "", "self-service pairing is turned off", "status")
	if calls() != 0 {
		t.Errorf("Latch called %d times with self-service off", calls())
	}

	w.write(t, true)
	reload()
	before, _ := os.ReadFile(w.path)

	// Refused before any exchange: another user, another config, bad code.
	expect(2, "", "only root can pair another user", "pair", "--user", "root", w.Latch.IssuePairingToken(testAppID))
	expect(2, "", "-c is honoured only for root", "pair", "-c", "/tmp/mine.toml", w.Latch.IssuePairingToken(testAppID))
	expect(2, "", "6 letters and digits", "pair", "abc")
	expect(2, "", "only root can run --repair", "pair", "--repair")
	if calls() != 0 {
		t.Errorf("Latch called %d times for refused commands", calls())
	}

	expect(1, "", "that code is wrong or has expired: generate a new one in the Latch app", "pair", "ZZZZZ9")

	// Pairing oneself, and --user naming oneself is fine too.
	tok := w.Latch.IssuePairingToken(testAppID)
	expect(0, "paired "+u.Name+" with Latch account ", "", "pair", "--user", u.Name, tok)
	cfg, err := users.Load(w.path)
	if err != nil {
		t.Fatal(err)
	}
	acc, ok := cfg.Account(u.Name)
	if !ok {
		t.Fatalf("%s not in [users] after pairing", u.Name)
	}
	after, _ := os.ReadFile(w.path)
	if got := strings.Replace(string(after), fmt.Sprintf("%s = %q\n", u.Name, acc), "", 1); got != string(before) {
		t.Errorf("pairing changed more than its line:\n%s", after)
	}
	host, _ := os.Hostname()
	if got := w.Latch.CommonName(testAppID, acc); got != u.Name+"@"+host {
		t.Errorf("commonName = %q, want %s@%s", got, u.Name, host)
	}
	expect(1, "", "already paired", "pair", w.Latch.IssuePairingToken(testAppID))

	// Status, for scripts and for people.
	out := expect(0, "", "", "status", "--json")
	var st gatesocket.UserStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.User != u.Name || !st.Paired || st.Account != pairing.ShortAccount(acc) || len(st.Latches) != 2 ||
		st.Latches[0].State != "open" || st.Latches[1].Service != "sshd" {
		t.Errorf("status --json = %+v", st)
	}
	w.Latch.SetLatch(acc, testOpSSHD, false)
	expect(0, u.Name+": paired with Latch account "+pairing.ShortAccount(acc)+"\n  application latch: open\n  sshd (operation OPSSHD…): closed\n", "", "status")
	w.Latch.UnpairFromPhone(testAppID, acc)
	expect(0, "unpaired from the phone (Latch 201): pair again", "", "status")

	// Unpairing oneself is refused: only root changes or removes a
	// pairing (issue 12, item 2), even when the phone unpaired already.
	expect(1, "", "only root can change or remove a pairing", "unpair")
	expect(1, "", "already paired", "pair", w.Latch.IssuePairingToken(testAppID))
	if after2, _ := os.ReadFile(w.path); !bytes.Equal(after2, after) {
		t.Errorf("a refused unpair changed the file:\n%s", after2)
	}

	// No daemon: said plainly.
	stop()
	expect(1, "", "the latch-ssh daemon is not running (ask an administrator to start latch-ssh.service)", "status")
	expect(1, "", "the latch-ssh daemon is not running", "pair", "AbC123")

	logMu.Lock()
	defer logMu.Unlock()
	t.Logf("daemon log:\n%s", strings.Join(logs, "\n"))
}

// TestRootPairsAnyUser runs the commands as root (this test's user), which
// act on the configuration directly.
func TestRootPairsAnyUser(t *testing.T) {
	w := newPairingWorld(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	run := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		code := dispatch(args, &stdout, &stderr)
		return stdout.String(), stderr.String(), code
	}
	stdout, stderr, code := run("pair", "-c", w.path, "--user", u.Name, w.Latch.IssuePairingToken(testAppID))
	if code != 0 || !strings.Contains(stdout, "paired "+u.Name) {
		t.Fatalf("pair: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run("pair", "-c", w.path, "--user", "nosuchuserlt", w.Latch.IssuePairingToken(testAppID))
	if code != 1 || !strings.Contains(stderr, "there is no user nosuchuserlt on this system") {
		t.Errorf("pair of a missing user: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run("status", "-c", w.path, "--user", u.Name)
	if code != 0 || !strings.Contains(stdout, u.Name+": paired with Latch account") || !strings.Contains(stdout, "sshd (operation OPSSHD…): open") {
		t.Errorf("status: exit %d\n%s%s", code, stdout, stderr)
	}
	// A latch that cannot be read: shown with its reason, exit 1.
	w.Latch.SetFault("", latchtest.Fault{ErrorCode: 102})
	stdout, stderr, code = run("status", "-c", w.path, "--user", u.Name)
	if code != 1 || !strings.Contains(stdout, "application latch: error: the application id or secret is wrong (ask an administrator") {
		t.Errorf("status with 102: exit %d\n%s%s", code, stdout, stderr)
	}
	w.Latch.ClearFaults()
	stdout, stderr, code = run("unpair", "-c", w.path, "--user", u.Name)
	if code != 0 || !strings.Contains(stdout, "unpaired "+u.Name+" from Latch account") || len(w.Latch.Accounts(testAppID)) != 0 {
		t.Errorf("unpair: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, args := range [][]string{
		{"pair", "-c", w.path},
		{"pair", "-c", w.path, "abc"},
		{"unpair", "-c", w.path, "x"},
		{"status", "-c", w.path, "--nope"},
	} {
		if _, stderr, code := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, code, stderr)
		}
	}
	for _, cmd := range []string{"pair", "unpair", "status"} {
		if stdout, _, code := run(cmd, "--help"); code != 0 || !strings.Contains(stdout, "usage: latch-ssh "+cmd) {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, stdout)
		}
	}
}
