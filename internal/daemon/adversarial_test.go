package daemon

// The daemon on a bad day and against its own users (issue 8): each test is
// one attack or fault, named after it, with what would happen without the
// defence it proves.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestMain fails the package when goroutines outlive its tests (each test
// also checks its own daemon with checkNoLeak): sockets, exchanges, Latch
// clients and the SSH server must all end when Run returns.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(waitLimit)
		tick := time.NewTicker(10 * time.Millisecond)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines running, %d before the tests:\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				code = 1
				break
			}
			<-tick.C
		}
		tick.Stop()
	}
	os.Exit(code)
}

// gateRun is one run of the ForceCommand gate binary.
type gateRun struct {
	stdout, stderr string
	code           int
}

// runGate runs the built gate as u with SSH_ORIGINAL_COMMAND=cmd, as sshd
// would for a ForceCommand login.
func runGate(t *testing.T, bin string, u *systest.User, cmd string) gateRun {
	t.Helper()
	c := u.Command(bin)
	c.Env = append(c.Env, "SSH_ORIGINAL_COMMAND="+cmd, "SSH_CONNECTION=192.0.2.1 5555 127.0.0.1 22")
	stdout, stderr, code := systest.Run(t, c)
	return gateRun{stdout, stderr, code}
}

// daemonProcess is `latch-ssh serve` run as a separate process.
type daemonProcess struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
}

// startDaemonProcess runs bin serve -c cfg and waits until socket accepts.
func startDaemonProcess(t *testing.T, bin, cfg, socket string) *daemonProcess {
	t.Helper()
	p := &daemonProcess{log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "-c", cfg)
	p.cmd.Env = []string{"PATH=/usr/bin:/bin"}
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("daemon pid %d log:\n%s", p.cmd.Process.Pid, p.log)
		}
	})
	waitFor(t, "the daemon's socket", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("the daemon exited: %s", p.log)
		default:
		}
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// gateConns counts the connections the daemon has accepted on the gate
// socket and not closed: in /proc/net/unix an accepted socket shows the
// listener's path, connected (state 03); the gates' ends have no path.
func gateConns(t *testing.T, socket string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatalf("reading /proc/net/unix: %v", err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 8 && f[5] == "03" && f[7] == socket {
			n++
		}
	}
	return n
}

// TestAttackDaemonKilledUnderLoad: the daemon is killed with SIGKILL while
// 24 logins wait for its answer (Latch hangs, fail_mode = "open", so the
// daemon itself would have allowed them once [latch] timeout passed), and
// more logins arrive while it is down. Without the gate reading a closed
// connection or a missing socket as a refusal, a crash would let those
// logins in, or hang them; with it every one of them is refused within
// moments (never the command), and once the daemon is restarted (over its
// stale socket) the same logins work again.
func TestAttackDaemonKilledUnderLoad(t *testing.T) {
	f := newFixture(t)
	const perUser = 8 // under the daemon's cap of connections per uid
	var us []*systest.User
	accounts := map[string]string{}
	for range 3 {
		u := systest.CreateUser(t, systest.UserOptions{})
		us = append(us, u)
		accounts[u.Name] = f.pair(t)
	}
	// fail_mode = "open": waiting for the daemon would have let them in
	// (after a [latch] timeout long enough that none has yet when the
	// daemon dies, however slowly the gates start).
	text := strings.Replace(f.configText(conf{users: accounts}), `fail_mode = "closed"`, `fail_mode = "open"`, 1)
	f.writeConfig(t, strings.Replace(text, `timeout = "5s"`, `timeout = "50s"`, 1))
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(f.socket))
	marker := func(u *systest.User) string { return "RAN-" + u.Name }

	d := startDaemonProcess(t, bin, f.cfgPath, f.socket)
	// Control: the gate works through this daemon.
	if r := runGate(t, bin, us[0], "echo "+marker(us[0])); r.code != 0 || r.stdout != marker(us[0])+"\n" {
		t.Fatalf("gate with the daemon up: %+v", r)
	}

	waitFor(t, "the control login's connection to close", func() bool { return gateConns(t, f.socket) == 0 })
	f.Latch.SetFault("", latchtest.Fault{Hang: true})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var inFlight []gateRun
	for _, u := range us {
		for range perUser {
			wg.Go(func() {
				r := runGate(t, bin, u, "echo "+marker(u))
				mu.Lock()
				inFlight = append(inFlight, r)
				mu.Unlock()
			})
		}
	}
	// Every login is in the daemon's hands, and the daemon waits on
	// Latch: the logins of one user ask the same question at once, so
	// they share one request (the latch package's coalescing, issue 15).
	waitFor(t, "every login to wait on Latch", func() bool {
		return gateConns(t, f.socket) == len(us)*perUser &&
			f.Latch.CountRequests(func(r latchtest.Request) bool { return r.Fault == "hang" }) == len(us)
	})
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wg.Wait()
	if took := time.Since(killed); took > 5*time.Second {
		t.Errorf("the gates took %v to give up on a dead daemon", took)
	}
	<-d.exited
	if len(inFlight) != len(us)*perUser {
		t.Fatalf("%d gates ran", len(inFlight))
	}
	for _, r := range inFlight {
		if r.code != 1 || r.stdout != "" || r.stderr != "latch-ssh: access denied\n" {
			t.Errorf("a login in flight when the daemon died: %+v; want refused", r)
		}
	}

	// While it is down (its socket file left behind): refused at once.
	for _, u := range us {
		start := time.Now()
		if r := runGate(t, bin, u, "echo "+marker(u)); r.code != 1 || r.stdout != "" || r.stderr != "latch-ssh: access denied\n" {
			t.Errorf("a login with the daemon down: %+v; want refused", r)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a login with the daemon down took %v", took)
		}
	}
	if _, err := os.Lstat(f.socket); err != nil {
		t.Fatalf("the killed daemon's socket: %v (the restart below must replace a stale one)", err)
	}

	// Restarted, with Latch answering again: everyone works.
	f.Latch.ClearFaults()
	startDaemonProcess(t, bin, f.cfgPath, f.socket)
	var after []gateRun
	for _, u := range us {
		for range perUser {
			wg.Go(func() {
				r := runGate(t, bin, u, "echo "+marker(u))
				mu.Lock()
				after = append(after, r)
				mu.Unlock()
				if r.code != 0 || r.stdout != marker(u)+"\n" || r.stderr != "" {
					t.Errorf("a login after the restart: %+v; want the command run", r)
				}
			})
		}
	}
	wg.Wait()
	if len(after) != len(us)*perUser {
		t.Fatalf("%d gates ran after the restart", len(after))
	}
}

// TestAttackUIDNotInPasswd: a process whose uid has no passwd entry (a
// deleted user's leftover process, a container's arbitrary uid) asks the
// daemon. Without resolving the name from the uid through NSS, and denying
// when that fails, the daemon would have to trust a name the caller sends
// or decide for "" (the unpaired policy, an allow by default); with it the
// answer is a refusal, logged, and Latch is not asked.
func TestAttackUIDNotInPasswd(t *testing.T) {
	f := newFixture(t)
	f.writeConfig(t, f.configText(conf{}))
	f.start(t, nil)
	const uid = 61999
	if _, err := exec.Command("getent", "passwd", fmt.Sprint(uid)).Output(); err == nil {
		t.Skipf("uid %d has a passwd entry here", uid)
	}
	f.Latch.ResetRequests()
	for _, args := range [][]string{
		{"decide", f.socket},
		{"raw", f.socket, `{"v":1,"op":"decide","service":"sshd","user":"root"}`},
		{"raw", f.socket, `{"v":1,"op":"status","user":"root"}`},
	} {
		cmd := exec.Command(f.helper, args...)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, _, code := systest.Run(t, cmd)
		if code != 0 || (out != "deny latch-ssh: access denied\n" && !strings.Contains(out, `"outcome":"deny"`)) || strings.Contains(out, `"ok":true`) {
			t.Errorf("askgate %s as uid %d: exit %d, %q; want a refusal", args[0], uid, code, out)
		}
	}
	if n := len(f.Latch.Requests()); n != 0 {
		t.Errorf("%d Latch calls for a caller without a name", n)
	}
	if !strings.Contains(f.log.String(), fmt.Sprintf("uid %d", uid)) || !strings.Contains(f.log.String(), "has no user name") {
		t.Errorf("the refusal is not logged:\n%s", f.log)
	}
	f.stop(t)
	f.checkNoLeak(t)
}

// TestAttackClockTenMinutesOff: Latch's clock and ours differ by 10
// minutes, so Latch answers 109 (request expired) to every signed request.
// Without learning the offset from the Date header of the 109 and retrying
// once, every login would go to the fail mode (denied with "closed", let
// in unchecked with "open") until someone fixed the clock; with it the
// first decision costs one extra round trip, the answer is Latch's real
// one (closed means closed), and later decisions reuse the offset.
func TestAttackClockTenMinutesOff(t *testing.T) {
	f := newFixture(t, latchtest.WithClock(func() time.Time { return time.Now().Add(10 * time.Minute) }))
	u := systest.CreateUser(t, systest.UserOptions{})
	acc := f.pair(t)
	f.writeConfig(t, f.configText(conf{users: map[string]string{u.Name: acc}}))
	f.start(t, nil)
	expired := func() int {
		return f.Latch.CountRequests(func(r latchtest.Request) bool { return r.Code == latch.CodeRequestExpired })
	}

	f.Latch.SetLatch(acc, appID, false)
	if got := f.decide(t, u); got != closedMessage {
		t.Fatalf("closed latch, skewed clock: %q, want %q", got, closedMessage)
	}
	if n := expired(); n != 1 {
		t.Fatalf("Latch answered 109 %d times, want once", n)
	}
	f.Latch.SetLatch(acc, appID, true)
	for range 3 {
		if got := f.decide(t, u); got != "allow" {
			t.Fatalf("open latch, skewed clock: %q", got)
		}
	}
	if n := expired(); n != 1 {
		t.Errorf("Latch answered 109 %d times after the offset was learned, want once in all", n)
	}
	for _, d := range f.log.find(t, "decision") {
		if fm, _ := d["fail_mode_applied"].(bool); fm {
			t.Errorf("a decision went to the fail mode: %v", d)
		}
	}
	f.stop(t)
	f.checkNoLeak(t)
}
