package wiring

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is the real `sshd -T` output of Debian 12's default sshd_config,
// with the given lines ("keyword value", sshd -T style) replacing its values.
func base(t *testing.T, overrides ...string) SSHDConfig {
	t.Helper()
	data, err := os.ReadFile("testdata/sshd/debian12-default.txt")
	if err != nil {
		t.Fatal(err)
	}
	c := ParseSSHDT(data)
	for k, v := range ParseSSHDT([]byte(strings.Join(overrides, "\n"))) {
		c[k] = v
	}
	return c
}

func TestParseSSHDT(t *testing.T) {
	c := base(t)
	for k, w := range map[string]string{"usepam": "yes", "forcecommand": "none", "subsystem": "sftp /usr/lib/openssh/sftp-server", "nosuch": ""} {
		if got := c.Get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if got := c["acceptenv"]; len(got) != 2 || got[1] != "LC_*" {
		t.Errorf("acceptenv = %q", got)
	}
	if got := ParseSSHDT([]byte("UsePAM  yes \r\n\n  ")); got.Get("usepam") != "yes" || len(got) != 1 {
		t.Errorf("loose parse = %v", got)
	}
}

func TestCheckSSHD(t *testing.T) {
	const gate = "forcecommand /usr/bin/latch-ssh"
	gateOK := []string{gate, "disableforwarding yes", "permituserrc no"}
	shell := want{Warning, "", 0, "through the user's login shell"}
	for _, tc := range []struct {
		name    string
		global  []string
		perUser map[string][]string
		hook    bool
		gates   []string
		want    []want
	}{
		{"default, no hook", nil, nil, false, nil, nil},
		{"UsePAM no with the hook", []string{"usepam no"}, nil, true, nil, []want{{Error, "", 0, "sshd does not use PAM (UsePAM no)"}}},
		{"UsePAM no without the hook", []string{"usepam no"}, nil, false, nil, nil},
		{"UsePAM yes with the hook", nil, nil, true, nil, nil},
		{"kbd-interactive with the hook", []string{"kbdinteractiveauthentication yes"}, nil, true, nil, []want{{Info, "", 0, "KbdInteractiveAuthentication yes"}}},
		{"AuthenticationMethods with the hook", []string{"authenticationmethods publickey,password"}, nil, true, nil, []want{{Info, "", 0, "AuthenticationMethods publickey,password"}}},
		{"gate with defaults", []string{gate}, nil, false, nil, []want{
			{Error, "", 0, "ForceCommand does not gate forwarding: `ssh -N -L/-R/-D`"},
			{Error, "", 0, "~/.ssh/rc runs before ForceCommand"}, shell}},
		{"gate wired right", gateOK, nil, false, nil, []want{shell}},
		{"gate with arguments", []string{"forcecommand /usr/bin/latch-ssh serve", "disableforwarding yes", "permituserrc no"}, nil, false, nil, []want{{Warning, "", 0, "the gate takes none"}, shell}},
		{"forwarding off one by one", []string{gate, "permituserrc no", "allowtcpforwarding no", "allowstreamlocalforwarding no",
			"allowagentforwarding no", "x11forwarding no", "permittunnel no"}, nil, false, nil, []want{{Warning, "", 0, "option by option"}, shell}},
		{"user environment", append(gateOK, "permituserenvironment yes"), nil, false, nil, []want{{Error, "", 0, "PermitUserEnvironment"}, shell}},
		{"AcceptEnv *", append(gateOK, "acceptenv LANG", "acceptenv *"), nil, false, nil, []want{{Error, "", 0, "AcceptEnv * lets"}, shell}},
		{"AcceptEnv BASH_FUNC_*", append(gateOK, "acceptenv BASH_FUNC_*", "acceptenv LC_*"), nil, false, nil, []want{{Error, "", 0, "AcceptEnv BASH_FUNC_* lets"}, shell}},
		{"AcceptEnv without a gate", []string{"acceptenv *"}, nil, false, nil, nil},
		{"internal-sftp under the gate", append(gateOK, "subsystem sftp internal-sftp"), nil, false, nil, []want{{Info, "", 0, "internal-sftp"}, shell}},
		{"internal-sftp without a gate", []string{"subsystem sftp internal-sftp"}, nil, false, nil, nil},
		{"gate by path", []string{"forcecommand /opt/gate/mygate", "disableforwarding yes", "permituserrc no"}, nil, false, []string{"/opt/gate/mygate"}, []want{shell}},
		{"other ForceCommand", []string{"forcecommand /usr/bin/other"}, nil, false, nil, nil},
		{"gate for some users", nil, map[string][]string{"alice": gateOK, "bob": nil}, false, nil, []want{
			{Info, "", 0, "does not cover: bob (ForceCommand none)"}, shell}},
		{"gate for all users", nil, map[string][]string{"alice": gateOK, "bob": gateOK}, false, nil, []want{shell}},
		{"problem scoped to one user", gateOK, map[string][]string{"alice": gateOK, "bob": {gate}}, false, nil, []want{
			{Error, "", 0, "at once (OpenSSH 7.4+) (user bob)"}, {Error, "", 0, "~/.ssh/rc runs before ForceCommand, so a planted rc file runs before the gate decides (user bob)"}, shell}},
		{"problem everywhere", []string{gate}, map[string][]string{"alice": {gate}, "bob": {gate}}, false, nil, []want{
			{Error, "", 0, "at once (OpenSSH 7.4+) (global settings; users alice, bob)"}, {Error, "", 0, "rc file runs before the gate decides (global settings; users alice, bob)"}, shell}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var per map[string]SSHDConfig
			if tc.perUser != nil {
				per = map[string]SSHDConfig{}
				for u, o := range tc.perUser {
					per[u] = base(t, o...)
				}
			}
			got := CheckSSHD(base(t, tc.global...), per, tc.hook, tc.gates)
			expect(t, got, tc.want...)
			for _, f := range got {
				if f.File != "sshd -T" || f.Line != 0 {
					t.Errorf("CheckSSHD finding at %s:%d", f.File, f.Line)
				}
			}
		})
	}
	if got := CheckSSHD(nil, nil, true, nil); len(got) != 0 {
		t.Errorf("nil config: %v", got)
	}
}

func TestSSHMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		ok     bool
	}{{"LC_*", "LC_ALL", true}, {"LC_*", "LANG", false}, {"*", "", true}, {"L?NG", "LANG", true}, {"BASH_*", "BASH_ENV", true}, {"LANG", "LANGX", false}} {
		if sshMatch(tc.pat, tc.s) != tc.ok {
			t.Errorf("sshMatch(%q, %q) != %v", tc.pat, tc.s, tc.ok)
		}
	}
}

// fakeSSHD writes a shell script standing in for sshd.
func fakeSSHD(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sshd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEffectiveSSHDFake(t *testing.T) {
	ctx := context.Background()
	c, err := EffectiveSSHD(ctx, fakeSSHD(t, `echo "usepam no"; echo "args $*"`), "user=alice,host=localhost,addr=127.0.0.1")
	if err != nil || c.Get("usepam") != "no" || c.Get("args") != "-T -C user=alice,host=localhost,addr=127.0.0.1" {
		t.Errorf("got %v, %v", c, err)
	}
	_, err = EffectiveSSHD(ctx, fakeSSHD(t, `printf '\033[31mbad line 3\nsecond\n' >&2; exit 255`), "")
	if err == nil || !strings.Contains(err.Error(), `\x1b[31mbad line 3 second`) || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Errorf("stderr not reported cleanly: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = EffectiveSSHD(ctx, fakeSSHD(t, `exec sleep 30`), "")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("hung sshd: err %v after %v", err, time.Since(start))
	}
}

// realSSHD returns the real sshd and a temp dir with a host key, or skips.
func realSSHD(t *testing.T) (sshd, dir string) {
	t.Helper()
	sshd = "/usr/sbin/sshd"
	_, err1 := os.Stat(sshd)
	keygen, err2 := exec.LookPath("ssh-keygen")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sshd or ssh-keygen missing under CI: %v %v", err1, err2)
		}
		t.Skip("sshd or ssh-keygen not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd -T needs root")
	}
	dir = t.TempDir()
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return sshd, dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRealSSHD(t *testing.T) {
	sshd, dir := realSSHD(t)
	gate := filepath.Join(dir, "latch-ssh")
	writeFile(t, gate, "#!/bin/sh\n")
	if err := os.Chmod(gate, 0o755); err != nil {
		t.Fatal(err)
	}
	pamDir, _ := fixture(t, "clean") // the hook is in sshd's stack
	for _, tc := range []struct {
		name, cfg string
		want      []want
	}{
		{"UsePAM no, gate in Match without DisableForwarding", `HostKey {dir}/hostkey
UsePAM no
Subsystem sftp internal-sftp
Match User alice
	ForceCommand {gate}
`, []want{
			{Error, "sshd_config", 2, "sshd does not use PAM (UsePAM no)"},
			{Error, "sshd_config", 5, "ForceCommand does not gate forwarding: `ssh -N -L/-R/-D`, agent and X11 forwarding and tunnels run without the gate; DisableForwarding yes turns off AllowTcpForwarding, AllowStreamLocalForwarding, AllowAgentForwarding, X11Forwarding and PermitTunnel at once (OpenSSH 7.4+) (user alice)"},
			{Error, "sshd_config", 5, "~/.ssh/rc runs before ForceCommand"},
			{Info, "sshd_config", 5, "does not cover: bob (ForceCommand none)"},
			{Warning, "sshd_config", 5, "through the user's login shell"},
			{Info, "sshd_config", 3, "internal-sftp"},
		}},
		{"wired right, settings in an Include", `HostKey {dir}/hostkey
UsePAM yes
Include {dir}/conf.d/*.conf
Match User alice,bob
	ForceCommand {gate}
	DisableForwarding yes
	PermitUserRC no
`, []want{{Warning, "sshd_config", 5, "through the user's login shell"}, {Info, "10-kbd.conf", 1, "KbdInteractiveAuthentication yes"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "sshd_config")
			writeFile(t, cfg, strings.NewReplacer("{dir}", dir, "{gate}", gate).Replace(tc.cfg))
			if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "conf.d", "10-kbd.conf"), "KbdInteractiveAuthentication=yes\n")

			// The parts, as a caller would use them.
			global, err := runSSHDT(context.Background(), sshd, cfg, "")
			if err != nil {
				t.Fatal(err)
			}
			alice, err := runSSHDT(context.Background(), sshd, cfg, "user=alice,host=localhost,addr=127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			if global.Get("forcecommand") != "none" || alice.Get("forcecommand") != gate {
				t.Fatalf("Match not applied: global %q, alice %q", global.Get("forcecommand"), alice.Get("forcecommand"))
			}

			got := Check(context.Background(), Options{PAMDir: pamDir, SSHDPath: sshd, SSHDConfigFile: cfg, Users: []string{"alice", "bob"}})
			expect(t, got, tc.want...)
		})
	}
}

func TestCheckGateNotCheckedUsers(t *testing.T) {
	sshd, dir := realSSHD(t)
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(t, cfg, fmt.Sprintf("HostKey %s/hostkey\nMatch User alice\n  ForceCommand /nonexistent/latch-ssh\n", dir))
	got := Check(context.Background(), Options{PAMDir: t.TempDir(), SSHDPath: sshd, SSHDConfigFile: cfg})
	// No users given: the Match block is only seen by the scan, and counts as wired.
	expect(t, got, want{Info, "sshd_config", 3, "inside a Match block"})

	got = Check(context.Background(), Options{PAMDir: t.TempDir(), SSHDPath: sshd, SSHDConfigFile: cfg, Users: []string{"alice", "bad,user=x"}})
	for _, w := range []want{{Error, "sshd_config", 3, "ForceCommand gate /nonexistent/latch-ssh cannot run"}, {Warning, "sshd -T", 0, `user "bad,user=x" skipped`}} {
		if !hasFinding(got, w) {
			t.Errorf("missing %+v in %v", w, got)
		}
	}
}

func hasFinding(got []Finding, w want) bool {
	for _, f := range got {
		if w.matches(f) {
			return true
		}
	}
	return false
}
