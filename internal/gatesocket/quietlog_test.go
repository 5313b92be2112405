package gatesocket

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSecurityQuietLog (issue 12, item 6): a uid's repeated problems give
// one full line, then one summary with the counts per interval; a uid
// that stays quiet for a whole interval is logged in full again; other
// uids are not folded into the flooder's counts; stopping flushes what is
// left; the number of keys is bounded.
func TestSecurityQuietLog(t *testing.T) {
	var lines []string
	now := time.Unix(1000, 0)
	q := newQuietLog(10*time.Second, func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) })
	q.now = func() time.Time { return now }
	logged := 0
	for i := range 100000 {
		kind := "connections refused (too many open)"
		if i%10 == 0 {
			kind = "bad requests"
		}
		if q.first("uid 1001", kind) {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("%d of 100000 problems of one uid to log in full, want 1", logged)
	}
	if !q.first("uid 1002", "bad requests") {
		t.Error("another uid's first problem was folded into the flooder's")
	}
	q.flush(false)
	if len(lines) != 0 {
		t.Fatalf("summaries before the interval ended: %q", lines)
	}
	now = now.Add(10 * time.Second)
	q.flush(false)
	want := "gate socket: uid 1001: 9999 bad requests, 90000 connections refused (too many open) in the last 10s"
	if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Fatalf("summary %q, want one line starting %q", lines, want)
	}
	// uid 1002 had nothing after its first line: forgotten, so its next
	// problem is logged in full again; uid 1001's window starts anew.
	if !q.first("uid 1002", "bad requests") {
		t.Error("a uid quiet for an interval was folded")
	}
	if q.first("uid 1001", "bad requests") {
		t.Error("a flooding uid was logged in full at the start of its next window")
	}
	q.flush(true)
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "gate socket: uid 1001: 1 bad requests in the last 0s") {
		t.Fatalf("final flush: %q", lines)
	}
	// Bounded: past maxQuietKeys uids, the rest share one key.
	q = newQuietLog(time.Second, func(string, ...any) {})
	for uid := range maxQuietKeys + 100 {
		q.first(uidKey(uint32(uid)), "bad requests")
	}
	if n := len(q.keys); n > maxQuietKeys+1 {
		t.Errorf("%d keys tracked, want at most %d", n, maxQuietKeys+1)
	}
}
