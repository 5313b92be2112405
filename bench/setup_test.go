//go:build bench

package bench

import (
	"bufio"
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

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const (
	// waitLimit bounds every wait for a process to be ready or to stop.
	waitLimit = 20 * time.Second
)

// account is a real local user with the Latch account it is paired with
// ("" when it is not in [users]).
type account struct {
	*systest.User
	latch string
}

// world is everything the scenarios share: a systest.World (the fake
// Latch and one root-owned directory holding the configurations), the
// binaries built as the packages build them, and the users.
type world struct {
	*systest.World
	checkBin string // cmd/latch-check
	sshBin   string // cmd/latch-ssh, the gate socket path of mainDaemon compiled in
	// socket is the gate socket of the main daemon (parts 1 and 2).
	socket string
	// paired is in [users]; free is not, and unpaired = "allow": the same
	// login with the gate off (Latch not asked). load are more paired
	// users for parts 3 and 4.
	paired, free account
	load         []account
	rootLatch    string // root's account: the gate socket decides for the caller's uid
}

func newWorld(t *testing.T, rtt time.Duration, loadUsers int) *world {
	t.Helper()
	systest.Require(t, "sshd", "ssh", "useradd", "go")
	w := &world{World: systest.NewWorld(t, systest.WorldOptions{Timeout: "5s", Fake: []latchtest.Option{latchtest.WithRTT(rtt)}})}
	w.socket = filepath.Join(w.Dir, "run", "gate.sock")

	start := time.Now()
	// As `make build` and the packages build them: stripped, trimmed,
	// cgo on (NSS). The gate runs as the user, so the socket path is
	// compiled in, as packagers do.
	w.checkBin = systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-check",
		"-trimpath", "-ldflags", "-s -w")
	w.sshBin = systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh",
		"-trimpath", "-ldflags", "-s -w "+paths.LinkFlag(w.socket))
	t.Logf("built latch-check and latch-ssh in %v", time.Since(start).Round(time.Millisecond))

	pair := func() account {
		return account{systest.CreateUser(t, systest.UserOptions{}), w.Pair()}
	}
	w.paired = pair()
	w.free = account{User: systest.CreateUser(t, systest.UserOptions{})}
	w.load = []account{w.paired}
	for len(w.load) < loadUsers {
		w.load = append(w.load, pair())
	}
	w.rootLatch = w.Pair()
	return w
}

// config returns a latch.toml: the fake Latch, fail closed, unpaired users
// allowed (so w.free is the gate turned off), the daemon's socket, and the
// embedded server on listen with extra [server] lines.
func (w *world) config(socket, listen, hostKey, serverExtra string) string {
	// The benchmark asks thousands of decisions as one uid (root).
	tables := fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 10000", socket)
	if listen != "" {
		tables += fmt.Sprintf("\n\n[server]\nlisten = %q\nhost_key = [%q]\n%s", listen, hostKey, serverExtra)
	}
	us := map[string]string{"root": w.rootLatch}
	for _, a := range w.load { // w.paired is w.load[0]
		us[a.Name] = a.latch
	}
	return w.ConfigText(systest.Config{
		Policy: "fail_mode = \"closed\"\nunpaired = \"allow\"",
		Tables: tables,
		Users:  us,
	})
}

// writeConfig writes a configuration into the root-owned directory, 0600
// as latch-ssh wants a file holding the secret, and returns its path.
func (w *world) writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	return w.WriteFile(t, name, text)
}

// daemonProc is a `latch-ssh serve` process.
type daemonProc struct {
	cmd     *exec.Cmd
	log     *syncBuffer
	exited  chan struct{}
	socket  string
	sshAddr string // the embedded server, "" if off
	hostKey gossh.PublicKey
}

// startDaemon runs `latch-ssh serve -c cfg` as root, as systemd would, and
// waits until its gate socket and (if sshAddr is set) its SSH port accept
// connections. It is stopped with SIGTERM at cleanup.
func (w *world) startDaemon(t *testing.T, cfg, socket, sshAddr, hostKeyPath string) *daemonProc {
	t.Helper()
	d := &daemonProc{log: &syncBuffer{}, exited: make(chan struct{}), socket: socket, sshAddr: sshAddr}
	d.cmd = exec.Command(w.sshBin, "serve", "-c", cfg)
	d.cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("daemon log (tail):\n%s", d.log.tail(16<<10))
		}
	})
	waitUntil(t, "the daemon to listen", func() bool {
		select {
		case <-d.exited:
			t.Fatalf("latch-ssh serve exited at start:\n%s", d.log.String())
		default:
		}
		if !canDial("unix", socket) {
			return false
		}
		return sshAddr == "" || canDial("tcp", sshAddr)
	})
	if hostKeyPath != "" {
		pub, err := os.ReadFile(hostKeyPath + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		if d.hostKey, _, _, _, err = gossh.ParseAuthorizedKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// stop sends SIGTERM and waits for the daemon to exit (SIGKILL after
// waitLimit). It may be called more than once.
func (d *daemonProc) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(waitLimit):
		t.Errorf("latch-ssh serve did not stop within %v after SIGTERM; killing it", waitLimit)
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// rss returns the daemon's resident set size (VmRSS), in bytes.
func (d *daemonProc) rss(t *testing.T) int64 {
	t.Helper()
	return procStatus(t, d.cmd.Process.Pid, "VmRSS") << 10
}

// procStatus returns a "kB" or count field of /proc/PID/status.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %v", pid, field, err)
		}
		return n
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func canDial(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// waitUntil polls cond until it holds, failing the test after waitLimit.
// It is only for things that give no event to wait on (another process
// starting to listen).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	systest.WaitFor(t, what, waitLimit, cond)
}

// settle samples f every 50ms until two samples 200ms apart are equal (or
// within tolerance), at most for limit, and returns the last sample: for
// counts (goroutines, RSS) that move for a moment after a burst of work
// while connections close and the runtime frees memory.
func settle(limit time.Duration, tolerance int64, f func() int64) int64 {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, since := f(), time.Now()
	for time.Now().Before(deadline) {
		<-tick.C
		v := f()
		if d := v - last; d > tolerance || -d > tolerance {
			last, since = v, time.Now()
			continue
		}
		if time.Since(since) >= 200*time.Millisecond {
			return v
		}
	}
	return f()
}

// dialSSH opens an SSH connection to addr as u with golang.org/x/crypto:
// TCP, key exchange and public-key authentication, which on the embedded
// server includes the Latch decision.
func dialSSH(addr string, hostKey gossh.PublicKey, u *systest.User) (*gossh.Client, error) {
	return gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User:            u.Name,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(u.Signer)},
		HostKeyCallback: gossh.FixedHostKey(hostKey),
		Timeout:         30 * time.Second,
	})
}

// loginTrue is a whole login with x/crypto: connect, authenticate, run
// `true` in a session (the user's shell, as the user), disconnect.
func loginTrue(addr string, hostKey gossh.PublicKey, u *systest.User) error {
	c, err := dialSSH(addr, hostKey, u)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	// CombinedOutput, not one bytes.Buffer as Stdout and Stderr: x/crypto
	// copies the two streams in two goroutines, and a shared Buffer is a
	// data race (go test -race -tags bench failed on it).
	if out, err := s.CombinedOutput("true"); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// withTimeout runs f with a context bounded by waitLimit.
func withTimeout(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return f(ctx)
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct{ systest.Buffer }

func (b *syncBuffer) tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}
