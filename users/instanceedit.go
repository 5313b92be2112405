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
	old, err := decodeRaw(data)
	if err != nil {
		return nil, fmt.Errorf("fix the file first: %w", decodeProblem(data, err))
	}
	if _, isMap := old["instances"].(map[string]any); old["instances"] != nil && !isMap {
		return nil, errors.New("instances is not a table; edit it by hand")
	}
	lines := scanLines(data)
	header, target, cur := -1, -1, -1
	for i, l := range lines {
		if l.kind == lineHeader {
			cur = i
		}
		if len(l.path) == 0 || l.path[0] != "instances" {
			continue
		}
		switch {
		case l.kind == lineHeader && len(l.path) == 1 && !l.arrayTable && header < 0:
			header = i
		case l.kind == lineKeyValue && len(l.key) == 1 && cur == header && header >= 0:
			if l.key[0] == user {
				target = i
			}
		case l.kind != lineCont:
			return nil, fmt.Errorf("line %d: [instances] is written with sub-tables or dotted keys; edit it by hand, one user = { ... } per line", l.num)
		}
	}
	line := userKey(user) + " = " + instancesValue(instances)
	var out []byte
	switch {
	case target >= 0 && lines[target].open:
		return nil, fmt.Errorf("line %d: the value of %s spans lines; edit it by hand", lines[target].num, show(user))
	case len(instances) == 0 && target < 0:
		return data, nil
	case len(instances) == 0:
		out = splice(data, lines[target].start, lines[target].next, nil)
	case target >= 0:
		out = splice(data, lines[target].valStart, lines[target].valEnd, []byte(instancesValue(instances)))
	case header >= 0:
		out = insertLine(data, lines, header, line)
	default:
		eol := "\n"
		if len(lines) > 0 && lines[0].crlf() {
			eol = "\r\n"
		}
		out = append([]byte(nil), data...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, eol...)
		}
		out = append(out, eol+"# This server's Latch instances of each user's latch: latch-ssh pair writes them."+eol+
			"[instances]"+eol+line+eol...)
	}
	got, err := decodeRaw(out)
	if err != nil {
		return nil, fmt.Errorf("refusing the edit, edit the file by hand: the result would not decode: %w", decodeProblem(out, err))
	}
	table, _ := old["instances"].(map[string]any)
	if table == nil {
		table = map[string]any{}
		old["instances"] = table
	}
	delete(table, user)
	if len(instances) > 0 {
		in := map[string]any{}
		for k, v := range instances {
			in[k] = v
		}
		table[user] = in
	}
	if !reflect.DeepEqual(got, old) {
		return nil, errors.New("refusing the edit: it would change more than the one user's instances; edit the file by hand")
	}
	if _, err := Parse("", data); err == nil {
		if _, err := Parse("", out); err != nil {
			return nil, fmt.Errorf("refusing the edit: the configuration would become invalid:\n%w", err)
		}
	}
	return out, nil
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
