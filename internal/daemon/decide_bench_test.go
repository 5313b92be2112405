package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// BenchmarkAskDecision drives the ForceCommand gate's warm path (issue 15:
// "the warm path costs one round trip and nothing else measurable"): a
// real daemon (Run, its audit log going to a file as under journald), the
// strict fake Latch on loopback with an injected round-trip time, and
// gatesocket.AskDecision from this process (root, mapped in [users], with
// extra [users] names so that the uid rule's lookups are there too) in a
// loop. It reports overhead-us/op, the time per decision above the
// injected RTT: what is not the round trip. Profile it with
//
//	go test -run '^$' -bench AskDecision -cpuprofile /tmp/cpu.out ./internal/daemon
func BenchmarkAskDecision(b *testing.B) {
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			socket, _ := startBenchDaemon(b, rtt)
			ctx := context.Background()
			req := gatesocket.SocketRequest{Service: gatesocket.ForceCommandService}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				resp, err := gatesocket.AskDecision(ctx, socket, req, nil)
				if err != nil || resp.Outcome != "allow" {
					b.Fatalf("AskDecision: %+v, %v", resp, err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64((per - rtt).Microseconds()), "overhead-us/op")
		})
	}
}

// BenchmarkAskForUser is the same for the PAM hook's question to the
// daemon (OpDecideFor), without the hook's process start.
func BenchmarkAskForUser(b *testing.B) {
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%v", rtt), func(b *testing.B) {
			socket, cfg := startBenchDaemon(b, rtt)
			ctx := context.Background()
			req := gatesocket.SocketRequest{User: "root", Service: "sshd", Config: cfg}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				a, err := gatesocket.AskForUser(ctx, socket, req, time.Second)
				if err != nil || !a.Allowed {
					b.Fatalf("AskForUser: %+v, %v", a, err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64((per - rtt).Microseconds()), "overhead-us/op")
		})
	}
}

// startBenchDaemon runs a daemon whose [users] maps root and a few more
// local accounts (so a decision looks up several names, as on a server
// with many people), and returns its socket and configuration file.
func startBenchDaemon(b *testing.B, rtt time.Duration) (socket, cfgPath string) {
	b.Helper()
	systest.Require(b)
	b.Setenv("NOTIFY_SOCKET", "")
	w := systest.NewWorld(b, systest.WorldOptions{Timeout: "5s", Fake: nil})
	w.Latch.SetRTT(rtt)
	acc := w.Pair()
	m := map[string]string{"root": acc}
	// Accounts every Debian system has: each is looked up per decision.
	for _, name := range []string{"daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "nobody"} {
		m[name] = w.Pair()
	}
	socket = filepath.Join(w.Dir, "run", "gate.sock")
	cfgPath = w.WriteConfig(b, systest.Config{
		Policy: "fail_mode = \"closed\"\n",
		Tables: fmt.Sprintf("[daemon]\nsocket = %q\nrate_limit = 10000\n", socket),
		Users:  m,
	})
	logFile, err := os.CreateTemp(b.TempDir(), "log")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logFile.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{ConfigPath: cfgPath, Log: logFile, NoWatch: true}) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	systest.WaitFor(b, "the gate socket", 10*time.Second, func() bool {
		c, err := net.Dial("unix", socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return socket, cfgPath
}

// BenchmarkCoreDecide is the decision core alone (no socket), with the
// daemon's configuration and audit log: what AskDecision costs beyond it
// is the socket's. "nss=memo" is the Core the daemon builds (LoadCore:
// [users] names looked up once per gate.AccountMemoTTL), "nss=each" the
// same Core looking every [users] name up on every decision (Accounts
// set, which turns the memo off), as before issue 15; run with -count to
// interleave them.
func BenchmarkCoreDecide(b *testing.B) {
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		for _, memo := range []bool{false, true} {
			name := fmt.Sprintf("rtt=%v/nss=each", rtt)
			if memo {
				name = fmt.Sprintf("rtt=%v/nss=memo", rtt)
			}
			b.Run(name, func(b *testing.B) {
				_, cfg := startBenchDaemon(b, rtt)
				logFile, err := os.CreateTemp(b.TempDir(), "log")
				if err != nil {
					b.Fatal(err)
				}
				defer logFile.Close()
				core := gate.LoadCore(cfg, gate.NewWriterAudit(logFile))
				defer core.Close()
				if core.Config == nil {
					b.Fatal(core.ConfigErr)
				}
				if !memo {
					core.Accounts = gate.NSSAccounts{}
				}
				ctx := context.Background()
				req := gate.Request{User: "root", Service: gatesocket.ForceCommandService}
				b.ResetTimer()
				start := time.Now()
				for b.Loop() {
					if d := core.Decide(ctx, req); !d.Allowed() {
						b.Fatalf("Decide: %+v", d)
					}
				}
				per := time.Since(start) / time.Duration(b.N)
				b.ReportMetric(float64((per - rtt).Microseconds()), "overhead-us/op")
			})
		}
	}
}
