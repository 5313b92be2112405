//go:build bench

package bench

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
	"github.com/latch-ssh/latch-ssh/internal/sessions/sessionstest"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

const part5 = "5. Tracked OpenSSH sessions (daemon rechecks)"

// trackedSessions measures the daemon's table of OpenSSH sessions (issue
// 16) on a made-up process table (sessionstest), with the real decision
// core and the fake Latch: the Latch calls of one recheck round with 100
// sessions of 5 users, and the heap one tracked session costs the daemon.
func trackedSessions(t *testing.T, w *world) []Row {
	const users, sessionsN, heapN = 5, 100, 10000
	accounts := map[string]string{}
	for i := range users {
		accounts[fmt.Sprintf("benchu%d", 1001+i)] = w.Pair()
	}
	core := gate.LoadCore(w.WriteConfig(t, systest.Config{Policy: `fail_mode = "closed"`, Users: accounts}), nil)
	if core.Config == nil {
		t.Fatal(core.ConfigErr)
	}
	defer core.Close()
	lookup := func(name string) (int, error) {
		var uid int
		_, err := fmt.Sscanf(name, "benchu%d", &uid)
		return uid, err
	}
	const listener = 100
	build := func(n int) (*sessionstest.Tree, []int) {
		tree := sessionstest.New()
		tree.Add(sessionstest.Proc{PID: 1, Exe: "systemd"})
		tree.Add(sessionstest.Proc{PID: listener, PPID: 1, Exe: "sshd"})
		var monitors []int
		for i := range n {
			monitors = append(monitors, tree.AddSSHLogin(1000+10*i, listener, 1001+i%users))
		}
		return tree, monitors
	}
	register := func(tk *sessions.Tracker, tree *sessionstest.Tree, monitors []int) {
		for i, m := range monitors {
			if err := tk.RegisterHook(tree.AddHook(m+9, m), fmt.Sprintf("benchu%d", 1001+i%users), "sshd", ""); err != nil {
				t.Fatal(err)
			}
			tree.Remove(m + 9)
		}
	}

	tree, monitors := build(sessionsN)
	tk := sessions.New(sessions.Options{Proc: tree, LookupUID: lookup, Self: 99})
	register(tk, tree, monitors)
	w.Latch.ResetRequests()
	tk.Recheck(context.Background(), core)
	calls := w.Latch.CountRequests(func(r latchtest.Request) bool { return strings.Contains(r.Path, "/status/") })

	tree, monitors = build(heapN)
	heap := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	tk = sessions.New(sessions.Options{Proc: tree, LookupUID: lookup, Self: 99})
	register(tk, tree, monitors)
	per := (heap() - before) / heapN
	runtime.KeepAlive(tk)

	return []Row{
		{Part: part5, Scenario: fmt.Sprintf("Latch calls per recheck round, %d sessions of %d users", sessionsN, users),
			Median: fmt.Sprint(calls), Target: fmt.Sprintf("= %d", users), Verdict: Check(calls == users)},
		{Part: part5, Scenario: fmt.Sprintf("daemon heap per tracked session (%d sessions in the table)", heapN),
			Median: Bytes(per), Target: "< 2 kB", Verdict: Check(per < 2000)},
	}
}
