package forcecmd

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecurityGateLoginShellAndFDs checks the ForceCommand gate for the
// classes of issue 12, items 1 and 12, which the embedded server had; the
// gate already holds, and this keeps it so.
//
// Item 1 (subsystems bypassing the login shell): the gate maps sshd's
// internal-sftp to sftp-server exec'd directly, as sshd runs internal-sftp
// in-process without the shell. That is safe only because sshd runs
// ForceCommand itself through the login shell (`shell -c /usr/bin/latch-ssh`,
// do_child), so a nologin or git-shell account never reaches the gate:
// here such accounts, gated, get no SFTP, while a bash account does.
//
// Item 12 (inherited descriptors): the shell the gate execs holds only 0, 1
// and 2; the gate's own descriptors (the daemon socket, syslog) are
// close-on-exec.
func TestSecurityGateLoginShellAndFDs(t *testing.T) {
	g := newGateFixture(t)
	tools := systest.Require(t, "/usr/sbin/nologin", "git-shell")
	var restricted []*systest.User
	for _, sh := range []string{tools["/usr/sbin/nologin"], tools["git-shell"]} {
		restricted = append(restricted, systest.CreateUser(t, systest.UserOptions{Shell: sh, Groups: []string{g.group}}))
	}
	g.d.useConfig(t, g.config(t, `fail_mode = "closed"`, g.u.Name, restricted[0].Name, restricted[1].Name))
	s := systest.StartSSHD(t, systest.SSHDOptions{SFTP: "internal-sftp", Extra: snippet(t, g.bin, g.group)})
	local := t.TempDir()
	src := filepath.Join(local, "src")
	randomFile(t, src, 1<<10)

	t.Run("bash keeps sftp", func(t *testing.T) { testSFTP(t, s, g.u, local) })
	for _, u := range restricted {
		t.Run("no sftp for "+u.Name, func(t *testing.T) {
			out, errOut, code := run(t, s.SFTP(t, u, "-mkdir git-shell-commands\nput "+src+" git-shell-commands/x\n"))
			if code == 0 || exists(filepath.Join(u.Home, "git-shell-commands", "x")) {
				t.Fatalf("sftp as a restricted account: exit %d, file written %v; %s%s", code,
					exists(filepath.Join(u.Home, "git-shell-commands", "x")), out, errOut)
			}
		})
	}
	t.Run("the shell holds 0, 1, 2 only", func(t *testing.T) {
		out, errOut, code := run(t, s.SSH(t, g.u, "ls -l /proc/$$/fd; exit 0"))
		if code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		var fds []int
		for _, m := range regexp.MustCompile(`(?m)\s(\d+) -> `).FindAllStringSubmatch(out, -1) {
			n, _ := strconv.Atoi(m[1])
			fds = append(fds, n)
		}
		slices.Sort(fds)
		if !slices.Equal(fds, []int{0, 1, 2}) {
			t.Errorf("the shell the gate started holds %v, want 0, 1, 2:\n%s", fds, out)
		}
	})
}
