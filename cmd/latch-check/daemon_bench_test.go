package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// BenchmarkHookDaemon measures what the daemon saves the PAM hook (issue
// 15): the latch-check binary, run as root as pam_exec runs it, deciding
// alone (cold: TCP and TLS handshakes, then the request) and through a
// running daemon (the daemon's warm connection: the request only), against
// the fake Latch with a simulated round trip of 20 ms. The two are
// interleaved in one run, so that the machine's noise hits both; the
// result is the ratio of the medians (direct/daemon). With the fake's RTT a
// cold call waits about 3 round trips (TCP, TLS, request), a warm one 1.
//
//	go test -run '^$' -bench HookDaemon -benchtime 20x ./cmd/latch-check
func BenchmarkHookDaemon(b *testing.B) {
	systest.Require(b)
	const rtt = 20 * time.Millisecond
	f := &fixture{
		World: systest.NewWorld(b, systest.WorldOptions{Timeout: "3s"}),
		bin:   systest.BuildBinary(b, "github.com/latch-ssh/latch-ssh/cmd/latch-check"),
	}
	acc := f.Pair()
	// Two files: the daemon serves one; the other names no running daemon.
	socket := filepath.Join(f.Dir, "run", "gate.sock")
	withDaemon := benchConfig(b, f, acc, socket)
	alone := benchConfig(b, f, acc, filepath.Join(f.Dir, "none", "gate.sock"))
	startDaemon(b, withDaemon, socket)
	f.Latch.SetRTT(rtt)
	run := func(cfg string) time.Duration {
		start := time.Now()
		if _, stderr, code := systest.Run(b, exec.Command(f.bin, "-c", cfg, "alice")); code != 0 {
			b.Fatalf("latch-check: exit %d: %s", code, stderr)
		}
		return time.Since(start)
	}
	run(withDaemon) // warms the daemon's connection
	var direct, viaDaemon []time.Duration
	b.ResetTimer()
	for range b.N {
		direct = append(direct, run(alone))
		viaDaemon = append(viaDaemon, run(withDaemon))
	}
	b.StopTimer()
	md, mv := median(direct), median(viaDaemon)
	b.ReportMetric(float64(md.Microseconds())/1000, "ms-direct")
	b.ReportMetric(float64(mv.Microseconds())/1000, "ms-daemon")
	b.ReportMetric(float64(md)/float64(mv), "direct/daemon")
}

// benchConfig writes a latch.toml mapping alice to acc, with socket as
// [daemon] socket.
func benchConfig(b *testing.B, f *fixture, acc, socket string) string {
	b.Helper()
	text := f.LatchTable() +
		fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 10000\n\n[policy]\nfail_mode = \"closed\"\n\n[users]\nalice = %q\n", socket, acc)
	p := filepath.Join(f.Dir, fmt.Sprintf("bench-%d.toml", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
