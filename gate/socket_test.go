package gate_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
)

// startSocket serves a SocketServer with no configuration (every decision
// denies) on a socket in a private directory.
func startSocket(t *testing.T, srv *gate.SocketServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "gate.sock")
	ln, err := gate.ListenSocket(path)
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
	srv := &gate.SocketServer{Core: func() *gate.Core { return &gate.Core{} }, MaxConnsPerUID: 3}
	path := startSocket(t, srv)
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server counts a connection once its handler runs; a fourth one
	// is refused as soon as the three are counted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", path)
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
		resp, err := gate.AskDecision(ctx, path, gate.SocketRequest{Service: "sshd"}, nil)
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
	srv := &gate.SocketServer{Core: func() *gate.Core { return &gate.Core{} },
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
