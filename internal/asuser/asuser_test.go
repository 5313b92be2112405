package asuser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// No user account is needed: the kernel works on numbers.
const (
	uidA = 43210
	uidB = 43211
	gidX = 43299
)

var credsA = Creds{UID: uidA, GID: uidA, Groups: []uint32{uidA, gidX}}

// statusIDs returns the Uid, Gid and Groups lines of a /proc status file.
func statusIDs(t *testing.T, path string) (uid, gid, groups string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.Join(strings.Fields(v), " ")
		switch k {
		case "Uid":
			uid = v
		case "Gid":
			gid = v
		case "Groups":
			groups = v
		}
	}
	return uid, gid, groups
}

// TestRun: fn runs with the user's effective and file-system ids and
// groups (real and saved stay root's), the file system sees the user, and
// afterwards no thread of the process is left with the user's ids.
func TestRun(t *testing.T) {
	systest.Require(t)
	dir := systest.SecureDir(t)
	secret := filepath.Join(dir, "root-only")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := Run(credsA, func() error {
				uid, gid, groups := statusIDs(t, "/proc/thread-self/status")
				want := "0 " + strconv.Itoa(uidA) + " 0 " + strconv.Itoa(uidA)
				if uid != want || gid != want || groups != strconv.Itoa(uidA)+" "+strconv.Itoa(gidX) {
					t.Errorf("inside: Uid %q Gid %q Groups %q, want %q and groups %d %d", uid, gid, groups, want, uidA, gidX)
				}
				if _, err := os.ReadFile(secret); !errors.Is(err, os.ErrPermission) {
					t.Errorf("read of a root-only file as the user: %v, want permission denied", err)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := Run(credsA, func() error { return errors.New("mine") }); err == nil || err.Error() != "mine" {
		t.Errorf("fn's error not returned: %v", err)
	}
	if err := Run(credsA, func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic not returned as an error: %v", err)
	}
	// The switched threads end with their goroutines.
	systest.WaitFor(t, "every thread back to root", 10*time.Second, func() bool {
		tasks, err := filepath.Glob("/proc/self/task/*/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tasks {
			if uid, _, _ := statusIDs(t, p); uid != "0 0 0 0" && uid != "" {
				return false
			}
		}
		return true
	})
	if uid, gid, _ := statusIDs(t, "/proc/self/status"); uid != "0 0 0 0" || gid != "0 0 0 0" {
		t.Errorf("process ids %q %q", uid, gid)
	}
}

func init() {
	// TestMain runs on the main thread (see mainThreadCheck).
	runtime.LockOSThread()
}

// TestMain first checks, on the main thread, that Run's goroutine never
// switches it: landing there, it runs fn on another thread.
func TestMain(m *testing.M) {
	if err := mainThreadCheck(); err != nil {
		fmt.Fprintln(os.Stderr, "main thread check:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func mainThreadCheck() error {
	if os.Geteuid() != 0 || unix.Gettid() != unix.Getpid() {
		return nil // not root (the tests skip), or not the main thread
	}
	tid := 0
	// runLocked as Run's goroutine would run it had it landed here (this
	// goroutine is locked to the main thread by init).
	if err := runLocked(credsA, func() error { tid = unix.Gettid(); return nil }); err != nil {
		return err
	}
	if tid == 0 || tid == unix.Getpid() {
		return fmt.Errorf("fn ran on thread %d, the main thread is %d", tid, unix.Getpid())
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), "\nUid:\t0\t0\t0\t0\n") {
		return errors.New("the main thread's uids changed")
	}
	return nil
}

// TestCheckRefusesOtherCreds: the invariant check fails when the thread
// is not who it should be.
func TestCheckRefusesOtherCreds(t *testing.T) {
	systest.Require(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- check(Creds{UID: uidA, GID: uidA}) // still root
	}()
	if err := <-errc; err == nil {
		t.Fatal("check passed on a root thread for another uid")
	}
}

// socketUID returns the owner of the TCP socket with this local and remote
// address (remote invalid: a listener).
func socketUID(t *testing.T, local, remote netip.AddrPort) int {
	t.Helper()
	for _, s := range systest.TCPSockets(t) {
		if s.Local == local && (s.Remote == remote || !remote.IsValid() && s.State == systest.TCPListen) {
			return s.UID
		}
	}
	t.Fatalf("no socket %s -> %s", local, remote)
	return -1
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestSockets: a listener, a connection dialed and one accepted are owned
// by the credentials they were made with, and carry data.
func TestSockets(t *testing.T) {
	systest.Require(t)
	for _, lo := range []string{"127.0.0.1", "::1"} {
		t.Run(lo, func(t *testing.T) {
			ln, err := ListenTCP(credsA, netip.AddrPortFrom(netip.MustParseAddr(lo), 0))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			lap := addrPort(ln.Addr())
			if got := socketUID(t, lap, netip.AddrPort{}); got != uidA {
				t.Errorf("listener owned by %d, want %d", got, uidA)
			}
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					t.Error(err)
				}
				accepted <- c
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := DialTCP(ctx, Creds{UID: uidB, GID: uidB}, lap)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a := <-accepted
			if a == nil {
				return
			}
			defer a.Close()
			if got := socketUID(t, addrPort(c.LocalAddr()), lap); got != uidB {
				t.Errorf("dialed connection owned by %d, want %d", got, uidB)
			}
			if got := socketUID(t, lap, addrPort(c.LocalAddr())); got != uidA {
				t.Errorf("accepted connection owned by %d, want %d", got, uidA)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if b, err := io.ReadAll(a); err != nil || string(b) != "ping" {
				t.Errorf("read %q, %v", b, err)
			}
			ln.Close()
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestSocketErrors: refused connections, cancelled dials and privileged
// ports fail as they should for the user.
func TestSocketErrors(t *testing.T) {
	systest.Require(t)
	port := systest.FreePort(t)
	ctx := context.Background()
	if _, err := DialTCP(ctx, credsA, netip.MustParseAddrPort("127.0.0.1:"+strconv.Itoa(port))); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial to a closed port: %v, want connection refused", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	// 192.0.2.0/24 (TEST-NET-1) is never routed: the connect hangs, or
	// fails at once without a route; either way a cancelled dial fails.
	if c, err := DialTCP(cctx, credsA, netip.MustParseAddrPort("192.0.2.1:9")); err == nil {
		c.Close()
		t.Error("cancelled dial succeeded")
	}
	start, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(start))); n > 1 {
		if ln, err := ListenTCP(credsA, netip.MustParseAddrPort("127.0.0.1:1")); !errors.Is(err, unix.EACCES) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("listen on port 1 as a user: %v, want permission denied", err)
		}
	}
}
