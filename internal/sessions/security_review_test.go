package sessions_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/procfs"
	"github.com/latch-ssh/latch-ssh/internal/systest"

	"github.com/latch-ssh/latch-ssh/internal/sessions/sessionstest"
)

// TestSecuritySudoSessionKeepsInvokersLatch: sudo runs the account stack
// with PAM_USER = the invoking user (the one who authenticated) and, before
// pam_open_session, sets PAM_USER to the target user (sudo's pam.c,
// sudo_pam_begin_session: "Update PAM_USER to reference the user we are
// running the command as"). Both registrations name the same anchor (the
// sudo process) and service. The second must not replace the first: the
// sudo session of u1001 stays under u1001's latch, so closing it ends the
// `sudo -s` shell, whoever the target (root, unpaired here) is.
func TestSecuritySudoSessionKeepsInvokersLatch(t *testing.T) {
	w := newWorld(t, "", 1)
	tr := newTree()
	tk, _ := newTracker(t, tr, "")
	login(tr, 1000, 1001) // u1001's ssh login; its shell is 1003
	tr.Add(sessionstest.Proc{PID: 2000, PPID: 1003, UID: 0, Exe: "sudo"})
	tr.Add(sessionstest.Proc{PID: 2001, PPID: 2000, UID: 0, Exe: "bash"})
	// account phase: PAM_USER = the invoking user.
	if err := tk.RegisterHook(hook(tr, 2009, 2000), "u1001", "sudo", ""); err != nil {
		t.Fatal(err)
	}
	tr.Remove(2009)
	// open_session: PAM_USER = the target user.
	if err := tk.RegisterHook(hook(tr, 2008, 2000), "root", "sudo", ""); err != nil {
		t.Fatal(err)
	}
	tr.Remove(2008)
	w.SetLatch(w.accounts["u1001"], false)
	tk.Recheck(context.Background(), w.core)
	if tr.Alive(2000) || tr.Alive(2001) {
		t.Fatalf("u1001's latch is closed but its sudo session (pid 2000) was not ended: tracked %+v", tk.List())
	}
}

// TestSecuritySuKilledByInvokerStillEnds: su is setuid root but keeps the
// invoking user's real uid, so that user may SIGKILL it (kill(2) checks the
// target's real uid). The shell su started then runs on, re-parented to
// init, while the tracker forgets the session because its anchor (su) is
// gone: closing the target user's latch no longer ends it.
//
// Open finding (review16), not fixed: tracking the login's processes once
// su is gone needs the processes su started, which the daemon only learns
// after the fact (a cgroup per session, or the proc connector's fork
// events, would hold them). Remove the skip with the fix; today the test
// fails with "timed out after 4s waiting for alice's su command to end
// after her latch closed".
func TestSecuritySuKilledByInvokerStillEnds(t *testing.T) {
	t.Skip("open finding: the invoker of su can kill su and keep the su session past a closed latch (see the comment)")
	systest.Require(t, "su", "unshare", "mount", "setpriv")
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	bob := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	f.Latch.AddOperation(systest.AppID, op1, "")
	f.writeConfig(t, "", map[string]string{"su": op1}, map[string]string{alice.Name: acc})
	f.startDaemon(t)
	// bob knows alice's password: the test's stack lets him through auth.
	stack := filepath.Join(f.Dir, "pam-su")
	if err := os.WriteFile(stack, []byte(strings.Replace(f.suStack(t), "auth     sufficient pam_rootok.so\nauth     required pam_deny.so\n", "auth     required pam_permit.so\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	const marker = "sleep 62"
	as := func(u *systest.User) string {
		return "setpriv --reuid=" + strconv.Itoa(u.UID) + " --regid=" + strconv.Itoa(u.GID) + " --clear-groups "
	}
	su := start(t, "su by bob", exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/pam.d/su && exec `+as(bob)+` su -s /bin/sh "$2" -c "`+marker+`"`, "sh", stack, alice.Name))
	f.waitTracked(t, alice.Name, 1)
	var child int
	systest.WaitFor(t, "su's command", 10*time.Second, func() bool { child = findProc(alice.UID, marker); return child != 0 || !su.running() })
	if child == 0 {
		t.Fatalf("su ended: %s", su.out.String())
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	anchor := child
	for anchor > 1 && procfs.ExeBase(anchor) != "su" {
		st, err := procfs.ReadStat(anchor)
		if err != nil {
			t.Fatal(err)
		}
		anchor = st.PPID
	}
	if out, err := exec.Command("sh", "-c", as(bob)+"kill -9 "+strconv.Itoa(anchor)).CombinedOutput(); err != nil {
		t.Fatalf("bob cannot kill su (pid %d): %v %s", anchor, err, out)
	}
	// (su's client stays "running": the shell still holds its output.)
	systest.WaitFor(t, "su to end", 5*time.Second, func() bool { return !alive(anchor) })

	f.Latch.SetLatch(acc, op1, false)
	systest.WaitFor(t, "alice's su command to end after her latch closed", recheck+3*time.Second, func() bool { return !alive(child) })
}

// TestSecurityEndUserAfterLogout: with end = "user", a process the intruder
// detached (setsid nohup) and left behind when logging out dies when the
// owner closes the latch later. Before (review16's finding), the session
// was forgotten at logout (its anchor ended), no round asked Latch about
// the user again, and the detached process ran on: "u1001's detached
// process survived her closed latch". Now (user, service) lingers while
// the uid has processes (linger.go). The real-sshd version is
// TestSecurityEndUserAfterLogoutRealSSHD.
func TestSecurityEndUserAfterLogout(t *testing.T) {

	w := newWorld(t, `end = "user"`, 1)
	tr := newTree()
	tk, _ := newTracker(t, tr, "")
	login(tr, 1000, 1001)
	if err := tk.RegisterHook(hook(tr, 1009, 1000), "u1001", "sshd", ""); err != nil {
		t.Fatal(err)
	}
	tr.Remove(1009)
	// setsid nohup: re-parented to init, its own session.
	tr.Add(sessionstest.Proc{PID: 1500, PPID: 1, UID: 1001, Exe: "nc", SID: 1500, PGRP: 1500})
	// The intruder logs out: the monitor, its child and the shell end.
	for _, pid := range []int{1003, 1002, 1001, 1000} {
		tr.Remove(pid)
	}
	tk.Recheck(context.Background(), w.core)
	w.SetLatch(w.accounts["u1001"], false)
	tk.Recheck(context.Background(), w.core)
	if tr.Alive(1500) {
		t.Fatal("u1001's detached process survived her closed latch")
	}
}
