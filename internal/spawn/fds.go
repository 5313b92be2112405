package spawn

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Why this file exists (issue 12, item 12): a descriptor that the daemon
// inherited without close-on-exec (a root-owned pipe from whatever started
// it, a socket a wrapper script forgot) would be open in every session the
// daemon starts, and the person logging in could read or write it as
// their own. Go opens everything it creates close-on-exec and os/exec
// passes only Stdin, Stdout, Stderr and ExtraFiles, but it leaves
// descriptors it did not create alone: those must be marked by us. sshd
// does the same with closefrom(2) before it execs the shell.

// MarkCloseOnExec sets close-on-exec on every descriptor of this process
// above 2, so that no program it starts inherits them. The process keeps
// using them (listeners, logs, systemd's LISTEN_FDS sockets if it ever gets
// some): close-on-exec only matters at exec. Go's own descriptors are
// already close-on-exec, so marking them again is harmless, and os/exec
// clears the flag on the copies it makes for the child's 0, 1, 2 and
// ExtraFiles. The daemon calls it at start, and Start before every session.
//
// It uses close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11), and falls
// back to walking /proc/self/fd.
func MarkCloseOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// ENOSYS before Linux 5.9, EINVAL for the flag before 5.11; a seccomp
	// filter may say EPERM.
	if err := markViaProc(); err != nil {
		return fmt.Errorf("spawn: mark inherited descriptors close-on-exec: %w", err)
	}
	return nil
}

// markViaProc is MarkCloseOnExec without close_range: fcntl(F_SETFD) on
// every descriptor listed in /proc/self/fd. The directory's own descriptor
// is in the list and gets marked too, or is already closed (EBADF).
func markViaProc() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if errors.Is(err, unix.EBADF) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fcntl(%d, F_GETFD): %w", fd, err)
		}
		if flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("fcntl(%d, F_SETFD): %w", fd, err)
		}
	}
	return nil
}

// Start starts cmd (from Command) after MarkCloseOnExec, so that the
// process holds only its stdin, stdout and stderr (and cmd.ExtraFiles),
// whatever this process inherited or a C library opened since it started.
// Follow it with AssertNoInheritedFDs, which catches what could still slip
// through (a descriptor opened without close-on-exec by another thread
// between the marking and the fork).
func Start(cmd *exec.Cmd) error {
	if err := MarkCloseOnExec(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("spawn: start %s: %w", cmd.Path, err)
	}
	return nil
}

// kcmpFile is KCMP_FILE of <linux/kcmp.h>: compare two descriptors' open
// files.
const kcmpFile = 0

// AssertNoInheritedFDs checks that process pid, just started from this
// process by Start, holds none of this process's open files on a
// descriptor above 2 (what the session was given are 0, 1 and 2 only). The
// server calls it right after start, next to AssertPrivilegesDropped, and
// kills the process on an error: an invariant check against a descriptor
// that leaked into a session despite Start.
//
// A leaked descriptor keeps its number across fork and exec, so fd N of
// the child is compared with fd N of this process: kcmp(2) says whether
// both are the same open file (what inheritance means), so a file the
// program opened itself since its exec (bash reading /etc/profile) never
// counts, even if it is the same path. Where kcmp is not available
// (ENOSYS: a kernel without CONFIG_KCMP), the comparison falls back to
// device and inode, which could only err by killing a session that opened
// the very object the daemon holds on the same number. A process that has
// already exited holds nothing, and passes.
func AssertNoInheritedFDs(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		if exited(pid) {
			return nil
		}
		return fmt.Errorf("spawn: descriptor check of pid %d: %w", pid, err)
	}
	self := os.Getpid()
	var leaked []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		same, err := sameOpenFile(pid, self, fd, dir)
		if err != nil {
			return fmt.Errorf("spawn: descriptor check of pid %d, fd %d: %w", pid, fd, err)
		}
		if same {
			leaked = append(leaked, fd)
		}
	}
	if len(leaked) > 0 {
		return fmt.Errorf("spawn: descriptor check of pid %d failed: it holds this process's open files on descriptors %v, want only 0, 1, 2", pid, leaked)
	}
	return nil
}

// sameOpenFile reports whether descriptor fd of pid and fd of self are the
// same open file.
func sameOpenFile(pid, self, fd int, dir string) (bool, error) {
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(self), kcmpFile, uintptr(fd), uintptr(fd), 0)
	switch errno {
	case 0:
		return r == 0, nil
	case unix.EBADF:
		// One side has no fd: this process does not hold that number (any
		// more), or the child just closed it.
		return false, nil
	case unix.ESRCH:
		return false, nil
	case unix.ENOSYS, unix.EPERM:
		// No kcmp here: compare the objects instead.
	default:
		return false, fmt.Errorf("kcmp: %w", errno)
	}
	var mine unix.Stat_t
	if err := unix.Fstat(fd, &mine); err != nil {
		return false, nil // not open here
	}
	fi, err := os.Stat(dir + "/" + strconv.Itoa(fd))
	if err != nil {
		return false, nil // closed in the child since the listing
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, errors.New("cannot read the descriptor's inode")
	}
	return uint64(st.Dev) == uint64(mine.Dev) && st.Ino == mine.Ino, nil
}

// exited reports whether pid has exited (a zombie not yet waited for, or
// gone), from /proc/PID/stat.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses, the
	// state follows the last ") ".
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] == 'Z' || b[i+2] == 'X'
		}
	}
	return false
}
