package latch

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
	"time"
)

// DateLayout is the layout of the X-11Paths-Date header: UTC, 24-hour clock,
// no "T" and no zone suffix. It must always be formatted from a time already
// converted to UTC; a zone- or locale-dependent date breaks every signature
// (a peer shipped exactly that bug).
const DateLayout = "2006-01-02 15:04:05"

// Header names used by the Latch request signature.
const (
	HeaderAuthorization = "Authorization"
	HeaderDate          = "X-11Paths-Date"
	// AuthMethod is the scheme word that starts the Authorization header.
	AuthMethod = "11PATHS"
	// xPrefix is the lower-cased prefix of the headers that are signed.
	xPrefix = "x-11paths-"
)

// StringToSign builds the exact text that Latch signs for one request.
//
// method is the HTTP method, date the X-11Paths-Date value as sent, headers
// the extra X-11Paths-* headers (the date header is ignored if present; other
// names are ignored), path the request path exactly as sent from the first
// "/", and params the form body of a POST or PUT (nil or empty for none).
func StringToSign(method, date string, headers map[string]string, path string, params url.Values) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	b.WriteString(SerializeHeaders(headers))
	b.WriteByte('\n')
	b.WriteString(path)
	m := strings.ToUpper(method)
	if (m == "POST" || m == "PUT") && len(params) > 0 {
		b.WriteByte('\n')
		b.WriteString(SerializeParams(params))
	}
	return b.String()
}

// SerializeHeaders serializes the X-11Paths-* headers other than the date as
// Latch signs them: names lower-cased, newlines in values replaced by spaces,
// sorted by name, "name:value" pairs joined by single spaces.
func SerializeHeaders(headers map[string]string) string {
	type kv struct{ k, v string }
	var list []kv
	for k, v := range headers {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, xPrefix) || lk == strings.ToLower(HeaderDate) {
			continue
		}
		v = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(v)
		list = append(list, kv{lk, v})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].k < list[j].k })
	parts := make([]string, len(list))
	for i, p := range list {
		parts[i] = p.k + ":" + p.v
	}
	return strings.Join(parts, " ")
}

// SerializeParams serializes a form body as Latch signs it: keys sorted,
// repeated keys with their values sorted, each pair encoded by FormEscape
// (java.net.URLEncoder's rules) and joined with "&". The client sends
// exactly this text as the body too, so what is signed and what is sent
// cannot differ.
func SerializeParams(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, FormEscape(k)+"="+FormEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// FormEscape encodes s as Java's java.net.URLEncoder.encode(s, "UTF-8")
// does, which is what Latch's own SDKs (and so, presumably, the service)
// use for signed form parameters: ASCII letters, digits and "-", ".", "_",
// "*" are kept, a space becomes "+", every other byte of the UTF-8 text
// (including "~") becomes "%XX" with upper-case hex. Go's url.QueryEscape
// differs on "*" (escaped) and "~" (kept): a commonName holding either
// would have been signed differently from the way Latch checks it
// (issue 13, point 1).
func FormEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '*':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Sign returns base64(HMAC-SHA1(secret, stringToSign)). The secret is used
// as the bytes written in the configuration, not base64-decoded.
func Sign(secret, stringToSign string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// AuthorizationHeader returns the value of the Authorization header for a
// signature.
func AuthorizationHeader(appID, signature string) string {
	return AuthMethod + " " + appID + " " + signature
}

// FormatDate formats t for the X-11Paths-Date header, in UTC.
func FormatDate(t time.Time) string {
	return t.UTC().Format(DateLayout)
}
