package sshserver

// The embedded server under abuse (issue 8): each test is one attack, named
// after it, with what would happen without the defence it proves.

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestMain fails the package when goroutines outlive its tests: every
// connection, session, timer and recheck loop a test started must end
// once its server is closed.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := waitGoroutines(before, waitLimit); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitGoroutines waits until at most n goroutines run, and describes the
// others if they do not end within limit.
func waitGoroutines(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d goroutines running, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
	return nil
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// dialFrom opens a TCP connection to the server from a loopback address of
// the test's choosing (all of 127.0.0.0/8 is local on Linux).
func dialFrom(t *testing.T, f *fixture, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitLimit}
	c, err := d.Dial("tcp", f.target.Addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	return c
}

// loginAndRun logs u in with its key and runs cmd, failing the test unless
// cmd prints want.
func loginAndRun(t *testing.T, f *fixture, u *systest.User, cmd, want string) {
	t.Helper()
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err != nil {
		t.Fatalf("login of %s: %v", u.Name, r.err)
	}
	defer r.client.Close()
	if out, errOut, code := run(t, r.client, cmd); code != 0 || out != want {
		t.Fatalf("%q: exit %d, %q, %q; want %q", cmd, code, out, errOut, want)
	}
}

// TestAttackUnauthenticatedFlood: one host opens 500 TCP connections and
// never sends its SSH version, holding each until the handshake timeout.
// Without the caps, each would cost the server a goroutine and buffers for
// 20s, renewable forever, and with only the global cap
// (max_unauthenticated) the host would hold every slot: every other login,
// the administrator's included, would be dropped at once for as long as
// the flood lasts. With them, the extras are dropped at once (no version
// line), the host holds at most max_unauthenticated_per_source slots (see
// also TestSecurityFewSourcesCannotLockOut), a real login from elsewhere
// succeeds meanwhile, and memory and goroutines stay bounded
// and come back when the connections go.
func TestAttackUnauthenticatedFlood(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	perSource := f.core.Load().Config.Server.MaxUnauthenticatedPerSource // the default, 10
	// A first login opens the kept-alive connection to Latch, which stays.
	loginAndRun(t, f, u, "true", "")
	baseG, baseHeap := runtime.NumGoroutine(), heapInUse()

	const flood = 500
	conns := make([]net.Conn, 0, flood)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	start := time.Now()
	for range flood {
		conns = append(conns, dialFrom(t, f, "127.0.0.2"))
	}
	held, dropped := 0, 0
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		switch {
		case n > 0 && strings.HasPrefix(string(buf[:n]), "SSH-2.0-latch-ssh"):
			held++
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			dropped++
		default:
			t.Fatalf("connection %d: read %q, %v; want the version line or a drop", i, buf[:n], err)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("classifying %d connections took %v: extras are not dropped at once", flood, took)
	}
	if held != perSource || dropped != flood-perSource {
		t.Fatalf("held %d, dropped %d; want %d held (max_unauthenticated_per_source), the rest dropped",
			held, dropped, perSource)
	}
	if !strings.Contains(f.log.String(), "too many connections still authenticating from this source") {
		t.Error("the drops are not logged")
	}

	// Meanwhile, someone else logs in.
	loginStart := time.Now()
	loginAndRun(t, f, u, "echo in", "in\n")
	if took := time.Since(loginStart); took > 5*time.Second {
		t.Errorf("the login during the flood took %v", took)
	}

	// What the held connections cost.
	grewG, grewHeap := runtime.NumGoroutine()-baseG, heapInUse()-baseHeap
	t.Logf("with %d connections held: %+d goroutines, %+d KiB of heap", held, grewG, grewHeap>>10)
	if grewG > 4*held+20 {
		t.Errorf("%d goroutines for %d held connections", grewG, held)
	}
	if grewHeap > 32<<20 {
		t.Errorf("heap grew by %d MiB for %d held connections", grewHeap>>20, held)
	}

	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the slots to be given back", func() bool { return f.srv.unauthenticated() == 0 })
	if err := waitGoroutines(baseG+2, waitLimit); err != nil {
		t.Fatal(err)
	}
	if grew := heapInUse() - baseHeap; grew > 8<<20 {
		t.Errorf("heap still %d MiB above its start after the flood ended", grew>>20)
	}
}

// TestAttackAuthFlood: a client that, on one connection, offers thousands
// of keys it does not own, or names the user's key thousands of times and
// signs with another. Without max_auth_tries each offer would cost an
// authorized_keys lookup and a log line, for as long as the client likes;
// with it the connection is cut after max_auth_tries failures, Latch is
// never asked (no key was proven), and the server keeps serving others.
// Many such connections at once leave nothing behind.
func TestAttackAuthFlood(t *testing.T) {
	f := newFixture(t)
	alice, acc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	maxTries := f.core.Load().Config.Server.MaxAuthTries // the default, 6
	// A first login opens the kept-alive connection to Latch, which stays.
	loginAndRun(t, f, alice, "true", "")
	f.latch.ResetRequests()
	baseG := runtime.NumGoroutine()
	authLines := func() int {
		n := 0
		for _, e := range f.log.entries(t) {
			if e["message"] == "authentication request" && e["user"] == alice.Name {
				n++
			}
		}
		return n
	}

	strangers := make([]gossh.Signer, 2000)
	for i := range strangers {
		strangers[i] = newSigner(t)
	}
	impostors := make([]gossh.Signer, 2000)
	for i := range impostors {
		impostors[i] = otherKeySigner{claimed: alice.Signer.PublicKey(), real: strangers[i]}
	}
	for _, tc := range []struct {
		name    string
		signers []gossh.Signer
	}{
		{"2000 unknown keys", strangers},
		{"alice's key named 2000 times, signed by others", impostors},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := authLines()
			r := f.dial(t, alice.Name, gossh.PublicKeysCallback(func() ([]gossh.Signer, error) { return tc.signers, nil }))
			if r.err == nil {
				t.Fatal("logged in")
			}
			// Each offer is at most a query and a signed request.
			if n := authLines() - before; n > 2*maxTries+2 {
				t.Errorf("%d authentication requests served on one connection, max_auth_tries = %d", n, maxTries)
			}
		})
	}

	// Twenty such clients at once.
	var wg sync.WaitGroup
	var in atomic.Int32
	for range 20 {
		wg.Go(func() {
			c, err := gossh.Dial("tcp", f.target.Addr, &gossh.ClientConfig{
				User: alice.Name, Auth: []gossh.AuthMethod{gossh.PublicKeys(impostors[:200]...)},
				HostKeyCallback: gossh.FixedHostKey(f.hostKey), Timeout: waitLimit,
			})
			if err == nil {
				in.Add(1)
				c.Close()
			}
		})
	}
	wg.Wait()
	if in.Load() != 0 {
		t.Fatalf("%d flooding clients logged in", in.Load())
	}
	if n := f.latchCalls(acc); n != 0 {
		t.Errorf("%d Latch calls for keys never proven", n)
	}
	loginAndRun(t, f, alice, "echo in", "in\n")
	if err := waitGoroutines(baseG+2, waitLimit); err != nil {
		t.Fatal(err)
	}
}

// randomAuthorizedKeys returns n authorized_keys lines of distinct random
// ed25519 keys (only public halves: nobody holds them).
func randomAuthorizedKeys(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	raw := make([]byte, ed25519.PublicKeySize)
	for range n {
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		pub, err := gossh.NewPublicKey(ed25519.PublicKey(raw))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(gossh.MarshalAuthorizedKey(pub))
	}
	return b.String()
}

// skippedLines returns the authorized_keys lines the server logged as
// skipped for user, with their reasons.
func skippedLines(t *testing.T, f *fixture, user string) map[int]string {
	t.Helper()
	out := map[int]string{}
	for _, e := range f.log.entries(t) {
		if e["message"] == "authorized_keys line skipped" && e["user"] == user {
			line, _ := e["line"].(float64)
			reason, _ := e["reason"].(string)
			out[int(line)] = reason
		}
	}
	return out
}

// TestAttackAuthorizedKeysHugeLine: an authorized_keys file with a 1 MB
// line (here a megabyte of command= in front of a key). Without
// MaxLineLen a user's file could make the server buffer a line of any size
// on every connection, and a parser bug on a monster line would be one
// login away; with it the line is skipped (and logged with its number),
// the other lines still work, and a key on the huge line is not usable.
func TestAttackAuthorizedKeysHugeLine(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	bob, bobAcc := f.user(t, systest.UserOptions{})
	huge := `command="` + strings.Repeat("x", 1<<20) + `" `
	// alice: a huge line, then her real key.
	alice.WriteFile(t, ".ssh/authorized_keys", huge+randomAuthorizedKeys(t, 1)+alice.AuthorizedKey, 0o600)
	// bob: his only key is on the huge line.
	bob.WriteFile(t, ".ssh/authorized_keys", huge+bob.AuthorizedKey, 0o600)
	f.start(t, nil)

	loginAndRun(t, f, alice, "echo in", "in\n")
	if r := f.dial(t, bob.Name, gossh.PublicKeys(bob.Signer)); r.err == nil {
		t.Error("a key on a 1 MB line was accepted")
	}
	if n := f.latchCalls(bobAcc); n != 0 {
		t.Errorf("%d Latch calls for a skipped key", n)
	}
	for _, u := range []*systest.User{alice, bob} {
		if reason := skippedLines(t, f, u.Name)[1]; !strings.Contains(reason, "64 KiB") {
			t.Errorf("%s: line 1 not logged as skipped for its length (%q)", u.Name, reason)
		}
	}
}

// TestAttackAuthorizedKeysTenThousandKeys: a file with 10 000 keys, the one
// that works last, and one with 10 001. Without MaxKeys a user (or anyone
// who can write the file) could make every login to that account parse and
// compare an unbounded list; with it 10 000 keys still work in reasonable
// time, and more are refused as a whole, logged with the line.
func TestAttackAuthorizedKeysTenThousandKeys(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	bob, bobAcc := f.user(t, systest.UserOptions{})
	alice.WriteFile(t, ".ssh/authorized_keys", randomAuthorizedKeys(t, 9999)+alice.AuthorizedKey, 0o600)
	bob.WriteFile(t, ".ssh/authorized_keys", randomAuthorizedKeys(t, 10000)+bob.AuthorizedKey, 0o600)
	f.start(t, nil)

	start := time.Now()
	loginAndRun(t, f, alice, "echo in", "in\n")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("login with 10 000 keys took %v", took)
	}
	if r := f.dial(t, bob.Name, gossh.PublicKeys(bob.Signer)); r.err == nil {
		t.Error("a file with 10 001 keys was used")
	}
	if n := f.latchCalls(bobAcc); n != 0 {
		t.Errorf("%d Latch calls for a refused file", n)
	}
	refused := false
	for _, e := range f.log.entries(t) {
		if e["message"] == "authorized_keys refused" && e["user"] == bob.Name {
			refused = strings.Contains(fmt.Sprint(e["error"]), ":10001: more than the 10000 keys")
		}
	}
	if !refused {
		t.Error("the refusal of the 10 001-key file is not logged with its line")
	}
}

// TestAttackHomeOwnedBySomeoneElse: the keys are trusted only if nobody but
// the user and root could have put them there (sshd's StrictModes).
// Without the checks, whoever owns the home directory, can write ~/.ssh,
// or owns the file a symlinked authorized_keys points to, could add a key
// and log in as the user; with them the login is refused before Latch is
// asked, and the log names the path and the fix.
func TestAttackHomeOwnedBySomeoneElse(t *testing.T) {
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	mallory, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	chown := func(t *testing.T, path string, uid, gid int) {
		t.Helper()
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	chmod := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
		fix   string
	}{
		{"home owned by another user", func(t *testing.T) {
			chown(t, alice.Home, mallory.UID, mallory.GID)
			t.Cleanup(func() { chown(t, alice.Home, alice.UID, alice.GID) })
		}, fmt.Sprintf("chown %d %s", alice.UID, alice.Home)},
		{"~/.ssh writable by its group", func(t *testing.T) {
			chmod(t, alice.Home+"/.ssh", 0o770)
			t.Cleanup(func() { chmod(t, alice.Home+"/.ssh", 0o700) })
		}, "chmod go-w " + alice.Home + "/.ssh"},
		{"authorized_keys a symlink into another user's home", func(t *testing.T) {
			mallory.WriteFile(t, ".ssh/alice_keys", alice.AuthorizedKey, 0o644)
			p := alice.Home + "/.ssh/authorized_keys"
			if err := os.Rename(p, p+".orig"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(mallory.Home+"/.ssh/alice_keys", p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(p); os.Rename(p+".orig", p) })
		}, "chown root " + mallory.Home},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Control: the same login works before the change.
			loginAndRun(t, f, alice, "echo in", "in\n")
			tc.setup(t)
			f.latch.ResetRequests()
			if r := f.dial(t, alice.Name, gossh.PublicKeys(alice.Signer)); r.err == nil {
				t.Fatal("logged in with keys someone else could have written")
			}
			if n := f.latchCalls(aliceAcc); n != 0 {
				t.Errorf("%d Latch calls for untrusted keys", n)
			}
			var logged string
			for _, e := range f.log.entries(t) {
				if e["message"] == "authorized_keys refused" && e["user"] == alice.Name {
					logged = fmt.Sprint(e["error"])
				}
			}
			if !strings.Contains(logged, "(fix: "+tc.fix+")") {
				t.Errorf("refusal logged as %q, want the fix %q", logged, tc.fix)
			}
		})
	}
}

// floodSession is a session whose output lines the test reads.
type floodSession struct {
	s     *gossh.Session
	stdin io.WriteCloser
	lines chan string
}

func startFloodSession(t *testing.T, client *gossh.Client, pty bool, cmd string) *floodSession {
	t.Helper()
	s := newSession(t, client, false)
	if pty {
		if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
			t.Fatal(err)
		}
	}
	fs := &floodSession{s: s, lines: make(chan string, 16)}
	var err error
	if fs.stdin, err = s.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fs.lines <- strings.TrimSpace(sc.Text())
		}
		close(fs.lines)
	}()
	return fs
}

func (fs *floodSession) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-fs.lines:
		if !ok {
			t.Fatal("the session ended")
		}
		return l
	case <-time.After(waitLimit):
		t.Fatal("no output from the session")
		return ""
	}
}

// TestAttackWindowChangeFlood: a client sends 5000 window-change requests
// on a terminal session. Without handling them in order on the channel's
// own request loop (gliderlabs' Session blocks its loop on an unread
// window-change channel; a goroutine per request would pile up), the flood
// would stall the session or grow the server; with it each is applied in
// order, the last size wins, no goroutine is left, and the session and the
// server stay responsive.
func TestAttackWindowChangeFlood(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	fs := startFloodSession(t, r.client, true, `echo ready; read x; stty size; read y`)
	if l := fs.next(t); l != "ready" {
		t.Fatalf("session said %q", l)
	}
	baseG := runtime.NumGoroutine()
	for i := range 5000 {
		if err := fs.s.WindowChange(20+i%50, 60+i%100); err != nil {
			t.Fatalf("window-change %d: %v", i, err)
		}
	}
	if err := fs.s.WindowChange(77, 177); err != nil {
		t.Fatal(err)
	}
	// The channel's requests are answered in order: a reply to one more
	// means the 5001 before it were handled. (Channel data is not ordered
	// with requests, so "go" must wait for it.)
	if ok, err := fs.s.SendRequest("sync@latch-ssh-test", true, nil); ok || err != nil {
		t.Fatalf("request after the flood: %v, %v; want a refusal", ok, err)
	}
	// Another login meanwhile.
	start := time.Now()
	loginAndRun(t, f, u, "echo other", "other\n")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("another login during the flood took %v", took)
	}
	if _, err := io.WriteString(fs.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	if l := fs.next(t); l != "77 177" {
		t.Errorf("size after the flood %q, want the last one, 77 177", l)
	}
	// The other login's goroutines end as its connection closes.
	if err := waitGoroutines(baseG+5, waitLimit); err != nil {
		t.Errorf("after 5000 window changes: %v", err)
	}
}

// TestAttackSignalFlood: a client sends 5000 signal requests to its own
// process (which ignores the signal). Without handling each on the
// channel's request loop, the flood would pile up goroutines or stall the
// session; with it the process gets them, stays alive, answers, and the
// server keeps serving.
func TestAttackSignalFlood(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	fs := startFloodSession(t, r.client, false, `trap 'n=$((n+1))' USR1; n=0; echo ready; read x; echo "alive $n"`)
	if l := fs.next(t); l != "ready" {
		t.Fatalf("session said %q", l)
	}
	baseG := runtime.NumGoroutine()
	for i := range 5000 {
		if err := fs.s.Signal(gossh.SIGUSR1); err != nil {
			t.Fatalf("signal %d: %v", i, err)
		}
	}
	start := time.Now()
	loginAndRun(t, f, u, "echo other", "other\n")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("another login during the flood took %v", took)
	}
	if _, err := io.WriteString(fs.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	// Signals coalesce in the kernel while one is pending: at least one
	// arrived, and the shell lived through all of them.
	l := fs.next(t)
	n, err := strconv.Atoi(strings.TrimPrefix(l, "alive "))
	if !strings.HasPrefix(l, "alive ") || err != nil || n < 1 {
		t.Errorf("after the flood the process said %q, want alive and at least one signal", l)
	}
	if err := fs.s.Wait(); err != nil {
		t.Errorf("session: %v", err)
	}
	if err := waitGoroutines(baseG+5, waitLimit); err != nil {
		t.Errorf("after 5000 signals: %v", err)
	}
}

// writtenBy returns how many bytes process pid has written (wchar).
func writtenBy(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no wchar in /proc/%d/io", pid)
	return 0
}

// waitStalled waits until counter stops moving (two readings 200ms apart
// agree) and returns its value.
func waitStalled(t *testing.T, what string, counter func() int64) int64 {
	t.Helper()
	prev := counter()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		<-tick.C
		cur := counter()
		if cur == prev {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never stalls: %d bytes and counting", what, cur)
		}
		prev = cur
	}
}

// TestAttackClientNeverReadsOutput: a client runs `yes` and never reads
// what comes back. Without flow control from the process to the client
// (pipe or terminal, then the SSH channel window), the server would buffer
// output without end: `yes` writes gigabytes a minute. With it, the
// process blocks on write once the window and the pipe are full, and the
// server's memory stays where it was; closing the session ends it.
func TestAttackClientNeverReadsOutput(t *testing.T) {
	for _, pty := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipes", true: "terminal"}[pty], func(t *testing.T) {
			f := newFixture(t)
			u, _ := f.user(t, systest.UserOptions{})
			f.start(t, nil)
			r := f.login(t, u)
			baseHeap := heapInUse()
			s := newSession(t, r.client, pty)
			// Stdout is a pipe nobody reads (a nil Stdout would be
			// discarded by the client library, which reads it).
			if _, err := s.StdoutPipe(); err != nil {
				t.Fatal(err)
			}
			errOut, err := s.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(`echo $$ >&2; exec yes`); err != nil {
				t.Fatal(err)
			}
			var pid int
			if pty {
				// On a terminal stderr is the terminal too: find the
				// process instead.
				pid = findProcess(t, u.UID, "yes")
			} else {
				line, err := bufio.NewReader(errOut).ReadString('\n')
				if err != nil {
					t.Fatalf("pid line: %v", err)
				}
				if pid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
					t.Fatalf("pid line %q: %v", line, err)
				}
			}
			stalled := waitStalled(t, "yes's output", func() int64 { return writtenBy(t, pid) })
			t.Logf("yes wrote %d KiB before blocking", stalled>>10)
			if stalled > 16<<20 {
				t.Errorf("yes wrote %d MiB to a client that reads nothing", stalled>>20)
			}
			if grew := heapInUse() - baseHeap; grew > 32<<20 {
				t.Errorf("heap grew by %d MiB", grew>>20)
			}
			s.Close()
			waitFor(t, "yes to end with its session", func() bool {
				_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
				return err != nil
			})
		})
	}
}

// findProcess returns the pid of the process of uid whose command is comm.
func findProcess(t *testing.T, uid int, comm string) int {
	t.Helper()
	var pid int
	waitFor(t, comm+" to run", func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
			var st syscall.Stat_t
			if err == nil && strings.TrimSpace(string(b)) == comm && syscall.Stat("/proc/"+e.Name(), &st) == nil && int(st.Uid) == uid {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

// TestAttackClientFloodsInputNobodyReads: the other direction: a client
// pours data into a process that never reads its stdin. Without flow
// control the server would queue the client's data in memory without end;
// with it the client's writes block once the pipe and the channel window
// are full.
func TestAttackClientFloodsInputNobodyReads(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	baseHeap := heapInUse()
	s := newSession(t, r.client, false)
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("exec sleep 60"); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		chunk := make([]byte, 32<<10)
		for {
			n, err := in.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	stalled := waitStalled(t, "the client's writes", sent.Load)
	t.Logf("the client got %d KiB in before blocking", stalled>>10)
	if stalled > 16<<20 {
		t.Errorf("the server took %d MiB for a process that reads nothing", stalled>>20)
	}
	if grew := heapInUse() - baseHeap; grew > 32<<20 {
		t.Errorf("heap grew by %d MiB", grew>>20)
	}
	r.client.Close()
	select {
	case <-writerDone:
	case <-time.After(waitLimit):
		t.Fatal("the blocked writer did not end with the connection")
	}
}

// TestAttackHostileUserNames: the user name is whatever the client sends.
// Without checking it before any lookup, a name with a newline or an
// escape would reach NSS and the log raw (forged log lines, a terminal
// taken over when an admin reads it), and "../x" or "-o..." would reach
// path expansion; with it such names are refused without a lookup, names
// no account has are refused after one, Latch is never asked, and the log
// holds them only cleaned.
func TestAttackHostileUserNames(t *testing.T) {
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	var mu sync.Mutex
	var looked []string
	f.start(t, func(o *Options) {
		o.Lookup = func(name string) (spawn.Account, error) {
			mu.Lock()
			looked = append(looked, name)
			mu.Unlock()
			return spawn.Lookup(name)
		}
	})
	f.latch.ResetRequests()
	invalid := []string{
		"", "root\n", "alice\r\nlatch-ssh: forged line", "\x1b]0;pwned\x07\x1b[2J" + alice.Name,
		"../../etc/passwd", alice.Name + "/../root", "-oProxyCommand=touch /tmp/pwned", "a\x00b",
		strings.Repeat("a", 10000), alice.Name + "\x7f", alice.Name + "\u0085", "\xff\xfe",
	}
	unknown := []string{"nosuchuser" + strings.ToLower(rand.Text()[:6]), "аlice", alice.Name + "\u202e"}
	for _, name := range append(invalid, unknown...) {
		if r := f.dial(t, name, gossh.PublicKeys(alice.Signer)); r.err == nil {
			t.Errorf("logged in as %q", name)
		}
	}
	mu.Lock()
	looked = append([]string(nil), looked...)
	mu.Unlock()
	for _, name := range invalid {
		for _, l := range looked {
			if l == name {
				t.Errorf("%q was looked up", name)
			}
		}
	}
	for _, name := range unknown {
		found := false
		for _, l := range looked {
			found = found || l == name
		}
		if !found {
			t.Errorf("%q was refused without a lookup (the control case)", name)
		}
	}
	if n := len(f.latch.Requests()); n != 0 {
		t.Errorf("%d Latch calls", n)
	}
	for _, e := range f.log.entries(t) {
		for k, v := range e {
			if s, ok := v.(string); ok && strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
				t.Errorf("log field %s holds a control character: %q", k, s)
			}
		}
	}
	// alice herself still gets in: the refusals are about the names.
	loginAndRun(t, f, alice, "echo in", "in\n")
}

// TestAttackHostileEnvRequests: a client asks, through "env" requests, for
// LD_PRELOAD, LD_LIBRARY_PATH, BASH_ENV or PATH in its session, or for
// USER, LOGNAME, HOME and SHELL naming someone else. Without the allow
// list, a variable the dynamic loader or the shell acts on would run code
// of the client's choosing before the session's first command, in
// processes (a login shell, a forced command=) that the key's options meant
// to restrict, and the identity variables would lie to everything the
// session runs; with it only TERM, LANG and LC_* pass, the others are
// refused, and the identity variables come from the passwd entry.
func TestAttackHostileEnvRequests(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	r := f.login(t, u)
	s := newSession(t, r.client, false)
	for _, kv := range [][2]string{
		{"LD_PRELOAD", "/tmp/evil.so"}, {"LD_LIBRARY_PATH", "/tmp"}, {"LD_AUDIT", "/tmp/evil.so"},
		{"BASH_ENV", "/tmp/evil.sh"}, {"ENV", "/tmp/evil.sh"}, {"PATH", "/tmp/evil"}, {"BASH_FUNC_id%%", "() { echo pwned; }"},
		{"USER", "root"}, {"LOGNAME", "root"}, {"HOME", "/tmp/evil"}, {"SHELL", "/tmp/evil"},
	} {
		if err := s.Setenv(kv[0], kv[1]); err == nil {
			t.Errorf("env request %s accepted", kv[0])
		}
	}
	if err := s.Setenv("LC_ALL", "C"); err != nil {
		t.Errorf("env request LC_ALL (the control case): %v", err)
	}
	out, err := s.Output("env; id -un")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"LD_", "BASH_ENV", "\nENV=", "/tmp/evil", "pwned", "=root\n"} {
		if strings.Contains("\n"+string(out), bad) {
			t.Errorf("the session's environment holds %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{"LC_ALL=C\n", "USER=" + u.Name + "\n", "LOGNAME=" + u.Name + "\n", "HOME=" + u.Home + "\n", "SHELL=/bin/bash\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the session's environment lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(string(out), "\n"+u.Name+"\n") {
		t.Errorf("id -un in the session:\n%s", out)
	}
}

// TestAttackEscapesInLatchErrorMessage: Latch (or whatever answers in its
// place) sends an error whose message carries terminal escapes and a
// newline. Without cleaning, the message would reach the person's terminal
// through the refusal banner (retitling it, clearing the screen) and forge
// lines in the log; with it the person sees the fixed refusal line and the
// log holds the message escaped.
func TestAttackEscapesInLatchErrorMessage(t *testing.T) {
	f := newFixture(t)
	u, acc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	const hostile = "\x1b]0;pwned\x07\x1b[2J\r\nlatch-ssh: allowed"
	f.latch.SetFault(acc, latchtest.Fault{ErrorCode: 202, Message: hostile})
	r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer))
	if r.err == nil {
		t.Fatal("logged in on a Latch error with fail_mode = closed")
	}
	if got := strings.Join(r.banners, ""); got != "latch-ssh: access denied\r\n" {
		t.Errorf("banner %q, want only the fixed refusal", got)
	}
	var reason string
	waitFor(t, "the decision", func() bool {
		d := f.decisions(t, u.Name)
		if len(d) > 0 {
			reason = d[len(d)-1]
		}
		return len(d) > 0
	})
	if !strings.Contains(reason, "Latch error 202") || !strings.Contains(reason, `\x1b]0;pwned\x07`) {
		t.Errorf("decision %q: want the error, escaped", reason)
	}
	if strings.ContainsAny(reason, "\x1b\x07\r\n") {
		t.Errorf("decision %q holds control characters", reason)
	}
}

// TestAttackFloodFromRotatingIPv6Addresses: an IPv6 host owns a whole /64
// (2^64 addresses) and can give each connection a new source address.
// Without counting the per-address cap by /64, such a host would pass it
// and hold every unauthenticated slot again; with it the whole /64 counts
// as one address, while another /64 (and IPv4, IPv4-mapped or not) is
// another.
func TestAttackFloodFromRotatingIPv6Addresses(t *testing.T) {
	key := func(ip string) string { return sourceKey(&net.TCPAddr{IP: net.ParseIP(ip), Port: 4242}) }
	same := []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2:dead:beef::7"}
	for _, ip := range same[1:] {
		if key(ip) != key(same[0]) {
			t.Errorf("%s counts as %q, %s as %q: one /64, one address", ip, key(ip), same[0], key(same[0]))
		}
	}
	if key("2001:db8:1:3::1") == key(same[0]) {
		t.Error("two /64s count as one address")
	}
	if key("::ffff:192.0.2.1") != key("192.0.2.1") || key("192.0.2.1") == key("192.0.2.2") {
		t.Errorf("IPv4: %q %q %q", key("::ffff:192.0.2.1"), key("192.0.2.1"), key("192.0.2.2"))
	}
	// The cap, by source block: 2 of 8 from the /64, then the rest from
	// elsewhere, then nothing.
	set := &users.Server{MaxUnauthenticated: 8, MaxUnauthenticatedPerSource: 2, EarlyDropStart: 8,
		PenaltyMax: users.Duration{Duration: time.Minute}, PenaltyMaxSources: 10}
	st := newStartups()
	from := func(ip string) source { return sourceOf(&net.TCPAddr{IP: net.ParseIP(ip), Port: 4242}, set) }
	for i := range 4 {
		ip := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		want := admitted
		if i >= 2 {
			want = refusedSource
		}
		if got := st.admit(from(ip), set); got != want {
			t.Errorf("connection %d from %s: %d, want %d", i, ip, got, want)
		}
	}
	for i := range 7 {
		want := admitted
		if i == 6 {
			want = refusedFull
		}
		if got := st.admit(from(fmt.Sprintf("198.51.100.%d", i+1)), set); got != want {
			t.Errorf("IPv4 connection %d: %d, want %d", i, got, want)
		}
	}
	st.release(key(same[0]))
	if got := st.admit(from("2001:db8:1:2::99"), set); got != admitted {
		t.Errorf("after one slot of the /64 came back: %d", got)
	}
}

// TestStopBeforeServe: the daemon (a SIGTERM right after it started) or the
// demo (a quick Ctrl-C) can stop the server before the goroutine running
// Serve has begun. Without remembering the stop, gliderlabs forgets a Close
// that came before it tracked the listener and serves forever (the demo's
// "the SSH server did not stop", a daemon that keeps a port open after
// stopping); with it Serve returns at once and the port is closed.
func TestStopBeforeServe(t *testing.T) {
	for name, stop := range map[string]func(*Server){
		"Close":    func(s *Server) { s.Close() },
		"Stop":     func(s *Server) { s.Stop("stopping") },
		"Shutdown": func(s *Server) { s.Shutdown(t.Context()) },
	} {
		t.Run(name, func(t *testing.T) {
			srv, err := New(Options{Core: func() *gate.Core { return &gate.Core{} }, HostSigners: []gossh.Signer{newSigner(t)}})
			if err != nil {
				t.Fatal(err)
			}
			stop(srv)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve after %s: %v", name, err)
				}
			case <-time.After(5 * time.Second):
				ln.Close()
				<-done
				t.Fatalf("Serve kept serving after %s", name)
			}
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
				t.Error("the port still accepts connections")
			}
		})
	}
}
