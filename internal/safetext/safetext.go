// Package safetext makes strings from the network or from users safe to put
// in front of a terminal or into a log line.
//
// Why: a Latch error message, a user name from PAM or a command from
// SSH_ORIGINAL_COMMAND can carry terminal escape sequences (ESC [ ...),
// carriage returns that overwrite what an admin sees, or newlines that forge
// extra log lines. Duo strips control characters for the same reason.
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest string Clean returns, in bytes, before the marker
// that says it was cut.
const MaxLen = 512

// Clean replaces every control character (C0, DEL, C1, and the Unicode
// format/bidi controls that reorder text) and every invalid UTF-8 byte with
// U+FFFD-free visible escapes, and cuts the result at MaxLen bytes.
// The result holds no byte below 0x20 and no ESC, so it cannot move a
// cursor, change colours, or start a new log line.
func Clean(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			if r < 0x100 {
				b.WriteString(`\x`)
				b.WriteString(hex2(byte(r)))
			}
		case unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			b.WriteString("?")
		default:
			b.WriteRune(r)
		}
		i += size
		if b.Len() > MaxLen {
			return cut(b.String())
		}
	}
	return b.String()
}

func cut(s string) string {
	s = s[:MaxLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "...(cut)"
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}
