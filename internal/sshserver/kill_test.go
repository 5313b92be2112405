package sshserver

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// loops is what a session leaves behind: a nohup'd loop in the session's
// process group, and a loop that left the session with setsid. Each prints
// its pid.
const loops = `nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 </dev/null & echo "nohup $!"; ` +
	`setsid sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 </dev/null & echo "setsid $!"`

// endBound is the most a closed latch may take to end a session's
// processes with recheck = "1s": the interval, the notice's timeout,
// SIGHUP's grace, and the time a SIGKILLed group gets to empty (5 s in
// spawn).
const endBound = time.Second + noticeTimeout + hangupGrace + 5*time.Second

// loopPids runs loops (then tail) in a new session of client, and returns the
// pids it printed.
func loopPids(t *testing.T, client *gossh.Client, tail string) (nohup, setsid int) {
	t.Helper()
	out, errOut, code := run(t, client, loops+tail)
	if code != 0 {
		t.Fatalf("loops: exit %d: %s%s", code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(v)
		switch k {
		case "nohup":
			nohup = n
		case "setsid":
			setsid = n
		}
	}
	if nohup == 0 || setsid == 0 {
		t.Fatalf("loops printed %q", out)
	}
	waitIgnoresHUP(t, nohup)
	return nohup, setsid
}

// waitIgnoresHUP waits until nohup has made pid ignore SIGHUP and pid runs
// the loop, so that a SIGHUP cannot end it by arriving early.
func waitIgnoresHUP(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, "the nohup'd loop to ignore SIGHUP", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return false
		}
		var name string
		var ign uint64
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "Name":
				name = strings.TrimSpace(v)
			case "SigIgn":
				ign, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			}
		}
		return name == "sh" && ign&(1<<(syscall.SIGHUP-1)) != 0
	})
}

// userPids returns the pids of u's processes, but for except.
func userPids(t *testing.T, u *systest.User, except ...int) []int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-u", u.Name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil && !slices.Contains(except, n) {
			pids = append(pids, n)
		}
	}
	return pids
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// outsider starts a process of u that no session started; ending u's
// sessions must leave it alone. It is killed at cleanup.
func outsider(t *testing.T, u *systest.User) int {
	t.Helper()
	cmd := u.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// requireCgroups fails (CI) or skips when the server could not give each
// session its own cgroup.
func requireCgroups(t *testing.T, f *fixture) {
	t.Helper()
	if m := f.srv.groups.Mechanism(); m != spawn.MechanismCgroup {
		msg := "no writable cgroup v2 here (" + f.srv.groups.Note() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: refusing to skip)")
		}
		t.Skip(msg)
	}
}

// TestSecurityClosedLatchEndsEveryProcess (issue 12, item 8): with a cgroup
// per session, closing the latch ends every process the user's sessions
// started: a nohup'd loop, a setsid'd loop, a running command, and also
// what a session left running after its connection logged out; a process
// of the same user that no session started stays.
func TestSecurityClosedLatchEndsEveryProcess(t *testing.T) {
	systest.Require(t, "pgrep", "nohup", "setsid")
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	carol, carolAcc := f.user(t, systest.UserOptions{})
	f.server = `recheck = "1s"`
	f.start(t, nil)
	requireCgroups(t, f)
	if !strings.Contains(f.log.String(), `"mechanism":"cgroup"`) {
		t.Errorf("the mechanism is not logged at start:\n%s", f.log.String())
	}
	aliceOut, carolOut := outsider(t, alice), outsider(t, carol)

	// Alice: one session left its loops and ended; another still runs.
	a := f.login(t, alice)
	loopPids(t, a.client, "")
	running := newSession(t, a.client, false)
	out := &lineWaiter{want: "started\n", seen: make(chan struct{})}
	running.Stdout = out
	if err := running.Start(loops + "; echo started; exec sleep 300"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.seen:
	case <-time.After(waitLimit):
		t.Fatal("alice's running session did not start")
	}

	// Carol: leaves her loops and logs out. They keep running (as with
	// sshd), but stay hers.
	c := f.login(t, carol)
	cn, cs := loopPids(t, c.client, "")
	c.client.Close()
	waitFor(t, "carol's connection to end", func() bool { return f.srv.Users()[carol.Name] == 0 })
	if !alive(cn) || !alive(cs) {
		t.Fatalf("carol's loops died at logout (nohup %v, setsid %v)", alive(cn), alive(cs))
	}

	closed := time.Now()
	f.latch.SetLatch(aliceAcc, appID, false)
	f.latch.SetLatch(carolAcc, appID, false)
	bound := endBound
	for _, u := range []*systest.User{alice, carol} {
		waitFor(t, u.Name+"'s session processes to end", func() bool {
			return len(userPids(t, u, aliceOut, carolOut)) == 0
		})
	}
	if el := time.Since(closed); el > bound {
		t.Errorf("the processes ended %v after the latch closed, want within %v", el, bound)
	}
	if !alive(aliceOut) || !alive(carolOut) {
		t.Error("a process of the user that no session started was killed")
	}
	// Nothing is left of the sessions' cgroups.
	waitFor(t, "the session cgroups to be removed", func() bool {
		ents, err := os.ReadDir(f.srv.groups.Dir())
		if err != nil {
			return false
		}
		for _, e := range ents {
			if e.IsDir() {
				return false
			}
		}
		return true
	})
}

// TestSecurityStopEndsEveryProcess (issue 12, item 8): stopping the server
// ends every process the sessions started, setsid'd ones included, and
// removes its cgroup directory.
func TestSecurityStopEndsEveryProcess(t *testing.T) {
	systest.Require(t, "pgrep", "nohup", "setsid")
	f := newFixture(t)
	alice, _ := f.user(t, systest.UserOptions{})
	f.server = `recheck = "0"`
	f.start(t, nil)
	requireCgroups(t, f)
	a := f.login(t, alice)
	n, s := loopPids(t, a.client, "")
	f.srv.Stop("stopping")
	if alive(n) || alive(s) {
		t.Errorf("after Stop: nohup loop alive %v, setsid loop alive %v", alive(n), alive(s))
	}
	if _, err := os.Stat(f.srv.groups.Dir()); !os.IsNotExist(err) {
		t.Errorf("the server's cgroup %s is still there after Stop: %v", f.srv.groups.Dir(), err)
	}
}

// TestSecurityClosedLatchEndsProcessGroupFallback (issue 12, item 8):
// without cgroups, closing the latch still SIGKILLs what ignored SIGHUP in
// the session's process group after the session's shell is gone, and
// what a finished session left there; a process that left the session with
// setsid survives (documented), and so does one the session did not start.
func TestSecurityClosedLatchEndsProcessGroupFallback(t *testing.T) {
	systest.Require(t, "pgrep", "nohup", "setsid")
	f := newFixture(t)
	alice, aliceAcc := f.user(t, systest.UserOptions{})
	f.server = `recheck = "1s"`
	f.start(t, func(o *Options) { o.ProcessGroupsOnly = true })
	if !strings.Contains(f.log.String(), `"mechanism":"process-group"`) {
		t.Errorf("the fallback is not logged at start:\n%s", f.log.String())
	}
	out := outsider(t, alice)

	a := f.login(t, alice)
	// A session whose shell exited, leaving its loops.
	leftN, leftS := loopPids(t, a.client, "")
	// A session whose shell still runs (and dies of the SIGHUP).
	running := newSession(t, a.client, false)
	w := &lineWaiter{want: "started\n", seen: make(chan struct{})}
	running.Stdout = w
	if err := running.Start(loops + "; echo started; exec sleep 300"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.seen:
	case <-time.After(waitLimit):
		t.Fatal("alice's running session did not start")
	}
	var runN, runS int
	for _, line := range strings.Split(w.buf.String(), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch n, _ := strconv.Atoi(v); k {
		case "nohup":
			runN = n
		case "setsid":
			runS = n
		}
	}
	waitIgnoresHUP(t, runN)
	t.Cleanup(func() {
		for _, p := range []int{leftS, runS} {
			if p > 0 && alive(p) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})

	closed := time.Now()
	f.latch.SetLatch(aliceAcc, appID, false)
	waitFor(t, "the nohup'd loops to end", func() bool { return !alive(leftN) && !alive(runN) })
	if el, bound := time.Since(closed), endBound; el > bound {
		t.Errorf("the nohup'd loops ended %v after the latch closed, want within %v", el, bound)
	}
	if !alive(leftS) || !alive(runS) {
		t.Errorf("setsid'd loops: alive %v and %v; the fallback cannot reach them, so the documentation must change", alive(leftS), alive(runS))
	}
	if !alive(out) {
		t.Error("a process of the user that no session started was killed")
	}
}
