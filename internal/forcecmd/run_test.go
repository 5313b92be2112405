package forcecmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// shortDir returns a new directory with a short path: a Unix socket path
// must fit in 108 bytes, which t.TempDir() with a long test name may not.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lsf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// lockedBuffer is a buffer safe to write from the gate's goroutines.
type lockedBuffer = systest.Buffer

// execCall is what the gate asked to exec.
type execCall struct {
	path        string
	argv, env   []string
	stderrSoFar string
	resetFirst  bool
}

// harness is a runner wired to test doubles.
type harness struct {
	r       *runner
	sigs    chan os.Signal
	stderr  lockedBuffer
	audit   recorder
	execs   []execCall
	reset   bool
	lookups int
	// registered counts session registrations; registerErr is their
	// answer.
	registered  int
	registerErr error
}

var errExecStub = errors.New("exec stub")

// sshdConn is the SSH_CONNECTION sshd sets for every session: a test of a
// login sshd started has it (without it, or SSH_ORIGINAL_COMMAND, the gate
// knows it was run by hand; see TestRunOutsideSSHD).
const sshdConn = "SSH_CONNECTION=192.0.2.1 40000 127.0.0.1 22"

// newHarness returns a runner asking the daemon at sock for the user
// "alice" (shell /bin/bash), with env as its environment.
func newHarness(sock string, env ...string) *harness {
	h := &harness{sigs: make(chan os.Signal, 1)}
	h.r = &runner{
		uid: os.Getuid(), euid: os.Geteuid(), gid: os.Getgid(), egid: os.Getegid(),
		env:    env,
		socket: sock,
		lookup: func(uid int) (passwdEntry, error) {
			h.lookups++
			return passwdEntry{Name: "alice", UID: uid, Home: "/home/alice", Shell: "/bin/bash"}, nil
		},
		findSFTP:     func() (string, error) { return "/usr/lib/openssh/sftp-server", nil },
		openTTY:      func() (*os.File, error) { return nil, errors.New("no terminal in this test") },
		audit:        func() gate.Auditor { return &h.audit },
		stderr:       &h.stderr,
		sigs:         h.sigs,
		resetSignals: func() { h.reset = true },
		exec: func(path string, argv, env []string) error {
			h.execs = append(h.execs, execCall{path, argv, env, h.stderr.String(), h.reset})
			return errExecStub
		},
		decisionTimeout: 10 * time.Second,
		otpTimeout:      10 * time.Second,
		// Session registration has its own tests (TestRunRegister*); the
		// raw daemons here answer one decision.
		register: func(context.Context, string, gatesocket.SocketRequest) (string, error) {
			h.registered++
			return "tracked", h.registerErr
		},
	}
	return h
}

// wantDenied checks a refusal: exit 1, no exec, exactly one stderr line.
func (h *harness) wantDenied(t *testing.T, code int, line string) {
	t.Helper()
	if code != exitDenied || len(h.execs) != 0 {
		t.Fatalf("exit %d, execs %+v; want a refusal", code, h.execs)
	}
	if got := h.stderr.String(); got != line+"\n" {
		t.Fatalf("stderr %q, want the one line %q", got, line)
	}
}

// wantExec checks an allow: exec called once with path and argv, nothing
// on stderr before it, signals reset first.
func (h *harness) wantExec(t *testing.T, code int, path string, argv ...string) execCall {
	t.Helper()
	if len(h.execs) != 1 {
		t.Fatalf("exit %d, stderr %q: exec called %d times, want once", code, h.stderr.String(), len(h.execs))
	}
	e := h.execs[0]
	if e.path != path || !reflect.DeepEqual(e.argv, argv) {
		t.Fatalf("exec %s %q, want %s %q", e.path, e.argv, path, argv)
	}
	if e.stderrSoFar != "" || !e.resetFirst {
		t.Fatalf("before exec: stderr %q, signals reset %v", e.stderrSoFar, e.resetFirst)
	}
	// The stub's failure is reported like a real one.
	if code != exitDenied || !strings.HasPrefix(h.stderr.String(), "latch-ssh: cannot run "+path+": exec stub") {
		t.Fatalf("after a failed exec: exit %d, stderr %q", code, h.stderr.String())
	}
	return e
}

// ownDenials returns the reasons of the denials the gate logged itself,
// but for the failure of the exec stub.
func (h *harness) ownDenials() []string {
	var out []string
	for _, r := range h.audit.records() {
		if strings.HasPrefix(r.d.Reason, "gate: ") && r.d.Outcome == gate.Deny && !strings.HasSuffix(r.d.Reason, errExecStub.Error()) {
			out = append(out, r.d.Reason)
		}
	}
	return out
}

// rawDaemon serves sock with handle for every connection, standing in for
// a broken or hostile daemon. It returns the number of connections seen.
func rawDaemon(t *testing.T, sock string, handle func(c *net.UnixConn, r *bufio.Reader)) func() int {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			})
		}
	})
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// answer returns a handler that reads the request and writes raw.
func answer(raw string) func(*net.UnixConn, *bufio.Reader) {
	return func(c *net.UnixConn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		c.Write([]byte(raw))
	}
}

func TestRunMalformedAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(*net.UnixConn, *bufio.Reader)
	}{
		{"garbage", answer("garbage\n")},
		{"empty line", answer("\n")},
		{"other version", answer(`{"v":2,"outcome":"allow"}` + "\n")},
		{"no version", answer(`{"outcome":"allow"}` + "\n")},
		{"unknown outcome", answer(`{"v":1,"outcome":"maybe"}` + "\n")},
		{"upper-case outcome", answer(`{"v":1,"outcome":"ALLOW"}` + "\n")},
		{"no outcome", answer(`{"v":1}` + "\n")},
		{"outcome of the wrong type", answer(`{"v":1,"outcome":true}` + "\n")},
		{"too long", answer(`{"v":1,"outcome":"allow","message":"` + strings.Repeat("a", gatesocket.MaxMessageSize) + `"}` + "\n")},
		{"closed without answer", func(c *net.UnixConn, r *bufio.Reader) { r.ReadString('\n') }},
		{"closed before reading", func(*net.UnixConn, *bufio.Reader) {}},
		{"half an answer", answer(`{"v":1,"outc`)},
		// A code is asked although nobody can be prompted: the gate sends
		// "", and a daemon that then gives garbage is still a deny.
		{"ask-otp then garbage", func(c *net.UnixConn, r *bufio.Reader) {
			r.ReadString('\n')
			c.Write([]byte(`{"v":1,"outcome":"ask-otp","prompt":"code: "}` + "\n"))
			r.ReadString('\n')
			c.Write([]byte("}{\n"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "gate.sock")
			conns := rawDaemon(t, sock, tc.handle)
			h := newHarness(sock, "SSH_ORIGINAL_COMMAND=touch /nonexistent/x")
			h.wantDenied(t, h.r.run(), denyLine)
			if conns() != 1 || len(h.ownDenials()) != 1 {
				t.Fatalf("connections %d, own denials logged %q", conns(), h.ownDenials())
			}
		})
	}
	// The same fake, answering a well-formed allow, lets the gate through:
	// the denials above are about the answers, not the fake.
	t.Run("control: allow", func(t *testing.T) {
		sock := filepath.Join(shortDir(t), "gate.sock")
		rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
		h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
		h.wantExec(t, h.r.run(), "/bin/bash", "bash", "-c", "id")
	})
	t.Run("deny without message", func(t *testing.T) {
		sock := filepath.Join(shortDir(t), "gate.sock")
		rawDaemon(t, sock, answer(`{"v":1,"outcome":"deny"}`+"\n"))
		h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
		h.wantDenied(t, h.r.run(), denyLine)
	})
	t.Run("deny message with escapes", func(t *testing.T) {
		sock := filepath.Join(shortDir(t), "gate.sock")
		rawDaemon(t, sock, answer(`{"v":1,"outcome":"deny","message":"no\u001b[2J\nmore"}`+"\n"))
		h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
		h.wantDenied(t, h.r.run(), `no\x1b[2J\x0amore`)
	})
}

func TestRunDaemonMissing(t *testing.T) {
	h := newHarness(filepath.Join(shortDir(t), "gate.sock"), "SSH_ORIGINAL_COMMAND=id")
	h.wantDenied(t, h.r.run(), denyLine)
	if d := h.ownDenials(); len(d) != 1 || !strings.Contains(d[0], "no answer from the latch-ssh daemon") {
		t.Fatalf("own denials logged: %q", d)
	}
	r := h.audit.records()[0].req
	if r.User != "alice" || r.Service != "sshd" || r.Command != "id" {
		t.Fatalf("logged request %+v", r)
	}
}

// hangingDaemon reads the request, reports it on got, and never answers.
func hangingDaemon(t *testing.T, sock string) <-chan struct{} {
	got := make(chan struct{}, 1)
	release := make(chan struct{})
	rawDaemon(t, sock, func(c *net.UnixConn, r *bufio.Reader) {
		r.ReadString('\n')
		got <- struct{}{}
		<-release
	})
	// Registered after rawDaemon's, so it runs before it waits for its
	// handlers.
	t.Cleanup(func() { close(release) })
	return got
}

func TestRunHungDaemon(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	hangingDaemon(t, sock)
	h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
	h.r.decisionTimeout = 200 * time.Millisecond
	start := time.Now()
	h.wantDenied(t, h.r.run(), denyLine)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a 200ms deadline took %v", took)
	}
	if d := h.ownDenials(); len(d) != 1 || !strings.Contains(d[0], "no decision in time") {
		t.Fatalf("own denials logged: %q", d)
	}
}

func TestRunSignalWhileDeciding(t *testing.T) {
	for _, sig := range gateSignals() {
		t.Run(sig.String(), func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "gate.sock")
			got := hangingDaemon(t, sock)
			h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
			go func() { <-got; h.sigs <- sig }()
			h.wantDenied(t, h.r.run(), denyLine)
			if d := h.ownDenials(); len(d) != 1 || !strings.Contains(d[0], "interrupted by "+sig.String()) {
				t.Fatalf("own denials logged: %q", d)
			}
		})
	}
}

// A signal that lands after the verdict but before the dispositions are
// reset still denies: it was caught, so exec would otherwise lose it.
func TestRunSignalAfterVerdict(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
	h.r.resetSignals = func() { h.sigs <- syscall.SIGHUP }
	h.wantDenied(t, h.r.run(), denyLine)
}

func TestRunRefusesSetuid(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	conns := rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	for _, tc := range []struct{ uid, euid, gid, egid int }{{1000, 0, 1000, 1000}, {1000, 1000, 1000, 0}} {
		h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
		h.r.uid, h.r.euid, h.r.gid, h.r.egid = tc.uid, tc.euid, tc.gid, tc.egid
		h.wantDenied(t, h.r.run(), denyLine)
		if h.lookups != 0 || conns() != 0 {
			t.Fatalf("%+v: looked up %d times, %d connections", tc, h.lookups, conns())
		}
	}
}

func TestRunNoPasswdEntry(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	conns := rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
	h.r.lookup = func(uid int) (passwdEntry, error) {
		return passwdEntry{}, fmt.Errorf("uid %d has no passwd entry", uid)
	}
	h.wantDenied(t, h.r.run(), denyLine)
	if conns() != 0 || len(h.ownDenials()) != 1 {
		t.Fatalf("%d connections, own denials %q", conns(), h.ownDenials())
	}
}

func TestRunInternalSFTPWithoutServer(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	conns := rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	h := newHarness(sock, "SSH_ORIGINAL_COMMAND=internal-sftp")
	h.r.findSFTP = func() (string, error) { return "", errors.New("internal-sftp: no sftp-server found") }
	h.wantDenied(t, h.r.run(), "latch-ssh: internal-sftp: no sftp-server found")
	if conns() != 0 {
		t.Fatalf("%d connections: Latch asked for a session that cannot run", conns())
	}
}

// TestRunRequest: what the gate tells the daemon, and what it execs, for
// each kind of session.
func TestRunRequest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         []string
		interactive bool
		wantReq     gatesocket.SocketRequest
		path        string
		argv        []string
	}{
		{"command", []string{"SSH_ORIGINAL_COMMAND=ls -l", "SSH_CONNECTION=192.0.2.9 50022 127.0.0.1 22"}, false,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Command: "ls -l", Remote: "192.0.2.9"}, "/bin/bash", []string{"bash", "-c", "ls -l"}},
		// A terminal and a command (ssh -t host top, or scp in a pty) is no
		// person at a prompt.
		{"command on a terminal", []string{"SSH_ORIGINAL_COMMAND=top"}, true,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Command: "top"}, "/bin/bash", []string{"bash", "-c", "top"}},
		{"login shell on a terminal", []string{sshdConn}, true,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Interactive: true, Remote: "192.0.2.1"}, "/bin/bash", []string{"-bash"}},
		{"login shell without terminal", []string{"SSH_CONNECTION=::1 1 ::1 22"}, false,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Remote: "::1"}, "/bin/bash", []string{"-bash"}},
		{"internal-sftp", []string{"SSH_ORIGINAL_COMMAND=internal-sftp -l INFO"}, false,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Command: "internal-sftp -l INFO"}, "/usr/lib/openssh/sftp-server", []string{"sftp-server", "-l", "INFO"}},
		{"long command", []string{"SSH_ORIGINAL_COMMAND=echo " + strings.Repeat("y", 20000)}, false,
			gatesocket.SocketRequest{V: 1, Op: "decide", Service: "sshd", Command: truncateCommand("echo " + strings.Repeat("y", 20000))}, "/bin/bash", []string{"bash", "-c", "echo " + strings.Repeat("y", 20000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "gate.sock")
			reqs := make(chan string, 1)
			rawDaemon(t, sock, func(c *net.UnixConn, r *bufio.Reader) {
				line, _ := r.ReadString('\n')
				reqs <- line
				c.Write([]byte(`{"v":1,"outcome":"allow"}` + "\n"))
			})
			env := append([]string{"LATCH_SSH_SECRET=x", "FOO=bar"}, tc.env...)
			h := newHarness(sock, env...)
			h.r.interactive = tc.interactive
			e := h.wantExec(t, h.r.run(), tc.path, tc.argv...)
			want := append([]string{"FOO=bar"}, tc.env...)
			if !slices.Equal(e.env, want) {
				t.Errorf("exec environment %q, want %q", e.env, want)
			}
			if got, wantLine := <-reqs, jsonLine(tc.wantReq); got != wantLine {
				t.Errorf("request %s want %s", got, wantLine)
			}
		})
	}
}

// TestRunOTPPrompt: a login on a terminal, the daemon asks for a code, the
// gate prompts on the terminal with echo off and sends what was typed.
func TestRunOTPPrompt(t *testing.T) {
	for _, tc := range []struct {
		name, typed, want string
	}{
		{"code", "Ab12Cd\n", `{"v":1,"op":"otp","code":"Ab12Cd"}`},
		{"nothing", "\n", `{"v":1,"op":"otp"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave := openPTY(t)
			screen := watch(master)
			sock := filepath.Join(shortDir(t), "gate.sock")
			otp := make(chan string, 1)
			rawDaemon(t, sock, func(c *net.UnixConn, r *bufio.Reader) {
				r.ReadString('\n')
				c.Write([]byte(`{"v":1,"outcome":"ask-otp","prompt":"Latch one-time code: \u001b[31m"}` + "\n"))
				line, _ := r.ReadString('\n')
				otp <- strings.TrimSuffix(line, "\n")
				c.Write([]byte(`{"v":1,"outcome":"allow"}` + "\n"))
			})
			h := newHarness(sock, sshdConn)
			h.r.interactive = true
			h.r.openTTY = func() (*os.File, error) { return os.OpenFile(slave.Name(), os.O_RDWR|syscall.O_NOCTTY, 0) }
			go func() {
				screen.waitFor(t, "Latch one-time code: ", 10*time.Second)
				master.WriteString(tc.typed)
			}()
			h.wantExec(t, h.r.run(), "/bin/bash", "-bash")
			if got := <-otp; got != tc.want {
				t.Fatalf("otp message %s, want %s", got, tc.want)
			}
			if strings.Contains(screen.String(), "\x1b") {
				t.Errorf("the daemon's prompt reached the terminal with an escape: %q", screen.String())
			}
			if !echoOn(t, slave) {
				t.Error("echo not restored")
			}
		})
	}
}

// TestRunSignalAtPrompt: Ctrl-C (or a hang-up) at the code prompt denies
// and puts the terminal back.
func TestRunSignalAtPrompt(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	sock := filepath.Join(shortDir(t), "gate.sock")
	rawDaemon(t, sock, func(c *net.UnixConn, r *bufio.Reader) {
		r.ReadString('\n')
		c.Write([]byte(`{"v":1,"outcome":"ask-otp","prompt":"Latch one-time code: "}` + "\n"))
		r.ReadString('\n')
		c.Write([]byte(`{"v":1,"outcome":"allow"}` + "\n"))
	})
	h := newHarness(sock, sshdConn)
	h.r.interactive = true
	h.r.openTTY = func() (*os.File, error) { return os.OpenFile(slave.Name(), os.O_RDWR|syscall.O_NOCTTY, 0) }
	go func() {
		screen.waitFor(t, "Latch one-time code: ", 10*time.Second)
		h.sigs <- syscall.SIGINT
	}()
	h.wantDenied(t, h.r.run(), denyLine)
	if !echoOn(t, slave) {
		t.Error("echo not restored")
	}
}

// jsonLine is the protocol line the gate must send for v, spelled out
// field by field rather than with encoding/json, so the test does not
// share the gate's encoder.
func jsonLine(v gatesocket.SocketRequest) string {
	var b bytes.Buffer
	b.WriteString(fmt.Sprintf(`{"v":%d,"op":%q`, v.V, v.Op))
	if v.Service != "" {
		b.WriteString(fmt.Sprintf(`,"service":%q`, v.Service))
	}
	if v.Interactive {
		b.WriteString(`,"interactive":true`)
	}
	if v.Command != "" {
		b.WriteString(fmt.Sprintf(`,"command":%q`, v.Command))
	}
	if v.Remote != "" {
		b.WriteString(fmt.Sprintf(`,"remote":%q`, v.Remote))
	}
	b.WriteString("}\n")
	return b.String()
}

// TestRunOutsideSSHD (issue 13, point 5: what a new user meets first):
// `latch-ssh` typed at a terminal, not started by sshd, says what it is and
// where the commands are, instead of a bare "access denied". It is still a
// refusal: no shell, no question to the daemon (which would allow here),
// exit 2, and the denial is logged. A session sshd started (SSH_CONNECTION,
// or SSH_ORIGINAL_COMMAND) goes on as before.
func TestRunOutsideSSHD(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	asked := rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	for _, env := range [][]string{nil, {"TERM=xterm", "USER=alice", "SSH_CONNECTION_X=1"}} {
		h := newHarness(sock, env...)
		h.r.interactive = true
		code := h.r.run()
		if code != 2 || len(h.execs) != 0 {
			t.Fatalf("env %q: exit %d, execs %+v; want exit 2 and no shell", env, code, h.execs)
		}
		out := h.stderr.String()
		for _, want := range []string{"not started by sshd", "ForceCommand gate", "latch-ssh help"} {
			if !strings.Contains(out, want) {
				t.Errorf("env %q: stderr %q does not say %q", env, out, want)
			}
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("stderr %q: want one line", out)
		}
		if d := h.ownDenials(); len(d) != 1 || !strings.Contains(d[0], "not started by sshd") {
			t.Errorf("logged denials %q", d)
		}
	}
	if n := asked(); n != 0 {
		t.Fatalf("the daemon was asked %d times outside sshd", n)
	}
	// Either variable sshd sets means a login: the daemon decides.
	for _, v := range []string{sshdConn, "SSH_ORIGINAL_COMMAND=id"} {
		h := newHarness(sock, v)
		code := h.r.run()
		if len(h.execs) != 1 {
			t.Fatalf("%s: exit %d, stderr %q: the allowed login did not exec", v, code, h.stderr.String())
		}
	}
}

// TestRunRegisterRefusedDenies: the daemon allowed the login but will not
// track it (rechecks on, fail_mode closed): the gate denies, no shell.
func TestRunRegisterRefusedDenies(t *testing.T) {
	sock := filepath.Join(shortDir(t), "gate.sock")
	rawDaemon(t, sock, answer(`{"v":1,"outcome":"allow"}`+"\n"))
	h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id")
	h.registerErr = fmt.Errorf("%w: not under sshd", gatesocket.ErrNotTracked)
	h.wantDenied(t, h.r.run(), denyLine)
	if h.registered != 1 {
		t.Fatalf("%d registrations, want 1", h.registered)
	}
}

// TestRunRegisterWire: the registration the gate sends after an allow, and
// what it makes of the answers: tracked or an older daemon that does not
// know the op go on; a refusal with a reason, or no answer, denies.
func TestRunRegisterWire(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		allowed      bool
	}{
		{"tracked", `{"v":1,"message":"session tracked","ok":true}`, true},
		{"older daemon", `{"v":1,"outcome":"deny","message":"latch-ssh: access denied"}`, true},
		{"refused", `{"v":1,"outcome":"deny","message":"latch-ssh: access denied","reason":"session not tracked: x"}`, false},
		{"no answer", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "gate.sock")
			reqs := make(chan string, 2)
			n := 0
			var mu sync.Mutex
			rawDaemon(t, sock, func(c *net.UnixConn, r *bufio.Reader) {
				line, _ := r.ReadString('\n')
				reqs <- line
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if first {
					c.Write([]byte(`{"v":1,"outcome":"allow"}` + "\n"))
				} else if tc.answer != "" {
					c.Write([]byte(tc.answer + "\n"))
				}
			})
			h := newHarness(sock, "SSH_ORIGINAL_COMMAND=id", "SSH_CONNECTION=192.0.2.9 50022 127.0.0.1 22")
			h.r.register = nil // the real client
			code := h.r.run()
			if tc.allowed {
				h.wantExec(t, code, "/bin/bash", "bash", "-c", "id")
			} else {
				h.wantDenied(t, code, denyLine)
			}
			<-reqs
			select {
			case got := <-reqs:
				if want := `{"v":1,"op":"register","service":"sshd","remote":"192.0.2.9"}` + "\n"; got != want {
					t.Errorf("registration %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the gate sent no registration")
			}
		})
	}
}
