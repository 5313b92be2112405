package main

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/users"
)

// The session line (issue 16):
//
//	session optional pam_exec.so quiet seteuid /usr/sbin/latch-check
//
// At account time the daemon already tracks every login it allows (it
// registers the session of each decide-for it answers with allow), so the
// session line is what covers the rest: a login the hook decided alone
// because the daemon was down or restarting (the daemon then learns about
// it at open_session, if it is back), and the close, which lets the
// daemon forget the session at once rather than at its next round. With
// OpenSSH both phases run in the per-connection monitor, the same process
// as the account phase (checked with OpenSSH 9.2, `ssh -N` included), so
// the daemon sees the same login twice and keeps one entry.
//
// Why a session line decides nothing: deciding again would ask Latch a
// second time for every login, and a session module cannot refuse an
// OpenSSH login anyway (check-config says so of a hook in the session
// stack only). "optional": nothing here may ever fail a login.

// sessionTimeout bounds the whole exchange with the daemon: it answers
// from /proc, never from Latch.
const sessionTimeout = 2 * time.Second

// trackSession registers (open_session) or forgets (close_session) req's
// session with the daemon. Only root may: an ordinary caller is refused by
// the daemon anyway. Failures are noted in the log and change nothing.
func trackSession(configPath, typ string, req gate.Request, euid int, audit gate.Auditor) {
	if euid != 0 {
		return
	}
	cfg, err := users.Load(configPath)
	if err != nil {
		return
	}
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return
	}
	op := gatesocket.OpSessionOpen
	if typ == "close_session" {
		op = gatesocket.OpSessionClose
	}
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	resp, err := gatesocket.CallSelfService(ctx, cfg.Daemon.Socket, gatesocket.SocketRequest{
		Op: op, User: req.User, Service: req.Service, Remote: req.RemoteAddr, Config: abs,
	})
	ab, _ := audit.(auditByDaemon)
	if ab == nil {
		return
	}
	switch {
	case err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)):
		// No daemon runs: a host without it has no rechecks to miss.
	case err != nil:
		ab.Note(gate.Warning, "session", "the latch-ssh daemon at "+cfg.Daemon.Socket+" gave no answer ("+err.Error()+"): closing the latch may not end this session")
	case !resp.OK && op == gatesocket.OpSessionOpen:
		ab.Note(gate.Warning, "session", "session of "+req.User+" not tracked: "+resp.Message)
	}
}
