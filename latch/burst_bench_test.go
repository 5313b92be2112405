package latch_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// BenchmarkStatusBurst measures a burst of logins as the embedded server
// makes it (issue 15): burstCalls status calls at once, shared by
// burstAccounts paired accounts, against the fake with an injected
// round-trip time. Every variant runs in the same process, so compare
// their ratios, not their times:
//
//   - rtt/call-p50, rtt/call-p95: a call's latency in round trips (the
//     floor is 1: a warm connection and one request);
//   - latch-req/call: requests the fake received per call;
//   - conns/burst: connections (TCP + TLS handshakes) the fake accepted
//     per burst.
//
// "before" is the client before issue 15 (HTTP/1.1, 16 idle connections,
// every call its own request); the others add one change at a time, and
// "default" is NewClient. One burst is one op; a warm-up burst is not
// counted.
//
//	go test ./latch -run '^$' -bench StatusBurst -benchtime 10x
func BenchmarkStatusBurst(b *testing.B) {
	const (
		rtt           = 20 * time.Millisecond
		burstCalls    = 200
		burstAccounts = 4
	)
	for _, v := range []struct {
		name string
		o    latch.Options
		h2   bool // the fake offers HTTP/2
	}{
		{"before", latch.Options{HTTP1Only: true, NoCoalesce: true, MaxIdle: 16}, true},
		{"pool", latch.Options{HTTP1Only: true, NoCoalesce: true}, true},
		{"pool+h2", latch.Options{NoCoalesce: true}, true},
		{"pool+coalesce (Latch without h2)", latch.Options{}, false},
		{"default", latch.Options{}, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			srv, c := burstSetup(b, v.o, latchtest.WithRTT(rtt), latchtest.WithHTTP2(v.h2))
			accounts := make([]string, burstAccounts)
			for i := range accounts {
				accounts[i] = srv.PairedAccount(appID)
			}
			var lat []time.Duration
			burst := func() {
				out := make([]time.Duration, burstCalls)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range burstCalls {
					wg.Go(func() {
						<-start
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						t0 := time.Now()
						if _, err := c.Status(ctx, latch.StatusRequest{AccountID: accounts[i%burstAccounts]}); err != nil {
							b.Error(err)
						}
						out[i] = time.Since(t0)
					})
				}
				close(start)
				wg.Wait()
				lat = append(lat, out...)
			}
			burst() // warm-up: the first connections
			lat = lat[:0]
			srv.ResetRequests()
			conns0 := srv.Connections()
			bursts := 0
			for b.Loop() {
				burst()
				bursts++
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))]) / float64(rtt)
			}
			b.ReportMetric(pct(0.50), "rtt/call-p50")
			b.ReportMetric(pct(0.95), "rtt/call-p95")
			b.ReportMetric(float64(len(srv.Requests()))/float64(len(lat)), "latch-req/call")
			b.ReportMetric(float64(srv.Connections()-conns0)/float64(bursts), "conns/burst")
		})
	}
}
