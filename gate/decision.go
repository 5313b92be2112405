// Package gate is the one decision core of latch-ssh: every front end (the
// PAM hook, the ForceCommand gate through the daemon, the embedded SSH
// server) asks Core.Decide whether a login may go on, and every answer is
// written to the audit log by the same code.
//
// Decide follows the decision table of design.md and nothing else:
//
//	latch "on"                         allow (with a one-time code: ask, or deny if nobody can be asked)
//	latch "off"                        deny
//	user not in [users], or Latch 201  the unpaired policy
//	user in an exempt group            allow, logged as a warning
//	any error talking to Latch         the fail mode, logged with the reason
//	config missing or invalid          deny
//
// "The user" is the account, found by uid (see Core.resolve): a second name
// of a mapped user's uid is decided by that user's latch, a name NSS does
// not know is denied unless [users] maps it, and an NSS failure denies.
//
// Why one function: the peers' worst bugs were paths that skipped the
// policy (Duo let people in on a parse error before the failmode line; the
// official Latch plugin allowed on every API error object). Here an error
// can only reach an outcome through failMode, and the only allow without a
// Latch "on" is an explicit admin choice (fail_mode = "open", unpaired =
// "allow", exempt_groups), each logged.
package gate

import (
	"time"
)

// Outcome is what a front end must do with a login.
type Outcome int

// The outcomes. The zero value is Deny, so a Decision nobody filled in
// denies.
const (
	Deny Outcome = iota
	Allow
	// AskOTP: the latch is open but Latch generated a one-time code; the
	// front end must prompt for it and call Challenge.Verify, then Finish.
	AskOTP
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case AskOTP:
		return "ask-otp"
	default:
		return "deny"
	}
}

// Severity says how loudly a decision is logged.
type Severity int

// Severities, mapped to syslog levels by the audit log.
const (
	Info Severity = iota
	Warning
	// Error marks a decision caused by a configuration problem the admin
	// must fix (bad credentials, clock, unknown operation, bad file).
	Error
)

// Request describes one login attempt. Front ends fill it from the kernel
// and from PAM, never from the caller's environment.
type Request struct {
	// User is the local account name (PAM_USER, getuid, SO_PEERCRED).
	User string
	// Service is the PAM service or front end: "sshd" (the PAM hook in
	// sshd's stack, and the ForceCommand gate), "sudo", "server". It
	// selects the operation in [operations].
	Service string
	// RemoteAddr is the client's address, for the log only.
	RemoteAddr string
	// Interactive is true when a person can be asked for a one-time code.
	// When false, Latch is asked with /nootp.
	Interactive bool
	// Command is the command asked for, if any, for the log only.
	Command string
	// Claimed is true when RemoteAddr and Command are only what an
	// unprivileged caller of the gate socket said (the ForceCommand gate,
	// or anyone talking to the socket by hand): nothing checked them, so
	// the audit log records them as claimed_remote and claimed_command.
	Claimed bool
	// ClaimedService is the service an unprivileged caller asked for when
	// it is not the one decided for (Service), for the log only.
	ClaimedService string
	// FrontEnd is the front end that asks (FrontEndPAM,
	// FrontEndForceCommand, FrontEndServer), set by the code that builds
	// the request, never by what a caller says: it is the label of the
	// decision in the metrics (Core.Observer).
	FrontEnd string
}

// Decision is the answer to a Request.
type Decision struct {
	Outcome Outcome
	// Reason is a short human-readable reason, safe to log and to show the
	// admin (never the secret, never the one-time code).
	Reason string
	// Fix tells the admin what to change, for configuration problems.
	Fix string
	// FailModeApplied is true when the fail mode decided, because Latch
	// could not give a valid answer.
	FailModeApplied bool
	// Operation is the Latch operation id asked about ("" = application).
	Operation string
	// Instance is the id of this server's instance of that latch when one
	// was asked about ([latch] instance = "host"), else "".
	Instance string
	// Severity is how loudly the decision is logged.
	Severity Severity
	// Latency is the time the decision took, Latch call included.
	Latency time.Duration
	// Challenge is set when Outcome is AskOTP.
	Challenge *Challenge
	// Class is the bounded kind of Reason, for metrics: one of the Class
	// constants, never free text.
	Class Class
}

// Class names why a decision came out as it did, from a fixed list (the
// constants below), so that metrics can count decisions by reason without
// a label holding free text, a user name or an account id.
type Class string

// The classes of decisions.
const (
	// ClassOpen: the latch is open (no one-time code).
	ClassOpen Class = "latch-open"
	// ClassClosed: the latch is closed.
	ClassClosed Class = "latch-closed"
	// ClassUnpaired: the unpaired policy decided (not in [users], or
	// Latch 201).
	ClassUnpaired Class = "unpaired"
	// ClassExempt: an exempt group let the user in without asking Latch.
	ClassExempt Class = "exempt"
	// ClassFailOpen: Latch could not answer and fail_mode = "open" let
	// the user in.
	ClassFailOpen Class = "fail-open"
	// ClassFailClosed: Latch could not answer and fail_mode = "closed"
	// denied.
	ClassFailClosed Class = "fail-closed"
	// ClassFailOpenRefused: fail_mode = "open" would have let the user in,
	// but Core.FailOpenGuard refused.
	ClassFailOpenRefused Class = "fail-open-refused"
	// ClassOTPAsked: the latch is open and a one-time code is asked (the
	// AskOTP decision, before Finish).
	ClassOTPAsked Class = "otp-asked"
	// ClassOTPVerified: the one-time code was right.
	ClassOTPVerified Class = "otp-verified"
	// ClassOTPWrong: the one-time code was wrong.
	ClassOTPWrong Class = "otp-wrong"
	// ClassOTPMissing: no code was given, or none was asked for.
	ClassOTPMissing Class = "otp-missing"
	// ClassOTPUnpromptable: Latch asked for a code and nobody can type it.
	ClassOTPUnpromptable Class = "otp-unpromptable"
	// ClassConfig: a configuration problem denied (no valid
	// configuration, exempt groups without lookup, a uid with several
	// different mappings).
	ClassConfig Class = "config"
	// ClassAccount: the login name or its account could not be used (an
	// invalid name, no such account, a failed NSS or group lookup).
	ClassAccount Class = "account"
	// ClassInterrupted: the caller gave up before Latch answered.
	ClassInterrupted Class = "interrupted"
	// ClassRefused: a front end refused before any decision (Core.Refuse).
	ClassRefused Class = "refused"
)

// Classes is every Class a Decision can have, for metrics and their tests.
func Classes() []Class {
	return []Class{ClassOpen, ClassClosed, ClassUnpaired, ClassExempt, ClassFailOpen, ClassFailClosed,
		ClassFailOpenRefused, ClassOTPAsked, ClassOTPVerified, ClassOTPWrong, ClassOTPMissing,
		ClassOTPUnpromptable, ClassConfig, ClassAccount, ClassInterrupted, ClassRefused}
}

// The front ends, for Request.FrontEnd.
const (
	// FrontEndPAM is the PAM hook (latch-check), deciding alone or through
	// the daemon.
	FrontEndPAM = "pam"
	// FrontEndForceCommand is the ForceCommand gate.
	FrontEndForceCommand = "forcecommand"
	// FrontEndServer is the embedded SSH server.
	FrontEndServer = "server"
)

// Allowed reports whether the login may go on. AskOTP is not allowed until
// the one-time code has been verified and Finish has returned Allow.
func (d Decision) Allowed() bool { return d.Outcome == Allow }
