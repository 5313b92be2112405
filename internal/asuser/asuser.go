// Package asuser runs small pieces of the root daemon's work with a user's
// credentials, the way sshd does with temporarily_use_uid and in its
// unprivileged child: reading the user's authorized_keys, and creating the
// sockets of TCP forwarding. Everything the kernel checks or records on
// such an operation (file permissions, the uid that owns a socket, which is
// what iptables -m owner matches and what /proc/net/tcp shows, the right to
// bind a port below 1024) is then the user's, never root's.
//
// # How
//
// Run starts a goroutine, locks it to its OS thread (runtime.LockOSThread)
// and switches that one thread's credentials with raw per-thread system
// calls: setgroups (the user's groups), setresgid and setresuid changing
// only the effective ids (and so the file-system ids), as sshd's
// temporarily_use_uid does with setegid/seteuid. It never calls
// syscall.Setuid and friends: since Go 1.16 those change every thread of
// the process. Before running the function it checks, on that thread, that
// the effective and file-system ids and the group list are exactly the
// user's and (for a user other than root) that no effective capability is
// left. The goroutine then ends WITHOUT runtime.UnlockOSThread: the Go
// runtime terminates a thread whose locked goroutine exits, so a thread
// that was the user never runs root's code again. While the goroutine
// runs, new threads the runtime needs are cloned from its template thread,
// not from the locked one, so the user's credentials do not spread either.
//
// Two details keep the daemon out of the user's reach meanwhile:
//
//   - The real and saved uids stay root's. The kernel lets a process signal
//     (kill, tgkill) or ptrace a task whose real or saved uid is its own: a
//     thread with all three uids the user's could be sent SIGKILL by that
//     user, which kills the whole daemon.
//   - The main thread (the thread-group leader) is never switched: the Go
//     runtime parks rather than ends it when a locked goroutine exits, and
//     its credentials are the ones /proc/PID/status shows for the whole
//     process (pkill -u USER would then kill the daemon). When Run's
//     goroutine lands on the main thread, it keeps that thread busy and
//     starts another, which therefore runs elsewhere.
//
// What the user's thread still shares with the daemon: the kernel lets any
// thread read what ptrace-style checks guard in its own process (for
// example /proc/self/maps), whoever the thread is; callers that open paths
// the user chose must refuse /proc (authkeys does). And a thread whose
// effective uid is the user's may be reniced or pinned to CPUs by that
// user while it lives (setpriority, sched_setaffinity compare effective
// uids), which only slows that one short-lived thread.
//
// The function must do its credential-sensitive work synchronously on that
// goroutine: anything handed to another goroutine (a DNS lookup, the net
// package's dialer) runs on another thread, as root. That is why DialTCP,
// ListenTCP and the listener's Accept make their sockets with raw socket
// calls inside Run and only then hand the descriptor to the net package
// (net.FileConn, net.FileListener), whose poller works on any thread: the
// owner of a socket is fixed when it is created (its file credentials and
// its inode uid), not by the thread that later reads or writes it.
//
// # Why not a helper process
//
// A re-executed helper running as the user, passing descriptors back over
// SCM_RIGHTS, would isolate the user's work in another address space. Here
// the work is a few system calls on memory the daemon already owns, the
// helper would cost a fork and exec per key lookup and per forwarded
// connection, and it would need its own protocol, error paths and
// supervision. The thread is as strict about credentials (the kernel
// checks each thread's own credentials) and is checked before every use.
package asuser

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Creds are the credentials to act with: the user's uid, primary gid and
// full group list (as initgroups would set it; empty means just GID).
type Creds struct {
	UID, GID uint32
	Groups   []uint32
}

// Run runs fn on a fresh OS thread whose credentials are c, waits for it
// and returns its error. The thread is discarded afterwards. fn must be
// short and do its work on its own goroutine (see the package doc); it
// must not start goroutines that rely on the credentials.
//
// When the process is not root it cannot switch: Run then runs fn directly
// if c.UID is the process's own effective uid, and refuses otherwise.
func Run(c Creds, fn func() error) error {
	if euid := uint32(os.Geteuid()); euid != 0 {
		if c.UID != euid {
			return fmt.Errorf("asuser: running as uid %d, cannot act as uid %d", euid, c.UID)
		}
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		// Never unlocked once switched: the thread dies with this
		// goroutine.
		runtime.LockOSThread()
		done <- runLocked(c, fn)
	}()
	return <-done
}

// runLocked is Run's goroutine, locked to its thread. On the main thread it
// hands over to another goroutine, holding this thread meanwhile so that
// the other cannot land on it, and gives it back untouched.
func runLocked(c Creds, fn func() error) (err error) {
	if unix.Gettid() == unix.Getpid() {
		err = Run(c, fn)
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("asuser: panic as uid %d: %v", c.UID, r)
		}
	}()
	if err := become(c); err != nil {
		return err
	}
	return fn()
}

// groups returns the group list to set.
func (c Creds) groups() []uint32 {
	if len(c.Groups) == 0 {
		return []uint32{c.GID}
	}
	return c.Groups
}

// become switches the calling thread (locked) to c and checks the result.
func become(c Creds) error {
	gs := c.groups()
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(gs)), uintptr(unsafe.Pointer(&gs[0])), 0); e != 0 {
		return fmt.Errorf("asuser: setgroups for uid %d: %w", c.UID, e)
	}
	// -1 leaves the real and saved ids as they are (root's).
	keep := uintptr(^uint32(0))
	if _, _, e := unix.RawSyscall(sysSetresgid, keep, uintptr(c.GID), keep); e != 0 {
		return fmt.Errorf("asuser: setresgid -1 %d -1: %w", c.GID, e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, keep, uintptr(c.UID), keep); e != 0 {
		return fmt.Errorf("asuser: setresuid -1 %d -1: %w", c.UID, e)
	}
	return check(c)
}

// check verifies, on the calling thread, that the effective and
// file-system ids and the groups are c's, that the real and saved uids are
// still root's (see the package doc), and that no effective capability is
// left for a user other than root. It is the invariant the
// callers rely on; a failure means the switch did not do what it should
// (a kernel or runtime we do not understand), so nothing is done.
func check(c Creds) error {
	var r, e, s uint32
	if _, _, err := unix.RawSyscall(sysGetresuid, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s))); err != 0 {
		return fmt.Errorf("asuser: getresuid: %w", err)
	}
	// setfsuid with an invalid id (-1) changes nothing and returns the
	// current file-system id.
	fs, _, _ := unix.RawSyscall(sysSetfsuid, uintptr(^uint32(0)), 0, 0)
	if r != 0 || e != c.UID || s != 0 || uint32(fs) != c.UID {
		return fmt.Errorf("asuser: thread uids are %d/%d/%d fs %d, want 0/%d/0 fs %d", r, e, s, uint32(fs), c.UID, c.UID)
	}
	if _, _, err := unix.RawSyscall(sysGetresgid, uintptr(unsafe.Pointer(&r)), uintptr(unsafe.Pointer(&e)), uintptr(unsafe.Pointer(&s))); err != 0 {
		return fmt.Errorf("asuser: getresgid: %w", err)
	}
	fs, _, _ = unix.RawSyscall(sysSetfsgid, uintptr(^uint32(0)), 0, 0)
	if e != c.GID || uint32(fs) != c.GID {
		return fmt.Errorf("asuser: thread effective gid %d fs %d, want %d", e, uint32(fs), c.GID)
	}
	want := c.groups()
	got := make([]uint32, len(want)+1)
	n, _, err := unix.RawSyscall(sysGetgroups, uintptr(len(got)), uintptr(unsafe.Pointer(&got[0])), 0)
	if err != 0 {
		return fmt.Errorf("asuser: getgroups: %w", err)
	}
	if !sameSet(got[:n], want) {
		return fmt.Errorf("asuser: thread groups are %v, want %v", got[:n], want)
	}
	if c.UID != 0 {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fmt.Errorf("asuser: capget: %w", err)
		}
		for _, d := range data {
			if d.Effective != 0 {
				return errors.New("asuser: the thread kept capabilities after becoming the user")
			}
		}
	}
	return nil
}

func sameSet(a, b []uint32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
