//go:build !cgo

package forcecmd

import "fmt"

// lookupPasswd without cgo refuses: Go's own passwd reader parses only
// /etc/passwd, so LDAP and SSSD users would be "unknown" (denied) or, worse,
// a local entry could shadow the directory's. latch-ssh is built with
// CGO_ENABLED=1; this file exists only so that a cgo-less build compiles
// and fails closed, loudly.
func lookupPasswd(uid int) (passwdEntry, error) {
	return passwdEntry{}, fmt.Errorf("uid %d: this latch-ssh was built without cgo and cannot ask NSS for the passwd entry; rebuild with CGO_ENABLED=1", uid)
}
