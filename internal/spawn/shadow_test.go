package spawn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShadowCheck is pam_unix's check_shadow_expiry, day by day (issue 13,
// point 2: the rule of the distribution's own sshd with UsePAM yes; the
// end-to-end comparison with a real sshd is internal/sshserver
// TestRealUsersAccountStates).
func TestShadowCheck(t *testing.T) {
	day := func(d int64) time.Time { return time.Unix(d*86400+3600, 0) }
	with := func(edit func(*ShadowInfo)) ShadowInfo {
		info := noShadow()
		info.LastChange = 19990
		info.MaxDays = 99999
		edit(&info)
		return info
	}
	const today = 20000
	for _, tc := range []struct {
		name string
		info ShadowInfo
		want string // "" for allowed, else a word of the message
		warn string // the warning of an allowed login
	}{
		{"nothing set", noShadow(), "", ""},
		{"useradd defaults", with(func(*ShadowInfo) {}), "", ""},
		{"expires later", with(func(i *ShadowInfo) { i.ExpireDays = today + 1 }), "", ""},
		{"expires today", with(func(i *ShadowInfo) { i.ExpireDays = today }), "Your account has expired", ""},
		{"expired", with(func(i *ShadowInfo) { i.ExpireDays = 1 }), "Your account has expired", ""},
		{"expiry day 0 (usermod -e 1970-01-01)", with(func(i *ShadowInfo) { i.ExpireDays = 0 }), "Your account has expired", ""},
		{"chage -d 0", with(func(i *ShadowInfo) { i.LastChange = 0 }), "(administrator enforced)", ""},
		{"chage -d 0 and expired", with(func(i *ShadowInfo) { i.LastChange = 0; i.ExpireDays = 1 }), "Your account has expired", ""},
		{"aged, within max", with(func(i *ShadowInfo) { i.MaxDays = 10 }), "", ""},
		{"aged, max reached exactly", with(func(i *ShadowInfo) { i.LastChange = today - 10; i.MaxDays = 10 }), "", ""},
		{"aged past max", with(func(i *ShadowInfo) { i.LastChange = today - 11; i.MaxDays = 10 }), "(password expired)", ""},
		{"aged past max, within inactive", with(func(i *ShadowInfo) { i.LastChange = today - 11; i.MaxDays = 10; i.InactiveDays = 5 }), "(password expired)", ""},
		{"aged past max and inactive", with(func(i *ShadowInfo) { i.LastChange = today - 16; i.MaxDays = 10; i.InactiveDays = 5 }), "Your account has expired", ""},
		{"changed in the future", with(func(i *ShadowInfo) { i.LastChange = today + 5; i.MaxDays = 1 }), "", ""},
		{"aging without a last change", with(func(i *ShadowInfo) { i.LastChange = -1; i.MaxDays = 1 }), "(password expired)", ""},
		{"no aging, no last change", with(func(i *ShadowInfo) { i.LastChange = -1; i.MaxDays = -1 }), "", ""},
		{"warned, not yet", with(func(i *ShadowInfo) { i.LastChange = today - 2; i.MaxDays = 10; i.WarnDays = 7 }), "", ""},
		{"warned", with(func(i *ShadowInfo) { i.LastChange = today - 4; i.MaxDays = 10; i.WarnDays = 7 }), "", "Warning: your password will expire in 6 days."},
		{"warned, last day", with(func(i *ShadowInfo) { i.LastChange = today - 9; i.MaxDays = 10; i.WarnDays = 7 }), "", "Warning: your password will expire in 1 day."},
		{"warned, today", with(func(i *ShadowInfo) { i.LastChange = today - 10; i.MaxDays = 10; i.WarnDays = 7 }), "", "Warning: your password will expire in 0 days."},
	} {
		warning, r := tc.info.check(day(today))
		if warning != tc.warn {
			t.Errorf("%s: warning %q, want %q", tc.name, warning, tc.warn)
		}
		switch {
		case tc.want == "" && r != nil:
			t.Errorf("%s: refused (%s), want allowed", tc.name, r.Reason)
		case tc.want != "" && r == nil:
			t.Errorf("%s: allowed, want refused with %q", tc.name, tc.want)
		case tc.want != "" && !strings.Contains(r.Message, tc.want):
			t.Errorf("%s: message %q, want %q", tc.name, r.Message, tc.want)
		}
	}
}

// TestCheckShell is sshd's allowed_user test of the login shell: it must
// exist and be an executable regular file; nologin and false pass.
func TestCheckShell(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		shell string
		ok    bool
	}{
		{"/bin/sh", true},
		{"/bin/false", true},
		{filepath.Join(dir, "missing"), false},
		{dir, false},
		{notExec, false},
	} {
		err := checkShell(tc.shell)
		var r *LoginRefused
		if tc.ok != (err == nil) || (err != nil && !errors.As(err, &r)) {
			t.Errorf("checkShell(%s) = %v, want ok=%v (a refusal otherwise)", tc.shell, err, tc.ok)
		}
	}
}

// TestCheckNologin is pam_nologin: the first nologin file that exists
// refuses everyone but root with its content; root is shown it (issue 13,
// point 2; end to end: internal/sshserver TestRealUsersNologinFile).
func TestCheckNologin(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "run-nologin"), filepath.Join(dir, "etc-nologin")
	files := []string{first, second}
	user := Account{Name: "someone", UID: 1000, Shell: "/bin/sh"}
	root := Account{Name: "root", UID: 0, Shell: "/bin/sh"}
	if w, err := checkNologin(user, files); w != "" || err != nil {
		t.Fatalf("no file: %q, %v", w, err)
	}
	if err := os.WriteFile(second, []byte("Maintenance until 06:00.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var r *LoginRefused
	if _, err := checkNologin(user, files); !errors.As(err, &r) || r.Message != "Maintenance until 06:00." {
		t.Errorf("etc file: %v, want a refusal showing its content", err)
	}
	if w, err := checkNologin(root, files); err != nil || w != "Maintenance until 06:00." {
		t.Errorf("root: %q, %v; want in, shown the content", w, err)
	}
	if err := os.WriteFile(first, []byte("System is going down.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := checkNologin(user, files); !errors.As(err, &r) || r.Message != "System is going down." {
		t.Errorf("both files: %v, want the first one's content", err)
	}
	// A directory (or anything unreadable) cannot be shown: pam_nologin
	// fails (PAM_SYSTEM_ERR), for root too.
	if w, err := checkNologin(root, []string{dir}); err == nil || errors.As(err, &r) {
		t.Errorf("directory: %q, %v; want an error that is not a plain refusal", w, err)
	}
	// The whole rule: the nologin file is consulted, and nil means the
	// system's files.
	if _, err := CheckLogin(user, time.Now(), files); !errors.As(err, &r) {
		t.Errorf("CheckLogin ignores the nologin files: %v", err)
	}
	if got := NologinFiles(); len(got) != 2 || got[0] != "/var/run/nologin" || got[1] != "/etc/nologin" {
		t.Errorf("NologinFiles() = %q, want pam_nologin's", got)
	}
}
