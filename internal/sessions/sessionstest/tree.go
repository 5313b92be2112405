// Package sessionstest is a made-up process table for tests and
// benchmarks of internal/sessions: a sessions.Proc whose processes,
// parents, uids and executables the test chooses, and which records the
// signals sent instead of sending them.
package sessionstest

import (
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/latch-ssh/latch-ssh/internal/procfs"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
)

// Proc is one made-up process.
type Proc struct {
	PID, PPID, UID int
	Exe            string
	Start          uint64
	// PGRP and SID default to the pid of the parent's (0: same as PPID's
	// values, or the process's own pid when it has no parent in the tree).
	PGRP, SID, TTY int
}

// Sent is a signal the tracker sent.
type Sent struct {
	ID  sessions.ProcID
	Sig syscall.Signal
}

// Tree is a sessions.Proc over made-up processes. A process that gets
// SIGTERM, SIGHUP or SIGKILL exits at once (unless KeepOnSignal).
type Tree struct {
	mu    sync.Mutex
	procs map[int]Proc
	sent  []Sent
	// keep lists the pids that survive every signal but SIGKILL.
	keep map[int]bool
}

// New returns an empty tree.
func New() *Tree { return &Tree{procs: map[int]Proc{}, keep: map[int]bool{}} }

// Add adds p (Start 0 becomes 1000+pid).
func (t *Tree) Add(p Proc) Proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.Start == 0 {
		p.Start = 1000 + uint64(p.PID)
	}
	parent, ok := t.procs[p.PPID]
	if p.SID == 0 {
		p.SID = p.PID
		if ok {
			p.SID = parent.SID
		}
	}
	if p.PGRP == 0 {
		p.PGRP = p.PID
		if ok {
			p.PGRP = parent.PGRP
		}
	}
	t.procs[p.PID] = p
	return p
}

// Remove ends pid.
func (t *Tree) Remove(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, pid)
}

// KeepOnSignal makes pid ignore SIGTERM and SIGHUP (nohup).
func (t *Tree) KeepOnSignal(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keep[pid] = true
}

// ID is pid's ProcID.
func (t *Tree) ID(pid int) sessions.ProcID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return sessions.ProcID{PID: pid, Start: t.procs[pid].Start}
}

// Alive reports whether pid still runs.
func (t *Tree) Alive(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.procs[pid]
	return ok
}

// Sent returns the signals sent so far.
func (t *Tree) Sent() []Sent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Sent(nil), t.sent...)
}

var errNoProc = errors.New("no such process")

// Stat is the made-up /proc/PID/stat.
func (t *Tree) Stat(pid int) (procfs.Stat, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[pid]
	if !ok {
		return procfs.Stat{}, errNoProc
	}
	return procfs.Stat{PID: pid, Comm: p.Exe, State: 'S', PPID: p.PPID, PGRP: p.PGRP, Session: p.SID, TTY: p.TTY, Start: p.Start}, nil
}

// UID is the made-up real uid.
func (t *Tree) UID(pid int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[pid]
	if !ok {
		return -1, errNoProc
	}
	return p.UID, nil
}

// Exe is the made-up executable.
func (t *Tree) Exe(pid int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.procs[pid].Exe
}

// PIDs lists the made-up processes.
func (t *Tree) PIDs() ([]int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int, 0, len(t.procs))
	for pid := range t.procs {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out, nil
}

// Signal records the signal and ends the process when it names it.
func (t *Tree) Signal(id sessions.ProcID, sig syscall.Signal) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[id.PID]
	if !ok || p.Start != id.Start {
		return sessions.ErrGone
	}
	t.sent = append(t.sent, Sent{ID: id, Sig: sig})
	if sig == syscall.SIGKILL || !t.keep[id.PID] {
		delete(t.procs, id.PID)
	}
	return nil
}

// AddSSHLogin adds an OpenSSH login of uid under the sshd listener: the
// root monitor (pid base, its own session), the post-authentication sshd
// (base+1, uid), the login shell (base+2, a session of its own) and a
// command (base+3). It returns the monitor's pid.
func (t *Tree) AddSSHLogin(base, listener, uid int) int {
	t.Add(Proc{PID: base, PPID: listener, Exe: "sshd", SID: base, PGRP: base})
	t.Add(Proc{PID: base + 1, PPID: base, UID: uid, Exe: "sshd"})
	t.Add(Proc{PID: base + 2, PPID: base + 1, UID: uid, Exe: "bash", SID: base + 2, PGRP: base + 2})
	t.Add(Proc{PID: base + 3, PPID: base + 2, UID: uid, Exe: "sleep"})
	return base
}

// AddHook adds latch-check (root) as a child of parent, as pam_exec starts
// it, and returns its pid, the SO_PEERCRED pid the daemon sees.
func (t *Tree) AddHook(pid, parent int) int32 {
	t.Add(Proc{PID: pid, PPID: parent, Exe: "latch-check"})
	return int32(pid)
}
