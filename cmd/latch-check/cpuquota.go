package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// A CPU quota is the cgroup form of `nice -n 19`: a caller can run su
// inside a scope of their own with a tiny quota (`systemd-run --user
// --scope -p CPUQuota=1%`, the cpu controller is delegated to users by
// default), and the hook inside it is throttled past its Latch deadline
// while it waits on nothing. A decision of a hook whose cgroup, or a
// cgroup above it, has a CPU quota that has throttled it is not trusted to
// fail open (issue 12 re-check, item 4). The counters are the cgroup's
// since it was made: a scope made to throttle su has throttled before the
// hook starts, and a quota that never bit does not count.

// cgroupFS reads the files the check needs; tests replace it.
type cgroupFS struct {
	readFile func(path string) ([]byte, error)
}

// cpuThrottled returns why the hook's CPU quota makes a timeout
// untrustworthy, or "" when no quota above the hook has throttled it.
func (fs cgroupFS) cpuThrottled() string {
	cg, err := fs.readFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	mi, err := fs.readFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	mounts := cgroupMounts(mi)
	sc := bufio.NewScanner(bytes.NewReader(cg))
	for sc.Scan() {
		// "hierarchy-ID:controller-list:cgroup-path"
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var root string
		var v2 bool
		switch {
		case parts[0] == "0" && parts[1] == "":
			root, v2 = mounts.v2, true
		case spawn.HasOption(parts[1], "cpu"):
			root = mounts.v1cpu
		}
		if root == "" {
			continue
		}
		for dir := filepath.Join(root, parts[2]); ; dir = filepath.Dir(dir) {
			if why := fs.throttledAt(dir, v2); why != "" {
				return why
			}
			if dir == root || !strings.HasPrefix(dir, root) {
				break
			}
		}
	}
	return ""
}

// throttledAt reports a CPU quota on the cgroup at dir that has throttled
// its processes.
func (fs cgroupFS) throttledAt(dir string, v2 bool) string {
	quota := false
	if v2 {
		b, err := fs.readFile(filepath.Join(dir, "cpu.max"))
		quota = err == nil && len(bytes.Fields(b)) > 0 && string(bytes.Fields(b)[0]) != "max"
	} else {
		b, err := fs.readFile(filepath.Join(dir, "cpu.cfs_quota_us"))
		quota = err == nil && strings.TrimSpace(string(b)) != "-1" && strings.TrimSpace(string(b)) != ""
	}
	if !quota {
		return ""
	}
	stat, err := fs.readFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "nr_throttled "); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
				return fmt.Sprintf("the hook runs under a CPU quota (cgroup %s) that has throttled it %d times, which can starve the Latch call past its deadline", dir, n)
			}
		}
	}
	return ""
}

// mountPoints are where the cgroup hierarchies the check reads are mounted.
type mountPoints struct {
	v2, v1cpu string
}

// cgroupMounts finds the cgroup2 mount and the cgroup v1 mount holding the
// cpu controller in a /proc/self/mountinfo (whole hierarchies only).
func cgroupMounts(mountinfo []byte) mountPoints {
	var m mountPoints
	for _, x := range spawn.ParseMountinfo(mountinfo) {
		switch {
		case x.Root != "/":
		case x.FSType == "cgroup2" && m.v2 == "":
			m.v2 = x.Point
		case x.FSType == "cgroup" && m.v1cpu == "" && spawn.HasOption(x.SuperOptions, "cpu"):
			m.v1cpu = x.Point
		}
	}
	return m
}

// osCgroupFS reads the real files.
func osCgroupFS() cgroupFS { return cgroupFS{readFile: os.ReadFile} }
