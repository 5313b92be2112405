package systest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DevLog is the socket where log/syslog (and glibc's syslog(3), so PAM
// modules too) deliver local messages.
const DevLog = "/dev/log"

// syslogLock serialises captures of /dev/log. It is a flock(2) on a file, not
// a package-level mutex: go test runs the test binaries of several packages at
// once, and two of them capturing /dev/log would steal each other's socket.
// flock also serialises within a process (each open is its own lock owner),
// so this is the harness's only cross-test lock and holds no Go state.
const syslogLock = "/run/latch-ssh-systest-syslog.lock"

// SyslogLine is one message received on /dev/log.
type SyslogLine struct {
	Facility int // e.g. 10 for LOG_AUTHPRIV; -1 if the message had no <PRI>
	Severity int // e.g. 4 for LOG_WARNING; -1 if the message had no <PRI>
	Tag      string
	PID      int // 0 when the sender gave none
	Message  string
	Raw      string
}

// Syslog is an active capture of /dev/log (see CaptureSyslog).
type Syslog struct {
	mu     sync.Mutex
	lines  []SyslogLine
	notify chan struct{} // closed and replaced on every new line
}

// CaptureSyslog binds a unixgram socket at /dev/log, so that everything
// logged locally during the test (log/syslog in our binaries, pam_exec'd
// hooks, PAM modules via syslog(3)) is recorded; at cleanup it puts back
// whatever was there (a real syslog daemon's socket is renamed aside, and
// restored). The socket is mode 0666: the ForceCommand gate logs as the
// logged-in user. One capture at a time machine-wide: a second caller blocks
// until the first test ends, so never call it twice in one test. If the test
// process is killed mid-capture, the real socket stays at /dev/log.systest-*.
func CaptureSyslog(t testing.TB) *Syslog {
	t.Helper()
	Require(t) // root
	lock, err := os.OpenFile(syslogLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("systest: flock %s: %v", syslogLock, err)
	}
	t.Cleanup(func() { lock.Close() }) // releases the flock; runs last

	aside := ""
	if _, err := os.Lstat(DevLog); err == nil {
		aside = fmt.Sprintf("%s.systest-%d", DevLog, os.Getpid())
		if err := os.Rename(DevLog, aside); err != nil {
			t.Fatalf("systest: move %s aside: %v", DevLog, err)
		}
	}
	restore := func() {
		os.Remove(DevLog)
		if aside != "" {
			if err := os.Rename(aside, DevLog); err != nil {
				t.Errorf("systest: restore %s from %s: %v", DevLog, aside, err)
			}
		}
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: DevLog, Net: "unixgram"})
	if err != nil {
		restore()
		t.Fatalf("systest: bind %s: %v", DevLog, err)
	}
	if err := os.Chmod(DevLog, 0o666); err != nil {
		conn.Close()
		restore()
		t.Fatalf("systest: %v", err)
	}
	s := &Syslog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n == 0 {
				continue
			}
			s.add(ParseSyslog(string(buf[:n])))
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		restore()
		if t.Failed() {
			t.Logf("syslog captured during the test:\n%s", s.String())
		}
	})
	return s
}

func (s *Syslog) add(l SyslogLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, l)
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}

// Lines returns the messages received so far, oldest first.
func (s *Syslog) Lines() []SyslogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SyslogLine(nil), s.lines...)
}

// String returns the raw messages received so far, one per line.
func (s *Syslog) String() string {
	var b strings.Builder
	for _, l := range s.Lines() {
		b.WriteString(strings.TrimRight(l.Raw, "\n") + "\n")
	}
	return b.String()
}

// WaitFor returns the first message (already received or arriving within
// timeout) for which pred is true, and fails the test, listing what was
// received, if none comes.
func (s *Syslog) WaitFor(t testing.TB, pred func(SyslogLine) bool, timeout time.Duration) SyslogLine {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		s.mu.Lock()
		lines := s.lines[seen:]
		seen = len(s.lines)
		if s.notify == nil {
			s.notify = make(chan struct{})
		}
		changed := s.notify
		s.mu.Unlock()
		for _, l := range lines {
			if pred(l) {
				return l
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("systest: no matching syslog message within %v; received:\n%s", timeout, s.String())
		}
	}
}

// ParseSyslog parses a message as local senders write it to /dev/log:
// "<PRI>Mmm dd hh:mm:ss tag[pid]: message" (Go's log/syslog and glibc omit
// the hostname locally; a "host tag[pid]:" header is accepted too). Parts it
// cannot find are left empty; Raw always holds the input.
func ParseSyslog(raw string) SyslogLine {
	l := SyslogLine{Raw: raw, Facility: -1, Severity: -1}
	rest := strings.TrimRight(raw, "\n\x00")
	if strings.HasPrefix(rest, "<") {
		if end := strings.IndexByte(rest, '>'); end > 0 {
			if pri, err := strconv.Atoi(rest[1:end]); err == nil {
				l.Facility, l.Severity = pri>>3, pri&7
				rest = rest[end+1:]
			}
		}
	}
	// time.Stamp, as both senders write it: "Jan _2 15:04:05".
	if len(rest) >= 16 && rest[15] == ' ' {
		if _, err := time.Parse(time.Stamp, rest[:15]); err == nil {
			rest = rest[16:]
		}
	}
	header, msg, ok := strings.Cut(rest, ": ")
	if !ok || strings.Count(header, " ") > 1 {
		l.Message = rest
		return l
	}
	if _, tag, hasHost := strings.Cut(header, " "); hasHost {
		header = tag
	}
	l.Tag, l.Message = header, msg
	if i := strings.IndexByte(header, '['); i >= 0 && strings.HasSuffix(header, "]") {
		l.Tag = header[:i]
		l.PID, _ = strconv.Atoi(header[i+1 : len(header)-1])
	}
	return l
}
