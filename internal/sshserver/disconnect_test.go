package sshserver

import (
	"os"
	"strings"
	"testing"
)

// xcryptoInGoMod returns the golang.org/x/crypto version go.mod requires.
func xcryptoInGoMod(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatalf("go.mod: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "golang.org/x/crypto" {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == "golang.org/x/crypto" {
			return f[2]
		}
	}
	t.Fatal("go.mod does not require golang.org/x/crypto")
	return ""
}
