package spawn

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)), with the octal
// escapes of its paths undone.
type Mount struct {
	// Root is the directory of the file system mounted at Point ("/" for
	// the whole of it).
	Root, Point string
	// Options are the per-mount options ("rw,nosuid,relatime").
	Options string
	// FSType is the file system type ("cgroup2", "cgroup", "ext4").
	FSType string
	// SuperOptions are the per-superblock options (for a cgroup v1
	// hierarchy, its controllers: "rw,cpu,cpuacct").
	SuperOptions string
}

// ParseMountinfo reads the lines of a mountinfo file, skipping malformed
// ones. The cgroup code of the embedded server (session groups) and the
// PAM hook's fail-open guard (CPU quotas) both find their hierarchies here.
func ParseMountinfo(b []byte) []Mount {
	var ms []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 1 {
			continue
		}
		m := Mount{Root: unescapeMount(f[3]), Point: unescapeMount(f[4]), Options: f[5], FSType: g[0]}
		if len(g) >= 3 {
			m.SuperOptions = g[2]
		}
		ms = append(ms, m)
	}
	return ms
}

// HasOption reports whether the comma-separated list opts holds o.
func HasOption(opts, o string) bool {
	return strings.Contains(","+opts+",", ","+o+",")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
