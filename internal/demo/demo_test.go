package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/latch-ssh/latch-ssh/internal/systest"
)

// waitLimit bounds every wait for the demo.
const waitLimit = 20 * time.Second

// transcript is the demo's output, split into lines as it is written.
type transcript struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // gets a value after each complete line
}

func newTranscript() *transcript { return &transcript{changed: make(chan struct{}, 1)} }

func (tr *transcript) Write(p []byte) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.partial = append(tr.partial, p...)
	for {
		i := bytes.IndexByte(tr.partial, '\n')
		if i < 0 {
			break
		}
		tr.lines = append(tr.lines, string(tr.partial[:i]))
		tr.partial = tr.partial[i+1:]
		select {
		case tr.changed <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n") + "\n" + string(tr.partial)
}

// next waits for the first line from line number *from on that contains
// want, and moves *from past it.
func (tr *transcript) next(t *testing.T, from *int, want string) string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		tr.mu.Lock()
		for i := *from; i < len(tr.lines); i++ {
			if strings.Contains(tr.lines[i], want) {
				*from = i + 1
				l := tr.lines[i]
				tr.mu.Unlock()
				return l
			}
		}
		tr.mu.Unlock()
		select {
		case <-tr.changed:
		case <-deadline.C:
			t.Fatalf("no line with %q within %s; output:\n%s", want, waitLimit, tr)
		}
	}
}

// client is what the printed ssh command says, for an x/crypto client.
type client struct {
	addr, user string
	cfg        *gossh.ClientConfig
	banners    *[]string
}

// clientFrom parses the printed ssh command line.
func clientFrom(t *testing.T, line string) (client, string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 10 || f[0] != "ssh" || f[1] != "-p" || f[3] != "-i" || f[5] != "-o" || f[7] != "-o" || f[8] != "IdentitiesOnly=yes" {
		t.Fatalf("unexpected ssh command %q", line)
	}
	port, keyPath := f[2], f[4]
	knownPath, ok := strings.CutPrefix(f[6], "UserKnownHostsFile=")
	if !ok {
		t.Fatalf("no known_hosts in %q", line)
	}
	user, host, ok := strings.Cut(f[9], "@")
	if !ok {
		t.Fatalf("no user@host in %q", line)
	}
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("client key %s: %v, %v; want mode 0600", keyPath, fi.Mode(), err)
	}
	hostKeys, err := knownhosts.New(knownPath)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	banners := &[]string{}
	cfg := &gossh.ClientConfig{
		User:            user,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         10 * time.Second,
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			*banners = append(*banners, msg)
			return nil
		},
	}
	return client{addr: net.JoinHostPort(host, port), user: user, cfg: cfg, banners: banners}, keyPath
}

// dial logs in, with extra auth methods after the key.
func (c client) dial(extra ...gossh.AuthMethod) (*gossh.Client, error) {
	cfg := *c.cfg
	cfg.Auth = append(append([]gossh.AuthMethod{}, c.cfg.Auth...), extra...)
	*c.banners = nil
	return gossh.Dial("tcp", c.addr, &cfg)
}

// output runs cmd in a new session.
func output(t *testing.T, cl *gossh.Client, cmd string) string {
	t.Helper()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output(cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return string(out)
}

// TestRun drives the demo in this process, as a script would (commands
// as lines): a login, a one-time code, l ending a live session and
// refusing the next login, o, and q removing everything.
func TestRun(t *testing.T) {
	out := newTranscript()
	inR, inW := io.Pipe()
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", In: inR, Out: out, TempDir: tmp}) }()
	finished := false
	t.Cleanup(func() {
		cancel()
		inW.Close()
		if !finished {
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Error("Run did not return")
			}
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	at := 0
	c, keyPath := clientFrom(t, strings.TrimSpace(out.next(t, &at, "  ssh -p ")))
	out.next(t, &at, "latch: open   one-time code: off")

	// Latch open: in.
	cl, err := c.dial()
	if err != nil {
		t.Fatalf("login with the latch open: %v", err)
	}
	if got := output(t, cl, "echo hello"); got != "hello\n" {
		t.Errorf("echo hello printed %q", got)
	}
	if l := out.next(t, &at, c.user+" from 127.0.0.1:"); !strings.HasSuffix(l, ": ALLOW (latch open)") {
		t.Errorf("decision line %q", l)
	}

	// l ends the live session at once and refuses the next login.
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	s.Stderr = &stderr
	ended := make(chan error, 1)
	if err := s.Start("sleep 600"); err != nil {
		t.Fatal(err)
	}
	go func() { ended <- s.Wait() }()
	send("l")
	out.next(t, &at, "latch: closed   one-time code: off")
	out.next(t, &at, ": session ended (latch closed)")
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the session ended without an error")
		}
	case <-time.After(waitLimit):
		t.Fatal("the session did not end after l")
	}
	cl.Close()
	if _, err := c.dial(); err == nil {
		t.Fatal("login with the latch closed succeeded")
	}
	if !strings.Contains(strings.Join(*c.banners, ""), "latch is closed") {
		t.Errorf("refusal banners %q", *c.banners)
	}
	out.next(t, &at, ": DENY (latch closed)")

	// t and o: the login asks for the code the phone shows.
	send("t")
	out.next(t, &at, "latch: closed   one-time code: on")
	send("o")
	out.next(t, &at, "latch: open   one-time code: on")
	codeLine := regexp.MustCompile(`: one-time code asked: phone shows (\S+)$`)
	answer := func(right bool) gossh.AuthMethod {
		return gossh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			if len(questions) != 1 {
				return nil, errors.New("expected one question")
			}
			m := codeLine.FindStringSubmatch(out.next(t, &at, ": one-time code asked: phone shows "))
			if !right {
				return []string{m[1] + "x"}, nil
			}
			return []string{m[1]}, nil
		})
	}
	cl, err = c.dial(answer(true))
	if err != nil {
		t.Fatalf("login with the right code: %v", err)
	}
	if got := output(t, cl, "echo code"); got != "code\n" {
		t.Errorf("echo code printed %q", got)
	}
	cl.Close()
	out.next(t, &at, ": ALLOW (")
	if _, err := c.dial(answer(false)); err == nil {
		t.Fatal("login with a wrong code succeeded")
	}
	out.next(t, &at, ": DENY (")

	// Lines that are not commands say what the commands are.
	send("")
	send("x")
	out.next(t, &at, "Not a command. Commands, one a line on stdin: l close the latch")

	// q: Run returns, and the directory with the keys is gone.
	send("q")
	select {
	case err := <-done:
		finished = true
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after q")
	}
	out.next(t, &at, "demo stopped; removed ")
	if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the client key is still there: %v", err)
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("the temporary directory holds %v (%v)", ents, err)
	}
}

// End of input does not stop the demo, and cancelling its context does,
// without an error.
func TestRunEOFAndCancel(t *testing.T) {
	out := newTranscript()
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", In: strings.NewReader("t\n"), Out: out, TempDir: tmp})
	}()
	at := 0
	out.next(t, &at, "latch: open   one-time code: on")
	out.next(t, &at, "(end of input: no more commands; the demo keeps running until SIGINT or SIGTERM)")
	select {
	case err := <-done:
		t.Fatalf("Run returned at end of input: %v\n%s", err, out)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
		t.Errorf("the temporary directory holds %v (%v)", ents, err)
	}
}

// A taken port is a ListenError, before anything is created.
func TestRunPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tmp := t.TempDir()
	err = Run(context.Background(), Options{Listen: ln.Addr().String(), In: strings.NewReader(""), Out: io.Discard, TempDir: tmp})
	var le *ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() {
		t.Fatalf("Run = %v, want a ListenError", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("the temporary directory holds %v", ents)
	}
}

// TestNewUserDemoQuitAndUnaskableCode (issue 13, point 5: what a new user
// meets first): with the one-time code on, a client that cannot be asked
// for it (public key only, like ssh -o BatchMode=yes) is refused, and the
// demo's screen says a code was needed and could not be asked, instead of
// a bare "code not given"; and quitting tells every live session why it
// ends, as serve does on SIGTERM, instead of cutting it off.
func TestNewUserDemoQuitAndUnaskableCode(t *testing.T) {
	out := newTranscript()
	inR, inW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", In: inR, Out: out, TempDir: t.TempDir()}) }()
	finished := false
	t.Cleanup(func() {
		cancel()
		inW.Close()
		if !finished {
			<-done
		}
		if t.Failed() {
			t.Logf("output:\n%s", out)
		}
	})
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	at := 0
	c, _ := clientFrom(t, strings.TrimSpace(out.next(t, &at, "  ssh -p ")))
	out.next(t, &at, "latch: open   one-time code: off")

	// The one-time code on, and a client with its key only.
	send("t")
	out.next(t, &at, "latch: open   one-time code: on")
	if _, err := c.dial(); err == nil {
		t.Fatal("a login that could not be asked for the code succeeded")
	}
	if l := out.next(t, &at, ": DENY ("); !strings.Contains(l, "a one-time code was needed and the client could not be asked for it") {
		t.Errorf("refusal line %q does not say the code could not be asked", l)
	}
	send("t")
	out.next(t, &at, "latch: open   one-time code: off")

	// A live session when the demo quits is told why it ends.
	cl, err := c.dial()
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr, stdout systest.Buffer
	s.Stderr, s.Stdout = &stderr, &stdout
	if err := s.Start("echo started; exec sleep 600"); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- s.Wait() }()
	systest.WaitFor(t, "the session to start", waitLimit, func() bool { return strings.Contains(stdout.String(), "started") })
	send("q")
	select {
	case <-ended:
	case <-time.After(waitLimit):
		t.Fatal("the session did not end after q")
	}
	if !strings.Contains(stderr.String(), "latch-ssh is stopping: ending this session") {
		t.Errorf("the session's stderr %q does not say why it ended", stderr.String())
	}
	select {
	case err := <-done:
		finished = true
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after q")
	}
}
