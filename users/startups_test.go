package users

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestSecurityServerStartupsKeys (issue 12, item 7): the [server] keys of
// the embedded server's admission rules, their defaults (which follow a
// small max_unauthenticated down) and their strict validation, each
// problem at its line.
func TestSecurityServerStartupsKeys(t *testing.T) {
	parse := func(t *testing.T, server string) (*Config, error) {
		t.Helper()
		return Parse("latch.toml", []byte(validConfig+"\n[server]\n"+server+"\n"))
	}
	cfg, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"per source", s.MaxUnauthenticatedPerSource, 10},
		{"early drop start", s.EarlyDropStart, 10},
		{"early drop rate", s.EarlyDropRate, 30},
		{"noauth", s.PenaltyNoAuth.Duration, time.Second},
		{"authfail", s.PenaltyAuthFail.Duration, 5 * time.Second},
		{"timeout", s.PenaltyTimeout.Duration, 10 * time.Second},
		{"min", s.PenaltyMin.Duration, 15 * time.Second},
		{"max", s.PenaltyMax.Duration, 10 * time.Minute},
		{"max sources", s.PenaltyMaxSources, 65536},
		{"overflow", s.PenaltyOverflow, OverflowPermissive},
		{"exempt", s.PenaltyExempt, []netip.Prefix{}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// A small pool: the defaults follow it down, and stay valid.
	cfg, err = parse(t, "max_unauthenticated = 8")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Server; s.MaxUnauthenticatedPerSource != 2 || s.EarlyDropStart != 8 {
		t.Errorf("with max_unauthenticated = 8: per source %d, early drop start %d; want 2 and 8",
			s.MaxUnauthenticatedPerSource, s.EarlyDropStart)
	}
	cfg, err = parse(t, "max_unauthenticated = 1")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Server; s.MaxUnauthenticatedPerSource != 1 || s.EarlyDropStart != 1 {
		t.Errorf("with max_unauthenticated = 1: per source %d, early drop start %d; want 1 and 1",
			s.MaxUnauthenticatedPerSource, s.EarlyDropStart)
	}

	cfg, err = parse(t, `max_unauthenticated_per_source = 3
early_drop_start = 50
early_drop_rate = 0
penalty_noauth = "0"
penalty_authfail = "1m"
penalty_timeout = "30s"
penalty_min = "0"
penalty_max = "1h"
penalty_max_sources = 100
penalty_overflow = "deny-all"
penalty_exempt = ["192.0.2.10", "198.51.100.0/24", "2001:db8:1::/48", "::ffff:192.0.2.11"]`)
	if err != nil {
		t.Fatal(err)
	}
	s = cfg.Server
	wantExempt := []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("192.0.2.11/32")}
	if s.MaxUnauthenticatedPerSource != 3 || s.EarlyDropStart != 50 || s.EarlyDropRate != 0 ||
		s.PenaltyNoAuth.Duration != 0 || s.PenaltyAuthFail.Duration != time.Minute || s.PenaltyTimeout.Duration != 30*time.Second ||
		s.PenaltyMin.Duration != 0 || s.PenaltyMax.Duration != time.Hour || s.PenaltyMaxSources != 100 ||
		s.PenaltyOverflow != OverflowDenyAll || !reflect.DeepEqual(s.PenaltyExempt, wantExempt) {
		t.Errorf("values not taken: %+v", s)
	}

	// The [server] header is on line 14, the first key on line 15.
	for _, c := range []struct {
		name, server string
		want         []want
	}{
		{"per source above the pool", "max_unauthenticated = 4\nmax_unauthenticated_per_source = 5",
			[]want{{16, "server.max_unauthenticated_per_source", "5 is above max_unauthenticated (4)"}}},
		{"per source zero", "max_unauthenticated_per_source = 0",
			[]want{{15, "server.max_unauthenticated_per_source", "0 is out of range 1..100000"}}},
		{"early drop above the pool", "max_unauthenticated = 4\nearly_drop_start = 5",
			[]want{{16, "server.early_drop_start", "5 is above max_unauthenticated (4)"}}},
		{"rate above 100", "early_drop_rate = 101",
			[]want{{15, "server.early_drop_rate", "101 is out of range 0..100"}}},
		{"penalty not a duration", `penalty_noauth = 5`,
			[]want{{15, "server.penalty_noauth", "must be a duration"}}},
		{"penalty too long", `penalty_authfail = "2h"`,
			[]want{{15, "server.penalty_authfail", `"2h" is out of range 1s..1h, or "0" for off`}}},
		{"min not below max", "penalty_min = \"10m\"",
			[]want{{15, "server.penalty_min", "is not below penalty_max"}}},
		{"max not above min", "penalty_max = \"10s\"",
			[]want{{15, "server.penalty_max", "is not above penalty_min"}}},
		{"max zero", `penalty_max = "0"`,
			[]want{{15, "server.penalty_max", `"0" is out of range 1s..24h`}}},
		{"overflow", `penalty_overflow = "deny"`,
			[]want{{15, "server.penalty_overflow", `must be "permissive" or "deny-all", not "deny"`}}},
		{"max sources", `penalty_max_sources = 0`,
			[]want{{15, "server.penalty_max_sources", "0 is out of range 1..1000000"}}},
		{"exempt host bits", `penalty_exempt = ["10.1.2.3/8"]`,
			[]want{{15, "server.penalty_exempt", `"10.1.2.3/8" has bits set past its /8 mask; did you mean 10.0.0.0/8?`}}},
		{"exempt not an address", "penalty_exempt = [\n\"10.0.0.0/8\",\n\"admin.example\"]",
			[]want{{15, "server.penalty_exempt", `"admin.example" is not an IP address or network`}}},
		{"exempt bad mask", `penalty_exempt = ["192.0.2.0/33"]`,
			[]want{{15, "server.penalty_exempt", `"192.0.2.0/33" is not an IP address or network`}}},
		{"exempt zone", `penalty_exempt = ["fe80::1%eth0"]`,
			[]want{{15, "server.penalty_exempt", `"fe80::1%eth0" is not an IP address`}}},
		{"exempt mapped network", `penalty_exempt = ["::ffff:192.0.2.0/120"]`,
			[]want{{15, "server.penalty_exempt", "write IPv4 networks in IPv4 form"}}},
		{"exempt not a list", `penalty_exempt = "10.0.0.0/8"`,
			[]want{{15, "server.penalty_exempt", "must be a list of strings"}}},
		{"unknown key", `penalty_exempt_list = []`,
			[]want{{15, "server.penalty_exempt_list", `unknown key "penalty_exempt_list" in [server]`}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.server)
			checkProblems(t, err, c.want)
		})
	}
}
