package spawn

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// AssertPrivilegesDropped checks, from /proc/PID/status, that process pid
// runs exactly with acct's credentials: real, effective, saved and
// filesystem uid equal acct.UID, the four gids equal acct.GID, and the
// supplementary group set equals acct.Groups. The server calls it right
// after starting a session process and kills the process on an error: an
// invariant check against a privilege drop that silently did not happen.
//
// It reads the state at the moment of the call: a process that has already
// exec'd a set-user-ID program (su, sudo, passwd) legitimately shows another
// effective and saved uid, so call it immediately after Start.
func AssertPrivilegesDropped(pid int, acct Account) error {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return fmt.Errorf("spawn: privilege check of pid %d: %w", pid, err)
	}
	fields := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && (name == "Uid" || name == "Gid" || name == "Groups") {
			fields[name] = strings.Fields(rest)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("spawn: privilege check of pid %d: %w", pid, err)
	}
	for _, id := range []struct {
		name string
		want uint32
	}{{"Uid", acct.UID}, {"Gid", acct.GID}} {
		got, err := parseIDs(fields[id.name])
		if err != nil || len(got) != 4 {
			return fmt.Errorf("spawn: privilege check of pid %d: cannot parse %s line %q", pid, id.name, fields[id.name])
		}
		for _, g := range got {
			if g != id.want {
				return fmt.Errorf("spawn: privilege check of pid %d failed: %s (real, effective, saved, fs) = %v, want all %d", pid, id.name, got, id.want)
			}
		}
	}
	if _, ok := fields["Groups"]; !ok {
		return fmt.Errorf("spawn: privilege check of pid %d: no Groups line", pid)
	}
	got, err := parseIDs(fields["Groups"])
	if err != nil {
		return fmt.Errorf("spawn: privilege check of pid %d: cannot parse Groups line: %w", pid, err)
	}
	want := slices.Clone(acct.Groups)
	slices.Sort(got)
	slices.Sort(want)
	got, want = slices.Compact(got), slices.Compact(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("spawn: privilege check of pid %d failed: groups %v, want %v", pid, got, want)
	}
	return nil
}

func parseIDs(fields []string) ([]uint32, error) {
	ids := make([]uint32, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}
