package latch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Status is the state of one latch: the application's, an operation's or
// an instance's.
type Status struct {
	// ID is the application, operation or instance id the status is for.
	ID string
	// Open is true only for Latch's "on": the latch is open, logins may go
	// on. Any other state is false.
	Open bool
	// TwoFactor is set when Latch generated a one-time code that the person
	// must type: an open latch with a TwoFactor is not yet an allow.
	TwoFactor *TwoFactor
	// Operations holds the nested child operations Latch sent whose status
	// was readable ("on" or "off"); children in any other shape are left
	// out. They are informative only: the entry asked for decides.
	Operations map[string]Status
}

// TwoFactor is a one-time code Latch pushed to the person's phone.
type TwoFactor struct {
	// Token is the code the person must type, compared case-sensitively
	// in constant time, one try per token.
	Token     string
	Generated time.Time
}

// The decoders below read JSON objects into maps and pick members by their
// exact names. encoding/json's struct decoding matches names without regard
// to case ("dAtA" fills Data), which is too lax for answers that decide
// logins.

// decodeEnvelope parses one answer body. It returns an *Error when the body
// carries an error object (authoritative even next to data), and an error
// wrapping ErrMalformed for anything that is not a single JSON object of the
// expected shape.
func decodeEnvelope(body []byte) (answer, error) {
	env, err := objectOf(body)
	if err != nil {
		return answer{}, err
	}
	if rawErr, ok := env["error"]; ok && !isNull(rawErr) {
		eo, err := objectOf(rawErr)
		if err != nil {
			return answer{}, fmt.Errorf("error member: %w", err)
		}
		var code int
		if json.Unmarshal(eo["code"], &code) != nil || code <= 0 {
			return answer{}, fmt.Errorf("error object without a valid code: %w", ErrMalformed)
		}
		var msg string
		_ = json.Unmarshal(eo["message"], &msg) // a missing or odd message is not fatal
		return answer{}, newError(code, msg)
	}
	data, ok := env["data"]
	if !ok || isNull(data) {
		return answer{}, nil
	}
	return answer{data: data}, nil
}

// objectOf decodes raw, which must be exactly one JSON object with nothing
// but white space after it, into its members.
func objectOf(raw []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("not a JSON object: %w", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid JSON (%v): %w", err, ErrMalformed)
	}
	if rest := bytes.TrimSpace(trimmed[dec.InputOffset():]); len(rest) > 0 {
		return nil, fmt.Errorf("data after the JSON answer: %w", ErrMalformed)
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// stringMember returns the string member name of o, and whether it exists
// and is a JSON string.
func stringMember(o map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := o[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// maxNesting bounds recursion into nested child operations: deeper ones
// are ignored.
const maxNesting = 8

// decodeStatus extracts the status of id from the data member of a status
// answer. Anything other than an entry for exactly id with status "on" or
// "off" is malformed; the entry's child operations never are (see
// decodeChildren).
func decodeStatus(data []byte, id string) (Status, error) {
	if data == nil {
		return Status{}, fmt.Errorf("status answer without data: %w", ErrMalformed)
	}
	d, err := objectOf(data)
	if err != nil {
		return Status{}, fmt.Errorf("status data: %w", err)
	}
	ops, err := objectOf(d["operations"])
	if err != nil {
		return Status{}, fmt.Errorf("status operations: %w", err)
	}
	raw, ok := ops[id]
	if !ok {
		return Status{}, fmt.Errorf("status answer has no entry for %q: %w", id, ErrMalformed)
	}
	return decodeOneStatus(raw, id)
}

// decodeOneStatus reads the entry asked for, strictly.
func decodeOneStatus(raw []byte, id string) (Status, error) {
	o, err := objectOf(raw)
	if err != nil {
		return Status{}, fmt.Errorf("status of %q: %w", id, err)
	}
	st := Status{ID: id}
	switch s, ok := stringMember(o, "status"); {
	case !ok:
		return Status{}, fmt.Errorf("status of %q missing: %w", id, ErrMalformed)
	case s == "on":
		st.Open = true
	case s == "off":
	default:
		return Status{}, fmt.Errorf("status of %q is %q, not on/off: %w", id, clip(s), ErrMalformed)
	}
	if tfRaw, ok := o["two_factor"]; ok && !isNull(tfRaw) {
		tf, err := objectOf(tfRaw)
		if err != nil {
			return Status{}, fmt.Errorf("two_factor of %q: %w", id, err)
		}
		token, ok := stringMember(tf, "token")
		if !ok || !idPattern.MatchString(token) || len(token) > 32 {
			return Status{}, fmt.Errorf("two-factor token of %q missing or malformed: %w", id, ErrMalformed)
		}
		st.TwoFactor = &TwoFactor{Token: token}
		var ms int64
		if json.Unmarshal(tf["generated"], &ms) == nil {
			st.TwoFactor.Generated = time.UnixMilli(ms).UTC()
		}
	}
	st.Operations = decodeChildren(o["operations"], 1)
	return st, nil
}

// decodeChildren reads the child operations nested in a status entry,
// leniently. Only the entry asked for decides a login; a real status answer
// may carry the application's (or operation's) children in odd shapes (no
// status, a value other than on/off, not even an object), and once made
// the whole answer malformed, so every login of that application went to
// fail mode (issue 13, point 1). A child whose status is exactly "on" or
// "off" is kept, with its own readable children; anything else is left
// out. It returns nil when there is nothing readable.
func decodeChildren(raw json.RawMessage, depth int) map[string]Status {
	if raw == nil || isNull(raw) || depth > maxNesting {
		return nil
	}
	children, err := objectOf(raw)
	if err != nil {
		return nil
	}
	var out map[string]Status
	for k, v := range children {
		o, err := objectOf(v)
		if err != nil {
			continue
		}
		s, _ := stringMember(o, "status")
		if s != "on" && s != "off" {
			continue
		}
		if out == nil {
			out = make(map[string]Status, len(children))
		}
		out[k] = Status{ID: k, Open: s == "on", Operations: decodeChildren(o["operations"], depth+1)}
	}
	return out
}

// clip shortens a value from the network before it goes into an error
// (which quotes it with %q, escaping control characters).
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
