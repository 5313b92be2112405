package wiring

import (
	"context"
	"path/filepath"
	"testing"
)

func TestFindingString(t *testing.T) {
	for _, tc := range []struct {
		f    Finding
		want string
	}{
		{Finding{Error, "/etc/pam.d/sshd", 7, "bad", "do this"}, "/etc/pam.d/sshd:7: error: bad (fix: do this)"},
		{Finding{Warning, "sshd -T", 0, "hm", ""}, "sshd -T: warning: hm"},
		{Finding{Info, "", 0, "note", ""}, "info: note"},
		{Finding{Severity(9), "f", 1, "x", ""}, "f:1: severity(9): x"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestCheckWiring(t *testing.T) {
	noSSHD := filepath.Join(t.TempDir(), "no-sshd")
	skipped := want{Info, "no-sshd", 0, "sshd not found"}
	nothing := want{Warning, "", 0, "no front end is wired: latch-ssh protects nothing yet"}
	for _, tc := range []struct {
		name, pam string
		services  []string
		listen    bool
		want      []want
	}{
		{"nothing wired", "", nil, false, []want{skipped, nothing}},
		{"embedded server only", "", nil, true, []want{skipped}},
		{"PAM hook in sshd", "clean", nil, false, []want{skipped}},
		{"PAM hook in sudo only", "su", []string{"sudo"}, false, []want{skipped, {Info, "sshd", 0, "not for sshd"}, {Error, "sudo", 1, "without `seteuid`"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, hook := t.TempDir(), ""
			if tc.pam != "" {
				dir, hook = fixture(t, tc.pam)
			}
			got := Check(context.Background(), Options{PAMDir: dir, Services: tc.services, SSHDPath: noSSHD,
				HookPaths: []string{hook}, ServerListen: tc.listen})
			expect(t, got, tc.want...)
		})
	}
}
