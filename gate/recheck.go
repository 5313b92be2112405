package gate

import (
	"context"
	"errors"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/users"
)

// Verdict is the answer of Recheck for a session that is already open.
type Verdict int

// The verdicts. The zero value keeps the session: a recheck is not a login,
// and ending a person's work needs a definite answer, never a guess.
const (
	// Keep: the latch is open, the user is exempt or not asked about, or
	// Latch could not answer (Err says why).
	Keep Verdict = iota
	// End: Latch definitely says the login would be refused now.
	End
)

// RecheckResult is what Recheck found.
type RecheckResult struct {
	Verdict Verdict
	// Reason says why, for the log.
	Reason string
	// Err is set when Latch could not answer; the session is kept.
	Err error
}

// Recheck asks whether user's live sessions on service may go on. It is the
// embedded server's continuous authorization: the same account and operation
// as Decide, asked with /nootp (nobody is asked for a code mid-session), and
// only a definite refusal ends sessions:
//
//	latch "off"                                   End
//	unpaired (not in [users], or Latch 201) and   End
//	  unpaired = "deny"
//	latch "on", exempt group, unpaired = "allow"  Keep
//	any error, whatever fail_mode                 Keep, with Err
//
// Why errors keep the session whatever fail_mode says: fail_mode decides
// whether to let someone in while Latch is unreachable. Someone already in
// was let in by a real answer; cutting every shell on the server because
// Latch had a bad minute would be the outage peers.md warns about, and the
// person's next login meets the fail mode anyway.
//
// Recheck does not write the audit log: the caller logs what it does with
// the result (one line per ended session), so a 30-second interval does
// not flood the log.
func (c *Core) Recheck(ctx context.Context, user, service string) RecheckResult {
	cfg := c.Config
	if cfg == nil {
		return RecheckResult{Reason: "no valid configuration", Err: errors.New("no valid configuration")}
	}
	if err := CheckUserName(user); err != nil {
		return RecheckResult{Reason: err.Error(), Err: err}
	}
	if len(cfg.Policy.ExemptGroups) > 0 && c.Groups != nil {
		exempt, err := c.Groups.InAnyGroup(user, cfg.Policy.ExemptGroups)
		if err != nil {
			return RecheckResult{Reason: "group lookup failed", Err: err}
		}
		if exempt {
			return RecheckResult{Reason: "exempt group"}
		}
	}
	// The same resolution as Decide: a session of an account reached by
	// another name sharing a mapped uid is rechecked against that latch.
	sub, refused := c.resolve(user, service)
	switch {
	case refused != nil && refused.Severity == Error:
		// Several mappings of one uid: Decide refuses it as a
		// misconfiguration, a definite answer.
		return RecheckResult{Verdict: End, Reason: refused.Reason}
	case refused != nil:
		// NSS could not tell: not a definite answer.
		return RecheckResult{Reason: refused.Reason, Err: errors.New(refused.Reason)}
	case !sub.mapped:
		return c.recheckUnpaired("user has no Latch account in [users]")
	}
	account, _ := cfg.Account(sub.name)
	st, timeout, err := c.UserLatchStatus(ctx, sub.name, account, cfg.Operation(sub.name, service), true)
	switch {
	case latch.IsNotPaired(err):
		return c.recheckUnpaired("unpaired from the phone (Latch 201)")
	case err != nil:
		reason, _, _ := Classify(err, timeout)
		return RecheckResult{Reason: reason, Err: err}
	case !st.Open:
		return RecheckResult{Verdict: End, Reason: "latch closed"}
	default:
		return RecheckResult{Reason: "latch open"}
	}
}

func (c *Core) recheckUnpaired(why string) RecheckResult {
	if c.Config.Policy.Unpaired == users.UnpairedDeny {
		return RecheckResult{Verdict: End, Reason: why + "; unpaired = deny"}
	}
	return RecheckResult{Reason: why + "; unpaired = allow"}
}

// ClosedNotice is the one line a session whose latch was closed reads on
// its terminal (or the embedded server's stderr) just before its
// connection ends, whichever front end let it in.
const ClosedNotice = "latch closed: ending this session"

// RecheckCommand is the Command of the audit record a recheck writes for
// each session it ends, so that readers of the audit log (and the demo)
// can tell it from a login decision.
const RecheckCommand = "(recheck)"

// RecheckObserver is told about rechecks, for metrics, by every front end
// that rechecks live sessions (the embedded server, and the daemon's
// tracker of OpenSSH sessions): Rechecked with one of the Recheck results,
// and Ended with how many sessions a recheck ended. Implementations must
// be safe for concurrent use.
type RecheckObserver interface {
	Rechecked(frontEnd, result string)
	Ended(frontEnd string, n int)
}

// The results given to RecheckObserver.Rechecked.
const (
	RecheckKept  = "kept"
	RecheckEnded = "ended"
	RecheckError = "error"
)

// RecheckIdle is how often RecheckLoop looks at the interval again while
// rechecks are off (recheck = "0"), so that a reload turning them on takes
// effect.
const RecheckIdle = time.Minute

// RecheckLoop calls round every interval() until ctx ends: the one loop of
// every front end's rechecks. interval is read before each wait and again
// when it is over, so a reload applies from the next round; while it is 0
// (rechecks off) the loop wakes every RecheckIdle and calls idle, when
// set, instead of round.
func RecheckLoop(ctx context.Context, interval func() time.Duration, round func(context.Context), idle func()) {
	for {
		wait := RecheckIdle
		if d := interval(); d > 0 {
			wait = d
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		switch {
		case interval() > 0:
			round(ctx)
		case idle != nil:
			idle()
		}
	}
}
