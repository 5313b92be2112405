package forcecmd

// The ForceCommand gate against its own users (issue 8): each test is one
// attack, named after it, with what would happen without the defence it
// proves.

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestAttackImpostorDaemon: a local user (bob) controls the directory of
// the gate socket, binds the socket path himself and answers "allow" to
// everything. Without the gate checking, by SO_PEERCRED, that the answer
// comes from root (or from its own user), every gated user's login would
// be allowed by bob's program whatever their latch; with it, alice's gate
// refuses before sending anything. (The daemon refuses to start in such a
// directory: gate's TestAttackSocketDirectoryTakenByUser.)
func TestAttackImpostorDaemon(t *testing.T) {
	systest.Require(t)
	alice := systest.CreateUser(t, systest.UserOptions{})
	bob := systest.CreateUser(t, systest.UserOptions{})
	dir := filepath.Join(systest.SecureDir(t), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, bob.UID, bob.GID); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "gate.sock")
	bin := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh", "-ldflags", paths.LinkFlag(sock))
	impostor := systest.BuildBinary(t, "./testdata/impostor")

	cmd := bob.Command(impostor, sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("impostor: %q, %v", line, err)
	}

	gateAs := func(u *systest.User) (string, string, int) {
		marker := filepath.Join(u.Home, "impostor-marker")
		c := u.Command(bin)
		c.Env = append(c.Env, "SSH_ORIGINAL_COMMAND=touch "+marker+"; echo RAN")
		stdout, stderr, code := run(t, c)
		if code == 0 != exists(marker) {
			t.Fatalf("exit %d but the command ran = %v", code, exists(marker))
		}
		return stdout, stderr, code
	}
	// Control: bob's own gate believes bob's program (it is his own
	// process that answers), so the impostor does say "allow".
	if stdout, stderr, code := gateAs(bob); code != 0 || stdout != "RAN\n" {
		t.Fatalf("control, bob's own gate: exit %d, %q, %q", code, stdout, stderr)
	}
	stdout, stderr, code := gateAs(alice)
	wantRefused(t, stdout, stderr, code, denyLine)
}

// TestAttackOriginalCommandMetacharacters: the command a client asks for
// arrives in SSH_ORIGINAL_COMMAND with the shell syntax the person typed:
// separators, substitutions, quotes, globs, redirections, newlines, and a
// fake internal-sftp. Without handing it to the user's shell exactly as
// sshd would (`shell -c "$SSH_ORIGINAL_COMMAND"`, no splitting, quoting or
// second interpretation), the gate would run something other than what
// was asked (a command split into words, a substitution run twice, a
// "internal-sftp; ..." taken for SFTP); with it a gated login gives the
// same output, errors and exit status as an ungated one on the same sshd.
func TestAttackOriginalCommandMetacharacters(t *testing.T) {
	g := newGateFixture(t)
	a := systest.StartSSHD(t, systest.SSHDOptions{SFTP: "internal-sftp", Extra: snippet(t, g.bin, g.group)})
	commands := []string{
		`echo a; echo b`,
		`echo a && false || echo "b  c"; exit 3`,
		`printf '%s|' $(echo x y) "q'q" 'd"d' \$HOME`,
		"echo `echo back` $((6*7))",
		"echo one\necho two\n",
		`cd /etc && echo host*`,
		`echo data > f1 && cat < f1 && rm f1; ls f1`,
		`echo out; echo err >&2; exit 255`,
		`internal-sftp; echo not sftp`,
		`internal-sftpx`,
		`a='$(touch pwned)'; echo "$a"; ls pwned`,
		`set -- "x y" z; echo $#`,
	}
	for _, c := range commands {
		gOut, gErr, gCode := run(t, a.SSH(t, g.u, c))
		pOut, pErr, pCode := run(t, a.SSH(t, g.plain, c))
		if gOut != pOut || gErr != pErr || gCode != pCode {
			t.Errorf("%q:\ngated:   exit %d, %q, %q\nungated: exit %d, %q, %q", c, gCode, gOut, gErr, pCode, pOut, pErr)
		}
		if exists(filepath.Join(g.u.Home, "pwned")) {
			t.Fatalf("%q: a quoted substitution ran", c)
		}
	}
	// The gate passes the command on untouched: the shell sees in
	// SSH_ORIGINAL_COMMAND exactly what the client sent.
	const probe = `printf %s "$SSH_ORIGINAL_COMMAND" # $(x) ;'"` + "`\\"
	if out, _, code := run(t, a.SSH(t, g.u, probe)); code != 0 || out != probe {
		t.Errorf("SSH_ORIGINAL_COMMAND in the session: %q, want %q", out, probe)
	}
}
