package sshserver

import (
	"os"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// The seams of the authentication (issue 14, "tests a newcomer can
// extend").
//
// Everything the authentication state machine (auth.go: key, gate, one-time
// code, refusals, tries, penalties) asks of the machine goes through four
// Options, each defaulting to the real system:
//
//   - Lookup: who a login name is (spawn.Lookup, NSS);
//   - Keys: which keys that account authorized (nil: [server]
//     authorized_keys read as the user, with the StrictModes checks, in
//     loadKeyring);
//   - checkLogin: whether the account may log in now, the account rule
//     (spawn.CheckLogin: the login shell, the nologin files, shadow
//     expiry and aging);
//   - euid: the uid the server runs as, which decides whom it can serve
//     (only root can serve every account).
//
// The decision itself comes from Options.Core, whose Latch client, account
// lookup (the shared-uid rule) and group lookup (exempt_groups) are gate's
// own seams. With these replaced by a fake directory and the core built on
// the fake Latch (latch/latchtest), the whole state machine runs in memory,
// over loopback TCP, without root and without real users: see
// authtable_test.go, whose table is the place to add a row for a new rule.
//
// This is deliberately not a Backend interface with Start: the seams are
// the narrowest cut that lets the authentication run in memory, and they
// were mostly there already (Lookup and Keys, used by the demo and the
// tests). Sessions and forwarding are not behind a seam on purpose: what
// their tests prove is that processes, files and sockets are the user's
// (dropped privileges, cgroups, the login shell), which only real users
// and root can show (systest). The authentication ends in a grant, which
// the in-memory table checks through Users.

// systemDefaults fills the seams left nil with the real system.
func (o *Options) systemDefaults() {
	if o.Lookup == nil {
		o.Lookup = spawn.Lookup
	}
	if o.checkLogin == nil {
		o.checkLogin = func(acct spawn.Account, now time.Time) (string, error) {
			return spawn.CheckLogin(acct, now, spawn.NologinFiles())
		}
	}
	if o.euid == nil {
		uid := uint32(os.Geteuid())
		o.euid = &uid
	}
}
