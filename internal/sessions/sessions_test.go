package sessions_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
	"github.com/latch-ssh/latch-ssh/internal/sessions/sessionstest"
	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// Pids of the made-up system: the test's listener and a shared daemon.
const (
	listenerPID = 100
	cronPID     = 101
	// selfPID stands for the daemon (not in the tree).
	selfPID = 99
)

// newTree is a made-up system with init, an sshd listener and a cron.
func newTree() *sessionstest.Tree {
	tr := sessionstest.New()
	tr.Add(sessionstest.Proc{PID: 1, Exe: "systemd"})
	tr.Add(sessionstest.Proc{PID: listenerPID, PPID: 1, Exe: "sshd"})
	tr.Add(sessionstest.Proc{PID: cronPID, PPID: 1, Exe: "cron"})
	return tr
}

// login adds an OpenSSH login of uid at base (sessionstest.AddSSHLogin).
func login(tr *sessionstest.Tree, base, uid int) int { return tr.AddSSHLogin(base, listenerPID, uid) }

// hook adds latch-check (root) under parent and returns its pid.
func hook(tr *sessionstest.Tree, pid, parent int) int32 { return tr.AddHook(pid, parent) }

func newTracker(t *testing.T, tr *sessionstest.Tree, path string, obs ...gate.RecheckObserver) (*sessions.Tracker, *systest.Buffer) {
	t.Helper()
	log := &systest.Buffer{}
	lookup := func(name string) (int, error) {
		if name == "root" {
			return 0, nil
		}
		var uid int
		if _, err := fmt.Sscanf(name, "u%d", &uid); err != nil {
			return -1, err
		}
		return uid, nil
	}
	o := sessions.Options{Proc: tr, Path: path, Log: zerolog.New(log), LookupUID: lookup, Self: selfPID}
	if len(obs) > 0 {
		o.Observer = obs[0]
	}
	return sessions.New(o), log
}

func TestRegisterHookAnchor(t *testing.T) {
	tr := newTree()
	login(tr, 1000, 1001)
	tr.Add(sessionstest.Proc{PID: 2000, PPID: 1002, UID: 1001, Exe: "su"})
	tr.Add(sessionstest.Proc{PID: 3000, PPID: 1, Exe: "pamtester"})
	tk, _ := newTracker(t, tr, "")
	for _, tc := range []struct {
		name   string
		parent int
		ok     bool
	}{
		{"sshd monitor", 1000, true},
		{"su", 2000, true},
		{"the listener", listenerPID, false},
		{"pid 1", 1, false},
		{"a shared daemon", cronPID, false},
		{"not a login program", 3000, false},
		{"sshd that is not root's (post-auth child)", 1001, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tk.RegisterHook(hook(tr, 9000+tc.parent, tc.parent), "u1001", "sshd", "")
			if (err == nil) != tc.ok {
				t.Fatalf("RegisterHook under %d: %v, want ok %v", tc.parent, err, tc.ok)
			}
		})
	}
	if got := tk.Live()[sessions.FrontEndPAM]; got != 2 {
		t.Errorf("%d PAM sessions tracked, want 2", got)
	}
	// The account and the session phase of one login are one session.
	if err := tk.RegisterHook(hook(tr, 9999, 1000), "u1001", "sshd", ""); err != nil || tk.Len() != 2 {
		t.Errorf("second registration of a login: %v, %d sessions", err, tk.Len())
	}
	// close_session forgets it.
	if n := tk.UnregisterHook(hook(tr, 9998, 1000)); n != 1 || tk.Len() != 1 {
		t.Errorf("UnregisterHook: forgot %d, %d left", n, tk.Len())
	}
}

// TestSecurityRegisterGateOwnLoginOnly: the gate's registration walks up
// from the caller's pid through the caller's uid only: a process of
// another user, a chain that does not reach an sshd (a tmux server
// started as the shell), or an sshd that is not the caller's is refused.
func TestSecurityRegisterGateOwnLoginOnly(t *testing.T) {
	tr := newTree()
	login(tr, 1000, 1001) // u1001's login; its command is 1003
	login(tr, 1100, 1002) // u1002's login
	// u1002 runs a process under u1001's shell? Impossible in reality; a
	// chain that crosses uids is refused whatever made it.
	tr.Add(sessionstest.Proc{PID: 1200, PPID: 1003, UID: 1002, Exe: "python3"})
	// A tmux server (reparented to init) running a gate.
	tr.Add(sessionstest.Proc{PID: 1300, PPID: 1, UID: 1001, Exe: "tmux"})
	tr.Add(sessionstest.Proc{PID: 1301, PPID: 1300, UID: 1001, Exe: "latch-ssh"})
	tk, _ := newTracker(t, tr, "")
	for _, tc := range []struct {
		name string
		pid  int
		uid  uint32
		ok   bool
	}{
		{"own login", 1003, 1001, true},
		{"own login, another user's", 1103, 1002, true},
		{"another uid claims the pid", 1003, 1002, false},
		{"a chain through another uid", 1200, 1002, false},
		{"not under sshd", 1301, 1001, false},
		{"pid 1", 1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tk.RegisterGate(int32(tc.pid), tc.uid, fmt.Sprintf("u%d", tc.uid), "sshd", "")
			if (err == nil) != tc.ok {
				t.Fatalf("RegisterGate(%d, uid %d): %v, want ok %v", tc.pid, tc.uid, err, tc.ok)
			}
		})
	}
	for _, s := range tk.List() {
		if s.Anchor.PID != 1000 && s.Anchor.PID != 1100 {
			t.Errorf("session anchored at %d", s.Anchor.PID)
		}
		if (s.Anchor.PID == 1000) != (s.User == "u1001") {
			t.Errorf("session of %s anchored at %d", s.User, s.Anchor.PID)
		}
	}
}

// world is the fake Latch with a configuration of users u1001..u1005 and
// a core loaded from it.
type world struct {
	*systest.World
	accounts map[string]string
	core     *gate.Core
}

func newWorld(t *testing.T, policy string, n int) *world {
	w := &world{World: systest.NewWorld(t, systest.WorldOptions{}), accounts: map[string]string{}}
	for i := 1; i <= n; i++ {
		w.accounts[fmt.Sprintf("u%d", 1000+i)] = w.Pair()
	}
	path := w.WriteConfig(t, systest.Config{Policy: `fail_mode = "closed"` + "\n" + policy, Users: w.accounts})
	w.core = gate.LoadCore(path, nil)
	if w.core.Config == nil {
		t.Fatal(w.core.ConfigErr)
	}
	t.Cleanup(w.core.Close)
	return w
}

func statusCalls(w *world) int {
	return w.Latch.CountRequests(func(r latchtest.Request) bool { return strings.Contains(r.Path, "/status/") })
}

// TestRecheckOneCallPerUser: 100 sessions of 5 users cost 5 Latch calls a
// round; a closed latch ends that user's sessions (SIGTERM to each
// anchor, SIGHUP to the rest) and nobody else's.
func TestRecheckOneCallPerUser(t *testing.T) {
	w := newWorld(t, "", 5)
	tr := newTree()
	obs := &observer{rechecked: map[string]int{}, ended: map[string]int{}}
	tk, _ := newTracker(t, tr, "", obs)
	for i := range 100 {
		uid := 1001 + i%5
		base := 10000 + 10*i
		login(tr, base, uid)
		if err := tk.RegisterHook(hook(tr, base+9, base), fmt.Sprintf("u%d", uid), "sshd", ""); err != nil {
			t.Fatal(err)
		}
		tr.Remove(base + 9)
	}
	w.Latch.ResetRequests()
	tk.Recheck(context.Background(), w.core)
	if n := statusCalls(w); n != 5 {
		t.Fatalf("%d Latch calls for 100 sessions of 5 users, want 5", n)
	}
	if len(tr.Sent()) != 0 || tk.Len() != 100 {
		t.Fatalf("open latches: %d signals, %d sessions", len(tr.Sent()), tk.Len())
	}

	w.SetLatch(w.accounts["u1003"], false)
	tk.Recheck(context.Background(), w.core)
	if tk.Len() != 80 {
		t.Fatalf("%d sessions left, want 80", tk.Len())
	}
	terms := 0
	for _, s := range tr.Sent() {
		base := s.ID.PID - s.ID.PID%10
		if (base-10000)/10%5 != 2 {
			t.Fatalf("signal %v to pid %d, not u1003's", s.Sig, s.ID.PID)
		}
		if s.Sig == syscall.SIGTERM {
			if s.ID.PID != base {
				t.Errorf("SIGTERM to %d, not an anchor", s.ID.PID)
			}
			terms++
		}
	}
	if terms != 20 {
		t.Errorf("%d anchors got SIGTERM, want 20", terms)
	}
	// The metrics hook: 100 kept then 80 kept and 20 ended, 20 ended
	// sessions, 80 live.
	obs.mu.Lock()
	if obs.rechecked["pam/kept"] != 180 || obs.rechecked["pam/ended"] != 20 || obs.ended["pam"] != 20 {
		t.Errorf("observer saw %v and %v", obs.rechecked, obs.ended)
	}
	obs.mu.Unlock()
	if live := tk.Live(); live[sessions.FrontEndPAM] != 80 || live[sessions.FrontEndForceCommand] != 0 {
		t.Errorf("Live() = %v", live)
	}
	if tr.Alive(listenerPID) != true || !tr.Alive(1) {
		t.Error("the listener or init was signalled")
	}
}

// observer counts what a gate.RecheckObserver is told.
type observer struct {
	mu               sync.Mutex
	rechecked, ended map[string]int
}

func (o *observer) Rechecked(frontEnd, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rechecked[frontEnd+"/"+result]++
}

func (o *observer) Ended(frontEnd string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended[frontEnd] += n
}

// TestRecheckErrorKeeps: Latch unreachable: sessions kept, logged, in
// fail_mode "open" too.
func TestRecheckErrorKeeps(t *testing.T) {
	for _, mode := range []string{"", `end = "user"`} {
		w := newWorld(t, mode, 1)
		tr := newTree()
		tk, log := newTracker(t, tr, "")
		login(tr, 1000, 1001)
		if err := tk.RegisterHook(hook(tr, 1009, 1000), "u1001", "sshd", ""); err != nil {
			t.Fatal(err)
		}
		w.Latch.SetFault("", latchtest.Fault{HTTPStatus: 503})
		tk.Recheck(context.Background(), w.core)
		if len(tr.Sent()) != 0 || tk.Len() != 1 {
			t.Fatalf("%d signals, %d sessions after a failed recheck", len(tr.Sent()), tk.Len())
		}
		if !strings.Contains(log.String(), "recheck failed; sessions kept") {
			t.Errorf("log %s", log.String())
		}
		if r := tk.List()[0].LastResult; !strings.HasPrefix(r, "error: ") {
			t.Errorf("last result %q", r)
		}
	}
}

// TestSecurityStateFileReusedPID: a session read back from the state file
// whose anchor pid now belongs to another process (another start time) is
// forgotten, and never signalled.
func TestSecurityStateFileReusedPID(t *testing.T) {
	w := newWorld(t, "", 2)
	path := filepath.Join(t.TempDir(), "sessions.json")
	tr := newTree()
	tk, _ := newTracker(t, tr, path)
	login(tr, 1000, 1001)
	login(tr, 1100, 1002)
	for _, a := range []int{1000, 1100} {
		if err := tk.RegisterHook(hook(tr, a+9, a), fmt.Sprintf("u%d", 1001+(a-1000)/100), "sshd", ""); err != nil {
			t.Fatal(err)
		}
	}
	// The daemon restarts; meanwhile u1002's login ended and its pid went
	// to another process (another start time).
	tr.Remove(1100)
	tr.Add(sessionstest.Proc{PID: 1100, PPID: listenerPID, Exe: "sshd", Start: 99999})
	tk2, log := newTracker(t, tr, path)
	if tk2.Len() != 1 || tk2.List()[0].User != "u1001" {
		t.Fatalf("after restart: %+v\n%s", tk2.List(), log)
	}
	w.SetLatch(w.accounts["u1001"], false)
	w.SetLatch(w.accounts["u1002"], false)
	tk2.Recheck(context.Background(), w.core)
	for _, s := range tr.Sent() {
		if s.ID.PID == 1100 {
			t.Fatalf("the reused pid 1100 got %v", s.Sig)
		}
	}
	if tr.Alive(1000) {
		t.Error("u1001's session, read back from the file, was not ended")
	}
}

// TestEndUserNeverRoot: end = "user" for root falls back to the session.
func TestEndUserNeverRoot(t *testing.T) {
	w := newWorld(t, `end = "user"`, 0)
	acc := w.Pair()
	path := w.WriteConfig(t, systest.Config{Policy: "fail_mode = \"closed\"\nend = \"user\"", Users: map[string]string{"root": acc}})
	core := gate.LoadCore(path, nil)
	defer core.Close()
	tr := newTree()
	tk, log := newTracker(t, tr, "")
	login(tr, 1000, 0)
	if err := tk.RegisterHook(hook(tr, 1009, 1000), "root", "sshd", ""); err != nil {
		t.Fatal(err)
	}
	w.SetLatch(acc, false)
	tk.Recheck(context.Background(), core)
	if !tr.Alive(cronPID) || !tr.Alive(listenerPID) {
		t.Fatal(`end = "user" for root ended root's other processes`)
	}
	if tr.Alive(1000) {
		t.Error("root's session was not ended")
	}
	if !strings.Contains(log.String(), "never every process of root") {
		t.Errorf("log %s", log.String())
	}
}
