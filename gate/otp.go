package gate

import (
	"crypto/subtle"
	"sync"
	"time"
)

// OTPTimeout is how long a person has to type a one-time code, whichever
// front end asks for it (the ForceCommand gate through the daemon's socket,
// the embedded server's keyboard-interactive prompt).
const OTPTimeout = 60 * time.Second

// Challenge holds a one-time code Latch pushed to the person's phone. It
// never leaves the process that asked Latch: front ends pass the person's
// answer to Verify.
//
// One try per token: the first Verify consumes the challenge, and every
// later call returns false, so a wrong guess cannot be followed by another.
type Challenge struct {
	mu    sync.Mutex
	token string
	used  bool
}

// NewChallenge returns a challenge for token.
func NewChallenge(token string) *Challenge { return &Challenge{token: token} }

// Verify compares code with the token in constant time (case-sensitive, as
// Latch generates mixed-case codes) and consumes the challenge. Only the
// first call can return true.
func (c *Challenge) Verify(code string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used || c.token == "" {
		return false
	}
	c.used = true
	// ConstantTimeCompare returns early on a length mismatch, which leaks
	// only the length: Latch codes have a fixed, public length.
	return subtle.ConstantTimeCompare([]byte(code), []byte(c.token)) == 1
}
