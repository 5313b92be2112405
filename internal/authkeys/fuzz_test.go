package authkeys

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzParse checks that Parse never panics, that every accepted key
// re-marshals to a key that parses back to the same bytes and is found by
// Match, that line numbers are in range and increasing, and that
// AllowsFrom never panics on what was accepted.
func FuzzParse(f *testing.F) {
	_, key := testKey(f)
	blob := strings.Fields(key)[1]
	for _, seed := range []string{
		"",
		key,
		key + " comment\r\n# c\n\n",
		`restrict,pty,command="echo \"x\" y" ` + key,
		`from="10.0.0.0/8,!10.1.1.1,*.example.com,2001:db8::/32" ` + key,
		`no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc ` + key,
		`tunnel="1",environment="A=B" ` + key,
		`command="unterminated ` + key,
		`command="a\\" ` + key,
		"ssh-rsa " + blob,
		"restrict " + blob,
		"garbage\nmore garbage\n\x00\x01\xff",
		"ssh-ed25519 AAAA",
		`from="" ` + key,
		`from="1.2.3.4/40" ` + key,
		`,,, ` + key,
		`"quoted" ` + key,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys, skipped, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			if keys != nil || skipped != nil {
				t.Fatal("results returned with an error")
			}
			return
		}
		lines := strings.Count(in, "\n") + 1
		last := 0
		for i := range keys {
			k := &keys[i]
			if k.Line <= last || k.Line > lines {
				t.Fatalf("bad line number %d (previous %d, %d lines)", k.Line, last, lines)
			}
			last = k.Line
			wire := k.Key.Marshal()
			again, err := ssh.ParsePublicKey(wire)
			if err != nil {
				t.Fatalf("line %d: accepted key does not re-parse: %v", k.Line, err)
			}
			if !bytes.Equal(again.Marshal(), wire) {
				t.Fatalf("line %d: key does not re-marshal to the same bytes", k.Line)
			}
			text, _, _, _, err := ssh.ParseAuthorizedKey(ssh.MarshalAuthorizedKey(k.Key))
			if err != nil || !bytes.Equal(text.Marshal(), wire) {
				t.Fatalf("line %d: authorized_keys round trip: %v", k.Line, err)
			}
			if m, ok := Match(keys, again); !ok || m.Line > k.Line {
				t.Fatalf("line %d: Match does not find the key", k.Line)
			}
			if _, isCert := k.Key.(*ssh.Certificate); isCert {
				t.Fatalf("line %d: certificate accepted", k.Line)
			}
			k.Options.AllowsFrom(net.IPv4(192, 0, 2, 1), "")
			k.Options.AllowsFrom(net.ParseIP("2001:db8::1"), "host.example.com")
		}
		for _, s := range skipped {
			if s.Line < 1 || s.Line > lines || s.Reason == "" || strings.ContainsAny(s.Reason, "\x00\n\r\x1b") {
				t.Fatalf("bad skip %q", s)
			}
		}
	})
}
