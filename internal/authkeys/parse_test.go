package authkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testKey returns a fresh ed25519 public key and its authorized_keys text
// ("ssh-ed25519 AAAA...", no comment, no newline).
func testKey(t testing.TB) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParseOptions(t *testing.T) {
	_, key := testKey(t)
	all := Options{NoPTY: true, NoPortForwarding: true, NoAgentForwarding: true, NoX11Forwarding: true, NoUserRC: true}
	restricted := all
	restricted.Restrict = true
	for _, tc := range []struct {
		name, opts string
		want       Options
	}{
		{"none", "", Options{}},
		{"quoted command with spaces", `command="/usr/bin/rsync --server -e.LsfxC . /backup"`,
			Options{Command: "/usr/bin/rsync --server -e.LsfxC . /backup", HasCommand: true}},
		{"escaped quotes", `command="echo \"hi there\" , done"`,
			Options{Command: `echo "hi there" , done`, HasCommand: true}},
		{"other backslashes kept", `command="printf 'a\tb\\n'"`,
			Options{Command: `printf 'a\tb\\n'`, HasCommand: true}},
		{"blank inside quotes", `command="a	b",no-pty`, Options{Command: "a\tb", HasCommand: true, NoPTY: true}},
		{"empty command", `command=""`, Options{HasCommand: true}},
		{"all no-", "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc", all},
		{"names are case-insensitive", "NO-PTY,Command=\"x\"", Options{NoPTY: true, Command: "x", HasCommand: true}},
		{"restrict", "restrict", restricted},
		{"restrict then pty", "restrict,pty", func() Options { o := restricted; o.NoPTY = false; return o }()},
		{"restrict then all permits", "restrict,pty,port-forwarding,agent-forwarding,X11-forwarding,user-rc",
			Options{Restrict: true}},
		{"pty then restrict: restrict wins", "pty,restrict", restricted},
		{"no-pty then pty", "no-pty,pty", Options{}},
		{"from", `from="10.0.0.0/8,!10.1.2.3,*.example.com"`, Options{From: []string{"10.0.0.0/8", "!10.1.2.3", "*.example.com"}}},
		{"restrict and command", `restrict,command="/usr/bin/latch-ssh"`,
			func() Options { o := restricted; o.Command, o.HasCommand = "/usr/bin/latch-ssh", true; return o }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := key + " c@d"
			if tc.opts != "" {
				line = tc.opts + " " + line
			}
			keys, skipped, err := Parse(strings.NewReader(line+"\n"), "ak")
			if err != nil || len(skipped) != 0 || len(keys) != 1 {
				t.Fatalf("Parse(%q) = %d keys, skipped %v, err %v", line, len(keys), skipped, err)
			}
			if !reflect.DeepEqual(keys[0].Options, tc.want) {
				t.Errorf("options of %q:\n got %+v\nwant %+v", tc.opts, keys[0].Options, tc.want)
			}
			if keys[0].Comment != "c@d" || keys[0].Line != 1 {
				t.Errorf("comment %q line %d", keys[0].Comment, keys[0].Line)
			}
		})
	}
}

func TestParseSkips(t *testing.T) {
	_, key := testKey(t)
	cert := func() string {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := ssh.NewPublicKey(pub)
		_, capriv, _ := ed25519.GenerateKey(rand.Reader)
		signer, _ := ssh.NewSignerFromKey(capriv)
		c := &ssh.Certificate{Key: k, CertType: ssh.UserCert, ValidBefore: ssh.CertTimeInfinity}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c)))
	}()
	for _, tc := range []struct{ line, reason string }{
		{`tunnel="0" ` + key, "unsupported option \"tunnel\""},
		{`environment="A=b" ` + key, "unsupported option \"environment\""},
		{`principals="x" ` + key, "unsupported option \"principals\""},
		{`cert-authority ` + key, "unsupported option \"cert-authority\""},
		{`expiry-time="20300101" ` + key, "unsupported option \"expiry-time\""},
		{`permitopen="localhost:80" ` + key, "unsupported option \"permitopen\""},
		{`restrict,permitlisten="8080" ` + key, "unsupported option \"permitlisten\""},
		{`no-touch-required ` + key, "unsupported option \"no-touch-required\""},
		{`verify-required ` + key, "unsupported option \"verify-required\""},
		{`frobnicate ` + key, "unknown option"},
		{`no-restrict ` + key, "unknown option"},
		{`no-pty="x" ` + key, "takes no value"},
		{`command ` + key, "needs a value"},
		{`command=unquoted ` + key, "double quotes"},
		{`command="unterminated ` + key, "double quotes"},
		{`command="a",command="b" ` + key, "given twice"},
		{`command="a"x ` + key, "instead of a comma"},
		{`no-pty,,no-agent-forwarding ` + key, "empty option"},
		{`no-pty,`, "empty option"},
		{`no-pty`, "not followed by a key"},
		{`from="" ` + key, "empty pattern"},
		{`from="10.0.0.1,,x" ` + key, "empty pattern"},
		{`from="10.0.0.1/8" ` + key, "bits set beyond"},
		{`from="10.0.0.0/33" ` + key, "bad CIDR"},
		{`from="!" ` + key, "empty pattern"},
		{"garbage", "not a key"},
		{"garbage line here", "not a key"},
		{"ssh-ed25519 !!notbase64", "bad key"},
		{"ssh-ed25519", "bad key"},
		{"ssh-rsa " + strings.Fields(key)[1], "does not match"},
		{"restrict " + strings.Fields(key)[1], "not a key"},
		{cert, "certificates are not supported"},
		{"no-pty " + cert, "certificates are not supported"},
		{key + " nul\x00byte", "NUL"},
		{"no-pty\r" + key, "carriage return"},
	} {
		t.Run(tc.line[:min(len(tc.line), 30)], func(t *testing.T) {
			in := "# comment\n" + tc.line + "\n" + key + " good\n"
			keys, skipped, err := Parse(strings.NewReader(in), "ak")
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0].Line != 3 || keys[0].Comment != "good" {
				t.Errorf("the good key was not loaded alone: %+v", keys)
			}
			if len(skipped) != 1 || skipped[0].Line != 2 || !strings.Contains(skipped[0].Reason, tc.reason) {
				t.Fatalf("skipped = %v, want line 2 with %q", skipped, tc.reason)
			}
			if strings.ContainsAny(skipped[0].Reason, "\x00\r\n") {
				t.Errorf("reason holds control characters: %q", skipped[0].Reason)
			}
		})
	}
}

func TestParseFileShape(t *testing.T) {
	k1, key1 := testKey(t)
	k2, key2 := testKey(t)
	ecpriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k3, _ := ssh.NewPublicKey(&ecpriv.PublicKey)
	key3 := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k3)))
	in := strings.Join([]string{
		"# header comment",
		"",
		"   ",
		"\t# indented comment",
		key1 + " first key\r",
		"  " + key2 + "\t  spaced comment  ",
		"junk junk junk",
		"no-pty " + key3,
		"#" + key1,
	}, "\n") // no final newline
	keys, skipped, err := Parse(strings.NewReader(in), "ak")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		key     ssh.PublicKey
		line    int
		comment string
	}{{k1, 5, "first key"}, {k2, 6, "spaced comment"}, {k3, 8, ""}}
	if len(keys) != len(want) {
		t.Fatalf("got %d keys, want %d: %+v", len(keys), len(want), keys)
	}
	for i, w := range want {
		if _, ok := Match(keys[i:i+1], w.key); !ok || keys[i].Line != w.line || keys[i].Comment != w.comment {
			t.Errorf("key %d: line %d comment %q, want line %d comment %q", i, keys[i].Line, keys[i].Comment, w.line, w.comment)
		}
	}
	if len(skipped) != 1 || skipped[0].Line != 7 {
		t.Errorf("skipped = %v, want line 7", skipped)
	}
}

func TestParseLimits(t *testing.T) {
	_, key := testKey(t)
	t.Run("long line skipped", func(t *testing.T) {
		long := "command=\"" + strings.Repeat("x", 1<<20) + "\" " + key
		in := key + " a\n" + long + "\n" + key + " b\n"
		keys, skipped, err := Parse(strings.NewReader(in), "ak")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].Line != 1 || keys[1].Line != 3 {
			t.Errorf("keys = %+v", keys)
		}
		if len(skipped) != 1 || skipped[0].Line != 2 || !strings.Contains(skipped[0].Reason, "64 KiB") {
			t.Errorf("skipped = %v", skipped)
		}
	})
	t.Run("line at the limit kept", func(t *testing.T) {
		line := key + " " + strings.Repeat("c", MaxLineLen-len(key)-1)
		keys, skipped, err := Parse(strings.NewReader(line+"\r\n"), "ak")
		if err != nil || len(keys) != 1 || len(skipped) != 0 {
			t.Errorf("%d-byte line: %d keys, %v, %v", len(line), len(keys), skipped, err)
		}
		keys, skipped, err = Parse(strings.NewReader(line+"c\n"), "ak")
		if err != nil || len(keys) != 0 || len(skipped) != 1 {
			t.Errorf("%d-byte line: %d keys, %v, %v", len(line)+1, len(keys), skipped, err)
		}
	})
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "# key %d\n%s k%d\n", i, key, i)
		}
		return b.String()
	}
	t.Run("MaxKeys keys load", func(t *testing.T) {
		keys, skipped, err := Parse(strings.NewReader(many(MaxKeys)), "ak")
		if err != nil || len(keys) != MaxKeys || len(skipped) != 0 {
			t.Fatalf("%d keys, %d skipped, %v", len(keys), len(skipped), err)
		}
	})
	t.Run("MaxKeys+1 is an error", func(t *testing.T) {
		keys, _, err := Parse(strings.NewReader(many(MaxKeys+1)), "ak")
		if err == nil || keys != nil || !strings.Contains(err.Error(), fmt.Sprintf("ak:%d: more than the 10000 keys", 2*(MaxKeys+1))) {
			t.Fatalf("err = %v, %d keys", err, len(keys))
		}
	})
	t.Run("skipped lines count too", func(t *testing.T) {
		in := many(MaxKeys) + "garbage\n"
		if _, _, err := Parse(strings.NewReader(in), "ak"); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("file size", func(t *testing.T) {
		ok := strings.Repeat("#"+strings.Repeat("x", 1022)+"\n", MaxFileSize/1024)
		if _, _, err := Parse(strings.NewReader(ok), "ak"); err != nil {
			t.Fatalf("%d bytes: %v", len(ok), err)
		}
		_, _, err := Parse(strings.NewReader(ok+"\n"), "ak")
		if err == nil || !strings.Contains(err.Error(), "ak:4097: file is larger than the 4 MiB limit") {
			t.Fatalf("err = %v", err)
		}
		// One endless line: the error comes without reading it all.
		_, _, err = Parse(endless{}, "ak")
		if err == nil || !strings.Contains(err.Error(), "4 MiB") {
			t.Fatalf("endless: err = %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		_, _, err := Parse(failing{}, "ak")
		if err == nil || !strings.Contains(err.Error(), "ak:1: boom") {
			t.Fatalf("err = %v", err)
		}
	})
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, fmt.Errorf("boom") }

func TestAllowsFrom(t *testing.T) {
	for _, tc := range []struct {
		from  string
		addr  string
		host  string
		allow bool
	}{
		{"192.0.2.7", "192.0.2.7", "", true},
		{"192.0.2.7", "192.0.2.8", "", false},
		{"192.0.2.*", "192.0.2.200", "", true},
		{"192.0.2.?", "192.0.2.9", "", true},
		{"192.0.2.?", "192.0.2.10", "", false},
		{"192.0.2.0/24", "192.0.2.99", "", true},
		{"192.0.2.0/24", "192.0.3.1", "", false},
		{"192.0.2.0/24", "::ffff:192.0.2.5", "", true},
		{"0.0.0.0/0", "198.51.100.1", "", true},
		{"0.0.0.0/0", "2001:db8::1", "", false},
		{"2001:db8::/32", "2001:db8:1::5", "", true},
		{"2001:db8::/32", "2001:db9::5", "", false},
		{"2001:db8::/32", "192.0.2.1", "", false},
		{"2001:DB8::1", "2001:db8::1", "", true},
		{"2001:db8:*", "2001:db8::1", "", true},
		{"*", "203.0.113.9", "", true},
		{"!192.0.2.7,192.0.2.0/24", "192.0.2.7", "", false},
		{"192.0.2.0/24,!192.0.2.7", "192.0.2.7", "", false},
		{"192.0.2.0/24,!192.0.2.7", "192.0.2.8", "", true},
		{"!192.0.2.7", "192.0.2.8", "", false}, // a negation alone allows nothing
		{"*,!10.0.0.0/8", "10.9.9.9", "", false},
		{"*,!10.0.0.0/8", "11.0.0.1", "", true},
		{"*.example.com", "192.0.2.1", "", false},
		{"*.example.com", "192.0.2.1", "Host.EXAMPLE.com", true},
		{"*.EXAMPLE.COM", "192.0.2.1", "host.example.com", true},
		{"*,!bad.example.com", "192.0.2.1", "bad.example.com", false},
		{"*,!bad.example.com", "192.0.2.1", "", true}, // no DNS: a name negation cannot deny
		{"a*b*c*d*e*f*g*h*i*j*k*l*z", "192.0.2.1", strings.Repeat("abcdefghijkl", 50), false},
	} {
		t.Run(tc.from+"/"+tc.addr+"/"+tc.host, func(t *testing.T) {
			pats, reason := parseFrom(tc.from)
			if reason != "" {
				t.Fatal(reason)
			}
			o := Options{From: pats}
			if got := o.AllowsFrom(net.ParseIP(tc.addr), tc.host); got != tc.allow {
				t.Errorf("from=%q AllowsFrom(%s, %q) = %v, want %v", tc.from, tc.addr, tc.host, got, tc.allow)
			}
		})
	}
	if !(Options{}).AllowsFrom(nil, "") {
		t.Error("no patterns must allow")
	}
	if (Options{From: []string{"*"}}).AllowsFrom(nil, "") {
		t.Error("a nil address must be denied when there are patterns")
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"a*", "a", true},
		{"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"a?c", "abc", true},
		{"a?c", "ac", false}, {"*a*a*a", "aaaa", true}, {"**", "x", true},
	} {
		if got := wildcardMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestMatch(t *testing.T) {
	k1, l1 := testKey(t)
	k2, l2 := testKey(t)
	k3, _ := testKey(t)
	keys, _, err := Parse(strings.NewReader(l1+"\nno-pty "+l2+"\n"+l2+"\n"), "ak")
	if err != nil || len(keys) != 3 {
		t.Fatal(err, len(keys))
	}
	if k, ok := Match(keys, k1); !ok || k.Line != 1 {
		t.Errorf("k1: %v %v", k, ok)
	}
	if k, ok := Match(keys, k2); !ok || k.Line != 2 || !k.Options.NoPTY {
		t.Errorf("k2 must match its first line: %+v %v", k, ok)
	}
	if _, ok := Match(keys, k3); ok {
		t.Error("k3 matched")
	}
	if _, ok := Match(keys, nil); ok {
		t.Error("nil matched")
	}
	if _, ok := Match(nil, k1); ok {
		t.Error("empty list matched")
	}
}

func TestExpandPath(t *testing.T) {
	for _, tc := range []struct{ pattern, want, err string }{
		{".ssh/authorized_keys", "/home/al/.ssh/authorized_keys", ""},
		{"%h/.ssh/authorized_keys", "/home/al/.ssh/authorized_keys", ""},
		{"/etc/ssh/keys/%u", "/etc/ssh/keys/al", ""},
		{"/etc/ssh/keys/%u%%", "/etc/ssh/keys/al%", ""},
		{"keys/%u/../x", "/home/al/keys/x", ""},
		{"/k/%U", "", "unknown token %U"},
		{"/k/%", "", "lone %"},
		{"", "", "empty"},
	} {
		got, err := ExpandPath(tc.pattern, "al", "/home/al")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandPath(%q) = %q, %v; want error %q", tc.pattern, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandPath(%q) = %q, %v; want %q", tc.pattern, got, err, tc.want)
		}
	}
	for _, bad := range []struct{ user, home string }{{"a/b", "/h"}, {"..", "/h"}, {"", "/h"}, {"al", "rel"}} {
		if p, err := ExpandPath("/k/%u", bad.user, bad.home); err == nil {
			t.Errorf("ExpandPath(user %q, home %q) = %q, want an error", bad.user, bad.home, p)
		}
	}
}

// TestSecurityReasonsNeverQuoteContent (issue 12 item 9): the server logs
// skip reasons and parse errors, so they must not carry the file's text.
// A link to /etc/shadow, read by mistake, would otherwise put every hash
// in the log. Each line below carries the marker where a reason used to
// quote it.
func TestSecurityReasonsNeverQuoteContent(t *testing.T) {
	const m = "zq7marker"
	key := func() string {
		_, line := testKey(t)
		return line
	}()
	blob := strings.Fields(key)[1]
	lines := []string{
		m + ":$6$" + m + "$" + m + ":19000:0:99999:7:::", // a shadow line
		m + " " + m,
		m + "=x " + key,
		m + `="x" ` + key,
		m + ",no-pty " + key,
		"no-pty," + m + " " + key,
		`command="a"` + m + " " + key,
		`from="` + m + `/8" ` + key,
		`from="10.0.0.1/8,` + m + `" ` + key,
		`from="10.0.0.1/8" ` + key,
		`from="` + m + `,,x" ` + key,
		"ssh-" + m + " " + blob,
		"ssh-ed25519 " + m + "!!",
		"ssh-ed25519 " + base64.StdEncoding.EncodeToString([]byte("\x00\x00\x00\x09"+m)),
		m + "-x " + m + "!!",
	}
	in := strings.Join(lines, "\n") + "\n"
	keys, skipped, err := Parse(strings.NewReader(in), "ak")
	if err != nil || len(keys) != 0 || len(skipped) != len(lines) {
		t.Fatalf("Parse = %d keys, %d skipped, %v; want every line skipped", len(keys), len(skipped), err)
	}
	for _, s := range skipped {
		if r := strings.ToLower(s.Reason); strings.Contains(r, m) || strings.Contains(r, "10.0.0.") {
			t.Errorf("line %d: the reason quotes the line: %s", s.Line, s.Reason)
		}
	}
}
