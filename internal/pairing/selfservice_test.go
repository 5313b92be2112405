package pairing_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
)

// logs collects what SelfService logs.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestSelfServiceNeedsAllowSelfPairingInTheFile(t *testing.T) {
	f := newFixture(t, options{})
	ss := pairing.SelfService{Manager: f.m}
	ctx := context.Background()
	for name, resp := range map[string]pairing.Result{
		"pair":   ss.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID)),
		"unpair": ss.Unpair(ctx, "alice"),
		"status": ss.Status(ctx, "alice"),
	} {
		if resp.OK || !strings.Contains(resp.Message, "self-service pairing is turned off") || resp.Status != nil {
			t.Errorf("%s: %+v, want refused", name, resp)
		}
	}
	f.noRequests(t)
}

// TestSelfUnpairRefusedWhenUnpairedAllowed: with unpaired = "allow", a
// person who got a shell once could unpair and so remove the latch from
// every later login. Only the phone's owner (in the app) or root may.
// (Self-service unpair is refused under every policy: see
// TestSecuritySelfServiceCannotMoveALatch.)
func TestSelfUnpairRefusedWhenUnpairedAllowed(t *testing.T) {
	f := newFixture(t, options{policy: "allow_self_pairing = true"})
	ss := pairing.SelfService{Manager: f.m}
	ctx := context.Background()
	if resp := ss.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID)); !resp.OK {
		t.Fatalf("pair: %+v", resp)
	}
	resp := ss.Unpair(ctx, "alice")
	if resp.OK || !strings.Contains(resp.Message, "remove this server in the Latch app") {
		t.Fatalf("self-unpair with unpaired = allow: %+v", resp)
	}
	if len(f.Latch.Accounts(appID)) != 1 {
		t.Fatal("the account was unpaired")
	}
}

func TestSelfService(t *testing.T) {
	f := newFixture(t, options{policy: "allow_self_pairing = true\nunpaired = \"deny\""})
	ss := pairing.SelfService{Manager: f.m}
	ctx := context.Background()
	resp := ss.Pair(ctx, "alice", f.Latch.IssuePairingToken(appID))
	if !resp.OK || !strings.Contains(resp.Message, "paired alice") {
		t.Fatalf("pair: %+v", resp)
	}
	resp = ss.Status(ctx, "alice")
	if !resp.OK || resp.Status == nil || !resp.Status.Paired || len(resp.Status.Latches) != 3 {
		t.Fatalf("status: %+v", resp)
	}
	resp = ss.Pair(ctx, "alice", "nope")
	if resp.OK || !strings.Contains(resp.Message, "6 letters and digits") {
		t.Errorf("bad token: %+v", resp)
	}
	// Only root removes a pairing (issue 12, item 2).
	resp = ss.Unpair(ctx, "alice")
	if resp.OK || !strings.Contains(resp.Message, "ask an administrator (latch-ssh unpair --user alice)") {
		t.Errorf("unpair: %+v, want refused", resp)
	}
	if len(f.Latch.Accounts(appID)) != 1 {
		t.Error("Latch no longer pairs the account")
	}
}

// TestSelfServiceHidesConfigDetails: a person is told the configuration
// has a problem, not its paths and lines; those go to the daemon's log.
func TestSelfServiceHidesConfigDetails(t *testing.T) {
	f := newFixture(t, options{policy: "allow_self_pairing = true"})
	log := &logs{}
	ss := pairing.SelfService{Manager: f.m, Logf: log.logf}
	// Readable by others while it holds the secret: Load refuses it.
	if err := os.Chmod(f.path, 0o644); err != nil {
		t.Fatal(err)
	}
	resp := ss.Pair(context.Background(), "alice", f.Latch.IssuePairingToken(appID))
	if resp.OK || !strings.Contains(resp.Message, "ask an administrator (latch-ssh check-config)") || strings.Contains(resp.Message, f.path) {
		t.Errorf("answer %+v: want a plain sentence without the path", resp)
	}
	if !strings.Contains(log.String(), f.path) || !strings.Contains(log.String(), "chmod 600") {
		t.Errorf("log = %q, want the details for the administrator", log)
	}
	// Root, running the Manager directly, gets the details.
	if _, err := f.m.Pair(context.Background(), "alice", "AbC123"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("root's error = %v, want the file's problem and fix", err)
	}
	f.noRequests(t)
}

func TestSelfServiceRateLimit(t *testing.T) {
	f := newFixture(t, options{policy: "allow_self_pairing = true"})
	ss := pairing.SelfService{Manager: f.m, Limiter: gatesocket.NewRateLimiter(2)}
	ctx := context.Background()
	for i := range 2 {
		if resp := ss.Pair(ctx, "alice", "ZZZZZ9"); resp.OK || !strings.Contains(resp.Message, "that code is wrong") {
			t.Errorf("attempt %d: %+v", i, resp)
		}
	}
	if resp := ss.Pair(ctx, "alice", "ZZZZZ9"); resp.OK || !strings.Contains(resp.Message, "too many") {
		t.Errorf("third attempt: %+v, want rate-limited", resp)
	}
	if n := len(f.Latch.Requests()); n != 2 {
		t.Errorf("%d Latch calls, want 2", n)
	}
}
