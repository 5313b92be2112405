package users

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"

	"github.com/BurntSushi/toml"
)

// ErrNotMapped is returned (wrapped) by RemoveUser for a user who is not in
// [users].
var ErrNotMapped = errors.New("not in [users]")

// SetUser maps user to account in the [users] table of the configuration
// at path, in place: it replaces the value of an existing entry (keeping
// its comment) or adds a line, and leaves every other byte of the file as
// it was. It refuses files Load would refuse, [users] written as an inline
// table or with dotted keys, and any edit that would change anything else
// or make a valid configuration invalid. The file is replaced atomically
// under a lock, keeping its mode and owner; on error it is untouched.
func SetUser(path, user, account string) error {
	return setUser(path, user, account, nil)
}

// setUser is SetUser; beforeReplace, when not nil (tests only), runs just
// before the edited file replaces the old one.
func setUser(path, user, account string, beforeReplace func(path string)) error {
	if err := checkEditArgs(user, account, false); err != nil {
		return err
	}
	return editFile(path, func(data []byte) ([]byte, error) {
		return editUsers(data, user, account, false)
	}, beforeReplace)
}

// ErrAlreadyMapped is returned (wrapped) by AddUser for a user who is
// already in [users].
var ErrAlreadyMapped = errors.New("already in [users]")

// AddUser is SetUser for a user who must not be mapped yet: it checks
// under the edit lock, so two pairings of one user racing from different
// processes cannot both succeed (the loser would leave a Latch pairing no
// line points to). A mapped user gives an error wrapping ErrAlreadyMapped.
func AddUser(path, user, account string) error {
	if err := checkEditArgs(user, account, false); err != nil {
		return err
	}
	return editFile(path, func(data []byte) ([]byte, error) {
		old, err := decodeRaw(data)
		if err != nil {
			return nil, err
		}
		if users, _ := old["users"].(map[string]any); users != nil {
			if _, ok := users[user]; ok {
				return nil, fmt.Errorf("%s: %w", user, ErrAlreadyMapped)
			}
		}
		return editUsers(data, user, account, false)
	}, nil)
}

// RemoveUser deletes user's line from [users] the way SetUser edits, and
// returns the account the user was mapped to. A user who is not mapped
// gives an error wrapping ErrNotMapped. Deciding whether to unpair the
// account at Latch (Config.UsersOfAccount) is the caller's job.
func RemoveUser(path, user string) (previousAccount string, err error) {
	if err := checkEditArgs(user, "", true); err != nil {
		return "", err
	}
	err = editFile(path, func(data []byte) ([]byte, error) {
		out, err := editUsers(data, user, "", true)
		if err == nil {
			// editUsers decoded data, so this cannot fail.
			old, _ := decodeRaw(data)
			users, _ := old["users"].(map[string]any)
			previousAccount, _ = users[user].(string)
		}
		return out, err
	}, nil)
	if err != nil {
		return "", err
	}
	return previousAccount, nil
}

func checkEditArgs(user, account string, remove bool) error {
	if !namePattern.MatchString(user) {
		return fmt.Errorf("%s is not a valid user name: %s", show(user), nameRule)
	}
	if !remove && !isID(account, accountKind.length) {
		return fmt.Errorf("account id %s is not %d letters and digits", show(account), accountKind.length)
	}
	return nil
}

// editFile applies edit to the configuration at path under an exclusive
// lock on its directory, re-reading the file under the lock so concurrent
// editors do not lose each other's changes, and replaces it atomically.
func editFile(path string, edit func([]byte) ([]byte, error), beforeReplace func(path string)) error {
	// Find the real file first (the lock and the temporary file belong in
	// its directory, and renaming over a symlink would replace the link).
	f, real, _, err := openChecked(path)
	if err != nil {
		return err
	}
	f.Close()
	dir := filepath.Dir(real)
	// Locking the directory, not the file, because the file is replaced:
	// a lock on the old inode would not exclude an editor of the new one.
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening %s to lock it: %w", dir, err)
	}
	defer d.Close()
	if err := flock(d); err != nil {
		return fmt.Errorf("locking %s: %w", dir, err)
	}
	data, again, fi, err := readConfig(path)
	if err != nil {
		return err
	}
	if again != real {
		return fmt.Errorf("%s: now resolves to %s, not %s; try again", path, again, real)
	}
	out, err := edit(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(out, data) {
		return nil
	}
	return replaceFile(d, real, fi, data, out, beforeReplace)
}

// flock takes an exclusive advisory lock on f, released when f is closed.
func flock(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = conn.Control(func(fd uintptr) {
		for {
			lockErr = syscall.Flock(int(fd), syscall.LOCK_EX)
			if lockErr != syscall.EINTR {
				return
			}
		}
	})
	return errors.Join(err, lockErr)
}

// replaceFile writes data to a new file in dir with the mode and owner of
// fi and renames it over path, syncing file and directory so the change
// survives a crash whole or not at all. Just before the rename it checks
// that path still holds old, the file the edit was made from (fi): the
// lock keeps other latch-ssh editors out, but an administrator saving the
// file from an editor takes no lock, and renaming over their save would
// silently throw their change away.
func replaceFile(dir *os.File, path string, fi os.FileInfo, old, data []byte, beforeReplace func(path string)) (err error) {
	if beforeReplace != nil {
		beforeReplace(path)
	}
	tmp, err := os.CreateTemp(dir.Name(), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	st := fi.Sys().(*syscall.Stat_t) // CheckFile in readConfig made sure
	if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("keeping the owner of %s: %w", path, err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return fmt.Errorf("keeping the mode of %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if !unchanged(path, fi, old) {
		return fmt.Errorf("%s was changed by someone else while it was being edited; nothing was written, try again", path)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	if err := dir.Sync(); err != nil {
		// The new file is in place; only its durability is in doubt.
		return fmt.Errorf("syncing %s after replacing %s: %w", dir.Name(), path, err)
	}
	return nil
}

// unchanged reports whether path is still the file fi with content old.
func unchanged(path string, fi os.FileInfo, old []byte) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	cur, err := f.Stat()
	if err != nil || !os.SameFile(cur, fi) {
		return false
	}
	now, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	return err == nil && bytes.Equal(now, old)
}

// editUsers returns data with [users] user set to account, or with user's
// line removed. It is the pure part of SetUser and RemoveUser: see there
// for what it refuses. Before returning, it decodes the result and checks
// that the document is the old one with exactly this change.
func editUsers(data []byte, user, account string, remove bool) ([]byte, error) {
	if err := checkEditArgs(user, account, remove); err != nil {
		return nil, err
	}
	e := entryEdit{table: "users", user: user, perLine: `one user = "account"`}
	if !remove {
		e.text, e.value = strconv.Quote(account), account
	}
	out, found, err := editEntry(data, e)
	if err == nil && !found {
		return nil, fmt.Errorf("%s is %w", show(user), ErrNotMapped)
	}
	return out, err
}

// entryEdit is one edit of a user's one-line entry in a table: [users]
// (SetUser, RemoveUser) or [instances] (SetInstances).
type entryEdit struct {
	table, user string
	// text is the value as written into the file, "" to remove the
	// line; value is the same as the TOML decoder reads it back.
	text  string
	value any
	// perLine says, for the refusal of a table written another way,
	// how its lines must look.
	perLine string
	// intro is a comment line above a table the edit has to create.
	intro string
}

// editEntry applies e to data, changing only the bytes of the one line
// (or adding one), and keeping every comment and the line endings. found
// is false, with data unchanged, when a removal finds no line. It refuses
// a table written inline, with dotted keys or as sub-tables, and a value
// that spans lines. The safety net under the line scanner: the edited
// document must decode to the old one with exactly this change, and a
// valid configuration must stay valid (removing a user who still has
// [user_operations] would break every login).
func editEntry(data []byte, e entryEdit) (out []byte, found bool, err error) {
	old, err := decodeRaw(data)
	if err != nil {
		return nil, false, fmt.Errorf("fix the file first: %w", decodeProblem(data, err))
	}
	if _, isMap := old[e.table].(map[string]any); old[e.table] != nil && !isMap {
		return nil, false, fmt.Errorf("%s is not a table; edit it by hand", e.table)
	}
	lines := scanLines(data)
	header, target, cur := -1, -1, -1 // cur: the header in force
	for i, l := range lines {
		if l.kind == lineHeader {
			cur = i
		}
		if len(l.path) == 0 || l.path[0] != e.table {
			continue
		}
		switch {
		case l.kind == lineHeader && len(l.path) == 1 && !l.arrayTable && header < 0:
			header = i
		case l.kind == lineKeyValue && len(l.key) == 1 && cur == header && header >= 0:
			if l.key[0] == e.user {
				target = i
			}
		case l.kind != lineCont:
			return nil, false, fmt.Errorf("line %d: [%s] is written as an inline table, with dotted keys or as sub-tables; "+
				"edit it by hand, or rewrite it as a [%s] table with %s per line", l.num, e.table, e.table, e.perLine)
		}
	}
	line := userKey(e.user) + " = " + e.text
	switch {
	case e.text == "" && target < 0:
		return data, false, nil
	case target >= 0 && lines[target].open:
		return nil, false, fmt.Errorf("line %d: the value of %s spans lines; edit it by hand", lines[target].num, show(e.user))
	case e.text == "":
		out = splice(data, lines[target].start, lines[target].next, nil)
	case target >= 0:
		out = splice(data, lines[target].valStart, lines[target].valEnd, []byte(e.text))
	case header >= 0:
		out = insertLine(data, lines, header, line)
	default:
		eol := "\n"
		if len(lines) > 0 && lines[0].crlf() {
			eol = "\r\n"
		}
		out = append([]byte(nil), data...)
		if len(out) > 0 {
			if out[len(out)-1] != '\n' {
				out = append(out, eol...)
			}
			out = append(out, eol...)
		}
		if e.intro != "" {
			out = append(out, e.intro+eol...)
		}
		out = append(out, "["+e.table+"]"+eol+line+eol...)
	}

	got, err := decodeRaw(out)
	if err != nil {
		return nil, false, fmt.Errorf("refusing the edit, edit the file by hand: the result would not decode: %w", decodeProblem(out, err))
	}
	table, _ := old[e.table].(map[string]any)
	if table == nil {
		table = map[string]any{}
		old[e.table] = table
	}
	delete(table, e.user)
	if e.text != "" {
		table[e.user] = e.value
	}
	if !reflect.DeepEqual(got, old) {
		return nil, false, fmt.Errorf("refusing the edit: it would change more than %s's entry in [%s]; edit the file by hand", show(e.user), e.table)
	}
	if _, err := Parse("", data); err == nil {
		if _, err := Parse("", out); err != nil {
			return nil, false, fmt.Errorf("refusing the edit: the configuration would become invalid:\n%w", err)
		}
	}
	return out, true, nil
}

// insertLine adds the key/value line kv after the last key/value line of
// the table that starts at lines[header] (after the header if there is
// none), so blank lines and comments introducing the next table stay with
// it.
func insertLine(data []byte, lines []tomlLine, header int, kv string) []byte {
	last, indent := header, ""
	for i := header + 1; i < len(lines) && lines[i].kind != lineHeader; i++ {
		switch lines[i].kind {
		case lineKeyValue:
			last = i
			text := data[lines[i].start:lines[i].end]
			indent = string(text[:skipBlank(text, 0)])
		case lineCont:
			last = i
		}
	}
	l := lines[last]
	eol := "\n"
	if lines[header].crlf() {
		eol = "\r\n"
	}
	text := indent + kv + eol
	if l.next == l.end { // the last line has no line ending
		text = eol + indent + kv
	}
	return splice(data, l.next, l.next, []byte(text))
}

func splice(data []byte, from, to int, with []byte) []byte {
	out := make([]byte, 0, len(data)-(to-from)+len(with))
	return append(append(append(out, data[:from]...), with...), data[to:]...)
}

// decodeProblem describes a decoding error of data as Parse does, which
// hides the decoder's quote of a broken secret.
func decodeProblem(data []byte, err error) error {
	c := &checker{srcs: []source{{data: data, idx: indexLines(data)}}}
	c.syntax(0, err)
	return c.probs
}

func decodeRaw(data []byte) (map[string]any, error) {
	var raw map[string]any
	_, err := toml.Decode(string(data), &raw)
	return raw, err
}
