package pairing

import (
	"github.com/latch-ssh/latch-ssh/latch"
)

// Message returns, for an error of the Latch client, one sentence a person
// can act on: what happened and what to do (generate a new code, ask an
// administrator, try again later). It never holds the secret (the client's
// errors do not carry it), nor a request path (which would carry the whole
// account id), and is clean of control characters. It returns "" for nil.
//
// The sentence is latch.Classify's Person text: the taxonomy of Latch
// errors lives in the latch package once, shared with the admin's log
// (gate.Classify), so that the two cannot disagree (issue 13, point 1).
// Latch's own message is shown where it is the useful part (208, unknown
// codes); a 7xx (the application's subscription limit) is never told to the
// person as "your account is disabled".
func Message(err error) string {
	return latch.Classify(err).Person
}
