package checkconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// Issue 17: with instances on, check-config names each user who lacks this
// server's instance of a latch their logins ask, with file:line and the
// repair command; with instances off, stored ids are only noted.
func TestCheckInstances(t *testing.T) {
	const op = "OPERATIONOPERATION01"
	acc := strings.Repeat("a", 64)
	users1 := "[operations]\nsshd = \"" + op + "\"\n[users]\n" +
		"alice = \"" + acc + "\"\n" +
		"bob = \"" + acc + "\"\n" +
		"carol = \"" + acc + "\"\n" +
		"[instances]\n" +
		"bob = { app = \"I1\" }\n" +
		"carol = { app = \"I2\", " + op + " = \"I3\" }\n" +
		"dave = { app = \"I4\" }\n"
	for _, tc := range []struct {
		name, instance string
		warnings       int
		want           []string
	}{
		{"on", "instance = \"host\"\n", 3, []string{
			"latch.toml:16: [instances] has ids for dave, who is not in [users]",
			"latch.toml:10: alice has no instance of this server for the application latch, operation " + op,
			"latch.toml:11: bob has no instance of this server for operation " + op,
			"latch-ssh pair --repair --user bob",
		}},
		{"off", "", 1, []string{"3 user(s) have instance ids in [instances], but [latch] instance is off", "ids for dave"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := systest.OfflineLatch + tc.instance + "[policy]\nfail_mode = \"closed\"\n" + users1
			path := filepath.Join(t.TempDir(), "latch.toml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			in := users.Inspect(path)
			if in.Config == nil || len(in.Problems) > 0 || in.Err != nil {
				t.Fatalf("the test's latch.toml does not load: %v %v", in.Problems, in.Err)
			}
			rep := &Report{Findings: checkInstances(context.Background(), &run{cfg: in.Config, in: in})}
			out := render(rep)
			if errors, warnings := rep.Count(); warnings != tc.warnings || errors != 0 {
				t.Errorf("%d warnings, %d errors, want %d:\n%s", warnings, errors, tc.warnings, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
		})
	}
}
