package helptext

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestMismatch shows Mismatch catching what it is for (issue 13, point
// 5), so the --help tests that use it cannot pass by accident: flag's own
// listing ("-user user") disagrees with a usage line that says --user,
// PrintFlags' listing agrees, and a flag missing from either side is named.
func TestMismatch(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("user", "", "act on `USER`")
	fs.String("c", "/etc/x", "configuration `FILE`")
	fs.Bool("json", false, "JSON")
	line := "usage: latch-ssh x [--user USER] [-c FILE] [--json]\nDoes x.\n"

	var ours, goDefault strings.Builder
	PrintFlags(&ours, fs)
	fs.SetOutput(&goDefault)
	fs.PrintDefaults()
	if m := Mismatch(line + ours.String()); m != nil {
		t.Errorf("PrintFlags disagrees with the usage line: %q\n%s", m, ours.String())
	}
	if m := Mismatch(line + goDefault.String()); m == nil {
		t.Errorf("flag.PrintDefaults' -user agreed with --user:\n%s", goDefault.String())
	}
	short := "usage: latch-ssh x [--user USER] [-c FILE]\n       latch-ssh x [--json] [--version]\n"
	want := []string{"--version in the usage line, not listed"}
	if m := Mismatch(short + ours.String()); !reflect.DeepEqual(m, want) {
		t.Errorf("Mismatch = %q, want %q", m, want)
	}
	if m := Mismatch("usage: latch-ssh x [-c FILE]\n" + ours.String()); len(m) != 2 {
		t.Errorf("two flags not in the usage line: %q", m)
	}
}
