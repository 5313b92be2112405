package authkeys

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/asuser"
	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// Match returns the first key in keys equal to offered, comparing the wire
// encodings (Marshal). A certificate never equals a plain key, so a client
// offering a certificate matches nothing (certificates are not supported).
//
// The comparison is not constant-time on purpose: public keys are not
// secrets, and the SSH protocol itself tells a client whether the server
// would accept a key before any signature (the "publickey" query), so
// timing reveals nothing the protocol does not.
func Match(keys []Key, offered ssh.PublicKey) (*Key, bool) {
	if offered == nil {
		return nil, false
	}
	want := offered.Marshal()
	for i := range keys {
		if keys[i].Key != nil && bytes.Equal(keys[i].Key.Marshal(), want) {
			return &keys[i], true
		}
	}
	return nil, false
}

// ExpandPath expands an sshd AuthorizedKeysFile pattern for one user: %h is
// the home directory, %u the user name, %% a literal %; any other % sequence
// is an error. A relative result is taken relative to home, as sshd does.
// home must be absolute; user must not hold a '/' or be "." or ".." (it
// would lead the path elsewhere). The result is cleaned.
func ExpandPath(pattern, user, home string) (string, error) {
	if !filepath.IsAbs(home) {
		return "", fmt.Errorf("authorized keys path %q: home directory %q is not absolute", pattern, home)
	}
	if user == "" || user == "." || user == ".." || strings.ContainsAny(user, "/\x00") {
		return "", fmt.Errorf("authorized keys path %q: unsafe user name %q", pattern, user)
	}
	if pattern == "" || strings.ContainsRune(pattern, 0) {
		return "", fmt.Errorf("authorized keys path %q: empty or holds a NUL", pattern)
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '%' {
			b.WriteByte(pattern[i])
			continue
		}
		if i+1 == len(pattern) {
			return "", fmt.Errorf("authorized keys path %q: ends with a lone %%", pattern)
		}
		i++
		switch pattern[i] {
		case 'h':
			b.WriteString(home)
		case 'u':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("authorized keys path %q: unknown token %%%c (only %%h, %%u and %%%% are supported)", pattern, pattern[i])
		}
	}
	p := b.String()
	if !filepath.IsAbs(p) {
		p = filepath.Join(home, p)
	}
	return filepath.Clean(p), nil
}

// PermissionError says why an authorized_keys file, or a directory above
// it, is not safe to trust, and the command that makes it safe: the one
// error of package pathtrust.
type PermissionError = pathtrust.Error

// Load checks and parses the authorized_keys file at path for user (whose
// uid owns the keys) with home directory home, with sshd's StrictModes
// rules made stricter:
//
//   - the file must be a regular file owned by root or the user, not
//     writable by group or others;
//   - every directory from the file up to / (the home included and every
//     directory above it) must be owned by root or the user and not
//     writable by group or others. Unlike users.CheckDirs there is no
//     exception for sticky directories: a home or key file under /tmp is
//     refused. (sshd stops at the home directory; we also check above it.)
//
// The walk, the checks and their messages are package pathtrust's, with
// the policy below.
//
// Everything, from the first lstat to the last read, is done with the
// user's credentials (asuser.Run), as sshd does with temporarily_use_uid:
// the daemon is root, and the user controls the path (a symbolic link in
// their home can point anywhere). Read as root, a link to a root-only file
// would let the user learn which keys it holds, or copy /etc/shadow into
// the log through the parse errors. Read as the user, such a link fails
// with "permission denied" like any other file the user cannot read, so
// nothing leaves the user's control: a link is followed only as far as the
// user could follow it themselves.
//
// A symlink is followed, as sshd does, but the directories holding the link
// and those holding each target are all checked, at most 8 links deep, and
// ".." after a link means the parent of its target, as for the kernel; the
// final file is opened with O_NOFOLLOW and checked with fstat on the open
// descriptor, so what is read is what was checked. Only root and the user
// can change anything along the checked paths, and the user may edit the
// file anyway, so a race between the checks and the open gains nobody
// anything.
//
// Errors: a *PermissionError (with the path and the fix), an error wrapping
// fs.ErrNotExist when the file (or a directory) does not exist (the server
// treats that as "no keys"), an error wrapping fs.ErrPermission when the
// user may not read it, or a Parse error (which never quotes the file's
// content). home is used to word the fixes: inside it, "chown UID"; above
// it, "chown root".
func Load(path string, user asuser.Creds, home string) ([]Key, []Skipped, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("authorized keys file %q: not an absolute path", path)
	}
	var (
		keys    []Key
		skipped []Skipped
	)
	err := asuser.Run(user, func() error {
		var err error
		keys, skipped, err = load(path, user.UID, home)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return keys, skipped, nil
}

// load is Load with the caller's credentials (already the user's).
func load(path string, owner uint32, home string) ([]Key, []Skipped, error) {
	f, real, _, err := pathtrust.Open(path, policy(owner, home))
	var pe *PermissionError
	if err != nil && !errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("authorized keys file: %w", err)
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return Parse(f, real)
}

// policy is sshd's StrictModes rule for the authorized_keys of user uid
// owner with home directory home (pathtrust): the file and every directory
// on its way owned by root or the user, writable by no one else, no sticky
// directory (sshd's secure_filename refuses /tmp-like directories too, and
// a home both servers accept should be the same home). Fixes inside the
// home say "chown UID", above it "chown root".
func policy(owner uint32, home string) pathtrust.Policy {
	return pathtrust.Policy{
		User:     owner,
		HasUser:  true,
		UserName: "the user",
		Home:     filepath.Clean(home),
		Moved:    "the home directory or key file",
		FileRisk: "add keys",
		DirRisk:  "replace the keys below it",
	}
}
