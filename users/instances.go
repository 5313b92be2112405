package users

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// One latch per server (issue 17): with [latch] instance = "host", pairing
// creates a Latch instance of the user's latch named after this server
// (instance_name), and every decision asks about that instance, so a person
// can close SSH to one server and keep another open. The instance ids are
// stored in an [instances] table of the file pairing writes, keyed by user:
//
//	[users]
//	alice = "<account id>"
//
//	[instances]   # this server's Latch instances: latch-ssh pair writes them
//	alice = { account = "<account id>", app = "<instance id>", OPERATIONIDOPERATION = "<instance id>" }
//
// account is the account the instances belong to, written by pair and
// repair. When the user's [users] line names another account (configuration
// management moved them to a new pairing), the ids are stale: they are not
// used, the user is asked about the whole latch, and check-config asks for
// latch-ssh pair --repair. Without it, a stale id would be an unknown
// instance at every login, which fail_mode = "open" lets in unchecked.
//
// An instance belongs to one latch: the application's ("app") or one
// operation's (its 20-character id), so a user whose services use
// operations has one instance per operation, keyed by the operation id.
// Why a table of its own rather than on the user's [users] line: in a
// fleet, the account lines are the same on every server (configuration
// management writes them; a Latch account pairs once per application),
// while the instance ids differ per server and only exist once the server
// has created them. Kept apart, the ids live in the file latch-ssh pair
// owns, and a configuration management run that rewrites the account
// lines leaves them alone.

// InstanceMode is the [latch] instance setting.
type InstanceMode string

// The instance modes.
const (
	// InstanceOff asks the application's (or operation's) latch itself:
	// one latch covers every server of the application.
	InstanceOff InstanceMode = ""
	// InstanceHost gives each server its own instance of the user's
	// latch, named by instance_name.
	InstanceHost InstanceMode = "host"
)

// DefaultInstanceName is the name of a server's instance when
// instance_name is not set: "ssh " and the host name.
const DefaultInstanceName = "ssh %h"

// InstanceAccountKey is the key, in a user's [instances] entry, of the
// Latch account the ids belong to (Config.InstanceAccounts).
const InstanceAccountKey = "account"

// AppInstanceKey is the key of the application latch's instance in a
// user's instances table (operation ids are 20 letters and digits, so it
// cannot be one).
const AppInstanceKey = "app"

// maxInstanceName bounds the expanded instance name (what the Latch app
// shows); a host name is at most 64 characters.
const maxInstanceName = 100

// InstanceKey is the key in a user's instances table of the latch of op
// ("" is the application's latch).
func InstanceKey(op string) string {
	if op == "" {
		return AppInstanceKey
	}
	return op
}

// InstancesOn reports whether decisions ask about each server's own
// instance ([latch] instance = "host").
func (c *Config) InstancesOn() bool { return c.Latch.Instance == InstanceHost }

// Instance returns the instance id to ask about for user's latch op (""
// for the application's), and whether there is one: only with instances
// on and an id stored for that latch. A user without one (paired before
// instances were turned on, or a service given a new operation since) is
// asked about the latch itself, which is the instance's parent: closing it
// still closes every server. `latch-ssh pair --repair` creates what is
// missing; check-config lists it.
func (c *Config) Instance(user, op string) (string, bool) {
	if !c.InstancesOn() || c.StaleInstances(user) {
		return "", false
	}
	id, ok := c.Instances[user][InstanceKey(op)]
	return id, ok
}

// StaleInstances reports whether user's [instances] entry belongs to
// another Latch account than their [users] line names: its ids are then
// never asked about (see the top of this file).
func (c *Config) StaleInstances(user string) bool {
	acc, recorded := c.InstanceAccounts[user]
	if !recorded {
		return false
	}
	cur, _ := c.Account(user)
	return cur != acc
}

// Latches lists the latches user's logins can ask about: the application's
// ("", for every service without an operation: any PAM service can be
// wired) then every operation of [operations] and of the user's
// [user_operations], sorted, each once. Pairing creates an instance for
// each when instances are on.
func (c *Config) Latches(user string) []string {
	ops := map[string]bool{}
	for _, op := range c.Operations {
		ops[op] = true
	}
	for _, op := range c.UserOperations[user] {
		ops[op] = true
	}
	return append([]string{""}, slices.Sorted(maps.Keys(ops))...)
}

// MissingInstances lists the latches (as Latches does) of user that have no
// instance stored, with instances on; nil when instances are off.
func (c *Config) MissingInstances(user string) []string {
	if !c.InstancesOn() {
		return nil
	}
	var out []string
	for _, op := range c.Latches(user) {
		if _, ok := c.Instance(user, op); !ok {
			out = append(out, op)
		}
	}
	return out
}

// InstanceNameFor expands instance_name for the host name host: %h is the
// host name, %% a literal %. The pattern was checked by Parse.
func (c *Config) InstanceNameFor(host string) string {
	pattern := c.Latch.InstanceName
	if pattern == "" {
		pattern = DefaultInstanceName
	}
	return expandInstanceName(pattern, host)
}

func expandInstanceName(pattern, host string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '%' && i+1 < len(pattern) {
			i++
			switch pattern[i] {
			case 'h':
				b.WriteString(host)
			default:
				b.WriteByte(pattern[i])
			}
			continue
		}
		b.WriteByte(pattern[i])
	}
	return b.String()
}

// instances reads [latch] instance and instance_name.
func (c *checker) instances(t *table, l *Latch) {
	const fix = `instance = "host" gives each server its own instance of every user's latch; leave it out (or "") for one latch for every server`
	if t.has("instance") {
		l.Instance = InstanceMode(t.enum("instance", "", fix, string(InstanceHost), string(InstanceOff)))
	}
	name, ok := t.str("instance_name", DefaultInstanceName)
	if !ok {
		return
	}
	if msg := checkInstanceName(name); msg != "" {
		t.report("instance_name", msg, `write the name the Latch app shows for this server's instance, %h for the host name: instance_name = "ssh %h"`)
		return
	}
	l.InstanceName = name
}

// checkInstanceName returns what is wrong with an instance_name pattern,
// or "".
func checkInstanceName(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			if i+1 >= len(p) || (p[i+1] != 'h' && p[i+1] != '%') {
				return fmt.Sprintf("%s has a %% that is not %%h (the host name) or %%%% (a %%)", show(p))
			}
			i++
		}
	}
	longest := expandInstanceName(p, strings.Repeat("h", 64))
	switch {
	case strings.TrimSpace(expandInstanceName(p, "")) == "" && !strings.Contains(p, "%h"):
		return "is empty: the Latch app would show a nameless instance"
	case strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "holds control characters"
	case len(longest) > maxInstanceName:
		return fmt.Sprintf("is too long: with a 64-character host name it would be %d characters, at most %d fit", len(longest), maxInstanceName)
	}
	return ""
}

// instanceTable reads [instances]: user = { app = "<id>", OPERATIONID =
// "<id>" }. A user who is not in [users] is not a problem here (check-config
// warns): configuration management may drop a user's account line from
// one file while the instance ids stay in the pairing file, and that must
// not make the whole configuration invalid, which would deny every login.
func (c *checker) instanceTable(t *table) (map[string]map[string]string, map[string]string) {
	out, accounts := map[string]map[string]string{}, map[string]string{}
	for _, u := range slices.Sorted(maps.Keys(t.m)) {
		if !c.checkName(t.key(u), u, "user") {
			continue
		}
		in := t.sub(u)
		ids := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(in.m)) {
			if k == InstanceAccountKey {
				if acc, ok := in.str(k, ""); ok && c.checkID(in.key(k), acc, accountKind) {
					accounts[u] = acc
				}
				continue
			}
			if k != AppInstanceKey && !isID(k, operationKind.length) {
				in.report(k, fmt.Sprintf("%s is neither %q (the application's latch) nor an operation id (20 letters and digits)", show(k), AppInstanceKey),
					"key each instance by the latch it belongs to; latch-ssh pair --repair writes them")
				continue
			}
			id, isStr := in.str(k, "")
			switch {
			case !isStr:
			case !isInstanceID(id):
				in.report(k, fmt.Sprintf("%s is not an instance id (letters and digits)", show(id)),
					"copy the id Latch gave, or remove the entry and run latch-ssh pair --repair")
			default:
				ids[k] = id
			}
		}
		if len(ids) > 0 {
			out[u] = ids
		}
	}
	return out, accounts
}

// isInstanceID reports whether id has the shape the latch client accepts
// for an instance id: 1 to 128 letters and digits. (Latch does not
// document the shape; the fake makes 20.)
func isInstanceID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	return isID(id, len(id))
}
