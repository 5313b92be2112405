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

// TestCheckConfigDropIns: check-config names the drop-ins read and the
// names ignored, counts the users per file, lists each user's file:line
// with --users, and locates a finding about a drop-in's key in that
// drop-in. With latch.toml alone its output has none of these lines.
func TestCheckConfigDropIns(t *testing.T) {
	const acc = "ACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNT1"
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.toml")
	write := func(p, text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(path, systest.OfflineLatch+"[policy]\nfail_mode = \"closed\"\n[users]\nroot = \""+acc+"\"\n", 0o600)
	alone := render(Run(context.Background(), Options{ConfigPath: path, SkipWiring: true}))
	if strings.Contains(alone, "drop-in") || strings.Contains(alone, "mapped") {
		t.Errorf("latch.toml alone:\n%s", alone)
	}
	d := filepath.Join(dir, users.DropInDirName)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(d, "50-paired.toml"), "# pairings\n[users]\nnosuchuser4242 = \""+acc+"\"\n", 0o600)
	write(filepath.Join(d, "10-admin.toml"), "[server]\nrecheck = \"1m\"\n", 0o644)
	write(filepath.Join(d, "50-paired.toml.dpkg-old"), "[users]\n", 0o644)
	write(filepath.Join(d, "50-paired.toml~"), "[users]\n", 0o644)

	rep := Run(context.Background(), Options{ConfigPath: path, SkipWiring: true, ListUsers: true})
	out := render(rep)
	paired := filepath.Join(d, "50-paired.toml")
	for _, want := range []string{
		"note: " + d + ": drop-ins read after " + path + ", in this order: 10-admin.toml, 50-paired.toml\n",
		"note: " + d + ": not read (only *.toml names not starting with \".\" are): 50-paired.toml.dpkg-old, 50-paired.toml~",
		"note: [users] names mapped: 1 in " + path + ", 1 in " + paired + " (check-config --users",
		"note: " + path + ":7: maps root\n",
		"note: " + paired + ":3: maps nosuchuser4242\n",
		"warning: " + paired + ":3: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errors, _ := rep.Count(); errors != 0 {
		t.Errorf("errors:\n%s", out)
	}
	// A user in two files: the error names both places.
	write(filepath.Join(d, "60-dup.toml"), "[users]\nroot = \""+acc+"\"\n", 0o644)
	out = render(Run(context.Background(), Options{ConfigPath: path, SkipWiring: true}))
	want := "error: " + filepath.Join(d, "60-dup.toml") + ":2: users.root: \"root\" is mapped in both " + path + ":7 and " + filepath.Join(d, "60-dup.toml") + ":2"
	if !strings.Contains(out, want) || !strings.Contains(out, "denied until this file and its 3 drop-in(s) load") {
		t.Errorf("output lacks %q or the lockout:\n%s", want, out)
	}
}
