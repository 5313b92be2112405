package repocheck

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinariesDoNotLinkTesting fails when a production binary depends on
// the "testing" package. It once did: the demo imports the fake Latch,
// which took a testing.TB. Linking it registers the test flags and brings
// test-only code paths into a binary that runs as root.
func TestBinariesDoNotLinkTesting(t *testing.T) {
	// go test puts the go command that runs it first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list the binaries' dependencies")
	}
	cmd := exec.Command(gobin, "list", "-deps", "./cmd/latch-ssh", "./cmd/latch-check")
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list -deps listed only %d packages", len(deps))
	}
	seen := map[string]bool{}
	for _, d := range deps {
		seen[d] = true
	}
	if !seen["github.com/latch-ssh/latch-ssh/gate"] {
		t.Fatal("the dependency list lacks the gate package: the listing is wrong")
	}
	for _, forbidden := range []string{"testing", "github.com/latch-ssh/latch-ssh/internal/systest"} {
		if seen[forbidden] {
			t.Errorf("the production binaries depend on %s (find the importer: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/... | grep %s)", forbidden, forbidden)
		}
	}
}
