package checkconfig

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"

	"github.com/latch-ssh/latch-ssh/gate"
)

// checkAccounts warns about names that do not exist on this system:
// [users] entries (the line protects nobody) and [policy] exempt_groups
// (the group exempts nobody).
func checkAccounts(_ context.Context, r *run) []Finding {
	cfg := r.cfg
	if cfg == nil {
		return nil
	}
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(cfg.Users)) {
		if _, err := user.Lookup(name); err != nil {
			out = append(out, r.finding(Warning, []string{"users", name},
				fmt.Sprintf("[users] %s: no such user on this system (NSS): the line protects nobody", name),
				"correct the name to the local account's, see getent passwd; or remove the line: latch-ssh unpair --user "+name))
		}
	}
	for _, g := range cfg.Policy.ExemptGroups {
		if _, err := user.LookupGroup(g); err != nil {
			out = append(out, r.finding(Warning, []string{"policy", "exempt_groups"},
				fmt.Sprintf("[policy] exempt_groups: no group %q on this system: it exempts nobody", g),
				"correct the name, see getent group; or remove it from the list"))
		}
	}
	return out
}

// checkSharedUIDs reports the [users] names whose uid other names share,
// looking at the names of /etc/passwd too.
func checkSharedUIDs(_ context.Context, r *run) []Finding {
	if r.cfg == nil {
		return nil
	}
	return sharedUIDs(r, passwdNames("/etc/passwd"))
}

// sharedUIDs reports the [users] names whose uid other names share
// (`useradd -o`, LDAP entries with one uid): the latch follows the uid, so
// a login under any of those names is decided by the [users] name's latch,
// and several [users] names of one uid with different Latch accounts or
// operations deny every login of that uid. others are more names to look
// at (the passwd file: back ends such as LDAP cannot always be listed).
// Each finding is located at the line of the first [users] name of the uid.
func sharedUIDs(r *run, others []string) []Finding {
	cfg := r.cfg
	shared := gate.SharedUIDs(cfg, nil, others)
	var out []Finding
	for _, uid := range slices.Sorted(maps.Keys(shared)) {
		names := shared[uid]
		var mapped []string
		for _, n := range names {
			if _, ok := cfg.Account(n); ok {
				mapped = append(mapped, n)
			}
		}
		conflict := false
		for _, m := range mapped[1:] {
			conflict = conflict || cfg.Users[m] != cfg.Users[mapped[0]] || !maps.Equal(cfg.UserOperations[m], cfg.UserOperations[mapped[0]])
		}
		list := strings.Join(names, ", ")
		at := []string{"users", mapped[0]}
		if conflict {
			out = append(out, r.finding(Error, at,
				fmt.Sprintf("[users]: uid %d has several names here (%s) with different Latch accounts or operations: every login of that uid is denied", uid, list),
				"map them all to the same account and operations, or give each person their own uid"))
			continue
		}
		out = append(out, r.finding(Warning, at,
			fmt.Sprintf("[users]: uid %d has several names (%s): the latch follows the uid, so a login under any of them is decided by %s's latch", uid, list, mapped[0]), ""))
	}
	return out
}

// passwdNames lists the account names of a passwd file ("" lines and
// unreadable files give none).
func passwdNames(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" && !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "+") && !strings.HasPrefix(name, "-") {
			names = append(names, name)
		}
	}
	return names
}
