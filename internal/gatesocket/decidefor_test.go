package gatesocket

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestWireBytesDecideFor pins the PAM hook's messages (issue 15) as
// protocol.go shows them; the lines of version 1 (TestWireBytes) are
// unchanged by the new fields, which are all omitted when empty.
func TestWireBytesDecideFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"decide-for", SocketRequest{V: ProtocolVersion, Op: OpDecideFor, Service: "sshd", Remote: "192.0.2.1", User: "alice", Config: "/etc/latch-ssh/latch.toml"},
			`{"v":1,"op":"decide-for","service":"sshd","remote":"192.0.2.1","user":"alice","config":"/etc/latch-ssh/latch.toml"}`},
		{"accepted", SocketResponse{V: ProtocolVersion, Outcome: OutcomeAccepted, User: "alice"}, `{"v":1,"outcome":"accepted","user":"alice"}`},
		{"allow", SocketResponse{V: ProtocolVersion, Outcome: "allow", User: "alice", Reason: "latch open"},
			`{"v":1,"outcome":"allow","user":"alice","reason":"latch open"}`},
		{"deny, fail mode", SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied", User: "alice", Reason: "fail-closed: x", FailMode: true},
			`{"v":1,"outcome":"deny","message":"latch-ssh: access denied","user":"alice","reason":"fail-closed: x","fail_mode":true}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// serveOnce listens on a socket in a private directory and runs behave on
// each connection until the test ends.
func serveOnce(t *testing.T, behave func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	systest.Require(t) // root: dial wants a root-owned daemon
	path := filepath.Join(t.TempDir(), "run", "gate.sock")
	ln, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); behave(c, bufio.NewReader(c)) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return path
}

// TestAskForUserBounds: the tight bound covers the connection and the
// acknowledgement only. A daemon that says nothing is given up on quickly;
// one that acknowledged and waits on a slow Latch is waited for.
func TestAskForUserBounds(t *testing.T) {
	read := func(r *bufio.Reader) SocketRequest {
		var req SocketRequest
		readMessage(r, &req)
		return req
	}
	t.Run("silent daemon: given up on at the ack bound", func(t *testing.T) {
		stop := make(chan struct{})
		path := serveOnce(t, func(c net.Conn, r *bufio.Reader) { read(r); <-stop })
		defer close(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := AskForUser(ctx, path, SocketRequest{User: "alice", Config: "/c"}, 100*time.Millisecond)
		if !errors.Is(err, ErrDaemon) || errors.Is(err, ErrNotRunning) {
			t.Fatalf("silent daemon: %v", err)
		}
		// Far below the 20s the answer may take: the ack bound applied.
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("gave up after %v", took)
		}
	})
	t.Run("acknowledged, slow answer: waited for", func(t *testing.T) {
		path := serveOnce(t, func(c net.Conn, r *bufio.Reader) {
			req := read(r)
			writeMessage(c, SocketResponse{V: ProtocolVersion, Outcome: OutcomeAccepted, User: req.User})
			<-time.After(500 * time.Millisecond) // Latch, slow: longer than the ack bound
			writeMessage(c, SocketResponse{V: ProtocolVersion, Outcome: "deny", User: req.User, Reason: "latch closed", Message: "m\x1b[2J"})
		})
		ans, err := AskForUser(context.Background(), path, SocketRequest{User: "alice", Config: "/c"}, 100*time.Millisecond)
		if err != nil || ans.Allowed || ans.Reason != "latch closed" || ans.DaemonPID == 0 || ans.Message != `m\x1b[2J` {
			t.Fatalf("slow answer: %+v, %v", ans, err)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		_, err := AskForUser(context.Background(), filepath.Join(t.TempDir(), "none.sock"), SocketRequest{User: "alice"}, time.Second)
		if !errors.Is(err, ErrNotRunning) || !errors.Is(err, ErrDaemon) {
			t.Fatalf("no socket: %v", err)
		}
	})
}
