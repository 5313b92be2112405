package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run this binary as "latch-ssh" inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"latch-ssh": func() { os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the command-line scenarios in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		// [root]: the wiring checks of check-config run only as root.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// -c is honoured only for root, in every command that takes it.
func TestConfigAllowed(t *testing.T) {
	var b strings.Builder
	if !configAllowed("serve", "/etc/latch-ssh/latch.toml", 1000, &b) || !configAllowed("serve", "/tmp/x.toml", 0, &b) || b.Len() != 0 {
		t.Fatalf("the default path, or root, was refused: %q", b.String())
	}
	if configAllowed("check-config", "/tmp/mine.toml", 1000, &b) || !strings.Contains(b.String(), "latch-ssh check-config: -c is honoured only for root") {
		t.Fatalf("a user's own config was honoured: %q", b.String())
	}
}
