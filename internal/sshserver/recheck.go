package sshserver

import (
	"context"
	osuser "os/user"
	"strconv"
	"sync"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
	"github.com/latch-ssh/latch-ssh/users"
)

// ClosedNotice is what a session whose latch was closed reads on stderr
// just before its connection ends (gate.ClosedNotice, shared with the
// OpenSSH sessions the daemon tracks).
const ClosedNotice = gate.ClosedNotice

// RecheckCommand is the Command of the audit record a recheck writes for
// each connection it ends (gate.RecheckCommand).
const RecheckCommand = gate.RecheckCommand

// maxParallelRechecks bounds the Latch calls of one round in flight.
const maxParallelRechecks = 16

// recheckLoop runs a recheck round every [server] recheck until ctx ends
// (gate.RecheckLoop). While rechecks are off it still forgets the groups
// of ended sessions whose processes are gone (a round does it too).
func (s *Server) recheckLoop(ctx context.Context) {
	interval := func() time.Duration {
		if _, set := s.settings(); set != nil {
			return set.Recheck.Duration
		}
		return 0
	}
	gate.RecheckLoop(ctx, interval, s.Recheck, func() { s.groups.Owners() })
}

// Recheck runs one round of continuous authorization: one Latch status call
// per user with an authenticated connection or with processes left running
// by a session that ended (nohup, tmux), however many, and for a user whose
// latch is now closed every connection ends with ClosedNotice on its
// sessions' stderr and every process any of their sessions started ends
// (SIGHUP, SIGKILL after hangupGrace; see spawn.Groups for what the
// fallback without cgroups cannot reach). A call that fails keeps the
// sessions (see gate.Core.Recheck) and is logged. Recheck returns when the
// round is over.
func (s *Server) Recheck(ctx context.Context) {
	core, _ := s.settings()
	if core == nil || core.Config == nil {
		s.o.Log.Warn().Str("event", "recheck").Msg("no valid configuration: sessions kept, not rechecked")
		return
	}
	s.mu.Lock()
	byUser := make(map[string][]*conn, len(s.live))
	for u, cs := range s.live {
		for c := range cs {
			byUser[u] = append(byUser[u], c)
		}
	}
	s.mu.Unlock()
	for _, u := range s.groups.Owners() {
		if _, ok := byUser[u]; !ok {
			byUser[u] = nil
		}
	}

	sem := make(chan struct{}, maxParallelRechecks)
	var wg sync.WaitGroup
	for user, conns := range byUser {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.recheckUser(ctx, core, user, conns)
		}()
	}
	wg.Wait()
}

// endUser ends every process of user's uid (sessions.EndUser), except
// root's and the daemon's own, which are never ended wholesale.
func (s *Server) endUser(user string) {
	u, err := osuser.Lookup(user)
	var uid int
	if err == nil {
		uid, err = strconv.Atoi(u.Uid)
	}
	if err == nil {
		_, err = sessions.EndUser(uid, hangupGrace)
	}
	if err != nil {
		s.o.Log.Warn().Str("event", "recheck").Str("user", user).Str("reason", err.Error()).
			Msg(`end = "user" not applied: the user's sessions on this server ended, their other processes did not`)
	}
}

func (s *Server) recheckUser(ctx context.Context, core *gate.Core, user string, conns []*conn) {
	r := core.Recheck(ctx, user, Service)
	s.observeRecheck(r, len(conns))
	switch {
	case r.Err != nil:
		s.o.Log.Warn().Str("event", "recheck").Str("user", user).Int("connections", len(conns)).
			Str("reason", safetext.Clean(r.Reason)).Msg("recheck failed; sessions kept")
	case r.Verdict == gate.End:
		var wg sync.WaitGroup
		for _, c := range conns {
			if core.Audit != nil {
				core.Audit.Record(gate.Request{User: user, Service: Service, RemoteAddr: c.remote, Command: RecheckCommand},
					gate.Decision{Outcome: gate.Deny, Reason: "session ended by recheck: " + r.Reason, Severity: gate.Warning})
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.end("recheck: "+r.Reason, ClosedNotice)
			}()
		}
		wg.Wait()
		// The connections are closed (their sessions got SIGHUP); now
		// everything the user's sessions started, still running or left
		// behind, ends.
		if err := s.groups.End(user, hangupGrace); err != nil {
			s.o.Log.Error().Str("event", "recheck").Str("user", user).Str("error", err.Error()).
				Msg("some session processes could not be ended")
		}
		// [policy] end = "user": every other process of the user too,
		// whatever started it (an OpenSSH login, cron, a tmux server).
		if core.Config.Policy.End == users.EndUser {
			s.endUser(user)
		}
		s.o.Log.Warn().Str("event", "recheck").Str("user", user).Int("connections", len(conns)).
			Str("reason", r.Reason).Msg("sessions ended")
	default:
		s.o.Log.Debug().Str("event", "recheck").Str("user", user).Str("reason", r.Reason).Msg("sessions kept")
	}
}

// observeRecheck tells the observer, if any, what a user's recheck found
// and how many of their connections it ends.
func (s *Server) observeRecheck(r gate.RecheckResult, conns int) {
	o := s.o.Observer
	if o == nil {
		return
	}
	switch {
	case r.Err != nil:
		o.Rechecked(gate.FrontEndServer, gate.RecheckError)
	case r.Verdict == gate.End:
		o.Rechecked(gate.FrontEndServer, gate.RecheckEnded)
		o.Ended(gate.FrontEndServer, conns)
	default:
		o.Rechecked(gate.FrontEndServer, gate.RecheckKept)
	}
}
