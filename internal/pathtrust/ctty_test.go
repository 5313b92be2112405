package pathtrust_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// cttyChildEnv names the terminal the re-executed test binary opens.
const cttyChildEnv = "PATHTRUST_CTTY_CHILD"

// TestSecurityOpenTerminalNotControlling (issue 12 re-check, item 9): a user
// links ~/.ssh/authorized_keys to the slave side of a pseudo-terminal they
// opened themselves (not anyone's controlling terminal yet). The daemon, a
// session leader without a terminal as systemd starts it, opened that
// path without O_NOCTTY before refusing it as not regular, and so acquired
// the terminal as its controlling terminal with its own process group in
// the foreground: the user then typed ^\ on the master side and the kernel
// sent the daemon SIGQUIT (a goroutine dump, exit 2, which the unit's
// RestartPreventExitStatus=2 keeps down), or ^C for SIGINT (a stop). Open
// must refuse the terminal and leave the caller without a controlling
// terminal.
func TestSecurityOpenTerminalNotControlling(t *testing.T) {
	if name := os.Getenv(cttyChildEnv); name != "" {
		t.Skip("run by the parent test")
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	name := tty.Name()
	tty.Close()

	// The child: a new session (no controlling terminal), which opens the
	// slave through pathtrust and reports its own terminal.
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenTerminalChild$", "-test.v")
	cmd.Env = append(os.Environ(), cttyChildEnv+"="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "tty_nr=0 ") {
		t.Fatalf("opening %s through pathtrust made it the caller's controlling terminal:\n%s", name, out.String())
	}
}

// TestOpenTerminalChild is the child of TestSecurityOpenTerminalNotControlling.
func TestOpenTerminalChild(t *testing.T) {
	name := os.Getenv(cttyChildEnv)
	if name == "" {
		t.Skip("only as the child of TestSecurityOpenTerminalNotControlling")
	}
	f, _, _, err := pathtrust.Open(name, pathtrust.Policy{User: uint32(os.Geteuid()), HasUser: true, UserName: "the user", Home: "/"})
	if err == nil {
		f.Close()
		t.Errorf("Open(%s) accepted a terminal", name)
	}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Field 7 is tty_nr; the command name (field 2) is in parentheses.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	t.Logf("open error: %v; tty_nr=%s ", err, fields[4])
}
