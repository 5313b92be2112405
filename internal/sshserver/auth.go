package sshserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"strings"
	"time"

	glssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/authkeys"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// OTPPrompt is the keyboard-interactive prompt for the one-time code, the
// same words as the ForceCommand gate's.
const OTPPrompt = "Latch one-time code: "

// grantExtension is the Permissions extension that names a connection's
// grant. Its value is random per connection, so a Permissions object that
// did not come from allow (nil from "none", or one another callback made
// up) never matches.
const grantExtension = "latch-ssh-grant@latch-ssh"

// The authentication errors. They reach the client only as "failure"; the
// log has the details.
var (
	errDenied    = errors.New("the gate refused this connection")
	errNoAuth    = errors.New(`authentication method "none" is refused`)
	errNotListed = errors.New("key not in authorized_keys")
)

// serverConfig is gliderlabs' ServerConfigCallback, called once per
// connection after accept: it returns the x/crypto configuration whose
// callbacks hold that connection's state. gliderlabs then adds the host
// keys, and sets NoClientAuth because none of its own handlers is set;
// NoClientAuthCallback below makes that harmless.
func (s *Server) serverConfig(ctx glssh.Context) *gossh.ServerConfig {
	c := connOf(ctx)
	cfg := &gossh.ServerConfig{
		MaxAuthTries:              6,
		PreAuthConnCallback:       c.kexDone,
		NoClientAuthCallback:      c.none,
		PublicKeyCallback:         c.publicKey,
		VerifiedPublicKeyCallback: c.verified,
		AuthLogCallback:           c.authLog,
		// Password and keyboard-interactive stay nil: x/crypto then
		// refuses them and does not offer them. Keyboard-interactive is
		// offered only after a key passed, for the one-time code.
	}
	if c != nil {
		cfg.MaxAuthTries = c.set.MaxAuthTries
	}
	applyAlgorithms(cfg) // algorithms.go: OpenSSH's defaults, never weaker
	return cfg
}

// none refuses the "none" method, which gliderlabs turns on.
func (c *conn) none(gossh.ConnMetadata) (*gossh.Permissions, error) {
	if c.isDenied() {
		c.closeWhy("another attempt after the gate refused")
	}
	return nil, errNoAuth
}

func (c *conn) isDenied() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.denied
}

// publicKey is PublicKeyCallback: is key one of the user's authorized keys,
// usable from this address? It runs for every key a client offers,
// including keys it never proves it holds, so it decides nothing but that:
// no Latch call, no identity (see verified).
func (c *conn) publicKey(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	c.attempted("publickey")
	if c.isDenied() {
		c.closeWhy("another attempt after the gate refused")
		return nil, errDenied
	}
	if _, _, err := c.authorized(meta, key); err != nil {
		return nil, err
	}
	return &gossh.Permissions{}, nil
}

// authorized finds key among the authorized keys of the requested user and
// checks its from= option.
func (c *conn) authorized(meta gossh.ConnMetadata, key gossh.PublicKey) (authkeys.Key, spawn.Account, error) {
	kr := c.keyring(meta.User())
	if kr.err != nil {
		return authkeys.Key{}, spawn.Account{}, kr.err
	}
	k, ok := authkeys.Match(kr.keys, key)
	if !ok {
		return authkeys.Key{}, spawn.Account{}, errNotListed
	}
	if !k.Options.AllowsFrom(remoteIP(meta.RemoteAddr()), "") {
		c.s.o.Log.Warn().Str("event", "auth").Str("user", kr.acct.Name).Str("remote", c.remote).Int("line", k.Line).
			Msg("authorized_keys line matches, but its from= does not allow this address")
		return authkeys.Key{}, spawn.Account{}, errors.New("from= refuses this address")
	}
	return *k, kr.acct, nil
}

// keyring loads, once per user name per connection, the account and its
// authorized keys.
func (c *conn) keyring(user string) *keyring {
	c.mu.Lock()
	kr, ok := c.keyrings[user]
	full := len(c.keyrings) >= maxUserNames
	c.mu.Unlock()
	if ok {
		return kr
	}
	if full {
		return &keyring{err: errors.New("too many user names on one connection")}
	}
	kr = c.s.loadKeyring(user, c.set.AuthorizedKeys)
	c.mu.Lock()
	c.keyrings[user] = kr
	c.mu.Unlock()
	return kr
}

// loadKeyring resolves user through NSS and reads its authorized_keys with
// the StrictModes checks. Problems an admin can fix are logged here once;
// the client only sees the key refused.
func (s *Server) loadKeyring(user, pattern string) *keyring {
	log := s.o.Log
	if err := gate.CheckUserName(user); err != nil {
		return &keyring{err: err}
	}
	acct, err := s.o.Lookup(user)
	if err != nil {
		log.Info().Str("event", "auth").Str("user", safetext.Clean(user)).Msg("no such user")
		return &keyring{err: errors.New("no such user")}
	}
	if !s.root && acct.UID != s.self {
		log.Warn().Str("event", "auth").Str("user", acct.Name).
			Msg("the server does not run as root: it serves only the account it runs as")
		return &keyring{err: errors.New("this server serves only its own account")}
	}
	if s.o.Keys != nil {
		keys, err := s.o.Keys(acct)
		if err != nil {
			return &keyring{acct: acct, err: err}
		}
		return &keyring{acct: acct, keys: keys}
	}
	path, err := authkeys.ExpandPath(pattern, acct.Name, acct.Home)
	if err != nil {
		log.Error().Str("event", "auth").Str("user", acct.Name).Str("error", safetext.Clean(err.Error())).
			Msg("[server] authorized_keys cannot be expanded for this user")
		return &keyring{err: err}
	}
	// Read with the user's rights, not root's (see authkeys.Load).
	keys, skipped, err := authkeys.Load(path, credsOf(acct), acct.Home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info().Str("event", "auth").Str("user", acct.Name).Str("file", path).Msg("no authorized_keys file")
		return &keyring{acct: acct, err: errors.New("no authorized keys")}
	case err != nil:
		// StrictModes: a file or directory others could write is not
		// trusted, and the error holds the fix.
		log.Warn().Str("event", "auth").Str("user", acct.Name).Str("file", path).Str("error", safetext.Clean(err.Error())).
			Msg("authorized_keys refused")
		return &keyring{acct: acct, err: errors.New("authorized_keys refused")}
	}
	for _, sk := range skipped {
		log.Warn().Str("event", "auth").Str("user", acct.Name).Str("file", path).Int("line", sk.Line).
			Str("reason", sk.Reason).Msg("authorized_keys line skipped")
	}
	return &keyring{acct: acct, keys: keys}
}

// verified is VerifiedPublicKeyCallback: the client proved it holds key,
// which publicKey accepted for the user. Only now is the gate asked, and
// the identity is this key's, whatever else the client offered before.
func (c *conn) verified(meta gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
	c.attempted("publickey")
	if c.isDenied() {
		c.closeWhy("another attempt after the gate refused")
		return nil, errDenied
	}
	k, acct, err := c.authorized(meta, key)
	if err != nil {
		// Cannot happen: publicKey accepted this key for this user a
		// moment ago on this connection. Refuse rather than guess.
		return nil, err
	}
	if err := c.checkAccount(meta, acct); err != nil {
		return nil, err
	}
	core, _ := c.s.settings()
	req := gate.Request{User: acct.Name, Service: Service, RemoteAddr: c.remote, Interactive: true, FrontEnd: gate.FrontEndServer}
	if core == nil {
		return nil, c.deny(req, gate.Decision{Outcome: gate.Deny, Reason: "no decision core", Severity: gate.Error})
	}
	c.s.o.Log.Info().Str("event", "auth").Str("user", acct.Name).Str("remote", c.remote).
		Str("key", gossh.FingerprintSHA256(key)).Int("line", k.Line).Msg("public key verified; asking the gate")
	d := core.Decide(c.ctx, req)
	switch d.Outcome {
	case gate.Allow:
		c.s.decided(req, d)
		return c.allow(meta.User(), acct, k, key), nil
	case gate.AskOTP:
		c.s.decided(req, d)
		c.mu.Lock()
		c.pending = &pending{core: core, req: req, d: d, login: meta.User(), acct: acct, key: k, pub: key}
		c.mu.Unlock()
		return nil, &gossh.PartialSuccessError{Next: gossh.ServerAuthCallbacks{
			KeyboardInteractiveCallback: c.oneTimeCode,
		}}
	default:
		c.s.decided(req, d)
		return nil, c.deny(req, d)
	}
}

// checkAccount applies the account rule (spawn.CheckLogin: what sshd with
// UsePAM yes and pam_unix does) once the key is proven, as sshd runs the PAM
// account stack only after authentication: so only the key's holder learns
// that the account expired, and Latch is not asked for an account that
// cannot log in anyway. A refusal ends the connection's chances, as sshd's
// "Access denied ... by PAM account configuration" ends the connection,
// and carries pam_unix's (or pam_nologin's) words to the person as a
// banner; so do the warnings of a login that goes on (pam_unix's "your
// password will expire", a nologin file shown to root).
func (c *conn) checkAccount(meta gossh.ConnMetadata, acct spawn.Account) error {
	warning, err := c.s.o.checkLogin(acct, time.Now())
	if err == nil {
		// meta is x/crypto's connection, which can send a banner
		// during authentication (ServerPreAuthConn).
		if pc, ok := meta.(gossh.ServerPreAuthConn); ok && warning != "" {
			_ = pc.SendAuthBanner(warning + "\n")
		}
		return nil
	}
	c.mu.Lock()
	c.denied = true
	c.mu.Unlock()
	var r *spawn.LoginRefused
	if !errors.As(err, &r) {
		c.s.o.Log.Error().Str("event", "auth").Str("user", acct.Name).Str("remote", c.remote).
			Str("error", safetext.Clean(err.Error())).Msg("cannot check the account; refusing")
		return errDenied
	}
	c.s.o.Log.Warn().Str("event", "auth").Str("user", acct.Name).Str("remote", c.remote).
		Str("reason", safetext.Clean(r.Reason)).Msg("login refused by the account rule")
	if r.Message == "" {
		return errDenied
	}
	// Lines end in "\n" alone, as sshd sends PAM's messages.
	return &gossh.BannerError{Err: errDenied, Message: r.Message + "\n"}
}

// oneTimeCode is the keyboard-interactive step after a partial success:
// one prompt, one try.
func (c *conn) oneTimeCode(meta gossh.ConnMetadata, ask gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
	c.attempted("keyboard-interactive")
	c.mu.Lock()
	p := c.pending
	c.pending = nil
	c.mu.Unlock()
	if p == nil {
		// A second keyboard-interactive attempt: the one try is spent.
		c.closeWhy("another attempt after the one-time code was tried")
		return nil, errDenied
	}
	if meta.User() != p.login {
		// x/crypto refuses a user change after a partial success; this
		// is the belt to its braces.
		final := p.core.Finish(p.req, p.d, "")
		c.s.decided(p.req, final)
		return nil, c.deny(p.req, final)
	}
	// The code is valid for a short time on the phone; the person gets
	// gate.OTPTimeout to type it, within the login grace time.
	t := time.AfterFunc(gate.OTPTimeout, func() { c.closeWhy("one-time code not typed within " + gate.OTPTimeout.String()) })
	answers, err := ask("", "", []string{OTPPrompt}, []bool{false})
	t.Stop()
	code := ""
	if err == nil && len(answers) == 1 {
		code = strings.TrimSpace(answers[0])
	}
	final := p.core.Finish(p.req, p.d, code)
	c.s.decided(p.req, final)
	if !final.Allowed() {
		return nil, c.deny(p.req, final)
	}
	return c.allow(p.login, p.acct, p.key, p.pub), nil
}

// allow records the grant and returns the connection's final Permissions.
func (c *conn) allow(login string, acct spawn.Account, k authkeys.Key, key gossh.PublicKey) *gossh.Permissions {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	g := &grant{login: login, user: acct.Name, acct: acct, key: k, fingerprint: gossh.FingerprintSHA256(key)}
	c.mu.Lock()
	c.grant, c.grantID = g, id
	c.mu.Unlock()
	c.grace.Stop()
	c.release()
	c.s.adm.loggedIn(c.src)
	c.s.track(acct.Name, c, true)
	c.s.o.Log.Info().Str("event", "login").Str("user", acct.Name).Str("remote", c.remote).
		Str("key", g.fingerprint).Int("line", k.Line).Msg("authenticated")
	return &gossh.Permissions{Extensions: map[string]string{grantExtension: id}}
}

// deny marks the connection refused and tells the person why: in an
// authentication banner (OpenSSH shows it), then in SSH_MSG_DISCONNECT "by
// application" (PuTTY, asyncssh and OpenSSH show it; issue 13, point 4),
// and closes the connection. Where the disconnect cannot be sent (see
// disconnect.go) the refusal goes as before: the banner, a failure, and the
// client's next attempt, if any, closes the connection.
func (c *conn) deny(req gate.Request, d gate.Decision) error {
	c.mu.Lock()
	c.denied = true
	pre := c.pre
	c.mu.Unlock()
	msg := d.Message()
	if msg == "" {
		msg = "latch-ssh: access denied"
	}
	if !c.s.disconnects || pre == nil || pre.SendAuthBanner(msg+"\r\n") != nil {
		return &gossh.BannerError{Err: errDenied, Message: msg + "\r\n"}
	}
	if c.disconnect(msg) {
		c.closeWhy("refused by the gate: " + d.Reason)
	}
	return errDenied
}

// grantFor returns the grant of an authenticated connection, checked
// against the connection's final Permissions and user name. nil means the
// connection got in without our allow: it must be closed.
func (c *conn) grantFor(sc *gossh.ServerConn) *grant {
	if c == nil || sc == nil || sc.Permissions == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.grant == nil || c.grantID == "" || sc.Permissions.Extensions[grantExtension] != c.grantID || sc.User() != c.grant.login {
		return nil
	}
	return c.grant
}

// authLog is AuthLogCallback: one line per authentication request.
func (c *conn) authLog(meta gossh.ConnMetadata, method string, err error) {
	c.attempted(method)
	ev := c.s.o.Log.Info()
	result := "accepted"
	var ps *gossh.PartialSuccessError
	switch {
	case errors.As(err, &ps):
		result = "partial: one-time code asked"
	case err != nil:
		result = "failed"
	}
	ev = ev.Str("event", "auth-step").Str("user", safetext.Clean(meta.User())).Str("remote", c.remote).
		Str("method", safetext.Clean(method)).Str("result", result)
	if err != nil && ps == nil {
		ev = ev.Str("error", safetext.Clean(err.Error()))
	}
	ev.Msg("authentication request")
}

// decided passes a final decision to Options.OnDecision.
func (s *Server) decided(req gate.Request, d gate.Decision) {
	if s.o.OnDecision != nil {
		s.o.OnDecision(req.User, req.RemoteAddr, d)
	}
}

// remoteIP returns the IP of a TCP address, or nil.
func remoteIP(a net.Addr) net.IP {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}
