// Package demo is `latch-ssh demo`: the embedded SSH server for the current
// user, gated by the fake Latch (latch/latchtest) in the same process, with
// a throwaway key pair, so that anyone can try latch-ssh without Latch
// credentials, a configuration or root.
//
// The person plays the phone from the demo's terminal: l closes the latch,
// o opens it, t turns the one-time code on and off, q quits, and every
// login decision is shown as it happens, with the one-time code the phone
// would show. Without a terminal (under a script) the same commands come
// as lines on stdin, and the demo runs until q or its context ends (the
// command cancels it on SIGINT and SIGTERM).
//
// Everything the demo creates lives in a fresh 0700 temporary directory
// (keys, known_hosts, the fake's CA, the server log) that is removed when
// Run returns.
package demo

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/authkeys"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/spawn"
	"github.com/latch-ssh/latch-ssh/internal/sshserver"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
	"github.com/latch-ssh/latch-ssh/users"
)

// DefaultListen is the address the demo's SSH server listens on unless
// told otherwise.
const DefaultListen = "127.0.0.1:2222"

// Recheck is how often the demo's live sessions re-check the latch. It is
// short so that closing the latch visibly ends a session within seconds
// even if the immediate re-check that l triggers were missed.
const Recheck = 5 * time.Second

// The names of the files in the demo's directory.
const (
	hostKeyFile    = "ssh_host_ed25519_key"
	clientKeyFile  = "id_ed25519"
	knownHostsFile = "known_hosts"
	caFileName     = "latch-ca.pem"
	logFileName    = "server.log"
)

// serveWait bounds how long Run waits for the server to stop after Close.
const serveWait = 10 * time.Second

// Options configure Run.
type Options struct {
	// Listen is the SSH server's address, host:port (DefaultListen if
	// empty).
	Listen string
	// In is where commands come from. If it is an *os.File on a terminal,
	// it is put in cbreak mode and each key is a command; otherwise each
	// line is one. End of input does not stop the demo.
	In io.Reader
	// Out receives everything the person reads: the ssh command to try,
	// one line per decision and the state after each command.
	Out io.Writer
	// TempDir is where the demo's directory is made ("" means
	// os.TempDir()).
	TempDir string
}

// ListenError is returned by Run when the SSH server cannot listen on its
// address, typically because the port is taken.
type ListenError struct {
	Addr string
	Err  error
}

// Error implements error.
func (e *ListenError) Error() string {
	return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err)
}

// Unwrap returns the cause, so errors.Is finds syscall.EADDRINUSE.
func (e *ListenError) Unwrap() error { return e.Err }

// Run runs the demo until q, or until ctx is done (which is not an error).
// It returns a *ListenError when the address is unusable, and other
// errors when the demo cannot start or its server fails.
func Run(ctx context.Context, o Options) (err error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.In == nil || o.Out == nil {
		return errors.New("demo: Options.In and Options.Out are required")
	}
	acct, err := currentAccount()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return &ListenError{Addr: o.Listen, Err: err}
	}
	d, err := setUp(acct, ln, o.TempDir)
	if err != nil {
		ln.Close()
		return err
	}
	scr := &screen{w: o.Out, now: time.Now}
	d.scr = scr
	defer func() {
		cerr := d.close()
		if cerr != nil {
			scr.printf("demo stopped\n")
			if err == nil {
				err = cerr
			}
			return
		}
		scr.printf("demo stopped; removed %s\n", d.dir)
	}()

	go func() { d.served <- d.srv.Serve(ln) }()
	// Cancelled before d.close runs: the reader and the rechecks l
	// started stop first.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	keys := false
	if f, ok := o.In.(*os.File); ok && isTerminal(f) {
		restore, cerr := cbreak(f)
		if cerr != nil {
			return cerr
		}
		keys = true
		defer func() {
			// EIO: the terminal hung up (its window was closed); there
			// is nothing left to restore.
			if rerr := restore(); rerr != nil && !errors.Is(rerr, unix.EIO) && err == nil {
				err = rerr
			}
		}()
	}
	d.intro(keys)

	cmds := make(chan Command)
	go readCommands(runCtx, o.In, keys, cmds)
	for {
		select {
		case <-ctx.Done():
			return nil
		case serr := <-d.served:
			d.serveDone = true
			if serr == nil {
				serr = errors.New("stopped")
			}
			return fmt.Errorf("demo: the SSH server: %w", serr)
		case c, ok := <-cmds:
			if !ok {
				cmds = nil
				how := "Ctrl-C"
				if !keys {
					how = "SIGINT or SIGTERM"
				}
				scr.printf("(end of input: no more commands; the demo keeps running until %s)\n", how)
				continue
			}
			if c == Quit {
				return nil
			}
			d.do(runCtx, c, keys)
		}
	}
}

// currentAccount returns the account the demo serves: the effective uid's,
// from NSS, with its groups (never from $USER).
func currentAccount() (spawn.Account, error) {
	uid := uint32(os.Geteuid())
	self, err := spawn.LookupUID(uid)
	if err != nil {
		return spawn.Account{}, fmt.Errorf("demo: looking up the current user (uid %d): %w", uid, err)
	}
	acct, err := spawn.Lookup(self.Name)
	if err != nil {
		return spawn.Account{}, fmt.Errorf("demo: looking up user %s: %w", self.Name, err)
	}
	if acct.UID != uid {
		return spawn.Account{}, fmt.Errorf("demo: user %s has uid %d, not %d: several users share the name", acct.Name, acct.UID, uid)
	}
	return acct, nil
}

// demo is a running demo: the fake Latch, the core and the SSH server.
type demo struct {
	acct    spawn.Account
	dir     string
	addr    *net.TCPAddr
	sshArgs []string
	fake    *latchtest.Server
	appID   string
	account string
	core    *gate.Core
	srv     *sshserver.Server
	logFile *logFile
	scr     *screen

	served    chan error
	serveDone bool
	rechecks  sync.WaitGroup
	// open and otp are the latch and one-time code state, as last set
	// from the keyboard; only Run's goroutine touches them.
	open, otp bool
}

// setUp creates the demo's directory, keys, fake Latch, core and server.
// On error everything it made is undone (but ln is the caller's).
func setUp(acct spawn.Account, ln net.Listener, tempDir string) (_ *demo, err error) {
	d := &demo{acct: acct, addr: ln.Addr().(*net.TCPAddr), served: make(chan error, 1), open: true}
	d.dir, err = os.MkdirTemp(tempDir, "latch-ssh-demo-")
	if err != nil {
		return nil, fmt.Errorf("demo: creating its directory: %w", err)
	}
	defer func() {
		if err != nil {
			d.serveDone = true // never served
			_ = d.close()
		}
	}()
	if err := os.Chmod(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(d.dir, logFileName), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: creating the server log: %w", err)
	}
	d.logFile = &logFile{f: f}
	log := zerolog.New(d.logFile).With().Timestamp().Logger()

	// The simulated Latch: one application, the current user's account
	// paired with it, latch open.
	d.fake, err = latchtest.Listen("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: starting the simulated Latch: %w", err)
	}
	secret := randomID(40)
	d.appID = randomID(20)
	d.fake.AddApp(d.appID, secret)
	d.account = d.fake.PairedAccount(d.appID)
	d.fake.SetLatch(d.account, d.appID, true)
	caFile := filepath.Join(d.dir, caFileName)
	if err := d.fake.WriteCAFile(caFile); err != nil {
		return nil, fmt.Errorf("demo: writing the simulated Latch's CA: %w", err)
	}

	hostKeyPath := filepath.Join(d.dir, hostKeyFile)
	cfg, err := users.Parse("latch-ssh demo configuration", []byte(configText(d, secret, caFile, hostKeyPath)))
	if err != nil {
		return nil, fmt.Errorf("demo: its configuration: %w", err)
	}
	client, err := gate.NewLatchClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("demo: the Latch client: %w", err)
	}
	d.core = &gate.Core{Config: cfg, Latch: client, Groups: gate.NSSGroups{},
		Audit: &audit{log: gate.NewWriterAudit(d.logFile), ended: d.sessionEnded}}

	signers, err := sshserver.LoadHostKeys([]string{hostKeyPath}, log)
	if err != nil {
		return nil, fmt.Errorf("demo: the host key: %w", err)
	}
	keys, err := d.writeClientFiles(signers[0].PublicKey())
	if err != nil {
		return nil, err
	}
	d.srv, err = sshserver.New(sshserver.Options{
		Core:        func() *gate.Core { return d.core },
		HostSigners: signers,
		Log:         log,
		Keys: func(a spawn.Account) ([]authkeys.Key, error) {
			if a.Name != acct.Name || a.UID != acct.UID {
				return nil, fmt.Errorf("the demo key is only for %s", acct.Name)
			}
			return keys, nil
		},
		OnDecision: d.decided,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return d, nil
}

// configText is the demo's latch.toml: the fake Latch, fail closed, only
// the current user, paired, and a short recheck.
func configText(d *demo, secret, caFile, hostKey string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[latch]\napp_id = %s\nsecret = %s\napi_url = %s\nca_file = %s\ntimeout = \"3s\"\n\n",
		tomlString(d.appID), tomlString(secret), tomlString(d.fake.URL()), tomlString(caFile))
	b.WriteString("[policy]\nfail_mode = \"closed\"\nunpaired = \"deny\"\n\n")
	// The person trying the demo is refused on purpose, again and again,
	// from loopback: the penalties for failed logins must not shut them
	// out.
	fmt.Fprintf(&b, "[server]\nlisten = %s\nhost_key = [%s]\nrecheck = %s\npenalty_exempt = [\"127.0.0.0/8\", \"::1\"]\n\n",
		tomlString(d.addr.String()), tomlString(hostKey), tomlString(Recheck.String()))
	fmt.Fprintf(&b, "[users]\n%s = %s\n", tomlString(d.acct.Name), tomlString(d.account))
	return b.String()
}

// writeClientFiles creates the throwaway client key pair and a known_hosts
// that pins the host key, and returns the key as authorized keys.
func (d *demo) writeClientFiles(hostKey gossh.PublicKey) ([]authkeys.Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo: generating the client key: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "latch-ssh demo")
	if err != nil {
		return nil, fmt.Errorf("demo: encoding the client key: %w", err)
	}
	keyPath := filepath.Join(d.dir, clientKeyFile)
	if err := writeNew(keyPath, pem.EncodeToMemory(block)); err != nil {
		return nil, err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("demo: the client key: %w", err)
	}
	authLine := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))) + " latch-ssh-demo\n"
	if err := writeNew(keyPath+".pub", []byte(authLine)); err != nil {
		return nil, err
	}
	keys, skipped, err := authkeys.Parse(strings.NewReader(authLine), keyPath+".pub")
	if err != nil || len(skipped) != 0 || len(keys) != 1 {
		return nil, fmt.Errorf("demo: the client key does not parse as authorized_keys (%v, %d skipped)", err, len(skipped))
	}

	host, port := connectHost(d.addr)
	known := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, port))}, hostKey) + "\n"
	knownPath := filepath.Join(d.dir, knownHostsFile)
	if err := writeNew(knownPath, []byte(known)); err != nil {
		return nil, err
	}
	d.sshArgs = []string{"ssh", "-p", port, "-i", keyPath, "-o", "UserKnownHostsFile=" + knownPath,
		"-o", "IdentitiesOnly=yes", d.acct.Name + "@" + host}
	return keys, nil
}

// writeNew creates path (which must not exist) with mode 0600.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("demo: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("demo: writing %s: %w", path, err)
	}
	return nil
}

// connectHost returns the host and port a client on this machine connects
// to: the listening address, or loopback when it listens on every address.
func connectHost(a *net.TCPAddr) (host, port string) {
	port = strconv.Itoa(a.Port)
	switch {
	case a.IP == nil || a.IP.IsUnspecified() && a.IP.To4() != nil:
		return "127.0.0.1", port
	case a.IP.IsUnspecified():
		return "::1", port
	default:
		return a.IP.String(), port
	}
}

// stopNotice is what each live session is told when the demo stops: the
// words of `latch-ssh serve` on SIGTERM.
const stopNotice = "latch-ssh is stopping: ending this session"

// otpUnaskable is added to a refusal for a one-time code not given: the
// embedded server asks for the code at login, by keyboard-interactive, and
// a client that cannot prompt never gets the question.
const otpUnaskable = ": a one-time code was needed and the client could not be asked for it, or gave none " +
	"(ssh -o BatchMode=yes, scripts and clients without a terminal cannot answer the prompt; t turns the code off)"

// close stops the server and the fake Latch and removes the directory.
func (d *demo) close() error {
	var errs []error
	if d.srv != nil {
		// Tell each live session why it ends, as serve does on SIGTERM
		// (issue 13, point 5), rather than cutting it off with no word:
		// Stop writes the notice on each session's stderr, closes the
		// connections and ends the sessions' processes (SIGHUP, then
		// SIGKILL after a grace).
		d.srv.Stop(stopNotice)
		if !d.serveDone {
			t := time.NewTimer(serveWait)
			select {
			case <-d.served:
			case <-t.C:
				errs = append(errs, errors.New("demo: the SSH server did not stop"))
			}
			t.Stop()
		}
	}
	d.rechecks.Wait()
	if d.core != nil {
		d.core.Close()
	}
	if d.fake != nil {
		d.fake.Close()
	}
	if d.logFile != nil {
		d.logFile.Close()
	}
	if d.dir != "" {
		if err := os.RemoveAll(d.dir); err != nil {
			errs = append(errs, fmt.Errorf("demo: removing its directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// intro prints what the demo is and the ssh command to try.
func (d *demo) intro(keys bool) {
	host, port := connectHost(d.addr)
	d.scr.printf("latch-ssh demo: an SSH server for %s on %s, gated by a simulated Latch in this process.\n",
		safetext.Clean(d.acct.Name), net.JoinHostPort(host, port))
	if d.acct.UID == 0 {
		d.scr.printf("Running as root: the login is root's, and only the throwaway key below gets in.\n")
	}
	d.scr.printf("Log in from another terminal with the throwaway key:\n\n  %s\n\n", shellCommand(d.sshArgs))
	d.scr.printf("Server log: %s (removed on exit).\n", filepath.Join(d.dir, logFileName))
	d.help("", keys)
	d.state()
}

// help prints the commands, after prefix.
func (d *demo) help(prefix string, keys bool) {
	if keys {
		d.scr.printf("%sKeys: l close the latch, o open it, t one-time code on/off, q quit.\n", prefix)
		return
	}
	d.scr.printf("%sCommands, one a line on stdin: l close the latch, o open it, t one-time code on/off, q quit (or SIGINT/SIGTERM).\n", prefix)
}

// state prints the latch and one-time code state.
func (d *demo) state() {
	d.scr.event("latch: %s   one-time code: %s", onOff(d.open, "open", "closed"), onOff(d.otp, "on", "off"))
}

func onOff(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// do carries out one command other than Quit.
func (d *demo) do(ctx context.Context, c Command, keys bool) {
	switch c {
	case CloseLatch:
		d.open = false
		d.fake.SetLatch(d.account, d.appID, false)
		// End the live sessions now rather than at the next recheck.
		d.rechecks.Add(1)
		go func() {
			defer d.rechecks.Done()
			d.srv.Recheck(ctx)
		}()
	case OpenLatch:
		d.open = true
		d.fake.SetLatch(d.account, d.appID, true)
	case ToggleOTP:
		d.otp = !d.otp
		d.fake.SetTwoFactor(d.appID, d.otp)
		if d.otp {
			d.scr.printf("(the ssh client asks for the code at login; one that cannot prompt, such as ssh -o BatchMode=yes, is refused)\n")
		}
	case Help:
		d.help("", keys)
		return
	default:
		d.help("Not a command. ", keys)
		return
	}
	d.state()
}

// decided is the server's OnDecision: one line per login decision, and
// the code the phone shows when one is asked.
func (d *demo) decided(user, remote string, dec gate.Decision) {
	code, ok := "", false
	if dec.Outcome == gate.AskOTP {
		code, ok = d.fake.LastTwoFactorToken(d.account, d.appID)
	}
	d.scr.event("%s", decisionLine(user, remote, dec, code, ok))
}

// sessionEnded is told of each connection a recheck ended.
func (d *demo) sessionEnded(req gate.Request, dec gate.Decision) {
	reason := strings.TrimPrefix(dec.Reason, "session ended by recheck: ")
	d.scr.event("%s from %s: session ended (%s)", safetext.Clean(req.User), safetext.Clean(req.RemoteAddr), safetext.Clean(reason))
}

// decisionLine renders a login decision for the demo's screen, e.g.
//
//	alice from 127.0.0.1:53422: ALLOW (latch open)
//	alice from 127.0.0.1:53422: one-time code asked: phone shows 4F7K2Q
func decisionLine(user, remote string, d gate.Decision, code string, haveCode bool) string {
	who := fmt.Sprintf("%s from %s", safetext.Clean(user), safetext.Clean(remote))
	switch d.Outcome {
	case gate.Allow:
		return fmt.Sprintf("%s: ALLOW (%s)", who, safetext.Clean(d.Reason))
	case gate.AskOTP:
		if !haveCode {
			return who + ": one-time code asked, but the phone got none"
		}
		return fmt.Sprintf("%s: one-time code asked: phone shows %s", who, safetext.Clean(code))
	default:
		line := fmt.Sprintf("%s: DENY (%s)", who, safetext.Clean(d.Reason))
		if strings.Contains(d.Reason, "one-time code not given") {
			line += otpUnaskable
		}
		return line
	}
}

// audit is the demo core's audit log: every decision goes to the server
// log, and the sessions a recheck ends are also shown on the screen (the
// server's OnDecision covers logins only).
type audit struct {
	log   *gate.AuditLog
	ended func(gate.Request, gate.Decision)
}

// Record implements gate.Auditor.
func (a *audit) Record(req gate.Request, d gate.Decision) {
	a.log.Record(req, d)
	if req.Command == sshserver.RecheckCommand && d.Outcome == gate.Deny {
		a.ended(req, d)
	}
}

// logFile is the server log. Connections still ending when the demo
// stops may log after it is closed: those lines are dropped quietly
// rather than reported on stderr by zerolog.
type logFile struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

// Write implements io.Writer.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	return l.f.Write(p)
}

// Close closes the file; later writes are dropped.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.f.Close()
}

// screen is the demo's output, shared by the command loop and the
// server's goroutines.
type screen struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// printf writes text as is.
func (s *screen) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// event writes one line, stamped with the time.
func (s *screen) event(format string, args ...any) {
	s.printf("%s  %s\n", s.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// readCommands sends the commands read from in until it ends or ctx is
// done, then closes out. keys reads keys (a terminal in cbreak mode),
// otherwise lines.
func readCommands(ctx context.Context, in io.Reader, keys bool, out chan<- Command) {
	defer close(out)
	send := func(c Command) bool {
		if c == None {
			return true
		}
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if keys {
		buf := make([]byte, 64)
		for {
			n, err := in.Read(buf)
			for _, c := range KeyCommands(buf[:n]) {
				if !send(c) {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	br := bufio.NewReader(in)
	continued := false // the rest of a line too long for the buffer
	for {
		line, isPrefix, err := br.ReadLine()
		if err != nil {
			return
		}
		skip := continued
		continued = isPrefix
		if !skip && !send(LineCommand(string(line))) {
			return
		}
	}
}

// randomID returns n random letters and digits, as Latch ids are.
func randomID(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()[:n]
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// shellCommand joins args into a command line for a POSIX shell, quoting
// the arguments that need it.
func shellCommand(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for a POSIX shell if it holds anything but letters,
// digits and @%+=:,./_-.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
