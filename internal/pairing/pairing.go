// Package pairing pairs local users with Latch accounts: the work behind
// `latch-ssh pair`, `latch-ssh unpair` and `latch-ssh status`. Root runs a
// Manager directly on the configuration; a person acting on their own
// account goes through the daemon, which runs the same Manager behind
// SelfService, with the user name taken from the socket's SO_PEERCRED.
//
// Every operation loads the configuration afresh, so it acts on what the
// files say now (an admin may have edited them since the daemon started),
// and edits [users] with users.AddUser and users.RemoveUser, which keep
// every other byte the admin wrote, in one file: the file that maps the
// user, else [policy] pairing_file (users.Config.FileFor). So with
// pairing_file set, a latch.toml that configuration management rewrites is
// never edited by pair.
//
// The order of the steps is chosen so that a failure half way leaves
// something a person can finish:
//
//   - pair asks Latch first (only Latch knows the account id) and writes
//     [users] after; if the write fails, the Latch pairing is undone.
//   - unpair removes the [users] line first and tells Latch after; if Latch
//     cannot be told, the message says how to finish from the phone. The
//     other order would leave a line pointing at an account Latch no longer
//     pairs when the edit fails, and an edit can fail for reasons (a
//     hand-written layout, [user_operations]) that no retry fixes.
//
// Error texts are written for people: each says what went wrong and what to
// do. Message gives that text for any error of the Latch client.
package pairing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/users"
)

var (
	// tokenPattern is a pairing code as the Latch app shows it.
	tokenPattern = regexp.MustCompile(`^[A-Za-z0-9]{6}$`)
	// userPattern is the users package's rule for names in [users]
	// (what useradd accepts by default). Checking it before calling Latch
	// means a name the edit would refuse never pairs an account first.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)
)

// UserStatus describes one local user's mapping and live latch state: the
// answer of Status. The daemon sends it to a person over the gate socket
// in its own wire form (gatesocket.WireStatus).
type UserStatus struct {
	User string
	// Paired is true when the user has an account in [users].
	Paired bool
	// Account is the account id, shortened for display ("abcd...wxyz").
	Account string
	// Latches lists the live state per service/operation: the application
	// latch first, then every service with an operation, by service.
	Latches []LatchState
	// Note is a plain-language remark, e.g. NoteUnpairedFromPhone.
	Note string
}

// LatchState is the state of one latch of a user.
type LatchState struct {
	// Service is the service or front end, "" for the application latch.
	Service string
	// Operation is the operation id, shortened for display ("OPSSHD…").
	Operation string
	// State is StateOpen, StateClosed, StateUnpaired or StateError.
	State string
	// Detail explains an error or unpaired state, for people.
	Detail string
}

// The states of LatchState.State.
const (
	StateOpen     = "open"
	StateClosed   = "closed"
	StateUnpaired = "unpaired"
	StateError    = "error"
)

// NoteUnpairedFromPhone is UserStatus.Note when Latch answers 201: the
// person removed this server from the Latch app.
const NoteUnpairedFromPhone = "unpaired from the phone (Latch 201): pair again"

// ErrConfig is wrapped by errors about the configuration file itself: it
// does not load, cannot be edited, or names a CA file that cannot be read.
// Their text names files and lines, which is for root; SelfService shows a
// person a plain sentence instead.
var ErrConfig = errors.New("latch-ssh configuration problem")

// Manager pairs, unpairs and reports on local users. The zero value with
// ConfigPath set is ready to use; a Manager is safe for concurrent use and
// must not be copied after first use.
type Manager struct {
	// ConfigPath is the configuration to read and edit.
	ConfigPath string
	// Hostname names this server in the commonName sent when pairing
	// (user@host); default os.Hostname.
	Hostname func() (string, error)
	// LookupUser checks that a local user exists before pairing it;
	// default os/user.Lookup (NSS). Tests replace it to pair names that
	// are not real accounts.
	LookupUser func(name string) (*user.User, error)

	// mu guards busy, the users with a pair or unpair in progress in this
	// process. A second operation for the same user is refused rather
	// than queued: two pairings racing could both pass the "already
	// paired" check and pair two Latch accounts, one of which the last
	// write would orphan.
	mu   sync.Mutex
	busy map[string]bool
}

// failure is an error of a pairing operation. Error is the full text, for
// root; public, when set, is the same news without details of the server's
// files, for a person acting through the daemon. err is the cause, so
// errors.Is and errors.As (latch.ErrorCode) see through it.
type failure struct {
	msg, public string
	err         error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

func fail(err error, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), err: err}
}

// configFailure is a failure about the configuration file: errors.Is(err,
// ErrConfig) holds, and public is what a person is told.
func configFailure(err error, public, format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), public: public, err: errors.Join(ErrConfig, err)}
}

// publicMessage is the text of err for a person who is not root.
func publicMessage(err error) string {
	var f *failure
	if errors.As(err, &f) && f.public != "" {
		return f.public
	}
	if errors.Is(err, ErrConfig) {
		return configTrouble
	}
	return safetext.Clean(err.Error())
}

const configTrouble = "the latch-ssh configuration on this server has a problem: ask an administrator (latch-ssh check-config)"

// cleanLines cleans each line of s of control characters, keeping the line
// breaks of multi-line texts such as a list of configuration problems.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safetext.Clean(l)
	}
	return strings.Join(lines, "\n")
}

// CheckToken checks that token looks like a pairing code of the Latch app,
// so a typo is caught before any call to Latch.
func CheckToken(token string) error {
	if !tokenPattern.MatchString(token) {
		return errors.New("a pairing code is the 6 letters and digits the Latch app shows when it generates one; check what you typed")
	}
	return nil
}

func checkUser(name string) error {
	if !userPattern.MatchString(name) {
		return fmt.Errorf("%q is not a valid user name: use 1 to 32 letters, digits, \"_\", \".\" or \"-\", not starting with \".\" or \"-\"", safetext.Clean(name))
	}
	return nil
}

// ShortAccount shortens a Latch account id for display, "abcd…wxyz": enough
// to tell accounts apart, not the whole id.
func ShortAccount(id string) string {
	if len(id) <= 12 {
		return id
	}
	return id[:4] + "…" + id[len(id)-4:]
}

// shortOperation shortens an operation id for display, "OPSSHD…".
func shortOperation(id string) string {
	if len(id) <= 8 {
		return id
	}
	return id[:6] + "…"
}

// rootOnlyChange is the end of a self-service refusal to change or remove
// name's pairing: why, and who can.
func rootOnlyChange(name string) string {
	return fmt.Sprintf("on this server only root can change or remove a pairing, so that someone who gets into your account cannot move its latch to their own phone; ask an administrator (latch-ssh unpair --user %s), or remove this server in the Latch app", name)
}

// Pair pairs the local user with the Latch account whose owner generated
// token in the Latch app, and writes user = "account" into [users]. The
// user must exist on this system and not be paired yet. It returns the
// message to show on success.
func (m *Manager) Pair(ctx context.Context, user, token string) (string, error) {
	return m.pair(ctx, user, token, false)
}

// Unpair removes the user's line from [users] and, unless another local
// user maps to the same Latch account, unpairs that account at Latch. When
// Latch cannot be told, the line is still removed and the error says how to
// finish from the Latch app.
func (m *Manager) Unpair(ctx context.Context, user string) (string, error) {
	return m.unpair(ctx, user, false)
}

// Status reports the user's mapping and the live state of the application
// latch and of every operation that applies to the user. It never makes
// Latch generate a one-time code (every call uses /nootp), so asking does
// not prompt the person's phone for a second factor. Latch errors are
// reported per latch (State "error", Detail for people); the error return
// is for problems before any call (bad name, configuration).
func (m *Manager) Status(ctx context.Context, user string) (UserStatus, error) {
	return m.status(ctx, user, false)
}

// begin marks name busy until the returned function is called.
func (m *Manager) begin(name string) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[name] {
		return nil, fail(nil, "another pair or unpair of %s is in progress: wait for it to finish, then try again", name)
	}
	if m.busy == nil {
		m.busy = map[string]bool{}
	}
	m.busy[name] = true
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.busy, name)
	}, nil
}

// load reads the configuration afresh. For a person acting through the
// daemon (self), it also checks allow_self_pairing in the file as it is now:
// the daemon checked its own copy, which may be older than an admin's edit.
func (m *Manager) load(self bool) (*users.Config, error) {
	cfg, err := users.Load(m.ConfigPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, configFailure(err, configTrouble,
			"%s: no such file: write the configuration first (start from latch.toml.example), then run latch-ssh check-config", m.ConfigPath)
	case err != nil:
		return nil, configFailure(err, configTrouble, "%s\n(latch-ssh check-config -c %s lists every problem with its fix)", cleanLines(err.Error()), m.ConfigPath)
	}
	if self && !cfg.Policy.AllowSelfPairing {
		return nil, fail(nil, "self-service pairing is turned off on this server: ask an administrator (allow_self_pairing)")
	}
	return cfg, nil
}

// client builds the Latch client from cfg.
func client(cfg *users.Config) (*latch.Client, error) {
	c, err := gate.NewLatchClient(cfg)
	if err != nil {
		return nil, configFailure(err, configTrouble, "%s: [latch]: %s", cfg.Path, safetext.Clean(err.Error()))
	}
	return c, nil
}

func (m *Manager) lookupUser(name string) error {
	lookup := m.LookupUser
	if lookup == nil {
		lookup = user.Lookup
	}
	_, err := lookup(name)
	var unknown user.UnknownUserError
	switch {
	case errors.As(err, &unknown):
		return fail(err, "there is no user %s on this system: only existing local users can be paired", name)
	case err != nil:
		return fail(err, "cannot look up user %s: %s", name, safetext.Clean(err.Error()))
	}
	return nil
}

// uidUnpaired refuses a self-service pairing of name when another [users]
// name has name's uid: the latch follows the uid (gate.Core.resolve), so
// that uid is already paired, under another name (an alias, `useradd -o`,
// a shared LDAP uid). A second line with another Latch account would make
// the gate deny every login of the uid as a misconfiguration: someone with
// a foothold in the account could lock its owner out, and the account would
// then carry a latch of theirs; changing a pairing needs root. A name NSS
// does not know shares no uid; a lookup that fails refuses, as the gate
// denies when it cannot tell.
func (m *Manager) uidUnpaired(cfg *users.Config, name string) error {
	lookup := m.LookupUser
	if lookup == nil {
		lookup = user.Lookup
	}
	u, err := lookup(name)
	if err != nil {
		return fail(err, "cannot look up user %s: %s", name, safetext.Clean(err.Error()))
	}
	var unknown user.UnknownUserError
	for _, other := range slices.Sorted(maps.Keys(cfg.Users)) {
		if other == name {
			continue
		}
		o, err := lookup(other)
		switch {
		case errors.As(err, &unknown):
			continue
		case err != nil:
			return fail(err, "cannot look up user %s: %s", other, safetext.Clean(err.Error()))
		}
		if o.Uid == u.Uid {
			return fail(nil, "%s is already paired: its uid %s is paired as %s (Latch account %s): %s",
				name, u.Uid, other, ShortAccount(cfg.Users[other]), rootOnlyChange(other))
		}
	}
	return nil
}

// commonName is the label the Latch app and admin panels show for the
// pairing: user@host, or the user alone when the host name is unknown.
func (m *Manager) commonName(name string) string {
	if host := m.host(); host != "" {
		return name + "@" + host
	}
	return name
}

// host is this server's name for people (pairing names, instance names),
// "" when unknown.
func (m *Manager) host() string {
	hostname := m.Hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	host, err := hostname()
	if err != nil {
		return ""
	}
	return safetext.Clean(strings.TrimSpace(host))
}

func (m *Manager) pair(ctx context.Context, name, token string, self bool) (string, error) {
	if err := CheckToken(token); err != nil {
		return "", err
	}
	if err := checkUser(name); err != nil {
		return "", err
	}
	done, err := m.begin(name)
	if err != nil {
		return "", err
	}
	defer done()
	if err := m.lookupUser(name); err != nil {
		return "", err
	}
	cfg, err := m.load(self)
	if err != nil {
		return "", err
	}
	if acc, ok := cfg.Account(name); ok {
		if self {
			return "", fail(nil, "%s is already paired (Latch account %s): %s", name, ShortAccount(acc), rootOnlyChange(name))
		}
		return "", fail(nil, "%s is already paired (Latch account %s); run latch-ssh unpair first", name, ShortAccount(acc))
	}
	if self {
		if err := m.uidUnpaired(cfg, name); err != nil {
			return "", err
		}
	}
	lc, err := client(cfg)
	if err != nil {
		return "", err
	}
	defer lc.CloseIdleConnections()
	commonName := ""
	if cfg.Policy.PairCommonName {
		commonName = m.commonName(name)
	}
	callCtx, cancel := context.WithTimeout(ctx, gate.LatchTimeout(cfg))
	account, err := lc.Pair(callCtx, token, commonName)
	cancel()
	if err != nil {
		return "", fail(err, "pairing %s failed: %s", name, Message(err))
	}
	// The line goes into [policy] pairing_file when set (a drop-in that
	// configuration management leaves alone, created on first use), else
	// into the main file. AddUser, not SetUser: another process may have
	// paired this user since the check above; then this pairing is
	// rolled back.
	file := cfg.FileFor(name)
	if file == cfg.Policy.PairingFile {
		if err := users.CreatePairingFile(file); err != nil {
			return "", m.rollback(ctx, cfg, lc, name, account, file, err)
		}
	}
	if err := users.AddUser(file, name, account); err != nil {
		return "", m.rollback(ctx, cfg, lc, name, account, file, err)
	}
	// AddUser checked the one file it edited; the configuration is all
	// of its files. When it no longer loads with the new line (the same
	// user mapped meanwhile in another file: configuration management
	// writing latch.toml, say), the line is taken out again and the
	// pairing undone, since a configuration that does not load denies
	// every login.
	if _, err := users.Load(m.ConfigPath); err != nil {
		if _, rmErr := users.RemoveUser(file, name); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("taking the line out again: %w", rmErr))
		}
		return "", m.rollback(ctx, cfg, lc, name, account, file,
			fmt.Errorf("with the new line the configuration does not load, so it was taken out again: %w", err))
	}
	tail := ""
	if cfg.InstancesOn() {
		if tail, err = m.pairInstances(ctx, cfg, lc, name, account); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("paired %s with Latch account %s: logins as %s now follow its latch%s", name, ShortAccount(account), name, tail), nil
}

// rollback undoes a Latch pairing whose [users] line could not be written,
// unless another local user maps to the same account (an admin's line for
// an account the phone had unpaired), and explains the outcome.
func (m *Manager) rollback(ctx context.Context, cfg *users.Config, lc *latch.Client, name, account, file string, editErr error) error {
	what := fmt.Sprintf("Latch paired %s, but writing it into [users] of %s failed: %s", name, file, cleanLines(editErr.Error()))
	public := fmt.Sprintf("Latch paired %s, but this server could not record it (%s)", name, configTrouble)
	if fresh, err := users.Load(m.ConfigPath); err == nil {
		cfg = fresh
	}
	if others := otherUsers(cfg, account, name); len(others) > 0 {
		tail := fmt.Sprintf("; the Latch pairing stays, because %s also use(s) that account", strings.Join(others, ", "))
		return configFailure(editErr, public+tail, "%s%s", what, tail)
	}
	// Undo even if the caller gave up (Ctrl-C, a closed connection): a
	// pairing nobody recorded is worse than a late call.
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gate.LatchTimeout(cfg))
	defer cancel()
	if err := lc.Unpair(undoCtx, account); err != nil && !latch.IsNotPaired(err) {
		tail := fmt.Sprintf("; undoing the Latch pairing failed too (%s): remove this server in the Latch app, then pair again", Message(err))
		return configFailure(errors.Join(editErr, err), public+tail, "%s%s", what, tail)
	}
	tail := "; the Latch pairing was undone, so nothing changed"
	return configFailure(editErr, public+tail, "%s%s: fix the file, then pair again with a new code", what, tail)
}

// otherUsers lists the local users other than name mapped to account.
func otherUsers(cfg *users.Config, account, name string) []string {
	return slices.DeleteFunc(cfg.UsersOfAccount(account), func(u string) bool { return u == name })
}

func (m *Manager) unpair(ctx context.Context, name string, self bool) (msg string, err error) {
	if err := checkUser(name); err != nil {
		return "", err
	}
	// Self-service never removes a pairing, whatever the policy: see
	// SelfService. Refused before any edit or Latch call, so the attempt
	// changes nothing anywhere; the file is read only to say "turned off"
	// where self-service is.
	if self {
		if _, err := m.load(self); err != nil {
			return "", err
		}
		return "", fail(nil, "unpairing needs an administrator: %s", rootOnlyChange(name))
	}
	done, err := m.begin(name)
	if err != nil {
		return "", err
	}
	defer done()
	cfg, err := m.load(self)
	if err != nil {
		return "", err
	}
	account, ok := cfg.Account(name)
	if !ok {
		return "", fail(nil, "%s is not paired with Latch (no line in [users]): nothing to unpair", name)
	}
	// The file whose line maps the user: latch.toml for a line an admin
	// wrote there, the pairing drop-in for a pairing made by pair.
	file := cfg.FileFor(name)
	if _, ok := cfg.UserOperations[name]; ok {
		return "", configFailure(nil,
			fmt.Sprintf("%s has its own Latch operations in this server's configuration: ask an administrator to unpair you", name),
			"%s has its own operations in [user_operations.%s] (in %s or its drop-ins), which need the [users] line: remove that table first, then unpair", name, name, m.ConfigPath)
	}
	// Build the client before editing: if it cannot be built, nothing
	// has changed yet.
	lc, err := client(cfg)
	if err != nil {
		return "", err
	}
	defer lc.CloseIdleConnections()
	prev, err := users.RemoveUser(file, name)
	switch {
	case errors.Is(err, users.ErrNotMapped):
		return "", fail(err, "%s is not paired with Latch (no line in [users]): nothing to unpair", name)
	case err != nil:
		return "", configFailure(err, fmt.Sprintf("could not unpair %s, nothing changed: %s", name, configTrouble),
			"could not remove %s from [users], nothing changed: %s", name, cleanLines(err.Error()))
	}
	if prev != "" {
		account = prev // what the line said when it was removed
	}
	instances := cfg.Instances[name]
	if fresh, err := users.Load(m.ConfigPath); err == nil {
		cfg = fresh
	}
	// Issue 17: this server's instances go with the line; any left
	// behind are named after the outcome of the unpairing.
	if left := m.dropInstances(ctx, cfg, lc, name, account, instances); left != "" {
		defer func() {
			if err == nil {
				msg, err = "", fail(nil, "%s, but %s", msg, left)
			}
		}()
	}
	if others := otherUsers(cfg, account, name); len(others) > 0 {
		return fmt.Sprintf("unpaired %s (removed from [users]); Latch account %s stays paired because %s also use(s) it",
			name, ShortAccount(account), strings.Join(others, ", ")), nil
	}
	callCtx, cancel := context.WithTimeout(ctx, gate.LatchTimeout(cfg))
	err = lc.Unpair(callCtx, account)
	cancel()
	switch {
	case err == nil:
		return fmt.Sprintf("unpaired %s from Latch account %s", name, ShortAccount(account)), nil
	case latch.IsNotPaired(err):
		return fmt.Sprintf("unpaired %s (removed from [users]); Latch account %s had already been unpaired from the phone",
			name, ShortAccount(account)), nil
	default:
		return "", fail(err, "removed %s from [users], but Latch was not told, so the account stays paired there: to finish, remove this server in the Latch app. Why Latch was not told: %s",
			name, Message(err))
	}
}

// target is one latch status asks about.
type target struct {
	service, op string
}

func (m *Manager) status(ctx context.Context, name string, self bool) (UserStatus, error) {
	if err := checkUser(name); err != nil {
		return UserStatus{}, err
	}
	cfg, err := m.load(self)
	if err != nil {
		return UserStatus{}, err
	}
	st := UserStatus{User: name}
	account, ok := cfg.Account(name)
	if !ok {
		st.Note = unpairedNote(cfg, name)
		return st, nil
	}
	st.Paired, st.Account = true, ShortAccount(account)
	lc, err := client(cfg)
	if err != nil {
		return UserStatus{}, err
	}
	defer lc.CloseIdleConnections()

	targets := targetsOf(cfg, name)
	// One call per distinct latch, all at once, each under the timeout:
	// the person waits one round trip, not one per operation.
	var distinct []string
	for _, t := range targets {
		if !slices.Contains(distinct, t.op) {
			distinct = append(distinct, t.op)
		}
	}
	// The core's status call, with this fresh configuration: the same
	// timeout and [policy] silent as a login's, and never a one-time code.
	core := &gate.Core{Config: cfg, Latch: lc}
	states := make([]LatchState, len(distinct))
	var wg sync.WaitGroup
	for i, op := range distinct {
		wg.Go(func() { states[i] = latchState(ctx, core, name, account, op) })
	}
	wg.Wait()
	for _, t := range targets {
		s := states[slices.Index(distinct, t.op)]
		s.Service, s.Operation = t.service, shortOperation(t.op)
		if s.State == StateUnpaired {
			st.Note = NoteUnpairedFromPhone
		}
		st.Latches = append(st.Latches, s)
	}
	return st, nil
}

// targetsOf lists the application latch, then every service with an
// operation for name, sorted by service.
func targetsOf(cfg *users.Config, name string) []target {
	services := map[string]bool{}
	for s := range cfg.Operations {
		services[s] = true
	}
	for s := range cfg.UserOperations[name] {
		services[s] = true
	}
	out := []target{{}}
	for _, s := range slices.Sorted(maps.Keys(services)) {
		if op := cfg.Operation(name, s); op != "" {
			out = append(out, target{service: s, op: op})
		}
	}
	return out
}

// latchState asks Latch for one latch, never generating a one-time code.
func latchState(ctx context.Context, core *gate.Core, name, account, op string) LatchState {
	// nootp: status must never push a second-factor prompt to the phone.
	s, _, err := core.UserLatchStatus(ctx, name, account, op, true)
	switch {
	case err == nil && s.Open:
		return LatchState{State: StateOpen}
	case err == nil:
		return LatchState{State: StateClosed}
	case latch.IsNotPaired(err):
		return LatchState{State: StateUnpaired, Detail: Message(err)}
	default:
		return LatchState{State: StateError, Detail: Message(err)}
	}
}

// unpairedNote says what happens to the logins of a user with no account.
func unpairedNote(cfg *users.Config, name string) string {
	if cfg.Policy.Unpaired == users.UnpairedDeny {
		return fmt.Sprintf("not paired with Latch: logins as %s are refused until paired (unpaired = \"deny\"); pair with latch-ssh pair and a code from the Latch app", name)
	}
	return fmt.Sprintf("not paired with Latch: logins as %s do not ask Latch (unpaired = \"allow\"); pair with latch-ssh pair and a code from the Latch app", name)
}
