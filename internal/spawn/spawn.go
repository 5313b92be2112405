// Package spawn starts the user's shell, command or subsystem as that user,
// for the embedded SSH server (which runs as root): NSS account lookup with
// all supplementary groups, dropped uid/gid/groups, a new session, a minimal
// environment like sshd's, a PTY when asked, and the exit status as SSH
// reports it. See AssertPrivilegesDropped for the check to run after start.
package spawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Account is a user as the C library (NSS) knows it.
type Account struct {
	Name     string
	UID, GID uint32
	// Groups is the full group list as initgroups(3) would set it
	// (getgrouplist: the primary group and every supplementary group),
	// without duplicates.
	Groups []uint32
	// Home is the home directory, Shell the login shell (never empty after
	// Lookup: "" becomes /bin/sh).
	Home, Shell string
}

// Spec describes one session's process.
type Spec struct {
	// Account is the user to run as (see Lookup).
	Account Account
	// Command is the raw command the client asked for, or a subsystem's
	// command line (for example /usr/lib/openssh/sftp-server), run as
	// `shell -c Command`; "" starts a login shell (argv0 "-" + basename).
	// There is deliberately no way to run a program other than the login
	// shell (see Command).
	Command string
	// Env holds the client's environment requests. Only LANG and LC_*
	// names with printable values of at most 256 bytes are passed on (see
	// AcceptEnv); everything else is silently dropped, like sshd's default
	// AcceptEnv.
	Env map[string]string
	// PTY says that a terminal was requested: TERM is set only then (and
	// StartPTY adds SSH_TTY).
	PTY bool
	// TERM is the terminal type from the pty-req; "" becomes "dumb".
	TERM string
	// SSHClient and SSHConnection are the values of SSH_CLIENT
	// ("client-ip client-port server-port") and SSH_CONNECTION
	// ("client-ip client-port server-ip server-port"), filled by the
	// server; empty values are left out.
	SSHClient, SSHConnection string
	// OriginalCommand is, when Command was forced by a command= key option,
	// the command the client asked for, passed as SSH_ORIGINAL_COMMAND as
	// sshd does. Empty values are left out.
	OriginalCommand string
	// Warn, when not nil, receives messages meant for the user's stderr,
	// such as sshd's "Could not chdir to home directory".
	Warn func(msg string)
}

// Path values for the spawned environment, as Debian's sshd sets them.
const (
	userPath = "/usr/local/bin:/usr/bin:/bin"
	rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// maxEnvValue bounds the size of an accepted client environment value.
const maxEnvValue = 256

// envNameRE matches the client environment names that are passed on.
var envNameRE = regexp.MustCompile(`^LC_[A-Z_]+$|^LANG$`)

// AcceptEnv reports whether the client environment variable name=value is
// passed to the session: name is LANG or LC_[A-Z_]+, value is valid UTF-8,
// printable and at most 256 bytes.
func AcceptEnv(name, value string) bool {
	return envNameRE.MatchString(name) && printable(value)
}

// printable reports whether s is valid UTF-8 of printable characters
// (spaces included, control characters not) and at most maxEnvValue bytes.
func printable(s string) bool {
	if len(s) > maxEnvValue || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Command builds, without starting it, the process for spec: the login
// shell, or `shell -c Command`, with the environment
//
//	HOME USER LOGNAME SHELL PATH MAIL [TERM] [SSH_CLIENT] [SSH_CONNECTION]
//	[SSH_ORIGINAL_COMMAND] [LANG LC_*]
//
// and nothing else (StartPTY adds SSH_TTY), in a new session (Setsid), in
// the home directory or, when the account cannot enter it, in / after a
// warning through spec.Warn. Run as root, the process gets the account's
// uid, gid and full group list; run as another user, only that user's own
// account may be spawned (no credential change), anything else is an error.
//
// Every process starts as the account's login shell, as in OpenSSH's
// do_child: subsystems too (sshd runs `Subsystem sftp
// /usr/lib/openssh/sftp-server` as `shell -c /usr/lib/openssh/sftp-server`).
// The login shell is how an administrator restricts an account:
// /usr/sbin/nologin refuses everything, git-shell runs only git's commands
// and ~/git-shell-commands. Running sftp-server directly would hand such an
// account full file access, and a git-shell account could then plant
// ~/git-shell-commands/x and run anything (issue 12, item 1).
func Command(spec Spec) (*exec.Cmd, error) {
	a := spec.Account
	if a.Name == "" {
		return nil, errors.New("spawn: account has no name")
	}
	if !filepath.IsAbs(a.Shell) {
		return nil, fmt.Errorf("spawn: user %s: login shell %q is not an absolute path", a.Name, a.Shell)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: a.UID, Gid: a.GID, Groups: slices.Clone(a.Groups)}
	} else if uint32(os.Geteuid()) != a.UID || uint32(os.Getuid()) != a.UID ||
		uint32(os.Getegid()) != a.GID || uint32(os.Getgid()) != a.GID {
		return nil, fmt.Errorf("spawn: not running as root: cannot start a process for user %s (uid %d) as uid %d", a.Name, a.UID, os.Geteuid())
	}

	// Like sshd: argv0 is the shell's base name, with a leading "-" for a
	// login shell.
	cmd := &exec.Cmd{Path: a.Shell, Args: []string{"-" + filepath.Base(a.Shell)}}
	if spec.Command != "" {
		cmd.Args = []string{filepath.Base(a.Shell), "-c", spec.Command}
	}
	cmd.Env = environment(spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	cmd.Dir = a.Home
	if err := canEnter(a.Home, a); err != nil {
		if spec.Warn != nil {
			spec.Warn(fmt.Sprintf("Could not chdir to home directory %s: %v", a.Home, err))
		}
		cmd.Dir = "/"
	}
	return cmd, nil
}

// environment returns the session environment for spec, sorted by name.
func environment(spec Spec) []string {
	a := spec.Account
	path := userPath
	if a.UID == 0 {
		path = rootPath
	}
	env := map[string]string{
		"HOME":    a.Home,
		"USER":    a.Name,
		"LOGNAME": a.Name,
		"SHELL":   a.Shell,
		"PATH":    path,
		"MAIL":    "/var/mail/" + a.Name,
	}
	if spec.PTY {
		term := spec.TERM
		if term == "" || !printable(term) {
			term = "dumb"
		}
		env["TERM"] = term
	}
	if spec.SSHClient != "" {
		env["SSH_CLIENT"] = spec.SSHClient
	}
	if spec.SSHConnection != "" {
		env["SSH_CONNECTION"] = spec.SSHConnection
	}
	if spec.OriginalCommand != "" {
		env["SSH_ORIGINAL_COMMAND"] = spec.OriginalCommand
	}
	for k, v := range spec.Env {
		if AcceptEnv(k, v) {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// canEnter reports, from the mode bits of dir and its parents, whether the
// account may chdir into dir (search permission on every component). ACLs,
// LSMs and network filesystems are not consulted: when they refuse although
// the bits allow, Start fails with the chdir error instead.
func canEnter(dir string, a Account) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("not an absolute path")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return syscall.ENOTDIR
	}
	if a.UID == 0 {
		return nil
	}
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("cannot read owner of %s", p)
		}
		var bit os.FileMode
		switch {
		case st.Uid == a.UID:
			bit = 0o100
		case st.Gid == a.GID || slices.Contains(a.Groups, st.Gid):
			bit = 0o010
		default:
			bit = 0o001
		}
		if fi.Mode().Perm()&bit == 0 {
			return syscall.EACCES
		}
		if p == "/" {
			return nil
		}
	}
}

// ExitStatus returns the exit status to report for the error of
// (*exec.Cmd).Wait: 0 for nil (and for exec.ErrWaitDelay, which Wait
// returns only after a successful exit), the exit code, or 128+N for death
// by signal N. Any other error (the process could not be started or waited
// for) gives 255, as ssh uses for its own failures.
func ExitStatus(err error) (code int) {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState == nil {
		return 255
	}
	if ws, ok := ee.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if c := ee.ProcessState.ExitCode(); c >= 0 {
		return c
	}
	return 255
}

// sftpServerPaths are where distributions install OpenSSH's sftp-server, in
// the order tried: Debian/Ubuntu, Fedora/RHEL/SUSE, Arch, the BSDs/Alpine.
// Fixed paths, never PATH: both front ends run it for the person logging in,
// whose environment must not choose it.
func sftpServerPaths() []string {
	return []string{
		"/usr/lib/openssh/sftp-server",
		"/usr/libexec/openssh/sftp-server",
		"/usr/lib/ssh/sftp-server",
		"/usr/libexec/sftp-server",
	}
}

// FindSFTPServer returns the first executable sftp-server of
// sftpServerPaths: what the ForceCommand gate runs for sshd's internal-sftp
// and the embedded server for the sftp subsystem.
func FindSFTPServer() (string, error) {
	for _, p := range sftpServerPaths() {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("no sftp-server found at " + strings.Join(sftpServerPaths(), ", ") +
		" (install the openssh-sftp-server package)")
}
