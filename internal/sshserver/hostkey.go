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

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// LoadHostKeys reads the host private keys at paths. A path that does not
// exist gets a new key first (mode 0600, with its public half in PATH.pub),
// so the server's fingerprint stays the same across restarts and clients
// can pin it: an RSA key (3072 bits) when the file name says "rsa", like
// ssh_host_rsa_key, and an ed25519 key otherwise (see GeneratedKeyType).
// Like sshd, a key file that others may read or write, or that belongs to
// someone else, is refused with the fix in the error, and so is one in a
// directory others may write (hostKeyPolicy); so are DSA keys,
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

// hostKeyPolicy is the rule for host private keys (pathtrust): owned by
// root or the user the server runs as, and so is every directory on the
// way (sshd checks only the file; but whoever can replace the key can
// impersonate the server, and a key generated in a directory others can
// write could be swapped for theirs); readable by no one else; a sticky
// directory such as /tmp is accepted above the key's own directory.
func hostKeyPolicy() pathtrust.Policy {
	p := pathtrust.Policy{
		Sticky:   true,
		Private:  true,
		FileRisk: "replace the server's identity",
		DirRisk:  "replace the host key below it",
		ReadRisk: "read the host private key and impersonate the server",
	}
	if euid := os.Geteuid(); euid != 0 {
		p.User, p.HasUser, p.UserName = uint32(euid), true, "the user the server runs as"
	}
	return p
}

// readKeyFile reads a private key file after the checks of hostKeyPolicy.
// An error wraps fs.ErrNotExist when the file does not exist (and the
// directories before it passed the checks).
func readKeyFile(path string) ([]byte, error) {
	f, _, _, err := pathtrust.Open(path, hostKeyPolicy())
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	defer f.Close()
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
