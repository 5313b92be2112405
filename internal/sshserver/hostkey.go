package sshserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
)

// LoadHostKeys reads the host private keys at paths. A path that does not
// exist gets a new ed25519 key first (mode 0600, with its public half in
// PATH.pub), so the server's fingerprint stays the same across restarts and
// clients can pin it. Like sshd, a key file that others may read or write,
// or that belongs to someone else, is refused with the fix in the error.
func LoadHostKeys(paths []string, log zerolog.Logger) ([]gossh.Signer, error) {
	if len(paths) == 0 {
		return nil, errors.New("no host key configured ([server] host_key)")
	}
	signers := make([]gossh.Signer, 0, len(paths))
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("host key %s: not an absolute path", p)
		}
		data, err := readKeyFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := generateHostKey(p); err != nil {
				return nil, err
			}
			data, err = readKeyFile(p)
			if err == nil {
				log.Warn().Str("event", "host-key").Str("path", p).Msg("generated a new ed25519 host key")
			}
		}
		if err != nil {
			return nil, err
		}
		signer, err := gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", p, err)
		}
		signers = append(signers, signer)
	}
	return signers, nil
}

// CheckHostKey reports whether the server could use path as a host key:
// an existing key must pass the same checks as at start (owner, mode, a
// parsable private key); a missing one must have an existing directory to
// be generated in. It changes nothing, for check-config.
func CheckHostKey(path string) (exists bool, err error) {
	if !filepath.IsAbs(path) {
		return false, fmt.Errorf("host key %s: not an absolute path", path)
	}
	data, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return false, fmt.Errorf("host key %s: directory %s does not exist; fix: mkdir -p -m 755 %s", path, dir, dir)
		}
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if _, err := gossh.ParsePrivateKey(data); err != nil {
		return true, fmt.Errorf("host key %s: %w", path, err)
	}
	return true, nil
}

// readKeyFile reads a private key file after sshd's checks on the open
// file: a regular file, owned by us (or root), not readable or writable by
// group or others.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("host key %s: not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("host key %s: cannot read its owner", path)
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid && st.Uid != 0 {
		return nil, fmt.Errorf("host key %s: owned by uid %d; fix: chown %d %s", path, st.Uid, uid, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("host key %s: mode %04o lets others read it; fix: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	const maxKey = 64 << 10
	data, err := io.ReadAll(io.LimitReader(f, maxKey+1))
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if len(data) > maxKey {
		return nil, fmt.Errorf("host key %s: larger than %d bytes", path, maxKey)
	}
	return data, nil
}

// generateHostKey writes a new ed25519 key to path without ever replacing
// an existing file: the key goes to a temporary file in the same directory
// and is hard-linked into place, so two servers starting at once cannot
// leave a half-written key or two different ones.
func generateHostKey(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "latch-ssh host key")
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("host key %s: directory %s does not exist; fix: mkdir -p -m 755 %s", path, dir, dir)
	}
	tmp, err := os.CreateTemp(dir, ".hostkey-*")
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(pem.EncodeToMemory(block))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // someone else won the race; their key is used
		}
		return fmt.Errorf("host key %s: %w", path, err)
	}
	pub := gossh.MarshalAuthorizedKey(signer.PublicKey())
	// The .pub is a convenience for admins; the private key is the truth.
	_ = os.WriteFile(path+".pub", pub, 0o644)
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
