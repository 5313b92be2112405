package gate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreHasNoTransport: package gate is the decision core every front
// end shares, and holds no transport (issue 14): the gate socket's server,
// clients and wire types live in internal/gatesocket, which calls gate, not
// the other way round. The socket once lived here, and the core's package
// was mostly transport. A package that needs sockets or raw system calls to
// do its work belongs outside the core; so do the packages that pair
// accounts or serve SSH.
func TestCoreHasNoTransport(t *testing.T) {
	// go test puts the go command that runs it first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list gate's imports")
	}
	out, err := exec.Command(gobin, "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := strings.Fields(string(out))
	if len(imports) < 5 {
		t.Fatalf("go list listed only %d imports of gate: %q", len(imports), imports)
	}
	for _, imp := range imports {
		switch {
		case imp == "net", imp == "syscall", imp == "golang.org/x/sys/unix",
			strings.HasPrefix(imp, "github.com/latch-ssh/latch-ssh/internal/") && imp != "github.com/latch-ssh/latch-ssh/internal/safetext" && imp != "github.com/latch-ssh/latch-ssh/internal/version":
			t.Errorf("package gate imports %s: the decision core holds no transport and no front end (see internal/gatesocket)", imp)
		}
	}
}
