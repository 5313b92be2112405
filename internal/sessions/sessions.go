// Package sessions is the daemon's table of the OpenSSH (and su, sudo)
// sessions that the PAM hook and the ForceCommand gate let in: who
// registers them and how each is checked against /proc, the recheck round
// that asks Latch about them (one call per user and service, however many
// sessions), ending a session whose latch closed, and the state file that
// keeps the table across daemon restarts.
//
// The embedded server rechecks its own sessions (internal/sshserver); this
// package gives the other two front ends the same continuous
// authorization, driven by the daemon with the same [server] recheck
// interval and the same verdicts (gate.Core.Recheck).
//
// A session is known by its anchor (see anchor.go): a process named by pid
// and start time, checked to be one login (sshd's per-connection monitor,
// su, sudo, login, runuser) when it registers and again, from the state
// file, when the daemon starts. Nothing a caller says picks the anchor:
// the hook's is its parent process, the gate's is found by walking up from
// its SO_PEERCRED pid. A stale entry never leads to a signal: every signal
// goes through a pidfd opened for the pid and checked against the start
// time (SystemProc.Signal).
package sessions

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/latch-ssh/latch-ssh/gate"
)

// The front ends whose sessions are tracked.
const (
	// FrontEndPAM is the PAM hook (latch-check under pam_exec).
	FrontEndPAM = gate.FrontEndPAM
	// FrontEndForceCommand is the ForceCommand gate.
	FrontEndForceCommand = gate.FrontEndForceCommand
)

// Session is one tracked session: the JSON of the state file, and what
// `latch-ssh status --sessions` lists.
type Session struct {
	User string `json:"user"`
	// UID is the user's uid, -1 when NSS did not know it at registration.
	UID      int    `json:"uid"`
	Service  string `json:"service"`
	FrontEnd string `json:"front_end"`
	Remote   string `json:"remote,omitempty"`
	// Anchor is the process that stands for the login; Exe its
	// executable's base name when registered.
	Anchor ProcID `json:"anchor"`
	Exe    string `json:"exe"`
	// Listener is the sshd that accepted the connection (sshd anchors).
	Listener  ProcID    `json:"listener"`
	Since     time.Time `json:"since"`
	LastCheck time.Time `json:"last_check"`
	// LastResult is "kept", "ended" or "error: REASON" after a recheck.
	LastResult string `json:"last_result,omitempty"`
	// TTY is the session's terminal ("pts/3"), filled in by List only.
	TTY string `json:"tty,omitempty"`
}

// key names a session in the table: its anchor, service and user. The
// user is part of it because one anchor can be registered for two users:
// sudo runs the account stack with PAM_USER = the invoking user and opens
// the session with PAM_USER = the target user (sudo_pam_begin_session).
// Keyed without the user, the second registration replaced the first and
// the invoker's closed latch no longer ended their `sudo -s` shell; keyed
// with it, the session stays under both latches, and either ends it.
func (s *Session) key() string {
	return strconv.Itoa(s.Anchor.PID) + ":" + strconv.FormatUint(s.Anchor.Start, 10) + ":" + s.Service + ":" + s.User
}

// Options configure New.
type Options struct {
	// Path is the state file ("" keeps the table in memory only). It must
	// be in a directory only root can write.
	Path string
	// Log receives the tracker's events.
	Log zerolog.Logger
	// Proc is the view of the processes; nil means SystemProc.
	Proc Proc
	// Grace is how long the processes of an ended session have between
	// SIGHUP and SIGKILL; 0 means DefaultGrace.
	Grace time.Duration
	// LookupUID maps a user name to its uid; nil means NSS.
	LookupUID func(name string) (int, error)
	// Observer, if set, is told about rechecks and ends.
	Observer gate.RecheckObserver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Self is the daemon's pid, never an anchor nor signalled, with its
	// ancestors; 0 means os.Getpid(). Tests on a made-up process table
	// set a pid outside it.
	Self int
}

// DefaultGrace is Options.Grace's default, the embedded server's: a
// process that ignores SIGHUP (nohup) gets SIGKILL this much later.
const DefaultGrace = 5 * time.Second

// Tracker is the table of tracked sessions. Its methods are safe for
// concurrent use.
type Tracker struct {
	o     Options
	proc  Proc
	self  int
	grace time.Duration
	log   zerolog.Logger

	mu    sync.Mutex
	table map[string]*Session
	// refusedOnce holds the reasons of refused registrations already
	// logged at warning level (later ones are debug), bounded.
	refusedOnce map[string]bool
	// lingering are the (user, service) pairs whose sessions ended while
	// their processes may run on (see linger.go).
	lingering map[lingerKey]linger
	// saveMu serializes writes of the state file.
	saveMu sync.Mutex
}

// New returns a tracker with the sessions of o.Path that still run (see
// load). A state file that cannot be read is logged and the table starts
// empty: rechecks of new sessions matter more than old ones.
func New(o Options) *Tracker {
	if o.Proc == nil {
		o.Proc = SystemProc{}
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.LookupUID == nil {
		o.LookupUID = lookupUID
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Self == 0 {
		o.Self = os.Getpid()
	}
	t := &Tracker{o: o, proc: o.Proc, self: o.Self, grace: o.Grace, log: o.Log,
		table: map[string]*Session{}, refusedOnce: map[string]bool{}, lingering: map[lingerKey]linger{}}
	t.load()
	return t
}

func lookupUID(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(u.Uid)
}

// RegisterHook registers the session of the PAM hook whose process is
// peer (SO_PEERCRED of a root caller): user and service are PAM_USER and
// PAM_SERVICE, which root's word makes facts; the anchor is the hook's
// parent, read from /proc, never from the request.
func (t *Tracker) RegisterHook(peer int32, user, service, remote string) error {
	a, err := t.hookAnchor(int(peer))
	if err != nil {
		return t.refused(FrontEndPAM, user, err)
	}
	uid, err := t.o.LookupUID(user)
	if err != nil {
		uid = -1
	}
	return t.add(&Session{User: user, UID: uid, Service: service, FrontEnd: FrontEndPAM, Remote: remote, Anchor: a.id, Exe: a.exe, Listener: a.listener})
}

// RegisterGate registers the session of the ForceCommand gate whose
// process is peer, running as uid (both SO_PEERCRED) for user (uid's
// name). The anchor is the sshd monitor the gate descends from through
// processes of uid (gateAnchor): nobody can register a login they are not
// part of.
func (t *Tracker) RegisterGate(peer int32, uid uint32, user, service, remote string) error {
	a, err := t.gateAnchor(int(peer), int(uid))
	if err != nil {
		return t.refused(FrontEndForceCommand, user, err)
	}
	return t.add(&Session{User: user, UID: int(uid), Service: service, FrontEnd: FrontEndForceCommand, Remote: remote, Anchor: a.id, Exe: a.exe, Listener: a.listener})
}

// UnregisterHook forgets the sessions anchored at the parent of the PAM
// hook peer (PAM close_session; root callers only, checked by the socket).
// It reports how many it forgot.
func (t *Tracker) UnregisterHook(peer int32) int {
	st, err := t.proc.Stat(int(peer))
	if err != nil {
		return 0
	}
	pst, err := t.proc.Stat(st.PPID)
	if err != nil {
		return 0
	}
	id := ProcID{PID: st.PPID, Start: pst.Start}
	t.mu.Lock()
	n := 0
	for k, s := range t.table {
		if s.Anchor == id {
			delete(t.table, k)
			t.lingerAfter([]*Session{s})
			n++
		}
	}
	t.mu.Unlock()
	if n > 0 {
		t.save()
	}
	return n
}

// maxRefusedLogged bounds refusedOnce.
const maxRefusedLogged = 256

func (t *Tracker) refused(frontEnd, user string, err error) error {
	t.mu.Lock()
	// The key leaves out the numbers (pids), so that one kind of refusal
	// (cron's session line, say) is logged once, not once per process.
	key := frontEnd + " " + strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, err.Error())
	first := !t.refusedOnce[key] && len(t.refusedOnce) < maxRefusedLogged
	if first {
		t.refusedOnce[key] = true
	}
	t.mu.Unlock()
	ev := t.log.Debug()
	if first {
		ev = t.log.Warn()
	}
	ev.Str("event", "session-register").Str("front_end", frontEnd).Str("user", user).Str("error", err.Error()).
		Msg("session not tracked: no process that stands for this one login")
	return fmt.Errorf("session not tracked: %w", err)
}

func (t *Tracker) add(s *Session) error {
	s.Since = t.o.Now()
	t.mu.Lock()
	k := s.key()
	if _, ok := t.table[k]; ok {
		// The same login registered twice for the same user (account
		// and session phase): one session.
		t.mu.Unlock()
		return nil
	}
	t.table[k] = s
	t.mu.Unlock()
	t.log.Info().Str("event", "session-register").Str("front_end", s.FrontEnd).Str("user", s.User).Str("service", s.Service).
		Int("pid", s.Anchor.PID).Str("exe", s.Exe).Msg("session tracked")
	t.save()
	return nil
}

// List returns the tracked sessions whose anchor still runs, with their
// terminal, in the order they registered.
func (t *Tracker) List() []Session {
	t.prune()
	t.mu.Lock()
	out := make([]Session, 0, len(t.table))
	for _, s := range t.table {
		out = append(out, *s)
	}
	t.mu.Unlock()
	snap := t.snapshot()
	for i := range out {
		for _, p := range snap.login(out[i].Anchor) {
			if n, ok := ptsOf(snap.procs[p.PID].stat.TTY); ok {
				out[i].TTY = "pts/" + strconv.Itoa(n)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// Live counts the tracked sessions by front end.
func (t *Tracker) Live() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{FrontEndPAM: 0, FrontEndForceCommand: 0}
	for _, s := range t.table {
		out[s.FrontEnd]++
	}
	return out
}

// Len is the number of tracked sessions.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.table)
}

// alive reports whether id still names a running process.
func (t *Tracker) alive(id ProcID) bool {
	st, err := t.proc.Stat(id.PID)
	return err == nil && st.Start == id.Start && !st.Dead()
}

// prune forgets the sessions whose anchor has ended (the connection closed
// without a close_session reaching us, or the daemon was down).
func (t *Tracker) prune() {
	t.mu.Lock()
	var gone []string
	for k, s := range t.table {
		if !t.alive(s.Anchor) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		t.lingerAfter([]*Session{t.table[k]})
		delete(t.table, k)
	}
	t.mu.Unlock()
	if len(gone) > 0 {
		t.save()
	}
}

// Recheck runs one round: the sessions whose anchor has ended are
// forgotten, then for each (user, service) with live sessions one
// core.Recheck (one Latch call), and the sessions of a definite refusal
// end (see end). A failed call keeps the sessions and is logged, whatever
// the fail mode (gate.Core.Recheck says why). Recheck returns when the
// round, ends included, is over.
func (t *Tracker) Recheck(ctx context.Context, core *gate.Core) {
	t.prune()
	if core == nil || core.Config == nil {
		t.log.Warn().Str("event", "recheck").Msg("no valid configuration: sessions kept, not rechecked")
		return
	}
	type group struct{ user, service string }
	t.mu.Lock()
	groups := map[group][]*Session{}
	for _, s := range t.table {
		g := group{s.User, s.Service}
		c := *s
		groups[g] = append(groups[g], &c)
	}
	t.mu.Unlock()
	live := map[lingerKey]bool{}
	for g := range groups {
		live[lingerKey(g)] = true
	}
	lingers := t.lingersToCheck(core.Config.Policy.End, live)

	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for g, ss := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.recheckGroup(ctx, core, g.user, g.service, ss)
		}()
	}
	for k, l := range lingers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.recheckLinger(ctx, core, k, l)
		}()
	}
	wg.Wait()
}

// maxParallel bounds the Latch calls of one round in flight.
const maxParallel = 16

func (t *Tracker) recheckGroup(ctx context.Context, core *gate.Core, user, service string, ss []*Session) {
	r := core.Recheck(ctx, user, service)
	now := t.o.Now()
	switch {
	case r.Err != nil:
		t.log.Warn().Str("event", "recheck").Str("user", user).Str("service", service).Int("sessions", len(ss)).
			Str("reason", r.Reason).Msg("recheck failed; sessions kept")
		t.mark(ss, now, gate.RecheckError+": "+r.Reason, gate.RecheckError)
	case r.Verdict == gate.End:
		t.mark(ss, now, gate.RecheckEnded, gate.RecheckEnded)
		for _, s := range ss {
			if core.Audit != nil {
				core.Audit.Record(gate.Request{User: user, Service: service, RemoteAddr: s.Remote, Command: gate.RecheckCommand},
					gate.Decision{Outcome: gate.Deny, Reason: "session ended by recheck (" + s.FrontEnd + "): " + r.Reason, Severity: gate.Warning})
			}
		}
		n := t.end(ss, core.Config.Policy.End)
		t.forget(ss)
		byFE := map[string]int{}
		for _, s := range ss {
			byFE[s.FrontEnd]++
		}
		if t.o.Observer != nil {
			for fe, k := range byFE {
				t.o.Observer.Ended(fe, k)
			}
		}
		t.log.Warn().Str("event", "recheck").Str("user", user).Str("service", service).Int("sessions", len(ss)).
			Int("processes", n).Str("reason", r.Reason).Msg("sessions ended")
	default:
		t.mark(ss, now, gate.RecheckKept, gate.RecheckKept)
		t.log.Debug().Str("event", "recheck").Str("user", user).Str("service", service).Str("reason", r.Reason).Msg("sessions kept")
	}
}

// mark records a recheck's result on the sessions and tells the observer.
func (t *Tracker) mark(ss []*Session, now time.Time, result, metric string) {
	t.mu.Lock()
	for _, s := range ss {
		if cur, ok := t.table[s.key()]; ok {
			cur.LastCheck, cur.LastResult = now, result
		}
	}
	t.mu.Unlock()
	if t.o.Observer != nil {
		for _, s := range ss {
			t.o.Observer.Rechecked(s.FrontEnd, metric)
		}
	}
}

func (t *Tracker) forget(ss []*Session) {
	t.mu.Lock()
	for _, s := range ss {
		delete(t.table, s.key())
	}
	t.mu.Unlock()
	t.save()
}
