package systest

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// UserOptions configures CreateUser. The zero value is a fine default.
type UserOptions struct {
	// Name is the login name; default "lt" plus 10 random characters.
	Name string
	// Shell is the login shell; default /bin/bash.
	Shell string
	// PlainUseradd leaves the password field as plain `useradd` writes it
	// ("!" on Debian 12: a locked password, as most real key-only users
	// have) instead of "*".
	PlainUseradd bool
	// Groups are supplementary groups, which must exist (see CreateGroup).
	Groups []string
	// KeyOptions prefixes the authorized_keys line, e.g.
	// `restrict,command="/usr/bin/latch-ssh"`.
	KeyOptions string
	// UID, when non-zero, is the account's uid even if another account
	// already has it (`useradd -o -u UID`): a second name for that account,
	// as an admin's alias or a shared LDAP uid gives it.
	UID int
}

// User is a real local account created by CreateUser, with an ed25519 key
// pair whose public half is in ~/.ssh/authorized_keys.
type User struct {
	Name     string
	UID, GID int
	Home     string
	Groups   []string // supplementary group names
	// KeyPath is the private key file for clients: OpenSSH format, owned by
	// root, mode 0600 (ssh refuses group/world-readable keys), in t.TempDir().
	KeyPath string
	// Signer is the same private key, for golang.org/x/crypto/ssh clients.
	Signer ssh.Signer
	// AuthorizedKey is the line written to ~/.ssh/authorized_keys.
	AuthorizedKey string

	gids []uint32 // primary and supplementary, for Command
}

// CreateUser creates a local user with `useradd -m`, its home directory and
// an ed25519 key pair, and deletes all of it at cleanup: it kills the user's
// leftover processes (sessions sshd left behind), then runs `userdel -r`.
//
// The password field is "*" (no password, not locked) rather than useradd's
// "!" (unless PlainUseradd): OpenSSH refuses public-key logins to
// "!"-locked accounts when UsePAM is no ("User ... not allowed because
// account is locked"); with UsePAM yes it leaves the decision to PAM, whose
// pam_unix ignores the password field for a key login. "*" works in both
// modes (checked on Debian 12).
// /home and its parents are root-owned 0755 on Debian, as StrictModes needs.
func CreateUser(t testing.TB, opts UserOptions) *User {
	t.Helper()
	tools := Require(t, "useradd", "userdel", "pkill")
	name := opts.Name
	if name == "" {
		name = randomName("lt", 10)
	}
	shell := opts.Shell
	if shell == "" {
		shell = "/bin/bash"
	}
	args := []string{"-m", "-s", shell}
	if !opts.PlainUseradd {
		args = append(args, "-p", "*")
	}
	if len(opts.Groups) > 0 {
		args = append(args, "-G", strings.Join(opts.Groups, ","))
	}
	if opts.UID != 0 {
		args = append(args, "-o", "-u", strconv.Itoa(opts.UID))
	}
	run(t, tools["useradd"], append(args, name)...)
	t.Cleanup(func() { deleteUser(t, tools, name) })

	pw, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	u := &User{Name: name, Home: pw.HomeDir, Groups: opts.Groups}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(pw.Gid)
	u.gids = []uint32{uint32(u.GID)}
	for _, g := range opts.Groups {
		gr, err := user.LookupGroup(g)
		if err != nil {
			t.Fatalf("systest: %v", err)
		}
		gid, _ := strconv.Atoi(gr.Gid)
		u.gids = append(u.gids, uint32(gid))
	}

	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	if u.Signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatalf("systest: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name+"@systest")
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	u.KeyPath = filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(u.KeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("systest: %v", err)
	}
	u.AuthorizedKey = string(ssh.MarshalAuthorizedKey(u.Signer.PublicKey()))
	if opts.KeyOptions != "" {
		u.AuthorizedKey = opts.KeyOptions + " " + u.AuthorizedKey
	}
	u.WriteFile(t, ".ssh/authorized_keys", u.AuthorizedKey, 0o600)
	return u
}

// deleteUser kills the user's processes and removes the account and home.
// userdel exits 8 while a process of the user still runs, so it retries
// (killing again) until a deadline.
func deleteUser(t testing.TB, tools Tools, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// pkill exits 1 when nothing matched: fine.
		_, _, _ = Run(t, exec.Command(tools["pkill"], "-KILL", "-u", name))
		// A missing mail spool only warns (exit 0); 6: no such user (the
		// test removed it itself); 8: a process of the user is still alive.
		stdout, stderr, code := Run(t, exec.Command(tools["userdel"], "-r", name))
		if code == 0 || code == 6 {
			return
		}
		if code == 8 {
			select {
			case <-tick.C:
				continue
			case <-ctx.Done():
			}
		}
		t.Errorf("systest: userdel -r %s: exit %d: %s%s", name, code, stdout, stderr)
		return
	}
}

// WriteFile writes data to rel inside the user's home with mode perm, owned
// by the user; missing parent directories are created 0700, owned by the user
// (the layout StrictModes accepts). Use it for ~/.ssh/rc, extra keys, etc.
func (u *User) WriteFile(t testing.TB, rel, data string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(u.Home, rel)
	if !strings.HasPrefix(p, u.Home+"/") {
		t.Fatalf("systest: %q is outside %s", rel, u.Home)
	}
	var dirs []string
	for d := filepath.Dir(p); d != u.Home; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		err := os.Mkdir(d, 0o700)
		if err == nil {
			err = os.Chown(d, u.UID, u.GID)
		} else if os.IsExist(err) {
			err = nil
		}
		if err != nil {
			t.Fatalf("systest: %v", err)
		}
	}
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatalf("systest: %v", err)
	}
	// WriteFile's mode is subject to the umask and ignored for existing files.
	if err := os.Chmod(p, perm); err != nil {
		t.Fatalf("systest: %v", err)
	}
	if err := os.Chown(p, u.UID, u.GID); err != nil {
		t.Fatalf("systest: %v", err)
	}
}

// Command returns a command that runs as the user (uid, primary and
// supplementary gids) in the home directory, with a minimal login-like
// environment. The binary must be reachable by the user (see SecureDir).
func (u *User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = u.Home
	cmd.Env = []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: u.gids}}
	return cmd
}

// CreateGroup creates a local group with a random name ("ltg" plus 9
// characters) and deletes it at cleanup; it returns the name.
func CreateGroup(t testing.TB) string {
	t.Helper()
	tools := Require(t, "groupadd", "groupdel")
	name := randomName("ltg", 9)
	run(t, tools["groupadd"], name)
	t.Cleanup(func() {
		// 6: already gone.
		if stdout, stderr, code := Run(t, exec.Command(tools["groupdel"], name)); code != 0 && code != 6 {
			t.Errorf("systest: groupdel %s: exit %d: %s%s", name, code, stdout, stderr)
		}
	})
	return name
}
