package sshserver

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

const (
	// appID and secret are the application of the fixture's fake Latch
	// (systest's, shared by every test package).
	appID, secret = systest.AppID, systest.Secret
	// waitLimit bounds every wait for something the server does.
	waitLimit = 20 * time.Second
)

// fixture is a running embedded server on 127.0.0.1:0, with the strict fake
// Latch of a systest.World, its logs captured, and real local users.
type fixture struct {
	world *systest.World
	// latch is world.Latch, the fake Latch.
	latch *latchtest.Server
	dir   string // world.Dir: the host key lives there
	core  atomic.Pointer[gate.Core]
	srv   *Server
	// Target is where clients connect; systest's client helpers use it.
	target  systest.Target
	hostKey gossh.PublicKey
	log     *syncBuffer
	audit   *syncBuffer
	served  chan error
	// server and policy are extra lines for [server] and [policy].
	server, policy string
	// onDecision, when set, receives the server's OnDecision calls.
	onDecision atomic.Pointer[func(user string, d gate.Decision)]
	// editConfig, when set, changes the configuration's text.
	editConfig func(string) string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	systest.Require(t)
	f := &fixture{log: &syncBuffer{}, audit: &syncBuffer{}, served: make(chan error, 1)}
	f.world = systest.NewWorld(t, systest.WorldOptions{})
	f.latch, f.dir = f.world.Latch, f.world.Dir
	return f
}

// user creates a real local user paired with a new Latch account, in
// [users] of every configuration built after.
func (f *fixture) user(t *testing.T, opts systest.UserOptions) (*systest.User, string) {
	t.Helper()
	return f.world.PairUser(t, opts)
}

// config returns the configuration the fixture's server runs with.
func (f *fixture) config(t *testing.T) *users.Config {
	t.Helper()
	// Clients connect from 127.0.0.1 unless a test says otherwise, and
	// many tests fail logins on purpose before one that must succeed: the
	// penalties (startups.go) would make each such test depend on how many
	// failures came before. So 127.0.0.1 is exempt, unless the test sets
	// penalty_exempt itself; the penalties are tested from other loopback
	// addresses (startups_test.go).
	exempt := "penalty_exempt = [\"127.0.0.1\"]"
	if strings.Contains(f.server, "penalty_exempt") {
		exempt = ""
	}
	text := f.world.ConfigText(systest.Config{
		Policy: "fail_mode = \"closed\"\nunpaired = \"deny\"\n" + f.policy,
		Tables: fmt.Sprintf("[server]\nlisten = \"127.0.0.1:0\"\nhost_key = [%q]\n%s\n%s",
			filepath.Join(f.dir, "host_key"), exempt, f.server),
		Users: f.world.Paired(),
	})
	if f.editConfig != nil {
		text = f.editConfig(text)
	}
	cfg, err := users.Parse("latch.toml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return cfg
}

// setCore builds a core for the current configuration and puts it in force.
func (f *fixture) setCore(t *testing.T) {
	t.Helper()
	cfg := f.config(t)
	client, err := gate.NewLatchClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	core := &gate.Core{Config: cfg, Latch: client, Groups: gate.NSSGroups{}, Audit: gate.NewWriterAudit(f.audit)}
	if old := f.core.Swap(core); old != nil {
		old.Close()
	}
}

// start starts the server; edit may change its options.
func (f *fixture) start(t *testing.T, edit func(*Options)) {
	t.Helper()
	f.setCore(t)
	log := zerolog.New(zerolog.SyncWriter(f.log))
	signers, err := LoadHostKeys([]string{filepath.Join(f.dir, "host_key")}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.hostKey = signers[0].PublicKey()
	o := Options{Core: f.core.Load, HostSigners: signers, Log: log, xcrypto: xcryptoInGoMod(t),
		OnDecision: func(user, _ string, d gate.Decision) {
			if fn := f.onDecision.Load(); fn != nil {
				(*fn)(user, d)
			}
		}}
	if edit != nil {
		edit(&o)
	}
	f.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	f.target = systest.Target{Addr: ln.Addr().String(), Port: port}
	go func() { f.served <- f.srv.Serve(ln) }()
	t.Cleanup(func() {
		f.srv.Close()
		select {
		case err := <-f.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("Serve did not return after Close")
		}
		f.core.Load().Close()
		if t.Failed() {
			t.Logf("server log:\n%s\naudit:\n%s", f.log.String(), f.audit.String())
		}
	})
}

// dialResult is what a client login attempt gave.
type dialResult struct {
	client  *gossh.Client
	err     error
	banners []string
}

// dial logs in with an x/crypto client.
func (f *fixture) dial(t *testing.T, user string, auth ...gossh.AuthMethod) dialResult {
	t.Helper()
	var r dialResult
	var mu sync.Mutex
	cfg := &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(f.hostKey),
		Timeout:         10 * time.Second,
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			r.banners = append(r.banners, msg)
			return nil
		},
	}
	r.client, r.err = gossh.Dial("tcp", f.target.Addr, cfg)
	if r.client != nil {
		t.Cleanup(func() { r.client.Close() })
	}
	return r
}

// login logs u in with their key and fails the test if that does not work.
func (f *fixture) login(t *testing.T, u *systest.User) dialResult {
	t.Helper()
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err != nil {
		t.Fatalf("login as %s: %v", u.Name, r.err)
	}
	return r
}

// newSession opens a session on client, with a 24x80 xterm terminal when
// pty is true; it is closed at cleanup.
func newSession(t *testing.T, client *gossh.Client, pty bool) *gossh.Session {
	t.Helper()
	s, err := client.NewSession()
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if pty {
		if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
			t.Fatalf("RequestPty: %v", err)
		}
	}
	return s
}

// run runs cmd in a new session of client and returns stdout, stderr and
// the exit status (-1 when the session ended without one).
func run(t *testing.T, client *gossh.Client, cmd string) (string, string, int) {
	t.Helper()
	s, err := client.NewSession()
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	var ee *gossh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus()
	default:
		return out.String(), errb.String() + err.Error(), -1
	}
}

// otpAnswer answers the one-time code prompt with code(), recording the
// prompts it saw.
func otpAnswer(prompts *[]string, code func() string) gossh.AuthMethod {
	return gossh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		*prompts = append(*prompts, questions...)
		answers := make([]string, len(questions))
		for i := range questions {
			answers[i] = code()
		}
		return answers, nil
	})
}

// newSigner returns a fresh ed25519 key.
func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	systest.WaitFor(t, what, waitLimit, cond)
}

// syncBuffer is a log written by the server while the test reads it.
type syncBuffer struct{ systest.Buffer }

// entries parses the JSON lines of the log.
func (b *syncBuffer) entries(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// decisions returns the audit records for user, as "outcome: reason".
func (f *fixture) decisions(t *testing.T, user string) []string {
	t.Helper()
	var out []string
	for _, e := range f.audit.entries(t) {
		if e["user"] == user {
			out = append(out, fmt.Sprintf("%v: %v", e["outcome"], e["reason"]))
		}
	}
	return out
}

// latchCalls counts the status calls the fake answered for account.
func (f *fixture) latchCalls(account string) int {
	return f.latch.CountRequests(func(r latchtest.Request) bool {
		return strings.Contains(r.Path, "/status/") && strings.Contains(r.Path, account)
	})
}
