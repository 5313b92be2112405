package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
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
