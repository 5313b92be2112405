package sessions_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// suStack is /etc/pam.d/su for the test: root needs no password
// (pam_rootok, as in Debian's file), then the hook's lines exactly as
// packaging/pam/su ships them, pointed at the binary under test.
func (f *fixture) suStack(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../packaging/pam/su")
	if err != nil {
		t.Fatal(err)
	}
	var hook []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "account ") || strings.HasPrefix(l, "session ") {
			hook = append(hook, strings.ReplaceAll(l, "/usr/sbin/latch-check", f.check+" -c "+f.cfgPath))
		}
	}
	if len(hook) != 2 {
		t.Fatalf("packaging/pam/su has %d hook lines, want the account and the session line", len(hook))
	}
	return "auth     sufficient pam_rootok.so\nauth     required pam_deny.so\n" +
		hook[0] + "\naccount  required pam_unix.so\n" +
		hook[1] + "\nsession  required pam_permit.so\n"
}

// su, the real one, with its PAM file swapped for the test's in a private
// mount namespace (the machine's /etc/pam.d/su is never touched): its
// session is tracked (the anchor is the su process, the PAM hook's
// caller), and closing the latch of the "su" service ends su and the
// shell it started, within recheck + 2 s. su forwards the SIGTERM to its
// child, as man latch-ssh says.
func TestSuSessionEndsWhenLatchCloses(t *testing.T) {
	systest.Require(t, "su", "unshare", "mount")
	f := newFixture(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	acc := f.Pair()
	f.Latch.AddOperation(systest.AppID, op1, "")
	f.writeConfig(t, "", map[string]string{"su": op1}, map[string]string{alice.Name: acc})
	f.startDaemon(t)
	stack := filepath.Join(f.Dir, "pam-su")
	if err := os.WriteFile(stack, []byte(f.suStack(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	const marker = "sleep 61"
	su := start(t, "su alice -c 'sleep 61'", exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/pam.d/su && exec su -s /bin/sh "$2" -c "`+marker+`"`, "sh", stack, alice.Name))
	f.waitTracked(t, alice.Name, 1)
	if s := f.sessionsOf(t, alice.Name)[0]; s.Service != "su" || s.FrontEnd != "pam" {
		t.Errorf("tracked %+v, want the pam front end on service su", s)
	}
	var child int
	systest.WaitFor(t, "su's command", 10*time.Second, func() bool { child = findProc(alice.UID, marker); return child != 0 || !su.running() })
	if !su.running() {
		t.Fatalf("su ended before the latch closed: %s", su.out.String())
	}

	closed := time.Now()
	f.Latch.SetLatch(acc, op1, false)
	waitEnded(t, "pam (su)", closed, recheck+2*time.Second, su)
	systest.WaitFor(t, "su's command to end", 5*time.Second, func() bool { return !alive(child) })
	f.waitTracked(t, alice.Name, 0)
}
