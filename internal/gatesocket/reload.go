package gatesocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
)

// applyLimit bounds ApplyToDaemon when ctx has no deadline: the daemon
// reads and checks one file and builds a client.
const applyLimit = 30 * time.Second

// ApplyToDaemon asks the daemon serving socket to put the configuration
// file as it is now in force, and waits until it has: root's pair and
// unpair edit the file directly, and their change must apply to every
// front end the daemon serves (the ForceCommand gate, the embedded server,
// rechecks) before the command returns. latch-check reads the file at each
// login by itself.
//
// No daemon at socket (no socket file, or nobody listening) is not an
// error: there is nothing to tell, and a daemon reads the file when it
// starts. Any other failure is: the change may not be in force.
func ApplyToDaemon(ctx context.Context, socket string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, applyLimit)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil
	case err != nil:
		return fmt.Errorf("cannot reach the latch-ssh daemon at %s to put the change in force (%w): reload it (systemctl reload latch-ssh)", socket, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	// As AskDecision (see dial): the answer must come from root (or from this
	// process's own user), not from whoever managed to bind the path.
	if cred, err := PeerCredOf(conn); err != nil || (cred.UID != 0 && int(cred.UID) != os.Geteuid()) {
		return fmt.Errorf("the socket %s is not served by root: the change was not put in force by a daemon; check latch-ssh.service", socket)
	}
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// The exchange of every client: one request, one answer of this
	// protocol version, framed by readMessage and writeMessage.
	resp, err := exchange(conn, bufio.NewReaderSize(conn, 4096), SocketRequest{V: ProtocolVersion, Op: OpReload})
	switch {
	case err != nil:
		return fmt.Errorf("the latch-ssh daemon did not confirm that the change is in force (%w): reload it (systemctl reload latch-ssh)", err)
	case !resp.OK:
		msg := safetext.Clean(resp.Message)
		if msg == "" || resp.Outcome == "deny" {
			// An older daemon that does not know the op answers deny.
			msg += " (a daemon older than this command: restart it, systemctl restart latch-ssh)"
		}
		return fmt.Errorf("the latch-ssh daemon did not put the change in force: %s", msg)
	}
	return nil
}
