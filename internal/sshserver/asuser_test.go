package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// linkAuthorizedKeys replaces u's ~/.ssh/authorized_keys with a symbolic
// link (owned by u, as one they made) to target.
func linkAuthorizedKeys(t *testing.T, u *systest.User, target string) {
	t.Helper()
	ak := filepath.Join(u.Home, ".ssh", "authorized_keys")
	if err := os.Remove(ak); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Symlink(target, ak); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(ak, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityAuthorizedKeysReadAsUser (issue 12 item 9): the daemon is
// root and the user controls ~/.ssh/authorized_keys. Linked to a file only
// root may read, it was read as root: a key in that file let its holder in
// as the user (and told the user, by "Server accepts key", what the file
// holds), and its other lines went into the log quoted in the skip
// reasons; linked to /etc/shadow, one login attempt copied every hash into
// the log. Now the file is read with the user's rights and reasons never
// quote a line. A link to a file the user owns still works, as in sshd.
func TestSecurityAuthorizedKeysReadAsUser(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyK, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	const marker = "zq7marker"
	dir := systest.SecureDir(t) // root-owned 0755: the checks above the file pass
	secret := filepath.Join(dir, "root-only")
	content := marker + ":$6$" + marker + "$hash:19000:0:99999:7:::\n" + string(gossh.MarshalAuthorizedKey(keyK.PublicKey()))
	if err := os.WriteFile(secret, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("link to a root-only file", func(t *testing.T) {
		linkAuthorizedKeys(t, u, secret)
		if r := f.dial(t, u.Name, gossh.PublicKeys(keyK)); r.err == nil {
			t.Error("a key from a root-only file logged in")
		}
		log := f.log.String()
		if strings.Contains(strings.ToLower(log), marker) {
			t.Errorf("the root-only file's content reached the log:\n%s", log)
		}
		if fp := gossh.FingerprintSHA256(keyK.PublicKey()); strings.Contains(log, fp) {
			t.Errorf("the log shows the key %s as accepted:\n%s", fp, log)
		}
	})

	t.Run("link to /etc/shadow", func(t *testing.T) {
		shadow, err := os.ReadFile("/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}
		linkAuthorizedKeys(t, u, "/etc/shadow")
		if r := f.dial(t, u.Name, gossh.PublicKeys(u.Signer)); r.err == nil {
			t.Error("logged in through /etc/shadow")
		}
		log := strings.ToLower(f.log.String())
		for _, l := range strings.Split(strings.TrimSpace(string(shadow)), "\n") {
			fs := strings.Split(l, ":")
			if len(fs) < 2 {
				continue
			}
			if head := strings.ToLower(fs[0] + ":" + fs[1]); strings.Contains(log, head) {
				t.Errorf("a shadow line reached the log: %s...", fs[0])
			}
		}
	})

	t.Run("link to a file of the user's", func(t *testing.T) {
		u.WriteFile(t, "keys/mine", u.AuthorizedKey, 0o600)
		linkAuthorizedKeys(t, u, "../keys/mine")
		f.login(t, u)
	})
}

// TestSecurityForwardingAsUser (issue 12 item 10): with forwarding
// allowed, the connections of ssh -L and the listener of ssh -R (and the
// connections it accepts) are the user's sockets, not root's, so per-uid
// rules (iptables -m owner) apply to them as with sshd. The owner is read
// from /proc/net/tcp, the uid xt_owner matches.
func TestSecurityForwardingAsUser(t *testing.T) {
	systest.Require(t, "ssh")
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.server = "allow_tcp_forwarding = true"
	f.start(t, nil)

	// target accepts, says hello, and hands the connection to the test.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("hello"))
			accepted <- c
		}
	}()
	tport := target.Addr().(*net.TCPAddr).Port
	lport, rport := systest.FreePort(t), systest.FreePort(t)
	cmd := f.target.SSHOpts(t, u, []string{"-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lport, tport),
		"-R", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", rport, tport)})
	var stderr systest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("ssh stderr: %s", stderr.String())
		}
	})
	loop := func(port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	}
	listening := func(port int) (systest.TCPSocket, bool) {
		for _, s := range systest.TCPSockets(t) {
			if s.State == systest.TCPListen && s.Local == loop(port) {
				return s, true
			}
		}
		return systest.TCPSocket{}, false
	}
	systest.WaitFor(t, "the -L and -R listeners", waitLimit, func() bool {
		_, l := listening(lport)
		_, r := listening(rport)
		return l && r
	})
	owner := func(local, remote netip.AddrPort) int {
		for _, s := range systest.TCPSockets(t) {
			if s.Local == local && s.Remote == remote {
				return s.UID
			}
		}
		t.Fatalf("no socket %s -> %s", local, remote)
		return -1
	}
	hello := func(port int) (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", loop(port).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
			t.Fatalf("through port %d: %q, %v", port, b, err)
		}
		a := <-accepted
		t.Cleanup(func() { a.Close() })
		return c, a
	}

	t.Run("-L connection", func(t *testing.T) {
		_, a := hello(lport)
		// The server's connection to the target: local end a's remote.
		from := a.RemoteAddr().(*net.TCPAddr).AddrPort()
		if got := owner(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), loop(tport)); got != u.UID {
			t.Errorf("the -L connection to the target is owned by uid %d, want the user's %d", got, u.UID)
		}
	})
	t.Run("-R listener and its connections", func(t *testing.T) {
		if s, _ := listening(rport); s.UID != u.UID {
			t.Errorf("the -R listener is owned by uid %d, want the user's %d", s.UID, u.UID)
		}
		c, _ := hello(rport)
		me := c.LocalAddr().(*net.TCPAddr).AddrPort()
		if got := owner(loop(rport), netip.AddrPortFrom(me.Addr().Unmap(), me.Port())); got != u.UID {
			t.Errorf("a connection the -R listener accepted is owned by uid %d, want the user's %d", got, u.UID)
		}
	})
}

// TestSecurityForwardsArePerConnection (issue 12 item 10, a sibling found
// while replacing gliderlabs' forwarding handler): its -R listeners were
// kept in one table for the whole server, keyed by the requested address.
// Any user could cancel another user's forward by naming its address, and
// two forwards asking for port 0 shared a key, so one connection's end
// closed the other's listener. Now each connection owns its forwards.
func TestSecurityForwardsArePerConnection(t *testing.T) {
	f := newFixture(t)
	ua, _ := f.user(t, systest.UserOptions{})
	ub, _ := f.user(t, systest.UserOptions{})
	f.server = "allow_tcp_forwarding = true"
	f.start(t, nil)
	a, b := f.login(t, ua), f.login(t, ub)

	listens := func(port int) bool {
		for _, s := range systest.TCPSockets(t) {
			if s.State == systest.TCPListen && s.Local == netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)) {
				return true
			}
		}
		return false
	}
	port := func(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

	// B forwards a fixed port; A cancels it by name.
	fixed := systest.FreePort(t)
	lnB, err := b.client.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", fixed))
	if err != nil {
		t.Fatal(err)
	}
	defer lnB.Close()
	cancel := gossh.Marshal(&struct {
		Addr string
		Port uint32
	}{"127.0.0.1", uint32(fixed)})
	if ok, _, err := a.client.SendRequest("cancel-tcpip-forward", true, cancel); err != nil || ok {
		t.Errorf("A's cancel of B's forward: ok %v, err %v; want refused", ok, err)
	}
	if !listens(fixed) {
		t.Error("A closed B's forward")
	}

	// Both ask for port 0; A's connection ends.
	ln0A, err := a.client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln0B, err := b.client.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln0B.Close()
	pa, pb := port(ln0A), port(ln0B)
	a.client.Close()
	systest.WaitFor(t, "a forward to close after A left", waitLimit, func() bool { return !listens(pa) || !listens(pb) })
	if !listens(pb) {
		t.Error("A's leaving closed B's port-0 forward")
	}
}
