// Package procfs reads the few facts about a process that latch-ssh needs
// from /proc: its state, parent, process group, session, controlling
// terminal and start time (/proc/PID/stat), its real uid
// (/proc/PID/status) and its executable. Both the embedded server's
// session groups (internal/spawn) and the tracked OpenSSH sessions
// (internal/sessions) identify a process by pid and start time, so that a
// pid reused by another process is never taken for the one they knew.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what latch-ssh reads of /proc/PID/stat.
type Stat struct {
	PID int
	// Comm is the command name (field 2), without its parentheses.
	Comm string
	// State is field 3 ('R', 'S', 'Z', ...).
	State byte
	// PPID, PGRP, Session and TTY are fields 4 to 7; TTY is the kernel's
	// tty_nr (0: no controlling terminal).
	PPID, PGRP, Session, TTY int
	// Start is field 22, the start time in clock ticks after boot: with
	// the pid, it names one process for the life of the system.
	Start uint64
}

// Dead reports whether the process has exited (a zombie waiting for its
// parent, or being reaped).
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// ParseStat parses a /proc/PID/stat line. The command name (field 2) may
// hold spaces and parentheses, so fields are counted from its last ')'.
func ParseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if open < 0 || i < open {
		return Stat{}, errors.New("procfs: malformed /proc stat")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("procfs: malformed /proc stat: %w", err)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errors.New("procfs: short /proc stat")
	}
	var n [4]int
	var errs []error
	for k := range n {
		var err error
		n[k], err = strconv.Atoi(f[1+k])
		errs = append(errs, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(append(errs, err)...); err != nil {
		return Stat{}, fmt.Errorf("procfs: malformed /proc stat: %w", err)
	}
	return Stat{PID: pid, Comm: string(b[open+1 : i]), State: f[0][0], PPID: n[0], PGRP: n[1], Session: n[2], TTY: n[3], Start: start}, nil
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// RealUID reads the real uid of pid (the first field of the Uid: line of
// /proc/PID/status): the uid a login runs as, which a setuid program it
// starts does not change.
func RealUID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1, err
	}
	return parseRealUID(b)
}

func parseRealUID(b []byte) (int, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			uid, err := strconv.Atoi(f[0])
			if err != nil {
				return -1, fmt.Errorf("procfs: malformed Uid line: %w", err)
			}
			return uid, nil
		}
	}
	return -1, errors.New("procfs: no Uid line in /proc status")
}

// Exe is the path of pid's executable (the /proc/PID/exe link; a deleted
// file ends in " (deleted)").
func Exe(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
}

// ExeBase is the base name of pid's executable, "" when it cannot be read
// (a kernel thread, a process gone).
func ExeBase(pid int) string {
	p, err := Exe(pid)
	if err != nil {
		return ""
	}
	return filepath.Base(strings.TrimSuffix(p, " (deleted)"))
}

// PIDs lists the processes in /proc.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procfs: %w", err)
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

// PTS is the /dev/pts number of a tty_nr, and false when tty_nr is not a
// Unix98 pseudo-terminal (majors 136 to 143).
func PTS(ttyNR int) (int, bool) {
	major := (ttyNR >> 8) & 0xfff
	minor := (ttyNR & 0xff) | ((ttyNR >> 12) & 0xfff00)
	if major < 136 || major > 143 {
		return 0, false
	}
	return (major-136)<<20 | minor, true
}
