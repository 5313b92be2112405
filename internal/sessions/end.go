package sessions

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/procfs"
	"github.com/latch-ssh/latch-ssh/users"
)

// Ending a session whose latch closed (end), in this order:
//
//  1. The notice: gate.ClosedNotice is written to every pseudo-terminal a
//     process of the login has as its controlling terminal, opened by path
//     as root without becoming ours and without following links, and
//     checked to be that terminal (its rdev) before writing; then
//     noticeSettle for sshd to pass it on before the connection closes.
//  2. The anchor gets SIGTERM. OpenSSH's monitor forwards it to the
//     post-authentication child, which closes the connection itself; su
//     and sudo forward it to their command (util-linux su then sends
//     SIGKILL 2 seconds later).
//  3. The login's processes (below) get SIGHUP, as OpenSSH's own hangup
//     does, and those still running after the grace get SIGKILL, the
//     anchor included.
//
// The login's processes are the anchor and its descendants, and every
// process in a session or process group that one of them leads (a
// double-forked process stays in its session). A process that detached
// itself with setsid (`setsid nohup cmd &`) is not reached, with what it
// started, as OpenSSH's hangup does not reach it; [policy] end =
// "user" reaches it, and every other process of the user's real uid
// (never for root or the daemon's own uid: that would be every service
// on the machine).
//
// For a ForceCommand session, a connection of the same uid accepted by
// the same sshd listener is part of the same (user, service) latch, so it
// ends too: that covers `ssh -N -L`, which runs no command, hence no gate.
// (The PAM hook tracks such connections itself, at account time.)
//
// Every signal goes through SystemProc.Signal: a pidfd checked against
// the start time recorded in the snapshot.

// pollEvery is how often end looks whether the processes have gone.
const pollEvery = 20 * time.Millisecond

// noticeSettle is how long the notice has to reach the client before the
// connection is told to end. Nothing on the terminal's side tells when
// sshd has read it off the master (a pseudo-terminal's output queue is
// empty as soon as the line discipline has the bytes), and sshd exits on
// SIGTERM without reading what is left; its loop reads the master within
// milliseconds, so this leaves room on a loaded machine and costs the
// ending session a fifth of a second.
const noticeSettle = 200 * time.Millisecond

// proc is one process in a snapshot.
type proc struct {
	stat procfs.Stat
	uid  int
	exe  string
}

// snapshot is the process table at one moment.
type snapshot struct {
	procs    map[int]proc
	children map[int][]int
}

// snapshot reads every process, with its real uid and executable.
func (t *Tracker) snapshot() snapshot {
	s := snapshot{procs: map[int]proc{}, children: map[int][]int{}}
	pids, err := t.proc.PIDs()
	if err != nil {
		t.log.Error().Str("event", "session-end").Str("error", err.Error()).Msg("cannot list processes")
		return s
	}
	for _, pid := range pids {
		st, err := t.proc.Stat(pid)
		if err != nil || st.Dead() {
			continue
		}
		p := proc{stat: st, exe: t.proc.Exe(pid)}
		if p.uid, err = t.proc.UID(pid); err != nil {
			continue
		}
		s.procs[pid] = p
		s.children[st.PPID] = append(s.children[st.PPID], pid)
	}
	return s
}

// has reports whether id is in the snapshot as the same process.
func (s snapshot) has(id ProcID) bool {
	p, ok := s.procs[id.PID]
	return ok && p.stat.Start == id.Start
}

func (s snapshot) id(pid int) ProcID { return ProcID{PID: pid, Start: s.procs[pid].stat.Start} }

// login is the anchor's processes: the anchor, its descendants, and the
// members of the sessions and process groups they lead, started after the
// anchor. A descendant that detached itself (a session leader whose
// parent is not one of the login programs, such as `setsid cmd` or a
// daemon's double fork) is not the login's, and neither is what it
// started: OpenSSH's own hangup does not reach it either. Empty when the
// anchor is gone.
func (s snapshot) login(anchor ProcID) []ProcID {
	if !s.has(anchor) {
		return nil
	}
	tree := map[int]bool{}
	stack := []int{anchor.PID}
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if tree[pid] {
			continue
		}
		tree[pid] = true
		for _, c := range s.children[pid] {
			if st := s.procs[c].stat; st.Session == c && !perLogin(s.procs[pid].exe) {
				continue // detached
			}
			stack = append(stack, c)
		}
	}
	led := map[int]bool{}
	for pid := range tree {
		st := s.procs[pid].stat
		if tree[st.Session] {
			led[st.Session] = true
		}
		if tree[st.PGRP] {
			led[st.PGRP] = true
		}
	}
	out := []ProcID{anchor}
	for pid, p := range s.procs {
		if pid == anchor.PID || p.stat.Start < anchor.Start {
			continue
		}
		if tree[pid] || led[p.stat.Session] || led[p.stat.PGRP] {
			out = append(out, s.id(pid))
		}
	}
	return out
}

// siblings are the other connections of uid accepted by listener: the
// sshd monitors (root sshd children of the listener) whose own child, the
// post-authentication sshd, runs as uid.
func (s snapshot) siblings(listener ProcID, uid int, except ProcID) []ProcID {
	if listener.PID <= 1 || uid < 0 || !s.has(listener) {
		return nil
	}
	var out []ProcID
	for _, m := range s.children[listener.PID] {
		mp := s.procs[m]
		if m == except.PID || mp.uid != 0 || !isSSHD(mp.exe) {
			continue
		}
		for _, c := range s.children[m] {
			if cp := s.procs[c]; cp.uid == uid && isSSHD(cp.exe) {
				out = append(out, s.id(m))
				break
			}
		}
	}
	return out
}

// endUserAllowed reports whether end = "user" may apply to uid, and why
// not.
func endUserAllowed(uid int) (bool, string) {
	switch {
	case uid < 0:
		return false, "the user's uid is unknown"
	case uid == 0:
		return false, "never every process of root"
	case uid == os.Getuid() || uid == os.Geteuid():
		return false, "never every process of the daemon's own user"
	}
	return true, ""
}

// end ends the sessions ss (of one user) as described above, and returns
// how many processes it signalled.
func (t *Tracker) end(ss []*Session, mode users.End) int {
	snap := t.snapshot()
	anchors := map[ProcID]bool{}
	targets := map[ProcID]bool{}
	uid := -1
	for _, s := range ss {
		uid = s.UID
		if !snap.has(s.Anchor) {
			continue
		}
		anchors[s.Anchor] = true
		// The sweep of sibling connections is for the gate's sessions,
		// whose uid the kernel gave; the hook tracks -N itself.
		if s.FrontEnd == FrontEndForceCommand && isSSHD(s.Exe) {
			for _, sib := range snap.siblings(s.Listener, s.UID, s.Anchor) {
				anchors[sib] = true
			}
		}
	}
	for a := range anchors {
		for _, p := range snap.login(a) {
			targets[p] = true
		}
	}
	if mode == users.EndUser {
		if ok, why := endUserAllowed(uid); !ok {
			t.log.Warn().Str("event", "session-end").Str("user", ss[0].User).Str("reason", why).
				Msg(`end = "user" not applied: ending the session's processes only`)
		} else {
			for p := range snap.ofUID(uid, t.self) {
				targets[p] = true
			}
		}
	}
	t.hangup(snap, anchors, targets)
	return len(targets)
}

// ofUID is every process whose real uid is uid, but self and init.
func (s snapshot) ofUID(uid, self int) map[ProcID]bool {
	out := map[ProcID]bool{}
	for pid, p := range s.procs {
		if p.uid == uid && pid != self && pid > 1 {
			out[s.id(pid)] = true
		}
	}
	return out
}

// hangup ends targets: the notice on their terminals, SIGTERM to the
// anchors, SIGHUP to the rest, and SIGKILL to what is left after the
// grace.
func (t *Tracker) hangup(snap snapshot, anchors, targets map[ProcID]bool) {
	// 1. The notice, on each terminal once.
	ttys := map[int]bool{}
	for p := range targets {
		if n, ok := ptsOf(snap.procs[p.PID].stat.TTY); ok && !ttys[n] {
			ttys[n] = true
			if err := writeNotice(n, snap.procs[p.PID].stat.TTY); err != nil {
				t.log.Debug().Str("event", "session-end").Int("pts", n).Str("error", err.Error()).Msg("notice not written")
			}
		}
	}
	if len(ttys) > 0 {
		settle := time.NewTimer(noticeSettle)
		<-settle.C
	}
	// 2. SIGTERM to the anchors; 3. SIGHUP to the rest.
	for a := range anchors {
		t.signal(a, syscall.SIGTERM)
	}
	for p := range targets {
		if !anchors[p] {
			t.signal(p, syscall.SIGHUP)
		}
	}
	deadline := time.Now().Add(t.grace)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		left := 0
		for p := range targets {
			if t.alive(p) {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			for p := range targets {
				t.signal(p, syscall.SIGKILL)
			}
			return
		}
		<-tick.C
	}
}

// EndUser ends every process whose real uid is uid (SIGHUP, SIGKILL after
// grace), with the notice on their terminals: [policy] end = "user" for
// the embedded server, whose own sessions end through their cgroups. It
// refuses uid 0 and the daemon's own uid.
func EndUser(uid int, grace time.Duration) (int, error) {
	if ok, why := endUserAllowed(uid); !ok {
		return 0, errors.New(why)
	}
	t := &Tracker{proc: SystemProc{}, self: os.Getpid(), grace: grace, log: zerolog.Nop()}
	snap := t.snapshot()
	targets := snap.ofUID(uid, t.self)
	t.hangup(snap, nil, targets)
	return len(targets), nil
}

func (t *Tracker) signal(id ProcID, sig syscall.Signal) {
	if err := t.proc.Signal(id, sig); err != nil && !errors.Is(err, ErrGone) {
		t.log.Warn().Str("event", "session-end").Int("pid", id.PID).Str("signal", sig.String()).Str("error", err.Error()).
			Msg("cannot signal a process of the session")
	}
}

// ptsOf is procfs.PTS.
func ptsOf(ttyNR int) (int, bool) {
	if ttyNR == 0 {
		return 0, false
	}
	return procfs.PTS(ttyNR)
}

// writeNotice writes the notice to /dev/pts/n, the terminal whose tty_nr
// is ttyNR: opened without becoming the daemon's controlling terminal,
// without blocking and without following a link, and checked to be that
// device before anything is written.
func writeNotice(n, ttyNR int) error {
	path := "/dev/pts/" + strconv.Itoa(n)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	major := uint64((ttyNR >> 8) & 0xfff)
	minor := uint64((ttyNR & 0xff) | ((ttyNR >> 12) & 0xfff00))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(uint32(major), uint32(minor)) {
		return errors.New(path + " is not the session's terminal")
	}
	if _, err := unix.Write(fd, []byte("\r\n"+gate.ClosedNotice+"\r\n")); err != nil {
		return err
	}
	return nil
}
