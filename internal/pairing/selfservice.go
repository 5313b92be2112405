package pairing

import (
	"context"
	"os/user"
	"strconv"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// Result is the answer to one self-service request: what the person is
// told, and for Status the status itself. The daemon's socket server turns
// it into its wire message; pairing knows nothing of the protocol.
type Result struct {
	// OK reports success.
	OK bool
	// Message is the sentence for the person, cleaned of control
	// characters: the result of pair or unpair, or why a request failed.
	Message string
	// Status is the answer of a successful Status, nil otherwise.
	Status *UserStatus
}

// Limiter bounds requests per uid; gatesocket.RateLimiter is one.
type Limiter interface {
	// Allow takes one request's worth for uid, reporting whether it may
	// go on.
	Allow(uid uint32) bool
}

// SelfService answers the daemon's self-service requests (gatesocket.SelfService)
// with a Manager: a person pairs, unpairs or asks about their own account.
// The user name is the one the daemon resolved from the socket's
// SO_PEERCRED; nothing in the request can name another user.
//
// Self-service only ever adds a first pairing, for a user with no line in
// [users]; it never changes or removes one (unpair is refused, and so is
// pair for a user who has a line). Changing or removing a pairing needs
// root, running the Manager directly, because anyone who once gets a
// shell in the account (the latch open for a moment, a stolen key, a
// session left open) could otherwise unpair the owner's phone at Latch and
// pair their own, and from then on the account's latch would be theirs.
// That holds under unpaired = "deny" as much as under "allow": the policy
// decides who may log in while unpaired, not who owns the latch.
//
// "No line in [users]" is how the server knows the account was never
// paired, or that root has decided it may be paired afresh: since
// self-service cannot remove a line, a user loses theirs only through root
// (latch-ssh unpair, or an edit of the file). A pairing the phone's owner
// removed in the Latch app (Latch 201) keeps its line, so replacing it
// needs root too. The phone's owner can always unpair in the app: that
// loosens their own latch's hold, it never hands it to someone else.
//
// On top of the daemon's own check, every request re-reads the
// configuration and is refused unless it says allow_self_pairing = true
// now. Messages about the configuration file are replaced by a plain
// sentence: its paths and lines are for root, and go to Logf.
type SelfService struct {
	Manager *Manager
	// Limiter, if set, bounds requests per uid. Each request costs a call
	// to Latch with the server's credentials, so an unbounded stream of
	// guessed pairing codes from one user could get the application
	// rate-limited for everyone. Use a limiter of its own, not the one of
	// login decisions.
	Limiter Limiter
	// Logf, if set, receives the full error of every failed request, for
	// the administrator's log.
	Logf func(format string, args ...any)
}

// Pair pairs user with the Latch account behind token.
func (s SelfService) Pair(ctx context.Context, user, token string) Result {
	if r, ok := s.limited(user); !ok {
		return r
	}
	msg, err := s.Manager.pair(ctx, user, token, true)
	return s.answer("pair", user, msg, err)
}

// Unpair unpairs user.
func (s SelfService) Unpair(ctx context.Context, user string) Result {
	if r, ok := s.limited(user); !ok {
		return r
	}
	msg, err := s.Manager.unpair(ctx, user, true)
	return s.answer("unpair", user, msg, err)
}

// Status reports user's mapping and latches.
func (s SelfService) Status(ctx context.Context, user string) Result {
	if r, ok := s.limited(user); !ok {
		return r
	}
	st, err := s.Manager.status(ctx, user, true)
	if err != nil {
		return s.answer("status", user, "", err)
	}
	return Result{OK: true, Status: &st}
}

func (s SelfService) answer(op, user, msg string, err error) Result {
	if err != nil {
		if s.Logf != nil {
			s.Logf("self-service %s for %s: %s", op, user, safetext.Clean(err.Error()))
		}
		return Result{Message: safetext.Clean(publicMessage(err))}
	}
	return Result{OK: true, Message: safetext.Clean(msg)}
}

// limited takes a token for user's uid from the Limiter, if there is one.
func (s SelfService) limited(name string) (Result, bool) {
	if s.Limiter == nil {
		return Result{}, true
	}
	lookup := s.Manager.LookupUser
	if lookup == nil {
		lookup = user.Lookup
	}
	u, err := lookup(name)
	var uid uint64
	if err == nil {
		uid, err = strconv.ParseUint(u.Uid, 10, 32)
	}
	if err != nil {
		return s.answer("request", name, "", fail(err, "cannot look up user %s: %s", name, safetext.Clean(err.Error()))), false
	}
	if !s.Limiter.Allow(uint32(uid)) {
		return Result{Message: "too many pairing requests: wait a minute, then try again"}, false
	}
	return Result{}, true
}
