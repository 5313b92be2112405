package sshserver

import (
	"crypto/rsa"
	"errors"
	"fmt"

	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// The algorithms of the embedded server, all in one place (issue 13, point
// 3: no weaker than OpenSSH's defaults).
//
// golang.org/x/crypto/ssh's own defaults are kept wide for old peers: as a
// server it accepts ssh-dss user keys and ssh-rsa (SHA-1) signatures, and
// offers diffie-hellman-group14-sha1, hmac-sha1 and hmac-sha1-96, all of
// which OpenSSH's sshd no longer offers by default (DSA was removed in 9.8,
// ssh-rsa signatures off by default since 8.8). So every list is set here,
// explicitly, to OpenSSH 9.x's default server proposal (myproposal.h,
// KEX_SERVER and KEX_DEFAULT_PK_ALG, checked against openssh-portable tags
// V_9_2_P1 and V_9_9_P2) restricted to what x/crypto implements, in
// OpenSSH's order. The server never offers anything OpenSSH's sshd would
// not; TestAlgorithmsSSHAudit compares the two with ssh-audit.
//
// What OpenSSH offers and x/crypto does not implement (so clients use the
// next one in the list; nothing here is weakened by their absence):
//   - kex sntrup761x25519-sha512 (and @openssh.com): the other post-quantum
//     hybrid; mlkem768x25519-sha256, which OpenSSH 10 puts first, is here;
//   - kex diffie-hellman-group18-sha512;
//   - MACs umac-64/128(-etm)@openssh.com and hmac-sha1-etm@openssh.com;
//   - host key and user key algorithms webauthn-sk-ecdsa-sha2-nistp256 and
//     certificates (the server has no certificate support at all).
//
// Left out on purpose although OpenSSH 9.x still offers them: the MAC
// hmac-sha1 (SHA-1; every client that has the ciphers below has a SHA-2
// MAC or an AEAD cipher, which needs no MAC).
//
// OpenSSH 10.0 also dropped the finite-field ("modp") Diffie-Hellman
// groups from sshd's defaults. They are kept here, as in OpenSSH 9.x, for
// clients without elliptic curves; they use 2048-bit or larger groups and
// SHA-2, and the client's preference picks an elliptic-curve or
// post-quantum exchange whenever it has one.
var (
	// serverKeyExchanges is OpenSSH 9.x's KEX_SERVER_KEX, post-quantum
	// hybrid first. x/crypto adds curve25519-sha256@libssh.org (the same
	// exchange under its older name) after curve25519-sha256 by itself.
	serverKeyExchanges = []string{
		gossh.KeyExchangeMLKEM768X25519, // mlkem768x25519-sha256
		gossh.KeyExchangeCurve25519,     // curve25519-sha256
		gossh.KeyExchangeECDHP256,       // ecdh-sha2-nistp256
		gossh.KeyExchangeECDHP384,       // ecdh-sha2-nistp384
		gossh.KeyExchangeECDHP521,       // ecdh-sha2-nistp521
		gossh.KeyExchangeDHGEXSHA256,    // diffie-hellman-group-exchange-sha256
		gossh.KeyExchangeDH16SHA512,     // diffie-hellman-group16-sha512
		gossh.KeyExchangeDH14SHA256,     // diffie-hellman-group14-sha256
	}

	// serverCiphers is OpenSSH's KEX_SERVER_ENCRYPT, exactly.
	serverCiphers = []string{
		gossh.CipherChaCha20Poly1305, // chacha20-poly1305@openssh.com
		gossh.CipherAES128GCM,        // aes128-gcm@openssh.com
		gossh.CipherAES256GCM,        // aes256-gcm@openssh.com
		gossh.CipherAES128CTR,        // aes128-ctr
		gossh.CipherAES192CTR,        // aes192-ctr
		gossh.CipherAES256CTR,        // aes256-ctr
	}

	// serverMACs is OpenSSH's KEX_SERVER_MAC without umac (not in
	// x/crypto) and without SHA-1 (see above): encrypt-then-MAC first.
	serverMACs = []string{
		gossh.HMACSHA256ETM, // hmac-sha2-256-etm@openssh.com
		gossh.HMACSHA512ETM, // hmac-sha2-512-etm@openssh.com
		gossh.HMACSHA256,    // hmac-sha2-256
		gossh.HMACSHA512,    // hmac-sha2-512
	}

	// userKeyAlgorithms are the signature algorithms accepted for public
	// key authentication: OpenSSH's KEX_DEFAULT_PK_ALG (the default
	// PubkeyAcceptedAlgorithms) as far as x/crypto implements it. Never
	// ssh-dss, never ssh-rsa (an RSA key signs with SHA-2 instead: every
	// OpenSSH since 7.2 and PuTTY since 0.75 does).
	userKeyAlgorithms = []string{
		gossh.KeyAlgoED25519,    // ssh-ed25519
		gossh.KeyAlgoECDSA256,   // ecdsa-sha2-nistp256
		gossh.KeyAlgoECDSA384,   // ecdsa-sha2-nistp384
		gossh.KeyAlgoECDSA521,   // ecdsa-sha2-nistp521
		gossh.KeyAlgoSKED25519,  // sk-ssh-ed25519@openssh.com
		gossh.KeyAlgoSKECDSA256, // sk-ecdsa-sha2-nistp256@openssh.com
		gossh.KeyAlgoRSASHA512,  // rsa-sha2-512
		gossh.KeyAlgoRSASHA256,  // rsa-sha2-256
	}

	// rsaHostKeyAlgorithms are the only signatures an RSA host key makes:
	// x/crypto would also offer ssh-rsa (SHA-1), which OpenSSH's
	// KEX_DEFAULT_PK_ALG no longer has.
	rsaHostKeyAlgorithms = []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256}
)

// minRSABits is the smallest RSA host key accepted: NIST's minimum, and
// ssh-keygen generates 3072. (OpenSSH's RequiredRSASize is 1024; Go's
// crypto/rsa refuses user keys below 1024 bits by itself.)
const minRSABits = 2048

// applyAlgorithms sets the algorithm lists above on cfg.
func applyAlgorithms(cfg *gossh.ServerConfig) {
	cfg.KeyExchanges = serverKeyExchanges
	cfg.Ciphers = serverCiphers
	cfg.MACs = serverMACs
	cfg.PublicKeyAuthAlgorithms = userKeyAlgorithms
}

// keyAlgoDSA is ssh-dss, named here to refuse it (x/crypto's constant is
// deprecated, rightly).
const keyAlgoDSA = "ssh-dss"

// errDSAHostKey refuses DSA host keys: 1024-bit DSA with SHA-1, removed
// from OpenSSH in 9.8 (and off by default since 7.0).
var errDSAHostKey = errors.New("a DSA (ssh-dss) key, which OpenSSH no longer supports; fix: remove it from [server] host_key")

// hostSigner checks a host key and restricts the signature algorithms it
// offers: an RSA key signs only with rsa-sha2-512 or rsa-sha2-256, never
// with ssh-rsa (SHA-1). DSA keys and RSA keys under minRSABits are refused.
func hostSigner(s gossh.Signer) (gossh.Signer, error) {
	switch pub := s.PublicKey(); pub.Type() {
	case keyAlgoDSA:
		return nil, errDSAHostKey
	case gossh.KeyAlgoRSA:
		if bits := rsaBits(pub); bits < minRSABits {
			return nil, fmt.Errorf("a %d-bit RSA key, under the %d bits required; fix: generate a new one (ssh-keygen -t rsa -b 3072 -N '' -f PATH) or use ed25519", bits, minRSABits)
		}
		as, ok := s.(gossh.AlgorithmSigner)
		if !ok {
			return nil, errors.New("an RSA key that cannot sign with SHA-2")
		}
		ms, err := gossh.NewSignerWithAlgorithms(as, rsaHostKeyAlgorithms)
		if err != nil {
			return nil, fmt.Errorf("RSA host key: %w", err)
		}
		return ms, nil
	}
	return s, nil
}

// rsaBits returns the modulus size of an RSA public key, 0 if unknown.
func rsaBits(pub gossh.PublicKey) int {
	cpk, ok := pub.(gossh.CryptoPublicKey)
	if !ok {
		return 0
	}
	rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return rk.N.BitLen()
}

// hostSigners checks the host keys (hostSigner: no DSA, RSA signing only
// with SHA-2) and refuses two of the same type: x/crypto keeps only the
// last key of each type, so the other would be silently ignored.
func hostSigners(in []gossh.Signer) ([]glssh.Signer, error) {
	out := make([]glssh.Signer, 0, len(in))
	seen := map[string]bool{}
	for i, s := range in {
		typ := s.PublicKey().Type()
		if seen[typ] {
			return nil, fmt.Errorf("sshserver: host key %d: a second %s key; the server offers one key per type", i+1, typ)
		}
		seen[typ] = true
		hs, err := hostSigner(s)
		if err != nil {
			return nil, fmt.Errorf("sshserver: host key %d (%s): %w", i+1, gossh.FingerprintSHA256(s.PublicKey()), err)
		}
		out = append(out, hs)
	}
	return out, nil
}
