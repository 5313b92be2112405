package sessions

import (
	"context"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/users"
)

// Processes left behind after logout, under [policy] end = "user".
//
// A session leaves the table when its login ends (its anchor exits, or
// close_session arrives). Without more, nothing would ask Latch about that
// user again until they log in: a `setsid nohup` job an intruder started
// before logging out would survive the owner closing the latch later,
// which is the very case end = "user" exists for. So when a session of
// user U on service S leaves the table, (U, S) lingers: while end = "user"
// is in force and U's uid still has processes, each round asks Latch about
// (U, S) once, as for a live session, and a definite refusal ends every
// process of the uid (with the same refusals as end: never root's, never
// the daemon's own user's). A linger ends when the uid has no process
// left, when end is not "user" (the default keeps detached jobs on
// purpose, as sshd's own hangup does), or once it has ended them. The
// embedded server does the same for the processes its sessions leave
// behind (spawn.Groups). Lingers live in memory only: a daemon restart
// forgets them (the state file keeps live sessions).

// lingerKey names a linger: the user and the service whose latch decides.
type lingerKey struct{ user, service string }

// linger is what a lingering (user, service) needs: the uid whose
// processes end, and the front end, for the audit log and the metrics.
type linger struct {
	uid      int
	frontEnd string
}

// lingerAfter records that the sessions ss left the table while their
// login went on no more; t.mu must be held.
func (t *Tracker) lingerAfter(ss []*Session) {
	for _, s := range ss {
		if s.UID < 0 {
			continue
		}
		k := lingerKey{s.User, s.Service}
		if _, ok := t.lingering[k]; !ok {
			t.lingering[k] = linger{uid: s.UID, frontEnd: s.FrontEnd}
		}
	}
}

// lingersToCheck returns the lingers of this round: those whose (user,
// service) has no live session (a live one is rechecked anyway) and whose
// uid still runs a process, under end = "user". The others are dropped.
func (t *Tracker) lingersToCheck(mode users.End, live map[lingerKey]bool) map[lingerKey]linger {
	t.mu.Lock()
	if len(t.lingering) == 0 || mode != users.EndUser {
		clear(t.lingering)
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	// The process table is read without the lock: registrations must not
	// wait for a scan of /proc.
	snap := t.snapshot()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[lingerKey]linger{}
	for k, l := range t.lingering {
		if ok, _ := endUserAllowed(l.uid); !ok || len(snap.ofUID(l.uid, t.self)) == 0 {
			delete(t.lingering, k)
			continue
		}
		if !live[k] {
			out[k] = l
		}
	}
	return out
}

// recheckLinger asks Latch about one lingering (user, service) and, on a
// definite refusal, ends every process of its uid.
func (t *Tracker) recheckLinger(ctx context.Context, core *gate.Core, k lingerKey, l linger) {
	r := core.Recheck(ctx, k.user, k.service)
	switch {
	case r.Err != nil:
		t.log.Warn().Str("event", "recheck").Str("user", k.user).Str("service", k.service).
			Str("reason", r.Reason).Msg("recheck of processes left after logout failed; kept")
	case r.Verdict == gate.End:
		if core.Audit != nil {
			core.Audit.Record(gate.Request{User: k.user, Service: k.service, Command: gate.RecheckCommand},
				gate.Decision{Outcome: gate.Deny, Reason: "processes left after logout ended by recheck (" + l.frontEnd + `, end = "user"): ` + r.Reason, Severity: gate.Warning})
		}
		n := t.end([]*Session{{User: k.user, UID: l.uid, Service: k.service, FrontEnd: l.frontEnd}}, users.EndUser)
		t.mu.Lock()
		delete(t.lingering, k)
		t.mu.Unlock()
		t.log.Warn().Str("event", "recheck").Str("user", k.user).Str("service", k.service).Int("processes", n).
			Str("reason", r.Reason).Msg(`processes left after logout ended (end = "user")`)
	}
}
