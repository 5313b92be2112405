package spawn

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// inheritablePipe returns a pipe whose read end is not close-on-exec, as a
// descriptor inherited from a careless parent would be.
func inheritablePipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if _, err := unix.FcntlInt(r.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	return r, w
}

func closeOnExec(t *testing.T, f *os.File) bool {
	t.Helper()
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// startSleep starts sleep, directly or through Start, and kills it at
// cleanup.
func startSleep(t *testing.T, viaStart bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "30")
	var err error
	if viaStart {
		err = Start(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestSecurityInheritedFDs (issue 12, item 12): a descriptor this process
// holds without close-on-exec reaches a child started with plain
// os/exec, and AssertNoInheritedFDs sees it there; Start marks it first, so
// the child holds none of ours and passes the check.
func TestSecurityInheritedFDs(t *testing.T) {
	r, _ := inheritablePipe(t)
	fd := int(r.Fd())

	leaky := startSleep(t, false)
	err := AssertNoInheritedFDs(leaky.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(fd)) {
		t.Fatalf("a child holding our fd %d: AssertNoInheritedFDs = %v, want an error naming it", fd, err)
	}

	clean := startSleep(t, true)
	if !closeOnExec(t, r) {
		t.Error("Start left the pipe inheritable")
	}
	if _, err := os.Readlink("/proc/" + strconv.Itoa(clean.Process.Pid) + "/fd/" + strconv.Itoa(fd)); err == nil {
		t.Errorf("the child started by Start holds fd %d", fd)
	}
	if err := AssertNoInheritedFDs(clean.Process.Pid); err != nil {
		t.Errorf("clean child: %v", err)
	}
}

// TestAssertNoInheritedFDsOwnFiles: files the program opens itself after
// exec, even the same file on the same number as ours, are its own.
func TestAssertNoInheritedFDsOwnFiles(t *testing.T) {
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	n := strconv.Itoa(int(f.Fd()))
	cmd := exec.Command("/bin/bash", "-c", "exec "+n+"</etc/hostname; echo ready; exec sleep 30")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := AssertNoInheritedFDs(cmd.Process.Pid); err != nil {
		t.Errorf("a program's own file counted as inherited: %v", err)
	}
}

// TestAssertNoInheritedFDsExited: a process that has already exited (not
// yet waited for) holds nothing.
func TestAssertNoInheritedFDsExited(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	systest.WaitFor(t, "true to exit", 10*time.Second, func() bool { return exited(cmd.Process.Pid) })
	if err := AssertNoInheritedFDs(cmd.Process.Pid); err != nil {
		t.Errorf("exited process: %v", err)
	}
}

// TestMarkViaProc: the fallback without close_range marks too.
func TestMarkViaProc(t *testing.T) {
	r, _ := inheritablePipe(t)
	if closeOnExec(t, r) {
		t.Fatal("setup: the pipe is close-on-exec")
	}
	if err := markViaProc(); err != nil {
		t.Fatal(err)
	}
	if !closeOnExec(t, r) {
		t.Error("markViaProc left the pipe inheritable")
	}
}
