package latchtest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault describes how the fake misbehaves. The zero Fault does nothing;
// fields combine (a Delay, then the rest).
//
// Delay, Hang, HTTPStatus, Body, Truncate, CloseMidAnswer and Drip act like a
// network or a proxy in front of Latch: they apply whatever the request's
// signature. ErrorCode, Message, Status and WrongID act like Latch itself:
// they apply only to correctly signed requests (a bad signature still gets
// its real error).
type Fault struct {
	// Delay holds the answer back this long (ended early by Close or by
	// the client going away).
	Delay time.Duration
	// Hang never answers: the request blocks until the client goes away
	// or the server closes.
	Hang bool
	// HTTPStatus answers this HTTP status with a small non-JSON body (or
	// Body, if set).
	HTTPStatus int
	// RetryAfter is sent as the Retry-After header with HTTPStatus (429).
	RetryAfter string
	// Body is answered verbatim, with HTTP 200 unless HTTPStatus is set.
	// A non-nil empty slice answers an empty body.
	Body []byte
	// Truncate sends the real answer with a Content-Length larger than
	// the body, then closes the connection.
	Truncate bool
	// CloseMidAnswer writes the first half of the real HTTP answer
	// (status line, headers, body) and closes the connection.
	CloseMidAnswer bool
	// Drip sends the real HTTP answer (status line, headers, body) one
	// byte every Drip, like a server or a middlebox that trickles its
	// answer to hold a client. It ends when the answer is sent, the client
	// goes away, or the server closes.
	Drip time.Duration
	// ErrorCode answers this Latch error, with its usual message.
	ErrorCode int
	// Message replaces the message of any Latch error answered (e.g. with
	// terminal escapes, to test that clients clean it).
	Message string
	// Status answers this raw value in a status answer instead of the
	// real "on"/"off" (e.g. "maybe", "ON", "").
	Status string
	// WrongID answers a status under an id that differs from the one
	// asked by its last character.
	WrongID bool
	// Times applies the fault to the next Times requests only; 0 means
	// until ClearFaults or SetFault replaces it.
	Times int
	// Endpoint, if set, applies the fault only to requests to that
	// endpoint, the first path segment after the version ("status",
	// "pair", "instance", ...); other requests neither see it nor count
	// down its Times.
	Endpoint string
}

// SetFault sets the fault for requests about account (its account id in
// the path, or the Latch user a pairing token belongs to), or for every
// request when account is "". An account's fault wins over the global one.
// Setting a zero Fault removes it.
func (s *Server) SetFault(account string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.describe() == "" && f.RetryAfter == "" {
		delete(s.faults, account)
		return
	}
	f.Body = bytes.Clone(f.Body) // keeps nil nil and empty empty
	s.faults[account] = &f
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault for a request about account (nil if none),
// counting down its Times.
func (s *Server) takeFault(account, endpoint string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range []string{account, ""} {
		f := s.faults[k]
		if f == nil || f.Endpoint != "" && f.Endpoint != endpoint {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				delete(s.faults, k)
			}
		}
		c := *f
		return &c
	}
	return nil
}

// describe returns a short text for the request log.
func (f *Fault) describe() string {
	if f == nil {
		return ""
	}
	var p []string
	add := func(on bool, format string, args ...any) {
		if on {
			p = append(p, fmt.Sprintf(format, args...))
		}
	}
	add(f.Delay > 0, "delay %v", f.Delay)
	add(f.Hang, "hang")
	add(f.HTTPStatus != 0, "http %d", f.HTTPStatus)
	add(f.Body != nil, "body")
	add(f.Truncate, "truncate")
	add(f.CloseMidAnswer, "close mid-answer")
	add(f.Drip > 0, "drip %v", f.Drip)
	add(f.ErrorCode != 0, "error %d", f.ErrorCode)
	add(f.Message != "", "message")
	add(f.Status != "", "status %q", f.Status)
	add(f.WrongID, "wrong id")
	return strings.Join(p, ", ")
}

// messages are the error messages the fake answers.
func message(code int) string {
	switch code {
	case 101:
		return "Invalid Authorization header format"
	case 102:
		return "Invalid application signature"
	case 103:
		return "Authorization header missing"
	case 104:
		return "Date header missing"
	case 105:
		return "Invalid credentials"
	case 108:
		return "Invalid date format"
	case 109:
		return "Request expired, date is too old"
	case 110:
		return "Unauthorized client"
	case 201:
		return "Account not paired"
	case 202:
		return "Invalid account name"
	case 203:
		return "Error pairing account"
	case 204:
		return "Error unpairing account"
	case 205:
		return "Account and application already paired"
	case 206:
		return "Token not found or expired"
	case 207:
		return "Account not activated or disabled"
	case 208:
		// The real message is whatever the service's operator wrote
		// (Latch's docs: "replace with custom message"); set Fault.Message
		// to test that it reaches the person and the log.
		return "Generic account error"
	case 301:
		return "Application or operation not found"
	case 401:
		return "Missing parameter"
	case 402:
		return "Invalid parameter"
	case 306:
		return "Invalid totp code" // the text the official SDKs' tests read
	case 501:
		return "No token generated"
	case 701:
		return "Subscription limit reached"
	case 1100:
		return "Authorization control not found" // the text the official SDKs' tests read
	}
	return http.StatusText(http.StatusInternalServerError)
}
