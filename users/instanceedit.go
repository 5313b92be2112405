package users

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// SetInstances records user's instance ids (keyed by InstanceKey) on the
// user's [users] line of the configuration at path, in place, the way
// SetUser edits: the value becomes
//
//	user = { account = "...", instances = { app = "...", OPERATIONID = "..." } }
//
// (or the plain "account" again when instances is empty), keeping the
// line's comment and every other byte of the file. The user must be mapped
// to account there, on one line of a [users] table: a line changed since
// the caller read it (another pairing, an admin's edit) is an error, not
// overwritten. The edit is checked by decoding as SetUser's is, and is
// atomic under the same lock.
func SetInstances(path, user, account string, instances map[string]string) error {
	if err := checkEditArgs(user, account, false); err != nil {
		return err
	}
	for k, id := range instances {
		if (k != AppInstanceKey && !isID(k, operationKind.length)) || !isInstanceID(id) {
			return fmt.Errorf("instance %s = %s: not an instance of a latch", show(k), show(id))
		}
	}
	return editFile(path, func(data []byte) ([]byte, error) {
		return editInstances(data, user, account, instances)
	}, nil)
}

// editInstances is the pure part of SetInstances.
func editInstances(data []byte, user, account string, instances map[string]string) ([]byte, error) {
	old, err := decodeRaw(data)
	if err != nil {
		return nil, fmt.Errorf("fix the file first: %w", decodeProblem(data, err))
	}
	table, _ := old["users"].(map[string]any)
	var cur string
	switch v := table[user].(type) {
	case string:
		cur = v
	case map[string]any:
		cur, _ = v["account"].(string)
	default:
		return nil, fmt.Errorf("%s is %w", show(user), ErrNotMapped)
	}
	if cur != account {
		return nil, fmt.Errorf("%s is now mapped to another Latch account than the one whose instances were created; run latch-ssh pair --repair --user %s", show(user), user)
	}
	lines := scanLines(data)
	target, header := -1, -1
	for i, l := range lines {
		switch {
		case l.kind == lineHeader && len(l.path) == 1 && l.path[0] == "users" && !l.arrayTable:
			header = i
		case l.kind == lineKeyValue && header >= 0 && len(l.key) == 1 && slices.Equal(l.path, []string{"users", user}):
			target = i
		}
	}
	if target < 0 || lines[target].open {
		return nil, fmt.Errorf("%s is not written on one line of a [users] table; edit it by hand: %s = %s",
			show(user), userKey(user), instancesValue(account, instances))
	}
	out := splice(data, lines[target].valStart, lines[target].valEnd, []byte(instancesValue(account, instances)))
	got, err := decodeRaw(out)
	if err != nil {
		return nil, fmt.Errorf("refusing the edit, edit the file by hand: the result would not decode: %w", decodeProblem(out, err))
	}
	table[user] = account
	if len(instances) > 0 {
		in := map[string]any{}
		for k, v := range instances {
			in[k] = v
		}
		table[user] = map[string]any{"account": account, "instances": in}
	}
	if !reflect.DeepEqual(got, old) {
		return nil, errors.New("refusing the edit: it would change more than the one user's entry; edit the file by hand")
	}
	if _, err := Parse("", data); err == nil {
		if _, err := Parse("", out); err != nil {
			return nil, fmt.Errorf("refusing the edit: the configuration would become invalid:\n%w", err)
		}
	}
	return out, nil
}

// instancesValue writes a user's value: the quoted account, or an inline
// table with the account and the instances, the application's first.
func instancesValue(account string, instances map[string]string) string {
	if len(instances) == 0 {
		return strconv.Quote(account)
	}
	keys := slices.SortedFunc(maps.Keys(instances), func(a, b string) int {
		switch {
		case a == b:
			return 0
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
	return fmt.Sprintf("{ account = %s, instances = { %s } }", strconv.Quote(account), strings.Join(parts, ", "))
}

// userKey is user as a [users] key.
func userKey(user string) string {
	if isBareKey(user) {
		return user
	}
	return strconv.Quote(user)
}
