package gatesocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// ErrDaemon wraps every failure to get a clear answer from the daemon: not
// running, a broken connection, a malformed answer. The gate denies on it.
var ErrDaemon = errors.New("no answer from the latch-ssh daemon")

// AskDecision asks the daemon at socket whether the calling process's user
// may log in. When the daemon asks for a one-time code, otp is called with
// the prompt (nil means nobody can be asked: the empty code is sent). The
// returned response is either an allow or a deny; any error means deny.
func AskDecision(ctx context.Context, socket string, req SocketRequest, otp func(prompt string) (string, error)) (SocketResponse, error) {
	conn, r, err := dial(ctx, socket)
	if err != nil {
		return SocketResponse{}, err
	}
	defer conn.Close()
	// A blocked read ends when ctx does, not only at the connection deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.V, req.Op = ProtocolVersion, OpDecide
	resp, err := exchange(conn, r, req)
	if err != nil {
		return SocketResponse{}, err
	}
	if resp.Outcome == "ask-otp" {
		code := ""
		if otp != nil {
			// Errors (no terminal, timeout, interrupted) send the empty
			// code, which the daemon denies and logs.
			code, _ = otp(safetext.Clean(resp.Prompt))
		}
		conn.SetDeadline(deadlineOf(ctx, 30*time.Second))
		if resp, err = exchange(conn, r, SocketRequest{V: ProtocolVersion, Op: OpOTP, Code: code}); err != nil {
			return SocketResponse{}, err
		}
	}
	if resp.Outcome != "allow" && resp.Outcome != "deny" {
		return SocketResponse{}, fmt.Errorf("%w: unexpected outcome %q", ErrDaemon, safetext.Clean(resp.Outcome))
	}
	resp.Message = safetext.Clean(resp.Message)
	return resp, nil
}

// CallSelfService sends a pair, unpair or status request for the calling
// process's user and returns the daemon's answer.
func CallSelfService(ctx context.Context, socket string, req SocketRequest) (SocketResponse, error) {
	conn, r, err := dial(ctx, socket)
	if err != nil {
		return SocketResponse{}, err
	}
	defer conn.Close()
	req.V = ProtocolVersion
	resp, err := exchange(conn, r, req)
	if err != nil {
		return SocketResponse{}, err
	}
	resp.Message = safetext.Clean(resp.Message)
	return resp, nil
}

// connectRefusedGrace is how long dial retries ECONNREFUSED. The socket
// file exists but nothing listens on it: a daemon starting (between its
// bind and its listen) or one that died (a stale file). Retrying briefly
// rides out the first; the second must still deny quickly.
const connectRefusedGrace = time.Second

// dial connects to the daemon, retrying within ctx's deadline (30s
// without one) while the listen backlog is full (EAGAIN): a burst of
// logins, or a local user flooding the socket (issue 12, item 6), must
// delay a login, not deny it. The waits are short and jittered, so many
// gates do not retry in step.
func dial(ctx context.Context, socket string) (*net.UnixConn, *bufio.Reader, error) {
	deadline := deadlineOf(ctx, 30*time.Second)
	refusedUntil := time.Now().Add(connectRefusedGrace)
	backoff := time.Millisecond
	var d net.Dialer
	var c net.Conn
	for {
		var err error
		c, err = d.DialContext(ctx, "unix", socket)
		if err == nil {
			break
		}
		retry := errors.Is(err, syscall.EAGAIN) || (errors.Is(err, syscall.ECONNREFUSED) && time.Now().Before(refusedUntil))
		wait := backoff/2 + rand.N(backoff/2+1)
		// %w twice: callers may tell a daemon that is not running
		// (ENOENT, ECONNREFUSED) from one that misbehaves.
		if !retry || time.Now().Add(wait).After(deadline) {
			return nil, nil, fmt.Errorf("%w: %w", ErrDaemon, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("%w: %w", ErrDaemon, err)
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
	conn := c.(*net.UnixConn)
	// Defence in depth: the socket's directory is root's, but make sure
	// the answer comes from root (or from our own user, for an
	// unprivileged daemon), not from whoever managed to bind the path.
	cred, err := PeerCredOf(conn)
	if err != nil || (cred.UID != 0 && int(cred.UID) != os.Geteuid()) {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: the socket %s is not served by root", ErrDaemon, socket)
	}
	conn.SetDeadline(deadlineOf(ctx, 30*time.Second))
	return conn, bufio.NewReaderSize(conn, 4096), nil
}

func exchange(conn *net.UnixConn, r *bufio.Reader, req SocketRequest) (SocketResponse, error) {
	if err := writeMessage(conn, req); err != nil {
		return SocketResponse{}, fmt.Errorf("%w: %v", ErrDaemon, err)
	}
	var resp SocketResponse
	if err := readMessage(r, &resp); err != nil {
		return SocketResponse{}, fmt.Errorf("%w: %v", ErrDaemon, err)
	}
	if resp.V != ProtocolVersion {
		return SocketResponse{}, fmt.Errorf("%w: protocol version %d", ErrDaemon, resp.V)
	}
	return resp, nil
}

func deadlineOf(ctx context.Context, def time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(def)
}
