package latch

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Instances split one latch into several: an account's application latch
// (or one operation's) can have instances, each with its own latch that
// the person opens and closes in the Latch app, asked about with
// StatusRequest.InstanceID. latch-ssh creates one per server, so that a
// person can close SSH to one server and keep another open.
//
// The calls below are those of the official SDKs (Java LatchApp
// addInstance/removeInstance, Python create_instance/get_instances/
// delete_instance, Node.js createInstance/getInstances/deleteInstance):
//
//	PUT    /instance/{account}[/op/{op}]          form instances=<name>
//	       -> {"data":{"instances":{"<id>":"<name>"}}}
//	GET    /instance/{account}[/op/{op}]
//	       -> {"data":{"<id>":{"name":"<name>","two_factor":...,...}}}
//	DELETE /instance/{account}[/op/{op}]/i/{id}   -> {}
//
// An instance belongs to the latch it was created under: its status is
// asked with the same operation (/status/{account}/op/{op}/i/{id}), and an
// operation's instance is not an instance of the application.

// Instance is one instance of an account's latch.
type Instance struct {
	ID   string
	Name string
}

// UnknownInstanceError is the error of a call about an instance that Latch
// says does not exist (code 301 on a request naming an instance: the code
// the real service uses for a missing instance is not documented, and 301,
// "application or operation not found", is the documented code nearest to
// it; so the operation may be what is unknown). Err is the *Error Latch
// sent.
type UnknownInstanceError struct {
	InstanceID  string
	OperationID string
	Err         error
}

func (e *UnknownInstanceError) Error() string {
	return fmt.Sprintf("latch: instance %s unknown to Latch: %v", e.InstanceID, e.Err)
}

// Unwrap returns the Latch error.
func (e *UnknownInstanceError) Unwrap() error { return e.Err }

// IsUnknownInstance reports whether err says the instance asked about does
// not exist at Latch.
func IsUnknownInstance(err error) bool {
	var u *UnknownInstanceError
	return errors.As(err, &u)
}

// instanceError turns a 301 on a request naming instanceID into an
// *UnknownInstanceError; other errors pass unchanged.
func instanceError(err error, instanceID, operationID string) error {
	if err == nil || instanceID == "" || ErrorCode(err) != CodeNotFound {
		return err
	}
	return &UnknownInstanceError{InstanceID: instanceID, OperationID: operationID, Err: err}
}

// instancePath is /instance/{account}[/op/{op}][/i/{instance}], with every
// id checked so that none can change the path.
func instancePath(accountID, operationID, instanceID string) (string, error) {
	if !accountPattern.MatchString(accountID) {
		return "", fmt.Errorf("latch: account id must be 64 letters and digits")
	}
	p := "/instance/" + accountID
	if operationID != "" {
		if !idPattern.MatchString(operationID) {
			return "", fmt.Errorf("latch: operation id must be letters and digits")
		}
		p += "/op/" + operationID
	}
	if instanceID != "" {
		if !idPattern.MatchString(instanceID) {
			return "", fmt.Errorf("latch: instance id must be letters and digits")
		}
		p += "/i/" + instanceID
	}
	return p, nil
}

// MaxInstanceName bounds the name of an instance latch-ssh creates; the
// name is what the person sees in the Latch app.
const MaxInstanceName = 100

// AddInstance creates one instance named name of accountID's latch (of
// operationID's, if set) and returns its id. The answer must name exactly
// one instance called name, with an id of letters and digits (the Node.js
// SDK's test finds the new id by its name among the answer's entries).
func (c *Client) AddInstance(ctx context.Context, accountID, operationID, name string) (string, error) {
	p, err := instancePath(accountID, operationID, "")
	if err != nil {
		return "", err
	}
	if name == "" || len(name) > MaxInstanceName || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", fmt.Errorf("latch: an instance name must be 1 to %d characters, no control characters", MaxInstanceName)
	}
	a, err := c.do(ctx, request{method: "PUT", path: p, form: url.Values{"instances": {name}}})
	if err != nil {
		return "", err
	}
	d, err := objectOf(a.data)
	if err != nil {
		return "", fmt.Errorf("instance answer: %w", err)
	}
	entries, err := objectOf(d["instances"])
	if err != nil {
		return "", fmt.Errorf("instance answer without an instances object: %w", err)
	}
	var ids []string
	for id := range entries {
		if got, ok := stringMember(entries, id); ok && got == name {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 || !idPattern.MatchString(ids[0]) {
		return "", fmt.Errorf("instance answer names %d instances called %q with a valid id, want 1: %w", len(ids), clip(name), ErrMalformed)
	}
	return ids[0], nil
}

// Instances lists the instances of accountID's latch (of operationID's, if
// set), sorted by id. The listing is read leniently, as an operations
// listing is: an entry whose id is not letters and digits, or that is not
// an object with a string name, is left out (it only informs: latch-ssh
// uses it to find an instance it created but could not record).
func (c *Client) Instances(ctx context.Context, accountID, operationID string) ([]Instance, error) {
	p, err := instancePath(accountID, operationID, "")
	if err != nil {
		return nil, err
	}
	a, err := c.do(ctx, request{method: "GET", path: p})
	if err != nil {
		return nil, err
	}
	if a.data == nil {
		return nil, nil
	}
	d, err := objectOf(a.data)
	if err != nil {
		return nil, fmt.Errorf("instances answer: %w", err)
	}
	var out []Instance
	for id, raw := range d {
		o, err := objectOf(raw)
		if err != nil || !idPattern.MatchString(id) {
			continue
		}
		if name, ok := stringMember(o, "name"); ok {
			out = append(out, Instance{ID: id, Name: name})
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// RemoveInstance deletes the instance instanceID of accountID's latch (of
// operationID's, if set). An instance Latch does not know gives an
// *UnknownInstanceError (IsUnknownInstance).
func (c *Client) RemoveInstance(ctx context.Context, accountID, operationID, instanceID string) error {
	if instanceID == "" {
		return fmt.Errorf("latch: instance id must be letters and digits")
	}
	p, err := instancePath(accountID, operationID, instanceID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: "DELETE", path: p})
	return instanceError(err, instanceID, operationID)
}
