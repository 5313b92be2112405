package sshserver

// Admission of new connections (issue 12, item 7): which TCP connections
// may start an SSH handshake, modelled on OpenSSH 9.8's MaxStartups,
// PerSourceMaxStartups, PerSourceNetBlockSize and PerSourcePenalties.
//
// An unauthenticated connection costs its client one TCP connection and
// nothing else: it holds a slot until handshake_timeout or
// login_grace_time, and is renewed the moment it is closed. So the pool of
// max_unauthenticated slots is defended in layers:
//
//  1. Per source block (an IPv4 address, an IPv6 /64: what one host can
//     easily hold), at most max_unauthenticated_per_source slots, a small
//     number, so that it takes many blocks to fill the pool. (The old rule,
//     three quarters of the pool per address, let two addresses fill it.)
//  2. Random early drop between early_drop_start and max_unauthenticated,
//     sshd's MaxStartups start:rate:full: under a flood everyone's new
//     connections are dropped at random, the flood's too, so the pool does
//     not simply belong to whoever reconnects fastest.
//  3. Penalties: a block whose connection ended without logging in accrues
//     a penalty (never tried to authenticate, failed, or timed out); once
//     the accrued time passes penalty_min, its new connections are closed
//     at accept, before they take a slot, until the time runs out. So a
//     block that holds slots without finishing a handshake holds them for
//     one round, and then is shut out for longer and longer (up to
//     penalty_max). The table of penalties is bounded per address family
//     (penalty_max_sources); when full it forgets the penalty closest to
//     its end ("permissive") or refuses every new connection but the
//     exempt ones ("deny-all"), as sshd does.
//  4. The administrator can always get in: sources in penalty_exempt, and
//     blocks that logged in successfully within trustedFor, are never
//     dropped at random and may use max_unauthenticated_per_source slots
//     kept beyond max_unauthenticated, so a pool filled by others does not
//     keep them out. Exempt sources are also never penalised. (A recent
//     login is not an exemption from penalties: an attacker behind the
//     same NAT would share it.)
//
// Nothing here holds the lock while doing I/O, and every table is bounded,
// so the work per connection is bounded whatever the clients do.

import (
	"container/heap"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/latch-ssh/latch-ssh/users"
)

const (
	// trustedFor is how long a block that logged in keeps its access to
	// the kept slots: a working day and then some, so that the admin who
	// logged in yesterday gets in during today's flood.
	trustedFor = 24 * time.Hour
	// maxTrusted bounds the blocks remembered for a recent login; the
	// oldest is forgotten first. Logins need a key and the latch, so this
	// table grows only as fast as real people log in.
	maxTrusted = 4096
	// logEvery is the least time between two log lines of one kind of
	// refusal; the refusals in between are counted in the next line.
	logEvery = 10 * time.Second
)

// source is where a connection comes from, as admission sees it.
type source struct {
	// addr is the client's address (IPv4-mapped IPv6 unmapped); invalid
	// when the connection is not TCP.
	addr netip.Addr
	// block is addr masked to its source block: the IPv4 address itself,
	// or the /64 of an IPv6 one. Slots and penalties are counted by it.
	block string
	// exempt says addr is in [server] penalty_exempt.
	exempt bool
}

// v6 reports whether the source counts in the IPv6 penalty table.
func (src source) v6() bool { return src.addr.Is6() }

// sourceOf classifies a remote address under set.
func sourceOf(a net.Addr, set *users.Server) source {
	ip := remoteIP(a)
	addr, ok := netip.AddrFromSlice(ip)
	if ip == nil || !ok {
		return source{block: a.String()}
	}
	addr = addr.Unmap()
	src := source{addr: addr, block: sourceKey(a)}
	for _, p := range set.PenaltyExempt {
		if p.Contains(addr) {
			src.exempt = true
			break
		}
	}
	return src
}

// sourceKey is the source block of an address: the IPv4 address, or the
// /64 of an IPv6 one (one host or site usually holds a whole /64, and can
// give each connection another address in it). It is sshd's
// PerSourceNetBlockSize 32:64.
func sourceKey(a net.Addr) string {
	ip := remoteIP(a)
	if ip == nil {
		return a.String()
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// Verdicts of admit.
const (
	admitted = iota
	refusedFull
	refusedSource
	refusedEarly
	refusedPenalty
	refusedOverflow
)

// Kinds of penalty.
const (
	penaltyNoAuth = iota
	penaltyAuthFail
	penaltyTimeout
)

// penaltyReasons name the kinds of penalty in the log.
var penaltyReasons = [...]string{
	penaltyNoAuth:   "connection ended without trying to authenticate",
	penaltyAuthFail: "authentication failed or was refused",
	penaltyTimeout:  "handshake_timeout or login_grace_time ran out",
}

// penalty is the accrued penalty of one source block.
type penalty struct {
	block  string
	until  time.Time
	active bool
	v6     bool
	reason string
	// index is its place in its family's heap.
	index int
}

// penaltyHeap orders the penalties of one address family by their end, so
// that the ones that ran out, and the one closest to its end, are found
// in O(log n) whatever the size of the table: a flood against a full table
// must not cost a walk of the table per connection.
type penaltyHeap []*penalty

func (h penaltyHeap) Len() int           { return len(h) }
func (h penaltyHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h penaltyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *penaltyHeap) Push(x any) {
	p := x.(*penalty)
	p.index = len(*h)
	*h = append(*h, p)
}
func (h *penaltyHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// limitedLog is one kind of log line that is written at most once per
// logEvery, with the count of the events it did not write.
type limitedLog struct {
	last    time.Time
	skipped int
}

// startups is the admission state of a Server: the slots held by
// unauthenticated connections, the penalties and the recent logins.
type startups struct {
	// now and intn are the clock and the randomness (intn(n) is uniform in
	// [0, n)); tests replace them.
	now  func() time.Time
	intn func(n int) int

	mu sync.Mutex
	// unauth counts connections that have not authenticated yet, and from
	// counts them per source block.
	unauth int
	from   map[string]int
	// penalties holds the accrued penalties by block, and byEnd the same,
	// IPv4 ([0]) and IPv6 ([1]) apart, by their end.
	penalties map[string]*penalty
	byEnd     [2]penaltyHeap
	// trusted holds when each block last logged in.
	trusted map[string]time.Time
	// refusals rate-limits the lines about refusals, by verdict, and
	// penalised those about penalties.
	refusals  [refusedOverflow + 1]limitedLog
	penalised limitedLog
}

func newStartups() *startups {
	return &startups{
		now:       time.Now,
		intn:      rand.IntN, // math/rand/v2's global source is ChaCha8, seeded from the OS
		from:      map[string]int{},
		penalties: map[string]*penalty{},
		trusted:   map[string]time.Time{},
	}
}

func family(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// admit decides whether a new connection from src may start, and if so
// takes its slot (give it back with release).
func (st *startups) admit(src source, set *users.Server) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if !src.exempt {
		if p := st.penalties[src.block]; p != nil {
			if !now.Before(p.until) {
				st.forget(p)
			} else if p.active {
				return refusedPenalty
			}
		}
		if set.PenaltyOverflow == users.OverflowDenyAll {
			fam := family(src.v6())
			st.expire(fam, now)
			if len(st.byEnd[fam]) >= set.PenaltyMaxSources {
				return refusedOverflow
			}
		}
	}
	perSource := set.MaxUnauthenticatedPerSource
	if st.from[src.block] >= perSource {
		return refusedSource
	}
	full := set.MaxUnauthenticated
	kept := src.exempt || st.isTrusted(src.block, now)
	if kept {
		// The slots kept beyond the pool: others cannot take them, so a
		// full pool does not keep the administrator out.
		full += perSource
	}
	switch {
	case st.unauth >= full:
		return refusedFull
	case !kept && st.earlyDrop(st.unauth, set.EarlyDropStart, set.EarlyDropRate, set.MaxUnauthenticated):
		return refusedEarly
	}
	st.unauth++
	st.from[src.block]++
	return admitted
}

// earlyDrop is sshd's random early drop: below start nothing is dropped, at
// full everything, and in between with a probability rising linearly from
// rate percent.
func (st *startups) earlyDrop(n, start, rate, full int) bool {
	switch {
	case n < start:
		return false
	case n >= full:
		return true
	}
	p := rate + (100-rate)*(n-start)/(full-start)
	return st.intn(100) < p
}

// release gives back a slot admit took.
func (st *startups) release(block string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.unauth--
	if st.from[block]--; st.from[block] <= 0 {
		delete(st.from, block)
	}
}

// unauthenticated returns the number of slots taken.
func (st *startups) unauthenticated() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.unauth
}

func (st *startups) isTrusted(block string, now time.Time) bool {
	t, ok := st.trusted[block]
	return ok && now.Sub(t) < trustedFor
}

// loggedIn records that src logged in: it may use the kept slots for
// trustedFor, and the penalty it accrued (its person's typos) is forgiven.
func (st *startups) loggedIn(src source) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if p := st.penalties[src.block]; p != nil {
		st.forget(p)
	}
	if _, ok := st.trusted[src.block]; !ok && len(st.trusted) >= maxTrusted {
		oldest, first := "", true
		for b, t := range st.trusted {
			if first || t.Before(st.trusted[oldest]) {
				oldest, first = b, false
			}
		}
		delete(st.trusted, oldest)
	}
	st.trusted[src.block] = now
}

// penalise adds a penalty of kind to src's block, and returns what to log
// (zero when nothing changed or the line is rate-limited).
func (st *startups) penalise(src source, kind int, set *users.Server) (note penaltyNote) {
	d := [...]time.Duration{
		penaltyNoAuth:   set.PenaltyNoAuth.Duration,
		penaltyAuthFail: set.PenaltyAuthFail.Duration,
		penaltyTimeout:  set.PenaltyTimeout.Duration,
	}[kind]
	if src.exempt || d <= 0 || !src.addr.IsValid() {
		return note
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	fam := family(src.v6())
	p := st.penalties[src.block]
	if p != nil && !now.Before(p.until) {
		st.forget(p)
		p = nil
	}
	if p == nil {
		st.expire(fam, now)
		if len(st.byEnd[fam]) >= set.PenaltyMaxSources {
			if set.PenaltyOverflow == users.OverflowDenyAll {
				return st.noteLocked(now, penaltyNote{block: src.block, reason: "penalty table full; not recorded: " + penaltyReasons[kind]})
			}
			// Permissive: the penalty closest to its end makes room.
			for len(st.byEnd[fam]) >= set.PenaltyMaxSources {
				st.forget(st.byEnd[fam][0])
			}
		}
		p = &penalty{block: src.block, until: now, v6: src.v6()}
		st.penalties[src.block] = p
		heap.Push(&st.byEnd[fam], p)
	}
	p.until = p.until.Add(d)
	if limit := now.Add(set.PenaltyMax.Duration); p.until.After(limit) {
		p.until = limit
	}
	heap.Fix(&st.byEnd[fam], p.index)
	p.reason = penaltyReasons[kind]
	if !p.active && p.until.Sub(now) > set.PenaltyMin.Duration {
		p.active = true
		return st.noteLocked(now, penaltyNote{block: src.block, reason: p.reason, refusedFor: p.until.Sub(now)})
	}
	return note
}

// penaltyNote is a log line about a penalty, built under the lock and
// written after.
type penaltyNote struct {
	block      string
	reason     string
	refusedFor time.Duration
	skipped    int
}

// noteLocked passes n through the rate limit of penalty lines.
func (st *startups) noteLocked(now time.Time, n penaltyNote) penaltyNote {
	l := &st.penalised
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.skipped++
		return penaltyNote{}
	}
	n.skipped, l.skipped, l.last = l.skipped, 0, now
	return n
}

// logRefusal reports whether a refusal of this verdict is logged now, and
// how many were not logged since the last line.
func (st *startups) logRefusal(verdict int) (bool, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	l := &st.refusals[verdict]
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		l.skipped++
		return false, 0
	}
	n := l.skipped
	l.skipped, l.last = 0, now
	return true, n
}

// forget drops a penalty from the table.
func (st *startups) forget(p *penalty) {
	delete(st.penalties, p.block)
	heap.Remove(&st.byEnd[family(p.v6)], p.index)
}

// expire forgets the penalties of a family that ran out.
func (st *startups) expire(fam int, now time.Time) {
	for len(st.byEnd[fam]) > 0 && !now.Before(st.byEnd[fam][0].until) {
		st.forget(st.byEnd[fam][0])
	}
}

// logPenalty writes a penalty note, if any.
func logPenalty(log zerolog.Logger, n penaltyNote) {
	if n.block == "" {
		return
	}
	ev := log.Warn().Str("event", "penalty").Str("source", n.block).Str("reason", n.reason)
	if n.refusedFor > 0 {
		ev = ev.Str("refused_for", n.refusedFor.Round(time.Second).String())
	}
	if n.skipped > 0 {
		ev = ev.Int("more_not_logged", n.skipped)
	}
	ev.Msg("source penalised: its new connections are refused for a while")
}
