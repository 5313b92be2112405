package spawn

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// AssertPrivilegesDropped checks, from /proc/PID/status, that process pid
// runs with acct's credentials: real uid acct.UID, real gid acct.GID, and
// the supplementary group set acct.Groups; the effective, saved and
// filesystem ids equal the real ones too, unless the process has already
// exec'd a set-user-ID or set-group-ID program (sudo, su, passwd) owned by
// the id it now has. The server calls it right after starting a session
// process and kills the process on an error: an invariant check against a
// privilege drop that silently did not happen.
//
// Why the exception: `ssh host sudo -n true` makes the shell exec sudo at
// once, and the check may run after that exec. A set-user-ID exec changes
// the effective and saved ids and nothing else; the real ids, which only a
// privileged process can change, still prove the drop happened.
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
	exe, exeErr := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	for _, id := range []struct {
		name string
		want uint32
		bit  os.FileMode
	}{{"Uid", acct.UID, os.ModeSetuid}, {"Gid", acct.GID, os.ModeSetgid}} {
		got, err := parseIDs(fields[id.name])
		if err != nil || len(got) != 4 {
			return fmt.Errorf("spawn: privilege check of pid %d: cannot parse %s line %q", pid, id.name, fields[id.name])
		}
		if got[0] != id.want {
			return fmt.Errorf("spawn: privilege check of pid %d failed: real %s %d, want %d", pid, strings.ToLower(id.name), got[0], id.want)
		}
		for _, g := range got[1:] {
			if g != id.want && !setIDExec(exe, exeErr, id.bit, g) {
				return fmt.Errorf("spawn: privilege check of pid %d failed: %s (real, effective, saved, fs) = %v, want all %d", pid, id.name, got, id.want)
			}
		}
	}
	if _, ok := fields["Groups"]; !ok {
		return fmt.Errorf("spawn: privilege check of pid %d: no Groups line", pid)
	}
	if exeErr == nil && exe.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		// A set-ID program (sudo, newgrp) may set its own groups.
		return nil
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

// setIDExec reports whether an id other than the session's is explained by
// the process's executable: it has the set-ID bit and is owned by that id.
func setIDExec(exe os.FileInfo, statErr error, bit os.FileMode, id uint32) bool {
	if statErr != nil || exe.Mode()&bit == 0 {
		return false
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	if bit == os.ModeSetuid {
		return st.Uid == id
	}
	return st.Gid == id
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
