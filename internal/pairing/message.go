package pairing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/latch"
)

// Message returns, for an error of the Latch client, one sentence a person
// can act on: what happened and what to do (generate a new code, ask an
// administrator, try again later). It never holds the secret (the client's
// errors do not carry it), nor a request path (which would carry the whole
// account id), and is clean of control characters. It returns "" for nil.
func Message(err error) string {
	if err == nil {
		return ""
	}
	var (
		le  *latch.Error
		he  *latch.HTTPError
		te  *latch.TransportError
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &le):
		return latchErrorMessage(le)
	case errors.Is(err, context.DeadlineExceeded):
		return "Latch did not answer in time: try again in a moment (if it keeps happening, ask an administrator to check the network and [latch] timeout)"
	case errors.Is(err, context.Canceled):
		return "interrupted before Latch answered"
	case errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie), errors.As(err, &rhe):
		return "the connection to Latch could not be verified (TLS certificate problem): ask an administrator to check api_url and ca_file in [latch]"
	case errors.As(err, &he):
		switch {
		case he.StatusCode == http.StatusTooManyRequests:
			return "Latch is limiting requests (HTTP 429): wait a minute, then try again"
		case he.StatusCode >= 500:
			return fmt.Sprintf("Latch is having trouble (HTTP %d): try again later", he.StatusCode)
		}
		return fmt.Sprintf("Latch answered HTTP %d, which latch-ssh does not expect: try again later, or ask an administrator to check api_url in [latch]", he.StatusCode)
	case errors.Is(err, latch.ErrMalformed):
		return "Latch sent an answer latch-ssh cannot read: try again later, or ask an administrator to check api_url in [latch]"
	case errors.As(err, &te):
		// te.Op would name the request path, account id included: only
		// the cause is shown.
		return "cannot reach Latch (" + safetext.Clean(te.Err.Error()) + "): check the network, then try again"
	}
	return "the call to Latch failed: " + safetext.Clean(err.Error())
}

// latchErrorMessage explains an error object from Latch. The server's own
// message is shown only for codes we do not know; the latch package has
// already cleaned it.
func latchErrorMessage(e *latch.Error) string {
	switch e.Code {
	case latch.CodeTokenNotFound:
		return "that code is wrong or has expired: generate a new one in the Latch app"
	case latch.CodeAlreadyPaired:
		return "this Latch account is already paired with this server (Latch 205): unpair it first (latch-ssh unpair, or remove this server in the Latch app), then pair again with a new code"
	case latch.CodePairingError:
		return "Latch could not pair the account (Latch 203): generate a new code in the Latch app and try again"
	case latch.CodeUnpairingError:
		return "Latch could not unpair the account (Latch 204): remove this server in the Latch app instead"
	case latch.CodeAccountNotPaired:
		return "the Latch account is no longer paired with this server: it was unpaired from the phone (Latch 201); pair again"
	case latch.CodeInvalidAccountName:
		return "Latch does not recognise the account id this server has (Latch 202): unpair, then pair again with a new code"
	case latch.CodeAccountDisabled, latch.CodeAccountBlocked, latch.CodeGenericAccountError:
		return fmt.Sprintf("the Latch account is disabled (Latch %d): check the Latch app, or contact Latch support", e.Code)
	case latch.CodeRequestExpired:
		return "this server's clock is off, so Latch refused the request (Latch 109): ask an administrator to fix the time (timedatectl set-ntp true)"
	case latch.CodeInvalidAuthHeader, latch.CodeInvalidSignature, latch.CodeAuthHeaderMissing, latch.CodeDateHeaderMissing,
		latch.CodeInvalidCredentials, latch.CodeInvalidDateFormat, latch.CodeUnauthorizedClient:
		return fmt.Sprintf("the application id or secret is wrong (ask an administrator to check app_id and secret in [latch]; Latch %d)", e.Code)
	case latch.CodeNotFound:
		return "Latch does not know this server's application or one of its operations (Latch 301): ask an administrator to check app_id and [operations]"
	case latch.CodeMissingParameter, latch.CodeInvalidParameter:
		return fmt.Sprintf("Latch refused the request as malformed (Latch %d): this is a latch-ssh bug, please report it", e.Code)
	case latch.CodeNoTokenGenerated:
		return "Latch could not generate a one-time code (Latch 501): try again"
	}
	return fmt.Sprintf("Latch refused the request (Latch %d: %s)", e.Code, safetext.Clean(e.Message))
}
