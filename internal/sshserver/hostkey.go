package sshserver

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
)

// LoadHostKeys reads the host private keys at paths. A path that does not
// exist gets a new key first (mode 0600, with its public half in PATH.pub),
// so the server's fingerprint stays the same across restarts and clients
// can pin it: an RSA key (3072 bits) when the file name says "rsa", like
// ssh_host_rsa_key, and an ed25519 key otherwise (see GeneratedKeyType).
// Like sshd, a key file that others may read or write, or that belongs to
// someone else, is refused with the fix in the error; so are DSA keys,
// RSA keys under 2048 bits and two keys of the same type (algorithms.go).
func LoadHostKeys(paths []string, log zerolog.Logger) ([]gossh.Signer, error) {
	if len(paths) == 0 {
		return nil, errors.New("no host key configured ([server] host_key)")
	}
	signers := make([]gossh.Signer, 0, len(paths))
	byType := map[string]string{}
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
				log.Warn().Str("event", "host-key").Str("path", p).Str("type", GeneratedKeyType(p)).
					Msg("generated a new host key")
			}
		}
		if err != nil {
			return nil, err
		}
		signer, err := parseHostKey(p, data)
		if err != nil {
			return nil, err
		}
		typ := signer.PublicKey().Type()
		if first, ok := byType[typ]; ok {
			return nil, fmt.Errorf("host key %s: a second %s key after %s; the server offers one key per type; fix: keep one of them in [server] host_key", p, typ, first)
		}
		byType[typ] = p
		signers = append(signers, signer)
	}
	return signers, nil
}

// parseHostKey parses a host private key and applies the server's rules
// on host keys (hostSigner: no DSA, no small RSA).
func parseHostKey(path string, data []byte) (gossh.Signer, error) {
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if _, err := hostSigner(signer); err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return signer, nil
}

// GeneratedKeyType returns the type of key LoadHostKeys generates at path
// when the file does not exist: "rsa" (3072 bits) when the file name
// contains "rsa", as OpenSSH names its RSA host key ssh_host_rsa_key;
// "" (none: the admin must create it) when it contains "dsa", as in
// ssh_host_ecdsa_key or ssh_host_dsa_key, rather than an ed25519 key under
// a name that says otherwise; "ed25519" otherwise. The RSA key is only for
// old clients without ed25519, and only if the admin lists such a path:
// the default is one ed25519 key.
func GeneratedKeyType(path string) string {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.Contains(base, "rsa"):
		return "rsa"
	case strings.Contains(base, "dsa"):
		return ""
	}
	return "ed25519"
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
		if GeneratedKeyType(path) == "" {
			return false, errNoGenerate(path)
		}
		dir := filepath.Dir(path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return false, fmt.Errorf("host key %s: directory %s does not exist; fix: mkdir -p -m 755 %s", path, dir, dir)
		}
		return false, nil
	}
	if err != nil {
		return true, err
	}
	if _, err := parseHostKey(path, data); err != nil {
		return true, err
	}
	return true, nil
}

// errNoGenerate is the error for a missing key whose name asks for a type
// that is not generated.
func errNoGenerate(path string) error {
	return fmt.Errorf("host key %s: does not exist, and its name asks for an (EC)DSA key, which is not generated (ed25519, or rsa for a name containing \"rsa\", are); fix: ssh-keygen -t ecdsa -N '' -f %s, or list an ed25519 key instead", path, path)
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

// generateHostKey writes a new key of GeneratedKeyType to path without
// ever replacing an existing file: the key goes to a temporary file in the
// same directory and is hard-linked into place, so two servers starting at
// once cannot leave a half-written key or two different ones.
func generateHostKey(path string) error {
	var priv crypto.Signer
	var err error
	switch GeneratedKeyType(path) {
	case "rsa":
		// ssh-keygen's default size for RSA.
		priv, err = rsa.GenerateKey(rand.Reader, 3072)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return errNoGenerate(path)
	}
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
