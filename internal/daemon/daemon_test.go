package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const (
	closedMessage = "deny latch-ssh: access denied: your latch is closed; open it in the Latch app and try again"
	otpPrompt     = "PROMPT Latch one-time code: "
)

// statusRequests returns the /status requests the fake received.
func statusRequests(srv *latchtest.Server) []latchtest.Request {
	var out []latchtest.Request
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "/status/") {
			out = append(out, r)
		}
	}
	return out
}

// TestStartRefused: without a configuration that loads, the daemon does
// not start (it would deny everybody while looking healthy) and creates no
// socket.
func TestStartRefused(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name  string
		write func()
	}{
		{"syntax error", func() { f.writeConfig(t, f.configText(conf{})+"\nthis is = = not toml\n") }},
		{"group-writable", func() {
			f.writeConfig(t, f.configText(conf{}))
			os.Chmod(f.cfgPath, 0o620)
		}},
		{"missing", func() { os.Remove(f.cfgPath) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.write()
			err := Run(context.Background(), Options{ConfigPath: f.cfgPath, Log: f.log})
			if err == nil {
				t.Fatal("Run started with a bad configuration")
			}
			if !strings.Contains(err.Error(), f.cfgPath) || !strings.Contains(err.Error(), "check-config") {
				t.Errorf("error does not name the file and check-config: %v", err)
			}
			if _, err := os.Lstat(f.socket); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket exists after a refused start: %v", err)
			}
		})
	}
}

// TestDecide: a user's decision through the socket, with the context the
// gate sends, the socket's modes, warm connections and the start log.
func TestDecide(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc}}))
	// New connections cost 2 RTT more than a request on a warm one.
	const rtt = 150 * time.Millisecond
	f.Latch.SetRTT(rtt)
	f.start(t, nil)

	fi, err := os.Lstat(f.socket)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket: %v, %v; want a socket, mode 0666 (identity comes from SO_PEERCRED)", fi.Mode(), err)
	}
	di, err := os.Lstat(filepath.Dir(f.socket))
	if err != nil || !di.IsDir() || di.Mode().Perm() != 0o755 || di.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("socket directory: %v, %v; want root-owned 0755", di.Mode(), err)
	}

	if got := f.decide(t, u, "-service", "latch-ssh", "-command", "ls -l", "-remote", "192.0.2.1"); got != "allow" {
		t.Fatalf("latch open: %q, want allow\nlog:\n%s", got, f.log)
	}
	f.Latch.SetLatch(acc, appID, false)
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("latch closed: %q, want %q", got, closedMessage)
	}

	ds := f.log.find(t, "decision")
	if len(ds) != 2 {
		t.Fatalf("%d decision lines, want 2:\n%s", len(ds), f.log)
	}
	// What a user's process sends is logged as its claim, and the service
	// is the ForceCommand gate's whatever it asked for (issue 12, item 11).
	want := map[string]string{"user": u.Name, "service": "sshd", "claimed_service": "latch-ssh", "claimed_command": "ls -l", "claimed_remote": "192.0.2.1", "outcome": "allow"}
	for k, v := range want {
		if ds[0].str(k) != v {
			t.Errorf("first decision: %s = %q, want %q", k, ds[0].str(k), v)
		}
	}
	for _, k := range []string{"remote", "command"} {
		if _, ok := ds[0][k]; ok {
			t.Errorf("first decision: %s = %v logged as a fact; it is only what the caller said", k, ds[0][k])
		}
	}
	if ds[1].str("outcome") != "deny" || ds[1].str("reason") != "latch closed" || ds[1].str("service") != "sshd" {
		t.Errorf("second decision: %v", ds[1])
	}
	reqs := statusRequests(f.Latch)
	if len(reqs) != 2 {
		t.Fatalf("%d status requests, want 2: %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Account != acc || !r.NoOTP {
			t.Errorf("request %s: want account %s with /nootp (nobody can type a code)", r.Path, acc)
		}
	}
	// The first decision opened the connection, the second reused it.
	cold, _ := ds[0]["latency_ms"].(float64)
	warm, _ := ds[1]["latency_ms"].(float64)
	if cold < float64(3*rtt.Milliseconds()) || warm >= float64(2*rtt.Milliseconds()) {
		t.Errorf("latencies cold %vms, warm %vms: want >= %v then < %v (one long-lived Latch client)", cold, warm, 3*rtt, 2*rtt)
	}

	start := f.log.find(t, "start")
	if len(start) == 0 || start[0].str("socket") != f.socket || start[0].str("config") != f.cfgPath || start[0].str("version") == "" {
		t.Errorf("start line: %v", start)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// recordingSelfService is a SelfService that remembers who asked what.
type recordingSelfService struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingSelfService) record(s string) pairing.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	return pairing.Result{OK: true, Message: s}
}

func (r *recordingSelfService) Pair(_ context.Context, user, token string) pairing.Result {
	return r.record("pair " + user + " " + token)
}

func (r *recordingSelfService) Unpair(_ context.Context, user string) pairing.Result {
	return r.record("unpair " + user)
}

func (r *recordingSelfService) Status(_ context.Context, user string) pairing.Result {
	return r.record("status " + user)
}

// TestCallerIdentity: a user cannot make the daemon decide or pair for
// another uid, whatever the request says.
func TestCallerIdentity(t *testing.T) {
	f := newFixture(t)
	a := systest.CreateUser(t, systest.UserOptions{})
	b := systest.CreateUser(t, systest.UserOptions{})
	accA, accB := f.pair(t), f.pair(t)
	f.Latch.SetLatch(accA, appID, false) // a is locked out, b is not
	f.writeConfig(t, f.configText(conf{policy: "allow_self_pairing = true", users: map[string]string{a.Name: accA, b.Name: accB}}))
	rec := &recordingSelfService{}
	var gotPath string
	var gotCore *gate.Core
	f.start(t, func(o *Options) {
		o.SelfService = func(path string, core func() *gate.Core, _ func(string, ...any)) gatesocket.SelfService {
			gotPath, gotCore = path, core()
			return rec
		}
	})
	f.Latch.ResetRequests()

	for _, other := range []struct {
		name string
		uid  int
	}{{b.Name, b.UID}, {"root", 0}} {
		line := fmt.Sprintf(`{"v":1,"op":"decide","service":"sshd","user":%q,"uid":%d,"gid":0,"pid":1,"account":%q}`, other.name, other.uid, accB)
		out := f.ask(t, a, "raw", f.socket, line)
		var resp gatesocket.SocketResponse
		if len(out) != 1 || !strings.HasPrefix(out[0], "ANSWER ") || json.Unmarshal([]byte(strings.TrimPrefix(out[0], "ANSWER ")), &resp) != nil {
			t.Fatalf("raw decide: %q", out)
		}
		if resp.Outcome != "deny" || !strings.Contains(resp.Message, "your latch is closed") {
			t.Errorf("a claiming to be %s: %+v, want a's own closed latch", other.name, resp)
		}
	}
	for _, r := range statusRequests(f.Latch) {
		if r.Account != accA {
			t.Errorf("the daemon asked Latch about %s, not the caller's account", r.Path)
		}
	}
	for _, d := range f.log.find(t, "decision") {
		if d.str("user") != a.Name {
			t.Errorf("decision logged for %q, want the caller %q", d.str("user"), a.Name)
		}
	}

	for _, line := range []string{
		fmt.Sprintf(`{"v":1,"op":"pair","token":"TOKEN1","user":%q,"uid":0}`, b.Name),
		fmt.Sprintf(`{"v":1,"op":"unpair","user":%q,"uid":%d}`, b.Name, b.UID),
		`{"v":1,"op":"status","user":"root","uid":0}`,
	} {
		if out := f.ask(t, a, "raw", f.socket, line); len(out) != 1 || !strings.Contains(out[0], `"ok":true`) {
			t.Errorf("%s: %q", line, out)
		}
	}
	want := []string{"pair " + a.Name + " TOKEN1", "unpair " + a.Name, "status " + a.Name}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("self-service calls %q, want %q", rec.calls, want)
	}
	if gotPath != f.cfgPath || gotCore == nil || gotCore.Config == nil {
		t.Errorf("SelfService built with %q, %v", gotPath, gotCore)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// TestSelfServiceRefused: with no SelfService, pairing through the socket
// is refused even when the policy allows it.
func TestSelfServiceRefused(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{policy: "allow_self_pairing = true"}))
	f.start(t, nil)
	out := f.ask(t, u, "raw", f.socket, `{"v":1,"op":"pair","token":"TOKEN1"}`)
	if len(out) != 1 || strings.Contains(out[0], `"ok":true`) || !strings.Contains(out[0], "self-service pairing is turned off") {
		t.Errorf("pair without self-service: %q", out)
	}
}

// TestOTP: the one-time code is asked through the socket and checked by
// the daemon; a non-interactive login asks Latch with /nootp.
func TestOTP(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.Latch.SetTwoFactor(appID, true)
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc}}))
	f.start(t, nil)

	for _, c := range []struct {
		name  string
		code  func(token string) string
		wants string
	}{
		{"right code", func(tok string) string { return tok }, "allow"},
		{"wrong code", func(tok string) string { return tok + "x" }, "deny latch-ssh: access denied: wrong one-time code"},
		{"no code", func(string) string { return "" }, "deny latch-ssh: access denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := f.startSession(t, u, "decide", "-interactive", f.socket)
			if got := s.next(t); got != otpPrompt {
				t.Fatalf("helper: %q, want the prompt", got)
			}
			tok, ok := f.Latch.LastTwoFactorToken(acc, appID)
			if !ok {
				t.Fatal("the fake generated no one-time code")
			}
			s.answer(t, c.code(tok))
			if got := s.next(t); got != c.wants {
				t.Errorf("%q, want %q", got, c.wants)
			}
			s.end(t)
		})
	}
	for _, r := range statusRequests(f.Latch) {
		if r.NoOTP {
			t.Errorf("interactive login asked with /nootp: %s", r.Path)
		}
	}

	f.Latch.ResetRequests()
	if got := f.decide(t, u); got != "allow" {
		t.Errorf("non-interactive: %q, want allow", got)
	}
	if reqs := statusRequests(f.Latch); len(reqs) != 1 || !reqs[0].NoOTP {
		t.Errorf("non-interactive login: the fake saw %+v, want one /nootp request", reqs)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// TestRateLimit: past rate_limit decisions a minute, a uid is denied;
// other uids are not affected.
func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	a := systest.CreateUser(t, systest.UserOptions{})
	b := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{rateLimit: 3}))
	f.start(t, nil)
	out := f.ask(t, a, "decide", "-n", "4", f.socket)
	want := []string{"allow", "allow", "allow", "deny latch-ssh: access denied: too many attempts, wait a minute"}
	if !slices.Equal(out, want) {
		t.Errorf("burst of 4 with rate_limit = 3: %q, want %q", out, want)
	}
	if got := f.decide(t, b); got != "allow" {
		t.Errorf("another user after a's burst: %q, want allow", got)
	}
	limited := 0
	for _, d := range f.log.find(t, "decision") {
		if strings.HasPrefix(d.str("reason"), "rate limit") {
			limited++
			if d.str("user") != a.Name {
				t.Errorf("rate limit logged for %q", d.str("user"))
			}
		}
	}
	if limited != 1 {
		t.Errorf("%d rate-limit lines, want 1:\n%s", limited, f.log)
	}
}

// TestReload: SIGHUP puts a valid new configuration in force and refuses a
// broken one, keeping the old.
func TestReload(t *testing.T) {
	f := newFixture(t)
	a := systest.CreateUser(t, systest.UserOptions{})
	b := systest.CreateUser(t, systest.UserOptions{}) // not in [users]
	acc := f.pair(t)
	users := map[string]string{a.Name: acc}
	f.writeConfig(t, f.configText(conf{users: users}))
	// SIGHUP alone: the file watcher would reload too (TestSecurityConfigFileWatched).
	f.start(t, func(o *Options) { o.NoWatch = true })
	if got := f.decide(t, b); got != "allow" {
		t.Fatalf("unpaired user with unpaired = allow: %q", got)
	}

	f.writeConfig(t, f.configText(conf{users: users})+"\nthis is = = not toml\n")
	f.reload(t)
	refused := f.log.find(t, "reload-refused")
	if len(refused) != 1 || len(f.log.find(t, "reload")) != 0 || refused[0].str("level") != "error" {
		t.Fatalf("broken configuration: want one reload-refused error line:\n%s", f.log)
	}
	problems, _ := refused[0]["problems"].([]any)
	if len(problems) == 0 || !strings.Contains(fmt.Sprint(problems...), f.cfgPath+":") {
		t.Errorf("refusal does not give the problems with file:line: %v", refused[0])
	}
	if got := f.decide(t, b); got != "allow" {
		t.Errorf("after a refused reload, unpaired user: %q, want allow (old configuration)", got)
	}
	if got := f.decide(t, a); got != "allow" {
		t.Errorf("after a refused reload, paired user: %q, want allow", got)
	}

	f.writeConfig(t, f.configText(conf{policy: `unpaired = "deny"`, users: users, rateLimit: 2}))
	f.reload(t)
	if n := len(f.log.find(t, "reload")); n == 0 {
		t.Fatalf("valid configuration not reloaded:\n%s", f.log)
	}
	if got := f.decide(t, b); got != "deny latch-ssh: access denied" {
		t.Errorf("after reload with unpaired = deny: %q, want deny", got)
	}
	if got := f.decide(t, a); got != "allow" {
		t.Errorf("after reload, paired user: %q, want allow (the new Latch client works)", got)
	}
	// rate_limit follows the reload: 2 a minute, one used just above.
	if got := f.decide(t, a); got != "allow" {
		t.Errorf("second decision within rate_limit = 2: %q, want allow", got)
	}
	if got := f.decide(t, a); !strings.Contains(got, "too many attempts") {
		t.Errorf("third decision with rate_limit = 2 after reload: %q, want the rate-limit refusal", got)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// TestDrain: SIGTERM stops new connections at once but lets a person who
// is typing a one-time code finish; then the daemon is gone.
func TestDrain(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.Latch.SetTwoFactor(appID, true)
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc}}))
	f.start(t, nil)

	s := f.startSession(t, u, "decide", "-interactive", f.socket)
	if got := s.next(t); got != otpPrompt {
		t.Fatalf("helper: %q, want the prompt", got)
	}
	f.signals <- syscall.SIGTERM
	waitFor(t, "the socket to refuse new connections", func() bool {
		c, err := net.Dial("unix", f.socket)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if got := f.decide(t, u); !strings.HasPrefix(got, "error daemon ") {
		t.Errorf("a new gate while draining: %q, want an ErrDaemon error", got)
	}
	select {
	case err := <-f.done:
		t.Fatalf("Run returned (%v) while a person was typing a code", err)
	default:
	}
	tok, _ := f.Latch.LastTwoFactorToken(acc, appID)
	s.answer(t, tok)
	if got := s.next(t); got != "allow" {
		t.Errorf("the exchange in progress: %q, want allow", got)
	}
	if err := f.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The decision was logged before the daemon said it stopped.
	var events []string
	for _, e := range f.log.entries(t) {
		events = append(events, e.str("event"))
	}
	if i, j := slices.Index(events, "decision"), slices.Index(events, "stopped"); i < 0 || j < 0 || i > j {
		t.Errorf("log events %q: want the decision before stopped", events)
	}
	_, err := gatesocket.AskDecision(context.Background(), f.socket, gatesocket.SocketRequest{}, nil)
	if !errors.Is(err, gatesocket.ErrDaemon) {
		t.Errorf("AskDecision with the daemon stopped: %v, want ErrDaemon", err)
	}
	s.end(t)
	f.checkNoLeak(t)
}

// TestDrainTimeout: someone who never types their code does not hold the
// daemon past the drain timeout.
func TestDrainTimeout(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.Latch.SetTwoFactor(appID, true)
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc}}))
	f.start(t, func(o *Options) { o.DrainTimeout = 100 * time.Millisecond })
	s := f.startSession(t, u, "decide", "-interactive", f.socket)
	if got := s.next(t); got != otpPrompt {
		t.Fatalf("helper: %q, want the prompt", got)
	}
	f.stop(t)
	if len(f.log.find(t, "drain-timeout")) != 1 {
		t.Errorf("no drain-timeout line:\n%s", f.log)
	}
	// The abandoned exchange ends when its gate goes away.
	s.kill(t)
	f.checkNoLeak(t)
}

// TestStopByContext: cancelling Run's context stops it like SIGTERM.
func TestStopByContext(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	f.writeConfig(t, f.configText(conf{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.ctx = ctx
	f.start(t, nil)
	if got := f.decide(t, u); got != "allow" {
		t.Fatalf("%q, want allow", got)
	}
	cancel()
	if err := f.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Lstat(f.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	f.checkNoLeak(t)
}

// monotonicUsecNow is CLOCK_MONOTONIC in microseconds.
func monotonicUsecNow(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}

// TestNotify: READY=1 once the socket accepts, RELOADING=1 with
// MONOTONIC_USEC then READY=1 around a reload (refused or not), STOPPING=1
// on stop; NOTIFY_SOCKET does not stay in the environment.
func TestNotify(t *testing.T) {
	for _, kind := range []string{"path", "abstract"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			f.writeConfig(t, f.configText(conf{}))
			addr := filepath.Join(f.Dir, "notify.sock")
			if kind == "abstract" {
				addr = "@" + filepath.Base(f.Dir) + "-notify"
			}
			nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			msgs := make(chan []string, 16)
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				buf := make([]byte, 4096)
				for {
					n, err := nl.Read(buf)
					if err != nil {
						return
					}
					msgs <- strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
				}
			}()
			t.Cleanup(func() { nl.Close(); <-readerDone })
			next := func() []string {
				t.Helper()
				select {
				case m := <-msgs:
					return m
				case <-time.After(waitLimit):
					t.Fatalf("no notification\nlog:\n%s", f.log)
					return nil
				}
			}
			t.Setenv("NOTIFY_SOCKET", addr)

			// SIGHUP alone: the file watcher would notify too.
			f.startNoWait(t, func(o *Options) { o.NoWatch = true })
			m := next()
			if !slices.Contains(m, "READY=1") || !slices.ContainsFunc(m, func(l string) bool { return strings.HasPrefix(l, "STATUS=serving") }) {
				t.Fatalf("first notification %q, want READY=1 and STATUS", m)
			}
			// READY=1 means the socket accepts: no waiting here.
			c, err := net.Dial("unix", f.socket)
			if err != nil {
				t.Fatalf("READY=1 sent before the socket accepts: %v", err)
			}
			c.Close()
			if v, set := os.LookupEnv("NOTIFY_SOCKET"); set {
				t.Errorf("NOTIFY_SOCKET=%q still in the environment", v)
			}

			for _, broken := range []bool{false, true} {
				text := f.configText(conf{})
				if broken {
					text += "\n= nonsense\n"
				}
				f.writeConfig(t, text)
				before := monotonicUsecNow(t)
				f.signals <- syscall.SIGHUP
				m = next()
				after := monotonicUsecNow(t)
				if len(m) != 2 || m[0] != "RELOADING=1" || !strings.HasPrefix(m[1], "MONOTONIC_USEC=") {
					t.Fatalf("reload notification %q, want RELOADING=1 and MONOTONIC_USEC", m)
				}
				if usec, err := strconv.ParseInt(strings.TrimPrefix(m[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec < before || usec > after {
					t.Errorf("%s: want CLOCK_MONOTONIC between %d and %d", m[1], before, after)
				}
				m = next()
				if !slices.Contains(m, "READY=1") {
					t.Errorf("after reload %q, want READY=1", m)
				}
				if broken && !slices.ContainsFunc(m, func(l string) bool { return strings.Contains(l, "reload refused") }) {
					t.Errorf("refused reload: status %q does not say so", m)
				}
			}

			f.signals <- syscall.SIGTERM
			if m := next(); !slices.Equal(m, []string{"STOPPING=1"}) {
				t.Errorf("stop notification %q, want STOPPING=1", m)
			}
			if err := f.wait(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// TestNotifierFromEnv: what NOTIFY_SOCKET values are accepted, and that
// the variable is always removed.
func TestNotifierFromEnv(t *testing.T) {
	for _, c := range []struct {
		value   string
		ok, use bool
	}{
		{"", true, false},
		{"/run/systemd/notify", true, true},
		{"@/org/freedesktop/systemd1/notify/123", true, true},
		{"run/systemd/notify", false, false},
		{"@", false, false},
		{"vsock:2:1234", false, false},
	} {
		t.Setenv("NOTIFY_SOCKET", c.value)
		n, err := notifierFromEnv()
		if (err == nil) != c.ok || (n.addr != nil) != c.use {
			t.Errorf("NOTIFY_SOCKET=%q: notifier %v, error %v; want accepted %v, used %v", c.value, n.addr, err, c.ok, c.use)
		}
		if _, set := os.LookupEnv("NOTIFY_SOCKET"); set {
			t.Errorf("NOTIFY_SOCKET=%q left in the environment", c.value)
		}
	}
	if err := (notifier{}).send("READY=1"); err != nil {
		t.Errorf("zero notifier: %v", err)
	}
	n := notifier{addr: &net.UnixAddr{Name: filepath.Join(t.TempDir(), "none"), Net: "unixgram"}}
	if err := n.send("READY=1"); err == nil {
		t.Error("sending to a missing socket did not fail")
	}
	if err := n.send("STATUS=a\nREADY=1"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("an assignment with a newline: %v", err)
	}
}

// TestEmbeddedServer: with [server] listen, serve runs the SSH server too:
// a host key generated once (0600) and kept across restarts, logins gated,
// and a stop that tells live sessions why they end.
func TestEmbeddedServer(t *testing.T) {
	f := newFixture(t)
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	port := systest.FreePort(t)
	hostKey := filepath.Join(f.Dir, "ssh_host_ed25519_key")
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc},
		extra: fmt.Sprintf("[server]\nlisten = \"127.0.0.1:%d\"\nhost_key = [%q]\n", port, hostKey)}))
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	login := func(t *testing.T) (*gossh.Client, gossh.PublicKey, error) {
		var hk gossh.PublicKey
		c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
			User: u.Name, Auth: []gossh.AuthMethod{gossh.PublicKeys(u.Signer)}, Timeout: 10 * time.Second,
			HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error { hk = key; return nil },
		})
		return c, hk, err
	}
	var first gossh.PublicKey
	started := func() {
		f.start(t, nil)
		// start waits for the gate socket; the SSH listener comes right
		// after it.
		waitFor(t, "the SSH server to accept connections", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	for round := range 2 {
		started()
		fi, err := os.Stat(hostKey)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("host key: %v, %v; want mode 0600", fi, err)
		}
		c, hk, err := login(t)
		if err != nil {
			t.Fatalf("round %d: login: %v\n%s", round, err, f.log)
		}
		if round == 0 {
			first = hk
		} else if !bytes.Equal(hk.Marshal(), first.Marshal()) {
			t.Errorf("host key changed across restarts: %s then %s", gossh.FingerprintSHA256(first), gossh.FingerprintSHA256(hk))
		}
		// A live session hears why it ends when the daemon stops.
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		s.Stderr = &stderr
		out, _ := s.StdoutPipe()
		if err := s.Start("echo up; exec sleep 60"); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 3)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "up\n" {
			t.Fatalf("session output %q, %v", line, err)
		}
		f.stop(t)
		if err := s.Wait(); err == nil {
			t.Error("the session survived the daemon")
		}
		if !strings.Contains(stderr.String(), "latch-ssh is stopping") {
			t.Errorf("session stderr %q: want the reason", stderr.String())
		}
		c.Close()
		f.done = nil
	}
	// Closed latch: refused, like every other front end.
	f.Latch.SetLatch(acc, appID, false)
	started()
	if c, _, err := login(t); err == nil {
		c.Close()
		t.Error("logged in with the latch closed")
	}
	f.stop(t)
	f.checkNoLeak(t)
}
