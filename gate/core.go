package gate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/users"
)

// LatchAPI is the part of the Latch client the gate needs. *latch.Client
// implements it; tests may use a fake, though most go through latchtest.
type LatchAPI interface {
	Status(ctx context.Context, r latch.StatusRequest) (latch.Status, error)
}

// GroupLookup answers group membership through NSS.
type GroupLookup interface {
	// InAnyGroup reports whether user belongs to one of groups, counting
	// the primary group and every supplementary group. An error (unknown
	// user, NSS failure) makes the gate deny.
	InAnyGroup(user string, groups []string) (bool, error)
}

// Auditor records one line per decision.
type Auditor interface {
	Record(Request, Decision)
}

// DecisionObserver is told about every decision the audit log records (so
// not AskOTP, whose Finish is recorded), for metrics. It gets the front end
// (Request.FrontEnd) and the decision, whose Outcome, Class and
// FailModeApplied are bounded; it must not keep the user, the address or
// the reason in anything with unbounded cardinality. It must be fast and
// safe for concurrent use: it runs on every login.
type DecisionObserver interface {
	Decided(frontEnd string, d Decision)
}

// Core makes decisions. Build one per configuration; it is safe for
// concurrent use as long as nobody mutates its fields.
type Core struct {
	// Config is the loaded configuration. When it is nil, every decision
	// denies with ConfigErr as the reason.
	Config *users.Config
	// ConfigErr is why Config could not be loaded, for the log.
	ConfigErr error
	Latch     LatchAPI
	Groups    GroupLookup
	// Accounts resolves login names to uids, so that the latch follows
	// the account whatever name it is reached by; nil means NSSAccounts.
	Accounts AccountLookup
	// FailOpenGuard, when set, is asked before fail_mode = "open" lets a
	// login in, with the Latch deadline of the decision. A non-empty why
	// turns that fail-open into a deny (with fix for the admin): the PAM
	// hook uses it to refuse a fail-open it cannot trust, such as one
	// reached because someone stopped the hook past its deadline.
	FailOpenGuard func(timeout time.Duration) (why, fix string)
	// Audit receives every decision; nil logs nothing.
	Audit Auditor
	// Observer, when set, is told about every decision Audit is (the
	// daemon's metrics).
	Observer DecisionObserver

	// memo, set by LoadCore, reuses NSS's answers about [users] names
	// briefly when Accounts is nil (see accountmemo.go).
	memo *accountMemo
}

// Decide answers req, logs the decision, and returns it. It never returns
// Allow for an error unless the admin chose fail_mode = "open". The whole
// call, Latch included, is bounded by [latch] timeout (and by ctx).
func (c *Core) Decide(ctx context.Context, req Request) Decision {
	start := time.Now()
	d := c.decide(ctx, req)
	d.Latency = time.Since(start)
	if d.Outcome != AskOTP {
		c.record(req, d)
	}
	return d
}

// Finish turns an AskOTP decision into the final one, given the code the
// person typed (or "" if they could not or did not answer), and logs it.
// The challenge is consumed: a second Finish with the same decision denies.
func (c *Core) Finish(req Request, d Decision, code string) Decision {
	start := time.Now()
	final := d
	final.Challenge = nil
	switch {
	case d.Outcome != AskOTP || d.Challenge == nil:
		final.Outcome, final.Reason, final.Class = Deny, "no one-time code was asked for", ClassOTPMissing
	case code == "":
		final.Outcome, final.Reason, final.Class = Deny, "latch open, one-time code not given", ClassOTPMissing
	case d.Challenge.Verify(code):
		final.Outcome, final.Reason, final.Class = Allow, "latch open, one-time code verified", ClassOTPVerified
	default:
		final.Outcome, final.Reason, final.Class = Deny, "latch open, wrong one-time code", ClassOTPWrong
		final.Severity = Warning
	}
	final.Latency += time.Since(start)
	c.record(req, final)
	return final
}

func (c *Core) record(req Request, d Decision) {
	if c.Audit != nil {
		c.Audit.Record(req, d)
	}
	if c.Observer != nil {
		c.Observer.Decided(req.FrontEnd, d)
	}
}

// Refuse denies req without asking Latch, for a front end that refuses it
// before any decision (a malformed service name, a rate limit), and writes
// the refusal to the audit log like any other decision, with reason and
// Warning severity. It can only deny: no front end can log an allow the
// core did not decide.
func (c *Core) Refuse(req Request, reason string) Decision {
	d := Decision{Outcome: Deny, Reason: reason, Severity: Warning, Class: ClassRefused}
	c.record(req, d)
	return d
}

func (c *Core) decide(ctx context.Context, req Request) Decision {
	cfg := c.Config
	if cfg == nil {
		reason := "no valid configuration"
		if c.ConfigErr != nil {
			reason = "configuration: " + safetext.Clean(c.ConfigErr.Error())
		}
		return Decision{Outcome: Deny, Reason: reason, Severity: Error, Class: ClassConfig,
			Fix: "run `latch-ssh check-config` and fix what it reports"}
	}
	if err := CheckUserName(req.User); err != nil {
		return Decision{Outcome: Deny, Reason: err.Error(), Severity: Warning, Class: ClassAccount}
	}
	if len(cfg.Policy.ExemptGroups) > 0 {
		if c.Groups == nil {
			return Decision{Outcome: Deny, Reason: "exempt groups configured but no group lookup", Severity: Error, Class: ClassConfig}
		}
		exempt, err := c.Groups.InAnyGroup(req.User, cfg.Policy.ExemptGroups)
		if err != nil {
			return Decision{Outcome: Deny, Reason: "group lookup failed: " + safetext.Clean(err.Error()), Severity: Warning, Class: ClassAccount}
		}
		if exempt {
			return Decision{Outcome: Allow, Reason: "exempt group: Latch not asked", Severity: Warning, Class: ClassExempt}
		}
	}
	sub, refused := c.resolve(req.User, req.Service)
	if refused != nil {
		return *refused
	}
	d := c.decideFor(ctx, req, sub)
	if sub.note != "" {
		d.Reason += " (" + sub.note + ")"
	}
	return d
}

// decideFor asks the latch of sub, whom resolve chose for req.
func (c *Core) decideFor(ctx context.Context, req Request, sub subject) Decision {
	cfg := c.Config
	if !sub.mapped {
		return c.unpaired("user has no Latch account in [users]", Info)
	}
	account, _ := cfg.Account(sub.name)
	op := cfg.Operation(sub.name, req.Service)
	inst, _ := cfg.Instance(sub.name, op)
	nootp := !req.Interactive || cfg.Policy.OTP == users.OTPNever
	st, timeout, err := c.UserLatchStatus(ctx, sub.name, account, op, nootp)
	if err != nil {
		if latch.IsNotPaired(err) {
			d := c.unpaired("unpaired from the phone (Latch 201)", Warning)
			d.Operation, d.Instance = op, inst
			return d
		}
		if errors.Is(err, context.Canceled) {
			// The caller gave up (the gate was interrupted, the daemon is
			// stopping): design.md says deny, whatever the fail mode. Only a
			// Latch that could not answer in time goes through fail_mode.
			return Decision{Outcome: Deny, Reason: "the decision was interrupted", Severity: Warning, Operation: op, Class: ClassInterrupted, Instance: inst}
		}
		d := c.failMode(err, timeout)
		d.Operation, d.Instance = op, inst
		if latch.IsUnknownInstance(err) {
			// Issue 17: the fix names the user, so the admin can paste it.
			d.Fix = unknownInstanceFix(sub.name)
		}
		return d
	}
	d := Decision{Operation: op, Instance: inst}
	if inst == "" && cfg.InstancesOn() {
		// Paired before instances were turned on (or the service has a
		// new operation): the whole latch was asked, which still closes
		// every server. Say how to give this server its own.
		d.Fix = fmt.Sprintf("%s has no instance of this latch for this server yet: latch-ssh pair --repair --user %s", sub.name, sub.name)
	}
	switch {
	case !st.Open:
		d.Outcome, d.Reason, d.Class = Deny, "latch closed", ClassClosed
	case st.TwoFactor == nil:
		d.Outcome, d.Reason, d.Class = Allow, "latch open", ClassOpen
	case nootp:
		// Latch sent a code although we asked with /nootp, or the admin
		// said never to prompt: nobody can type it, so the latch is not
		// fully open for this login.
		d.Outcome, d.Reason, d.Class = Deny, "Latch asked for a one-time code and nobody can be prompted", ClassOTPUnpromptable
	default:
		d.Outcome, d.Reason, d.Class = AskOTP, "latch open, one-time code asked", ClassOTPAsked
		d.Challenge = NewChallenge(st.TwoFactor.Token)
	}
	return d
}

// LatchStatus asks Latch for the live state of account's latch for op (""
// is the application latch), within [latch] timeout (which it returns, for
// the reasons), with [policy] silent: the one Latch status call of
// latch-ssh, shared by Decide, Recheck and `latch-ssh status`. It decides
// nothing and logs nothing; the caller reads the answer.
//
// With nootp, Latch is asked with /nootp and never generates a one-time
// code: Recheck and status always pass it (nobody is there to type a code,
// and asking for a status must never push a second-factor prompt to the
// phone); Decide passes it when nobody can be prompted. c.Config must be
// set.
func (c *Core) LatchStatus(ctx context.Context, account, op string, nootp bool) (latch.Status, time.Duration, error) {
	return c.UserLatchStatus(ctx, "", account, op, nootp)
}

// UserLatchStatus is LatchStatus for the [users] name user, whose account
// it is: with [latch] instance = "host" and an instance of that latch
// stored for user, it asks about this server's instance (issue 17), else
// about the latch itself. Decide, Recheck and `latch-ssh status` all ask
// through it, so they agree on which latch is asked.
func (c *Core) UserLatchStatus(ctx context.Context, user, account, op string, nootp bool) (latch.Status, time.Duration, error) {
	timeout := LatchTimeout(c.Config)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inst, _ := c.Config.Instance(user, op)
	st, err := c.Latch.Status(ctx, latch.StatusRequest{
		AccountID:   account,
		OperationID: op,
		InstanceID:  inst,
		NoOTP:       nootp,
		Silent:      c.Config.Policy.Silent,
	})
	return st, timeout, err
}

// unknownInstanceFix is the fix for an instance Latch no longer knows.
func unknownInstanceFix(user string) string {
	return fmt.Sprintf("create this server's instance again: latch-ssh pair --repair --user %s (if app_id or [operations] changed, check them first)", user)
}

// LatchTimeout is the deadline of one Latch call under cfg: [latch]
// timeout, or users.DefaultTimeout when it is not set.
func LatchTimeout(cfg *users.Config) time.Duration {
	if d := cfg.Latch.Timeout.Duration; d > 0 {
		return d
	}
	return users.DefaultTimeout
}

// unpaired applies the unpaired policy.
func (c *Core) unpaired(why string, sev Severity) Decision {
	if c.Config.Policy.Unpaired == users.UnpairedDeny {
		return Decision{Outcome: Deny, Reason: why + "; unpaired = deny", Severity: sev, Class: ClassUnpaired}
	}
	return Decision{Outcome: Allow, Reason: why + "; unpaired = allow", Severity: sev, Class: ClassUnpaired}
}

// failMode applies fail_mode to an error from Latch. This is the only place
// an error can turn into an outcome.
func (c *Core) failMode(err error, timeout time.Duration) Decision {
	reason, fix, sev := Classify(err, timeout)
	d := Decision{FailModeApplied: true, Fix: fix, Severity: max(sev, Warning)}
	if c.Config.Policy.FailMode == users.FailOpen {
		if c.FailOpenGuard != nil {
			if why, gfix := c.FailOpenGuard(timeout); why != "" {
				d.Outcome, d.Severity, d.Class = Deny, Error, ClassFailOpenRefused
				d.Reason = "fail-open REFUSED (" + safetext.Clean(why) + "): " + reason
				d.Fix = gfix
				return d
			}
		}
		d.Outcome, d.Reason, d.Class = Allow, "FAIL-OPEN: "+reason, ClassFailOpen
	} else {
		d.Outcome, d.Reason, d.Class = Deny, "fail-closed: "+reason, ClassFailClosed
	}
	return d
}

// Classify explains an error from the Latch client for the admin: a
// reason, a fix when the admin can do something, and the severity (Error
// for problems the admin must fix: configuration, clock, TLS, the Latch
// plan). The taxonomy itself is latch.Classify, shared with the messages
// people see (issue 13, point 1); this only renders it for the log.
func Classify(err error, timeout time.Duration) (reason, fix string, sev Severity) {
	c := latch.Classify(err)
	reason, fix, sev = c.Admin, c.Fix, Warning
	if c.Kind == latch.KindTimeout {
		reason = fmt.Sprintf("Latch did not answer within %s", timeout)
	}
	if c.AdminProblem {
		sev = Error
	}
	return reason, fix, sev
}

// CheckUserName refuses names no local account can have. PAM_USER, and
// the user name an SSH client sends, are whatever the client typed before
// any account lookup; a name with a newline or a slash must not reach a
// log, an NSS lookup or a path.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > 256, !utf8.ValidString(name):
		return errors.New("invalid user name")
	case strings.HasPrefix(name, "-"), strings.ContainsAny(name, "/:\\"):
		return fmt.Errorf("invalid user name %q", safetext.Clean(name))
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("invalid user name %q", safetext.Clean(name))
		}
	}
	return nil
}
