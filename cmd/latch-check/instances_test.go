package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestInstancesRealSSHD (issue 17, one latch per server): two servers, each
// a real sshd with the shipped PAM hook and its own latch.toml with
// [latch] instance = "host", share one Latch application and one person's
// account. The first pairs with the real `latch-ssh pair`; the second gets
// the account line copied (as configuration management would) and its own
// instance from `latch-ssh pair --repair`, without a new code. Closing one
// server's instance in the Latch app refuses SSH logins there while the
// other server stays open; an instance Latch no longer knows goes through
// fail_mode (closed) with the repair command logged as the fix, and the
// repair command brings the server back.
func TestInstancesRealSSHD(t *testing.T) {
	systest.Require(t, "sshd", "ssh", "useradd")
	f := newFixture(t)
	latchSSH := systest.BuildBinary(t, "github.com/latch-ssh/latch-ssh/cmd/latch-ssh")
	alice := systest.CreateUser(t, systest.UserOptions{})
	logs := systest.CaptureSyslog(t)

	// server writes server name's latch.toml, alice mapped as line says,
	// in a directory of its own (each server has its own files, drop-ins
	// included).
	server := func(name, line string) string {
		if err := os.Mkdir(filepath.Join(f.Dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		text := f.ConfigText(systest.Config{Policy: `fail_mode = "closed"`})
		text = strings.Replace(text, "[policy]", "instance = \"host\"\ninstance_name = \"ssh "+name+" (%h)\"\n\n[policy]", 1)
		return f.WriteFile(t, name+"/latch.toml", text+line)
	}
	latchSSHRun := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := systest.Run(t, exec.Command(latchSSH, args...))
		if code != 0 {
			t.Fatalf("latch-ssh %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	cfg1 := server("web-1", "")
	out := latchSSHRun("pair", "-c", cfg1, "--user", alice.Name, f.Latch.IssuePairingToken(systest.AppID))
	if !strings.Contains(out, "its own instance \"ssh web-1 (") {
		t.Fatalf("pair said %q", out)
	}
	c1, err := users.Load(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := c1.Account(alice.Name)
	web1, ok := c1.Instance(alice.Name, "")
	if !ok {
		t.Fatalf("no instance recorded:\n%s", readFile(t, cfg1))
	}

	cfg2 := server("web-2", alice.Name+" = \""+acc+"\"\n")
	out = latchSSHRun("pair", "--repair", "-c", cfg2)
	if !strings.Contains(out, alice.Name+": created instance \"ssh web-2 (") {
		t.Fatalf("pair --repair said %q", out)
	}
	c2, err := users.Load(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	web2, _ := c2.Instance(alice.Name, "")
	if web2 == "" || web2 == web1 {
		t.Fatalf("web-2's instance %q (web-1's %q)", web2, web1)
	}

	sshd1 := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, PAM: systest.PAMStack(recipe(t, "sshd", f.bin, cfg1))})
	sshd2 := systest.StartSSHD(t, systest.SSHDOptions{UsePAM: true, PAM: systest.PAMStack(recipe(t, "sshd", f.bin, cfg2))})
	login := func(s *systest.SSHD) int {
		t.Helper()
		_, _, code := systest.Run(t, s.SSH(t, alice, "exit 7"))
		return code
	}
	if a, b := login(sshd1), login(sshd2); a != 7 || b != 7 {
		t.Fatalf("both instances open: exits %d, %d; want 7, 7", a, b)
	}
	// The person closes web-1 in the Latch app.
	f.Latch.SetLatch(acc, web1, false)
	if a, b := login(sshd1), login(sshd2); a != 255 || b != 7 {
		t.Fatalf("web-1's instance closed: exits %d (web-1), %d (web-2); want 255, 7", a, b)
	}
	// The whole latch closed closes both.
	f.Latch.SetLatch(acc, web1, true)
	f.SetLatch(acc, false)
	if a, b := login(sshd1), login(sshd2); a != 255 || b != 255 {
		t.Fatalf("the application latch closed: exits %d, %d; want 255, 255", a, b)
	}
	f.SetLatch(acc, true)

	// web-2's instance removed at Latch: fail_mode (closed), with the fix.
	f.Latch.RemoveInstance(web2)
	if a, b := login(sshd1), login(sshd2); a != 7 || b != 255 {
		t.Fatalf("web-2's instance unknown to Latch: exits %d, %d; want 7, 255", a, b)
	}
	line := logs.WaitFor(t, func(l systest.SyslogLine) bool {
		return decisionFor(alice.Name, "deny")(l) && strings.Contains(l.Message, `"fail_mode_applied":true`) &&
			strings.Contains(l.Message, "latch-ssh pair --repair --user "+alice.Name) && strings.Contains(l.Message, web2)
	}, 5*time.Second)
	assertAuditFields(t, line.Message, alice.Name)
	out = latchSSHRun("pair", "--repair", "--user", alice.Name, "-c", cfg2)
	if !strings.Contains(out, "created instance") {
		t.Fatalf("second repair said %q", out)
	}
	if b := login(sshd2); b != 7 {
		t.Fatalf("after the repair: exit %d, want 7", b)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
