package spawn

import (
	"testing"
	"time"
)

func TestShadowCheckUsable(t *testing.T) {
	day := func(d int64) time.Time { return time.Unix(d*86400+3600, 0) }
	for _, tc := range []struct {
		name string
		info ShadowInfo
		now  time.Time
		ok   bool
	}{
		{"no expiry", ShadowInfo{ExpireDays: -1}, day(20000), true},
		{"expires later", ShadowInfo{ExpireDays: 20001}, day(20000), true},
		{"expires today", ShadowInfo{ExpireDays: 20000}, day(20000), false},
		{"expired", ShadowInfo{ExpireDays: 1}, day(20000), false},
		{"expiry day 0 (usermod -e 1970-01-01)", ShadowInfo{ExpireDays: 0}, day(20000), false},
		{"locked", ShadowInfo{ExpireDays: -1, Locked: true}, day(20000), false},
	} {
		if err := tc.info.CheckUsable(tc.now); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want usable=%v", tc.name, err, tc.ok)
		}
	}
}
