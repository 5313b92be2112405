package sshserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	glssh "github.com/gliderlabs/ssh"
	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// session is one "session" channel: at most one shell, command or
// subsystem, run as the grant's user.
type session struct {
	c   *conn
	g   *grant
	sc  *gossh.ServerConn
	ch  gossh.Channel
	log zerolog.Logger

	mu      sync.Mutex
	pty     bool
	term    string
	modes   []byte
	rows    uint16
	cols    uint16
	env     map[string]string
	started bool
	proc    *os.Process
	ptmx    *os.File
	// group holds every process the session starts (see spawn.Groups),
	// so that ending the session ends them all.
	group *spawn.Group
	// exited is closed once the process has been waited for; after that
	// its pid may belong to someone else and is never signalled.
	exited chan struct{}
	// done is closed once the session has reported how its process ended
	// and closed its channel.
	done chan struct{}
}

// maxEnv bounds the environment requests one session keeps.
const maxEnv = 64

// hangupGrace is how long a hung-up session's processes get between
// SIGHUP and SIGKILL.
const hangupGrace = 5 * time.Second

// sessionChannel is the "session" channel handler. It replaces gliderlabs'
// (see the package comment for why).
func (s *Server) sessionChannel(_ *glssh.Server, sc *gossh.ServerConn, nc gossh.NewChannel, ctx glssh.Context) {
	c := connOf(ctx)
	g := c.grantFor(sc)
	if g == nil {
		// Authenticated without our allow: only a bug (or a gliderlabs
		// default we failed to override) gets here. Never serve it.
		s.o.Log.Error().Str("event", "invariant").Str("remote", sc.RemoteAddr().String()).
			Msg("session asked on a connection the gate did not allow; closing it")
		_ = nc.Reject(gossh.Prohibited, "not authorized")
		_ = sc.Close()
		return
	}
	ss := &session{
		c: c, g: g, sc: sc,
		log:    s.o.Log.With().Str("user", g.user).Str("remote", c.remote).Logger(),
		env:    map[string]string{},
		rows:   24,
		cols:   80,
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	if !c.addSession(ss) {
		_ = nc.Reject(gossh.ResourceShortage, "too many sessions on this connection")
		return
	}
	defer c.removeSession(ss)
	defer ss.release()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ss.mu.Lock()
	ss.ch = ch
	ss.mu.Unlock()
	ss.serve(reqs)
}

// serve answers the channel's requests until the channel closes.
func (ss *session) serve(reqs <-chan *gossh.Request) {
	for req := range reqs {
		ok := false
		var run func()
		switch req.Type {
		case "pty-req":
			ok = ss.ptyReq(req.Payload)
		case "env":
			ok = ss.envReq(req.Payload)
		case "window-change":
			ok = ss.windowChange(req.Payload)
		case "shell", "exec", "subsystem":
			ok, run = ss.start(req.Type, req.Payload)
		case "signal":
			ok = ss.signal(req.Payload)
		default:
			// x11-req, auth-agent-req@openssh.com and anything else: not
			// offered, and said so (gliderlabs says yes to agent requests
			// it cannot serve).
		}
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if run != nil {
			// After the reply: a client must learn that its command
			// started before it sees the command's output or exit status.
			go run()
		}
	}
	// The channel is gone (the client closed it, or the connection ended):
	// like a terminal hangup for whatever still runs.
	ss.hangup()
}

func (ss *session) ptyReq(payload []byte) bool {
	var p struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}
	if gossh.Unmarshal(payload, &p) != nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started || ss.pty {
		return false
	}
	if ss.g.key.Options.NoPTY {
		ss.log.Info().Str("event", "session").Msg("pty refused: no-pty (or restrict) on the authorized_keys line")
		return false
	}
	ss.pty, ss.term, ss.modes = true, p.Term, []byte(p.Modes)
	ss.rows, ss.cols = clampDim(p.Rows, 24), clampDim(p.Cols, 80)
	return true
}

func (ss *session) envReq(payload []byte) bool {
	var p struct{ Name, Value string }
	if gossh.Unmarshal(payload, &p) != nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started || len(ss.env) >= maxEnv || !spawn.AcceptEnv(p.Name, p.Value) {
		return false
	}
	ss.env[p.Name] = p.Value
	return true
}

func (ss *session) windowChange(payload []byte) bool {
	var p struct{ Cols, Rows, W, H uint32 }
	if gossh.Unmarshal(payload, &p) != nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.pty {
		return false
	}
	ss.rows, ss.cols = clampDim(p.Rows, ss.rows), clampDim(p.Cols, ss.cols)
	if ss.ptmx != nil {
		if err := spawn.Resize(ss.ptmx, ss.rows, ss.cols); err != nil {
			ss.log.Debug().Err(err).Msg("resize")
		}
	}
	return true
}

// clampDim turns a client's terminal dimension into one the kernel takes;
// 0 (unknown) keeps def.
func clampDim(v uint32, def uint16) uint16 {
	switch {
	case v == 0:
		return def
	case v > 10000:
		return 10000
	default:
		return uint16(v)
	}
}

// signals are the names RFC 4254 section 6.10 allows.
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func (ss *session) signal(payload []byte) bool {
	var p struct{ Signal string }
	if gossh.Unmarshal(payload, &p) != nil {
		return false
	}
	sig, ok := signals[p.Signal]
	if !ok {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.proc == nil {
		return false
	}
	select {
	case <-ss.exited:
		return false
	default:
	}
	return ss.proc.Signal(sig) == nil
}

// start handles shell, exec and subsystem: it starts the process and
// returns the function that serves its I/O until it ends.
func (ss *session) start(kind string, payload []byte) (bool, func()) {
	var p struct{ Value string }
	if kind != "shell" && gossh.Unmarshal(payload, &p) != nil {
		return false, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started {
		return false, nil
	}
	spec := spawn.Spec{
		Account: ss.g.acct,
		Env:     ss.env,
		PTY:     ss.pty,
		TERM:    ss.term,
	}
	spec.SSHClient, spec.SSHConnection = sshEnv(ss.sc.RemoteAddr(), ss.sc.LocalAddr())
	var warnings []string
	spec.Warn = func(msg string) { warnings = append(warnings, msg) }

	// Whatever runs, it runs as `shell -c COMMAND` (or the login shell):
	// spawn.Command has no other way. A subsystem is a command line, as in
	// sshd, so an account whose shell is nologin or git-shell gets no
	// sftp-server (issue 12, item 1).
	subsystem := ""
	switch kind {
	case "exec":
		spec.Command = p.Value
	case "subsystem":
		if p.Value != "sftp" {
			ss.log.Info().Str("event", "session").Str("subsystem", safetext.Clean(p.Value)).Msg("unknown subsystem refused")
			return false, nil
		}
		sftp, err := sftpServer(ss.c.set.SFTPServer)
		if err != nil {
			ss.log.Error().Str("event", "session").Str("error", err.Error()).Msg("sftp refused")
			return false, nil
		}
		spec.Command, subsystem = sftp, p.Value
	}
	if o := ss.g.key.Options; o.HasCommand {
		// command= on the key: it runs whatever was asked, and the request
		// (the subsystem's command line for a subsystem, as sshd puts it)
		// is in SSH_ORIGINAL_COMMAND, as with sshd.
		spec.OriginalCommand, subsystem = spec.Command, ""
		spec.Command = o.Command
		if spec.Command == "" {
			// command="" forces an empty command, which sshd runs as
			// `shell -c ''`: it does nothing and exits 0. ":" is the same
			// through spawn, which reads "" as "login shell".
			spec.Command = ":"
		}
	}
	cmd, err := spawn.Command(spec)
	if err != nil {
		ss.log.Error().Str("event", "session").Str("error", safetext.Clean(err.Error())).Msg("cannot build the session process")
		return false, nil
	}
	ev := ss.log.Info().Str("event", "session").Str("type", kind).Bool("pty", ss.pty)
	if spec.Command != "" {
		ev = ev.Str("command", safetext.Clean(truncate(spec.Command, 256)))
	}
	if subsystem != "" {
		ev = ev.Str("subsystem", subsystem)
	}
	if spec.OriginalCommand != "" {
		ev = ev.Str("forced_command", "authorized_keys line "+fmt.Sprint(ss.g.key.Line))
	}
	ev.Msg("session start")

	group, err := ss.c.s.groups.New(ss.g.user)
	if err != nil {
		ss.log.Error().Str("event", "session").Str("error", safetext.Clean(err.Error())).Msg("cannot start the session process")
		return false, nil
	}
	ss.group = group
	run, err := ss.launch(cmd, warnings)
	if err != nil {
		_ = group.End(0)
		ss.log.Error().Str("event", "session").Str("error", safetext.Clean(err.Error())).Msg("cannot start the session process")
		return false, nil
	}
	ss.started = true
	return true, run
}

// launch starts cmd on a PTY or on pipes (under ss.mu) and returns the I/O
// loop.
func (ss *session) launch(cmd *exec.Cmd, warnings []string) (func(), error) {
	if ss.pty {
		var ptmx *os.File
		err := ss.group.Start(cmd, func() (err error) {
			ptmx, err = spawn.StartPTY(cmd, ss.rows, ss.cols, ss.modes)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := ss.afterStart(cmd); err != nil {
			ptmx.Close()
			return nil, err
		}
		ss.ptmx = ptmx
		return func() { ss.runPTY(cmd, ptmx, warnings) }, nil
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = ss.group.Start(cmd, func() error { return spawn.Start(cmd) })
	// The child has its ends (or failed): ours go, so EOF and EPIPE reach
	// the right side.
	closeAll(inR, outW, errW)
	if err == nil {
		err = ss.afterStart(cmd)
	}
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, err
	}
	return func() { ss.runPipes(cmd, inW, outR, errR, warnings) }, nil
}

// afterStart checks the invariants that the process runs as the user and
// holds no descriptor of the server's besides the 0, 1, 2 it was given
// (issue 12, item 12), and kills it if not.
func (ss *session) afterStart(cmd *exec.Cmd) error {
	ss.proc = cmd.Process
	what := "it holds the server's descriptors"
	err := spawn.AssertNoInheritedFDs(cmd.Process.Pid)
	if err == nil && os.Geteuid() == 0 {
		what = "privileges not dropped"
		err = spawn.AssertPrivilegesDropped(cmd.Process.Pid, ss.g.acct)
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		close(ss.exited)
		ss.log.Error().Str("event", "invariant").Str("error", err.Error()).Msg("session process killed: " + what)
		return err
	}
	return nil
}

// runPipes serves a session without a terminal: stdin from the channel
// (its EOF closes the process's stdin), stdout and stderr to the channel's
// data and extended data, all output drained before the exit status.
func (ss *session) runPipes(cmd *exec.Cmd, inW, outR, errR *os.File, warnings []string) {
	for _, w := range warnings {
		_, _ = io.WriteString(ss.ch.Stderr(), w+"\n")
	}
	go func() {
		_, _ = io.Copy(inW, ss.ch)
		inW.Close()
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(ss.ch, outR) }()
	go func() { defer wg.Done(); _, _ = io.Copy(ss.ch.Stderr(), errR) }()
	wg.Wait()
	closeAll(outR, errR)
	ss.finish(cmd.Wait())
}

// runPTY serves a session on a terminal. The terminal does the newline
// translation (ONLCR), so output is copied as is.
func (ss *session) runPTY(cmd *exec.Cmd, ptmx *os.File, warnings []string) {
	for _, w := range warnings {
		_, _ = io.WriteString(ss.ch.Stderr(), w+"\r\n")
	}
	go func() { copyPTY(ptmx, ss.ch) }()
	out := make(chan struct{})
	go func() {
		defer close(out)
		copyPTY(ss.ch, ptmx) // ends with EIO once nobody holds the terminal
	}()
	err := cmd.Wait()
	// What the process wrote before it exited is in the terminal's buffer
	// and still comes out. A background process that keeps the terminal
	// open would hold the session forever; it gets drainAfterExit.
	t := time.AfterFunc(drainAfterExit, func() { _ = ptmx.SetReadDeadline(time.Now()) })
	<-out
	t.Stop()
	ss.mu.Lock()
	ss.ptmx = nil
	ss.mu.Unlock()
	ptmx.Close()
	ss.finish(err)
}

// ptyCopyBuffer is the buffer of each direction of a terminal session. A
// read from a pty master returns at most the line discipline's buffer
// (N_TTY_BUF_SIZE, 4 KiB), and people type a few bytes at a time, so
// io.Copy's 32 KiB buffers would be mostly unused, and every open session,
// idle ones included, holds its two for as long as it lasts.
const ptyCopyBuffer = 4 << 10

// copyPTY copies src to dst through a ptyCopyBuffer. The wrappers hide
// *os.File's ReadFrom and WriteTo, which would allocate io.Copy's 32 KiB
// buffer after finding no splice or sendfile to do.
func copyPTY(dst io.Writer, src io.Reader) {
	_, _ = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, ptyCopyBuffer))
}

// finish reports how the process ended, as sshd does (session.c,
// session_exit_message): "exit-status" with the code when it exited,
// "exit-signal" when a signal killed it (the signal's name without "SIG",
// whether it dumped core, and an empty message and language tag), never
// 128+N as a status (issue 13, point 4). Then it sends EOF and closes the
// channel.
func (ss *session) finish(waitErr error) {
	ss.mu.Lock()
	close(ss.exited)
	ss.mu.Unlock()
	// The status goes before the EOF, as with sshd: PuTTY on a terminal
	// answers the EOF with its own EOF and a close, and a status sent
	// after that is lost (plink then exits 0).
	if sig, core, ok := killedBy(waitErr); ok {
		name := signalName(sig)
		ss.log.Info().Str("event", "session").Str("exit_signal", name).Bool("core_dumped", core).Msg("session end")
		_, _ = ss.ch.SendRequest("exit-signal", false, gossh.Marshal(&exitSignal{Signal: name, CoreDumped: core}))
	} else {
		code := spawn.ExitStatus(waitErr)
		ss.log.Info().Str("event", "session").Int("exit_status", code).Msg("session end")
		_, _ = ss.ch.SendRequest("exit-status", false, gossh.Marshal(&struct{ Status uint32 }{uint32(code)}))
	}
	_ = ss.ch.CloseWrite()
	_ = ss.ch.Close()
	close(ss.done)
}

// exitSignal is the payload of an "exit-signal" request (RFC 4254
// section 6.10).
type exitSignal struct {
	Signal     string
	CoreDumped bool
	Error      string
	Language   string
}

// killedBy returns the signal that killed the process whose Wait returned
// err, and whether it dumped core.
func killedBy(err error) (syscall.Signal, bool, bool) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState == nil {
		return 0, false, false
	}
	ws, ok := ee.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false, false
	}
	return ws.Signal(), ws.CoreDump(), true
}

// signalName is OpenSSH's sig2name: the RFC 4254 name of sig, without
// "SIG", or "SIG@openssh.com" for a signal the RFC does not name.
func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return name
		}
	}
	return "SIG@openssh.com"
}

// end hangs the session up, for a connection that is ending, and returns a
// channel closed once the session has reported how its process ended and
// closed its channel. A session that runs nothing has its channel closed
// at once.
func (ss *session) end() <-chan struct{} {
	ss.mu.Lock()
	running := ss.started
	ch := ss.ch
	ss.mu.Unlock()
	if !running {
		if ch != nil {
			_ = ch.Close()
		}
		closed := make(chan struct{})
		close(closed)
		return closed
	}
	ss.hangup()
	return ss.done
}

// notice writes a line to the session's stderr.
func (ss *session) notice(msg string) {
	ss.mu.Lock()
	ch := ss.ch
	ss.mu.Unlock()
	if ch != nil {
		_, _ = io.WriteString(ch.Stderr(), msg+"\r\n")
	}
}

// hangup ends the session's processes the way a terminal hangup does:
// SIGHUP to the process group, SIGKILL after hangupGrace for what ignored
// it. Nothing is sent once the process has been waited for. This is how a
// session that ends by itself (the client left) goes, as with sshd: what
// ignores SIGHUP (nohup) and what left the group stays, in ss.group, until
// a closed latch or a stop ends the whole group (spawn.Groups.End).
func (ss *session) hangup() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.proc == nil {
		return
	}
	select {
	case <-ss.exited:
		return
	default:
	}
	pid := ss.proc.Pid
	// Setsid made the process a group leader: -pid is its group.
	_ = syscall.Kill(-pid, syscall.SIGHUP)
	_ = syscall.Kill(-pid, syscall.SIGCONT)
	exited := ss.exited
	go func() {
		t := time.NewTimer(hangupGrace)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			ss.mu.Lock()
			select {
			case <-exited:
			default:
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
			ss.mu.Unlock()
		}
	}()
}

// release tells the session's group that the session is over: processes
// it left running (nohup, tmux) stay known, with their owner, so that a
// recheck that finds the latch closed, or the server stopping, still ends
// them.
func (ss *session) release() {
	ss.mu.Lock()
	g := ss.group
	ss.mu.Unlock()
	if g != nil {
		g.Release()
	}
}

// sshEnv returns SSH_CLIENT and SSH_CONNECTION for a connection.
func sshEnv(remote, local net.Addr) (client, connection string) {
	rh, rp, err1 := net.SplitHostPort(remote.String())
	lh, lp, err2 := net.SplitHostPort(local.String())
	if err1 != nil || err2 != nil {
		return "", ""
	}
	return rh + " " + rp + " " + lp, rh + " " + rp + " " + lh + " " + lp
}

// sftpServer returns the sftp-server to run: the configured one, or the
// system's (spawn.FindSFTPServer).
func sftpServer(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	p, err := spawn.FindSFTPServer()
	if err != nil {
		return "", fmt.Errorf("%w; or set [server] sftp_server", err)
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
