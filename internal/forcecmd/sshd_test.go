package forcecmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/internal/wiring"
)

// snippetPath is the sshd_config.d snippet shipped for ForceCommand mode;
// the README tells admins to install this very file.
const snippetPath = "../../packaging/sshd/latch-ssh-forcecommand.conf"

const closedLine = "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again"

// snippet returns the shipped snippet with the gate's path and the gated
// group replaced by the test's.
func snippet(t *testing.T, bin, group string) string {
	t.Helper()
	b, err := os.ReadFile(snippetPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"Match Group latch-users\n", "ForceCommand /usr/bin/latch-ssh\n", "DisableForwarding yes\n", "PermitUserRC no\n"} {
		if !strings.Contains(s, want) {
			t.Fatalf("%s lacks %q", snippetPath, want)
		}
	}
	s = strings.ReplaceAll(s, "Match Group latch-users", "Match Group "+group)
	return strings.ReplaceAll(s, "ForceCommand /usr/bin/latch-ssh", "ForceCommand "+bin)
}

// gateFixture is everything a ForceCommand login needs: the fake Latch,
// the daemon in-process, the gate built with the daemon's socket compiled
// in, a gated user (in the Match group) and an ungated one to compare with.
type gateFixture struct {
	*latchFixture
	d         *daemon
	bin       string
	group     string
	u, plain  *systest.User
	closedCfg string
}

func newGateFixture(t *testing.T) *gateFixture {
	t.Helper()
	systest.Require(t, "sshd", "ssh", "scp", "sftp", "rsync", "git")
	g := &gateFixture{latchFixture: newLatchFixture(t)}
	g.group = systest.CreateGroup(t)
	g.u = systest.CreateUser(t, systest.UserOptions{Groups: []string{g.group}})
	g.plain = systest.CreateUser(t, systest.UserOptions{})
	// Every user must reach the socket: a SecureDir is root-owned 0755.
	sock := filepath.Join(systest.SecureDir(t), "gate.sock")
	g.d = startDaemon(t, sock, nil)
	g.closedCfg = g.config(t, `fail_mode = "closed"`, g.u.Name)
	g.d.useConfig(t, g.closedCfg)
	g.bin = systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(sock))
	return g
}

func run(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	return systest.Run(t, cmd)
}

// sha returns the SHA-256 of a file.
func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func randomFile(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// wantRefused checks a refused login: exit 1, nothing on stdout, exactly
// the one line on stderr.
func wantRefused(t *testing.T, out, errOut string, code int, line string) {
	t.Helper()
	if code != 1 || out != "" || errOut != line+"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1, no stdout, stderr %q", code, out, errOut, line)
	}
}

// ttySession is `ssh -tt` with pipes on the client side: sshd gives the
// gate a real pseudo-terminal on the server, which is what matters.
type ttySession struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *watched
	done  chan struct{}
}

func startTTY(t *testing.T, s *systest.SSHD, u *systest.User, args ...string) *ttySession {
	t.Helper()
	cmd := s.SSH(t, u, append([]string{"-tt"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sess := &ttySession{cmd: cmd, stdin: stdin, out: watch(r), done: make(chan struct{})}
	// r is not closed when ssh exits: its last output may still be in the
	// pipe, unread (the watcher ends at EOF by itself once ssh is gone).
	go func() { cmd.Wait(); close(sess.done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-sess.done
		r.Close()
		if t.Failed() {
			t.Logf("ssh -tt output:\n%q", sess.out.String())
		}
	})
	return sess
}

func (s *ttySession) send(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, text); err != nil {
		t.Fatalf("write to ssh: %v", err)
	}
}

// wait returns ssh's exit status.
func (s *ttySession) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(systest.CommandTimeout):
		t.Fatalf("ssh -tt did not finish; output:\n%q", s.out.String())
		return -1
	}
}

// findGate returns the pid of the gate running as uid.
func findGate(t *testing.T, uid int, bin string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, _ := os.Readlink("/proc/" + e.Name() + "/exe"); exe != bin {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) == nil && int(st.Uid) == uid {
			return pid
		}
	}
	t.Fatalf("no process of uid %d runs %s", uid, bin)
	return 0
}

// sshdEnv is the shared setup of TestForceCommandSSHD's rows: the gate
// fixture (fake Latch, daemon, built gate, a gated and an ungated user)
// behind a real sshd running the shipped ForceCommand snippet, with
// internal-sftp, UsePAM no, and AcceptEnv for the variables rows send.
type sshdEnv struct {
	*gateFixture
	a *systest.SSHD
	// local is the client side's scratch directory.
	local string
}

// sshResult is what one ssh client run gave.
type sshResult struct {
	out, err string
	code     int
}

// ssh runs ssh as u with args (ssh options, then the remote command).
func (e *sshdEnv) ssh(t *testing.T, u *systest.User, args ...string) sshResult {
	t.Helper()
	out, errOut, code := run(t, e.a.SSH(t, u, args...))
	return sshResult{out, errOut, code}
}

// sshdCase is one row of TestForceCommandSSHD. A row states the world it
// needs (everything it changes is put back when it ends), the one ssh
// login it makes, and what that login must give; check covers what fields
// cannot say (file transfers, terminals, comparisons with an ungated
// login). A row without args makes no login of its own: check does it all.
// To add a case, add a row; run one with
// go test -run 'TestForceCommandSSHD/<name>' (spaces in names become _).
type sshdCase struct {
	name string

	// The world of this row.
	latchClosed   bool // the gated user's latch is closed
	twoFactor     bool // Latch sends a one-time code when asked without /nootp
	failOpen      bool // the daemon decides with fail_mode = "open" (not "closed")
	daemonStopped bool // nobody answers on the gate socket
	// setup changes anything else, putting it back with t.Cleanup.
	setup func(t *testing.T, e *sshdEnv)

	// The login: ssh as the gated user (the ungated one if ungated), with
	// args and stdin.
	ungated bool
	args    []string
	stdin   []byte

	// What the login must give; zero values are not checked.
	want    *sshResult // exactly this stdout, stderr and exit status
	refused string     // refused: exit 1, no stdout, exactly this line on stderr
	outHas  string     // stdout contains this
	notRun  string     // this file in the user's home does not exist afterwards
	nootp   *bool      // the daemon asked Latch with /nootp (true) or without (false)
	// decision is the daemon's decision for the login ("allow", "deny"),
	// or "none" when the daemon must not have decided at all.
	decision string
	// gateLog is in the gate's own syslog line (facility authpriv) about
	// the user.
	gateLog string

	// check runs after the login with its result.
	check func(t *testing.T, e *sshdEnv, r sshResult)
}

// boolPtr returns &b, for sshdCase.nootp.
func boolPtr(b bool) *bool { return &b }

// runSSHDCase puts the row's world in place, logs in and checks.
func runSSHDCase(t *testing.T, e *sshdEnv, c sshdCase) {
	t.Helper()
	if c.latchClosed {
		e.SetLatch(e.acc, false)
		t.Cleanup(func() { e.SetLatch(e.acc, true) })
	}
	if c.twoFactor {
		e.SetTwoFactor(true)
		t.Cleanup(func() { e.SetTwoFactor(false) })
	}
	if c.failOpen {
		e.d.useConfig(t, e.config(t, `fail_mode = "open"`, e.u.Name))
		t.Cleanup(func() { e.d.useConfig(t, e.closedCfg) })
	}
	var logs *systest.Syslog
	if c.gateLog != "" {
		logs = systest.CaptureSyslog(t)
	}
	if c.daemonStopped {
		e.d.stop()
		t.Cleanup(func() { e.d.start(t) })
	}
	if c.setup != nil {
		c.setup(t, e)
	}
	var r sshResult
	if c.args != nil {
		u := e.u
		if c.ungated {
			u = e.plain
		}
		before := len(e.d.audit.records())
		cmd := e.a.SSH(t, u, c.args...)
		if c.stdin != nil {
			cmd.Stdin = bytes.NewReader(c.stdin)
		}
		r.out, r.err, r.code = run(t, cmd)
		if c.want != nil && r != *c.want {
			t.Fatalf("got %s; want %s", brief(r), brief(*c.want))
		}
		if c.refused != "" {
			wantRefused(t, r.out, r.err, r.code, c.refused)
		}
		if c.outHas != "" && !strings.Contains(r.out, c.outHas) {
			t.Fatalf("stdout lacks %q: %s", c.outHas, brief(r))
		}
		if c.notRun != "" && exists(filepath.Join(u.Home, c.notRun)) {
			t.Fatalf("the command ran (~/%s exists): %s", c.notRun, brief(r))
		}
		if c.nootp != nil && e.LastStatus(t).NoOTP != *c.nootp {
			t.Fatalf("asked Latch with /nootp: %v, want %v", !*c.nootp, *c.nootp)
		}
		if c.decision != "" {
			recs := e.d.audit.records()[before:]
			got := "none"
			if len(recs) > 0 {
				got = recs[len(recs)-1].d.Outcome.String()
			}
			if got != c.decision {
				t.Fatalf("the daemon's decision: %s, want %s (%d new records)", got, c.decision, len(recs))
			}
		}
		if logs != nil {
			l := logs.WaitFor(t, func(l systest.SyslogLine) bool {
				return l.Tag == "latch-ssh" && strings.Contains(l.Message, `"user":"`+u.Name+`"`)
			}, 10*time.Second)
			if l.Facility != 10 || !strings.Contains(l.Message, c.gateLog) {
				t.Fatalf("the gate's log line: %+v; want authpriv (10) with %q", l, c.gateLog)
			}
		}
	}
	if c.check != nil {
		c.check(t, e, r)
	}
}

// brief shows a result, long outputs by their length only.
func brief(r sshResult) string {
	show := func(s string) string {
		if len(s) > 200 {
			return strconv.Itoa(len(s)) + " bytes"
		}
		return strconv.Quote(s)
	}
	return "exit " + strconv.Itoa(r.code) + ", stdout " + show(r.out) + ", stderr " + show(r.err)
}

// TestForceCommandSSHD logs in through a real sshd with the shipped
// ForceCommand snippet, one row of sshdCases per case.
func TestForceCommandSSHD(t *testing.T) {
	g := newGateFixture(t)
	e := &sshdEnv{gateFixture: g, local: t.TempDir(),
		a: systest.StartSSHD(t, systest.SSHDOptions{SFTP: "internal-sftp",
			Extra: "AcceptEnv FOO SHELL LATCH_SSH_*\n" + snippet(t, g.bin, g.group)})}
	for _, c := range sshdCases(e) {
		t.Run(c.name, func(t *testing.T) { runSSHDCase(t, e, c) })
	}
}

// sshdCases are TestForceCommandSSHD's rows. e.a's port is known: rows may
// use it.
func sshdCases(e *sshdEnv) []sshdCase {
	stream := make([]byte, 1<<20)
	rand.Read(stream)
	const (
		sigProbe = "grep -E '^Sig(Ign|Blk):' /proc/self/status"
		showEnv  = `printf '%s|%s|%s' "$FOO" "${LATCH_SSH_TEST-unset}" "$0"`
		setEnv   = "SetEnv=FOO=bar LATCH_SSH_TEST=x"
		envNames = "env | cut -d= -f1 | sort"
	)
	return []sshdCase{{
		name: "built with cgo",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			out, errOut, code := run(t, exec.Command(systest.Require(t, "go")["go"], "version", "-m", e.bin))
			if code != 0 || !strings.Contains(out, "CGO_ENABLED=1") {
				t.Fatalf("the gate must use the C library's NSS lookups: go version -m: %d %s%s", code, out, errOut)
			}
		},
	}, {
		name: "snippet passes the wiring checks",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			tsshd := systest.Require(t, "sshd")["sshd"]
			T := func(conn string) wiring.SSHDConfig {
				out, errOut, code := run(t, exec.Command(tsshd, "-T", "-f", e.a.ConfigPath, "-C", conn))
				if code != 0 {
					t.Fatalf("sshd -T: %s", errOut)
				}
				return wiring.ParseSSHDT([]byte(out))
			}
			global := T("user=" + e.plain.Name + ",host=localhost,addr=127.0.0.1")
			gated := T("user=" + e.u.Name + ",host=localhost,addr=127.0.0.1")
			if gated.Get("forcecommand") != e.bin || global.Get("forcecommand") != "none" {
				t.Fatalf("Match not applied: gated %q, ungated %q", gated.Get("forcecommand"), global.Get("forcecommand"))
			}
			for _, f := range wiring.CheckSSHD(global, map[string]wiring.SSHDConfig{e.u.Name: gated}, false, []string{e.bin}) {
				if f.Severity == wiring.Error {
					t.Errorf("check-config finds a hole in the shipped snippet: %s", f)
				}
			}
		},
	}, {
		// ForceCommand never sees forwarding channels: the snippet's
		// DisableForwarding must refuse them (here ssh -W, a direct-tcpip
		// channel to sshd's own port), while an ungated user gets through.
		name: "forwarding refused",
		args: []string{"-W", "127.0.0.1:" + strconv.Itoa(e.a.Port)},
		check: func(t *testing.T, e *sshdEnv, r sshResult) {
			if r.code == 0 || strings.Contains(r.out, "SSH-2.0") {
				t.Fatalf("gated ssh -W: %s", brief(r))
			}
			if p := e.ssh(t, e.plain, "-W", "127.0.0.1:"+strconv.Itoa(e.a.Port)); !strings.HasPrefix(p.out, "SSH-2.0-") {
				t.Fatalf("ungated ssh -W (control): %s", brief(p))
			}
		},
	}, {
		name:     "exit status",
		args:     []string{"exit 7"},
		want:     &sshResult{code: 7},
		decision: "allow",
	}, {
		name:  "binary stream",
		args:  []string{"cat"},
		stdin: stream,
		want:  &sshResult{out: string(stream)},
	}, {
		name:  "scp",
		check: testSCP,
	}, {
		name:  "sftp internal-sftp",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) { testSFTP(t, e.a, e.u, e.local) },
	}, {
		name:  "rsync",
		check: testRsync,
	}, {
		name:  "git",
		check: testGit,
	}, {
		name: "login shell",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			s := startTTY(t, e.a, e.u)
			s.send(t, "echo \"Z=$0=\"; exit\n")
			s.out.waitFor(t, "Z=-bash=", 30*time.Second)
			if code := s.wait(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
		},
	}, {
		// No terminal, so no person to prompt: the daemon asks with /nootp.
		name:   "login shell without a terminal",
		args:   []string{"-T"},
		stdin:  []byte("echo \"Z=$0=\"\n"),
		outHas: "Z=-bash=",
		nootp:  boolPtr(true),
		check: func(t *testing.T, e *sshdEnv, r sshResult) {
			if r.code != 0 || r.err != "" {
				t.Fatalf("%s", brief(r))
			}
		},
	}, {
		name: "SIGPIPE at its default",
		args: []string{"yes | head -1"},
		want: &sshResult{out: "y\n"},
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			gated, plain := e.ssh(t, e.u, sigProbe).out, e.ssh(t, e.plain, sigProbe).out
			if gated != plain || gated == "" {
				t.Fatalf("signal dispositions differ from an ungated login:\ngated:\n%sungated:\n%s", gated, plain)
			}
			for _, line := range strings.Split(gated, "\n") {
				if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
					mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
					if err != nil || mask&(1<<(syscall.SIGPIPE-1)) != 0 {
						t.Fatalf("SIGPIPE ignored in the session: %s (%v)", line, err)
					}
				}
			}
		},
	}, {
		// FOO reaches the command unchanged; latch-ssh's own variables do
		// not (the next row shows sshd accepted it); argv0 is the shell's
		// base name, as sshd sets it.
		name: "environment",
		args: []string{"-o", setEnv, showEnv},
		want: &sshResult{out: "bar|unset|bash"},
	}, {
		name:    "environment ungated",
		ungated: true,
		args:    []string{"-o", setEnv, showEnv},
		want:    &sshResult{out: "bar|x|bash"},
	}, {
		name: "environment names as ungated",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			gated, plain := e.ssh(t, e.u, envNames).out, e.ssh(t, e.plain, envNames).out
			// SSH_ORIGINAL_COMMAND is sshd's, set for every forced command.
			if gated != strings.Replace(plain, "SSH_CONNECTION\n", "SSH_CONNECTION\nSSH_ORIGINAL_COMMAND\n", 1) {
				t.Fatalf("the gated session's variables differ from an ungated one's:\ngated: %q\nungated: %q", gated, plain)
			}
		},
	}, {
		name:        "closed",
		latchClosed: true,
		args:        []string{"touch ~/closed-marker"},
		refused:     closedLine,
		notRun:      "closed-marker",
		decision:    "deny",
	}, {
		// scp: the transfer fails, nothing is written.
		name:        "closed scp",
		latchClosed: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			src := filepath.Join(e.local, "closed-src")
			randomFile(t, src, 1000)
			if _, _, code := run(t, e.a.SCP(t, e.u, "-O", src, e.a.Remote(e.u, "closed-scp"))); code == 0 || exists(filepath.Join(e.u.Home, "closed-scp")) {
				t.Fatalf("scp -O with the latch closed: exit %d", code)
			}
		},
	}, {
		name:        "closed sftp",
		latchClosed: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			src := filepath.Join(e.local, "closed-src")
			randomFile(t, src, 1000)
			if _, _, code := run(t, e.a.SFTP(t, e.u, "put "+src+" closed-sftp\n")); code == 0 || exists(filepath.Join(e.u.Home, "closed-sftp")) {
				t.Fatalf("sftp with the latch closed: exit %d", code)
			}
		},
	}, {
		// A terminal session: the refusal, and no shell.
		name:        "closed terminal",
		latchClosed: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			s := startTTY(t, e.a, e.u)
			s.out.waitFor(t, closedLine, 30*time.Second)
			if code := s.wait(t); code != 1 {
				t.Fatalf("interactive: exit %d", code)
			}
			if n := strings.Count(s.out.String(), "\n"); n != 1 {
				t.Fatalf("interactive refusal: %d lines: %q", n, s.out.String())
			}
		},
	}, {
		name:      "one-time code",
		twoFactor: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			s := startTTY(t, e.a, e.u)
			s.out.waitFor(t, "Latch one-time code: ", 30*time.Second)
			tok := e.TwoFactorCode(e.acc)
			if tok == "" || e.LastStatus(t).NoOTP {
				t.Fatalf("no two-factor token (%q), or asked with /nootp", tok)
			}
			s.send(t, tok+"\n")
			s.send(t, "echo OK-$((6*7)); exit\n")
			s.out.waitFor(t, "OK-42", 30*time.Second)
			if code := s.wait(t); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if strings.Contains(s.out.String(), tok) {
				t.Fatalf("the code was echoed: %q", s.out.String())
			}
		},
	}, {
		name:      "one-time code wrong",
		twoFactor: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			s := startTTY(t, e.a, e.u)
			s.out.waitFor(t, "Latch one-time code: ", 30*time.Second)
			s.send(t, "wrong0\n")
			s.out.waitFor(t, "latch-ssh: access denied: wrong one-time code", 30*time.Second)
			if code := s.wait(t); code != 1 {
				t.Fatalf("wrong code: exit %d", code)
			}
		},
	}, {
		// Ctrl-C at the prompt: the terminal's SIGINT reaches the gate,
		// which denies.
		name:      "one-time code Ctrl-C",
		twoFactor: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			s := startTTY(t, e.a, e.u)
			s.out.waitFor(t, "Latch one-time code: ", 30*time.Second)
			s.send(t, "\x03")
			s.out.waitFor(t, denyLine, 30*time.Second)
			if code := s.wait(t); code != 1 {
				t.Fatalf("Ctrl-C at the prompt: exit %d", code)
			}
		},
	}, {
		// No person to prompt: a command is decided with /nootp and allowed.
		name:      "one-time code, command",
		twoFactor: true,
		args:      []string{"echo in"},
		want:      &sshResult{out: "in\n"},
		nootp:     boolPtr(true),
		decision:  "allow",
	}, {
		name:          "daemon stopped",
		daemonStopped: true,
		args:          []string{"touch ~/stopped-marker"},
		refused:       denyLine,
		notRun:        "stopped-marker",
		decision:      "none",
		gateLog:       "gate: no answer from the latch-ssh daemon",
	}, {
		// The gate is killed while Latch hangs; with fail_mode = "open" the
		// daemon would allow once [latch] timeout passes, so only the
		// gate's own handling of the signal can deny.
		name:     "gate killed mid-decision",
		failOpen: true,
		check:    testGateKilled,
	}, {
		// The known limit the README states: Debian's bash reads ~/.bashrc
		// when sshd starts it, before the gate, and nothing in sshd stops it.
		name:        "bashrc runs before the gate",
		latchClosed: true,
		setup: func(t *testing.T, e *sshdEnv) {
			if !exists("/etc/debian_version") {
				t.Skip("the README's statement is about Debian's bash")
			}
			orig, _ := os.ReadFile(filepath.Join(e.u.Home, ".bashrc"))
			e.u.WriteFile(t, ".bashrc", "touch ~/bashrc-ran\n"+string(orig), 0o644)
			t.Cleanup(func() { e.u.WriteFile(t, ".bashrc", string(orig), 0o644) })
		},
		args:    []string{"true"},
		refused: closedLine,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			if !exists(filepath.Join(e.u.Home, "bashrc-ran")) {
				t.Fatal("~/.bashrc did not run before the gate: update the README's known limits")
			}
		},
	}}
}

// testSCP copies a file up and back with scp, legacy protocol and SFTP.
func testSCP(t *testing.T, e *sshdEnv, _ sshResult) {
	a, u := e.a, e.u
	src := filepath.Join(e.local, "scp-src")
	randomFile(t, src, 300<<10)
	for _, legacy := range []bool{true, false} {
		name, opts := "sftp-scp", []string{}
		if legacy {
			name, opts = "legacy-scp", []string{"-O"}
		}
		up := append(append([]string{}, opts...), src, a.Remote(u, name))
		if out, errOut, code := run(t, a.SCP(t, u, up...)); code != 0 {
			t.Fatalf("%s up: %d %s%s", name, code, out, errOut)
		}
		back := filepath.Join(e.local, name+"-back")
		down := append(append([]string{}, opts...), a.Remote(u, name), back)
		if out, errOut, code := run(t, a.SCP(t, u, down...)); code != 0 {
			t.Fatalf("%s down: %d %s%s", name, code, out, errOut)
		}
		if sha(t, filepath.Join(u.Home, name)) != sha(t, src) || sha(t, back) != sha(t, src) {
			t.Fatalf("%s: checksums differ", name)
		}
	}
}

// testRsync copies a tree up and back with rsync over ssh.
func testRsync(t *testing.T, e *sshdEnv, _ sshResult) {
	a, u := e.a, e.u
	src := filepath.Join(e.local, "rsync-src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	randomFile(t, filepath.Join(src, "a"), 100<<10)
	randomFile(t, filepath.Join(src, "sub", "b"), 10<<10)
	rsh := a.RsyncSSH(t, u)
	if out, errOut, code := run(t, exec.Command("rsync", "-a", "-e", rsh, src+"/", a.Remote(u, "rs/"))); code != 0 {
		t.Fatalf("rsync up: %d %s%s", code, out, errOut)
	}
	back := filepath.Join(e.local, "rsync-back")
	if out, errOut, code := run(t, exec.Command("rsync", "-a", "-e", rsh, a.Remote(u, "rs/"), back+"/")); code != 0 {
		t.Fatalf("rsync down: %d %s%s", code, out, errOut)
	}
	for _, f := range []string{"a", "sub/b"} {
		if sha(t, filepath.Join(back, f)) != sha(t, filepath.Join(src, f)) || sha(t, filepath.Join(u.Home, "rs", f)) != sha(t, filepath.Join(src, f)) {
			t.Fatalf("rsync: %s differs", f)
		}
	}
}

// testGit pushes to and clones from a bare repository through the gate.
func testGit(t *testing.T, e *sshdEnv, _ sshResult) {
	a, u, local := e.a, e.u, e.local
	if out, errOut, code := run(t, u.Command("git", "init", "-q", "--bare", "repo.git")); code != 0 {
		t.Fatalf("git init --bare: %s%s", out, errOut)
	}
	work := filepath.Join(local, "git-work")
	gitEnv := append(os.Environ(), "GIT_SSH_COMMAND="+a.GitSSHCommand(t, u), "HOME="+local,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir, cmd.Env = dir, gitEnv
		if out, errOut, code := run(t, cmd); code != 0 {
			t.Fatalf("git %s: %d %s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	os.MkdirAll(work, 0o755)
	git(work, "init", "-q")
	os.WriteFile(filepath.Join(work, "README"), []byte("through the gate\n"), 0o644)
	git(work, "add", "README")
	git(work, "commit", "-q", "-m", "first")
	git(work, "push", "-q", a.Remote(u, "repo.git"), "main")
	git(local, "clone", "-q", "-b", "main", a.Remote(u, "repo.git"), "git-clone")
	if b, _ := os.ReadFile(filepath.Join(local, "git-clone", "README")); string(b) != "through the gate\n" {
		t.Fatalf("cloned README: %q", b)
	}
}

// testGateKilled sends SIGTERM to the gate while the daemon waits for a
// hanging Latch: the login is refused well before [latch] timeout, and the
// command does not run.
func testGateKilled(t *testing.T, e *sshdEnv, _ sshResult) {
	u := e.u
	e.Latch.SetFault(e.acc, faultHang())
	defer e.Latch.ClearFaults()
	e.d.drainCalls()
	cmd := e.a.SSH(t, u, "touch ~/killed-marker")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done }()
	e.d.waitCall(t)
	if err := syscall.Kill(findGate(t, u.UID, e.bin), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second): // well under [latch] timeout
		t.Fatal("ssh still running after the gate was killed")
	}
	wantRefused(t, stdout.String(), stderr.String(), cmd.ProcessState.ExitCode(), denyLine)
	if exists(filepath.Join(u.Home, "killed-marker")) {
		t.Fatal("the command ran after the gate was killed")
	}
}

// testSFTP puts and gets a file with sftp and compares checksums.
func testSFTP(t *testing.T, s *systest.SSHD, u *systest.User, local string) {
	t.Helper()
	src := filepath.Join(local, "sftp-src")
	randomFile(t, src, 200<<10)
	back := filepath.Join(local, "sftp-back-"+strconv.Itoa(s.Port))
	remote := "sftp-" + strconv.Itoa(s.Port)
	if out, errOut, code := run(t, s.SFTP(t, u, "put "+src+" "+remote+"\nget "+remote+" "+back+"\n")); code != 0 {
		t.Fatalf("sftp: %d %s%s", code, out, errOut)
	}
	if sha(t, back) != sha(t, src) || sha(t, filepath.Join(u.Home, remote)) != sha(t, src) {
		t.Fatal("sftp: checksums differ")
	}
}

// TestForceCommandSFTPServerPath: with `Subsystem sftp
// /usr/lib/openssh/sftp-server` the gate runs it through the shell, like
// sshd; and the gate works with UsePAM yes. Its rows are sshdCases too.
func TestForceCommandSFTPServerPath(t *testing.T) {
	g := newGateFixture(t)
	systest.Require(t, "/usr/lib/openssh/sftp-server")
	e := &sshdEnv{gateFixture: g, local: t.TempDir(),
		a: systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, Extra: snippet(t, g.bin, g.group)})}
	for _, c := range []sshdCase{{
		name:  "sftp",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) { testSFTP(t, e.a, e.u, e.local) },
	}, {
		name: "scp",
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			src := filepath.Join(e.local, "scp-src")
			randomFile(t, src, 100<<10)
			if out, errOut, code := run(t, e.a.SCP(t, e.u, src, e.a.Remote(e.u, "scp-up"))); code != 0 {
				t.Fatalf("scp (SFTP) up: %d %s%s", code, out, errOut)
			}
			if sha(t, filepath.Join(e.u.Home, "scp-up")) != sha(t, src) {
				t.Fatal("scp: checksums differ")
			}
		},
	}, {
		name: "exit status",
		args: []string{"exit 7"},
		want: &sshResult{code: 7},
	}, {
		name:        "closed",
		latchClosed: true,
		args:        []string{"true"},
		refused:     closedLine,
	}, {
		name:        "closed sftp",
		latchClosed: true,
		check: func(t *testing.T, e *sshdEnv, _ sshResult) {
			if _, _, code := run(t, e.a.SFTP(t, e.u, "ls\n")); code == 0 {
				t.Fatal("sftp with the latch closed succeeded")
			}
		},
	}} {
		t.Run(c.name, func(t *testing.T) { runSSHDCase(t, e, c) })
	}
}

// TestGateIgnoresIdentityVariables runs the built gate as the user with
// $SHELL, $USER, $LOGNAME and $HOME pointing elsewhere (sshd sets them
// itself, but a PAM module or a wrapper could change them): the shell is
// the passwd one and the daemon decides for the real uid.
func TestGateIgnoresIdentityVariables(t *testing.T) {
	g := newGateFixture(t)
	gateCmd := func() *exec.Cmd {
		cmd := g.u.Command(g.bin)
		cmd.Env = []string{"SHELL=/bin/false", "USER=root", "LOGNAME=root", "HOME=/", "PATH=/usr/bin:/bin",
			`SSH_ORIGINAL_COMMAND=printf '%s|%s' "$0" "$(id -un)"`}
		return cmd
	}
	out, errOut, code := run(t, gateCmd())
	if code != 0 || out != "bash|"+g.u.Name || errOut != "" {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	recs := g.d.audit.records()
	if last := recs[len(recs)-1]; last.req.User != g.u.Name {
		t.Fatalf("the daemon decided for %q", last.req.User)
	}
	g.SetLatch(g.acc, false)
	out, errOut, code = run(t, gateCmd())
	wantRefused(t, out, errOut, code, closedLine)
}

// TestGateSignalsDirect runs the built gate as the user, without sshd, and
// sends each of the signals that must deny while the daemon waits for a
// hanging Latch (fail_mode = "open": waiting would have allowed).
func TestGateSignalsDirect(t *testing.T) {
	g := newGateFixture(t)
	g.d.useConfig(t, g.config(t, `fail_mode = "open"`, g.u.Name))
	marker := filepath.Join(g.u.Home, "direct-marker")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGPIPE} {
		t.Run(sig.String(), func(t *testing.T) {
			g.Latch.SetFault(g.acc, faultHang())
			defer g.Latch.ClearFaults()
			g.d.drainCalls()
			cmd := g.u.Command(g.bin)
			cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND=touch "+marker)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// A generous bound: a loaded CI machine may be slow to run the
			// gate's handler; a gate that ignored the signal would be caught
			// anyway, by the refusal and marker checks below (the hang ends
			// in fail-open, which runs the command).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
			defer stop()
			g.d.waitCall(t)
			cmd.Process.Signal(sig)
			cmd.Wait()
			if ctx.Err() != nil {
				t.Fatal("the gate did not end on the signal")
			}
			wantRefused(t, stdout.String(), stderr.String(), cmd.ProcessState.ExitCode(), denyLine)
			if exists(marker) {
				t.Fatal("the command ran")
			}
		})
	}
	// Control: without a signal, the same setup lets the command run once
	// the fail mode applies, so the denials above are the signals' doing.
	t.Run("control", func(t *testing.T) {
		g.Latch.SetFault(g.acc, faultHang())
		defer g.Latch.ClearFaults()
		cmd := g.u.Command(g.bin)
		cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND=touch "+marker)
		out, errOut, code := run(t, cmd)
		if code != 0 || out != "" || errOut != "" || !exists(marker) {
			t.Fatalf("exit %d, %q, %q, ran %v", code, out, errOut, exists(marker))
		}
		os.Remove(marker)
	})
}

// TestGateRestoresDispositions starts the gate with SIGHUP, SIGINT and
// SIGPIPE ignored (as `trap "" ...` or nohup leave them): the shell it
// becomes keeps HUP and INT ignored, as it would have without the gate,
// while SIGPIPE is back at its default, so `yes | head -1` pipelines end.
func TestGateRestoresDispositions(t *testing.T) {
	g := newGateFixture(t)
	cmd := g.u.Command("/bin/bash", "-c", `trap "" HUP INT PIPE; exec "$0"`, g.bin)
	cmd.Env = append(cmd.Env, "SSH_ORIGINAL_COMMAND=grep '^SigIgn:' /proc/self/status")
	out, errOut, code := run(t, cmd)
	v, ok := strings.CutPrefix(strings.TrimSpace(out), "SigIgn:")
	mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	if code != 0 || !ok || err != nil || errOut != "" {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	bit := func(s syscall.Signal) uint64 { return 1 << (s - 1) }
	if mask&bit(syscall.SIGPIPE) != 0 || mask&bit(syscall.SIGHUP) == 0 || mask&bit(syscall.SIGINT) == 0 {
		t.Fatalf("SigIgn %016x: want SIGHUP and SIGINT ignored, SIGPIPE not", mask)
	}
}
