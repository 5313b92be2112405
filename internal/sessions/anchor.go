package sessions

import (
	"fmt"
)

// The anchor of a session is the process that stands for the login: the
// one whose end ends the connection, and the root of the processes the
// login started. It is
//
//   - for the PAM hook, pam_exec's caller (latch-check's parent): under
//     OpenSSH that is the per-connection privileged monitor, "sshd: USER
//     [priv]", which runs the account and session stacks (checked with
//     OpenSSH 9.2: account, open_session and close_session all run there,
//     for `ssh -N` too); under su, sudo, login or runuser the program
//     itself.
//   - for the ForceCommand gate, that same monitor, found by walking up
//     from the gate through processes of the gate's own uid to the user's
//     post-authentication sshd, whose parent it is.
//
// Signalling the monitor is how OpenSSH itself is told to stop: its
// SIGTERM handler (monitor.c, monitor_child_handler) forwards the signal
// to the post-authentication child, which exits and closes the connection
// in order; the monitor then closes the PAM session and exits.
//
// Only processes that are one login each may be anchors: signalling a
// shared one (the sshd listener, pid 1, the daemon) would end everybody's
// logins. So an anchor must be one of perLogin's programs and, for sshd, a
// root process whose parent is an sshd too (the listener is not: its
// parent is init or a service manager). The daemon itself and its
// ancestors are never anchors.

// perLogin reports whether exe (a base name) is a program whose process
// stands for one login.
func perLogin(exe string) bool {
	switch exe {
	case "sshd", "sshd-session", "su", "sudo", "login", "runuser":
		return true
	}
	return false
}

// isSSHD reports whether exe is OpenSSH's server (sshd-session is the
// per-connection binary of OpenSSH 9.8 and later).
func isSSHD(exe string) bool { return exe == "sshd" || exe == "sshd-session" }

// anchor is a validated anchor.
type anchor struct {
	id  ProcID
	exe string
	// listener is the sshd that accepted the connection (sshd anchors).
	listener ProcID
}

// maxWalk bounds the walk from the gate to its sshd: a login shell, a
// `sh -c` or two, never dozens.
const maxWalk = 16

// checkAnchor validates pid as an anchor.
func (t *Tracker) checkAnchor(pid int) (anchor, error) {
	if pid <= 1 || pid == t.self {
		return anchor{}, fmt.Errorf("pid %d cannot stand for a login", pid)
	}
	for _, a := range t.ancestors(t.self) {
		if a == pid {
			return anchor{}, fmt.Errorf("pid %d is an ancestor of the daemon", pid)
		}
	}
	st, err := t.proc.Stat(pid)
	if err != nil || st.Dead() {
		return anchor{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	exe := t.proc.Exe(pid)
	if !perLogin(exe) {
		return anchor{}, fmt.Errorf("pid %d runs %q, which is not one login (sshd, sshd-session, su, sudo, login, runuser)", pid, exe)
	}
	a := anchor{id: ProcID{PID: pid, Start: st.Start}, exe: exe}
	if !isSSHD(exe) {
		return a, nil
	}
	if uid, err := t.proc.UID(pid); err != nil || uid != 0 {
		return anchor{}, fmt.Errorf("sshd pid %d is not root's: not the per-connection monitor", pid)
	}
	pst, err := t.proc.Stat(st.PPID)
	if err != nil || st.PPID <= 1 || !isSSHD(t.proc.Exe(st.PPID)) {
		// The listener itself, or an sshd started by inetd or systemd
		// per connection (sshd -i), whose parent is shared: not
		// supported, never signalled.
		return anchor{}, fmt.Errorf("sshd pid %d is not a per-connection process (its parent %d is not an sshd)", pid, st.PPID)
	}
	a.listener = ProcID{PID: st.PPID, Start: pst.Start}
	// Read again: had the anchor ended and its pid been reused while we
	// looked, the start time would differ.
	if again, err := t.proc.Stat(pid); err != nil || again.Start != st.Start || again.PPID != st.PPID {
		return anchor{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return a, nil
}

// hookAnchor is the anchor of the PAM hook whose process is peer: its
// parent, pam_exec's caller.
func (t *Tracker) hookAnchor(peer int) (anchor, error) {
	st, err := t.proc.Stat(peer)
	if err != nil || st.Dead() {
		return anchor{}, fmt.Errorf("the hook's process %d: %w", peer, ErrGone)
	}
	return t.checkAnchor(st.PPID)
}

// gateAnchor is the anchor of the ForceCommand gate whose process is peer,
// running as uid: up through processes of uid only (the gate, a `sh -c`,
// a login shell) to the first sshd, which must be uid's too (OpenSSH's
// post-authentication child runs as the user), and whose parent is the
// anchor. A caller can thus only register a login it descends from.
func (t *Tracker) gateAnchor(peer int, uid int) (anchor, error) {
	pid := peer
	for range maxWalk {
		st, err := t.proc.Stat(pid)
		if err != nil || st.Dead() {
			return anchor{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		if u, err := t.proc.UID(pid); err != nil || u != uid {
			return anchor{}, fmt.Errorf("pid %d on the way to sshd is not uid %d's (uid %d)", pid, uid, u)
		}
		if isSSHD(t.proc.Exe(pid)) {
			a, err := t.checkAnchor(st.PPID)
			if err != nil {
				return anchor{}, err
			}
			if !isSSHD(a.exe) {
				return anchor{}, fmt.Errorf("the parent of sshd pid %d is not an sshd monitor", pid)
			}
			// The post-authentication sshd still has that parent.
			if again, err := t.proc.Stat(pid); err != nil || again.Start != st.Start || again.PPID != st.PPID {
				return anchor{}, fmt.Errorf("pid %d: %w", pid, ErrGone)
			}
			return a, nil
		}
		if st.PPID <= 1 {
			return anchor{}, fmt.Errorf("pid %d does not descend from an sshd login", peer)
		}
		pid = st.PPID
	}
	return anchor{}, fmt.Errorf("pid %d: no sshd within %d ancestors", peer, maxWalk)
}

// ancestors lists pid's ancestors (pid itself included), up to pid 1.
func (t *Tracker) ancestors(pid int) []int {
	var out []int
	for range 64 {
		if pid <= 1 {
			break
		}
		out = append(out, pid)
		st, err := t.proc.Stat(pid)
		if err != nil {
			break
		}
		pid = st.PPID
	}
	return out
}
