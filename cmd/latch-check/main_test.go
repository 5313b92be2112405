package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/helptext"
)

type nopAudit struct{ n int }

func (a *nopAudit) Record(gate.Request, gate.Decision) { a.n++ }

// -c is honoured only for root: an ordinary user must not be able to
// point the hook at a config of their own.
func TestConfigFlagOnlyForRoot(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-c", "/tmp/mine.toml", "alice"}, nil, 1000, &out, &errb, &nopAudit{})
	if code != exitUsage || !strings.Contains(errb.String(), "only for root") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestReadPAMItems(t *testing.T) {
	p, err := readPAMItems([]string{"PAM_USER=evil", "FOO=bar", "PAM_TYPE=account", "PAM_USER=evil", "SSH_CONNECTION=192.0.2.9 5555 127.0.0.1 22", "PAM_RHOST=198.51.100.1"})
	if err != nil || p.user != "evil" || p.typ != "account" || remoteAddr(p) != "192.0.2.9" {
		t.Fatalf("%+v %v", p, err)
	}
	if p, _ := readPAMItems([]string{"PAM_RHOST=198.51.100.1"}); remoteAddr(p) != "198.51.100.1" {
		t.Fatalf("PAM_RHOST fallback: %q", remoteAddr(p))
	}
	// Same name twice with different values: refused.
	if _, err := readPAMItems([]string{"PAM_USER=root", "PAM_USER=alice"}); err == nil {
		t.Fatal("a smuggled second PAM_USER was accepted")
	}
}

// A config that cannot be loaded denies, and the decision is audited.
func TestUnreadableConfigDenies(t *testing.T) {
	var out, errb bytes.Buffer
	a := &nopAudit{}
	code := run([]string{"-c", "/nonexistent/latch.toml", "alice"}, nil, 0, &out, &errb, a)
	if code != exitDeny || a.n != 1 || out.Len() != 0 {
		t.Fatalf("exit %d, %d audit lines, stdout %q", code, a.n, out.String())
	}
}

// TestNewUserHelp (issue 13, point 5): latch-check --help and -h exit 0
// with the help on stdout, and the usage lines name exactly the flags the
// list shows, spelled the same way; --version prints the version.
func TestNewUserHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var out, errOut strings.Builder
		code := run([]string{arg}, nil, 0, &out, &errOut, &nopAudit{})
		if code != 0 || errOut.Len() != 0 || !strings.HasPrefix(out.String(), "usage: latch-check") {
			t.Fatalf("latch-check %s: exit %d, stdout %q, stderr %q", arg, code, out.String(), errOut.String())
		}
		if m := helptext.Mismatch(out.String()); m != nil {
			t.Errorf("latch-check %s: %s\n%s", arg, strings.Join(m, "; "), out.String())
		}
	}
	var out, errOut strings.Builder
	if code := run([]string{"--version"}, nil, 0, &out, &errOut, &nopAudit{}); code != 0 || !strings.HasPrefix(out.String(), "latch-check ") {
		t.Errorf("latch-check --version: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}
