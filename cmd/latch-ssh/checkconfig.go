package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/sshserver"
	"github.com/latch-ssh/latch-ssh/internal/wiring"
	"github.com/latch-ssh/latch-ssh/users"
)

// checkConfigOptions are the inputs of check-config that tests change.
type checkConfigOptions struct {
	configPath string
	euid       int
	wiring     wiring.Options
	skipWiring bool
	online     bool
}

// runCheckConfig implements `latch-ssh check-config`: every problem of the
// configuration with file:line and the fix, the file permissions, and (as
// root, where sshd is installed) the sshd and PAM wiring. Exit 0 when there
// is no error, 1 otherwise. It never prints the secret.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	o := checkConfigOptions{euid: os.Geteuid()}
	configPath := configFlag(fs)
	fs.BoolVar(&o.skipWiring, "no-wiring", false, "do not inspect sshd and PAM")
	fs.BoolVar(&o.online, "online", false, "also ask Latch to check app_id and secret (one API call)")
	fs.StringVar(&o.wiring.PAMDir, "pam-dir", wiring.DefaultPAMDir, "PAM configuration directory `DIR`")
	fs.StringVar(&o.wiring.SSHDConfigFile, "sshd-config", "", "sshd configuration file `FILE` (default: sshd's own)")
	const help = `Checks the configuration, its permissions and, as root, the sshd and PAM wiring, and
reports every problem it finds at once, each with file:line and the fix.
Exit 0: no errors (warnings allowed); 1: errors; 2: bad usage.`
	if code, done := parseNoArgs(fs, "check-config [-c FILE] [--online] [--no-wiring] [--pam-dir DIR] [--sshd-config FILE]", help, args, stdout, stderr); done {
		return code
	}
	o.configPath = *configPath
	if !configAllowed("check-config", o.configPath, o.euid, stderr) {
		return 2
	}
	return checkConfig(context.Background(), o, stdout)
}

// report collects what check-config prints.
type report struct {
	w                io.Writer
	errors, warnings int
	// in, when set, locates keys of the file checked (see at).
	in *users.Inspection
}

// at is where a key of cfg is: "file:line" when the file checked defines
// it (or its table), else the file alone.
func (r *report) at(cfg *users.Config, path ...string) string {
	if r.in != nil && r.in.Path == cfg.Path {
		if n := r.in.Line(path...); n > 0 {
			return fmt.Sprintf("%s:%d", cfg.Path, n)
		}
	}
	return cfg.Path
}

func (r *report) errorf(format string, a ...any) {
	r.errors++
	fmt.Fprintf(r.w, "error: "+format+"\n", a...)
}

func (r *report) warnf(format string, a ...any) {
	r.warnings++
	fmt.Fprintf(r.w, "warning: "+format+"\n", a...)
}

func checkConfig(ctx context.Context, o checkConfigOptions, w io.Writer) int {
	// Inspect, not Load: every problem in one run (issue 13, point 5). A
	// file others can read still has its values checked, and a bad value
	// does not hide an unknown user.
	in := users.Inspect(o.configPath)
	r := &report{w: w, in: in}
	reportInspection(r, in)
	if in.Config != nil {
		checkLoaded(ctx, r, in, o.online)
	}
	if !o.skipWiring {
		checkWiring(ctx, r, in.Config, o)
	}
	switch {
	case r.errors > 0:
		fmt.Fprintf(w, "%s: %d error(s), %d warning(s): logins are not protected as configured until the errors are fixed\n", o.configPath, r.errors, r.warnings)
		return 1
	case r.warnings > 0:
		fmt.Fprintf(w, "%s: OK with %d warning(s)\n", o.configPath, r.warnings)
	default:
		fmt.Fprintf(w, "%s: OK\n", o.configPath)
	}
	return 0
}

// reportInspection prints every problem Inspect found, one per line, each
// with its file:line (where the file has one) and its fix.
func reportInspection(r *report, in *users.Inspection) {
	for _, p := range in.Problems {
		r.errorf("%s", p.Error())
	}
	switch {
	case in.Err == nil:
	case errors.Is(in.Err, os.ErrNotExist):
		r.errorf("%s: no such file (fix: copy %s there, chmod 600 it and fill it in)", in.Path, exampleConfig())
	default:
		r.errorf("%v", in.Err)
	}
	if len(in.Problems) > 0 || in.Err != nil {
		r.errorf("%s: every login through latch-ssh is denied until this file loads", in.Path)
	}
}

// checkLoaded checks what a file that parses can still get wrong: names
// that do not exist on this system, and (with --online, when the file
// loads) the credentials. It also runs on a file with problems, on what
// did parse, so that one run reports everything.
func checkLoaded(ctx context.Context, r *report, in *users.Inspection, online bool) {
	cfg := in.Config
	names := make([]string, 0, len(cfg.Users))
	for name := range cfg.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := user.Lookup(name); err != nil {
			r.warnf("%s: [users] %s: no such user on this system (NSS): the line protects nobody (fix: correct the name to the local account's, see getent passwd; or remove the line: latch-ssh unpair --user %s)",
				r.at(cfg, "users", name), name, name)
		}
	}
	for _, g := range cfg.Policy.ExemptGroups {
		if _, err := user.LookupGroup(g); err != nil {
			r.warnf("%s: [policy] exempt_groups: no group %q on this system: it exempts nobody (fix: correct the name, see getent group; or remove it from the list)",
				r.at(cfg, "policy", "exempt_groups"), g)
		}
	}
	checkSharedUIDs(r, cfg, passwdNames("/etc/passwd"))
	if cfg.Policy.FailMode == users.FailOpen {
		r.warnf("%s: [policy] fail_mode = \"open\": when Latch cannot be reached, everyone is let in (logged as FAIL-OPEN) (fix: fail_mode = \"closed\", unless an outage of Latch must not lock anyone out)",
			r.at(cfg, "policy", "fail_mode"))
	}
	checkServer(r, cfg)
	checkOperations(r, cfg)
	if len(in.Problems) > 0 {
		// The file does not load: its [latch] values may be missing, and
		// asking Latch with them would say nothing more.
		return
	}
	client, err := gate.NewLatchClient(cfg)
	if err != nil {
		r.errorf("%s: [latch]: %v", r.at(cfg, "latch"), err)
		return
	}
	defer client.CloseIdleConnections()
	if !online {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Latch.Timeout.Duration+time.Second)
	defer cancel()
	if _, err := client.Operations(ctx, ""); err != nil {
		reason, fix, _ := gate.Classify(err, cfg.Latch.Timeout.Duration)
		if fix != "" {
			reason += " (fix: " + fix + ")"
		}
		r.errorf("%s: Latch: %s", cfg.Path, reason)
		return
	}
	fmt.Fprintf(r.w, "ok: Latch accepted app_id and secret\n")
}

// checkSharedUIDs reports the [users] names whose uid other names share
// (`useradd -o`, LDAP entries with one uid): the latch follows the uid, so
// a login under any of those names is decided by the [users] name's latch,
// and several [users] names of one uid with different Latch accounts or
// operations deny every login of that uid. others are more names to look
// at (the passwd file: back ends such as LDAP cannot always be listed).
func checkSharedUIDs(r *report, cfg *users.Config, others []string) {
	shared := gate.SharedUIDs(cfg, nil, others)
	for _, uid := range slices.Sorted(maps.Keys(shared)) {
		names := shared[uid]
		var mapped []string
		for _, n := range names {
			if _, ok := cfg.Account(n); ok {
				mapped = append(mapped, n)
			}
		}
		conflict := false
		for _, m := range mapped[1:] {
			conflict = conflict || cfg.Users[m] != cfg.Users[mapped[0]] || !maps.EqualFunc(cfg.UserOperations[m], cfg.UserOperations[mapped[0]], func(a, b string) bool { return a == b })
		}
		list := strings.Join(names, ", ")
		if conflict {
			r.errorf("%s: [users]: uid %d has several names here (%s) with different Latch accounts or operations: every login of that uid is denied (fix: map them all to the same account and operations, or give each person their own uid)", cfg.Path, uid, list)
			continue
		}
		r.warnf("%s: [users]: uid %d has several names (%s): the latch follows the uid, so a login under any of them is decided by %s's latch", cfg.Path, uid, list, mapped[0])
	}
}

// passwdNames lists the account names of a passwd file ("" lines and
// unreadable files give none).
func passwdNames(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" && !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "+") && !strings.HasPrefix(name, "-") {
			names = append(names, name)
		}
	}
	return names
}

// checkServer checks what the embedded SSH server needs on this machine
// when [server] listen is set: usable host keys and an sftp-server.
func checkServer(r *report, cfg *users.Config) {
	set := cfg.Server
	if set.Listen == "" {
		return
	}
	for _, p := range set.HostKey {
		exists, err := sshserver.CheckHostKey(p)
		switch {
		case err != nil:
			r.errorf("%s: [server] host_key: %v", r.at(cfg, "server", "host_key"), err)
		case !exists:
			fmt.Fprintf(r.w, "note: [server] host_key %s does not exist yet: serve generates an %s key there on first start\n", p, sshserver.GeneratedKeyType(p))
		}
	}
	if set.SFTPServer != "" {
		if fi, err := os.Stat(set.SFTPServer); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			r.errorf("%s: [server] sftp_server %s is not an executable file (fix: install openssh-sftp-server, or correct the path)", r.at(cfg, "server", "sftp_server"), set.SFTPServer)
		}
	}
	if set.Recheck.Duration == 0 {
		r.warnf("%s: [server] recheck = \"0\": closing a latch does not end sessions already open (fix: recheck = \"30s\", the default)", r.at(cfg, "server", "recheck"))
	}
	if set.AllowTCPForwarding {
		r.warnf("%s: [server] allow_tcp_forwarding = true: authenticated users can reach any address this host can (keys with restrict or no-port-forwarding excepted) (fix: allow_tcp_forwarding = false, unless they need it)", r.at(cfg, "server", "allow_tcp_forwarding"))
	}
	checkStartups(r, cfg)
}

// checkStartups warns about admission settings that give back what they
// are for: sources that hold unauthenticated slots are never shut out, or
// everyone is exempt.
func checkStartups(r *report, cfg *users.Config) {
	set := cfg.Server
	if set.PenaltyNoAuth.Duration == 0 && set.PenaltyAuthFail.Duration == 0 && set.PenaltyTimeout.Duration == 0 {
		r.warnf("%s: [server] penalty_noauth, penalty_authfail and penalty_timeout are all \"0\": a few hosts can hold the unauthenticated slots again and again (fix: remove them to get the defaults, 1s, 5s and 10s)", r.at(cfg, "server", "penalty_noauth"))
	}
	for _, p := range set.PenaltyExempt {
		if p.Bits() == 0 {
			r.warnf("%s: [server] penalty_exempt has %s: every address of that family is exempt from penalties and early drop (fix: list only your admin hosts or networks)", r.at(cfg, "server", "penalty_exempt"), p)
		}
	}
	if len(set.PenaltyExempt) == 0 {
		fmt.Fprintln(r.w, "note: [server] penalty_exempt is empty: when others fill max_unauthenticated, only sources that logged in within the last 24 hours have slots kept for them; list your admin hosts there")
	}
}

// checkWiring inspects sshd and PAM, as root only: sshd -T needs root, and
// a non-root run would report holes that are not there.
func checkWiring(ctx context.Context, r *report, cfg *users.Config, o checkConfigOptions) {
	if o.euid != 0 {
		fmt.Fprintln(r.w, "note: run as root to check the sshd and PAM wiring too")
		return
	}
	opts := o.wiring
	if cfg != nil {
		for name := range cfg.Users {
			opts.Users = append(opts.Users, name)
		}
		sort.Strings(opts.Users)
		opts.ServerListen = cfg.Server.Listen != ""
	}
	for _, f := range wiring.Check(ctx, opts) {
		switch f.Severity {
		case wiring.Error:
			r.errors++
		case wiring.Warning:
			r.warnings++
		}
		fmt.Fprintln(r.w, f.String())
	}
}
