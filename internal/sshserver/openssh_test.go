package sshserver

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestOpenSSHClient drives the embedded server with the real OpenSSH
// client, scp and sftp.
func TestOpenSSHClient(t *testing.T) {
	systest.Require(t, "ssh", "scp", "sftp", "/usr/lib/openssh/sftp-server")
	f := newFixture(t)
	u, acc := f.user(t, systest.UserOptions{})
	f.start(t, nil)
	tgt := &f.target

	t.Run("exit status", func(t *testing.T) {
		_, stderr, code := systest.Run(t, tgt.SSH(t, u, "exit 7"))
		if code != 7 {
			t.Fatalf("exit %d, want 7; stderr %q", code, stderr)
		}
	})
	t.Run("death by a signal is exit-signal, as with sshd", func(t *testing.T) {
		// ssh gets "exit-signal TERM" and no exit status, so it exits 255,
		// as it does with sshd (TestInteropExitSignalLikeSSHD compares the
		// messages themselves; issue 13, point 4).
		_, _, code := systest.Run(t, tgt.SSH(t, u, "kill -TERM $$"))
		if code != 255 {
			t.Fatalf("exit %d, want 255", code)
		}
	})
	t.Run("login shell on a terminal", func(t *testing.T) {
		cmd := tgt.SSH(t, u, "-tt")
		cmd.Stdin = strings.NewReader("echo \"shell=$0 tty=$SSH_TTY term=$TERM\"; exit 3\n")
		cmd.Env = append(os.Environ(), "TERM=xterm-test")
		out, stderr, code := systest.Run(t, cmd)
		if code != 3 {
			t.Fatalf("exit %d, want 3; out %q stderr %q", code, out, stderr)
		}
		if !strings.Contains(out, "shell=-bash tty=/dev/pts/") || !strings.Contains(out, "term=xterm-test") {
			t.Errorf("output %q: want a login shell (-bash) on a pts with the client's TERM", out)
		}
	})
	t.Run("1 MiB through cat, byte-identical", func(t *testing.T) {
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		cmd := tgt.SSH(t, u, "cat")
		cmd.Stdin = bytes.NewReader(data)
		var out bytes.Buffer
		cmd.Stdout = &out
		_, stderr, code := systest.Run(t, cmd)
		if code != 0 || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("exit %d, %d bytes back (want %d identical); stderr %q", code, out.Len(), len(data), stderr)
		}
	})
	t.Run("stdout and stderr stay apart", func(t *testing.T) {
		out, stderr, code := systest.Run(t, tgt.SSH(t, u, "echo out; echo err >&2"))
		if code != 0 || out != "out\n" || stderr != "err\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		cmd := tgt.SSHOpts(t, u, []string{"-o", "SendEnv=LANG LC_* EVIL"}, "env")
		cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_TIME=C", "EVIL=1")
		out, _, code := systest.Run(t, cmd)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		env := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(l, "=")
			env[k] = v
		}
		want := map[string]string{"HOME": u.Home, "USER": u.Name, "LOGNAME": u.Name, "SHELL": "/bin/bash",
			"LANG": "C.UTF-8", "LC_TIME": "C", "MAIL": "/var/mail/" + u.Name}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s = %q, want %q", k, env[k], v)
			}
		}
		for _, k := range []string{"SSH_CLIENT", "SSH_CONNECTION", "PATH"} {
			if env[k] == "" {
				t.Errorf("%s missing", k)
			}
		}
		if _, ok := env["EVIL"]; ok {
			t.Error("EVIL passed from the client")
		}
	})

	dir := systest.SecureDir(t)
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	check := func(t *testing.T, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if s := sha256.Sum256(got); s != sum {
			t.Fatalf("%s: sha256 %s, want %s", path, hex.EncodeToString(s[:]), hex.EncodeToString(sum[:]))
		}
	}
	for _, proto := range []struct{ name, flag string }{{"scp (sftp protocol)", ""}, {"scp -O (legacy)", "-O"}} {
		t.Run(proto.name, func(t *testing.T) {
			remote := "up-" + strconv.Itoa(len(proto.flag)) + ".bin"
			back := filepath.Join(dir, "back-"+remote)
			for _, args := range [][]string{{src, tgt.Remote(u, remote)}, {tgt.Remote(u, remote), back}} {
				if proto.flag != "" {
					args = append([]string{proto.flag}, args...)
				}
				if _, stderr, code := systest.Run(t, tgt.SCP(t, u, args...)); code != 0 {
					t.Fatalf("scp %v: exit %d: %s", args, code, stderr)
				}
			}
			check(t, filepath.Join(u.Home, remote))
			check(t, back)
			owner(t, filepath.Join(u.Home, remote), u)
		})
	}
	t.Run("sftp", func(t *testing.T) {
		back := filepath.Join(dir, "back-sftp.bin")
		_, stderr, code := systest.Run(t, tgt.SFTP(t, u, fmt.Sprintf("put %s sftp.bin\nget sftp.bin %s\n", src, back)))
		if code != 0 {
			t.Fatalf("sftp: exit %d: %s", code, stderr)
		}
		check(t, filepath.Join(u.Home, "sftp.bin"))
		check(t, back)
		owner(t, filepath.Join(u.Home, "sftp.bin"), u)
	})
	t.Run("closed latch: BatchMode client sees the refusal", func(t *testing.T) {
		f.latch.SetLatch(acc, appID, false)
		defer f.latch.SetLatch(acc, appID, true)
		out, stderr, code := systest.Run(t, tgt.SSHOpts(t, u, []string{"-o", "LogLevel=INFO"}, "touch", "ran"))
		if code != 255 || out != "" {
			t.Fatalf("exit %d, stdout %q; want 255 and nothing", code, out)
		}
		if !strings.Contains(stderr, "latch-ssh: access denied: your latch is closed") {
			t.Errorf("stderr %q lacks the refusal", stderr)
		}
		if _, err := os.Stat(filepath.Join(u.Home, "ran")); err == nil {
			t.Error("the command ran")
		}
	})
	t.Run("one-time code through SSH_ASKPASS", func(t *testing.T) {
		f.latch.SetTwoFactor(appID, true)
		defer f.latch.SetTwoFactor(appID, false)
		codeFile := filepath.Join(dir, "code")
		askpass := filepath.Join(dir, "askpass")
		promptFile := filepath.Join(dir, "prompt")
		script := fmt.Sprintf("#!/bin/sh\nprintf '%%s' \"$1\" > %s\ncat %s\n", promptFile, codeFile)
		if err := os.WriteFile(askpass, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		// The fake is the phone: write the code it generated before the
		// prompt, as the person would read it.
		hook := func(_ string, d gate.Decision) {
			if d.Outcome == gate.AskOTP {
				tok, _ := f.latch.LastTwoFactorToken(acc, appID)
				_ = os.WriteFile(codeFile, []byte(tok+"\n"), 0o644)
			}
		}
		f.onDecision.Store(&hook)
		defer f.onDecision.Store(nil)
		cmd := tgt.SSHOpts(t, u, []string{"-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1"}, "echo", "in")
		cmd.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
		out, stderr, code := systest.Run(t, cmd)
		if code != 0 || out != "in\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		if p, _ := os.ReadFile(promptFile); !strings.Contains(string(p), OTPPrompt) {
			t.Errorf("askpass prompt %q, want %q", p, OTPPrompt)
		}
		// And a wrong code is refused, with the reason.
		if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho WRONG9\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		f.onDecision.Store(nil)
		cmd = tgt.SSHOpts(t, u, []string{"-o", "BatchMode=no", "-o", "NumberOfPasswordPrompts=1", "-o", "LogLevel=INFO"}, "echo", "in")
		cmd.Env = append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0")
		out, stderr, code = systest.Run(t, cmd)
		if code != 255 || out != "" || !strings.Contains(stderr, "wrong one-time code") {
			t.Fatalf("wrong code: exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("only publickey is offered", func(t *testing.T) {
		_, stderr, code := systest.Run(t, tgt.SSHOpts(t, u,
			[]string{"-v", "-o", "PreferredAuthentications=keyboard-interactive,password,none"}, "true"))
		if code != 255 {
			t.Fatalf("exit %d, want 255", code)
		}
		if !strings.Contains(stderr, "Authentications that can continue: publickey\n") &&
			!strings.Contains(stderr, "Authentications that can continue: publickey\r\n") {
			t.Errorf("the server offers more than publickey:\n%s", stderr)
		}
	})
}

// TestOpenSSHOfferedKeyIsNotIdentity: OpenSSH offers key A (it has only
// A's public half, so it cannot sign), the server says A would do, and the
// client then signs with B. The session is B's: B's forced command runs.
func TestOpenSSHOfferedKeyIsNotIdentity(t *testing.T) {
	systest.Require(t, "ssh")
	f := newFixture(t)
	u, _ := f.user(t, systest.UserOptions{})
	keyA := newSigner(t)
	u.WriteFile(t, ".ssh/authorized_keys",
		`command="echo A" `+string(gossh.MarshalAuthorizedKey(keyA.PublicKey()))+
			`command="echo B" `+u.AuthorizedKey, 0o600)
	f.start(t, nil)
	dir := t.TempDir()
	pubOnly := filepath.Join(dir, "a")
	if err := os.WriteFile(pubOnly+".pub", gossh.MarshalAuthorizedKey(keyA.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := f.target.SSHOpts(t, u, []string{"-i", pubOnly + ".pub", "-v"}, "whatever")
	out, stderr, code := systest.Run(t, cmd)
	if code != 0 || strings.TrimSpace(out) != "B" {
		t.Fatalf("exit %d, stdout %q, want B's forced command\n%s", code, out, stderr)
	}
	// The scenario really happened: A was offered and accepted by the
	// query, and could not be used.
	fpA := gossh.FingerprintSHA256(keyA.PublicKey())
	if !strings.Contains(stderr, "Server accepts key: "+pubOnly+".pub ED25519 "+fpA) {
		t.Errorf("the client never offered A (%s):\n%s", fpA, stderr)
	}
}

// TestPrivilegeDrop: inside a session, the ids are the user's, all of
// them, and the terminal belongs to the user.
func TestPrivilegeDrop(t *testing.T) {
	systest.Require(t, "ssh")
	f := newFixture(t)
	g1, g2 := systest.CreateGroup(t), systest.CreateGroup(t)
	u, _ := f.user(t, systest.UserOptions{Groups: []string{g1, g2}})
	f.start(t, nil)
	want := func(args ...string) string {
		out, err := exec.Command("id", append(args, u.Name)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	out, stderr, code := systest.Run(t, f.target.SSH(t, u, "id -u; id -g; id -G; cat /proc/self/status | grep -E '^(Uid|Gid):'"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("output %q", out)
	}
	if lines[0] != want("-u") || lines[1] != want("-g") {
		t.Errorf("uid/gid %q %q, want %q %q", lines[0], lines[1], want("-u"), want("-g"))
	}
	if got, w := sortedFields(lines[2]), sortedFields(want("-G")); got != w {
		t.Errorf("groups %q, want %q", got, w)
	}
	for _, l := range lines[3:] {
		ids := strings.Fields(l)[1:]
		for _, id := range ids {
			if id != strconv.Itoa(u.UID) && id != strconv.Itoa(u.GID) {
				t.Errorf("%s: not all real/effective/saved/fs ids are the user's", l)
			}
		}
	}
	out, stderr, code = systest.Run(t, f.target.SSH(t, u, "-tt", "stat -c %U $(tty)"))
	if code != 0 || strings.TrimSpace(out) != u.Name {
		t.Errorf("pts owner %q (exit %d, %s), want %s", out, code, stderr, u.Name)
	}
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	for i := range f {
		for j := i + 1; j < len(f); j++ {
			if f[j] < f[i] {
				f[i], f[j] = f[j], f[i]
			}
		}
	}
	return strings.Join(f, " ")
}

// owner checks that path belongs to u.
func owner(t *testing.T, path string, u *systest.User) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != u.UID || int(st.Gid) != u.GID {
		t.Errorf("%s belongs to %d:%d, want %d:%d", path, st.Uid, st.Gid, u.UID, u.GID)
	}
}
