package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// demoWait bounds every wait for the demo process.
const demoWait = 30 * time.Second

// demoOutput collects the lines a demo process prints, as they come.
type demoOutput struct {
	mu      sync.Mutex
	lines   []string
	eof     bool
	changed chan struct{}
}

// read reads r line by line until it ends.
func (o *demoOutput) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		o.mu.Lock()
		o.lines = append(o.lines, sc.Text())
		o.mu.Unlock()
		o.notify()
	}
	o.mu.Lock()
	o.eof = true
	o.mu.Unlock()
	o.notify()
}

func (o *demoOutput) notify() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *demoOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// next waits for the first line from *from on that contains want, moves
// *from past it, and returns it.
func (o *demoOutput) next(t *testing.T, from *int, want string) string {
	t.Helper()
	deadline := time.NewTimer(demoWait)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		for i := *from; i < len(o.lines); i++ {
			if strings.Contains(o.lines[i], want) {
				*from = i + 1
				l := o.lines[i]
				o.mu.Unlock()
				return l
			}
		}
		eof := o.eof
		o.mu.Unlock()
		if eof {
			t.Fatalf("the demo's output ended without a line with %q:\n%s", want, o)
		}
		select {
		case <-o.changed:
		case <-deadline.C:
			t.Fatalf("no line with %q within %s; output:\n%s", want, demoWait, o)
		}
	}
}

// lockedBuffer is a process's stderr, read while it is written.
type lockedBuffer = systest.Buffer

// TestDemoProcess runs `latch-ssh demo` as a script would (stdin a pipe,
// no terminal) and logs in with the real ssh client and the command it
// prints: allowed, refused after l, allowed again after o; SIGTERM stops
// it with exit 0 and removes its directory. It runs as root or not.
func TestDemoProcess(t *testing.T) {
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		// Reading the environment is fine here: this is test code only.
		if os.Getenv("CI") == "true" {
			t.Fatalf("the ssh client is missing (apt package openssh-client); CI=true: refusing to skip")
		}
		t.Skip("the ssh client is missing (apt package openssh-client)")
	}
	// testscript.Main (main_test.go) installed this test binary as
	// latch-ssh, first in PATH.
	bin, err := exec.LookPath("latch-ssh")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", systest.FreePort(t))
	cmd := exec.Command(bin, "demo", "--listen", addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &demoOutput{changed: make(chan struct{}, 1)}
	go out.read(stdout)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo stdout:\n%s\ndemo stderr:\n%s", out, stderr)
		}
	})
	send := func(cmd string) {
		t.Helper()
		if _, err := io.WriteString(stdin, cmd+"\n"); err != nil {
			t.Fatalf("writing %q to the demo: %v", cmd, err)
		}
	}

	at := 0
	printed := strings.Fields(out.next(t, &at, "ssh -p "))
	if len(printed) < 3 || printed[0] != "ssh" {
		t.Fatalf("not an ssh command: %q", printed)
	}
	dest := printed[len(printed)-1]
	if !strings.HasSuffix(dest, "@127.0.0.1") {
		t.Fatalf("the command logs in to %q", dest)
	}
	var keyPath string
	for i, a := range printed {
		if a == "-i" && i+1 < len(printed) {
			keyPath = printed[i+1]
		}
	}
	if keyPath == "" {
		t.Fatalf("no -i in %q", printed)
	}
	dir := filepath.Dir(keyPath)
	out.next(t, &at, "latch: open")

	// The printed command as is, but for no ssh_config (the machine's
	// must not change the test), no prompts, and a remote command.
	login := func() (string, string, int) {
		t.Helper()
		args := append(append([]string{}, printed[1:len(printed)-1]...),
			"-F", "none", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", dest, "echo hello")
		return systest.Run(t, exec.Command(sshPath, args...))
	}

	if o, e, code := login(); code != 0 || o != "hello\n" {
		t.Fatalf("login with the latch open: exit %d, stdout %q, stderr %q", code, o, e)
	}
	out.next(t, &at, ": ALLOW (latch open)")

	send("l")
	out.next(t, &at, "latch: closed")
	if o, e, code := login(); code != 255 || o != "" || !strings.Contains(e, "latch is closed") {
		t.Fatalf("login with the latch closed: exit %d, stdout %q, stderr %q; want 255 and the refusal", code, o, e)
	}
	out.next(t, &at, ": DENY (latch closed)")

	send("o")
	out.next(t, &at, "latch: open")
	if o, e, code := login(); code != 0 || o != "hello\n" {
		t.Fatalf("login after o: exit %d, stdout %q, stderr %q", code, o, e)
	}
	out.next(t, &at, ": ALLOW (latch open)")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("after SIGTERM the demo exited with %v; want 0", err)
		}
	case <-time.After(demoWait):
		t.Fatal("the demo did not exit after SIGTERM")
	}
	out.next(t, &at, "demo stopped; removed "+dir)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo's directory %s is still there: %v", dir, err)
	}
}

// A taken port: exit 1, and the flag that picks another.
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr strings.Builder
	code := runDemo([]string{"--listen", ln.Addr().String()}, &stdout, &stderr)
	want := "latch-ssh demo: " + ln.Addr().String() + " is already in use; pick another address with --listen"
	if code != 1 || !strings.Contains(stderr.String(), want) || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout.String(), stderr.String(), want)
	}
}
