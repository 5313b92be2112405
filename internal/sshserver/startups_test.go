package sshserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// holdSlots opens n bare TCP connections from ip that never send a byte,
// and returns those the server answered with its version line (they hold
// an unauthenticated slot) and how many it closed at once. They are closed
// at cleanup.
func holdSlots(t *testing.T, f *fixture, ip string, n int) (held []net.Conn, dropped int) {
	t.Helper()
	for range n {
		c := dialFrom(t, f, ip)
		t.Cleanup(func() { c.Close() })
		if answered(t, c) {
			held = append(held, c)
		} else {
			dropped++
			c.Close()
		}
	}
	return held, dropped
}

// answered reads the server's first bytes on c: true for its version line,
// false when it closed the connection without a word.
func answered(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	switch {
	case n > 0 && strings.HasPrefix(string(buf[:n]), "SSH-2.0-latch-ssh"):
		_ = c.SetReadDeadline(time.Time{})
		return true
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return false
	default:
		t.Fatalf("read %q, %v; want the version line or a close", buf[:n], err)
		return false
	}
}

// loginFrom logs u in from the local address ip and runs true.
func loginFrom(t *testing.T, f *fixture, u *systest.User, ip string) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitLimit}
	nc, err := d.Dial("tcp", f.target.Addr)
	if err != nil {
		return fmt.Errorf("dial from %s: %w", ip, err)
	}
	cfg := &gossh.ClientConfig{User: u.Name, Auth: []gossh.AuthMethod{gossh.PublicKeys(u.Signer)},
		HostKeyCallback: gossh.FixedHostKey(f.hostKey), Timeout: 10 * time.Second}
	sc, chans, reqs, err := gossh.NewClientConn(nc, f.target.Addr, cfg)
	if err != nil {
		nc.Close()
		return fmt.Errorf("login from %s: %w", ip, err)
	}
	client := gossh.NewClient(sc, chans, reqs)
	defer client.Close()
	if out, errOut, code := run(t, client, "echo in"); code != 0 || out != "in\n" {
		return fmt.Errorf("session from %s: exit %d, %q, %q", ip, code, out, errOut)
	}
	return nil
}

// TestSecurityFewSourcesCannotLockOut (issue 12, item 7): a few source
// addresses open bare TCP connections and never start the handshake,
// renewing them as they time out. With one address allowed three quarters
// of max_unauthenticated, two addresses held every slot and every login,
// the administrator's included, was dropped for as long as they liked.
// Now each source block holds at most max_unauthenticated_per_source (a
// quarter here, 10 by default), a login from elsewhere succeeds during the
// flood, and a source whose connections timed out is penalised: its next
// connections are closed at once, before they take a slot.
func TestSecurityFewSourcesCannotLockOut(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	// Only keys that existed before the fix: early drop and the per-source
	// cap take their defaults (off, and 8/4 = 2).
	f.server = "max_unauthenticated = 8\nhandshake_timeout = \"1s\""
	f.start(t, nil)

	flooders := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	var held []net.Conn
	for _, ip := range flooders {
		h, _ := holdSlots(t, f, ip, 8)
		held = append(held, h...)
		t.Logf("%s holds %d slots", ip, len(h))
	}
	if len(held) >= 8 {
		t.Fatalf("%d sources hold %d of 8 unauthenticated slots: the pool is full", len(flooders), len(held))
	}
	// While they hold their slots, someone else logs in, from an address
	// with no privilege (127.0.0.1 is exempt in the fixture).
	if err := loginFrom(t, f, u, "127.0.0.5"); err != nil {
		t.Fatalf("a login during the flood of %d sources failed: %v", len(flooders), err)
	}

	// Their connections time out; the sources are penalised for it.
	for _, c := range held {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("read: %v", err)
		}
	}
	for _, ip := range flooders {
		c := dialFrom(t, f, ip)
		if answered(t, c) {
			t.Errorf("%s held slots until they timed out and may connect again at once: no penalty", ip)
		}
		c.Close()
	}
	if !strings.Contains(f.log.String(), "source penalised") {
		t.Error("the penalty is not logged")
	}
	// Others still get in.
	if err := loginFrom(t, f, u, "127.0.0.6"); err != nil {
		t.Fatalf("a login after the penalties: %v", err)
	}
	waitFor(t, "the slots to be given back", func() bool { return f.srv.unauthenticated() == 0 })
}

// TestSecurityAdminGetsInWhenPoolFull (issue 12, item 7): enough sources
// to fill max_unauthenticated (many small ones, or a botnet) keep out a
// login from an unknown address, but not the administrator: a source in
// penalty_exempt, or one that logged in recently, has slots kept beyond
// the pool, and is not dropped at random.
func TestSecurityAdminGetsInWhenPoolFull(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.server = "max_unauthenticated = 4\nmax_unauthenticated_per_source = 2\npenalty_exempt = [\"127.0.0.9\", \"127.0.1.0/24\"]"
	f.start(t, nil)
	// The admin's usual machine logs in once.
	if err := loginFrom(t, f, u, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		holdSlots(t, f, ip, 2)
	}
	if n := f.srv.unauthenticated(); n != 4 {
		t.Fatalf("%d unauthenticated slots taken, want the whole pool (4)", n)
	}
	if err := loginFrom(t, f, u, "127.0.0.5"); err == nil {
		t.Error("a login from an unknown address got in with the pool full")
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.9", "127.0.1.7"} {
		if err := loginFrom(t, f, u, ip); err != nil {
			t.Errorf("the administrator's login from %s, with the pool full: %v", ip, err)
		}
	}
	// The kept slots are bounded too: max_unauthenticated_per_source.
	if _, dropped := holdSlots(t, f, "127.0.0.9", 3); dropped != 1 {
		t.Errorf("an exempt source held %d of 3 connections beyond the pool, want 2", 3-dropped)
	}
}

// TestSecurityFailedLoginsPenalised (issue 12, item 7): a source that
// fails to authenticate again and again (a key guesser) accrues
// penalty_authfail per connection, and once past penalty_min its next
// connections are closed at accept; the user's own logins from elsewhere
// go on.
func TestSecurityFailedLoginsPenalised(t *testing.T) {
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	guess := &systest.User{Name: u.Name, Signer: newSigner(t)}
	// 5s each, penalty_min 15s: the fourth failure activates it.
	for i := range 4 {
		if err := loginFrom(t, f, guess, "127.0.0.7"); err == nil {
			t.Fatal("a wrong key logged in")
		} else if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("failure %d: %v, want an authentication failure", i+1, err)
		}
	}
	waitFor(t, "the penalty of 127.0.0.7", func() bool {
		return strings.Contains(f.log.String(), `"source":"127.0.0.7","reason":"authentication failed or was refused","refused_for":"20s"`)
	})
	c := dialFrom(t, f, "127.0.0.7")
	if answered(t, c) {
		t.Error("a source with 20s of failed logins may connect at once")
	}
	c.Close()
	if err := loginFrom(t, f, u, "127.0.0.8"); err != nil {
		t.Fatalf("the user's login from elsewhere: %v", err)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// serverSettings returns the [server] defaults with edits.
func serverSettings(t *testing.T, extra string) *users.Server {
	t.Helper()
	cfg, err := users.Parse("latch.toml", []byte("[latch]\napp_id = \""+appID+"\"\nsecret = \""+secret+
		"\"\n[policy]\nfail_mode = \"closed\"\n[server]\n"+extra+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Server
}

func src(t *testing.T, ip string, set *users.Server) source {
	t.Helper()
	return sourceOf(&net.TCPAddr{IP: net.ParseIP(ip), Port: 4242}, set)
}

// TestSecurityStartupsRules (issue 12, item 7): the admission rules one by
// one, with the clock and the randomness in the test's hands: random early
// drop between early_drop_start and max_unauthenticated, penalties that
// add up to penalty_max and apply only above penalty_min, the exempt
// networks, the forgiveness of a login, the bounded table and its two
// overflow modes, and log lines rate-limited.
func TestSecurityStartupsRules(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	newSt := func() *startups {
		st := newStartups()
		st.now = clock.now
		return st
	}

	t.Run("early drop", func(t *testing.T) {
		set := serverSettings(t, "max_unauthenticated = 100\nmax_unauthenticated_per_source = 100")
		st := newSt()
		var roll int
		st.intn = func(n int) int {
			if n != 100 {
				t.Fatalf("intn(%d), want intn(100)", n)
			}
			return roll
		}
		// sshd's 10:30:100: at 10 the chance of a drop is 30%, at 55 it
		// is 30 + 70*45/90 = 65%, at 100 it is certain.
		for i := range 10 {
			roll = 0 // would drop, if anything were dropped below the start
			if v := st.admit(src(t, fmt.Sprintf("192.0.2.%d", i), set), set); v != admitted {
				t.Fatalf("connection %d below early_drop_start: %d", i, v)
			}
		}
		for _, c := range []struct{ roll, want int }{{29, refusedEarly}, {30, admitted}} {
			st.unauth = 10
			roll = c.roll
			if v := st.admit(src(t, "198.51.100.1", set), set); v != c.want {
				t.Errorf("at 10 with roll %d: %d, want %d", c.roll, v, c.want)
			}
		}
		for _, c := range []struct{ roll, want int }{{64, refusedEarly}, {65, admitted}} {
			st.unauth = 55
			roll = c.roll
			if v := st.admit(src(t, "198.51.100.2", set), set); v != c.want {
				t.Errorf("at 55 with roll %d: %d, want %d", c.roll, v, c.want)
			}
		}
		st.unauth = 100
		if v := st.admit(src(t, "198.51.100.3", set), set); v != refusedFull {
			t.Errorf("at 100: %d, want refusedFull", v)
		}
		// The exempt and the recently logged in are not dropped at random.
		set.PenaltyExempt = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		st.unauth, roll = 60, 0
		if v := st.admit(src(t, "203.0.113.5", set), set); v != admitted {
			t.Errorf("exempt source at 60 with roll 0: %d", v)
		}
		st.loggedIn(src(t, "198.51.100.9", set))
		if v := st.admit(src(t, "198.51.100.9", set), set); v != admitted {
			t.Errorf("a source that logged in, at 61 with roll 0: %d", v)
		}
	})

	t.Run("penalties", func(t *testing.T) {
		set := serverSettings(t, "penalty_exempt = [\"2001:db8:9::/48\"]")
		st := newSt()
		st.intn = func(int) int { return 99 }
		bad := src(t, "192.0.2.66", set)
		// 10s + 5s = 15s is not above penalty_min: deferred.
		st.penalise(bad, penaltyTimeout, set)
		st.penalise(bad, penaltyAuthFail, set)
		if v := st.admit(bad, set); v != admitted {
			t.Fatalf("15s of penalty, not above penalty_min: %d", v)
		}
		st.release(bad.block)
		if n := st.penalise(bad, penaltyNoAuth, set); n.block != bad.block || n.refusedFor != 16*time.Second {
			t.Errorf("activation note %+v, want 16s for %s", n, bad.block)
		}
		if v := st.admit(bad, set); v != refusedPenalty {
			t.Fatalf("16s of penalty: %d, want refusedPenalty", v)
		}
		// It adds up to penalty_max, no further.
		for range 100 {
			st.penalise(bad, penaltyTimeout, set)
		}
		clock.add(10*time.Minute - time.Second)
		if v := st.admit(bad, set); v != refusedPenalty {
			t.Fatalf("just before penalty_max ran out: %d", v)
		}
		clock.add(time.Second)
		if v := st.admit(bad, set); v != admitted {
			t.Fatalf("after penalty_max: %d, want admitted", v)
		}
		st.release(bad.block)
		// An IPv6 source is penalised by its /64; an exempt one never.
		v6 := src(t, "2001:db8:1:2::1", set)
		for range 2 {
			st.penalise(v6, penaltyTimeout, set)
		}
		if v := st.admit(src(t, "2001:db8:1:2:ffff::7", set), set); v != refusedPenalty {
			t.Errorf("another address of a penalised /64: %d", v)
		}
		if v := st.admit(src(t, "2001:db8:1:3::1", set), set); v != admitted {
			t.Errorf("the next /64: %d", v)
		}
		// A listener on [::] sees IPv4 clients as IPv4-mapped addresses:
		// they count, and match penalty_exempt, as IPv4.
		mapped := serverSettings(t, `penalty_exempt = ["192.0.2.0/24"]`)
		if m := src(t, "::ffff:192.0.2.5", mapped); !m.exempt || m.v6() || m.block != "192.0.2.5" {
			t.Errorf("IPv4-mapped source: %+v, want IPv4 192.0.2.5, exempt", m)
		}
		admin := src(t, "2001:db8:9:1::1", set)
		for range 10 {
			st.penalise(admin, penaltyTimeout, set)
		}
		if v := st.admit(admin, set); v != admitted {
			t.Errorf("exempt source after 10 timeouts: %d", v)
		}
		// A login forgives what its block accrued.
		typo := src(t, "192.0.2.77", set)
		for range 3 {
			st.penalise(typo, penaltyAuthFail, set)
		}
		st.loggedIn(typo)
		st.penalise(typo, penaltyAuthFail, set)
		if v := st.admit(typo, set); v != admitted {
			t.Errorf("after a login and one more failure: %d", v)
		}
		// Off: a zero penalty records nothing.
		off := serverSettings(t, `penalty_timeout = "0"`)
		quiet := src(t, "192.0.2.88", off)
		for range 10 {
			st.penalise(quiet, penaltyTimeout, off)
		}
		if _, ok := st.penalties[quiet.block]; ok {
			t.Error(`penalty_timeout = "0" recorded a penalty`)
		}
	})

	t.Run("overflow", func(t *testing.T) {
		for _, mode := range []string{"permissive", "deny-all"} {
			set := serverSettings(t, "penalty_max_sources = 2\npenalty_overflow = \""+mode+"\"\npenalty_exempt = [\"192.0.2.250\"]")
			st := newSt()
			st.intn = func(int) int { return 99 }
			a, b, c := src(t, "192.0.2.1", set), src(t, "192.0.2.2", set), src(t, "192.0.2.3", set)
			st.penalise(a, penaltyNoAuth, set) // ends first
			for range 3 {
				st.penalise(b, penaltyTimeout, set)
			}
			st.penalise(c, penaltyTimeout, set)
			if len(st.byEnd[0]) != 2 || len(st.penalties) != 2 {
				t.Errorf("%s: %d penalties tracked (%d IPv4), want 2", mode, len(st.penalties), len(st.byEnd[0]))
			}
			_, hasA := st.penalties[a.block]
			_, hasC := st.penalties[c.block]
			other := src(t, "198.51.100.1", set)
			v6 := src(t, "2001:db8::1", set)
			switch mode {
			case "permissive":
				if hasA || !hasC {
					t.Errorf("permissive: kept a (%v), recorded c (%v); want the soonest to end forgotten", hasA, hasC)
				}
				if v := st.admit(other, set); v != admitted {
					t.Errorf("permissive, table full: a new source got %d", v)
				}
			case "deny-all":
				if !hasA || hasC {
					t.Errorf("deny-all: kept a (%v), recorded c (%v); want the table left as it is", hasA, hasC)
				}
				if v := st.admit(other, set); v != refusedOverflow {
					t.Errorf("deny-all, table full: a new source got %d, want refusedOverflow", v)
				}
				if v := st.admit(src(t, "192.0.2.250", set), set); v != admitted {
					t.Errorf("deny-all, table full: the exempt source got %d", v)
				}
				if v := st.admit(v6, set); v != admitted {
					t.Errorf("deny-all, IPv4 table full: an IPv6 source got %d", v)
				}
				// Once the penalties run out, the table empties.
				clock.add(time.Hour)
				if v := st.admit(other, set); v != admitted {
					t.Errorf("deny-all after the penalties ended: %d", v)
				}
			}
		}
	})

	t.Run("bounded table", func(t *testing.T) {
		set := serverSettings(t, "penalty_max_sources = 50")
		st := newSt()
		for i := range 2000 {
			ip := fmt.Sprintf("10.%d.%d.%d", i%7, i/256, i%256)
			st.penalise(src(t, ip, set), i%3, set)
			if i%10 == 0 {
				clock.add(time.Second)
			}
		}
		if len(st.penalties) != len(st.byEnd[0]) || len(st.byEnd[0]) > 50 || len(st.byEnd[1]) != 0 {
			t.Fatalf("%d penalties, heaps of %d and %d; want at most 50, all IPv4", len(st.penalties), len(st.byEnd[0]), len(st.byEnd[1]))
		}
		for i, p := range st.byEnd[0] {
			if p.index != i || st.penalties[p.block] != p {
				t.Fatalf("heap entry %d (%s) is out of step with the table", i, p.block)
			}
			if i > 0 && p.until.Before(st.byEnd[0][(i-1)/2].until) {
				t.Fatalf("heap order broken at %d", i)
			}
		}
		clock.add(time.Hour)
		st.expire(0, clock.now())
		if len(st.penalties) != 0 || len(st.byEnd[0]) != 0 {
			t.Errorf("after every penalty ended: %d left", len(st.penalties))
		}
	})

	t.Run("log rate limit", func(t *testing.T) {
		st := newSt()
		if ok, _ := st.logRefusal(refusedPenalty); !ok {
			t.Fatal("the first refusal is not logged")
		}
		for range 1000 {
			if ok, _ := st.logRefusal(refusedPenalty); ok {
				t.Fatal("a second line within logEvery")
			}
		}
		if ok, _ := st.logRefusal(refusedSource); !ok {
			t.Error("another kind of refusal waits behind the first")
		}
		clock.add(logEvery)
		if ok, skipped := st.logRefusal(refusedPenalty); !ok || skipped != 1000 {
			t.Errorf("after logEvery: logged %v, %d not logged; want true, 1000", ok, skipped)
		}
	})
}
