package latch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// StatusRequest selects which latch to ask about.
type StatusRequest struct {
	AccountID string
	// OperationID, if set, asks about that operation instead of the
	// application latch.
	OperationID string
	// InstanceID, if set, asks about an instance (of the operation, if
	// OperationID is set, else of the application).
	InstanceID string
	// NoOTP asks Latch not to generate a one-time code: use it whenever
	// nobody can be asked to type one.
	NoOTP bool
	// Silent asks Latch not to push a notification (may need a paid tier).
	Silent bool
}

// Path returns the request path under /api/<version>, e.g.
// /status/ACC/op/OP/nootp. /nootp always comes before /silent.
func (r StatusRequest) Path() (string, error) {
	if !accountPattern.MatchString(r.AccountID) {
		return "", fmt.Errorf("latch: account id must be 64 letters and digits")
	}
	p := "/status/" + r.AccountID
	if r.OperationID != "" {
		if !idPattern.MatchString(r.OperationID) {
			return "", fmt.Errorf("latch: operation id must be letters and digits")
		}
		p += "/op/" + r.OperationID
	}
	if r.InstanceID != "" {
		if !idPattern.MatchString(r.InstanceID) {
			return "", fmt.Errorf("latch: instance id must be letters and digits")
		}
		p += "/i/" + r.InstanceID
	}
	if r.NoOTP {
		p += "/nootp"
	}
	if r.Silent {
		p += "/silent"
	}
	return p, nil
}

// Status asks for the state of a latch. The answer must hold an entry for
// exactly the id asked (instance, else operation, else the application).
// A 201 error (*Error, IsNotPaired) means the person unpaired from the phone.
//
// Identical calls in flight share one request to Latch, so that a burst of
// logins to the same account costs Latch (and each login) one round trip.
// Precisely:
//
//   - Two calls are identical when their StatusRequest is (same account,
//     operation, instance, NoOTP and Silent).
//   - A call joins a request only while that request's answer has not
//     arrived, and only for DefaultJoinWindow after it was sent; otherwise
//     it sends its own. So every answer a call returns was received after
//     the call began: an answer that arrived before it, however recent, is
//     never reused. (The request joined may have been sent before the call
//     began, by at most the join window: the same age as an answer to the
//     call's own request that Latch is slow to send.)
//   - A one-time code is never shared: when the shared answer carries one
//     (TwoFactor), only the call that sent the request gets it; every
//     other call asks Latch again on its own, and so gets its own code.
//   - Each call keeps its own deadline. A call whose ctx ends returns
//     ctx's error at once (in a *TransportError) and the request goes on
//     for the others; the request is cancelled only when no call waits
//     for it any more. Errors are shared like answers.
func (c *Client) Status(ctx context.Context, r StatusRequest) (Status, error) {
	path, err := r.Path()
	if err != nil {
		return Status{}, err
	}
	id := c.appID
	switch {
	case r.InstanceID != "":
		id = r.InstanceID
	case r.OperationID != "":
		id = r.OperationID
	}
	req := request{method: "GET", path: path}
	st, err := c.sharedStatus(ctx, req, id)
	return st, instanceError(err, r.InstanceID, r.OperationID)
}

// sharedStatus is Status once the request is built: shared with identical
// calls in flight unless coalescing is off.
func (c *Client) sharedStatus(ctx context.Context, req request, id string) (Status, error) {
	if !c.coalesce {
		return c.status(ctx, req, id)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	a, leader, err := c.shared(ctx, req)
	if err != nil {
		return Status{}, err
	}
	st, err := decodeStatus(a.data, id)
	if err == nil && st.TwoFactor != nil && !leader {
		// The code is the leader's: ask for one of our own.
		return c.status(ctx, req, id)
	}
	return st, err
}

// status sends the status request req on its own and decodes the entry id.
func (c *Client) status(ctx context.Context, req request, id string) (Status, error) {
	a, err := c.do(ctx, req)
	if err != nil {
		return Status{}, err
	}
	return decodeStatus(a.data, id)
}

// Pair pairs the Latch account whose person generated token in the app and
// returns its 64-character account id. A non-empty commonName is sent (by
// POST) as the label admins see in the Latch panels. The token is checked to
// be letters and digits before any call, so it cannot change the path.
func (c *Client) Pair(ctx context.Context, token, commonName string) (string, error) {
	if !idPattern.MatchString(token) || len(token) > 32 {
		return "", fmt.Errorf("latch: pairing token must be letters and digits")
	}
	r := request{method: "GET", path: "/pair/" + token}
	if commonName != "" {
		r.method = "POST"
		r.form = url.Values{"commonName": {commonName}}
	}
	a, err := c.do(ctx, r)
	if err != nil {
		return "", err
	}
	d, err := objectOf(a.data)
	if err != nil {
		return "", fmt.Errorf("pair answer: %w", err)
	}
	id, ok := stringMember(d, "accountId")
	if !ok || !accountPattern.MatchString(id) {
		return "", fmt.Errorf("pair answer without a valid accountId: %w", ErrMalformed)
	}
	return id, nil
}

// Unpair removes the pairing of accountID with this application.
func (c *Client) Unpair(ctx context.Context, accountID string) error {
	if !accountPattern.MatchString(accountID) {
		return fmt.Errorf("latch: account id must be 64 letters and digits")
	}
	_, err := c.do(ctx, request{method: "GET", path: "/unpair/" + accountID})
	return err
}

// Lock closes the latch of accountID (of operationID if set).
func (c *Client) Lock(ctx context.Context, accountID, operationID string) error {
	return c.lockOrUnlock(ctx, "/lock/", accountID, operationID)
}

// Unlock opens the latch of accountID (of operationID if set).
func (c *Client) Unlock(ctx context.Context, accountID, operationID string) error {
	return c.lockOrUnlock(ctx, "/unlock/", accountID, operationID)
}

func (c *Client) lockOrUnlock(ctx context.Context, verb, accountID, operationID string) error {
	if !accountPattern.MatchString(accountID) {
		return fmt.Errorf("latch: account id must be 64 letters and digits")
	}
	p := verb + accountID
	if operationID != "" {
		if !idPattern.MatchString(operationID) {
			return fmt.Errorf("latch: operation id must be letters and digits")
		}
		p += "/op/" + operationID
	}
	_, err := c.do(ctx, request{method: "POST", path: p})
	return err
}

// History returns the raw data member of the account's history, optionally
// between from and to (both zero for everything). When only one bound is
// set, the other is sent as the official SDKs send a missing one: from as
// 0 (the epoch), to as now. A zero time.Time is never sent as its own
// (negative) epoch milliseconds, nor is any time before the epoch.
func (c *Client) History(ctx context.Context, accountID string, from, to time.Time) (json.RawMessage, error) {
	if !accountPattern.MatchString(accountID) {
		return nil, fmt.Errorf("latch: account id must be 64 letters and digits")
	}
	p := "/history/" + accountID
	if !from.IsZero() || !to.IsZero() {
		fromMs, toMs := int64(0), c.now().Add(c.ClockOffset()).UnixMilli()
		if !from.IsZero() {
			fromMs = max(from.UnixMilli(), 0)
		}
		if !to.IsZero() {
			toMs = max(to.UnixMilli(), 0)
		}
		p += "/" + strconv.FormatInt(fromMs, 10) + "/" + strconv.FormatInt(toMs, 10)
	}
	a, err := c.do(ctx, request{method: "GET", path: p})
	if err != nil {
		return nil, err
	}
	if a.data == nil {
		return nil, fmt.Errorf("history answer without data: %w", ErrMalformed)
	}
	return json.RawMessage(a.data), nil
}

// Operation describes one operation of the application.
type Operation struct {
	Name          string               `json:"name"`
	TwoFactor     string               `json:"two_factor"`
	LockOnRequest string               `json:"lock_on_request"`
	Operations    map[string]Operation `json:"operations"`
}

// Operations lists the application's operations, or the children of
// operationID if set (Latch answers those at the top level of
// data.operations, as the official SDKs' tests read them).
func (c *Client) Operations(ctx context.Context, operationID string) (map[string]Operation, error) {
	p := "/operation"
	if operationID != "" {
		if !idPattern.MatchString(operationID) {
			return nil, fmt.Errorf("latch: operation id must be letters and digits")
		}
		p += "/" + operationID
	}
	a, err := c.do(ctx, request{method: "GET", path: p})
	if err != nil {
		return nil, err
	}
	if a.data == nil {
		return map[string]Operation{}, nil
	}
	d, err := objectOf(a.data)
	if err != nil {
		return nil, fmt.Errorf("operation answer: %w", err)
	}
	ops := map[string]Operation{}
	if raw, ok := d["operations"]; ok && !isNull(raw) {
		top, err := objectOf(raw)
		if err != nil {
			return nil, fmt.Errorf("operation answer: %w", err)
		}
		ops = decodeOperations(top, 0)
	}
	return ops, nil
}

// decodeOperations reads an operations listing leniently: an entry that is
// not an object is left out, a member of an unexpected type is left empty,
// and nesting deeper than maxNesting is ignored. A listing only informs
// (check-config uses it to test the credentials); an odd child must not
// turn it into an error (issue 13, point 1). Member names are matched
// exactly (encoding/json's struct decoding would ignore their case).
func decodeOperations(m map[string]json.RawMessage, depth int) map[string]Operation {
	out := make(map[string]Operation, len(m))
	for id, raw := range m {
		o, err := objectOf(raw)
		if err != nil {
			continue
		}
		var op Operation
		op.Name, _ = stringMember(o, "name")
		op.TwoFactor, _ = stringMember(o, "two_factor")
		op.LockOnRequest, _ = stringMember(o, "lock_on_request")
		if depth < maxNesting {
			if children, err := objectOf(o["operations"]); err == nil {
				op.Operations = decodeOperations(children, depth+1)
			}
		}
		out[id] = op
	}
	return out
}
