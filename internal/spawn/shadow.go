package spawn

import (
	"fmt"
	"time"
)

// ShadowInfo is what the shadow database says about an account's logins.
type ShadowInfo struct {
	// Locked: the password field starts with "!" (passwd -l, usermod -L).
	Locked bool
	// ExpireDays is the account expiry date in days since 1970-01-01
	// (usermod --expiredate, chage -E), or -1 for none.
	ExpireDays int64
}

// CheckUsable reports why info forbids logging in at now, or nil: an
// account whose expiry date has come, or whose password is locked. This is
// what sshd checks itself when it does not use PAM (allowed_user), and what
// the embedded server, which has no PAM account stack, must check: an admin
// who disabled an account expects it disabled for every way in.
func (info ShadowInfo) CheckUsable(now time.Time) error {
	if info.ExpireDays >= 0 {
		// Like sshd and pam_unix: expired once today (UTC days since the
		// epoch) reaches the expiry day.
		if today := now.Unix() / 86400; today >= info.ExpireDays {
			return fmt.Errorf("account expired on %s", time.Unix(info.ExpireDays*86400, 0).UTC().Format("2006-01-02"))
		}
	}
	if info.Locked {
		return fmt.Errorf("account is locked (its password starts with \"!\")")
	}
	return nil
}
