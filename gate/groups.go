package gate

import (
	"errors"
	"fmt"
	"os/user"
)

// NSSGroups looks groups up through the C library's NSS when the binary is
// built with cgo (the default for our builds), so LDAP and SSSD groups
// count; the pure-Go fallback of os/user reads only /etc/group.
type NSSGroups struct{}

// InAnyGroup implements GroupLookup. A group in groups that does not exist
// matches nobody; an unknown user is an error.
func (NSSGroups) InAnyGroup(name string, groups []string) (bool, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return false, fmt.Errorf("looking up user: %w", err)
	}
	gids, err := u.GroupIds() // primary and supplementary
	if err != nil {
		return false, fmt.Errorf("looking up groups of %s: %w", u.Username, err)
	}
	have := make(map[string]bool, len(gids))
	for _, g := range gids {
		have[g] = true
	}
	for _, name := range groups {
		g, err := user.LookupGroup(name)
		if err != nil {
			var unknown user.UnknownGroupError
			if errors.As(err, &unknown) {
				continue
			}
			return false, fmt.Errorf("looking up group %s: %w", name, err)
		}
		if have[g.Gid] {
			return true, nil
		}
	}
	return false, nil
}
