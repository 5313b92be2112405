package latch

import (
	"errors"
	"fmt"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// Latch error codes, from the official SDKs and latch-api.md.
const (
	CodeInvalidAuthHeader  = 101
	CodeInvalidSignature   = 102
	CodeAuthHeaderMissing  = 103
	CodeDateHeaderMissing  = 104
	CodeInvalidCredentials = 105
	CodeInvalidDateFormat  = 108
	CodeRequestExpired     = 109
	CodeUnauthorizedClient = 110
	CodeAccountNotPaired   = 201
	CodeInvalidAccountName = 202
	CodePairingError       = 203
	CodeUnpairingError     = 204
	CodeAlreadyPaired      = 205
	CodeTokenNotFound      = 206
	// CodeAccountDisabled (207): the Latch account is not activated, or
	// is disabled.
	CodeAccountDisabled = 207
	// CodeAccountGeneric (208) is Latch's generic account error: its
	// message is the useful part (the SDKs' docs call it "replace with
	// custom message"), so it is shown and logged as Latch wrote it.
	CodeAccountGeneric   = 208
	CodeNotFound         = 301
	CodeInvalidTOTP      = 306 // newer SDKs; for latch-ssh an unknown code
	CodeMissingParameter = 401
	CodeInvalidParameter = 402
	CodeNoTokenGenerated = 501
	// CodeSubscriptionLimit (701) opens the 7xx group: a limit of the
	// application's Latch subscription (its plan), an admin problem, never
	// the person's account.
	CodeSubscriptionLimit = 701
	// CodeControlNotFound (1100, "Authorization control not found") comes
	// from newer SDKs; for latch-ssh an unknown code.
	CodeControlNotFound = 1100
)

// Error is an error object returned by the Latch service in the answer's
// "error" member. Message has already been stripped of control characters,
// so it is safe to print or log.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("latch error %d: %s", e.Code, e.Message)
}

// newError builds an *Error, cleaning the server's message.
func newError(code int, msg string) *Error {
	return &Error{Code: code, Message: safetext.Clean(msg)}
}

// ErrorCode returns the Latch error code carried by err, or 0 if err is not
// (and does not wrap) an *Error.
func ErrorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsNotPaired reports whether err says the account is not paired (201): the
// person unpaired from the phone.
func IsNotPaired(err error) bool { return ErrorCode(err) == CodeAccountNotPaired }

// IsCredentials reports whether err says our application id, secret or
// Authorization header is wrong (101, 102, 103, 104, 105, 108, 110): a
// configuration problem, not a person's problem.
func IsCredentials(err error) bool {
	switch ErrorCode(err) {
	case CodeInvalidAuthHeader, CodeInvalidSignature, CodeAuthHeaderMissing,
		CodeDateHeaderMissing, CodeInvalidCredentials, CodeInvalidDateFormat,
		CodeUnauthorizedClient:
		return true
	}
	return false
}

// IsClock reports whether err says the request date was too far from the
// server's clock (109).
func IsClock(err error) bool { return ErrorCode(err) == CodeRequestExpired }

// IsOperationNotFound reports whether err says the application or operation
// id is unknown (301).
func IsOperationNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }

// ErrMalformed is wrapped by every error about an answer that is not exactly
// what was asked: not JSON, truncated, too large, a missing entry for the id
// asked, an unknown status value, an unexpected HTTP status.
var ErrMalformed = errors.New("malformed Latch answer")

// TransportError is returned when no answer came back: DNS, connect, TLS,
// a timeout, or the connection closing before the answer ended.
type TransportError struct {
	Op  string // what was being done, e.g. "GET /api/3.0/status/..."
	Err error
}

func (e *TransportError) Error() string { return fmt.Sprintf("latch: %s: %v", e.Op, e.Err) }

// Unwrap returns the underlying error (context.DeadlineExceeded for a
// timeout, an x509 error for a bad certificate, ...).
func (e *TransportError) Unwrap() error { return e.Err }

// HTTPError is returned for a non-2xx HTTP status without a Latch error
// object in the body. It wraps ErrMalformed.
type HTTPError struct {
	StatusCode int
	RetryAfter string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("latch: unexpected HTTP status %d", e.StatusCode)
}

// Unwrap lets errors.Is(err, ErrMalformed) hold for an HTTP error.
func (e *HTTPError) Unwrap() error { return ErrMalformed }
