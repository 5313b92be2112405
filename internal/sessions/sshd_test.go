package sessions_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/daemon"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/procfs"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// The integration tests: a real daemon (internal/daemon, in-process),
// real sshd, real PAM (pam_exec running latch-check), the real
// ForceCommand gate (latch-ssh built with the daemon's socket), real
// users, and the fake Latch. Rechecks run every second.

const recheck = time.Second

// fixture is one daemon with its configuration.
type fixture struct {
	*systest.World
	sock, cfgPath  string
	check, gateBin string
	// metrics is the daemon's /metrics URL ([metrics] listen).
	metrics string
	group   string
	log     *systest.Buffer
	stop    func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	systest.Require(t, "sshd", "ssh", "setsid", "nohup", "python3:socket")
	t.Setenv("NOTIFY_SOCKET", "")
	f := &fixture{World: systest.NewWorld(t, systest.WorldOptions{}), log: &systest.Buffer{}}
	f.sock = filepath.Join(systest.SecureDir(t), "gate.sock")
	f.cfgPath = filepath.Join(f.Dir, "latch.toml")
	f.check = systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-check")
	f.gateBin = systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(f.sock))
	f.group = systest.CreateGroup(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", f.log.String())
		}
	})
	return f
}

// writeConfig writes latch.toml: fail closed, policy, rechecks every
// second, ops as [operations], users as [users].
func (f *fixture) writeConfig(t *testing.T, policy string, ops, users map[string]string) {
	t.Helper()
	if f.metrics == "" {
		f.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", systest.FreePort(t))
	}
	tables := fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 1000\n\n[server]\nrecheck = %q\n\n[metrics]\nlisten = %q\n",
		f.sock, recheck.String(), strings.TrimSuffix(strings.TrimPrefix(f.metrics, "http://"), "/metrics"))
	if len(ops) > 0 {
		tables += "\n[operations]\n"
		for svc, op := range ops {
			tables += fmt.Sprintf("%q = %q\n", svc, op)
		}
	}
	f.WriteFile(t, filepath.Base(f.cfgPath), f.ConfigText(systest.Config{Policy: "fail_mode = \"closed\"\n" + policy, Tables: tables, Users: users}))
}

// startDaemon runs the daemon until the test ends (or stop).
func (f *fixture) startDaemon(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{ConfigPath: f.cfgPath, Log: f.log, NoWatch: true, SessionGrace: time.Second})
	}()
	stopped := false
	f.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		}
	}
	t.Cleanup(f.stop)
	systest.WaitFor(t, "the daemon's socket", 10*time.Second, func() bool {
		c, err := net.Dial("unix", f.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// pamSSHD is an sshd whose PAM stack has the hook's account and session
// lines: packaging/pam/sshd as shipped (the README's recipe), pointed at
// the binary under test, in systest's stack.
func (f *fixture) pamSSHD(t *testing.T) *systest.SSHD {
	b, err := os.ReadFile("../../packaging/pam/sshd")
	if err != nil {
		t.Fatal(err)
	}
	var account, session string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.ReplaceAll(l, "/usr/sbin/latch-check", f.check+" -c "+f.cfgPath)
		switch {
		case strings.HasPrefix(l, "account "):
			account = l
		case strings.HasPrefix(l, "session "):
			session = l
		}
	}
	if account == "" || session == "" {
		t.Fatal("packaging/pam/sshd lacks the account or the session line")
	}
	return systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, PAM: systest.PAMStack(account) + session + "\n"})
}

// fcSSHD is an sshd with the shipped ForceCommand snippet for f.group.
func (f *fixture) fcSSHD(t *testing.T) *systest.SSHD {
	b, err := os.ReadFile("../../packaging/sshd/latch-ssh-forcecommand.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "Match Group latch-users", "Match Group "+f.group)
	s = strings.ReplaceAll(s, "ForceCommand /usr/bin/latch-ssh", "ForceCommand "+f.gateBin)
	return systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, Extra: s})
}

// sessionsOf lists the daemon's tracked sessions of user (root's op).
func (f *fixture) sessionsOf(t *testing.T, user string) []gatesocket.SessionInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := gatesocket.ListSessions(ctx, f.sock)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	var out []gatesocket.SessionInfo
	for _, s := range list {
		if s.User == user {
			out = append(out, s)
		}
	}
	return out
}

func (f *fixture) waitTracked(t *testing.T, user string, n int) {
	t.Helper()
	systest.WaitFor(t, fmt.Sprintf("%d tracked sessions of %s", n, user), 10*time.Second, func() bool {
		return len(f.sessionsOf(t, user)) == n
	})
}

// client is one ssh client running in the background.
type client struct {
	name  string
	cmd   *exec.Cmd
	out   *systest.Buffer
	stdin interface{ Close() error }
	done  chan struct{}
	ended time.Time
}

func start(t *testing.T, name string, cmd *exec.Cmd) *client {
	t.Helper()
	c := &client{name: name, cmd: cmd, out: &systest.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		c.ended = time.Now()
		close(c.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	})
	return c
}

func (c *client) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// forward starts `ssh -N -L` and waits until the client listens, which it
// does once logged in.
func forward(t *testing.T, s *systest.SSHD, u *systest.User) *client {
	t.Helper()
	port := systest.FreePort(t)
	c := start(t, "ssh -N -L", s.SSH(t, u, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", port, s.Port)))
	systest.WaitFor(t, "ssh -N -L listening", 10*time.Second, func() bool {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			conn.Close()
		}
		return err == nil || !c.running()
	})
	if !c.running() {
		t.Fatalf("ssh -N -L ended at once: %s", c.out.String())
	}
	return c
}

// shell starts `ssh -tt` and waits for the prompt's marker.
func shell(t *testing.T, s *systest.SSHD, u *systest.User) *client {
	t.Helper()
	c := start(t, "ssh -tt (a shell)", s.SSH(t, u, "-tt"))
	c.stdin.(interface{ Write([]byte) (int, error) }).Write([]byte("echo READY$((6*7))\n"))
	systest.WaitFor(t, "the shell", 10*time.Second, func() bool { return strings.Contains(c.out.String(), "READY42") || !c.running() })
	if !c.running() {
		t.Fatalf("ssh -tt ended: %s", c.out.String())
	}
	return c
}

// waitEnded waits until every client ended, at most limit after since,
// and logs how long each took.
func waitEnded(t *testing.T, frontEnd string, since time.Time, limit time.Duration, cs ...*client) {
	t.Helper()
	for _, c := range cs {
		select {
		case <-c.done:
		case <-time.After(time.Until(since.Add(limit + 5*time.Second))):
			t.Fatalf("%s: %s still running %v after the latch closed", frontEnd, c.name, time.Since(since))
		}
		took := c.ended.Sub(since)
		t.Logf("%s: %s ended %v after the latch closed", frontEnd, c.name, took.Round(time.Millisecond))
		if took > limit {
			t.Errorf("%s: %s took %v to end, want at most recheck + 2s = %v", frontEnd, c.name, took, limit)
		}
	}
}

// findProc returns the pid of uid's process whose command line is cmdline.
func findProc(uid int, cmdline string) int {
	pids, _ := procfs.PIDs()
	for _, pid := range pids {
		if u, err := procfs.RealUID(pid); err != nil || u != uid {
			continue
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ") == cmdline {
			return pid
		}
	}
	return 0
}

func alive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && !st.Dead()
}

// statusOf counts the fake Latch's status requests about account.
func statusOf(f *fixture, account string) int {
	return f.Latch.CountRequests(func(r latchtest.Request) bool { return strings.Contains(r.Path, "/status/"+account) })
}

// otherRound waits until the fake Latch was asked about account again:
// a recheck round ran after this point.
func (f *fixture) otherRound(t *testing.T, account string) {
	t.Helper()
	n := statusOf(f, account)
	systest.WaitFor(t, "another recheck round", 10*time.Second, func() bool { return statusOf(f, account) > n })
}

const (
	op1 = "OPERATIONONE00000001"
	op2 = "OPERATIONTWO00000002"
)

// frontEnd is one scenario's setup: the fixture, the sshd of the front
// end under test (s, deciding for service), a PAM-hook sshd on another
// operation (other), alice (gated) and bob, and their accounts.
type frontEnd struct {
	f          *fixture
	name       string
	s, other   *systest.SSHD
	alice, bob *systest.User
	accA, accB string
}

func setup(t *testing.T, name, policy string) *frontEnd {
	t.Helper()
	f := newFixture(t)
	fe := &frontEnd{f: f, name: name}
	fe.alice = systest.CreateUser(t, systest.UserOptions{Groups: []string{f.group}})
	fe.bob = systest.CreateUser(t, systest.UserOptions{Groups: []string{f.group}})
	fe.accA, fe.accB = f.Pair(), f.Pair()
	f.Latch.AddOperation(systest.AppID, op1, "")
	f.Latch.AddOperation(systest.AppID, op2, "")
	service := "sshd"
	if name == sessions.FrontEndPAM {
		fe.s = f.pamSSHD(t)
		service = fe.s.PAMService
	} else {
		fe.s = f.fcSSHD(t)
	}
	fe.other = f.pamSSHD(t)
	f.writeConfig(t, policy, map[string]string{service: op1, fe.other.PAMService: op2},
		map[string]string{fe.alice.Name: fe.accA, fe.bob.Name: fe.accB})
	f.startDaemon(t)
	return fe
}

// detached is the command line of the process alice leaves behind.
const detached = "sleep 600"

// testEndsOnClose is the scenario of issue 16 for one front end.
func testEndsOnClose(t *testing.T, name, policy string, wantDetachedDies bool) {
	fe := setup(t, name, policy)
	f, alice := fe.f, fe.alice
	cmdC := start(t, "ssh host 'sleep 60'", fe.s.SSH(t, alice, "setsid nohup "+detached+" >/dev/null 2>&1 </dev/null & sleep 60"))
	tty := shell(t, fe.s, alice)
	fwd := forward(t, fe.s, alice)
	bobC := start(t, "bob's ssh host 'sleep 60'", fe.s.SSH(t, fe.bob, "sleep 60"))
	otherC := start(t, "alice on another operation", fe.other.SSH(t, alice, "sleep 60"))
	// The PAM hook registers all three (the -N one at account time); the
	// gate never runs for -N, which ends as a sibling connection.
	want := 4
	if name == sessions.FrontEndForceCommand {
		want = 3
	}
	f.waitTracked(t, alice.Name, want)
	f.waitTracked(t, fe.bob.Name, 1)
	var orphan int
	systest.WaitFor(t, "the detached sleep", 10*time.Second, func() bool { orphan = findProc(alice.UID, detached); return orphan != 0 })

	// The daemon's metrics count the tracked sessions by front end:
	// alice's here (want less the one on the other operation, which is
	// the PAM hook's) and bob's; the PAM hook's count has alice's other
	// one too.
	live := want
	if name == sessions.FrontEndPAM {
		live++
	}
	systest.WaitMetric(t, f.metrics, 5*time.Second, float64(live), "latch_ssh_live_sessions", "front_end", name)

	closed := time.Now()
	f.Latch.SetLatch(fe.accA, op1, false)
	waitEnded(t, name, closed, recheck+2*time.Second, cmdC, tty, fwd)
	systest.WaitFor(t, "the ended sessions in the metrics", 5*time.Second, func() bool {
		m := systest.ParseMetrics(t, systest.Scrape(t, f.metrics))
		return m.Value("latch_ssh_sessions_ended_total", "front_end", name) >= float64(want-1) &&
			m.Value("latch_ssh_rechecks_total", "front_end", name, "result", "ended") >= 1
	})
	if !strings.Contains(tty.out.String(), gate.ClosedNotice) {
		t.Errorf("%s: the shell's terminal shows %q, without the notice %q", name, tty.out.String(), gate.ClosedNotice)
	}
	// Another round: bob's session goes on, and so does alice's on the
	// open operation, unless end = "user" (every process of hers).
	f.otherRound(t, fe.accB)
	if !bobC.running() {
		t.Fatalf("%s: bob's session ended; it must be untouched", name)
	}
	if wantDetachedDies {
		systest.WaitFor(t, "the detached sleep and alice's other connection to end", 5*time.Second, func() bool {
			return !alive(orphan) && !otherC.running()
		})
	} else {
		if !alive(orphan) {
			t.Errorf(`%s: with end = "session" the detached %q died`, name, detached)
		}
		if !otherC.running() {
			t.Errorf("%s: alice's session on another (open) operation ended", name)
		}
		if got := len(f.sessionsOf(t, alice.Name)); got != 1 {
			t.Errorf("%s: %d sessions of alice still tracked, want 1 (the other operation's)", name, got)
		}
	}

	// The latch opened again: a new login works at once.
	f.Latch.SetLatch(fe.accA, op1, true)
	if out, errOut, code := systest.Run(t, fe.s.SSH(t, alice, "echo", "back")); code != 0 || out != "back\n" {
		t.Fatalf("%s: login after reopening: exit %d, %q %q", name, code, out, errOut)
	}
}

func TestPAMSessionsEndWhenLatchCloses(t *testing.T) {
	testEndsOnClose(t, sessions.FrontEndPAM, "", false)
}

func TestForceCommandSessionsEndWhenLatchCloses(t *testing.T) {
	testEndsOnClose(t, sessions.FrontEndForceCommand, "", false)
}

func TestPAMEndUser(t *testing.T) {
	testEndsOnClose(t, sessions.FrontEndPAM, `end = "user"`, true)
}

func TestForceCommandEndUser(t *testing.T) {
	testEndsOnClose(t, sessions.FrontEndForceCommand, `end = "user"`, true)
}

// TestSecurityEndUserAfterLogoutRealSSHD: with end = "user", a job alice
// detached (setsid nohup) and left running when she logged out dies when
// her latch closes later, with no session of hers open any more (an
// intruder's leftover reverse shell). Before, the session left the table at
// logout and nothing asked Latch about alice again.
func TestSecurityEndUserAfterLogoutRealSSHD(t *testing.T) {
	fe := setup(t, sessions.FrontEndPAM, `end = "user"`)
	f, alice := fe.f, fe.alice
	const left = "sleep 603"
	if out, errOut, code := systest.Run(t, fe.s.SSH(t, alice, "setsid nohup "+left+" >/dev/null 2>&1 </dev/null &")); code != 0 {
		t.Fatalf("login: exit %d, %q %q", code, out, errOut)
	}
	var orphan int
	systest.WaitFor(t, "the detached sleep", 10*time.Second, func() bool { orphan = findProc(alice.UID, left); return orphan != 0 })
	f.waitTracked(t, alice.Name, 0) // logged out: no session of hers
	f.Latch.SetLatch(fe.accA, op1, false)
	systest.WaitFor(t, "the job alice left behind to end after her latch closed", recheck+3*time.Second, func() bool { return !alive(orphan) })
}

// TestPAMSessionsSurviveDaemonRestart: sessions open while the daemon
// restarts are still rechecked (the state file) and ended after.
func TestPAMSessionsSurviveDaemonRestart(t *testing.T) {
	fe := setup(t, sessions.FrontEndPAM, "")
	f, alice := fe.f, fe.alice
	cmdC := start(t, "ssh host 'sleep 60'", fe.s.SSH(t, alice, "sleep 60"))
	tty := shell(t, fe.s, alice)
	f.waitTracked(t, alice.Name, 2)
	f.stop()
	if _, err := os.Stat(filepath.Join(filepath.Dir(f.sock), "sessions.json")); err != nil {
		t.Fatalf("no state file after the stop: %v", err)
	}
	f.startDaemon(t)
	f.waitTracked(t, alice.Name, 2)

	// latch-ssh status --sessions (root) lists them; alice may not.
	out, errOut, code := systest.Run(t, exec.Command(f.gateBin, "status", "--sessions", "-c", f.cfgPath))
	if code != 0 || strings.Count(out, alice.Name) != 2 || !strings.Contains(out, "pam") || !strings.Contains(out, "pts/") {
		t.Errorf("status --sessions: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := systest.Run(t, alice.Command(f.gateBin, "status", "--sessions")); code == 0 || strings.Contains(out, alice.Name) {
		t.Errorf("status --sessions as alice: exit %d\n%s%s", code, out, errOut)
	}
	closed := time.Now()
	f.Latch.SetLatch(fe.accA, op1, false)
	waitEnded(t, "pam after a daemon restart", closed, recheck+2*time.Second, cmdC, tty)
	if !strings.Contains(tty.out.String(), gate.ClosedNotice) {
		t.Errorf("no notice on the terminal: %q", tty.out.String())
	}
}

// TestRecheckLatchUnreachableKeepsSessions: Latch failing during rechecks
// keeps the sessions, and says so in the log.
func TestRecheckLatchUnreachableKeepsSessions(t *testing.T) {
	fe := setup(t, sessions.FrontEndPAM, "")
	f, alice := fe.f, fe.alice
	cmdC := start(t, "ssh host 'sleep 60'", fe.s.SSH(t, alice, "sleep 60"))
	f.waitTracked(t, alice.Name, 1)
	f.Latch.SetFault(fe.accA, latchtest.Fault{HTTPStatus: 503})
	f.otherRound(t, fe.accA)
	f.otherRound(t, fe.accA)
	if !cmdC.running() {
		t.Fatal("the session ended while Latch failed")
	}
	systest.WaitFor(t, "the log line", 5*time.Second, func() bool {
		return strings.Contains(f.log.String(), "recheck failed; sessions kept")
	})
	if l := f.sessionsOf(t, alice.Name); len(l) != 1 || !strings.HasPrefix(l[0].LastResult, "error: ") {
		t.Errorf("tracked %+v, want one session whose last recheck is an error", l)
	}
}

// sendAs runs cmd, a python3 sending one raw protocol line (so that the
// test's own client code is not what is tested), and returns the answer
// line.
func sendAs(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, errOut, code := systest.Run(t, cmd)
	if code != 0 {
		t.Fatalf("python3: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

const sendPy = `import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2]+"\n").encode()); print(s.makefile().readline().strip())`

// shq quotes s for a POSIX shell (the remote command line).
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestSecurityRegisterClaimsRefused: a user cannot register another
// user's session or a process that is not their login's, cannot use the
// root-only ops, and cannot unregister their session to escape.
func TestSecurityRegisterClaimsRefused(t *testing.T) {
	fe := setup(t, sessions.FrontEndPAM, "")
	f, alice, bob := fe.f, fe.alice, fe.bob
	bobC := start(t, "bob's ssh host 'sleep 60'", fe.s.SSH(t, bob, "sleep 60"))
	f.waitTracked(t, bob.Name, 1)

	// Outside any SSH login: refused (rechecks on, fail_mode closed),
	// whatever user it names.
	ans := sendAs(t, alice.Command("/usr/bin/python3", "-c", sendPy, f.sock, `{"v":1,"op":"register","user":"`+bob.Name+`"}`))
	if !strings.Contains(ans, `"outcome":"deny"`) || !strings.Contains(ans, "session not tracked") {
		t.Errorf("register outside a login: %s; want a refusal", ans)
	}
	// The root-only ops: register bob's session through the hook's op,
	// forget it, list the sessions.
	for _, req := range []string{
		`{"v":1,"op":"session-open","user":"` + bob.Name + `","service":"sshd","config":"` + f.cfgPath + `"}`,
		`{"v":1,"op":"session-close"}`,
		`{"v":1,"op":"sessions"}`,
	} {
		if ans := sendAs(t, alice.Command("/usr/bin/python3", "-c", sendPy, f.sock, req)); strings.Contains(ans, `"ok":true`) {
			t.Errorf("%s from alice: %s; want a refusal", req, ans)
		}
	}
	// From inside her own login, naming bob: her own login is what
	// registers (already tracked), and bob gets nothing more.
	in := fe.s.SSH(t, alice, "/usr/bin/python3", "-c", shq(sendPy), f.sock, shq(`{"v":1,"op":"register","user":"`+bob.Name+`"}`))
	if ans := sendAs(t, in); !strings.Contains(ans, `"ok":true`) {
		t.Errorf("register from her own login: %s", ans)
	}
	if l := f.sessionsOf(t, bob.Name); len(l) != 1 {
		t.Errorf("bob has %d tracked sessions, want his one", len(l))
	}
	// Unregistering from inside her login (the PAM close op) is refused:
	// the session is still ended when the latch closes.
	cmdC := start(t, "ssh host (unregisters, then sleeps)", fe.s.SSH(t, alice,
		"/usr/bin/python3 -c "+shq(sendPy)+" "+f.sock+" "+shq(`{"v":1,"op":"session-close"}`)+"; sleep 60"))
	systest.WaitFor(t, "the unregistering attempt", 10*time.Second, func() bool { return strings.Contains(cmdC.out.String(), "only root") })
	closed := time.Now()
	f.Latch.SetLatch(fe.accA, op1, false)
	waitEnded(t, "pam (after an attempt to unregister)", closed, recheck+2*time.Second, cmdC)
	if !bobC.running() {
		t.Error("bob's session ended")
	}
}

// TestSecurityKillRegistrarDoesNotEscape: under ForceCommand the gate
// registers and becomes the shell; the user kills it, leaving a process
// that holds the connection open. The session is still ended: what was
// registered is sshd's monitor, not the gate.
func TestSecurityKillRegistrarDoesNotEscape(t *testing.T) {
	fe := setup(t, sessions.FrontEndForceCommand, "")
	f, alice := fe.f, fe.alice
	cmdC := start(t, "ssh host 'sleep 60 & kill -9 $$'", fe.s.SSH(t, alice, "echo $$; sleep 60 & kill -9 $$"))
	f.waitTracked(t, alice.Name, 1)
	systest.WaitFor(t, "the gate's pid", 10*time.Second, func() bool { return strings.Contains(cmdC.out.String(), "\n") })
	gatePID, err := strconv.Atoi(strings.TrimSpace(cmdC.out.String()))
	if err != nil {
		t.Fatalf("gate pid %q: %v", cmdC.out.String(), err)
	}
	systest.WaitFor(t, "the gate's process to die", 10*time.Second, func() bool { return !alive(gatePID) })
	if !cmdC.running() {
		t.Fatal("the connection closed with the gate: nothing to test")
	}
	closed := time.Now()
	f.Latch.SetLatch(fe.accA, op1, false)
	waitEnded(t, "forcecommand (registrant killed)", closed, recheck+2*time.Second, cmdC)
}

// TestPAMAccountPhaseTracks: with the account line alone (no session
// line), the daemon tracks the login it allowed, `ssh -N -L` included,
// and ends it.
func TestPAMAccountPhaseTracks(t *testing.T) {
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	s := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true,
		PAM: systest.PAMStack("account required pam_exec.so quiet seteuid " + f.check + " -c " + f.cfgPath)})
	f.writeConfig(t, "", nil, map[string]string{alice.Name: acc})
	f.startDaemon(t)
	fwd := forward(t, s, alice)
	f.waitTracked(t, alice.Name, 1)
	closed := time.Now()
	f.SetLatch(acc, false)
	waitEnded(t, "pam (account line only)", closed, recheck+2*time.Second, fwd)
}
