package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const (
	// appID is short for the one application of every test World.
	appID = systest.AppID
	// waitLimit bounds every wait of these tests; things that work take
	// milliseconds.
	waitLimit = 20 * time.Second
)

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	systest.WaitFor(t, what, waitLimit, cond)
}

// syncBuffer is the daemon's log, read by the test while the daemon writes.
type syncBuffer struct{ systest.Buffer }

// entry is one JSON log line.
type entry map[string]any

func (e entry) str(k string) string { s, _ := e[k].(string); return s }

// entries decodes the log; a line that is not JSON fails the test, since
// the daemon promises JSON lines.
func (b *syncBuffer) entries(t *testing.T) []entry {
	t.Helper()
	var out []entry
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the log entries with the given event.
func (b *syncBuffer) find(t *testing.T, event string) []entry {
	t.Helper()
	var out []entry
	for _, e := range b.entries(t) {
		if e.str("event") == event {
			out = append(out, e)
		}
	}
	return out
}

// conf is what a test puts in latch.toml.
type conf struct {
	policy    string // extra [policy] lines
	rateLimit int    // 0: 1000, out of the way of tests that are not about it
	users     map[string]string
	extra     string // more tables
}

// fixture is a systest.World (fake Latch, root-owned directory), the
// askgate helper, a configuration in that directory, and a daemon run in
// a goroutine.
type fixture struct {
	*systest.World
	cfgPath string
	socket  string
	helper  string
	log     *syncBuffer
	signals chan os.Signal
	// ctx is given to Run; cancelling it stops the daemon.
	ctx  context.Context
	done chan error // Run's result
	// base is the number of goroutines before Run started.
	base int
}

// newFixture builds the fixture; fake are options for the fake Latch
// (latchtest.WithClock, ...).
func newFixture(t *testing.T, fake ...latchtest.Option) *fixture {
	t.Helper()
	systest.Require(t)
	// Whatever runs the tests, the daemon must not notify it.
	t.Setenv("NOTIFY_SOCKET", "")
	f := &fixture{log: &syncBuffer{}, signals: make(chan os.Signal, 1), ctx: context.Background()}
	f.World = systest.NewWorld(t, systest.WorldOptions{Timeout: "5s", Fake: fake})
	f.helper = systest.BuildBinary(t, "./testdata/askgate")
	f.cfgPath = filepath.Join(f.Dir, "latch.toml")
	// A directory the daemon must create.
	f.socket = filepath.Join(f.Dir, "run", "gate.sock")
	return f
}

// pair pairs a new Latch account and returns its id.
func (f *fixture) pair(t *testing.T) string {
	t.Helper()
	return f.Pair()
}

// configText is latch.toml for c: the World's, fail closed, with the
// fixture's [daemon] table.
func (f *fixture) configText(c conf) string {
	if c.rateLimit == 0 {
		c.rateLimit = 1000
	}
	return f.ConfigText(systest.Config{
		Policy: "fail_mode = \"closed\"\n" + c.policy,
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = %d\n\n%s", f.socket, c.rateLimit, c.extra),
		Users:  c.users,
	})
}

// writeConfig (re)writes the configuration file, 0600 and root-owned as
// Load wants it, replaced whole so a reload never reads half of it.
func (f *fixture) writeConfig(t *testing.T, text string) {
	t.Helper()
	f.WriteFile(t, filepath.Base(f.cfgPath), text)
}

// start runs the daemon in a goroutine and waits until its socket accepts
// connections. At cleanup a daemon still running is stopped, so a failed
// test does not leave it behind.
func (f *fixture) start(t *testing.T, edit func(*Options)) {
	t.Helper()
	f.startNoWait(t, edit)
	waitFor(t, "the gate socket to accept connections", func() bool {
		select {
		case err := <-f.done:
			t.Fatalf("Run returned early: %v\nlog:\n%s", err, f.log)
		default:
		}
		c, err := net.Dial("unix", f.socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (f *fixture) startNoWait(t *testing.T, edit func(*Options)) {
	t.Helper()
	o := Options{ConfigPath: f.cfgPath, Log: f.log, Signals: f.signals}
	if edit != nil {
		edit(&o)
	}
	f.done = make(chan error, 1)
	f.base = runtime.NumGoroutine()
	done := f.done
	go func(ctx context.Context) { done <- Run(ctx, o) }(f.ctx)
	t.Cleanup(func() {
		select {
		case err := <-done: // stopped by the test
			done <- err
			return
		default:
		}
		f.signals <- syscall.SIGTERM
		select {
		case <-done:
		case <-time.After(waitLimit + DefaultDrainTimeout):
			t.Errorf("the daemon did not stop at cleanup")
		}
	})
}

// stop sends SIGTERM and waits for Run to return, which must be with nil.
func (f *fixture) stop(t *testing.T) {
	t.Helper()
	f.signals <- syscall.SIGTERM
	if err := f.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// wait waits for Run to return and gives its error. The result is put
// back, so the cleanup of start sees the daemon stopped.
func (f *fixture) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		f.done <- err
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return\nlog:\n%s", f.log)
		return nil
	}
}

// checkNoLeak waits for the goroutines Run started to end.
func (f *fixture) checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > f.base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before Run:\n%s", runtime.NumGoroutine(), f.base, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}

// reload sends SIGHUP and waits until the log has one more reload line
// (accepted or refused) than before.
func (f *fixture) reload(t *testing.T) {
	t.Helper()
	count := func() int { return len(f.log.find(t, "reload")) + len(f.log.find(t, "reload-refused")) }
	before := count()
	f.signals <- syscall.SIGHUP
	waitFor(t, "the reload to be logged", func() bool { return count() > before })
}

// ask runs the helper as u and returns its output lines.
func (f *fixture) ask(t *testing.T, u *systest.User, args ...string) []string {
	t.Helper()
	stdout, stderr, code := systest.Run(t, u.Command(f.helper, args...))
	if code != 0 {
		t.Fatalf("askgate %v: exit %d: %s%s", args, code, stdout, stderr)
	}
	return strings.Split(strings.TrimRight(stdout, "\n"), "\n")
}

// decide asks one decision as u, with extra askgate flags, and returns the
// helper's line ("allow", "deny ...", "error ...").
func (f *fixture) decide(t *testing.T, u *systest.User, flags ...string) string {
	t.Helper()
	out := f.ask(t, u, append(append([]string{"decide"}, flags...), f.socket)...)
	if len(out) != 1 {
		t.Fatalf("askgate decide: %q", out)
	}
	return out[0]
}

// session is the helper running as a user, talked to line by line.
type session struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // closed at EOF
	ended chan struct{}
}

// startSession runs the helper as u in the background. Cleanup kills it
// if it is still running.
func (f *fixture) startSession(t *testing.T, u *systest.User, args ...string) *session {
	t.Helper()
	cmd := u.Command(f.helper, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &session{cmd: cmd, stdin: stdin, lines: make(chan string, 16), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.ended
	})
	return s
}

// next returns the next output line of the helper.
func (s *session) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			t.Fatal("the helper ended without the expected line")
		}
		return l
	case <-time.After(waitLimit):
		t.Fatal("the helper printed nothing")
		return ""
	}
}

// answer writes one line to the helper's stdin.
func (s *session) answer(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// end waits for the helper to exit.
func (s *session) end(t *testing.T) {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(waitLimit):
		t.Fatal("the helper did not exit")
	}
}

// kill kills the helper and waits for it to end.
func (s *session) kill(t *testing.T) {
	t.Helper()
	s.cmd.Process.Kill()
	s.end(t)
}
