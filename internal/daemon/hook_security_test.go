package daemon

// Issue 15: the PAM hook's decisions for another user (op decide-for) are
// root's alone.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestSecurityDecideForOnlyRoot: an ordinary user who sends the PAM hook's
// request, or slips a "user" into an ordinary decision, cannot have the
// daemon decide (or probe Latch) for anyone but themselves. Root, with the
// daemon's configuration file, can; with another file it is refused (and
// the hook decides itself).
func TestSecurityDecideForOnlyRoot(t *testing.T) {
	f := newFixture(t)
	attacker := systest.CreateUser(t, systest.UserOptions{})
	victim := systest.CreateUser(t, systest.UserOptions{})
	accA, accV := f.pair(t), f.pair(t)
	f.writeConfig(t, f.configText(conf{users: map[string]string{attacker.Name: accA, victim.Name: accV}}))
	f.SetLatch(accV, false)
	f.start(t, nil)
	victimCalls := func() int {
		return f.Latch.CountRequests(func(r latchtest.Request) bool { return r.Account == accV })
	}
	victimLines := func() int {
		n := 0
		for _, e := range f.log.find(t, "decision") {
			if e.str("user") == victim.Name {
				n++
			}
		}
		return n
	}

	// The hook's request, sent by an ordinary user: refused, nothing
	// decided for the victim, Latch not asked.
	out := f.ask(t, attacker, "raw", f.socket,
		fmt.Sprintf(`{"v":1,"op":"decide-for","user":%q,"config":%q}`, victim.Name, f.cfgPath))
	if len(out) != 1 || !strings.HasPrefix(out[0], `ANSWER {"v":1,"outcome":"deny"`) || strings.Contains(out[0], "accepted") || strings.Contains(out[0], victim.Name) {
		t.Fatalf("decide-for from uid %d: %q, want a plain deny", attacker.UID, out)
	}
	// An ordinary decision with a "user": the caller is decided as itself
	// (the attacker's latch is open, the victim's closed).
	out = f.ask(t, attacker, "raw", f.socket, fmt.Sprintf(`{"v":1,"op":"decide","user":%q}`, victim.Name))
	if len(out) != 1 || out[0] != `ANSWER {"v":1,"outcome":"allow"}` {
		t.Fatalf("decide with user from uid %d: %q, want the attacker's own allow", attacker.UID, out)
	}
	var attackerLines int
	for _, e := range f.log.find(t, "decision") {
		if e.str("user") == attacker.Name {
			attackerLines++
		}
	}
	if attackerLines != 1 || victimLines() != 0 || victimCalls() != 0 {
		t.Fatalf("decision lines: attacker %d, victim %d; Latch calls for the victim %d; want 1, 0, 0\n%s",
			attackerLines, victimLines(), victimCalls(), f.log)
	}

	// Root, with the daemon's file: decided for the victim, by the
	// victim's latch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := gatesocket.AskForUser(ctx, f.socket, gatesocket.SocketRequest{User: victim.Name, Service: "sshd", Config: f.cfgPath}, time.Second)
	if err != nil || ans.Allowed || ans.Reason != "latch closed" || ans.FailMode {
		t.Fatalf("root's decide-for: %+v, %v", ans, err)
	}
	if victimLines() != 1 || victimCalls() != 1 {
		t.Fatalf("root's decide-for: %d decision lines, %d Latch calls, want 1 and 1", victimLines(), victimCalls())
	}
	// Root with another file: not accepted, nothing decided.
	_, err = gatesocket.AskForUser(ctx, f.socket, gatesocket.SocketRequest{User: victim.Name, Service: "sshd", Config: f.cfgPath + ".other"}, time.Second)
	if !errors.Is(err, gatesocket.ErrDaemon) || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("decide-for with another configuration file: %v, want not accepted", err)
	}
	if victimLines() != 1 || victimCalls() != 1 {
		t.Fatalf("decide-for with another file was decided")
	}
}
