package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// serveLog is the stderr of a running `latch-ssh serve`, read while it is
// written.
type serveLog = systest.Buffer

// serveWaitFor polls cond until it holds, failing the test after 20s.
func serveWaitFor(t *testing.T, what string, log *serveLog, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\nlog:\n%s", what, log)
		}
		<-tick.C
	}
}

// TestServeProcess runs the real binary as systemd would: READY=1 through
// NOTIFY_SOCKET, real SIGHUP and SIGTERM, and a local user exhausting its
// file descriptors without killing it.
func TestServeProcess(t *testing.T) {
	w := systest.NewWorld(t, systest.WorldOptions{})
	dir := w.Dir
	socket := filepath.Join(dir, "gate.sock")
	cfg := w.WriteConfig(t, systest.Config{
		Policy: "fail_mode = \"closed\"\nallow_self_pairing = true",
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 1000", socket),
	})
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh")

	// A non-root user cannot point the daemon at a file of their choice.
	u := systest.CreateUser(t, systest.UserOptions{})
	if _, stderr, code := systest.Run(t, u.Command(bin, "serve", "-c", cfg)); code != 2 || !strings.Contains(stderr, "-c is honoured only for root") {
		t.Errorf("serve -c as a user: exit %d, %q", code, stderr)
	}

	notifyPath := filepath.Join(dir, "notify.sock")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()

	log := &serveLog{}
	cmd := exec.Command(bin, "serve", "-c", cfg)
	cmd.Env = []string{"NOTIFY_SOCKET=" + notifyPath, "PATH=/usr/bin:/bin"}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	nl.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	n, err := nl.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("notification %q, %v; want READY=1\nlog:\n%s", buf[:n], err, log)
	}
	ask := func() (gatesocket.SocketResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return gatesocket.AskDecision(ctx, socket, gatesocket.SocketRequest{Service: "sshd"}, nil)
	}
	// root is not in [users]: unpaired = allow.
	if resp, err := ask(); err != nil || resp.Outcome != "allow" {
		t.Fatalf("decision: %+v, %v\nlog:\n%s", resp, err, log)
	}

	// A failed self-service request is logged by the daemon's own logger:
	// one JSON line with the time and level every other line has (it was
	// once written by hand, without the time).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := gatesocket.CallSelfService(ctx, socket, gatesocket.SocketRequest{Op: gatesocket.OpPair, Token: "bad"})
	cancel()
	if err != nil || resp.OK {
		t.Fatalf("self-service pair with a bad code: %+v, %v", resp, err)
	}
	serveWaitFor(t, "the self-service line", log, func() bool { return strings.Contains(log.String(), `"event":"self-service"`) })
	for _, line := range strings.Split(log.String(), "\n") {
		if !strings.Contains(line, `"event":"self-service"`) {
			continue
		}
		var entry struct{ Level, Time, Message string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry.Level != "warn" || entry.Time == "" ||
			!strings.Contains(entry.Message, "self-service pair for root: a pairing code is") {
			t.Errorf("self-service log line %s (%v): want the daemon's JSON line, with level warn, the time and the reason", line, err)
		}
	}

	// A real SIGHUP reloads.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	serveWaitFor(t, "the reload", log, func() bool { return strings.Contains(log.String(), `"event":"reload"`) })

	// Anyone can connect and hold connections until the daemon has no file
	// descriptor left; it must wait for them to come back, not exit.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	limit := uint64(len(fds) + 2)
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	for range 10 {
		c, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		held = append(held, c)
	}
	serveWaitFor(t, "the daemon to run out of descriptors", log, func() bool {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		return err == nil && uint64(len(fds)) >= limit
	})
	for _, c := range held {
		c.Close()
	}
	if resp, err := ask(); err != nil || resp.Outcome != "allow" {
		t.Fatalf("decision after running out of descriptors: %+v, %v\nlog:\n%s", resp, err, log)
	}
	if !strings.Contains(log.String(), "too many open files; retrying") {
		t.Errorf("running out of descriptors is not logged:\n%s", log)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\nlog:\n%s", err, log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM\nlog:\n%s", log)
	}
	if !strings.Contains(log.String(), `"event":"stopped"`) {
		t.Errorf("no stopped line:\n%s", log)
	}
}
