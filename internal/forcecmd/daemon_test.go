package forcecmd

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// latchFixture is a systest.World (the fake Latch, a directory for
// configurations that pass the permission checks) with one paired account.
// It needs root (the directory lives in /var/lib).
type latchFixture struct {
	*systest.World
	acc string
}

func newLatchFixture(t *testing.T) *latchFixture {
	t.Helper()
	w := systest.NewWorld(t, systest.WorldOptions{})
	return &latchFixture{World: w, acc: w.Pair()}
}

// config writes a latch.toml (0600) mapping each of users to the paired
// account, with the [policy] lines given, and returns its path.
func (f *latchFixture) config(t *testing.T, policy string, users ...string) string {
	t.Helper()
	return f.WriteConfig(t, systest.Config{Policy: policy, Users: systest.UsersFor(f.acc, users...)})
}

// recorder is a gate.Auditor that keeps every decision.
type recorder struct {
	mu  sync.Mutex
	log []record
}

type record struct {
	req gate.Request
	d   gate.Decision
}

func (r *recorder) Record(req gate.Request, d gate.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, record{req, d})
}

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.log...)
}

// notifyLatch tells the test when the decision core calls Latch, so the
// test can act "mid-decision" without sleeping.
type notifyLatch struct {
	gate.LatchAPI
	calls chan<- struct{}
}

func (n notifyLatch) Status(ctx context.Context, r latch.StatusRequest) (latch.Status, error) {
	select {
	case n.calls <- struct{}{}:
	default:
	}
	return n.LatchAPI.Status(ctx, r)
}

// daemon is the gate socket served in-process, as `latch-ssh serve` does,
// with a decision core the test can swap.
type daemon struct {
	sock  string
	core  atomic.Pointer[gate.Core]
	audit recorder
	// calls receives a value each time the core calls Latch.
	calls  chan struct{}
	lookup func(uint32) (string, error)
	stop   func()
	// owner is the test that started the daemon: what start and useConfig
	// set up lasts until it ends, even when a subtest calls them.
	owner testing.TB
}

// startDaemon serves the gate socket at sock (its directory must be owned
// by this process's user and not writable by others). lookup overrides
// the NSS uid -> name lookup (nil: NSS).
func startDaemon(t *testing.T, sock string, lookup func(uint32) (string, error)) *daemon {
	t.Helper()
	d := &daemon{sock: sock, calls: make(chan struct{}, 1), lookup: lookup, owner: t}
	d.start(t)
	return d
}

// start (re)starts serving after stop.
func (d *daemon) start(t *testing.T) {
	t.Helper()
	ln, err := gatesocket.ListenSocket(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &gatesocket.SocketServer{Core: d.core.Load, LookupUser: d.lookup, Logf: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("gate socket: %v", err)
		}
	}()
	var once sync.Once
	d.stop = func() { once.Do(func() { cancel(); <-served }) }
	d.owner.Cleanup(d.stop)
}

// useConfig makes the daemon decide with the configuration at path.
func (d *daemon) useConfig(t *testing.T, path string) {
	t.Helper()
	core := gate.LoadCore(path, &d.audit)
	if core.Config == nil {
		t.Fatalf("config %s: %v", path, core.ConfigErr)
	}
	d.owner.Cleanup(core.Close)
	core.Latch = notifyLatch{core.Latch, d.calls}
	d.core.Store(core)
}

// waitCall waits until the core has called Latch.
func (d *daemon) waitCall(t *testing.T) {
	t.Helper()
	select {
	case <-d.calls:
	case <-time.After(15 * time.Second):
		t.Fatal("the daemon never called Latch")
	}
}

// drainCalls forgets earlier Latch calls.
func (d *daemon) drainCalls() {
	for {
		select {
		case <-d.calls:
		default:
			return
		}
	}
}

// faultHang makes the fake Latch answer no request for the account until
// the test clears its faults. Not only the next one: a request of an
// earlier subtest, still hanging when its faults were cleared, can be
// retried by the HTTP client and would use up a one-time fault, and the
// login the test means to hold would then be answered at once (with
// fail_mode = "open", allowed before the test's signal: a flaky failure
// under load).
func faultHang() latchtest.Fault { return latchtest.Fault{Hang: true} }
