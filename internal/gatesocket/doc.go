// Package gatesocket is the gate socket: the Unix socket through which the
// processes that run as the person logging in (the ForceCommand gate,
// self-service `latch-ssh pair`, `unpair` and `status`, and root's pair and
// unpair asking for a reload, and the PAM hook, as root, asking for a
// decision on the daemon's warm connection) talk to the daemon, `latch-ssh
// serve`. It
// holds the wire protocol (protocol.go), the server (SocketServer, with its
// connection caps, rate limits and flood handling) and the clients
// (AskDecision, AskForUser, CallSelfService, ApplyToDaemon).
//
// Why a package of its own rather than a part of gate (issue 14, "one home
// for each rule"): gate is the decision core that every front end shares
// (the PAM hook, the embedded server, this socket); it decides, applies the
// fail modes, checks one-time codes and writes the audit log, and none of
// that depends on how a question reached it. The socket is one transport
// among those front ends, and the larger part of what it does is about the
// transport alone: who is at the other end (SO_PEERCRED), how many
// connections and requests a uid may have, how a flood of connections is
// folded into counts, how a message is framed. Kept in gate, that code made
// the core's package mostly transport, and made pairing, which only pairs
// accounts, build wire messages. Here the dependencies run one way: the
// socket calls gate to decide and pairing to pair, and turns their own
// results (gate.Decision, pairing.Result) into wire messages; neither
// knows the protocol.
//
// The wire protocol is frozen at version 1, byte for byte: during an
// upgrade, the ForceCommand gate of the older install talks to the newer
// daemon. The wire types (SocketRequest, SocketResponse, UserStatus) are
// therefore this package's own, not views of pairing's or gate's types,
// and TestWireBytes pins them.
package gatesocket
