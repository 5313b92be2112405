package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestSecurityCPUQuotaThrottled: the fail-open guard's cgroup check over
// v1 and v2 layouts (issue 12 re-check, item 4: a CPU quota is nice -n 19
// by other means).
func TestSecurityCPUQuotaThrottled(t *testing.T) {
	const mountinfo = `25 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
31 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 25 0:28 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`
	for _, tc := range []struct {
		name   string
		cgroup string
		files  map[string]string
		want   string // substring of the reason, "" for none
	}{
		{"v2 quota that throttled, on a parent", "0::/user.slice/evil.scope/sub\n",
			map[string]string{
				"/sys/fs/cgroup/unified/user.slice/evil.scope/cpu.max":  "1000 100000\n",
				"/sys/fs/cgroup/unified/user.slice/evil.scope/cpu.stat": "usage_usec 5\nnr_periods 40\nnr_throttled 12\nthrottled_usec 900\n",
			}, "throttled it 12 times"},
		{"v2 quota that never bit", "0::/user.slice/evil.scope\n",
			map[string]string{
				"/sys/fs/cgroup/unified/user.slice/evil.scope/cpu.max":  "1000 100000\n",
				"/sys/fs/cgroup/unified/user.slice/evil.scope/cpu.stat": "nr_periods 40\nnr_throttled 0\n",
			}, ""},
		{"v2 no quota, throttled counter from elsewhere", "0::/system.slice/ssh.service\n",
			map[string]string{
				"/sys/fs/cgroup/unified/system.slice/ssh.service/cpu.max":  "max 100000\n",
				"/sys/fs/cgroup/unified/system.slice/ssh.service/cpu.stat": "nr_throttled 3\n",
			}, ""},
		{"v1 cpu quota that throttled", "4:memory:/\n1:cpu:/latch-q\n0::/\n",
			map[string]string{
				"/sys/fs/cgroup/cpu/latch-q/cpu.cfs_quota_us": "5000\n",
				"/sys/fs/cgroup/cpu/latch-q/cpu.stat":         "nr_periods 9\nnr_throttled 4\nthrottled_time 123\n",
			}, "cgroup /sys/fs/cgroup/cpu/latch-q"},
		{"v1 no quota", "1:cpu:/latch-q\n",
			map[string]string{
				"/sys/fs/cgroup/cpu/latch-q/cpu.cfs_quota_us": "-1\n",
				"/sys/fs/cgroup/cpu/latch-q/cpu.stat":         "nr_throttled 4\n",
			}, ""},
		{"no cgroup files at all", "0::/\n", map[string]string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"/proc/self/cgroup": tc.cgroup, "/proc/self/mountinfo": mountinfo}
			for k, v := range tc.files {
				files[k] = v
			}
			fsys := cgroupFS{readFile: func(p string) ([]byte, error) {
				if v, ok := files[p]; ok {
					return []byte(v), nil
				}
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			}}
			got := fsys.cpuThrottled()
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("cpuThrottled() = %q, want %q", got, tc.want)
			}
		})
	}
	// Unreadable /proc: no verdict from this check (the others still run).
	if got := (cgroupFS{readFile: func(string) ([]byte, error) { return nil, errors.New("no") }}).cpuThrottled(); got != "" {
		t.Fatalf("unreadable /proc: %q", got)
	}
}
