package safetext

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"ünïcode ok", "ünïcode ok"},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"line1\nfake log line", `line1\x0afake log line`},
		{"cr\roverwrite", `cr\x0doverwrite`},
		{"bell\a", `bell\x07`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"bidi\u202eevil", "bidi?evil"},
		{"bad\xffbyte", `bad\xffbyte`},
		{"del\x7f", `del\x7f`},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanCutsLongStrings(t *testing.T) {
	got := Clean(strings.Repeat("é", 2000))
	if len(got) > MaxLen+len("...(cut)") || !strings.HasSuffix(got, "...(cut)") {
		t.Fatalf("len %d, suffix %q", len(got), got[len(got)-10:])
	}
}

func FuzzClean(f *testing.F) {
	f.Add("\x1b]0;title\x07")
	f.Add("a\nb")
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("control byte %#x survived in %q", out[i], out)
			}
		}
	})
}
