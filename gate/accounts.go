package gate

import (
	"errors"
	"fmt"
	"maps"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

// ErrNoAccount is wrapped by an AccountLookup when NSS has no account of
// that name (as opposed to failing to answer).
var ErrNoAccount = errors.New("no such account")

// UserAccount is what the gate needs to know about a local account.
type UserAccount struct {
	// Name is the account's own name, which may differ from the name
	// looked up (case-insensitive LDAP/SSSD back ends).
	Name string
	UID  uint32
}

// AccountLookup resolves login names to accounts through NSS.
type AccountLookup interface {
	// LookupAccount returns the account name logs in as. The error wraps
	// ErrNoAccount when NSS has no such account; any other error is an NSS
	// failure, and the gate denies.
	LookupAccount(name string) (UserAccount, error)
}

// NSSAccounts looks accounts up through the C library's NSS (os/user with
// cgo, as our builds are), so LDAP and SSSD accounts count. It is what a
// Core with a nil Accounts uses.
type NSSAccounts struct{}

// LookupAccount implements AccountLookup.
func (NSSAccounts) LookupAccount(name string) (UserAccount, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return UserAccount{}, fmt.Errorf("user %q: %w", safetext.Clean(name), ErrNoAccount)
		}
		return UserAccount{}, fmt.Errorf("looking up user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return UserAccount{}, fmt.Errorf("user %q: bad uid %q: %w", safetext.Clean(name), u.Uid, err)
	}
	return UserAccount{Name: u.Username, UID: uint32(uid)}, nil
}

func (c *Core) accounts() AccountLookup {
	if c.Accounts == nil {
		return NSSAccounts{}
	}
	return c.Accounts
}

// subject is whose latch decides a login: the result of resolve.
type subject struct {
	// name is the [users] name whose account and operation decide; for an
	// unmapped login, the login's account name.
	name string
	// mapped says whether name is in [users].
	mapped bool
	// note explains, for the reason, a decision made through another name
	// ("" when the login name is the one mapped).
	note string
}

// resolve finds whose latch decides a login as login, by uid. The latch
// follows the account, not the spelling of its name: Linux knows an account
// by its uid, and `useradd -o -u 1001 alias` (or an LDAP entry sharing a
// uid, or a case-insensitive back end) gives alice's uid a second name that
// is not in [users]. Deciding by name would let "alias" in under the
// unpaired policy while alice's latch is closed; the ForceCommand gate,
// which only sees the uid, would refuse, and the front ends would disagree.
//
// The rule, the same for every front end:
//   - the login name is resolved through NSS to a uid; every [users] name
//     whose account has that uid decides;
//   - when several do and they name different Latch accounts or operations,
//     the login is denied as a misconfiguration (which one would the phone
//     owner expect?); check-config reports it;
//   - none: the unpaired policy, as before;
//   - NSS fails: deny (we cannot tell whose uid it is);
//   - NSS has no such account: a [users] name decides as given (it can
//     share no uid); any other name is denied whatever unpaired says, since
//     no account can log in under it, and a lookup that misses only for a
//     moment must not turn into "unpaired = allow".
//
// Every [users] name is looked up per decision, through NSS's answers of
// the last second at most when the Core comes from LoadCore (see
// accountmemo.go for the bound); the login name is looked up afresh.
func (c *Core) resolve(login, service string) (subject, *Decision) {
	cfg := c.Config
	look, others := c.accounts(), c.accounts()
	if c.Accounts == nil && c.memo != nil {
		look, others = c.memo.base, c.memo
	}
	acct, err := look.LookupAccount(login)
	switch {
	case errors.Is(err, ErrNoAccount):
		if _, ok := cfg.Account(login); ok {
			return subject{name: login, mapped: true}, nil
		}
		return subject{}, &Decision{Outcome: Deny, Severity: Warning, Class: ClassAccount,
			Reason: "no such account (NSS): a name no account has is never let in, whatever unpaired says"}
	case err != nil:
		return subject{}, &Decision{Outcome: Deny, Severity: Warning, Class: ClassAccount,
			Reason: "account lookup failed: " + safetext.Clean(err.Error())}
	}
	var owners []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Users)) {
		if name == acct.Name {
			owners = append(owners, name)
			continue
		}
		a, err := others.LookupAccount(name)
		switch {
		case errors.Is(err, ErrNoAccount):
			continue
		case err != nil:
			return subject{}, &Decision{Outcome: Deny, Severity: Warning, Class: ClassAccount,
				Reason: fmt.Sprintf("account lookup of [users] %s failed, so whether it shares uid %d cannot be told: %s",
					safetext.Clean(name), acct.UID, safetext.Clean(err.Error()))}
		}
		if a.UID == acct.UID {
			owners = append(owners, name)
		}
	}
	switch {
	case len(owners) == 0:
		return subject{name: acct.Name}, nil
	case len(owners) > 1:
		first := owners[0]
		for _, o := range owners[1:] {
			if cfg.Users[o] != cfg.Users[first] || cfg.Operation(o, service) != cfg.Operation(first, service) {
				return subject{}, &Decision{Outcome: Deny, Severity: Error, Class: ClassConfig,
					Reason: fmt.Sprintf("uid %d has several names in [users] (%s) with different Latch accounts or operations",
						acct.UID, safetext.Clean(strings.Join(owners, ", "))),
					Fix: "map every name of that uid to the same account (and operations), or give each person their own uid; `latch-ssh check-config` lists shared uids"}
			}
		}
	}
	s := subject{name: owners[0], mapped: true}
	if slices.Contains(owners, acct.Name) {
		s.name = acct.Name
	}
	if s.name != login {
		s.note = fmt.Sprintf("%s is uid %d, whose latch is %s's", safetext.Clean(login), acct.UID, safetext.Clean(s.name))
	}
	return s, nil
}

// SharedUIDs finds the uids of [users] names that other names share, for
// check-config: uid -> every name found for it, sorted: the [users] names
// of cfg, and those of others (more local account names to compare, such
// as every entry of /etc/passwd; NSS back ends such as LDAP cannot always
// be listed). Names NSS cannot resolve are skipped. look nil means
// NSSAccounts.
func SharedUIDs(cfg *users.Config, look AccountLookup, others []string) map[uint32][]string {
	if look == nil {
		look = NSSAccounts{}
	}
	byUID := map[uint32][]string{}
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		if a, err := look.LookupAccount(name); err == nil {
			byUID[a.UID] = append(byUID[a.UID], name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Users)) {
		add(name)
	}
	mapped := map[uint32]bool{}
	for uid := range byUID {
		mapped[uid] = true
	}
	for _, name := range others {
		add(name)
	}
	out := map[uint32][]string{}
	for uid, names := range byUID {
		if mapped[uid] && len(names) > 1 {
			slices.Sort(names)
			out[uid] = names
		}
	}
	return out
}
