//go:build !cgo

package spawn

import "fmt"

// Lookup without cgo refuses: Go's own passwd and group readers parse only
// /etc/passwd and /etc/group, so LDAP and SSSD users would be unknown or get
// the wrong supplementary groups. latch-ssh is built with CGO_ENABLED=1; this
// file exists only so that a cgo-less build compiles and fails closed.
func Lookup(name string) (Account, error) {
	return Account{}, fmt.Errorf("user %q: this latch-ssh was built without cgo and cannot ask NSS for the account; rebuild with CGO_ENABLED=1", name)
}

// LookupName without cgo refuses, for the same reason as Lookup.
func LookupName(name string) (Account, error) { return Lookup(name) }

// LookupUID without cgo refuses, for the same reason as Lookup.
func LookupUID(uid uint32) (Account, error) {
	return Account{}, fmt.Errorf("uid %d: this latch-ssh was built without cgo and cannot ask NSS for the account; rebuild with CGO_ENABLED=1", uid)
}

// Shadow without cgo knows nothing (found is false).
func Shadow(name string) (ShadowInfo, bool, error) { return noShadow(), false, nil }
