// Package users loads latch-ssh's configuration, /etc/latch-ssh/latch.toml
// and its drop-ins /etc/latch-ssh/latch.d/*.toml (dropin.go): the Latch
// application credentials, the decision policy, the operations per service
// and the map from local users to Latch accounts.
//
// Loading is strict because the file is a security control: unknown keys,
// wrong types and out-of-range values are errors, every problem is reported
// with its file, line and fix, and the file (and any secret_file or ca_file)
// is refused when someone other than root could change it, or read a secret
// in it. The drop-ins are held to the same rules, each file separately, and
// merged key by key: a key or user set in two files is an error naming
// both. SetUser, AddUser and RemoveUser edit the [users] table of one file
// in place, keeping every other byte the admin wrote; Config.FileFor says
// which file.
package users

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// Defaults that callers outside this package rely on.
const (
	// DefaultPath is where the configuration lives.
	DefaultPath = "/etc/latch-ssh/latch.toml"
	// DefaultAPIURL is the Latch service.
	DefaultAPIURL = "https://latch.tu.com"
	// DefaultTimeout bounds one whole Latch call when [latch] timeout is not set.
	DefaultTimeout = 3 * time.Second
	// DefaultSocket is the daemon's gate socket.
	DefaultSocket = "/run/latch-ssh/gate.sock"
)

// Config is a loaded, validated configuration. Build it with Load (or Parse,
// which skips the filesystem); a Config made by hand has none of the
// defaults filled in. Treat it as read-only: it is shared between
// goroutines that decide logins.
type Config struct {
	// Path is the file the configuration was loaded from (Load) or the name
	// given to Parse: the main file.
	Path string
	// Files is every file read, in order: Path, then its drop-ins
	// (DropInDir) in lexical order.
	Files  []string
	Latch  Latch
	Policy Policy
	// Operations maps a service name (PAM service or front end: "sshd",
	// also the ForceCommand gate's, "sudo", "server") to a Latch operation id. Use
	// Operation, which applies the per-user overrides.
	Operations map[string]string
	// UserOperations maps a user to per-service operation ids that win
	// over Operations for that user.
	UserOperations map[string]map[string]string
	// Users maps a local user name to a Latch account id. Use Account.
	Users map[string]string
	// UserSources maps each user of Users to the file and line that map
	// them. Use FileFor to find the file to edit.
	UserSources map[string]Source
	Daemon      Daemon
	Server      Server
	Metrics     Metrics

	// Instances maps a local user name to the ids of this server's
	// instances of their latches, keyed by InstanceKey. Use Instance,
	// which applies [latch] instance.
	Instances map[string]map[string]string
	// InstanceAccounts maps a user of Instances to the account their
	// instances belong to, when recorded (see StaleInstances).
	InstanceAccounts map[string]string
	// InstanceSources maps each user of Instances to the file and line of
	// their [instances] entry. Use InstancesFileFor.
	InstanceSources map[string]Source
}

// Latch is the [latch] table: how to reach and authenticate to Latch.
type Latch struct {
	AppID string
	// Secret is the application secret, from the secret key or, after Load,
	// from SecretFile. Parse leaves it empty when secret_file is used: only
	// Load reads files.
	Secret Secret
	// SecretFile is the absolute path of a file holding the secret, or "".
	SecretFile string
	// APIURL is https://host[:port], with no trailing slash.
	APIURL     string
	APIVersion string
	// Timeout bounds one whole Latch call: DNS, connect, TLS and answer
	// (100ms..60s).
	Timeout Duration
	// CAFile is an absolute path to PEM roots, or "" for the system roots.
	CAFile string
	// Proxy is an http:// or https:// proxy URL, or "" for none. It may
	// hold credentials: do not log it.
	Proxy string
	// Instance is InstanceHost when each server asks about its own
	// instance of every user's latch (see instances.go).
	Instance InstanceMode
	// InstanceName names this server's instances, %h the host name (after
	// Parse, DefaultInstanceName when not set). Use InstanceNameFor.
	InstanceName string
}

// Policy is the [policy] table: what to decide when Latch gives no answer
// or the user has no account.
type Policy struct {
	// FailMode is always set: the key is required, because either default
	// would surprise someone.
	FailMode FailMode
	Unpaired Unpaired
	// End says what else ends with a session whose latch closed: the
	// login's own processes (EndSession) or every process of the user
	// (EndUser).
	End End
	// ExemptGroups are never asked about; their logins are logged loudly.
	ExemptGroups     []string
	OTP              OTP
	Silent           bool
	AllowSelfPairing bool
	PairCommonName   bool
	// PairingFile is the file new pairings are written to: the path of
	// latch.d/NAME.toml beside the main file (default
	// DefaultPairingFile), or the main file itself when pairing_file
	// names it. Use Config.FileFor.
	PairingFile string
}

// Daemon is the [daemon] table.
type Daemon struct {
	// Socket is the absolute path of the gate socket.
	Socket string
	// RateLimit is the number of decisions per uid per minute (1..10000).
	RateLimit int
}

// Metrics is the [metrics] table: the daemon's Prometheus metrics. Both
// are off by default; either, or both, may be set.
type Metrics struct {
	// Listen is host:port of the HTTP endpoint that serves /metrics, or
	// "" when it is off.
	Listen string
	// Textfile is the absolute path of a node_exporter textfile (its name
	// ends in .prom), rewritten by the daemon at an interval and when it
	// stops, or "" when it is off.
	Textfile string
}

// Server is the [server] table, for the embedded SSH server.
type Server struct {
	// Listen is host:port, or "" when the embedded server is off.
	Listen string
	// HostKey lists absolute paths of host private keys.
	HostKey []string
	// AuthorizedKeys is a path pattern: %h home, %u user name, %% a
	// literal %. It starts with / or %h.
	AuthorizedKeys string
	// Recheck is how often live sessions re-check the latch: 0 (off) or
	// 1s..24h.
	Recheck            Duration
	AllowTCPForwarding bool
	LoginGraceTime     Duration // 1s..1h
	MaxAuthTries       int      // 1..100
	// MaxUnauthenticated caps connections that have not authenticated yet
	// (1..100000).
	MaxUnauthenticated int
	// MaxUnauthenticatedPerSource caps them per source block (an IPv4
	// address or an IPv6 /64): 1..MaxUnauthenticated. Default 10, or a
	// quarter of MaxUnauthenticated (at least 1) when that is smaller.
	MaxUnauthenticatedPerSource int
	// EarlyDropStart and EarlyDropRate are sshd's MaxStartups start and
	// rate: from EarlyDropStart unauthenticated connections on, a new one
	// is dropped with probability EarlyDropRate percent, rising linearly
	// to 100 at MaxUnauthenticated. EarlyDropStart is 1..MaxUnauthenticated
	// (equal: no early drop; default 10, or MaxUnauthenticated when that
	// is smaller), EarlyDropRate 0..100 (default 30).
	EarlyDropStart   int
	EarlyDropRate    int
	HandshakeTimeout Duration // 1s..10m
	// Penalties, like sshd's PerSourcePenalties: a source block whose
	// connection ended without logging in accrues PenaltyNoAuth (it never
	// tried to authenticate), PenaltyAuthFail (it tried and failed) or
	// PenaltyTimeout (handshake_timeout or login_grace_time closed it),
	// each 0 (none) or 1s..1h. Accrued time adds up to PenaltyMax
	// (1s..24h); once above PenaltyMin (0..1h) the block's new connections
	// are refused at once until it runs out.
	PenaltyNoAuth   Duration
	PenaltyAuthFail Duration
	PenaltyTimeout  Duration
	PenaltyMin      Duration
	PenaltyMax      Duration
	// PenaltyMaxSources bounds the blocks tracked, per address family
	// (1..1000000); PenaltyOverflow says what happens when they are all
	// taken.
	PenaltyMaxSources int
	PenaltyOverflow   PenaltyOverflow
	// PenaltyExempt lists networks that are never penalised nor dropped at
	// random, and may use the slots kept beyond MaxUnauthenticated.
	PenaltyExempt []netip.Prefix
	// SFTPServer is an absolute path, or "" to find the system's later.
	SFTPServer string
}

// PenaltyOverflow is what the embedded server does when the penalty table
// of an address family is full (sshd's PerSourcePenalties overflow).
type PenaltyOverflow string

// The overflow modes.
const (
	// OverflowPermissive forgets the penalty closest to its end to make
	// room for a new one.
	OverflowPermissive PenaltyOverflow = "permissive"
	// OverflowDenyAll refuses every new connection of that family, but
	// from penalty_exempt, until a penalty ends.
	OverflowDenyAll PenaltyOverflow = "deny-all"
)

// FailMode is what a decision gives when Latch cannot answer.
type FailMode string

// The fail modes.
const (
	FailOpen   FailMode = "open"   // allow the login
	FailClosed FailMode = "closed" // deny the login
)

// Unpaired is the decision for a user with no Latch account.
type Unpaired string

// The unpaired policies.
const (
	UnpairedAllow Unpaired = "allow" // Latch is opt-in
	UnpairedDeny  Unpaired = "deny"  // every user must be paired
)

// End is what a recheck ends besides the connection whose latch closed
// ([policy] end).
type End string

// The end policies.
const (
	// EndSession ends the login's processes: the connection and what it
	// started in its own sessions and process groups (a `setsid nohup`
	// survives, as it survives OpenSSH's own hangup).
	EndSession End = "session"
	// EndUser ends every process whose real uid is the user's: background
	// jobs, nohup, setsid, tmux and their other logins. Never applied to
	// uid 0 or to the daemon's own uid.
	EndUser End = "user"
)

// OTP says whether to prompt for a Latch one-time code.
type OTP string

// The OTP policies.
const (
	OTPPrompt OTP = "prompt" // prompt where a person can answer, else ask Latch not to require one
	OTPNever  OTP = "never"  // never prompt: always ask Latch not to require a code
)

// Secret is the Latch application secret. Every way of printing or
// encoding it gives "[redacted]", so a Config can be logged; get the value
// with Config.Secret or a string conversion, and never put that in a
// message.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", for %#v.
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" whatever the verb (%x and %q included).
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText returns "[redacted]", so encoders (JSON, TOML) do not leak it
// either.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Duration is a time.Duration written in TOML as a string like "3s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration such as "500ms", "3s", "2m" or "0".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"3s\" or \"500ms\": %w", b, err)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration as UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Secret returns the Latch application secret. After Parse of a file that
// uses secret_file it is "": the file is read by Load.
func (c *Config) Secret() string { return string(c.Latch.Secret) }

// Account returns the Latch account id of a local user, and whether the
// user is mapped at all.
func (c *Config) Account(user string) (accountID string, ok bool) {
	accountID, ok = c.Users[user]
	return accountID, ok
}

// Operation returns the Latch operation id for user logging in through
// service: the user's own [user_operations] entry if any, else the
// [operations] entry, else "" (check the application's latch itself).
func (c *Config) Operation(user, service string) string {
	if op, ok := c.UserOperations[user][service]; ok {
		return op
	}
	return c.Operations[service]
}

// UsersOfAccount returns, sorted, every local user mapped to accountID.
// Unpairing calls the API only when this is the last one.
func (c *Config) UsersOfAccount(accountID string) []string {
	var users []string
	for u, a := range c.Users {
		if a == accountID {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return users
}
