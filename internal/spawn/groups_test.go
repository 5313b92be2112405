package spawn

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

func TestCgroupDir(t *testing.T) {
	const (
		pure   = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
		hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
			"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n" +
			"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		readOnly = "30 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 ro\n"
		subtree  = "30 23 0:26 /system.slice /mnt/c\\040g rw - cgroup2 cgroup2 rw\n"
	)
	for _, c := range []struct {
		mounts, own, want string
	}{
		{pure, "/system.slice/latch-ssh.service", "/sys/fs/cgroup/system.slice/latch-ssh.service"},
		{hybrid, "/", "/sys/fs/cgroup/unified"},
		{readOnly, "/", ""},
		{subtree, "/system.slice/x.service", "/mnt/c g/x.service"},
		{subtree, "/system.slicer", ""},
		{subtree, "/user.slice", ""},
		{"", "/", ""},
	} {
		got, err := cgroupDir([]byte(c.mounts), c.own)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("cgroupDir(%q, %q) = %q, %v; want %q", c.mounts, c.own, got, err, c.want)
		}
	}
}

// startIn starts `sh -c script` in g and returns it.
func startIn(t *testing.T, g *Group, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := g.Start(cmd, cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestGroupsEndSetsidAndDoubleFork (issue 12, item 8): with cgroups, End
// reaches a setsid'd process and a double-forked one, and removes the
// cgroup; a new group is refused after Shutdown.
func TestGroupsEndSetsidAndDoubleFork(t *testing.T) {
	systest.Require(t, "setsid")
	gs := NewGroups(GroupsOptions{})
	if gs.Mechanism() != MechanismCgroup {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no cgroup here: %s (CI=true: refusing to skip)", gs.Note())
		}
		t.Skip("no cgroup here: " + gs.Note())
	}
	t.Cleanup(func() { _ = gs.Shutdown(0) })
	g, err := gs.New("someone")
	if err != nil {
		t.Fatal(err)
	}
	startIn(t, g, "setsid sleep 300 </dev/null >/dev/null 2>&1 & (sleep 300 &) ; exec sleep 300")
	systest.WaitFor(t, "three processes in the group", 10*time.Second, func() bool { return len(g.members()) >= 3 })
	if owners := gs.Owners(); len(owners) != 0 {
		t.Errorf("Owners = %q while the session runs, want none", owners)
	}
	g.Release()
	if owners := gs.Owners(); !slices.Equal(owners, []string{"someone"}) {
		t.Errorf("Owners = %q after the session, want someone", owners)
	}
	if err := g.End(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.dir); !os.IsNotExist(err) {
		t.Errorf("the group's cgroup %s is still there: %v", g.dir, err)
	}
	if err := gs.Shutdown(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gs.Dir()); !os.IsNotExist(err) {
		t.Errorf("the instance's cgroup %s is still there: %v", gs.Dir(), err)
	}
	if _, err := gs.New("someone"); err == nil {
		t.Error("New after Shutdown succeeded")
	}
}

// TestGroupFallbackChecksStartTimes (issue 12, item 8): the fallback finds
// the session's process group and session, and nothing once the leader's
// pid belongs to a process of another start time (a reused pid).
func TestGroupFallbackChecksStartTimes(t *testing.T) {
	gs := NewGroups(GroupsOptions{ProcessGroupsOnly: true})
	if gs.Mechanism() != MechanismProcessGroup {
		t.Fatalf("mechanism %s", gs.Mechanism())
	}
	g, err := gs.New("someone")
	if err != nil {
		t.Fatal(err)
	}
	cmd := startIn(t, g, "sleep 300 & exec sleep 300")
	systest.WaitFor(t, "two processes in the group", 10*time.Second, func() bool { return len(g.members()) == 2 })
	if !slices.Contains(g.members(), cmd.Process.Pid) {
		t.Errorf("members %v lack the leader %d", g.members(), cmd.Process.Pid)
	}
	// The same pid with another start time: someone else's process now.
	g.mu.Lock()
	g.start++
	g.mu.Unlock()
	if m := g.members(); len(m) != 0 {
		t.Errorf("with the leader's pid reused, members = %v, want none", m)
	}
	g.mu.Lock()
	g.start--
	g.mu.Unlock()
	if err := g.End(time.Second); err != nil {
		t.Fatal(err)
	}
	if m := g.members(); len(m) != 0 {
		t.Errorf("after End, members = %v", m)
	}
	// No process starts in an ended group.
	late := exec.Command("/bin/sh", "-c", "exit 0")
	if err := g.Start(late, late.Start); err == nil || late.Process != nil {
		t.Errorf("Start after End: %v", err)
	}
}

// TestGroupsSweepDeadInstances (issue 12, item 8): what the session groups
// of a daemon that died without stopping still run is ended at the next
// start, and their cgroups removed; a live instance's are left alone.
func TestGroupsSweepDeadInstances(t *testing.T) {
	systest.Require(t)
	live := NewGroups(GroupsOptions{})
	if live.Mechanism() != MechanismCgroup {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no cgroup here: %s (CI=true: refusing to skip)", live.Note())
		}
		t.Skip("no cgroup here: " + live.Note())
	}
	t.Cleanup(func() { _ = live.Shutdown(0) })
	kept, err := live.New("someone")
	if err != nil {
		t.Fatal(err)
	}
	keptCmd := startIn(t, kept, "exec sleep 300")

	// A dead instance: a pid above any pid_max.
	dead := filepath.Join(filepath.Dir(live.Dir()), instancePrefix+"999999999.0badc0de")
	if err := os.MkdirAll(filepath.Join(dead, "s1"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(filepath.Join(dead, "s1")); _ = os.Remove(dead) })
	orphan := &Group{dir: filepath.Join(dead, "s1"), fd: -1}
	fd, err := syscall.Open(orphan.dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	orphan.fd = fd
	orphanCmd := startIn(t, orphan, "exec sleep 300")

	// (Another test binary starting a server at the same time may sweep it
	// first: the note is then its own, but the outcome is the same.)
	next := NewGroups(GroupsOptions{})
	t.Cleanup(func() { _ = next.Shutdown(0) })
	t.Logf("note: %s", next.Note())
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead instance's cgroup %s is still there: %v", dead, err)
	}
	if err := orphanCmd.Wait(); err == nil {
		t.Error("the dead instance's session process was not killed")
	}
	if err := keptCmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the live instance's session process is gone: %v", err)
	}
}
