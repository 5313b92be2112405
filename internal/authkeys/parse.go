// Package authkeys reads a user's authorized_keys file the way OpenSSH's sshd
// does, for the embedded SSH server: one public key per line with sshd's
// options syntax, StrictModes permission checks (Load), from= source
// address patterns (Options.AllowsFrom), and key lookup (Match).
//
// It is fail-closed: a line whose options we do not understand or cannot
// enforce is skipped (reported in a Skipped with the reason), never accepted
// with the option ignored. Comments and option values come from a file the
// user controls: pass them through safetext.Clean before printing, and do
// not log them. Skip reasons and errors never quote the file's content
// (only option names this package knows, key type names a parsed key
// reports, and line numbers): the server logs them, and a file is not
// always what it claims to be (a link to another file, read by mistake
// with more rights than its owner, must not be copied into the log).
package authkeys

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// Limits on what Parse reads. A file beyond MaxFileSize or MaxKeys is an
// error (the whole file is refused, not cut: a cut file could silently drop
// the line an admin relies on); a line beyond MaxLineLen is skipped.
const (
	// MaxLineLen is the longest line, in bytes without its newline, that
	// Parse reads; longer lines are skipped. An RSA 16384-bit key line is
	// about 2.8 KiB, so 64 KiB leaves ample room for options.
	MaxLineLen = 64 << 10
	// MaxFileSize is the most bytes Parse reads; a longer file is an error.
	MaxFileSize = 4 << 20
	// MaxKeys is the most key lines (lines that are neither blank nor a
	// comment, skipped or not) a file may hold; one more is an error.
	MaxKeys = 10000
)

// Key is one accepted authorized_keys line.
type Key struct {
	// Key is the public key (never a certificate).
	Key ssh.PublicKey
	// Line is the 1-based line number in the file.
	Line int
	// Comment is the text after the key, untrusted (see the package doc).
	Comment string
	// Options are the line's options.
	Options Options
}

// Options are the authorized_keys options of one key that this package
// supports. The no-* flags are restrictions on top of the server's own
// configuration: a false flag does not grant a feature the server turned off.
type Options struct {
	// From holds the from= patterns (see AllowsFrom); nil means any source.
	From []string
	// Command is the command= forced command, dequoted; meaningful only when
	// HasCommand is true (command="" forces an empty command).
	Command string
	// HasCommand says a command= option was given.
	HasCommand bool
	// NoPTY refuses pseudo-terminal allocation (no-pty, restrict).
	NoPTY bool
	// NoPortForwarding refuses TCP/stream local and remote forwarding
	// (no-port-forwarding, restrict).
	NoPortForwarding bool
	// NoAgentForwarding refuses agent forwarding (no-agent-forwarding,
	// restrict).
	NoAgentForwarding bool
	// NoX11Forwarding refuses X11 forwarding (no-X11-forwarding, restrict).
	NoX11Forwarding bool
	// NoUserRC refuses running ~/.ssh/rc (no-user-rc, restrict).
	NoUserRC bool
	// Restrict says the restrict option was given: every no-* flag was set
	// at that point, and only the options after it that name a feature
	// (pty, port-forwarding, agent-forwarding, X11-forwarding, user-rc)
	// re-enabled one. Features added after this package was written stay
	// off for such a key.
	Restrict bool
}

// Skipped is a line Parse did not accept, and why.
type Skipped struct {
	// Line is the 1-based line number.
	Line int
	// Reason says why, safe to log (control characters escaped).
	Reason string
}

// String formats the skip as "line N: reason".
func (s Skipped) String() string { return fmt.Sprintf("line %d: %s", s.Line, s.Reason) }

// Parse reads an authorized_keys file from r. file names it in errors. Blank
// lines and lines starting with '#' (after leading blanks) are ignored; a
// line may end in CRLF. Lines that cannot be used are returned in skipped.
// err is non-nil when reading fails or a limit (MaxFileSize, MaxKeys) is
// exceeded; it names file:line, and keys and skipped are then nil.
func Parse(r io.Reader, file string) (keys []Key, skipped []Skipped, err error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxFileSize+1), 64<<10)
	var total int64
	entries := 0
	for lineNo := 1; ; lineNo++ {
		line, n, tooLong, rerr := readLine(br)
		total += n
		if total > MaxFileSize {
			return nil, nil, fmt.Errorf("%s:%d: file is larger than the %d MiB limit on authorized_keys files", file, lineNo, MaxFileSize>>20)
		}
		if rerr != nil && rerr != io.EOF {
			return nil, nil, fmt.Errorf("%s:%d: %w", file, lineNo, rerr)
		}
		if n == 0 && rerr == io.EOF {
			break
		}
		if tooLong {
			entries++
			skipped = append(skipped, Skipped{lineNo, fmt.Sprintf("line is longer than the %d KiB limit", MaxLineLen>>10)})
		} else {
			line = trimBlank(line)
			if len(line) > 0 && line[0] != '#' {
				entries++
				if k, reason := parseLine(line); reason != "" {
					skipped = append(skipped, Skipped{lineNo, reason})
				} else {
					k.Line = lineNo
					keys = append(keys, k)
				}
			}
		}
		if entries > MaxKeys {
			return nil, nil, fmt.Errorf("%s:%d: more than the %d keys allowed in an authorized_keys file", file, lineNo, MaxKeys)
		}
		if rerr == io.EOF {
			break
		}
	}
	return keys, skipped, nil
}

// readLine reads one line without its "\n" (and "\r"). n counts every byte
// consumed. A line over MaxLineLen is consumed to its end and reported as
// tooLong with no content. err is io.EOF at the end of input (with or
// without a last line).
func readLine(br *bufio.Reader) (line []byte, n int64, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		n += int64(len(chunk))
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineLen+2 { // room for "\r\n"
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			if n > MaxFileSize {
				return nil, n, tooLong, nil // the caller reports the size
			}
			continue
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if !tooLong && len(buf) > MaxLineLen {
			tooLong, buf = true, nil
		}
		return buf, n, tooLong, err
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func trimBlank(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// parseLine parses a non-blank, non-comment line. Like sshd, it first reads
// the line as a bare key, and only when that fails as options followed by a
// key. It returns a reason when the line is skipped.
func parseLine(line []byte) (Key, string) {
	if bytes.IndexByte(line, 0) >= 0 || bytes.IndexByte(line, '\r') >= 0 {
		return Key{}, "line holds a NUL or carriage return character"
	}
	k, reason := parseKey(line)
	switch {
	case reason == "":
		return k, ""
	case !strings.HasPrefix(reason, "not a key"):
		return Key{}, reason
	case looksLikeKeyType(line):
		return Key{}, "bad key: " + strings.TrimPrefix(reason, "not a key: ")
	case !knownOption(line) && !keyFollows(line):
		return Key{}, "not a key line: " + strings.TrimPrefix(reason, "not a key: ") + ", and its first word is no option"
	}
	opts, rest, reason := parseOptions(line)
	if reason != "" {
		return Key{}, reason
	}
	k, reason = parseKey(trimBlank(rest))
	if reason != "" {
		return Key{}, reason
	}
	k.Options = opts
	return k, ""
}

// looksLikeKeyType reports whether the first field of line names a key
// type (ssh-ed25519, ecdsa-sha2-nistp256, sk-...@openssh.com) rather than
// options, to give a better reason for a broken key.
func looksLikeKeyType(line []byte) bool {
	f := string(line)
	if i := strings.IndexAny(f, " \t"); i >= 0 {
		f = f[:i]
	}
	if strings.ContainsAny(f, "=,\"") {
		return false
	}
	return strings.HasPrefix(f, "ssh-") || strings.HasPrefix(f, "ecdsa-") || strings.HasPrefix(f, "sk-") || strings.Contains(f, "@")
}

// parseKey parses "type base64 [comment]". A reason starting "not a key"
// means the first field is not a key type (it may be options).
func parseKey(line []byte) (Key, string) {
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return Key{}, "not a key: missing the base64 key after the key type"
	}
	typ := string(line[:i])
	rest := trimBlank(line[i:])
	j := bytes.IndexAny(rest, " \t")
	if j < 0 {
		j = len(rest)
	}
	blob, err := base64.StdEncoding.DecodeString(string(rest[:j]))
	if err != nil {
		return Key{}, "not a key: the field after the key type is not base64"
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		// err may quote the decoded data (an unknown algorithm name).
		return Key{}, "not a key: the base64 data is not a public key"
	}
	if pub.Type() != typ {
		// sshkey_read checks this too: a lone option such as "restrict"
		// in the type field must not be dropped silently.
		return Key{}, fmt.Sprintf("not a key: the key type field does not match the encoded type %s", quote(pub.Type()))
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return Key{}, "certificates are not supported in authorized_keys (put the plain key)"
	}
	return Key{Key: pub, Comment: string(trimBlank(rest[j:]))}, ""
}

func quote(s string) string { return `"` + safetext.Clean(s) + `"` }

// optName quotes an option name if this package knows it, or says "an
// option": an unknown name is the line's content.
func optName(name string) string {
	if isFlag(name) || name == "command" || name == "from" || unsupported(name) != "" {
		return quote(name)
	}
	return "an option"
}

// unsupported explains why an sshd option we know but do not accept makes
// the key unusable, or returns "" for the others.
func unsupported(name string) string {
	switch name {
	case "cert-authority":
		return "certificate authorities are not supported"
	case "principals":
		return "certificate principals are not supported"
	case "environment":
		return "environment= is not supported"
	case "tunnel":
		return "tun device forwarding is not supported"
	case "permitopen", "permitlisten":
		return name + "= cannot be enforced"
	case "expiry-time":
		return "expiry-time= is not supported"
	case "no-touch-required":
		return "no-touch-required is not supported (user presence is always required)"
	case "verify-required":
		return "verify-required cannot be enforced"
	}
	return ""
}

// parseOptions parses sshd's option list at the start of line: options
// separated by commas, each NAME or NAME="VALUE" (names case-insensitive),
// ended by a blank outside quotes. In a value, \" is a quote and every other
// byte, backslashes included, is itself (sshd's opt_dequote). It returns
// the rest of the line after the options.
func parseOptions(line []byte) (o Options, rest []byte, reason string) {
	s := string(line)
	seen := map[string]bool{}
	for {
		end := strings.IndexAny(s, "=, \t")
		if end < 0 {
			end = len(s)
		}
		name := strings.ToLower(s[:end])
		if name == "" {
			return o, nil, "empty option"
		}
		s = s[end:]
		var value string
		hasValue := strings.HasPrefix(s, "=")
		if hasValue {
			var ok bool
			if value, s, ok = dequote(s[1:]); !ok {
				return o, nil, "option " + optName(name) + ": value must be in double quotes, with a closing quote"
			}
		}
		if r := unsupported(name); r != "" {
			return o, nil, "unsupported option " + quote(name) + ": " + r
		}
		wantValue := name == "command" || name == "from"
		switch {
		case wantValue && !hasValue:
			return o, nil, "option " + quote(name) + " needs a value"
		case !wantValue && hasValue:
			if isFlag(name) {
				return o, nil, "option " + quote(name) + " takes no value"
			}
			return o, nil, "unknown option (not named here: the line's content is not logged)"
		}
		switch name {
		case "command", "from":
			if seen[name] {
				return o, nil, "option " + quote(name) + " given twice"
			}
			seen[name] = true
			if strings.IndexByte(value, 0) >= 0 {
				return o, nil, "option " + quote(name) + " holds a NUL"
			}
			if name == "command" {
				o.Command, o.HasCommand = value, true
			} else {
				pats, r := parseFrom(value)
				if r != "" {
					return o, nil, "option \"from\": " + r
				}
				o.From = pats
			}
		case "restrict":
			o.Restrict = true
			o.NoPTY, o.NoPortForwarding, o.NoAgentForwarding, o.NoX11Forwarding, o.NoUserRC = true, true, true, true, true
		case "pty", "no-pty":
			o.NoPTY = name == "no-pty"
		case "port-forwarding", "no-port-forwarding":
			o.NoPortForwarding = name == "no-port-forwarding"
		case "agent-forwarding", "no-agent-forwarding":
			o.NoAgentForwarding = name == "no-agent-forwarding"
		case "x11-forwarding", "no-x11-forwarding":
			o.NoX11Forwarding = name == "no-x11-forwarding"
		case "user-rc", "no-user-rc":
			o.NoUserRC = name == "no-user-rc"
		default:
			return o, nil, "unknown option (not named here: the line's content is not logged)"
		}
		switch {
		case s == "":
			return o, nil, "options are not followed by a key"
		case isBlank(s[0]):
			return o, []byte(s), ""
		case s[0] != ',':
			return o, nil, "option " + quote(name) + " is followed by another character instead of a comma or a blank"
		}
		s = s[1:]
	}
}

// keyFollows reports whether a valid key follows the first field of line.
func keyFollows(line []byte) bool {
	i := bytes.IndexAny(line, " \t")
	if i < 0 {
		return false
	}
	_, reason := parseKey(trimBlank(line[i:]))
	return reason == ""
}

// firstOption returns the name of the first option on line, lowercased.
func firstOption(line []byte) string {
	s := string(line)
	if i := strings.IndexAny(s, "=, \t"); i >= 0 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

// knownOption reports whether line starts with an option name sshd knows.
func knownOption(line []byte) bool {
	name := firstOption(line)
	return isFlag(name) || name == "command" || name == "from" || unsupported(name) != ""
}

func isFlag(name string) bool {
	switch strings.TrimPrefix(name, "no-") {
	case "pty", "port-forwarding", "agent-forwarding", "x11-forwarding", "user-rc":
		return true
	}
	return name == "restrict"
}

// dequote reads a double-quoted value at the start of s, as sshd's
// opt_dequote: \" is a quote, anything else is literal. It returns the value
// and what follows the closing quote.
func dequote(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", s, false
}
