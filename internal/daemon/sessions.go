package daemon

import (
	"context"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
)

// recheckLoop rechecks the tracked OpenSSH sessions every [server]
// recheck (the setting applies to every front end) until ctx ends
// (gate.RecheckLoop); each round uses the core in force when it starts.
func (d *daemon) recheckLoop(ctx context.Context) {
	interval := func() time.Duration {
		if c := d.core.Load(); c != nil && c.Config != nil {
			return c.Config.Server.Recheck.Duration
		}
		return 0
	}
	gate.RecheckLoop(ctx, interval, func(ctx context.Context) {
		if c := d.core.Load(); c != nil {
			d.sessions.Recheck(ctx, c)
		}
	}, nil)
}

// sessionTable is the tracker as the gate socket sees it.
type sessionTable struct{ t *sessions.Tracker }

func (s sessionTable) RegisterGate(pid int32, uid uint32, user, service, remote string) error {
	return s.t.RegisterGate(pid, uid, user, service, remote)
}

func (s sessionTable) RegisterHook(pid int32, user, service, remote string) error {
	return s.t.RegisterHook(pid, user, service, remote)
}

func (s sessionTable) UnregisterHook(pid int32) int { return s.t.UnregisterHook(pid) }

func (s sessionTable) Sessions() []gatesocket.SessionInfo {
	list := s.t.List()
	out := make([]gatesocket.SessionInfo, 0, len(list))
	for _, x := range list {
		out = append(out, gatesocket.SessionInfo{User: x.User, FrontEnd: x.FrontEnd, Service: x.Service, Remote: x.Remote,
			PID: x.Anchor.PID, TTY: x.TTY, Since: x.Since, LastCheck: x.LastCheck, LastResult: x.LastResult})
	}
	return out
}
