package repocheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitecturePage keeps ARCHITECTURE.md's package table and the module
// in step: every package of the module has a row, and every row names a
// package that exists. A reader looking for where a rule lives starts there.
func TestArchitecturePage(t *testing.T) {
	root := moduleRoot(t)
	page, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(page), -1) {
		rows[m[1]] = true
	}
	if len(rows) < 10 {
		t.Fatalf("ARCHITECTURE.md: found %d package rows (\"| `pkg` | ...\"); the table's format changed?", len(rows))
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list the packages")
	}
	cmd := exec.Command(gobin, "list", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	const module = "github.com/latch-ssh/latch-ssh/"
	pkgs := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(p, module)
		if strings.Contains(rel, "/testdata/") {
			continue
		}
		pkgs[rel] = true
		if !rows[rel] {
			t.Errorf("package %s has no row in ARCHITECTURE.md: say what it owns", rel)
		}
	}
	for r := range rows {
		if !pkgs[r] {
			t.Errorf("ARCHITECTURE.md has a row for %s, which is not a package of the module", r)
		}
	}
}
