package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// fdLine matches a line of `ls -l /proc/PID/fd`: "... 3 -> pipe:[1234]".
var fdLine = regexp.MustCompile(`\s(\d+) -> (.*)$`)

// sessionFDs parses `ls -l /proc/PID/fd` into descriptor -> target.
func sessionFDs(out string) map[int]string {
	fds := map[int]string{}
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r", ""), "\n") {
		if m := fdLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			fds[n] = strings.Trim(m[2], "'")
		}
	}
	return fds
}

// TestSecuritySessionFDs (issue 12, item 12): `latch-ssh serve`, started
// with an inherited descriptor that is not close-on-exec (a root-owned
// pipe, here its fd 3), must not pass it to the sessions of its embedded
// server: a session holds 0, 1 and 2, nothing else, with or without a
// terminal, and nothing of the pipe. Before the fix the session had fd 3,
// the daemon's pipe, open (and whatever the test runner leaked into the
// daemon: `go test` itself may hold such descriptors).
func TestSecuritySessionFDs(t *testing.T) {
	systest.Require(t, "ssh")
	w := systest.NewWorld(t, systest.WorldOptions{})
	dir := w.Dir
	u, _ := w.PairUser(t, systest.UserOptions{})
	port := systest.FreePort(t)
	cfg := w.WriteConfig(t, systest.Config{
		Policy: "fail_mode = \"closed\"\nunpaired = \"deny\"",
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\n\n", filepath.Join(dir, "gate.sock")) +
			fmt.Sprintf("[server]\nlisten = \"127.0.0.1:%d\"\nhost_key = [%q]", port, filepath.Join(dir, "host_key")),
		Users: w.Paired(),
	})
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh")

	// The inherited pipe: os/exec gives ExtraFiles[0] to the child as fd 3
	// without close-on-exec, as a careless parent would.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(pr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	pipeName := fmt.Sprintf("pipe:[%d]", st.Ino)

	log := &serveLog{}
	cmd := exec.Command(bin, "serve", "-c", cfg)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stderr = log
	cmd.ExtraFiles = []*os.File{pr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", log)
		}
	}()
	// The daemon itself still holds its pipe: the fix marks, not closes.
	if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", cmd.Process.Pid)); err != nil || target != pipeName {
		t.Fatalf("the daemon's fd 3 is %q (%v), want the inherited %s", target, err, pipeName)
	}
	tgt := &systest.Target{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port}
	serveWaitFor(t, "the embedded server", log, func() bool {
		c, err := net.DialTimeout("tcp", tgt.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	t.Run("command", func(t *testing.T) {
		// `; exit` keeps bash from exec'ing ls in its place: ls lists the
		// shell's descriptors, not its own.
		out, stderr, code := systest.Run(t, tgt.SSH(t, u, "ls -l /proc/$$/fd; exit 0"))
		fds := sessionFDs(out)
		if code != 0 || len(fds) == 0 {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		keys := make([]int, 0, len(fds))
		for k := range fds {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []int{0, 1, 2}) {
			t.Errorf("the session holds descriptors %v, want only 0, 1, 2:\n%s", keys, out)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		// An interactive bash keeps a copy of its terminal on fd 255; what
		// must not be there is the pipe.
		c := tgt.SSH(t, u, "-tt")
		c.Stdin = strings.NewReader("command ls --color=never -l /proc/$$/fd; exit 0\n")
		out, stderr, code := systest.Run(t, c)
		fds := sessionFDs(out)
		if code != 0 || len(fds) == 0 {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
		for n, target := range fds {
			if n > 2 && (target == pipeName || !strings.HasPrefix(target, "/dev/pts/")) {
				t.Errorf("the terminal session holds fd %d -> %s:\n%s", n, target, out)
			}
		}
	})
}
