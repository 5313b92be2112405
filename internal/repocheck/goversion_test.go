package repocheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// codeNeeds is the Go release the module's own code needs, whatever its
// dependencies ask: sync.WaitGroup.Go, used by the tests, came in Go 1.25.
const codeNeeds = "1.25"

// TestNewUserGoVersion (issue 13, point 5: what a new user meets first):
// the go directive of go.mod is the lowest the module can have (what its
// dependencies or its own code need, no higher: a distribution's Go
// refuses anything newer than itself), and the README names exactly that
// version, with the reason, where it says how to build.
func TestNewUserGoVersion(t *testing.T) {
	root := moduleRoot(t)
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	directive := string(m[1])

	// What the dependencies declare, from the module graph (the module
	// cache has their go.mod files: the build needed them).
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	cmd := exec.Command(goCmd, "list", "-m", "-f", "{{.Path}} {{.GoVersion}} {{.Main}}", "all")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	needed, by := codeNeeds, "the module's own code"
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == "false" && compareGo(f[1], needed) > 0 {
			needed, by = f[1], f[0]
		}
	}
	if compareGo(directive, needed) != 0 {
		t.Errorf("go.mod says go %s, but the highest need is go %s (%s): make the directive exactly that", directive, needed, by)
	}

	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	minor := strings.Join(strings.SplitN(directive, ".", 3)[:2], ".")
	for _, want := range []string{
		"Building needs **Go " + minor + "** or newer: `go.mod` says `go " + directive + "`",
		"needs Go " + minor + " or newer",
	} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not say %q (go.mod: go %s)", want, directive)
		}
	}
}

// compareGo compares Go versions such as "1.26.0", "1.25" and "1.9".
func compareGo(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// TestNewUserReadmeLinks (issue 13, point 5): the README names nothing
// outside the repository (it once sent readers to ../shared/design.md,
// which only the developers' machine has), and every relative link in it
// names a file of the repository.
func TestNewUserReadmeLinks(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(readme), "../") {
		t.Errorf("README.md refers to a path outside the repository (../)")
	}
	for _, m := range regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(string(readme), -1) {
		target := m[1]
		if strings.HasPrefix(target, "#") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		if _, err := os.Stat(filepath.Join(root, target)); err != nil || filepath.IsAbs(target) {
			t.Errorf("README.md links to %s, not a file of the repository", m[1])
		}
	}
}
