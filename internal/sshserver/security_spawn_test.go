package sshserver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// TestSecuritySubsystemThroughLoginShell (issue 12, item 1): the sftp
// subsystem, like every command, runs through the account's login shell
// (`shell -c sftp-server`), as OpenSSH's do_child runs it. An account whose
// shell is nologin or git-shell therefore gets no file access over SFTP
// (before the fix the embedded server ran sftp-server directly, and a
// git-shell account could plant ~/git-shell-commands/x and then run it).
// Every case is also run against a real sshd with the same user, and both
// servers must agree; a bash user keeps sftp on both, so the test can tell
// "sftp refused" from "sftp broken".
func TestSecuritySubsystemThroughLoginShell(t *testing.T) {
	systest.Require(t, "ssh", "sftp", "sshd", "/usr/lib/openssh/sftp-server", "/usr/sbin/nologin")
	f := newFixture(t)
	f.start(t, nil)
	sshd := systest.StartSSHD(t, systest.SSHDOptions{})
	src := filepath.Join(systest.SecureDir(t), "payload")
	if err := os.WriteFile(src, []byte("#!/bin/sh\ntouch \"$HOME/pwned\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	targets := []struct {
		name string
		tgt  *systest.Target
	}{{"embedded", &f.target}, {"sshd", &sshd.Target}}

	// sftpWrites runs an sftp session that writes rel under u's home, and
	// reports whether sftp succeeded and whether the file appeared.
	sftpWrites := func(t *testing.T, tgt *systest.Target, u *systest.User, rel string) (ok, written bool, stderr string) {
		t.Helper()
		path := filepath.Join(u.Home, rel)
		_ = os.Remove(path)
		batch := fmt.Sprintf("-mkdir %s\nput %s %s\n", filepath.Dir(rel), src, rel)
		_, stderr, code := systest.Run(t, tgt.SFTP(t, u, batch))
		_, err := os.Stat(path)
		return code == 0, err == nil, stderr
	}

	t.Run("bash keeps sftp", func(t *testing.T) {
		u, _ := f.user(t, systest.UserOptions{})
		f.setCore(t)
		for _, tg := range targets {
			if ok, written, stderr := sftpWrites(t, tg.tgt, u, "dir/file"); !ok || !written {
				t.Errorf("%s: sftp ok=%v, file written=%v; want both (stderr %q)", tg.name, ok, written, stderr)
			}
		}
	})

	restricted := []struct{ shell, rel string }{
		{"/usr/sbin/nologin", "dir/file"},
		{"git-shell", "git-shell-commands/x"},
	}
	for _, r := range restricted {
		t.Run(filepath.Base(r.shell), func(t *testing.T) {
			shell := systest.Require(t, r.shell)[r.shell]
			u, _ := f.user(t, systest.UserOptions{Shell: shell})
			f.setCore(t)
			for _, tg := range targets {
				ok, written, stderr := sftpWrites(t, tg.tgt, u, r.rel)
				if ok || written {
					t.Errorf("%s: shell %s: sftp ok=%v, file written=%v; want neither (stderr %q)", tg.name, shell, ok, written, stderr)
				}
				// A command is refused by the shell too (git-shell would run a
				// planted ~/git-shell-commands/x here).
				_, _, _ = systest.Run(t, tg.tgt.SSH(t, u, "x"))
				_, _, _ = systest.Run(t, tg.tgt.SSH(t, u, "touch pwned"))
				if _, err := os.Stat(filepath.Join(u.Home, "pwned")); err == nil {
					t.Errorf("%s: shell %s: a command ran", tg.name, shell)
				}
			}
		})
	}
}
