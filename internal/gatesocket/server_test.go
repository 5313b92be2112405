package gatesocket_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// startSocket serves a SocketServer with no configuration (every decision
// denies) on a socket in a private directory.
func startSocket(t *testing.T, srv *gatesocket.SocketServer) string {
	t.Helper()
	return startSocketIn(t, srv, t.TempDir())
}

// startSocketIn is startSocket in dir.
func startSocketIn(t *testing.T, srv *gatesocket.SocketServer, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "run", "gate.sock")
	ln, err := gatesocket.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// TestConnectionCapPerUID: one user holding idle connections cannot use
// up the daemon: past the cap, new connections are refused at once, and
// freed slots work again.
func TestConnectionCapPerUID(t *testing.T) {
	srv := &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} }, MaxConnsPerUID: 3}
	// Root has no cap (see SocketServer.enter): as root, connect as
	// nobody, from a directory nobody can traverse.
	dial := func(path string) (net.Conn, error) { return net.Dial("unix", path) }
	path := ""
	if os.Geteuid() == 0 {
		dial = func(path string) (net.Conn, error) { return dialAsUID(path, nobody) }
		path = startSocketIn(t, srv, systest.SecureDir(t))
	} else {
		path = startSocket(t, srv)
	}
	var held []net.Conn
	for range 3 {
		c, err := dial(path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server counts a connection once its handler runs; a fourth one
	// is refused as soon as the three are counted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := dial(path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.Contains(line, "too many connections") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a fourth idle connection was never refused (last answer %q)", line)
		}
	}
	for _, c := range held {
		c.Close()
	}
	// Slots come back: a decision goes through (and denies: no config).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		c, err := dial(path)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := askOn(c)
		if err != nil {
			// The server may not have seen the closes yet: it refuses and
			// hangs up before reading, and the request's write breaks.
			if ctx.Err() != nil {
				t.Fatalf("slots never came back: %v", err)
			}
			continue
		}
		if !strings.Contains(resp.Message, "too many connections") {
			if resp.Outcome != "deny" {
				t.Fatalf("no configuration: %+v", resp)
			}
			break
		}
	}
}

// A message cut short (no newline before the connection closes) is not a
// message: the daemon refuses it instead of acting on it.
func TestTruncatedMessageRefused(t *testing.T) {
	logged := make(chan string, 10)
	srv := &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} },
		Logf: func(format string, args ...any) { logged <- fmt.Sprintf(format, args...) }}
	path := startSocket(t, srv)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"v":1,"op":"decide","service":"sshd"}`))
	c.(*net.UnixConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, `"outcome":"deny"`) {
		t.Fatalf("answer to a truncated message: %q", line)
	}
	select {
	case msg := <-logged:
		if !strings.Contains(msg, "bad request") {
			t.Fatalf("logged %q, want a bad request", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the truncated message was taken as a request (nothing logged)")
	}
}

// nobody is the uid the cap test connects as when it runs as root.
const nobody = 65534

// dialAsUID connects to path with the effective uid set to uid on this
// thread only, so that SO_PEERCRED says uid: a raw setresuid(2) changes
// the calling thread alone (Go's syscall.Setuid would change every thread
// of the test). The thread is given back to the runtime only once root is
// restored.
func dialAsUID(path string, uid int) (net.Conn, error) {
	runtime.LockOSThread()
	keep := ^uintptr(0)
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("setresuid: %w", e)
	}
	c, err := net.Dial("unix", path)
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, 0, keep); e == 0 {
		runtime.UnlockOSThread()
	} // else the thread ends with this goroutine
	return c, err
}

// askOn sends a decide request on c and reads the answer.
func askOn(c net.Conn) (gatesocket.SocketResponse, error) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(`{"v":1,"op":"decide","service":"sshd"}` + "\n")); err != nil {
		return gatesocket.SocketResponse{}, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return gatesocket.SocketResponse{}, err
	}
	var resp gatesocket.SocketResponse
	err = json.Unmarshal([]byte(line), &resp)
	return resp, err
}

// TestSecurityRootNotThrottled (issue 12, items 6 and 11): root's callers
// (the PAM hook, root's own gate) ask for every user's logins, so the
// per-uid connection cap and rate limit, keyed on uid 0, would make all
// logins share one budget: the 17th concurrent login, or the 11th in a
// minute, would be refused. Root is exempt from both.
func TestSecurityRootNotThrottled(t *testing.T) {
	systest.Require(t)
	srv := &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} }, MaxConnsPerUID: 2,
		Limiter: gatesocket.NewRateLimiter(1)}
	path := startSocket(t, srv)
	for range 4 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for i := range 3 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := askOn(c)
		if err != nil || resp.Outcome != "deny" || resp.Message != "latch-ssh: access denied" {
			t.Errorf("root's decision %d with 4 connections held: %+v, %v; want the core's deny (no configuration), not a throttle", i, resp, err)
		}
	}
}

// TestQueuedConnectionsServed: connections waiting in the listen queue
// when the server starts are served by both of Serve's paths (the first by
// AcceptUnix, the rest by the bare accept4 drain), each with a complete
// exchange.
func TestQueuedConnectionsServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "gate.sock")
	ln, err := gatesocket.ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	srv := &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} }, MaxConnsPerUID: 1000}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	for i, c := range conns {
		resp, err := askOn(c)
		if err != nil || resp.Outcome != "deny" || resp.Message != "latch-ssh: access denied" {
			t.Errorf("queued connection %d: %+v, %v; want the core's deny (no configuration)", i, resp, err)
		}
	}
}
