package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A fail-open is the one allow that an error earns, and an error is what a
// local user can cause by stopping the hook: under su (setuid root) pam_exec
// without `seteuid` runs latch-check with the caller's real uid, so the
// caller may SIGSTOP it; at a terminal, Ctrl-Z sends SIGTSTP to the whole
// foreground process group, the hook included, and the shell's `fg` sends
// SIGCONT, which the kernel allows within a session whatever the uids. A
// hook stopped past its Latch deadline wakes up to a timeout, and
// fail_mode = "open" turns that into an allow: su into an account whose
// latch is closed. A stop cannot forge a Latch "on", so only the fail-open
// is at risk, and tamperWatch is asked (gate.Core.FailOpenGuard) before
// one applies. The layers:
//
//   - SIGTSTP, SIGTTIN and SIGTTOU are ignored: the terminal cannot stop
//     the hook (SIGSTOP cannot be ignored, but needs the right to signal us);
//   - any SIGCONT since the hook started means it was stopped (or someone
//     wants it to look so): no fail-open;
//   - a tracer (TracerPid in /proc/self/status): no fail-open;
//   - more time gone than the deadline allows (plus slack for the config
//     and NSS): something held the hook back (a stop whose SIGCONT we did
//     not see, a debugger): no fail-open;
//   - a real uid other than root: the hook was run without `seteuid` by a
//     setuid program for an ordinary user, who can stop it at will: no
//     fail-open, and the log says to add seteuid;
//   - a start the caller slowed down or starved: su and sudo pass the
//     caller's nice value, scheduling policy and resource limits on to
//     their children, so `nice -n 19`, `chrt --idle 0` or `ulimit -Hn 8`
//     before su can make the Latch call time out or fail to open a socket.
//     A hook that started niced, under SCHED_IDLE or SCHED_BATCH, or with
//     fewer than minFiles file descriptors, does not fail open;
//   - the same slowing through a cgroup: a CPU quota above the hook that
//     has throttled it (cpuquota.go): no fail-open.
//
// Each refusal is a deny logged at error level with its reason.
type tamperWatch struct {
	start time.Time
	cont  chan os.Signal
	ruid  int
	// handicap is why the process started slowed down or starved ("" if
	// it did not), found at start by startHandicap.
	handicap string
	// status reads /proc/self/status; now is time.Now. Tests replace them.
	status func() ([]byte, error)
	now    func() time.Time
	// throttled says why a CPU quota makes a timeout untrustworthy ("" if
	// none): cgroupFS.cpuThrottled; nil skips the check (tests).
	throttled func() string
}

// deadlineSlack is how much longer than the Latch timeout a decision may
// take before a fail-open is no longer trusted: loading the config, NSS
// lookups, a busy machine.
const deadlineSlack = 2 * time.Second

// contGrace is how long the guard waits for a SIGCONT that is on its way:
// the runtime hands signals to channels from its own goroutine, which may
// run after the decision's. A fail-open has already waited a whole
// deadline; this is a small addition.
const contGrace = 100 * time.Millisecond

// newTamperWatch installs the signal handling described above. Call it
// first thing in main.
func newTamperWatch() *tamperWatch {
	signal.Ignore(syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
	w := &tamperWatch{start: time.Now(), cont: make(chan os.Signal, 1), ruid: os.Getuid(),
		status: func() ([]byte, error) { return os.ReadFile("/proc/self/status") }, now: time.Now,
		throttled: osCgroupFS().cpuThrottled}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		lim.Cur = 0
	}
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		stat = nil
	}
	w.handicap = startHandicap(stat, lim.Cur)
	signal.Notify(w.cont, syscall.SIGCONT)
	return w
}

// guard implements gate.Core.FailOpenGuard.
func (w *tamperWatch) guard(timeout time.Duration) (why, fix string) {
	t := time.NewTimer(contGrace)
	defer t.Stop()
	select {
	case <-w.cont:
		return "the hook was stopped and continued (SIGCONT) during the decision, so its deadline ran out for someone's convenience", ""
	case <-t.C:
	}
	if w.ruid != 0 {
		return fmt.Sprintf("latch-check runs with real uid %d, who may stop it to make Latch time out", w.ruid),
			"add seteuid to the pam_exec line of this PAM service: `account required pam_exec.so quiet seteuid /usr/sbin/latch-check`"
	}
	if pid, err := tracerPid(w.status); err != nil || pid != 0 {
		if err != nil {
			return "cannot tell whether the hook is traced: " + err.Error(), ""
		}
		return fmt.Sprintf("the hook is traced by pid %d", pid), ""
	}
	if w.handicap != "" {
		return w.handicap, ""
	}
	if w.throttled != nil {
		if why := w.throttled(); why != "" {
			return why, ""
		}
	}
	if took := w.now().Sub(w.start); took > timeout+deadlineSlack {
		return fmt.Sprintf("the decision took %v against a Latch deadline of %v: the hook was held back", took.Round(time.Millisecond), timeout), ""
	}
	return "", ""
}

// tracerPid reads TracerPid from /proc/self/status.
func tracerPid(read func() ([]byte, error)) (int, error) {
	data, err := read()
	if err != nil {
		return 0, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "TracerPid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status: bad TracerPid %q", strings.TrimSpace(v))
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no TracerPid")
}

// minFiles is the fewest file descriptors a trustworthy Latch call has:
// the config, the runtime's poller, a socket, syslog. The Go runtime raises
// the soft limit to the hard one at start, so only a low hard limit (which
// an ordinary caller may set and su passes on) stays below it.
const minFiles = 64

// Scheduling policies of /proc/self/stat that starve a process under load.
const (
	schedBatch = 3
	schedIdle  = 5
)

// startHandicap says why a process whose /proc/self/stat is stat and whose
// file descriptor limit is nofile cannot trust a timeout: started niced
// (nice > 0), under SCHED_BATCH or SCHED_IDLE, or with fewer than minFiles
// file descriptors. "" when none; an unreadable stat is a handicap too.
func startHandicap(stat []byte, nofile uint64) string {
	if nofile < minFiles {
		return fmt.Sprintf("the hook started with a limit of %d open files, which makes the Latch call fail", nofile)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after the last ')' start with field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "cannot read /proc/self/stat"
	}
	f := strings.Fields(string(stat[i+1:]))
	// Field 19 is nice, field 41 the scheduling policy.
	if len(f) < 41-2 {
		return "cannot read /proc/self/stat"
	}
	nice, err1 := strconv.Atoi(f[19-3])
	policy, err2 := strconv.Atoi(f[41-3])
	switch {
	case err1 != nil || err2 != nil:
		return "cannot read /proc/self/stat"
	case nice > 0:
		return fmt.Sprintf("the hook started with nice %d, which can starve the Latch call past its deadline", nice)
	case policy == schedBatch || policy == schedIdle:
		return "the hook started under the SCHED_BATCH or SCHED_IDLE policy, which can starve the Latch call past its deadline"
	}
	return ""
}
