package forcecmd

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/latch-ssh/latch-ssh/internal/spawn"
)

// passwdEntry is the part of a passwd entry the gate uses.
type passwdEntry struct {
	Name  string
	UID   int
	Home  string
	Shell string
}

// lookupPasswd reads uid's passwd entry through NSS (spawn.LookupUID, the
// C library's getpwuid_r): os/user gives no login shell, and a parse of
// /etc/passwd would miss LDAP and SSSD users.
func lookupPasswd(uid int) (passwdEntry, error) {
	a, err := spawn.LookupUID(uint32(uid))
	if err != nil {
		return passwdEntry{}, err
	}
	return passwdEntry{Name: a.Name, UID: int(a.UID), Home: a.Home, Shell: a.Shell}, nil
}

// defaultShell is what sshd runs when the passwd shell field is empty
// (_PATH_BSHELL).
const defaultShell = "/bin/sh"

// internalSFTPName is sshd's keyword for its built-in SFTP server.
const internalSFTPName = "internal-sftp"

// ownEnvPrefixes are the environment variables that belong to latch-ssh
// and are removed before the shell runs. The gate sets none today; the
// list exists so that any future one cannot leak into sessions.
func ownEnvPrefixes() []string { return []string{"LATCH_SSH_"} }

// execPlan is the program the gate replaces itself with.
type execPlan struct {
	Path string
	Argv []string
}

// planExec decides what to exec, the way sshd's do_child does it:
//
//   - no command (SSH_ORIGINAL_COMMAND unset): the login shell, argv0 "-"
//     plus the shell's base name ("-bash"), so it reads the profile files;
//   - a command: `shell -c command`, argv0 the shell's base name;
//   - sshd's internal-sftp (see internalSFTPArgs): the system's
//     sftp-server, exec'd directly with the same arguments.
//
// shell is the passwd shell ("" means /bin/sh). findSFTP locates the
// sftp-server. Why exec sftp-server directly instead of through `shell -c`:
// sshd runs internal-sftp inside itself, without the user's shell, so no
// shell startup file can print into the SFTP stream or run first; exec'ing
// the binary keeps that property. It does not bypass the login shell
// (issue 12, item 1): sshd runs ForceCommand itself as
// `shell -c /usr/bin/latch-ssh` (do_child), so the gate runs only once the
// account's shell has agreed to run it, and an account whose shell is
// nologin or git-shell never gets here (TestSecurityGateLoginShellAndFDs).
// A Subsystem given as a path (/usr/lib/openssh/sftp-server) is an
// ordinary command for sshd, which runs it with `shell -c`, and so does the
// gate.
func planExec(shell, command string, hasCommand bool, findSFTP func() (string, error)) (execPlan, error) {
	if shell == "" {
		shell = defaultShell
	}
	// sshd takes what follows the last '/' (strrchr), even if empty.
	base := shell[strings.LastIndexByte(shell, '/')+1:]
	if !hasCommand {
		return execPlan{Path: shell, Argv: []string{"-" + base}}, nil
	}
	if args, ok := internalSFTPArgs(command); ok {
		server, err := findSFTP()
		if err != nil {
			return execPlan{}, err
		}
		return execPlan{Path: server, Argv: append([]string{filepath.Base(server)}, args...)}, nil
	}
	return execPlan{Path: shell, Argv: []string{base, "-c", command}}, nil
}

// internalSFTPArgs reports whether command is what sshd puts in
// SSH_ORIGINAL_COMMAND for `Subsystem sftp internal-sftp [ARGS]`, and
// returns ARGS as sshd would pass them to its built-in server.
//
// It mirrors OpenSSH's own test (IS_INTERNAL_SFTP in session.c): the
// command starts with "internal-sftp" followed by the end, a space or a
// tab. So "internal-sftp; rm -rf /" or "internal-sftpx" are ordinary
// commands, run with `shell -c` like sshd would. The arguments are split
// on spaces only, as sshd's strtok(args, " ") does.
//
// A person can also type `ssh host internal-sftp` themselves: that only
// starts an sftp-server as them, which they could run anyway.
func internalSFTPArgs(command string) ([]string, bool) {
	rest, ok := strings.CutPrefix(command, internalSFTPName)
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return nil, false
	}
	words := strings.FieldsFunc(command, func(r rune) bool { return r == ' ' })
	return words[1:], true
}

// findSFTPServer is spawn.FindSFTPServer, worded for the gate's refusal.
func findSFTPServer() (string, error) {
	p, err := spawn.FindSFTPServer()
	if err != nil {
		return "", fmt.Errorf("internal-sftp: %w", err)
	}
	return p, nil
}

// sessionEnv is the environment for the shell: what the gate was started
// with (sshd built it: USER, HOME, SSH_CONNECTION, TERM, what AcceptEnv let
// through...) minus latch-ssh's own variables, in the same order.
func sessionEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		own := false
		for _, p := range ownEnvPrefixes() {
			if strings.HasPrefix(kv, p) {
				own = true
				break
			}
		}
		if !own {
			out = append(out, kv)
		}
	}
	return out
}

// lookupEnv is os.LookupEnv over a saved environment. Like the C library's
// getenv, the first entry wins.
func lookupEnv(env []string, name string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// remoteAddr is the client address, the first field of SSH_CONNECTION, for
// the log only (the person could set it through AcceptEnv; it decides
// nothing).
func remoteAddr(env []string) string {
	v, _ := lookupEnv(env, "SSH_CONNECTION")
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return ""
}

// maxLoggedCommand bounds the command sent to the daemon, which only logs
// it: a protocol line is at most gatesocket.MaxMessageSize, and a long but
// legitimate command (a big rsync or git invocation) must not turn into a
// "bad request" denial.
const maxLoggedCommand = 1024

// truncateCommand cuts command to maxLoggedCommand bytes at a UTF-8
// boundary, marking the cut.
func truncateCommand(command string) string {
	if len(command) <= maxLoggedCommand {
		return command
	}
	cut := maxLoggedCommand
	for cut > 0 && command[cut]&0xc0 == 0x80 {
		cut--
	}
	return command[:cut] + "...(cut)"
}
