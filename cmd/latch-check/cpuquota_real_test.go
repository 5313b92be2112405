package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// quotaCgroup makes a cgroup with the cpu controller below the machine's
// root cgroup (v1 cpu hierarchy, or cgroup2 with cpu enabled) and returns
// its directory and a function setting its quota in microseconds per
// 100 ms (-1: none). It skips when neither exists.
func quotaCgroup(t *testing.T) (dir string, setQuota func(us int)) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	m := cgroupMounts(mi)
	name := fmt.Sprintf("latch-quota-%d", os.Getpid())
	write := func(p, v string) {
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatalf("cgroup: %v", err)
		}
	}
	switch {
	case m.v1cpu != "":
		dir = filepath.Join(m.v1cpu, name)
		setQuota = func(us int) {
			write(filepath.Join(dir, "cpu.cfs_period_us"), "100000")
			write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.Itoa(us))
		}
	case m.v2 != "":
		if sub, _ := os.ReadFile(filepath.Join(m.v2, "cgroup.subtree_control")); !spawn.HasOption(strings.Join(strings.Fields(string(sub)), ","), "cpu") {
			t.Skip("cgroup2 without the cpu controller enabled at its root, and no cgroup v1 cpu hierarchy")
		}
		dir = filepath.Join(m.v2, name)
		setQuota = func(us int) {
			v := "max 100000"
			if us > 0 {
				v = strconv.Itoa(us) + " 100000"
			}
			write(filepath.Join(dir, "cpu.max"), v)
		}
	default:
		t.Skip("no cgroup hierarchy with the cpu controller")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) }) // empty by then: its processes have exited
	return dir, setQuota
}

// TestSecurityCPUQuotaHookCannotFailOpen: su run by an ordinary user inside
// a cgroup with a tiny CPU quota (what `systemd-run --user --scope -p
// CPUQuota=3%` gives any user) during a Latch outage, fail_mode = "open":
// the hook is throttled, so its timeout is not trusted and the login is
// denied; the same cgroup without a quota fails open as configured (issue
// 12 re-check, item 4).
func TestSecurityCPUQuotaHookCannotFailOpen(t *testing.T) {
	systest.Require(t, "pamtester", "useradd")
	f := newFixture(t)
	acc := f.Pair()
	caller := systest.CreateUser(t, systest.UserOptions{})
	target := systest.CreateUser(t, systest.UserOptions{})
	suid := setuidPAMTester(t)
	cfg := f.config(t, `fail_mode = "open"`, map[string]string{target.Name: acc})
	service := "latch-quotatest-" + target.Name
	writeHookService(t, service, recipe(t, "su", f.bin, cfg))
	dir, setQuota := quotaCgroup(t)
	f.SetLatch(acc, false)
	f.Latch.SetFault(acc, latchtest.Fault{Hang: true})
	for _, tc := range []struct {
		name    string
		quotaUS int
		allow   bool
	}{
		{"no quota: the outage fails open", -1, true},
		{"3% CPU quota: no fail-open", 3000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setQuota(tc.quotaUS)
			// The shell waits on stdin until the test has moved it into
			// the cgroup; pamtester and the hook are born there.
			cmd := caller.Command("/bin/sh", "-c", `read go; exec "$@"`, "sh", suid, service, target.Name, "acct_mgmt")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("moving the shell into %s: %v", dir, err)
			}
			in.Write([]byte("go\n"))
			in.Close()
			err = cmd.Wait()
			if (err == nil) != tc.allow {
				t.Fatalf("pamtester: %v, want allowed=%v (latch closed, Latch hanging, fail_mode = open)\n%s", err, tc.allow, out.String())
			}
		})
	}
}
