package pairing_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/latch"
)

// Issue 13, point 1: what the person reads follows the taxonomy of
// latch-api.md, from the one classifier in package latch.
func TestRealLatchPersonMessages(t *testing.T) {
	// 7xx is the application's subscription limit: never "your account is
	// disabled".
	for _, code := range []int{701, 702, 799} {
		got := pairing.Message(&latch.Error{Code: code, Message: "Subscription limit reached"})
		if strings.Contains(got, "disabled") || !strings.Contains(got, "administrator") {
			t.Errorf("Message(%d) = %q", code, got)
		}
	}
	// 208: Latch's own message is the useful part.
	if got := pairing.Message(&latch.Error{Code: 208, Message: "Blocked: call the service desk"}); !strings.Contains(got, "Blocked: call the service desk") || strings.Contains(got, "disabled") {
		t.Errorf("Message(208) = %q", got)
	}
	// Unknown codes show Latch's message.
	if got := pairing.Message(&latch.Error{Code: 1100, Message: "Authorization control not found"}); !strings.Contains(got, "Authorization control not found") {
		t.Errorf("Message(1100) = %q", got)
	}
	// A network error the client did not wrap is still "cannot reach"
	// (the admin's classifier knew it, the person's did not).
	if got := pairing.Message(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}); !strings.Contains(got, "cannot reach Latch") {
		t.Errorf("net error: %q", got)
	}
}
