package systest

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond every 5ms until it holds, failing the test after limit.
// It is for state that gives no event to wait on (a file appearing, another
// process starting to listen, a log line); prefer a channel when there is
// one.
func WaitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		<-tick.C
	}
}

// Buffer is a bytes.Buffer that one goroutine (or process pipe) may write
// while another reads it: a server's log, a command's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
