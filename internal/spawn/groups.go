package spawn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/procfs"
)

// Groups keeps track of every process a session starts, so that ending a
// session (a closed latch, the server stopping) can end all of them, and
// not only the process group that the session's shell leads.
//
// Two mechanisms, chosen once by NewGroups:
//
//   - cgroup (the robust one): each session gets its own cgroup v2 group,
//     and its first process is created inside it (clone3 with
//     CLONE_INTO_CGROUP, so there is no moment when it, or a child, is
//     outside). Nothing a process does takes it out of its cgroup without
//     write access to another group's cgroup.procs, which a user does not
//     have: setsid, double forks, nohup, daemon(3), tmux and screen servers
//     all stay in. Ending the group is cgroup.kill (Linux 5.14), or, on
//     older kernels, SIGKILL to every pid of cgroup.procs until it is
//     empty. Nothing the session started survives.
//   - process group and session (the fallback, when cgroup v2 is not
//     mounted writable, the daemon does not run as root, the kernel is older
//     than 5.7, or Options ask for it): the members are found by scanning
//     /proc for processes whose process group or session id is the
//     session leader's pid, each checked to have started no earlier than
//     the leader, and the leader's pid checked not to belong to another
//     process now (the kernel does not reuse a pid while a process group
//     or session of that id has members, so a group found with a live
//     leader of the same start time, or with no process at that pid, is
//     ours). What survives: processes that left the session with setsid(2)
//     (daemons, tmux and screen servers, `setsid cmd`), and their children.
//
// A Group outlives its session while processes it started still run
// (nohup, tmux after logout): it stays known, with its owner, until it is
// empty, so that a later End still finds them. Groups is safe for
// concurrent use.
type Groups struct {
	// dir is this instance's cgroup directory (cgroup mechanism), "" for
	// the fallback.
	dir string
	// cgpath is dir as /proc/PID/cgroup names it.
	cgpath string
	// killFile says cgroup.kill exists.
	killFile bool
	// note says why the fallback is in use, or what NewGroups cleaned up.
	note string

	mu     sync.Mutex
	seq    uint64
	live   map[*Group]struct{}
	closed bool
}

// GroupsOptions configure NewGroups.
type GroupsOptions struct {
	// ProcessGroupsOnly forces the process-group-and-session fallback even
	// where cgroup v2 works (tests of the fallback).
	ProcessGroupsOnly bool
}

// Mechanism names.
const (
	MechanismCgroup       = "cgroup"
	MechanismProcessGroup = "process-group"
)

// NewGroups picks the mechanism (see Groups) and, for cgroups, creates this
// instance's directory under the daemon's own cgroup, after ending what
// earlier instances that died without cleaning up left there. It never
// fails: anything that keeps cgroups from working selects the fallback,
// and Note says why.
func NewGroups(o GroupsOptions) *Groups {
	gs := &Groups{live: map[*Group]struct{}{}}
	if o.ProcessGroupsOnly {
		gs.note = "process groups asked for"
		return gs
	}
	if err := gs.setupCgroup(); err != nil {
		gs.dir, gs.cgpath = "", ""
		gs.note = err.Error()
	}
	return gs
}

// Mechanism returns MechanismCgroup or MechanismProcessGroup.
func (gs *Groups) Mechanism() string {
	if gs.dir != "" {
		return MechanismCgroup
	}
	return MechanismProcessGroup
}

// Dir returns the cgroup directory holding the sessions' groups, "" with
// the fallback.
func (gs *Groups) Dir() string { return gs.dir }

// Note says why the fallback is in use, or what NewGroups cleaned up; ""
// when there is nothing to say.
func (gs *Groups) Note() string { return gs.note }

// instancePrefix starts the name of each instance's cgroup directory:
// latch-ssh.PID.RANDOM.
const instancePrefix = "latch-ssh."

func (gs *Groups) setupCgroup() error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	if !kernelAtLeast(5, 7) {
		return errors.New("kernel older than 5.7 (no clone3 CLONE_INTO_CGROUP)")
	}
	own, err := ownCgroup()
	if err != nil {
		return err
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	parent, err := cgroupDir(mounts, own)
	if err != nil {
		return err
	}
	note := sweepDeadInstances(parent)
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("random name: %w", err)
	}
	name := instancePrefix + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(rnd[:])
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create a cgroup under %s: %w", parent, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		_ = os.Remove(dir)
		return fmt.Errorf("%s is not a cgroup v2 directory: %w", dir, err)
	}
	if err := probeClone(dir); err != nil {
		_ = os.Remove(dir)
		return err
	}
	_, kerr := os.Stat(filepath.Join(dir, "cgroup.kill"))
	gs.dir, gs.cgpath, gs.killFile, gs.note = dir, filepath.Join(own, name), kerr == nil, note
	return nil
}

// probeClone starts true(1) in a new cgroup below dir, the way sessions
// will start, so that a place where the directory can be made but no
// process put in it (a container's delegation rules, a seccomp filter on
// clone3) selects the fallback at start rather than failing every session.
// Without true(1) at its usual paths there is no probe.
func probeClone(dir string) error {
	var bin string
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			bin = p
			break
		}
	}
	if bin == "" {
		return nil
	}
	probe := filepath.Join(dir, "probe")
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("cannot create a cgroup under %s: %w", dir, err)
	}
	defer func() { _ = os.Remove(probe) }()
	fd, err := unix.Open(probe, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open the cgroup %s: %w", probe, err)
	}
	defer unix.Close(fd)
	cmd := &exec.Cmd{Path: bin, Args: []string{bin}, Env: []string{},
		SysProcAttr: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot start a process in a cgroup (%s): %w", probe, err)
	}
	return nil
}

// ownCgroup returns this process's cgroup v2 path from /proc/self/cgroup.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(p, "/") {
			return p, nil
		}
	}
	return "", errors.New("no cgroup v2 membership in /proc/self/cgroup")
}

// cgroupDir returns the directory of cgroup own in the first writable
// cgroup2 mount of mountinfo that contains it.
func cgroupDir(mountinfo []byte, own string) (string, error) {
	for _, m := range ParseMountinfo(mountinfo) {
		if m.FSType != "cgroup2" || !HasOption(m.Options, "rw") {
			continue
		}
		rel, ok := strings.CutPrefix(own, m.Root)
		if m.Root == "/" {
			rel, ok = own, true
		} else if ok && rel != "" && !strings.HasPrefix(rel, "/") {
			ok = false
		}
		if ok {
			return filepath.Join(m.Point, rel), nil
		}
	}
	return "", errors.New("no writable cgroup2 mount holding this process's cgroup")
}

// sweepDeadInstances ends and removes the session groups that an earlier
// instance of the daemon left under parent when it died without stopping
// (a crash, SIGKILL): their sessions are gone, so nobody could end them
// any more when a latch closes. It says what it did, for the log.
func sweepDeadInstances(parent string) string {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return ""
	}
	var swept []string
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), instancePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, ".")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidStr); err == nil {
			continue // that instance may still run
		}
		dir := filepath.Join(parent, e.Name())
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			if s.IsDir() {
				g := &Group{dir: filepath.Join(dir, s.Name()), killFile: true}
				if _, err := os.Stat(filepath.Join(g.dir, "cgroup.kill")); err != nil {
					g.killFile = false
				}
				if g.killAll(killWait) == nil {
					_ = os.Remove(g.dir)
				}
			}
		}
		if os.Remove(dir) == nil {
			swept = append(swept, e.Name())
		}
	}
	if len(swept) == 0 {
		return ""
	}
	return "ended the sessions left by earlier instances: " + strings.Join(swept, ", ")
}

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// ErrGroupsClosed is returned by New after Shutdown.
var ErrGroupsClosed = errors.New("spawn: the server is stopping: no new sessions")

// errGroupEnded is returned by Start once End has begun.
var errGroupEnded = errors.New("spawn: the session is being ended")

// New creates the group of one session of owner (a user name, for End).
func (gs *Groups) New(owner string) (*Group, error) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.closed {
		return nil, ErrGroupsClosed
	}
	gs.seq++
	g := &Group{gs: gs, owner: owner, fd: -1, killFile: gs.killFile}
	if gs.dir != "" {
		name := "s" + strconv.FormatUint(gs.seq, 10)
		g.dir, g.cgpath = filepath.Join(gs.dir, name), filepath.Join(gs.cgpath, name)
		if err := os.Mkdir(g.dir, 0o755); err != nil {
			return nil, fmt.Errorf("spawn: create the session's cgroup: %w", err)
		}
		fd, err := unix.Open(g.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			_ = os.Remove(g.dir)
			return nil, fmt.Errorf("spawn: open the session's cgroup: %w", err)
		}
		g.fd = fd
	}
	gs.live[g] = struct{}{}
	return g, nil
}

// Owners returns the owners of released groups (their session is over)
// that still have processes, after removing those that have none left.
// Groups of sessions still running are not looked at: their owner has a
// connection.
func (gs *Groups) Owners() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range gs.snapshot("") {
		g.mu.Lock()
		rel := g.released
		g.mu.Unlock()
		switch {
		case !rel:
		case !g.populated():
			g.remove()
		case !seen[g.owner]:
			seen[g.owner] = true
			out = append(out, g.owner)
		}
	}
	return out
}

// End ends every process of every group of owner (all of them with owner
// ""): SIGHUP and SIGCONT, up to grace for them to exit, then SIGKILL, and
// removes the groups. It returns once they are gone, or with an error
// naming what could not be ended within a few seconds more.
func (gs *Groups) End(owner string, grace time.Duration) error {
	groups := gs.snapshot(owner)
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.End(grace)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Shutdown refuses new groups, ends every group as End does, and removes
// this instance's cgroup directory.
func (gs *Groups) Shutdown(grace time.Duration) error {
	gs.mu.Lock()
	gs.closed = true
	gs.mu.Unlock()
	err := gs.End("", grace)
	if gs.dir != "" {
		if rerr := os.Remove(gs.dir); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("spawn: remove %s: %w", gs.dir, rerr))
		}
	}
	return err
}

func (gs *Groups) snapshot(owner string) []*Group {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	out := make([]*Group, 0, len(gs.live))
	for g := range gs.live {
		if owner == "" || g.owner == owner {
			out = append(out, g)
		}
	}
	return out
}

// Group is the set of processes one session started (see Groups).
type Group struct {
	gs    *Groups
	owner string
	// dir and cgpath are the cgroup's directory and /proc/PID/cgroup
	// name; fd is dir open until the start (-1 after, or in the fallback).
	dir, cgpath string
	fd          int
	killFile    bool

	mu sync.Mutex
	// pid and start are the session leader and its start time (clock
	// ticks after boot, field 22 of /proc/PID/stat), for the fallback.
	pid   int
	start uint64
	// ending is set by End: no process starts after it.
	ending bool
	// released is set when the session is over; the group goes once
	// empty.
	released bool
	removed  bool
}

// Start starts cmd (not yet started) in the group by calling start, which
// must start it (cmd.Start, StartPTY). At most one start per group; after
// End it refuses.
func (g *Group) Start(cmd *exec.Cmd, start func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ending || g.removed {
		return errGroupEnded
	}
	if g.pid != 0 {
		return errors.New("spawn: the session's group already has its process")
	}
	if g.fd >= 0 {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, g.fd
		defer func() {
			_ = unix.Close(g.fd)
			g.fd = -1
		}()
	}
	if err := start(); err != nil {
		return err
	}
	g.pid = cmd.Process.Pid
	// The leader cannot have been reaped yet (we are its parent and have
	// not waited), so its stat is there, if only as a zombie.
	if st, err := procfs.ReadStat(g.pid); err == nil {
		g.start = st.Start
	}
	return nil
}

// Release says the session is over: the group is removed once its
// processes are gone (at once if there are none), and until then stays
// known to Owners and End.
func (g *Group) Release() {
	g.mu.Lock()
	g.released = true
	g.mu.Unlock()
	if !g.populated() {
		g.remove()
	}
}

// End ends the group's processes (see Groups.End) and removes the group.
func (g *Group) End(grace time.Duration) error {
	g.mu.Lock()
	g.ending = true
	g.mu.Unlock()
	if grace > 0 && g.populated() {
		g.signalAll(unix.SIGHUP)
		g.signalAll(unix.SIGCONT)
		g.waitEmpty(grace)
	}
	err := g.killAll(killWait)
	if err == nil {
		g.remove()
	}
	return err
}

// killWait bounds how long a SIGKILLed group may take to empty.
const killWait = 5 * time.Second

// pollEvery is how often an emptying group is looked at again.
const pollEvery = 20 * time.Millisecond

// killAll SIGKILLs every process of the group until none is left, or
// fails after limit.
func (g *Group) killAll(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	useKill := g.dir != "" && g.killFile
	for {
		if useKill {
			if err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				useKill = false // fall back to cgroup.procs
			}
		}
		if !useKill {
			g.signalAll(unix.SIGKILL)
		}
		if g.waitEmpty(min(time.Until(deadline), 500*time.Millisecond)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spawn: processes of %s's session still running %v after SIGKILL: %v", g.owner, limit, g.members())
		}
	}
}

// waitEmpty polls until the group has no process, for at most d; it
// reports whether it is empty.
func (g *Group) waitEmpty(d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if !g.populated() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		<-t.C
	}
}

// remove forgets the group and removes its cgroup; a cgroup that still has
// processes stays (rmdir refuses), and so does the group.
func (g *Group) remove() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return
	}
	if g.dir != "" {
		if err := os.Remove(g.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return
		}
	}
	g.removed = true
	if g.fd >= 0 {
		_ = unix.Close(g.fd)
		g.fd = -1
	}
	if g.gs != nil {
		g.gs.mu.Lock()
		delete(g.gs.live, g)
		g.gs.mu.Unlock()
	}
}

// populated reports whether the group has a live (not zombie) process.
func (g *Group) populated() bool {
	if g.dir != "" {
		b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.events"))
		if err != nil {
			return false // removed
		}
		return bytes.Contains(b, []byte("populated 1"))
	}
	return len(g.members()) > 0
}

// members returns the pids of the group's live processes.
func (g *Group) members() []int {
	if g.dir != "" {
		b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
		if err != nil {
			return nil
		}
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return out
	}
	g.mu.Lock()
	leader, start := g.pid, g.start
	g.mu.Unlock()
	if leader == 0 || start == 0 {
		return nil
	}
	if st, err := procfs.ReadStat(leader); err == nil && st.Start != start {
		// The leader's pid is another process now: that is possible only
		// once the group and session were empty, so nothing is ours.
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g.isMember(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// isMember checks, now, that pid is a live process of the group.
func (g *Group) isMember(pid int) bool {
	if pid == os.Getpid() || pid <= 1 {
		return false
	}
	if g.dir != "" {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				return p == g.cgpath
			}
		}
		return false
	}
	g.mu.Lock()
	leader, start := g.pid, g.start
	g.mu.Unlock()
	st, err := procfs.ReadStat(pid)
	if err != nil || st.Dead() {
		return false
	}
	return (st.PGRP == leader || st.Session == leader) && st.Start >= start
}

// signalAll sends sig to every process of the group, each one checked to
// be a member after a pidfd was opened for it, so that a pid reused in
// between is never signalled.
func (g *Group) signalAll(sig unix.Signal) {
	for _, pid := range g.members() {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			if errors.Is(err, unix.ENOSYS) && g.isMember(pid) {
				_ = unix.Kill(pid, sig) // Linux < 5.3: no pidfd
			}
			continue
		}
		if g.isMember(pid) {
			_ = unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		_ = unix.Close(fd)
	}
}
