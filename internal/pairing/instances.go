package pairing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/users"
)

// One latch per server (issue 17). With [latch] instance = "host", a
// pairing gives this server its own instance of each latch the user's
// logins ask about (the application's, and each operation's of
// [operations] and the user's [user_operations]: Latch keeps an instance
// under the latch it was made for, and a status call names the operation
// and the instance together), named instance_name ("ssh <host>" by
// default), and records their ids in [instances] (see users).
//
// The order, and what a failure leaves:
//
//   - pair writes the user's line first (as without instances), then
//     creates the instances, then records their ids on that line. Until
//     the ids are recorded the user's logins ask the whole latch, the
//     instances' parent: closing it still closes this server, so nothing
//     is let in that should not be. A failure after the Latch pairing does
//     not undo it: the error says so and names `latch-ssh pair --repair`,
//     which finishes the job (instances already created are recorded, or
//     found again by their name, never made twice).
//   - Repair creates what is missing for users paired before instances
//     were turned on, or whose instance Latch no longer knows, without a
//     new pairing code.
//   - unpair removes the user's line and [instances] entry, then this
//     server's instances at Latch (one another local user's entry also
//     names is kept), then the pairing as before.

// instanceName is this server's instance name under cfg.
func (m *Manager) instanceName(cfg *users.Config) string {
	host := m.host()
	if host == "" {
		host = "localhost"
	}
	return cfg.InstanceNameFor(host)
}

// setInstances records ids as name's [instances] entry (none: removes it)
// in cfg.InstancesFileFor(name), with account, the account they belong to, so that ids
// left behind when the user's account line changes are never asked about
// (users.Config.StaleInstances).
func (m *Manager) setInstances(cfg *users.Config, name, account string, ids map[string]string) error {
	file := cfg.InstancesFileFor(name)
	if file == cfg.Policy.PairingFile && len(ids) > 0 {
		if err := users.CreatePairingFile(file); err != nil {
			return err
		}
	}
	entry := maps.Clone(ids)
	if len(ids) > 0 {
		entry[users.InstanceAccountKey] = account
	}
	return users.SetInstances(file, name, entry)
}

// latchName names a latch for people: "the application latch" or "the
// operation OPSSHD…".
func latchName(op string) string {
	if op == "" {
		return "the application latch"
	}
	return "operation " + shortOperation(op)
}

// ensureInstances makes sure that account has this server's instance of
// each latch of name's, starting from the ids in have: a stored id Latch
// still lists is kept, else an instance Latch lists under this server's
// name is adopted (one created by a run that could not record it), else
// one is created. It returns the ids (have's, updated), what it did (one
// note per instance created or adopted) and the first error; the ids
// obtained before an error are returned with it.
func (m *Manager) ensureInstances(ctx context.Context, cfg *users.Config, lc *latch.Client, name, account string, have map[string]string) (map[string]string, []string, error) {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	instName := m.instanceName(cfg)
	var notes []string
	for _, op := range cfg.Latches(name) {
		key := users.InstanceKey(op)
		callCtx, cancel := context.WithTimeout(ctx, gate.LatchTimeout(cfg))
		list, err := lc.Instances(callCtx, account, op)
		cancel()
		if err != nil {
			return out, notes, &stepError{"listing the instances of " + latchName(op), err}
		}
		if id, ok := out[key]; ok && slices.ContainsFunc(list, func(in latch.Instance) bool { return in.ID == id }) {
			continue
		}
		if i := slices.IndexFunc(list, func(in latch.Instance) bool { return in.Name == instName }); i >= 0 {
			out[key] = list[i].ID
			notes = append(notes, fmt.Sprintf("found instance %q of %s", instName, latchName(op)))
			continue
		}
		callCtx, cancel = context.WithTimeout(ctx, gate.LatchTimeout(cfg))
		id, err := lc.AddInstance(callCtx, account, op, instName)
		cancel()
		if err != nil {
			return out, notes, &stepError{fmt.Sprintf("creating instance %q of %s", instName, latchName(op)), err}
		}
		out[key] = id
		notes = append(notes, fmt.Sprintf("created instance %q of %s", instName, latchName(op)))
	}
	return out, notes, nil
}

// stepError is an error of one Latch call of ensureInstances, with what
// was being done.
type stepError struct {
	what string
	err  error
}

func (e *stepError) Error() string { return e.what + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// pairInstances runs after a pairing was written: it creates and records
// the instances, and returns the sentence to add to the success message,
// or an error saying the pairing stands and how to finish.
func (m *Manager) pairInstances(ctx context.Context, cfg *users.Config, lc *latch.Client, name, account string) (string, error) {
	ids, _, err := m.ensureInstances(ctx, cfg, lc, name, account, nil)
	if len(ids) > 0 {
		if werr := m.setInstances(cfg, name, account, ids); werr != nil {
			return "", configFailure(errors.Join(err, werr),
				fmt.Sprintf("paired %s, but this server could not record its own instance of the latch (%s); until an administrator runs latch-ssh pair --repair, logins follow the whole latch", name, configTrouble),
				"paired %s, but recording its instances in [instances] of %s failed: %s\nuntil then its logins follow the whole latch; fix the file, then run: latch-ssh pair --repair --user %s",
				name, cfg.InstancesFileFor(name), cleanLines(werr.Error()), name)
		}
	}
	if err != nil {
		var step *stepError
		errors.As(err, &step)
		return "", fail(err, "paired %s with Latch account %s, but %s failed: %s\nuntil then its logins follow the whole latch (closing it still closes this server); to finish, run: latch-ssh pair --repair --user %s (root)",
			name, ShortAccount(account), step.what, Message(err), name)
	}
	return fmt.Sprintf("; this server has its own instance %q of the latch in the Latch app", m.instanceName(cfg)), nil
}

// Repair gives users paired before [latch] instance was turned on (or
// whose instance Latch no longer knows) this server's instances, without a
// new pairing code: for user, or for every user in [users] when user is
// "". It returns one line per user it changed; the error lists the users
// it could not finish, after trying them all. Root only: it is not
// offered through the daemon.
func (m *Manager) Repair(ctx context.Context, user string) (string, error) {
	if user != "" {
		if err := checkUser(user); err != nil {
			return "", err
		}
	}
	cfg, err := m.load(false)
	if err != nil {
		return "", err
	}
	if !cfg.InstancesOn() {
		return "", fail(nil, "instances are off in %s: set instance = \"host\" in [latch] first, then run latch-ssh pair --repair", m.ConfigPath)
	}
	names := slices.Sorted(maps.Keys(cfg.Users))
	if user != "" {
		if _, ok := cfg.Account(user); !ok {
			return "", fail(nil, "%s is not paired with Latch (no line in [users]): pair it with latch-ssh pair --user %s TOKEN", user, user)
		}
		names = []string{user}
	}
	lc, err := client(cfg)
	if err != nil {
		return "", err
	}
	defer lc.CloseIdleConnections()
	var done, failed []string
	for _, name := range names {
		line, err := m.repairOne(ctx, cfg, lc, name)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %s", name, err))
		case line != "":
			done = append(done, line)
		}
	}
	out := strings.Join(done, "\n")
	if out == "" && len(failed) == 0 {
		out = "every user already has this server's instances: nothing to do"
	}
	if len(failed) > 0 {
		return out, fail(nil, "%s", strings.TrimPrefix(out+"\ncould not finish:\n"+strings.Join(failed, "\n"), "\n"))
	}
	return out, nil
}

// repairOne is Repair for one user.
func (m *Manager) repairOne(ctx context.Context, cfg *users.Config, lc *latch.Client, name string) (string, error) {
	done, err := m.begin(name)
	if err != nil {
		return "", err
	}
	defer done()
	account, _ := cfg.Account(name)
	have := cfg.Instances[name]
	if cfg.StaleInstances(name) {
		// The ids belong to the account name had before: this account
		// gets instances of its own (those of the old account are left
		// to it).
		have = nil
	}
	ids, notes, err := m.ensureInstances(ctx, cfg, lc, name, account, have)
	if !maps.Equal(ids, cfg.Instances[name]) || cfg.InstanceAccounts[name] != account {
		if werr := m.setInstances(cfg, name, account, ids); werr != nil {
			return "", fmt.Errorf("recording its instances failed: %s", cleanLines(werr.Error()))
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s", Message(err))
	}
	if len(notes) == 0 {
		return "", nil
	}
	return fmt.Sprintf("%s: %s", name, strings.Join(notes, ", ")), nil
}

// dropInstances removes name's [instances] entry (ids, read before the
// user's line was removed), then the instances at Latch (removeInstances,
// with cfg read after). It returns a sentence about what it left behind,
// "" when nothing.
func (m *Manager) dropInstances(ctx context.Context, cfg *users.Config, lc *latch.Client, name, account string, ids map[string]string) string {
	if len(ids) == 0 {
		return ""
	}
	var left []string
	if err := m.setInstances(cfg, name, account, nil); err != nil {
		left = append(left, fmt.Sprintf("its [instances] entry could not be removed (%s): remove it by hand", cleanLines(err.Error())))
	} else if fresh, err := users.Load(m.ConfigPath); err == nil {
		cfg = fresh
	}
	if s := removeInstances(ctx, cfg, lc, account, ids); s != "" {
		left = append(left, s)
	}
	return strings.Join(left, "; ")
}

// removeInstances deletes at Latch the instances of name's entry (ids),
// except those another user's entry in cfg (read after name's was
// removed) also names. It returns a sentence about those it could not
// remove, "" when all went.
func removeInstances(ctx context.Context, cfg *users.Config, lc *latch.Client, account string, ids map[string]string) string {
	shared := map[string]bool{}
	for _, other := range cfg.Instances {
		for _, id := range other {
			shared[id] = true
		}
	}
	var left []string
	for _, key := range slices.Sorted(maps.Keys(ids)) {
		id := ids[key]
		if shared[id] {
			continue
		}
		op := key
		if key == users.AppInstanceKey {
			op = ""
		}
		callCtx, cancel := context.WithTimeout(ctx, gate.LatchTimeout(cfg))
		err := lc.RemoveInstance(callCtx, account, op, id)
		cancel()
		if err != nil && !latch.IsUnknownInstance(err) && !latch.IsNotPaired(err) {
			left = append(left, fmt.Sprintf("%s (%s)", id, Message(err)))
		}
	}
	if len(left) == 0 {
		return ""
	}
	return "this server's instances could not be removed at Latch: " + strings.Join(left, "; ") + "; remove them in the Latch app"
}
