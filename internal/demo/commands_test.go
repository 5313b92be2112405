package demo

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/latch-ssh/latch-ssh/gate"
)

func TestKeyCommand(t *testing.T) {
	for _, tc := range []struct {
		key  byte
		want Command
	}{
		{'l', CloseLatch}, {'L', CloseLatch}, {'o', OpenLatch}, {'O', OpenLatch},
		{'t', ToggleOTP}, {'T', ToggleOTP}, {'q', Quit}, {'Q', Quit}, {ctrlD, Quit},
		{'h', Help}, {'?', Help},
		{'x', Unknown}, {'[', Unknown}, {'1', Unknown},
		{' ', None}, {'\n', None}, {'\r', None}, {'\t', None}, {esc, None}, {0x7f, None}, {0xc3, None}, {0, None},
	} {
		if got := KeyCommand(tc.key); got != tc.want {
			t.Errorf("KeyCommand(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestKeyCommands(t *testing.T) {
	for _, tc := range []struct {
		chunk string
		want  []Command
	}{
		{"l", []Command{CloseLatch}},
		{"lot", []Command{CloseLatch, OpenLatch, ToggleOTP}},
		{"\x1b[A", nil},              // up arrow
		{"\x1b[Aq", []Command{Quit}}, // an arrow key, then q, in one read
		{"\x1b[1;5Cl", []Command{CloseLatch}},
		{"\x1b[15~o", []Command{OpenLatch}}, // F5
		{"\x1bOPt", []Command{ToggleOTP}},   // F1 (SS3)
		{"\x1b", nil},                       // Esc alone
		{"\x1bl", []Command{CloseLatch}},    // Alt-l
		{"\x1b[", nil},                      // cut short
		{"\r\n \x04", []Command{Quit}},
		{"x", []Command{Unknown}},
	} {
		got := KeyCommands([]byte(tc.chunk))
		if !equal(got, tc.want) {
			t.Errorf("KeyCommands(%q) = %v, want %v", tc.chunk, got, tc.want)
		}
	}
}

func TestLineCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Command
	}{
		{"l", CloseLatch}, {"  l\r", CloseLatch}, {"\tlock", CloseLatch}, {"L", CloseLatch},
		{"o", OpenLatch}, {"open", OpenLatch}, {"t", ToggleOTP}, {"q", Quit}, {"quit now", Quit},
		{"?", Help}, {"help", Help},
		{"", None}, {"   ", None}, {"\r", None},
		{"x", Unknown}, {"-l", Unknown}, {"\x1b[A", Unknown}, {"é", Unknown},
	} {
		if got := LineCommand(tc.line); got != tc.want {
			t.Errorf("LineCommand(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

// readAll runs readCommands on input and returns what it sent.
func readAll(t *testing.T, in io.Reader, keys bool) []Command {
	t.Helper()
	ch := make(chan Command)
	go readCommands(context.Background(), in, keys, ch)
	var got []Command
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, c)
		case <-timeout:
			t.Fatal("readCommands did not finish")
		}
	}
}

func TestReadCommandsLines(t *testing.T) {
	// A line longer than the reader's buffer counts once, by its first
	// character; the last line needs no newline.
	in := "l\n\n  o\r\n" + "x" + strings.Repeat("l", 10000) + "\nt\nq"
	got := readAll(t, strings.NewReader(in), false)
	want := []Command{CloseLatch, OpenLatch, Unknown, ToggleOTP, Quit}
	if !equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// chunks is a reader that returns one chunk per Read, as a terminal does.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	*c = (*c)[1:]
	return n, nil
}

func TestReadCommandsKeys(t *testing.T) {
	// An arrow key (ESC [ A) is ignored as a whole; keys that arrive
	// together all count.
	in := chunks{"l", "\x1b[A", "\n", "ot", "\x04"}
	got := readAll(t, &in, true)
	want := []Command{CloseLatch, OpenLatch, ToggleOTP, Quit}
	if !equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func equal(a, b []Command) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTOMLString(t *testing.T) {
	for _, s := range []string{"alice", `we"ird\name`, "tab\there", "ünï", "/tmp/latch-ssh-demo-1/ca.pem", "\x7f\x01"} {
		var v struct{ K string }
		if _, err := toml.Decode("K = "+tomlString(s), &v); err != nil || v.K != s {
			t.Errorf("tomlString(%q) = %s: decodes to %q, %v", s, tomlString(s), v.K, err)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"ssh":                           "ssh",
		"UserKnownHostsFile=/tmp/a/b_c": "UserKnownHostsFile=/tmp/a/b_c",
		"alice@127.0.0.1":               "alice@127.0.0.1",
		"":                              "''",
		"/tmp/my dir/key":               "'/tmp/my dir/key'",
		"it's":                          `'it'\''s'`,
		"$HOME":                         "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConnectHost(t *testing.T) {
	for _, tc := range []struct {
		addr       string
		host, port string
	}{
		{"127.0.0.1:2222", "127.0.0.1", "2222"},
		{"0.0.0.0:22", "127.0.0.1", "22"},
		{"[::]:2222", "::1", "2222"},
		{"[::1]:2200", "::1", "2200"},
		{"192.0.2.7:2222", "192.0.2.7", "2222"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if h, p := connectHost(a); h != tc.host || p != tc.port {
			t.Errorf("connectHost(%s) = %s, %s; want %s, %s", tc.addr, h, p, tc.host, tc.port)
		}
	}
}

func TestDecisionLine(t *testing.T) {
	for _, tc := range []struct {
		d        gate.Decision
		code     string
		haveCode bool
		want     string
	}{
		{gate.Decision{Outcome: gate.Allow, Reason: "latch open"}, "", false, "alice from 127.0.0.1:5: ALLOW (latch open)"},
		{gate.Decision{Outcome: gate.Deny, Reason: "latch closed"}, "", false, "alice from 127.0.0.1:5: DENY (latch closed)"},
		{gate.Decision{Outcome: gate.AskOTP}, "4F7K2Q", true, "alice from 127.0.0.1:5: one-time code asked: phone shows 4F7K2Q"},
		{gate.Decision{Outcome: gate.AskOTP}, "", false, "alice from 127.0.0.1:5: one-time code asked, but the phone got none"},
		// Nothing from outside reaches the terminal raw.
		{gate.Decision{Outcome: gate.Deny, Reason: "bad\x1b[2Jthing"}, "", false, `alice from 127.0.0.1:5: DENY (bad\x1b[2Jthing)`},
	} {
		if got := decisionLine("alice", "127.0.0.1:5", tc.d, tc.code, tc.haveCode); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
