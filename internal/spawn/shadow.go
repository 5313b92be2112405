package spawn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ShadowInfo is what the shadow database says about an account's logins:
// the fields pam_unix's account check reads (shadow(5); -1 means the field
// is empty). The password field itself is deliberately not here: see
// CheckLogin.
type ShadowInfo struct {
	// LastChange is the date of the last password change in days since
	// 1970-01-01; 0 means the password must be changed at the next login
	// (chage -d 0, passwd -e).
	LastChange int64
	// MaxDays is the maximum password age in days (chage -M).
	MaxDays int64
	// WarnDays is how many days before MaxDays is reached the owner is
	// warned at login (chage -W).
	WarnDays int64
	// InactiveDays is how many days after MaxDays an aged password still
	// lets its owner in to change it (chage -I).
	InactiveDays int64
	// ExpireDays is the account expiry date in days since 1970-01-01
	// (usermod --expiredate, chage -E).
	ExpireDays int64
}

// noShadow is a ShadowInfo with every field empty: nothing to enforce.
func noShadow() ShadowInfo {
	return ShadowInfo{LastChange: -1, MaxDays: -1, WarnDays: -1, InactiveDays: -1, ExpireDays: -1}
}

// LoginRefused is CheckLogin's refusal: why (for the log, with the fix) and
// what the person logging in is told, in the words of the system's own sshd.
type LoginRefused struct {
	// Reason is for the administrator's log.
	Reason string
	// Message is for the person, one or more lines without a final newline.
	Message string
}

func (r *LoginRefused) Error() string { return r.Reason }

// pam_unix's messages (Linux-PAM modules/pam_unix/pam_unix_acct.c), which
// sshd with UsePAM sends to the client as an authentication banner.
const (
	msgAccountExpired = "Your account has expired; please contact your system administrator."
	msgChangeAdmin    = "You are required to change your password immediately (administrator enforced)."
	msgChangeAged     = "You are required to change your password immediately (password expired)."
	// The embedded server has no password and no passwd: it says so
	// rather than leave the person with pam_unix's instruction alone.
	msgNoChangeHere = "latch-ssh: this server cannot change passwords; change it another way (or ask your administrator) and log in again."
)

// NologinFiles returns pam_nologin's files in its order: the first that
// can be opened stops every login but root's, and its content is what the
// person is told. systemd writes /run/nologin while the system boots and
// for the last minutes before a scheduled shutdown; admins touch
// /etc/nologin for maintenance.
func NologinFiles() []string { return []string{"/var/run/nologin", "/etc/nologin"} }

// maxNologinMessage bounds what is read of a nologin file for the banner.
const maxNologinMessage = 16 << 10

// CheckLogin is the one account rule of the embedded SSH server: may acct
// log in by key at now? A nil error means yes, and warning, when not
// empty, holds lines to show the person (pam_unix's "Warning: your
// password will expire in N days.", a nologin file's content for root); a
// *LoginRefused means no, with the reason and the message for the person;
// any other error means the check itself failed (refuse too). nologin
// replaces NologinFiles() when not nil (tests: the real files would stop
// every login on the machine).
//
// It is what the distribution's own sshd does for a key login with
// `UsePAM yes` (the default on Debian, Ubuntu, Fedora, RHEL) and the default
// PAM stack (pam_nologin, then pam_unix in the account stack, through
// common-account or system-auth), checked against a real sshd by
// internal/sshserver TestRealUsersAccountStates and
// TestRealUsersNologinFile:
//
//   - The password field is not looked at. "!" (what Debian's useradd
//     writes), "!!" (RHEL's), "*", "*LK*", and "!<hash>" from `passwd -l` or
//     `usermod -L` lock the password, not the account: passwd(1) says "this
//     does not disable the account", and pam_unix's account check ignores
//     the field. Cloud images lock the default user's password and log them
//     in by key; refusing them would lock out the most common server user
//     there is. (sshd refuses them only with UsePAM no, which no major
//     distribution ships.) To disable an account, expire it:
//     `usermod -e 1`.
//   - An account whose expiry date has come (usermod -e, chage -E) is
//     refused: "Your account has expired", as pam_unix (PAM_ACCT_EXPIRED).
//   - A password aged beyond its maximum age plus the inactivity period
//     (chage -M, -I) is refused the same way (PAM_AUTHTOK_EXPIRED).
//   - A password that must be changed (chage -d 0, passwd -e, or aged past
//     chage -M) is a deliberate difference: sshd lets the key in, then
//     runs passwd instead of the shell on a terminal (and runs nothing
//     without one, "Password change required but no TTY available"), with
//     forwarding off. The embedded server has no passwd to run and no
//     password of its own; it refuses, with pam_unix's words and a line
//     saying it cannot change passwords. Either way the person gets no
//     shell, command, sftp or forward until the password is changed.
//   - The login shell must exist and be an executable regular file, as
//     sshd's allowed_user checks (whatever UsePAM says). A nologin or false
//     shell passes: like sshd, the server runs it, and the person sees what
//     it prints ("This account is currently not available.").
//   - While a nologin file exists (see NologinFiles), every account but
//     root (uid 0) is refused and told its content, as pam_nologin does;
//     root logs in and is shown it.
//
// With no shadow entry, or one this process cannot read (not root), the
// password aging and expiry are not checked, as pam_unix succeeds without
// a shadow entry.
func CheckLogin(acct Account, now time.Time, nologin []string) (warning string, err error) {
	if err := checkShell(acct.Shell); err != nil {
		return "", err
	}
	if nologin == nil {
		nologin = NologinFiles()
	}
	var warnings []string
	if w, err := checkNologin(acct, nologin); err != nil {
		return "", err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	info, found, err := Shadow(acct.Name)
	if err != nil {
		return "", fmt.Errorf("account check of %s: %w", acct.Name, err)
	}
	if found {
		w, r := info.check(now)
		if r != nil {
			return "", r
		}
		if w != "" {
			warnings = append(warnings, w)
		}
	}
	return strings.Join(warnings, "\n"), nil
}

// checkNologin is pam_nologin: the first of files that can be opened
// refuses every account but root's, with its content as the message; root
// gets the content as a warning.
func checkNologin(acct Account, files []string) (string, error) {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, maxNologinMessage))
		f.Close()
		if err != nil {
			// pam_nologin: PAM_SYSTEM_ERR, for root too.
			return "", fmt.Errorf("%s exists but cannot be read: %w", name, err)
		}
		msg := strings.TrimRight(string(b), "\n")
		if acct.UID == 0 {
			return msg, nil
		}
		return "", &LoginRefused{
			Reason:  fmt.Sprintf("%s exists: logins are disabled for every user but root (remove it to allow them)", name),
			Message: msg,
		}
	}
	return "", nil
}

// checkShell is sshd's allowed_user test of the login shell.
func checkShell(shell string) error {
	st, err := os.Stat(shell)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &LoginRefused{Reason: fmt.Sprintf("login shell %s does not exist (fix: usermod -s)", shell)}
	case err != nil:
		return fmt.Errorf("login shell %s: %w", shell, err)
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return &LoginRefused{Reason: fmt.Sprintf("login shell %s is not executable (fix: usermod -s, or chmod)", shell)}
	}
	return nil
}

// check applies pam_unix's check_shadow_expiry (Linux-PAM
// modules/pam_unix/passverify.c) at now, in whole UTC days since the epoch
// as pam_unix counts them: a refusal, or a warning for the person (or
// neither).
func (info ShadowInfo) check(now time.Time) (string, *LoginRefused) {
	today := now.Unix() / 86400
	date := func(days int64) string { return time.Unix(days*86400, 0).UTC().Format("2006-01-02") }
	if info.ExpireDays != -1 && today >= info.ExpireDays {
		return "", &LoginRefused{
			Reason:  fmt.Sprintf("account expired on %s (fix: usermod -e '' or chage -E)", date(info.ExpireDays)),
			Message: msgAccountExpired,
		}
	}
	if info.LastChange == 0 {
		return "", &LoginRefused{
			Reason:  "the password must be changed (chage -d 0 or passwd -e); this server cannot change passwords",
			Message: msgChangeAdmin + "\n" + msgNoChangeHere,
		}
	}
	if today < info.LastChange || info.MaxDays == -1 {
		// No aging, or a change "in the future": pam_unix lets it be.
		// An empty last change (-1) with a maximum age is not "aging
		// disabled" (as shadow(5) has it) for pam_unix: it counts from
		// day -1, so the password must be changed. Same here.
		return "", nil
	}
	age := today - info.LastChange
	if info.InactiveDays != -1 && age > info.MaxDays && age > info.InactiveDays && age > info.MaxDays+info.InactiveDays {
		return "", &LoginRefused{
			Reason: fmt.Sprintf("the password aged past its maximum (%d days) and the inactivity period (%d days) since %s (fix: chage)",
				info.MaxDays, info.InactiveDays, date(info.LastChange)),
			Message: msgAccountExpired,
		}
	}
	if age > info.MaxDays {
		return "", &LoginRefused{
			Reason: fmt.Sprintf("the password aged past its maximum (%d days) since %s and must be changed; this server cannot change passwords (fix: passwd, or chage)",
				info.MaxDays, date(info.LastChange)),
			Message: msgChangeAged + "\n" + msgNoChangeHere,
		}
	}
	if info.WarnDays != -1 && age > info.MaxDays-info.WarnDays {
		left := info.LastChange + info.MaxDays - today
		if left == 1 {
			return "Warning: your password will expire in 1 day.", nil
		}
		return fmt.Sprintf("Warning: your password will expire in %d days.", left), nil
	}
	return "", nil
}
