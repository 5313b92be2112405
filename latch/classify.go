package latch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// Kind is the family of a failed Latch call, as Classify sees it.
type Kind int

// The kinds of Classify. Every kind but KindNotPaired is, for a login gate,
// an error that goes through fail_mode; the kind only says how to explain it
// and to whom.
const (
	// KindOther is an error the client did not expect to produce.
	KindOther Kind = iota
	// KindTimeout: the caller's deadline passed before Latch answered.
	KindTimeout
	// KindCanceled: the caller gave up (interrupted, stopping).
	KindCanceled
	// KindCredentials: 101, 102, 103, 104, 105, 108, 110: our application
	// id, secret or request headers are wrong.
	KindCredentials
	// KindClock: 109, this server's clock is off.
	KindClock
	// KindNotPaired: 201, the person unpaired from the phone.
	KindNotPaired
	// KindAccount: 202 (invalid account name) or 207 (account not
	// activated or disabled): a problem of the person's Latch account.
	KindAccount
	// KindAccountMessage: 208, the generic account error whose message,
	// written by Latch, is the useful part: show it and log it.
	KindAccountMessage
	// KindPairing: 203, 205, 206, answers of a pairing.
	KindPairing
	// KindUnpairing: 204.
	KindUnpairing
	// KindNotFound: 301, an application or operation id Latch does not
	// know: a configuration problem.
	KindNotFound
	// KindOurBug: 401, 402, Latch found our request malformed.
	KindOurBug
	// KindNoToken: 501, Latch could not generate a one-time code.
	KindNoToken
	// KindSubscription: 701 and the rest of the 7xx group, a limit of the
	// application's Latch subscription: an admin problem, never the
	// person's account.
	KindSubscription
	// KindUnknownCode: a Latch error code latch-ssh does not know (306,
	// 1100, anything new): logged with Latch's own message.
	KindUnknownCode
	// KindTLS: the server's certificate could not be verified.
	KindTLS
	// KindHTTP: a non-2xx HTTP status without a Latch error object
	// (usually a proxy or load balancer in front of Latch).
	KindHTTP
	// KindMalformed: an answer that is not exactly what was asked.
	KindMalformed
	// KindNetwork: no answer came back (DNS, connect, reset).
	KindNetwork
	// KindUnknownInstance: Latch does not know the instance asked about
	// (an *UnknownInstanceError): it was removed at Latch, or the
	// operation it belongs to is unknown.
	KindUnknownInstance
)

// Class is the one explanation of a failed Latch call, shared by every
// place that renders one: the admin's log and check-config (gate.Classify)
// and the person's messages (pairing.Message, latch-ssh status). Keeping
// the taxonomy in one place means the two renderings cannot disagree on
// what an error is (they once did: TLS errors were recognised only by one,
// network errors only by the other).
type Class struct {
	Kind Kind
	// Code is the Latch error code, 0 if the error is not a Latch error
	// object.
	Code int
	// HTTPStatus is the unexpected HTTP status of a KindHTTP error.
	HTTPStatus int
	// Message is Latch's own message for a Latch error object, already
	// cleaned of control characters ("" if none).
	Message string
	// Admin is a one-line reason for the log: it may hold details the
	// person must not see (a request path carries the account id).
	Admin string
	// Fix tells the admin what to change, "" when nothing on this server
	// can fix it.
	Fix string
	// Person is one sentence for the person who asked (pairing, status):
	// what happened and what they can do. It never holds a request path.
	Person string
	// AdminProblem is a severity hint: the configuration or the service's
	// Latch plan is wrong, so the admin must act (logged as an error, not a
	// warning).
	AdminProblem bool
}

// Classify explains err, an error of this package's Client (possibly
// wrapped). It returns the zero Class for nil.
func Classify(err error) Class {
	if err == nil {
		return Class{}
	}
	var (
		le  *Error
		he  *HTTPError
		te  *TransportError
		ne  net.Error
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	detail := safetext.Clean(err.Error())
	var uie *UnknownInstanceError
	switch {
	case errors.As(err, &uie):
		c := Class{Kind: KindUnknownInstance, Code: ErrorCode(err), AdminProblem: true}
		if errors.As(err, &le) {
			c.Message = le.Message
		}
		c.Admin = fmt.Sprintf("Latch does not know this server's instance %s (Latch %d): it was removed at Latch, or its operation is unknown", safetext.Clean(uie.InstanceID), c.Code)
		c.Fix = "create the instance again: latch-ssh pair --repair (check app_id and [operations] first if they changed)"
		c.Person = fmt.Sprintf("Latch does not know this server's instance of your latch (Latch %d): ask an administrator to run latch-ssh pair --repair", c.Code)
		return c
	case errors.As(err, &le):
		return classifyCode(le.Code, le.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return Class{Kind: KindTimeout, Admin: "Latch did not answer in time",
			Person: "Latch did not answer in time: try again in a moment (if it keeps happening, ask an administrator to check the network and [latch] timeout)"}
	case errors.Is(err, context.Canceled):
		return Class{Kind: KindCanceled, Admin: "the decision was interrupted", Person: "interrupted before Latch answered"}
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie), errors.As(err, &rhe):
		return Class{Kind: KindTLS, Admin: "TLS: " + detail, Fix: "check api_url and ca_file in [latch]", AdminProblem: true,
			Person: "the connection to Latch could not be verified (TLS certificate problem): ask an administrator to check api_url and ca_file in [latch]"}
	case errors.As(err, &he):
		c := Class{Kind: KindHTTP, HTTPStatus: he.StatusCode, Admin: fmt.Sprintf("Latch answered HTTP %d", he.StatusCode)}
		switch {
		case he.StatusCode == http.StatusTooManyRequests:
			c.Person = "Latch is limiting requests (HTTP 429): wait a minute, then try again"
		case he.StatusCode >= 500:
			c.Person = fmt.Sprintf("Latch is having trouble (HTTP %d): try again later", he.StatusCode)
		default:
			c.Person = fmt.Sprintf("Latch answered HTTP %d, which latch-ssh does not expect: try again later, or ask an administrator to check api_url in [latch]", he.StatusCode)
		}
		return c
	case errors.Is(err, ErrMalformed):
		return Class{Kind: KindMalformed, Admin: "malformed answer from Latch: " + detail,
			Person: "Latch sent an answer latch-ssh cannot read: try again later, or ask an administrator to check api_url in [latch]"}
	case errors.As(err, &te):
		// te.Op names the request path, account id included: the person
		// sees only the cause.
		return Class{Kind: KindNetwork, Admin: "cannot reach Latch: " + detail,
			Person: "cannot reach Latch (" + safetext.Clean(te.Err.Error()) + "): check the network, then try again"}
	case errors.As(err, &ne):
		return Class{Kind: KindNetwork, Admin: "cannot reach Latch: " + detail,
			Person: "cannot reach Latch (" + detail + "): check the network, then try again"}
	}
	return Class{Kind: KindOther, Admin: "Latch call failed: " + detail, Person: "the call to Latch failed: " + detail}
}

// classifyCode explains a Latch error object, per the error table of
// latch-api.md (gathered from the official SDKs).
func classifyCode(code int, msg string) Class {
	msg = safetext.Clean(msg)
	quoted := msg
	if quoted == "" {
		quoted = "(no message)"
	}
	c := Class{Code: code, Message: msg, Admin: fmt.Sprintf("Latch error %d: %s", code, quoted)}
	switch code {
	case CodeInvalidAuthHeader, CodeInvalidSignature, CodeAuthHeaderMissing, CodeDateHeaderMissing,
		CodeInvalidCredentials, CodeInvalidDateFormat, CodeUnauthorizedClient:
		c.Kind, c.AdminProblem = KindCredentials, true
		c.Admin = fmt.Sprintf("Latch refused our credentials (%d)", code)
		c.Fix = "check app_id and secret in [latch]"
		c.Person = fmt.Sprintf("the application id or secret is wrong (ask an administrator to check app_id and secret in [latch]; Latch %d)", code)
	case CodeRequestExpired:
		c.Kind, c.AdminProblem = KindClock, true
		c.Admin = "Latch says this server's clock is off (109)"
		c.Fix = "check the clock: enable NTP (timedatectl set-ntp true)"
		c.Person = "this server's clock is off, so Latch refused the request (Latch 109): ask an administrator to fix the time (timedatectl set-ntp true)"
	case CodeAccountNotPaired:
		c.Kind = KindNotPaired
		c.Admin = "unpaired from the phone (Latch 201)"
		c.Person = "the Latch account is no longer paired with this server: it was unpaired from the phone (Latch 201); pair again"
	case CodeInvalidAccountName:
		c.Kind = KindAccount
		c.Person = "Latch does not recognise the account id this server has (Latch 202): unpair, then pair again with a new code"
	case CodeAccountDisabled:
		c.Kind = KindAccount
		c.Admin = fmt.Sprintf("Latch error 207 (the Latch account is not activated or is disabled): %s", quoted)
		c.Person = "the Latch account is not activated or is disabled (Latch 207): check the Latch app, or contact Latch support"
	case CodeAccountGeneric:
		// Latch's message is the useful part: it is what the service
		// operator wrote for this account.
		c.Kind = KindAccountMessage
		c.Admin = fmt.Sprintf("Latch error 208 (account error), Latch says: %s", quoted)
		c.Person = fmt.Sprintf("Latch refused the account (Latch 208), Latch says: %s", quoted)
	case CodePairingError:
		c.Kind = KindPairing
		c.Person = "Latch could not pair the account (Latch 203): generate a new code in the Latch app and try again"
	case CodeAlreadyPaired:
		c.Kind = KindPairing
		c.Person = "this Latch account is already paired with this server (Latch 205): unpair it first (latch-ssh unpair, or remove this server in the Latch app), then pair again with a new code"
	case CodeTokenNotFound:
		c.Kind = KindPairing
		c.Person = "that code is wrong or has expired: generate a new one in the Latch app"
	case CodeUnpairingError:
		c.Kind = KindUnpairing
		c.Person = "Latch could not unpair the account (Latch 204): remove this server in the Latch app instead"
	case CodeNotFound:
		c.Kind, c.AdminProblem = KindNotFound, true
		c.Admin = "Latch does not know the application or operation (301)"
		c.Fix = "check app_id and the ids in [operations]/[user_operations]"
		c.Person = "Latch does not know this server's application or one of its operations (Latch 301): ask an administrator to check app_id and [operations]"
	case CodeMissingParameter, CodeInvalidParameter:
		c.Kind = KindOurBug
		c.Admin = fmt.Sprintf("Latch error %d: %s (latch-ssh sent a request Latch finds malformed: a latch-ssh bug)", code, quoted)
		c.Fix = "report this latch-ssh bug, with this log line"
		c.Person = fmt.Sprintf("Latch refused the request as malformed (Latch %d): this is a latch-ssh bug, please report it", code)
	case CodeNoTokenGenerated:
		c.Kind = KindNoToken
		c.Person = "Latch could not generate a one-time code (Latch 501): try again"
	default:
		if code >= 700 && code <= 799 {
			c.Kind, c.AdminProblem = KindSubscription, true
			c.Admin = fmt.Sprintf("Latch error %d: %s (a limit of the application's Latch subscription: an admin problem, not the person's account)", code, quoted)
			c.Fix = "check the Latch application's plan and its limits (users, operations) in the Latch developer area"
			c.Person = fmt.Sprintf("this server's Latch application reached a limit of its Latch subscription (Latch %d): ask an administrator", code)
			return c
		}
		c.Kind = KindUnknownCode
		c.Admin = fmt.Sprintf("Latch error %d, unknown to latch-ssh: %s", code, quoted)
		c.Person = fmt.Sprintf("Latch refused the request (Latch %d: %s)", code, quoted)
	}
	return c
}
