package users

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// SetInstances records user's instance ids (keyed by InstanceKey, and
// the account they belong to under InstanceAccountKey) in the
// [instances] table of the configuration file at path, in place, the way
// SetUser edits [users]: it replaces the user's line, adds one (creating
// the table at the end of the file when there is none), or with no ids
// removes it, and leaves every other byte of the file as it was. It
// refuses an [instances] table written with sub-tables or dotted keys, and
// any edit that would change anything else or make a valid configuration
// invalid. The file is replaced atomically under the same lock as SetUser's.
func SetInstances(path, user string, instances map[string]string) error {
	if !namePattern.MatchString(user) {
		return fmt.Errorf("%s is not a valid user name: %s", show(user), nameRule)
	}
	for k, id := range instances {
		if k == InstanceAccountKey {
			if !isID(id, accountKind.length) {
				return fmt.Errorf("instance account %s: not an account id", show(id))
			}
			continue
		}
		if (k != AppInstanceKey && !isID(k, operationKind.length)) || !isInstanceID(id) {
			return fmt.Errorf("instance %s = %s: not an instance of a latch", show(k), show(id))
		}
	}
	return editFile(path, func(data []byte) ([]byte, error) {
		return editInstances(data, user, instances)
	}, nil)
}

// editInstances is the pure part of SetInstances.
func editInstances(data []byte, user string, instances map[string]string) ([]byte, error) {
	e := entryEdit{table: "instances", user: user, perLine: "one user = { ... }",
		intro: "# This server's Latch instances of each user's latch: latch-ssh pair writes them."}
	if len(instances) > 0 {
		in := map[string]any{}
		for k, v := range instances {
			in[k] = v
		}
		e.text, e.value = instancesValue(instances), in
	}
	out, _, err := editEntry(data, e)
	return out, err
}

// instancesValue writes a user's instances as an inline table, the
// application's first.
func instancesValue(instances map[string]string) string {
	keys := slices.SortedFunc(maps.Keys(instances), func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == InstanceAccountKey:
			return -1
		case b == InstanceAccountKey:
			return 1
		case a == AppInstanceKey:
			return -1
		case b == AppInstanceKey:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " = " + strconv.Quote(instances[k])
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// userKey is user as a key: quoted unless bare (a dot would make a bare
// key dotted).
func userKey(user string) string {
	if isBareKey(user) {
		return user
	}
	return strconv.Quote(user)
}
