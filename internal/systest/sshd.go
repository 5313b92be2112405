package systest

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHDOptions configures StartSSHD. The zero value is a public-key-only sshd
// without PAM.
type SSHDOptions struct {
	// UsePAM turns on UsePAM, with the private service SSHD.PAMService.
	UsePAM bool
	// PAM is the content of /etc/pam.d/<PAMService>; default PAMStack().
	// Change it later with SSHD.SetPAM.
	PAM string
	// KbdInteractive turns on KbdInteractiveAuthentication.
	KbdInteractive bool
	// SFTP is the sftp Subsystem command: default Debian's
	// /usr/lib/openssh/sftp-server; "internal-sftp"; "none" for no subsystem.
	SFTP string
	// MaxStartups defaults to "100:30:200": sshd's 10:30:100 randomly drops
	// connections when tests or benchmarks connect in parallel.
	MaxStartups string
	// LogLevel defaults to DEBUG1 (the log is shown when a test fails).
	LogLevel string
	// Extra is sshd_config text (ForceCommand, Include, Match blocks...).
	// sshd keeps the first value it reads for most keywords, so the lines
	// before Extra's first Match go at the top of the file, where they win
	// over the harness defaults; the rest (from the first Match) goes at the
	// end, where Match blocks must be.
	Extra string
	// Env is added to sshd's environment (PATH only by default).
	Env []string
}

// SSHD is a running private sshd on 127.0.0.1 (see StartSSHD).
type SSHD struct {
	// Target is where clients connect (Addr, Port), with the client
	// commands (SSH, SCP, SFTP...).
	Target
	PAMService string // PAM service name sshd uses: the basename of its argv[0]
	ConfigPath string
	Dir        string // SecureDir holding the config, host key and sshd link
	// HostKeyPub is the host public key in authorized_keys format, for a
	// known_hosts line: "[127.0.0.1]:PORT " + HostKeyPub.
	HostKeyPub string

	tools Tools
	log   *logBuffer
}

// StartSSHD starts a private sshd in the foreground (-D -e, log captured in
// Log) on a free loopback port, waits until it accepts connections, and stops
// it at cleanup, logging its output if the test failed.
//
// The private PAM service: OpenSSH (portable, up to at least 9.2 as in
// Debian 12) calls pam_start with __progname, the basename of argv[0], as the
// service name. So the harness runs sshd through a symlink named
// sshd-<random> and writes /etc/pam.d/sshd-<random>: the test gets its own
// stack and the system's /etc/pam.d/sshd is never touched. The absolute path
// also satisfies sshd's re-exec, which execs argv[0] again for every
// connection. TestSSHDPrivatePAMService proves it on each run: if a newer
// OpenSSH drops the trick (9.8 moved authentication into sshd-session), that
// test fails, loudly, rather than tests silently using the system's stack.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	tools := Require(t, "sshd")
	// The privilege-separation directory, normally made by the service unit.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("systest: %v", err)
	}
	s := &SSHD{Dir: SecureDir(t), tools: tools}
	s.PAMService = randomName("sshd-", 8)
	bin := filepath.Join(s.Dir, s.PAMService)
	if err := os.Symlink(tools["sshd"], bin); err != nil {
		t.Fatalf("systest: %v", err)
	}
	hostKey := filepath.Join(s.Dir, "ssh_host_ed25519_key")
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "systest-host")
	if err != nil {
		t.Fatalf("systest: %v", err)
	}
	if err := os.WriteFile(hostKey, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("systest: %v", err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	s.HostKeyPub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if opts.UsePAM {
		if opts.PAM == "" {
			opts.PAM = PAMStack()
		}
		WritePAMService(t, s.PAMService, opts.PAM)
	}
	s.ConfigPath = filepath.Join(s.Dir, "sshd_config")

	// FreePort can race with another process; sshd then exits with "Address
	// already in use" and we try another port.
	for attempt := 1; ; attempt++ {
		s.Port = FreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		if err := os.WriteFile(s.ConfigPath, []byte(sshdConfig(s.Port, hostKey, opts)), 0o644); err != nil {
			t.Fatalf("systest: %v", err)
		}
		if stdout, stderr, code := Run(t, exec.Command(bin, "-t", "-f", s.ConfigPath)); code != 0 {
			cfg, _ := os.ReadFile(s.ConfigPath)
			t.Fatalf("systest: sshd -t rejects the config: %s%s\n%s", stdout, stderr, cfg)
		}
		if s.start(t, bin, opts.Env) {
			return s
		}
		if attempt == 3 {
			t.Fatalf("systest: sshd could not bind a free port 3 times:\n%s", s.log.String())
		}
	}
}

// start runs sshd and waits for it to listen. It returns false when sshd
// could not bind its port (the caller retries), and fails the test on any
// other error.
func (s *SSHD) start(t testing.TB, bin string, env []string) bool {
	t.Helper()
	s.log = &logBuffer{}
	cmd := exec.Command(bin, "-D", "-e", "-f", s.ConfigPath)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Its own process group, so that stopping it also ends the per-connection
	// sshd processes it forked (user sessions call setsid and are left to
	// CreateUser's cleanup).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("systest: start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			killGroup(cmd.Process.Pid)
			<-exited
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			cfg, _ := os.ReadFile(s.ConfigPath)
			t.Logf("sshd %s (PAM service %s)\n--- %s\n%s--- log\n%s", s.Addr, s.PAMService, s.ConfigPath, cfg, s.log.tail(256<<10))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		if c, err := d.DialContext(ctx, "tcp", s.Addr); err == nil {
			c.Close()
			return true
		}
		select {
		case <-tick.C:
		case <-exited:
			if strings.Contains(s.log.String(), "Address already in use") {
				return false
			}
			t.Fatalf("systest: sshd exited at start:\n%s", s.log.String())
		case <-ctx.Done():
			stop()
			t.Fatalf("systest: sshd not listening on %s after 15s:\n%s", s.Addr, s.log.String())
		}
	}
}

func sshdConfig(port int, hostKey string, o SSHDOptions) string {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	head, tail := o.Extra, ""
	lines := strings.SplitAfter(o.Extra, "\n")
	for i, line := range lines {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			head, tail = strings.Join(lines[:i], ""), strings.Join(lines[i:], "")
			break
		}
	}
	var b strings.Builder
	if head != "" {
		fmt.Fprintf(&b, "# Extra (before the defaults, so it wins)\n%s\n", head)
	}
	fmt.Fprintf(&b, `# written by latch-ssh internal/systest
Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
UsePAM %s
PasswordAuthentication no
KbdInteractiveAuthentication %s
PubkeyAuthentication yes
AuthenticationMethods any
PermitRootLogin no
StrictModes yes
AuthorizedKeysFile .ssh/authorized_keys
LogLevel %s
MaxStartups %s
PrintMotd no
UseDNS no
`, port, hostKey, yesNo(o.UsePAM), yesNo(o.KbdInteractive), def(o.LogLevel, "DEBUG1"), def(o.MaxStartups, "100:30:200"))
	if sftp := def(o.SFTP, "/usr/lib/openssh/sftp-server"); sftp != "none" {
		fmt.Fprintf(&b, "Subsystem sftp %s\n", sftp)
	}
	if tail != "" {
		fmt.Fprintf(&b, "# Extra (Match blocks)\n%s\n", tail)
	}
	return b.String()
}

// Log returns everything sshd has written so far.
func (s *SSHD) Log() string { return s.log.String() }

// WaitLog waits until sshd's log contains substr and fails the test after
// timeout. sshd logs a session's end after the client has already returned,
// so assert on those lines with WaitLog, not Log.
func (s *SSHD) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := s.log.changed()
		if strings.Contains(s.log.String(), substr) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("systest: sshd log has no %q after %v", substr, timeout)
		}
	}
}

// SetPAM replaces the PAM stack of this sshd's private service; the next
// connection uses it.
func (s *SSHD) SetPAM(t testing.TB, content string) {
	t.Helper()
	WritePAMService(t, s.PAMService, content)
}

// Remote returns "user@127.0.0.1:path", the remote operand for SCP and rsync.
func (s *Target) Remote(u *User, path string) string {
	return u.Name + "@127.0.0.1:" + path
}

// Target is an SSH server on 127.0.0.1 that the client helpers log in to:
// a StartSSHD's, or any other (the embedded server's tests build one with
// the port they listen on).
type Target struct {
	Addr string // "127.0.0.1:PORT"
	Port int
}

// clientOptions are the ssh options every client command uses: no user or
// system config, only this user's key, no host key prompts or files, no
// password prompts (BatchMode), quiet, and a bounded connect.
func clientOptions(u *User) []string {
	return []string{"-F", "/dev/null", "-i", u.KeyPath,
		"-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"}
}

// SSH returns an ssh command logging in as u; args follow the destination:
// ssh options (OpenSSH parses options after the host too, e.g. "-N", "-L",
// "-t"), then the remote command. Run it with Run, or Start it yourself.
func (s *Target) SSH(t testing.TB, u *User, args ...string) *exec.Cmd {
	t.Helper()
	ssh := Require(t, "ssh")["ssh"]
	a := append(append(clientOptions(u), "-p", strconv.Itoa(s.Port), u.Name+"@127.0.0.1"), args...)
	return exec.Command(ssh, a...)
}

// SSHOpts is SSH with extra ssh options before the harness's own: ssh keeps
// the first value of an option, so these win (e.g. "-o", "LogLevel=INFO"
// to see authentication banners, "-o", "BatchMode=no" for SSH_ASKPASS).
func (s *Target) SSHOpts(t testing.TB, u *User, opts []string, args ...string) *exec.Cmd {
	t.Helper()
	ssh := Require(t, "ssh")["ssh"]
	a := append(append(append(append([]string{}, opts...), clientOptions(u)...), "-p", strconv.Itoa(s.Port), u.Name+"@127.0.0.1"), args...)
	return exec.Command(ssh, a...)
}

// SCP returns an scp command authenticated as u; name remote files with
// s.Remote(u, path). OpenSSH 9 scp speaks the SFTP protocol (needs the sftp
// subsystem); pass "-O" for the legacy protocol, which runs `scp -t/-f` as a
// remote command (what a ForceCommand sees as SSH_ORIGINAL_COMMAND).
func (s *Target) SCP(t testing.TB, u *User, args ...string) *exec.Cmd {
	t.Helper()
	scp := Require(t, "scp")["scp"]
	a := append(append(clientOptions(u), "-P", strconv.Itoa(s.Port)), args...)
	return exec.Command(scp, a...)
}

// SFTP returns an sftp command running the batch commands in batch (sftp -b)
// as u. sftp stops at the first failing command unless it is prefixed "-".
func (s *Target) SFTP(t testing.TB, u *User, batch string) *exec.Cmd {
	t.Helper()
	sftp := Require(t, "sftp")["sftp"]
	bf := filepath.Join(t.TempDir(), "sftp-batch")
	if err := os.WriteFile(bf, []byte(batch), 0o600); err != nil {
		t.Fatalf("systest: %v", err)
	}
	a := append(clientOptions(u), "-P", strconv.Itoa(s.Port), "-b", bf, u.Name+"@127.0.0.1")
	return exec.Command(sftp, a...)
}

// RsyncSSH returns the value for rsync's -e option (remote shell) that logs
// in as u: `rsync -e "$(RsyncSSH)" src s.Remote(u, "dst")`.
func (s *Target) RsyncSSH(t testing.TB, u *User) string {
	t.Helper()
	return s.sshCommandLine(t, u)
}

// GitSSHCommand returns a value for GIT_SSH_COMMAND that logs in as u; use
// scp-like URLs without a port: GIT_SSH_COMMAND=... git clone
// s.Remote(u, "repo.git").
func (s *Target) GitSSHCommand(t testing.TB, u *User) string {
	t.Helper()
	return s.sshCommandLine(t, u)
}

// sshCommandLine is an ssh invocation as one string, quoted for both sh
// (git runs GIT_SSH_COMMAND through the shell) and rsync's -e splitting,
// which both honour single quotes.
func (s *Target) sshCommandLine(t testing.TB, u *User) string {
	t.Helper()
	words := append([]string{Require(t, "ssh")["ssh"]}, clientOptions(u)...)
	words = append(words, "-p", strconv.Itoa(s.Port))
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}

// logBuffer is a concurrency-safe, append-only buffer that lets readers wait
// for the next write (for WaitLog) instead of polling.
type logBuffer struct {
	mu     sync.Mutex
	buf    []byte
	notify chan struct{} // closed and replaced on every write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.notify != nil {
		close(b.notify)
		b.notify = nil
	}
	return len(p), nil
}

// changed returns a channel closed at the next Write.
func (b *logBuffer) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.notify == nil {
		b.notify = make(chan struct{})
	}
	return b.notify
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func (b *logBuffer) tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}
