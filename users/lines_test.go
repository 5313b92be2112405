package users

import "testing"

func TestLineIndex(t *testing.T) {
	text := "top = 1\n" + // 1
		"[server]\n" + // 2
		"host_key = [\n" + // 3
		"  \"/a\",   # a = comment [with] brackets\n" + // 4
		"  \"/b\",\n" + // 5
		"]\n" + // 6
		"x = \"\"\"\n" + // 7
		"[users]\n" + // 8: inside a string
		"fake = 1\"\"\"\"\"\n" + // 9: closes with extra quotes
		"[a.\"b c\" . 'd']  # header comment\r\n" + // 10
		"\"quoted key\" = \"v # not a comment\"\n" + // 11
		"dotted . key = 2\n" + // 12
		"'lit' = '''\n" + // 13
		"''' \n" + // 14
		"after = \"\\\"\"\n" + // 15
		"[[arr]]\n" + // 16
		"k = { a = [1, 2], b = \"}\" }\n" // 17
	if _, err := decodeRaw([]byte(text)); err != nil {
		t.Fatalf("test input is not TOML: %v", err)
	}
	x := indexLines([]byte(text))
	cases := []struct {
		path []string
		want int
	}{
		{[]string{"top"}, 1},
		{[]string{"server"}, 2},
		{[]string{"server", "host_key"}, 3},
		{[]string{"server", "x"}, 7},
		{[]string{"users"}, 0},
		{[]string{"server", "fake"}, 2}, // unknown: falls back to the table
		{[]string{"a", "b c", "d"}, 10},
		{[]string{"a", "b c", "d", "quoted key"}, 11},
		{[]string{"a", "b c", "d", "dotted", "key"}, 12},
		{[]string{"a", "b c", "d", "dotted"}, 12},
		{[]string{"a", "b c", "d", "lit"}, 13},
		{[]string{"a", "b c", "d", "after"}, 15},
		{[]string{"arr", "k"}, 17},
		{[]string{"arr", "k", "a"}, 17},
		{[]string{"nowhere"}, 0},
	}
	for _, c := range cases {
		if got := x.line(c.path...); got != c.want {
			t.Errorf("line(%q) = %d, want %d", c.path, got, c.want)
		}
	}
	// The value spans the editor relies on.
	l := x.lines[10]
	if got := text[l.valStart:l.valEnd]; got != `"v # not a comment"` {
		t.Errorf("value of line 11 = %q", got)
	}
	if l := x.lines[9]; !l.crlf() || l.kind != lineHeader {
		t.Errorf("line 10: crlf %v kind %v", l.crlf(), l.kind)
	}
	for _, n := range []int{4, 5, 6, 8, 9, 14} {
		if x.lines[n-1].kind != lineCont {
			t.Errorf("line %d is not a continuation line", n)
		}
	}
}
