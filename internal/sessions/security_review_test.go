package sessions_test

import (
	"context"
	"testing"

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
