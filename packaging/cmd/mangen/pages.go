package main

// pages returns the three man pages. Keep them complete: every command,
// flag, configuration key, exit status and file. The truth is the code:
// cmd/latch-ssh and cmd/latch-check for commands, flags and exit codes,
// users/parse.go for keys and defaults. packaging/test-package.sh checks
// that every command and flag --help prints, every key of the example
// configurations, demo's default address and the embedded server's notices
// to sessions appear in the pages.
func pages() []page {
	return []page{latchSSH(), latchCheck(), latchTOML()}
}

func latchSSH() page {
	return page{name: "latch-ssh", section: "8", title: "System Administration", sections: []section{
		{"name", []block{p(`latch-ssh - put a Latch in front of SSH logins: ForceCommand gate, daemon and embedded SSH server, pairing, configuration check, demo`)}},
		{"synopsis", []block{p(`**latch-ssh**
.br
**latch-ssh serve** [**-c** __file__]
.br
**latch-ssh pair** [**--user** __user__] [**-c** __file__] __token__
.br
**latch-ssh unpair** [**--user** __user__] [**-c** __file__]
.br
**latch-ssh status** [**--user** __user__] [**-c** __file__] [**--json**] [**--sessions**]
.br
**latch-ssh check-config** [**-c** __file__] [**--online**] [**--no-wiring**] [**--pam-dir** __directory__] [**--sshd-config** __file__]
.br
**latch-ssh demo** [**--listen** __address__]
.br
**latch-ssh version**
.br
**latch-ssh** {**help** | **-h** | **--help**}`)}},
		{"description", []block{
			p(`latch-ssh puts a Latch (the phone-controlled on/off switch for accounts) in front of every login to a Linux server. A person pairs their server account with the Latch app; while their latch is closed nobody can log in as them, even with the right key or password.`),
			p(`There are three front ends and one decision core, all driven by __/etc/latch-ssh/latch.toml__ (see **latch.toml**(5)): the PAM hook **latch-check**(8), recommended for OpenSSH; the ForceCommand gate, which is **latch-ssh** run with no arguments; and the embedded SSH server of **latch-ssh serve**, for hosts without OpenSSH or a gated bastion. The daemon, **latch-ssh serve**, holds the application secret, answers the gate over a local socket and, when __[server] listen__ is set, is the SSH server.`),
			p(`Installing the package enables nothing. Configure __/etc/latch-ssh/latch.toml__, run **latch-ssh check-config**, then wire one front end and, for the ForceCommand gate or the embedded server, enable the daemon: **systemctl enable --now latch-ssh**. To see it work first, with no credentials, configuration or root: **latch-ssh demo**.`),
		}},
		{"commands", []block{
			item(`(no arguments)`, `The ForceCommand gate, for __ForceCommand /usr/bin/latch-ssh__ in **sshd_config**(5). It runs as the person logging in and never reads the configuration or the secret: it asks the daemon over the gate socket, which identifies the caller by the kernel (SO_PEERCRED). When the latch is open it replaces itself (exec) with the user's shell from the passwd database: __shell -c "$SSH_ORIGINAL_COMMAND"__, or a login shell when there is no command; __internal-sftp__ runs the system's sftp-server. It prints nothing on standard output when there is a command. When the latch asks for a one-time code it prompts "Latch one-time code: " on an interactive terminal only (60 seconds, one try). Denied, interrupted (SIGINT, SIGHUP, SIGTERM) or with the daemon unreachable, it prints one line on standard error and exits 1.`),
			item(`**serve**`, `Runs the daemon: the gate socket (__[daemon] socket__, default __/run/latch-ssh/gate.sock__) for the ForceCommand gate and self-service pairing, with warm HTTPS connections to Latch, and, when __[server] listen__ is set, the embedded SSH server in the same process (see EMBEDDED SSH SERVER). It refuses to start when the configuration does not load, the socket cannot be made, or the SSH server cannot start (a host key it cannot read or create, an address it cannot listen on). Logs are JSON lines on standard error (journald under systemd). It tells systemd READY=1 when serving, RELOADING=1 during a reload and STOPPING=1 when stopping, with a STATUS= line naming the socket and the SSH address (sd_notify, if NOTIFY_SOCKET is set).`),
			more(`SIGHUP reloads the configuration: a broken one is refused and the old one kept. Decisions, __[operations]__, __[users]__, __rate_limit__ and the __[server]__ keys apply from the next login or connection (__recheck__ from the next round); __[daemon] socket__, __[server] listen__ and __host_key__ only at the next start. Sessions of the embedded server go on across a reload, and so does the table of tracked OpenSSH sessions (see SESSION RECHECKS).`),
			more(`SIGTERM or SIGINT stops it: no new connections; every session of the embedded server ends, each told "latch-ssh is stopping: ending this session" on its standard error, and every process the sessions started gets SIGHUP, then SIGKILL 5 seconds later (see Processes under EMBEDDED SSH SERVER); gate exchanges in progress get up to 65 seconds (a person typing a one-time code). Run by a user other than root, it can serve SSH logins of that user only.`),
			item(`**pair** __token__`, `Pairs a local user with the Latch account of the person who generated __token__, the pairing code of the Latch app, and writes the user into __[users]__ of the configuration in place (temporary file, fsync, rename, under a lock), keeping every comment. Root pairs any existing local user; others pair themselves through the daemon, if __allow_self_pairing = true__ and they have no line in __[users]__ yet (changing a pairing needs root). Flags go before __token__.`),
			item(`**unpair**`, `Removes a local user from __[users]__, keeping every comment, and unpairs the account at Latch unless another local user maps to the same account. Only root unpairs, so that someone who gets into an account cannot move its latch to their own phone; the phone's owner can always remove the server in the Latch app.`),
			item(`**status**`, `Shows whether a user is paired and the live state (open, closed, error) of each of their latches: the application's and the operation of every service in __[operations]__. Asking never sends a one-time code to the phone. Root asks about anyone; others about themselves, through the daemon, if __allow_self_pairing = true__. With **--sessions** (root only) it lists instead the sessions the daemon tracks (see SESSION RECHECKS): user, front end (pam or forcecommand), service, the pid of the process that stands for the login, terminal, since when, and the last recheck and its result.`),
			item(`**check-config**`, `Validates the configuration (every problem with file:line and the fix), the permissions of the file, of __secret_file__ and __ca_file__ and of their directories, and, as root, the sshd and PAM wiring: the hook only in the auth stack, __UsePAM no__, a control that cannot deny, a line before the hook that can skip it, the session line missing from sshd's stack (closing the latch would not end the sessions the hook decided alone), forwarding still open for gated users, __~/.ssh/rc__ allowed, risky __AcceptEnv__. With __[server] listen__ set it also checks the host keys as the server would load them (a missing one is noted: it is generated at the first start, if its directory exists) and __sftp_server__, and warns about __recheck = "0"__ and __allow_tcp_forwarding = true__. It never prints the secret.`),
			item(`**demo**`, `Try latch-ssh with no Latch credentials, configuration or root. It starts the embedded SSH server for the user running it on __address__ (default 127.0.0.1:2222), gated by a simulated Latch inside the process, with a throwaway host key and client key pair, and prints the ssh command to try. The person plays the phone: **l** closes the latch, **o** opens it, **t** turns the one-time code on and off, **q** quits. Each login decision is shown as it happens, with the one-time code the phone would show; open sessions re-check the latch every 5 seconds, so closing it ends them. In a terminal each key is a command; without one, the same letters are read one per line from standard input, and the demo runs until **q**, SIGINT or SIGTERM (the end of the input does not stop it). It reads no configuration, talks to no Latch server, and removes the temporary directory it works in when it stops.`),
			item(`**version**`, `Prints "latch-ssh" and the version.`),
			item(`**help**, **-h**, **--help**`, `Prints the list of commands. Every command takes **-h** or **--help**.`),
		}},
		{"options", []block{
			p(`Flags may be written with one dash or two. Each command accepts only its own flags.`),
			item(`**-c** __file__`, `(serve, pair, unpair, status, check-config) Use __file__ instead of __/etc/latch-ssh/latch.toml__. Honoured only for root; other users get exit status 2.`),
			item(`**--user** __user__`, `(pair, unpair, status) The local user to act on. Root only; default: the user running the command (from the effective uid, never from $USER).`),
			item(`**--json**`, `(status) Print the status as JSON, for scripts.`),
			item(`**--sessions**`, `(status) List the sessions the daemon tracks. Root only.`),
			item(`**--no-wiring**`, `(check-config) Do not inspect sshd and PAM; check the configuration file only. The systemd unit uses this before starting and reloading the daemon.`),
			item(`**--online**`, `(check-config) Also ask Latch to check app_id and secret (one API call).`),
			item(`**--pam-dir** __directory__`, `(check-config) The PAM configuration directory to inspect. Default: __/etc/pam.d__.`),
			item(`**--sshd-config** __file__`, `(check-config) The sshd configuration file to inspect. Default: sshd's own.`),
			item(`**--listen** __address__`, `(demo) The host:port the demo's SSH server listens on. Default: 127.0.0.1:2222.`),
		}},
		{"session rechecks", []block{
			p(`The daemon rechecks the OpenSSH sessions that the PAM hook and the ForceCommand gate let in, as the embedded server rechecks its own: every __[server] recheck__ (default 30 seconds; the setting applies to every front end) one Latch call per user and service, however many sessions, asked with /nootp. A closed latch (or, with __unpaired = "deny"__, an unpaired user) ends that user's sessions on that service; a failed call keeps them and is logged, whatever __fail_mode__ says.`),
			item(`Registration`, `A session is known by the process that stands for the login, named by pid and start time: for OpenSSH the per-connection monitor, "sshd: USER [priv]", which runs the PAM stacks; under su, sudo, login or runuser that program. The PAM hook's session is its parent process: the daemon registers it when it allows the hook's account request, and again (one session) when the hook's session line runs at open_session, which covers logins the hook decided alone while the daemon was down; close_session forgets it. The ForceCommand gate registers after an allow, before it runs the shell: the daemon takes its pid and uid from the kernel (SO_PEERCRED) and walks up through processes of that uid only to the user's sshd, whose root parent is the monitor. Nobody can register a login they are not part of, nor unregister one (close_session is root's); killing the gate changes nothing, since the monitor is what was registered. The monitor must be a root sshd whose parent is an sshd (sshd -i from inetd or a systemd socket with Accept=yes is not supported); pid 1, the daemon and its ancestors, and any other program are never registered. When the gate's login cannot be tracked (a shell that runs the gate outside the sshd process tree) and rechecks are on with __fail_mode = "closed"__, the login is refused.`),
			item(`Ending`, `The one line "latch closed: ending this session" is written to the session's terminal, when it has one (the /dev/pts device its processes have as controlling terminal, opened without following links and checked to be that device); then the monitor gets SIGTERM, which OpenSSH forwards to the session's sshd, which closes the connection itself (su and sudo forward it to their command); the login's processes get SIGHUP, and SIGKILL after 5 seconds. The login's processes are the monitor's descendants and the members of the sessions and process groups they lead; a process that detached itself with setsid survives, as it survives sshd's own hangup. When a ForceCommand session ends, the user's other connections accepted by the same sshd (the same latch) end too: that covers __ssh -N -L__, which runs no command, hence no gate (the PAM hook tracks such connections itself). With __[policy] end = "user"__, every process of the user's real uid ends as well (never root's or the daemon's own). Every signal goes through a pidfd checked against the recorded start time, so a reused pid is never signalled.`),
			item(`Restarts`, `The table is kept in __sessions.json__ next to the gate socket (__/run/latch-ssh/sessions.json__, root-only, replaced whole on each change); the unit keeps the directory across restarts (RuntimeDirectoryPreserve=yes). At start the daemon reads it back and keeps the sessions whose process still runs with the same start time and program: sessions opened before a restart are still rechecked and ended.`),
		}},
		{"embedded ssh server", []block{
			p(`With __[server] listen__ set, **latch-ssh serve** accepts SSH connections itself. The latch is asked during authentication, so no channel (shell, command, sftp, forward) ever opens for a closed latch. Each key is described in **latch.toml**(5); __/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml__ is the whole table.`),
			item(`Authentication`, `Public keys only (no passwords, no certificates), from the user's __authorized_keys__ file, which is refused, as by sshd's StrictModes, when it or a directory above it can be changed by anyone but the user and root. The options from=, command=, no-pty, no-port-forwarding, restrict (and pty or port-forwarding after it) are honoured; a line with an option that cannot be enforced (environment=, permitopen=, permitlisten=, tunnel=, expiry-time=, cert-authority, principals=, verify-required, no-touch-required) is skipped and logged. Accounts are checked as sshd with UsePAM yes and pam_unix checks a key login: an account that has expired (__usermod -e__, or a password aged past __chage -M__ and __-I__) is refused with pam_unix's "Your account has expired" line, and so is one whose login shell does not exist, and, as pam_nologin does, every account but root while __/etc/nologin__ or __/run/nologin__ exists (the person is shown its content); a locked password ("!" from useradd, __passwd -l__ or __usermod -L__, "!!", "*") does not stop a key, as it does not under sshd; a nologin or false shell logs in and runs, as with sshd, so the person sees what it prints. A password that must be changed (__chage -d 0__, or aged past __chage -M__) is refused with pam_unix's words, where sshd would run passwd: this server cannot change passwords. Latch is asked only once the client has proved it holds the key, for the operation of __[operations] server__. Unknown users, refused keys and a closed latch all end as an authentication failure; a closed latch also shows the person one line (an authentication banner): "latch-ssh: access denied: your latch is closed; open it in the Latch app and try again".`),
			item(`One-time code`, `When Latch asks for one, the server asks for it as a second, keyboard-interactive step: "Latch one-time code: ", 60 seconds, one try. A client that cannot prompt (BatchMode) is refused. With __otp = "never"__ Latch is asked not to require a code.`),
			item(`Sessions`, `A shell, a command, or sftp (the system's sftp-server, or __sftp_server__), always through the user's login shell (with -c for a command or sftp, as sshd runs a Subsystem: a nologin or git-shell account gets no sftp), as the user: their uid, gid and supplementary groups, in their home directory, on a terminal when asked (terminal modes, window changes), with signals passed through and the end reported as sshd reports it (exit-status, or exit-signal with the signal's name when one killed the process), holding no descriptor of the daemon's besides their standard input, output and error (a session that would is killed); at most 10 sessions per connection. The environment is HOME, USER, LOGNAME, SHELL, PATH, MAIL, TERM, SSH_TTY, SSH_CLIENT, SSH_CONNECTION, SSH_ORIGINAL_COMMAND (with command=) and, from the client, LANG and LC_* only. No PAM stack runs: the key and the latch decide.`),
			item(`Forwarding`, `ssh -L and -R only with __allow_tcp_forwarding = true__ and no no-port-forwarding on the key; -R listens on loopback only, below port 1024 for root only. Agent and X11 forwarding, tunnels and subsystems other than sftp are refused.`),
			item(`Recheck`, `Every __recheck__ (default 30 seconds) one Latch call per user with an open connection, or with processes that an ended session left running: a closed latch ends every connection of that user, each session told "latch closed: ending this session" on its standard error, then its end (exit-signal HUP), then the connection's SSH_MSG_DISCONNECT with the same words, and every process the user's sessions started gets SIGHUP, then SIGKILL 5 seconds later (see Processes). A call that fails keeps the sessions and is logged. "0" turns it off: then a latch closed later stops new logins only.`),
			item(`Processes`, `Run as root with a writable cgroup v2 (found in /proc/self/mountinfo; Linux 5.7 or later), each session runs in its own cgroup, __latch-ssh.PID.RANDOM/sN__ below the daemon's (the systemd unit has Delegate=yes), created around its first process, so nothing it starts can leave: a closed latch or a stop ends every process the session started, nohup, setsid, double forks, tmux and screen included (cgroup.kill, or SIGKILL to each member on kernels before 5.14); nothing survives. Otherwise (no cgroup v2, not root, an older kernel) the fallback ends the session's process group and session, each process found in /proc and checked by its start time so that a reused pid is never signalled; what survives then is whatever left the session with setsid (daemons, tmux and screen servers) and its children. The "session-groups" log line at start names the mechanism, and the reason for the fallback. When a session ends by itself (logout, the client leaving), its processes get SIGHUP as with sshd, and what ignores it keeps running, still known: a later closed latch or a stop ends it. A daemon killed without stopping (a crash, SIGKILL) leaves its sessions' processes running; with cgroups its next start ends them.`),
			item(`Host keys`, `__host_key__, default __/etc/latch-ssh/ssh_host_ed25519_key__. A missing file is generated at the first start: ed25519, or RSA (3072 bits) when its file name contains "rsa" (list __/etc/latch-ssh/ssh_host_rsa_key__ as well for old clients without ed25519), mode 0600, with its public half in __PATH.pub__ (mode 0644), logged as event "host-key"; a missing file whose name contains "dsa" (ecdsa) is not generated. The "listen" log line gives the fingerprint (host_key, and host_keys for all); pin it, or compare it with **ssh-keygen -lf** __PATH.pub__ and with what ssh shows at the first connection. Like sshd, a key file that others can read or that belongs to another user is refused, and so is one in a directory anyone but root can write (a sticky directory such as /tmp only above the key's own directory); a symbolic link is followed, the directories on its way checked too. So are DSA keys, RSA keys under 2048 bits and two keys of the same type. An RSA host key signs only with rsa-sha2-512 and rsa-sha2-256.`),
			item(`Algorithms`, `Fixed, no weaker than OpenSSH 9.x's sshd defaults, of which they are the part golang.org/x/crypto implements. Key exchange: mlkem768x25519-sha256 (post-quantum hybrid), curve25519-sha256, ecdh-sha2-nistp256/384/521, diffie-hellman-group-exchange-sha256, diffie-hellman-group16-sha512, diffie-hellman-group14-sha256. Ciphers: chacha20-poly1305@openssh.com, aes128-gcm@openssh.com, aes256-gcm@openssh.com, aes128-ctr, aes192-ctr, aes256-ctr. MACs: hmac-sha2-256-etm@openssh.com, hmac-sha2-512-etm@openssh.com, hmac-sha2-256, hmac-sha2-512. User keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, rsa-sha2-512, rsa-sha2-256. Never ssh-dss keys, ssh-rsa (SHA-1) signatures, SHA-1 key exchanges or MACs, or CBC ciphers: clients that have only those cannot connect. Not available (clients pick the next one): sntrup761x25519-sha512, diffie-hellman-group18-sha512, umac and hmac-sha1-etm MACs, webauthn keys, certificates.`),
			item(`Stopping`, `The sessions run inside the daemon: stopping or restarting it ends them all, each told "latch-ssh is stopping: ending this session"; every process their sessions started gets SIGHUP, then SIGKILL 5 seconds later, including, with a cgroup per session, processes that left the session (tmux, screen, nohup, daemons), unlike across a restart of sshd (see Processes). A reload keeps the sessions. For that reason package upgrades do not restart a daemon that runs the embedded server, and say so: restart it (**systemctl restart latch-ssh**) from the console or an OpenSSH session. Removing the package stops the daemon.`),
			item(`Clients`, `A refusal, a recheck and a stop end the connection with an SSH_MSG_DISCONNECT "by application" that carries the reason (after the banner, or after the sessions' notice and end), so PuTTY and asyncssh show it as ssh does, and paramiko logs it. Tested with OpenSSH, PuTTY (plink, pscp, psftp), asyncssh and paramiko. paramiko sends a new ssh-userauth service request before each authentication attempt, which this server refuses: with paramiko a login whose first key is refused fails, and the one-time code cannot be given (paramiko pull request 1687). Give paramiko only the right key (look_for_keys=False, allow_agent=False), and for the one-time code send the service request once per connection or use asyncssh.`),
			item(`Limits`, `__handshake_timeout__, __login_grace_time__, __max_auth_tries__, __max_unauthenticated__ and __max_unauthenticated_per_source__ bound the connections that have not logged in yet; __early_drop_start__ drops new ones at random as they fill, and the __penalty_*__ keys refuse, for a while, sources whose connections end without logging in (sshd's MaxStartups and PerSourcePenalties). Sources in __penalty_exempt__, and those that logged in within a day, have slots kept for them.`),
		}},
		{"exit status", []block{
			item(`gate (no arguments)`, `When the login is allowed the gate becomes the shell, so the status is the shell's or the command's. 1: denied. 2: not started by sshd (neither SSH_CONNECTION nor SSH_ORIGINAL_COMMAND set: run by hand), which it says, pointing at **latch-ssh help**; nothing is let in.`),
			item(`**serve**`, `0: stopped cleanly (SIGTERM, SIGINT); 1: could not start (configuration, socket, host key, listen address), or the gate socket or the SSH listener failed; 2: bad usage.`),
			item(`**pair**, **unpair**`, `0: done; 1: not done, or only partly (the message says how to finish); 2: bad usage.`),
			item(`**status**`, `0: shown; 1: not shown, or some latch could not be read (state "error"); 2: bad usage.`),
			item(`**check-config**`, `0: no errors (warnings may have been printed); 1: errors, and logins are not protected as configured until they are fixed; 2: bad usage.`),
			item(`**demo**`, `0: stopped (q, SIGINT, SIGTERM); 1: could not start (the address is in use or cannot be listened on, for instance); 2: bad usage.`),
			item(`**version**`, `0; 2 when given any argument.`),
			item(`**help**`, `0.`),
			item(`unknown command`, `2.`),
		}},
		{"environment", []block{
			item(`SSH_ORIGINAL_COMMAND`, `(gate) The command the client asked for, set by sshd.`),
			item(`NOTIFY_SOCKET`, `(serve) The systemd notification socket; removed from the environment once read.`),
			p(`Nothing in the environment changes a security setting: the configuration path, the Latch URL, CA roots (SSL_CERT_FILE, SSL_CERT_DIR), proxies (HTTPS_PROXY and friends) and the fail mode come from the configuration only. The user is taken from the kernel, never from $USER or $LOGNAME, and the shell from the passwd database, never from $SHELL.`),
		}},
		{"files", []block{
			item(`__/etc/latch-ssh/latch.toml__`, `The configuration, root-owned, mode 0600 while it holds the secret. See **latch.toml**(5).`),
			item(`__/etc/latch-ssh/ssh_host_ed25519_key__, __ssh_host_ed25519_key.pub__`, `The embedded server's host key (default __[server] host_key__), generated at its first start. Purging the package deletes it with __/etc/latch-ssh__.`),
			item(`__~/.ssh/authorized_keys__`, `Each user's public keys for the embedded server (default __[server] authorized_keys__).`),
			item(`__/run/latch-ssh/gate.sock__`, `The daemon's gate socket (fixed at build time for the gate; __[daemon] socket__ for the daemon).`),
			item(`__/usr/lib/systemd/system/latch-ssh.service__`, `The systemd unit of the daemon, modelled on sshd's: a configuration check before start and reload, KillMode=process (the daemon ends its sessions' processes itself), Delegate=yes (the cgroups of the sessions), no sandboxing that the embedded server's sessions would inherit. Not enabled on install.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch.toml.example__`, `The commented configuration template.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml__`, `The __[server]__ table for the embedded server, commented, with __listen__ set.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch-ssh-forcecommand.conf__`, `The sshd snippet for the ForceCommand gate; copy it to __/etc/ssh/sshd_config.d/latch-ssh.conf__. It sets __ForceCommand__, __DisableForwarding yes__ and __PermitUserRC no__ for __Match Group latch-users__.`),
			item(`__/usr/share/doc/latch-ssh/examples/pam/__`, `The PAM lines for sshd, sudo and su; see **latch-check**(8).`),
			item(`__/usr/share/pam-configs/latch-ssh__`, `(Debian) A **pam-auth-update**(8) profile, off by default; see **latch-check**(8).`),
			item(`__/usr/lib/openssh/sftp-server__, __/usr/libexec/openssh/sftp-server__, __/usr/lib/ssh/sftp-server__, __/usr/libexec/sftp-server__`, `Where the embedded server looks for sftp-server, in this order, unless __[server] sftp_server__ names one.`),
		}},
		{"logging", []block{p(`Every decision writes one structured line (user, service, remote address, operation, outcome, reason, latency, whether the fail mode was applied). The gate and the hook log to syslog, facility AUTHPRIV, tag latch-ssh, never to the user's terminal; the daemon logs JSON lines to standard error, the embedded server's events among them (listen, host-key, connect, auth-step, auth, login, session, forward, recheck, close, logout).`)}},
		{"examples", []block{code(`latch-ssh demo
latch-ssh check-config
latch-ssh pair --user alice AbC123
latch-ssh status --user alice --json
systemctl enable --now latch-ssh
ssh-keygen -lf /etc/latch-ssh/ssh_host_ed25519_key.pub
journalctl -u latch-ssh -o cat | grep '"event":"listen"'`)}},
		{"see also", []block{p(`**latch-check**(8), **latch.toml**(5), **sshd_config**(5), **sshd**(8), **ssh**(1), **ssh-keygen**(1), **pam_exec**(8), **pam-auth-update**(8), **systemctl**(1)`)}},
	}}
}

func latchCheck() page {
	return page{name: "latch-check", section: "8", title: "System Administration", sections: []section{
		{"name", []block{p(`latch-check - PAM hook of latch-ssh: decide a login by its user's Latch`)}},
		{"synopsis", []block{p(`**account required pam_exec.so quiet seteuid /usr/sbin/latch-check**
.br
**session optional pam_exec.so quiet seteuid /usr/sbin/latch-check**
.br
**latch-check** [**-c** __file__] [**--service** __name__] __user__
.br
**latch-check --version**
.br
**latch-check** {**-h** | **--help**}`)}},
		{"description", []block{
			p(`**latch-check** decides whether a user may log in, from their Latch and the policy in __/etc/latch-ssh/latch.toml__ (see **latch.toml**(5)). Run by **pam_exec**(8) it takes the user from PAM_USER and the service from PAM_SERVICE (the service picks an operation in __[operations]__); by hand it takes the user as an argument. The name is resolved through NSS to its account and uid first, and the latch follows the uid: a case-insensitive directory may let __ALICE__ log in as __alice__, and __useradd -o__ may give alice's uid a second name; either way alice's latch decides. Several __[users]__ names of one uid with different Latch accounts deny every login of that uid (**latch-ssh check-config** lists shared uids). A name NSS does not know is denied, whatever __unpaired__ says, unless __[users]__ maps it; an NSS failure denies.`),
			p(`Put it in the account stack, which sshd runs for every login, public-key ones included, before any shell, command or forward exists. In __/etc/pam.d/sshd__, before __@include common-account__ (Debian's pam_unix ends the account stack early for a user whose password has expired):`),
			code(`account required pam_exec.so quiet seteuid /usr/sbin/latch-check`),
			p(`Keep __UsePAM yes__ in **sshd_config**(5). sudo and su take the same line. Keep __seteuid__: su and sudo are setuid root, and without it pam_exec runs latch-check with the caller's real uid, so the caller could stop it (SIGSTOP) past its Latch deadline; under sshd it changes nothing. Add __stdout__ after __quiet__ to show the person the one-line refusal. The latch checked is the target user's (PAM_USER). Run **latch-ssh check-config** afterwards and keep a root shell open while you try a login.`),
			p(`Add the session line too, with the session lines of the same file: it decides nothing (it always exits 0, hence __optional__), but tells the daemon about the session at open_session and close_session, so that closing the latch later ends the session (see SESSIONS). **latch-ssh check-config** warns when sshd's stack has the account line without it.`),
			p(`Under PAM it decides for PAM_TYPE auth and account; open_session and close_session register and forget the session with the daemon, and password is allowed without asking (the login was decided before); any other type is denied. It never prompts and never reads standard input: Latch is asked not to require a one-time code (/nootp). It clears its whole environment before reading anything.`),
			p(`On Debian, the **pam-auth-update**(8) profile "latch-ssh" (off by default; **pam-auth-update --enable latch-ssh**) adds the line to __common-account__ instead (and the session line to __common-session__), for every PAM service that includes it: sshd, sudo, su and login, but cron and others too, so a closed latch also stops that user's cron jobs. The profile puts the line first in the "Primary" block, before pam_unix (priority 1024 against pam_unix's 256), because pam_unix ends the account stack at once for a user whose password has expired (new_authtok_reqd=done): in the "Additional" block, after it, the hook would never run for such a user, whom sshd then lets in after a password change. Removing the package takes the profile out again (**pam-auth-update --remove**); lines you added to __/etc/pam.d__ by hand stay, and deny every login they gate once __/usr/sbin/latch-check__ is gone. Prefer the per-service line above unless you mean to gate every service.`),
		}},
		{"options", []block{
			item(`**-c** __file__`, `Use __file__ instead of __/etc/latch-ssh/latch.toml__. Honoured only for root (exit status 2 otherwise).`),
			item(`**--service** __name__`, `Decide as for PAM service __name__. Default: PAM_SERVICE, or "sshd".`),
			item(`**--version**`, `Print "latch-check" and the version, and exit 0.`),
			item(`**-h**, **--help**`, `Print the usage and exit 0.`),
			p(`Flags may be written with one dash or two. Under pam_exec no __user__ argument is allowed.`),
		}},
		{"decisions", []block{
			item(`latch open`, `allow.`),
			item(`latch closed`, `deny.`),
			item(`user not in [users], or unpaired from the phone`, `the __unpaired__ policy.`),
			item(`user in an exempt group`, `allow, logged as a warning.`),
			item(`Latch unreachable, slow, 5xx, 429, malformed answer, error code`, `the __fail_mode__ policy (fail-open is logged as a warning FAIL-OPEN). A fail-open is refused (denied, logged as an error "fail-open REFUSED" with the reason) when latch-check was stopped and continued (SIGCONT), is traced, took longer than the Latch deadline plus 2 seconds, runs with a real uid other than root (pam_exec without __seteuid__ under su or sudo), or started niced, under SCHED_IDLE or SCHED_BATCH, or with fewer than 64 file descriptors (su and sudo pass the caller's nice value, policy and limits on), or runs in a cgroup whose CPU quota (or a parent's) has throttled it (what a user's own scope with a tiny CPUQuota gives). latch-check ignores SIGTSTP, SIGTTIN and SIGTTOU, so Ctrl-Z at the terminal does not stop it.`),
			item(`configuration missing or invalid`, `deny.`),
		}},
		{"exit status", []block{
			item(`0`, `allowed (also: --help, --version, and PAM_TYPE open_session, close_session or password).`),
			item(`1`, `denied, a fail-closed error included. By hand the reason (and the fix, when there is one) is printed on standard error.`),
			item(`2`, `bad usage.`),
		}},
		{"environment", []block{
			item(`PAM_USER, PAM_SERVICE, PAM_TYPE, PAM_RHOST`, `Set by pam_exec. When a name appears twice, pam_exec's (the last) wins; PAM_USER, PAM_SERVICE or PAM_TYPE twice with different values is denied.`),
			item(`SSH_CONNECTION`, `Set by sshd; its first field is the client address logged (else PAM_RHOST).`),
			p(`Every other variable is ignored: the environment is cleared before the configuration is read, so HTTPS_PROXY, SSL_CERT_FILE, GODEBUG or LOCALDOMAIN change nothing.`),
		}},
		{"files", []block{
			item(`__/etc/latch-ssh/latch.toml__`, `The configuration.`),
			item(`__/usr/share/doc/latch-ssh/examples/pam/sshd__, __sudo__, __su__`, `The lines to add to the matching files of __/etc/pam.d__.`),
			item(`__/usr/share/pam-configs/latch-ssh__`, `(Debian) The pam-auth-update profile.`),
		}},
		{"the daemon", []block{
			p(`Run the daemon, **latch-ssh serve** (**systemctl enable --now latch-ssh**), alongside the hook: it keeps its HTTPS connection to Latch warm, so a login costs one round trip instead of a DNS lookup, TCP and TLS handshakes and the request. As root, latch-check sends the user, service and client address to the daemon at __[daemon] socket__ and takes its decision; the daemon decides with the same core, policy and /nootp, and accepts such a request only from root (SO_PEERCRED uid 0) and only for the configuration file it serves (so **-c** __file__ still means __file__).`),
			p(`The hook never depends on the daemon. With no daemon it decides by itself, as before. When the daemon does not connect and acknowledge the request within 300 ms (stopped, wedged), refuses it (another configuration file, an older daemon), dies after accepting it, or does not answer within the Latch deadline plus 0.5 seconds, latch-check logs a warning and decides by itself. The acknowledgement comes before the daemon asks Latch: a slow Latch behind a live daemon is waited for, and asked once. A closed latch denies on every path.`),
			p(`A fail-open answered by the daemon goes through the same guard as latch-check's own (see DECISIONS): stopped and continued, traced, too slow, a real uid other than root, or a handicapped start, and it is refused. The trade-off: the daemon's configuration is the file as the daemon last loaded it (it reloads within a second of a change, and **latch-ssh pair** and **unpair** wait for it); a fail-open after a failed daemon and a failing Latch may be refused because the whole run took longer than the deadline plus 2 seconds.`),
		}},
		{"sessions", []block{
			p(`With the daemon running and __[server] recheck__ on, sessions let in by the hook are rechecked and ended when their latch closes (see SESSION RECHECKS in **latch-ssh**(8)). The daemon registers each login it allows at account time, as the session of latch-check's parent process: under OpenSSH the per-connection monitor "sshd: USER [priv]", which runs account, open_session and close_session alike (OpenSSH 9.2, ssh -N included); under su or sudo the su or sudo process. That covers __ssh -N -L__ connections too. The session line covers what account time cannot: a login decided while the daemon was down or restarting is registered at open_session, if the daemon is back by then, and close_session lets the daemon forget the session at once. Under su, the session's end sends SIGTERM to su, which passes it to the shell and kills it 2 seconds later; the shell and what it started get SIGHUP, then SIGKILL.`),
		}},
		{"logging", []block{p(`One JSON line per decision to syslog, facility AUTHPRIV, tag latch-ssh. When the daemon decided, the decision line (event "decision") is in the daemon's log (**journalctl -u latch-ssh**), and latch-check writes to AUTHPRIV a line with event "decision-by-daemon": user, service, remote address, outcome, reason, latency, fail_mode_applied and the daemon's pid. A fail-open of the daemon that latch-check refuses is logged by latch-check as a decision ("fail-open REFUSED"). A daemon that failed the hook is logged as a warning with event "daemon".`)}},
		{"see also", []block{p(`**latch-ssh**(8), **latch.toml**(5), **pam_exec**(8), **pam.conf**(5), **pam-auth-update**(8), **sshd**(8)`)}},
	}}
}

func latchTOML() page {
	return page{name: "latch.toml", section: "5", title: "File Formats", sections: []section{
		{"name", []block{p(`latch.toml - configuration of latch-ssh`)}},
		{"synopsis", []block{p(`__/etc/latch-ssh/latch.toml__`)}},
		{"description", []block{
			p(`The configuration of **latch-ssh**(8) and **latch-check**(8), in TOML. The package installs a template with placeholders (REPLACE_WITH_...); until they are replaced every login through latch-ssh is denied and **latch-ssh check-config** says why. The commented template is also in __/usr/share/doc/latch-ssh/examples/latch.toml.example__.`),
			p(`The file must belong to root and be writable only by root; while it holds the secret it must be readable only by root (mode 0600). The same holds for __secret_file__ and __ca_file__, and for every directory on their way and the directories holding any symbolic link followed (at most 8): a sticky directory such as /tmp is accepted only above the file's own directory, and a link in it only if root owns it. Unknown keys, wrong types and values out of range are errors, reported with file:line and the fix; an invalid file denies every login. Durations are strings with a unit: "500ms", "3s", "2m", "1h". Identifiers are letters and digits of a fixed length.`),
			p(`**latch-ssh pair** and **unpair** edit __[users]__ in place and keep every other line and comment. **latch-check** reads the file at each login, and has the running daemon decide when its file is the same (the ForceCommand gate always asks the daemon); the daemon, **latch-ssh serve**, reads it at start, on SIGHUP (**systemctl reload latch-ssh**) and within a second of any change to the file (it watches it), keeping the old one, and logging an error, when the new one is invalid; **pair** and **unpair** return only once the running daemon has put their edit in force; __[daemon] socket__, __[server] listen__ and __[server] host_key__ change only when it restarts.`),
		}},
		{"[latch]", []block{
			item(`**app_id** = __string__`, `Required. The application id from the Latch developer area: 20 letters and digits.`),
			item(`**secret** = __string__`, `The application secret: 40 letters and digits. Exactly one of **secret** and **secret_file** is required.`),
			item(`**secret_file** = __path__`, `An absolute path to a root-owned, mode 0600 file holding the secret.`),
			item(`**api_url** = __url__`, `Where Latch is: https://host[:port], no path. Default: "https://latch.tu.com".`),
			item(`**api_version** = __string__`, `The Latch API version. Default: "3.0".`),
			item(`**timeout** = __duration__`, `One deadline for a whole Latch call: DNS, connect, TLS and the answer; past it __fail_mode__ decides. From "100ms" to "60s"; default "3s".`),
			item(`**ca_file** = __path__`, `An absolute path to PEM CA roots to verify Latch with (root-owned). Default: the system bundle, from fixed paths; SSL_CERT_FILE is never read.`),
			item(`**proxy** = __url__`, `An http:// or https:// proxy (host:port, nothing after the port) to reach Latch through. Default: none; HTTPS_PROXY and friends are never read.`),
		}},
		{"[policy]", []block{
			item(`**fail_mode** = "open" | "closed"`, `Required, on purpose without a default: what a login gets when Latch cannot answer (timeout, network or TLS failure, an error from Latch). "closed" denies (an outage locks everyone out: keep a break-glass group in __exempt_groups__ or console access); "open" allows, logged as FAIL-OPEN.`),
			item(`**unpaired** = "allow" | "deny"`, `Users with no Latch account in __[users]__, or unpaired from the phone: "allow" (Latch is opt-in) or "deny". Default: "allow".`),
			item(`**exempt_groups** = [__group__, ...]`, `Members of these groups are never asked about (break-glass); each such login is logged as a warning. Default: [].`),
			item(`**otp** = "prompt" | "never"`, `"prompt" asks for a one-time code where a person can type it (the ForceCommand gate on a terminal, the embedded server's keyboard-interactive step) and elsewhere asks Latch not to require one; "never" always asks Latch not to require one. Default: "prompt".`),
			item(`**end** = "session" | "user"`, `What else ends when a recheck finds a session's latch closed (see __recheck__); the connection always ends, with "latch closed: ending this session" on its terminal. "session": that login's processes (a process that detached itself with setsid survives, as it survives sshd's own hangup; on the embedded server, everything its sessions started, through their cgroups). "user": every process of the user's real uid as well, on every front end: background jobs, nohup, setsid, tmux and screen servers, their other logins, their cron jobs. The cost: it also ends work the person meant to keep, and logins on operations whose latch is still open. Never applied to root or the daemon's own user, who fall back to "session" (logged). Default: "session".`),
			item(`**silent** = __bool__`, `Ask Latch not to push a notification to the phone for each check. Default: false.`),
			item(`**allow_self_pairing** = __bool__`, `Let users pair themselves when they have no line in __[users]__ yet, and see their own status, through the daemon (**latch-ssh pair** __token__). Changing or removing a pairing needs root. Default: false.`),
			item(`**pair_common_name** = __bool__`, `Send user@host as the pairing's name, so the Latch app shows which account on which server the latch guards. Default: true.`),
		}},
		{"[operations]", []block{
			p(`__service__ = __operation id__: a Latch operation per service, so the app shows separate switches. Keys are PAM service names ("sshd", "sudo", "su"; the ForceCommand gate decides as "sshd", like the PAM hook in sshd's stack) or "server" for the embedded SSH server; values are 20-letter-and-digit operation ids. A service with none checks the application's latch.`),
		}},
		{"[user_operations.USER]", []block{
			p(`__service__ = __operation id__, for one user, overriding __[operations]__. USER must be in __[users]__.`),
		}},
		{"[users]", []block{
			p(`__user__ = __account id__: local user name to the Latch account id (64 letters and digits) pairing returned. User and group names are 1 to 32 letters, digits, "_", "." or "-", not starting with "." or "-".`),
		}},
		{"[daemon]", []block{
			item(`**socket** = __path__`, `The gate socket's absolute path. Default: "/run/latch-ssh/gate.sock" (the ForceCommand gate uses the path compiled into it).`),
			item(`**rate_limit** = __integer__`, `Decisions and self-service requests (pair, unpair, status) per user per minute through the socket, 1 to 10000 (root, the PAM hook's identity, is not limited). Default: 10. A user also has at most 16 connections open; past that the daemon refuses theirs at once, and logs repeated refusals and bad requests as one line per user per 10 seconds with their count. A caller other than root is decided as the ForceCommand gate ([operations] sshd) whatever service it names, and the address and command it sends are logged as claimed_remote and claimed_command.`),
		}},
		{"[server]", []block{
			p(`The embedded SSH server of **latch-ssh serve**; see "EMBEDDED SSH SERVER" in **latch-ssh**(8). Its sessions run inside the daemon, so restarting the daemon ends them. __/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml__ is this table, commented, with __listen__ set.`),
			item(`**listen** = "__host__:__port__"`, `Where to accept SSH connections. "" keeps the server off (default). "0.0.0.0:2222" or ":2222" is every address of the host, IPv4 and IPv6; an address must exist when the daemon starts.`),
			item(`**host_key** = [__path__, ...]`, `Absolute paths of the host private keys (OpenSSH or PEM format, owned by root, mode 0600): ed25519, ECDSA or RSA (2048 bits or more, used only with rsa-sha2-512/256), one of each type at most; DSA is refused. A path that does not exist gets a new key at the first start, RSA (3072 bits) when the file name contains "rsa", ed25519 otherwise (none for a name containing "dsa"), mode 0600, with its public half in __path__.pub (0644); the directory must exist. Default: ["/etc/latch-ssh/ssh_host_ed25519_key"]; at least one when the server is on. For clients without ed25519, list __/etc/latch-ssh/ssh_host_rsa_key__ after the ed25519 key.`),
			item(`**authorized_keys** = __pattern__`, `Where each user's public keys are, starting with / or %h: %h is the home directory, %u the user name, %% a literal %. The file and the directories above it must not be writable by anyone but the user and root (sshd's StrictModes). Default: "%h/.ssh/authorized_keys".`),
			item(`**recheck** = __duration__`, `How often open sessions re-check the latch, on every front end: the embedded server's, and the OpenSSH sessions the PAM hook and the ForceCommand gate register with the daemon (the key stays in __[server]__ for compatibility). One Latch call per user and service with open sessions each round; a closed latch ends all that user's sessions on that service, each told "latch closed: ending this session" (on its standard error, or on the terminal of an OpenSSH session), and a failed call keeps them. "0" never (a latch closed later stops new logins only), else "1s" to "24h". Default: "30s". See __end__ in __[policy]__.`),
			item(`**allow_tcp_forwarding** = __bool__`, `Allow ssh -L and -R (remote forwards listen on loopback only), unless the key's line says no-port-forwarding or restrict. As with sshd, the forwarded connections and the listeners are the user's sockets, not root's (iptables -m owner sees the user's uid). Agent and X11 forwarding and tunnels are never offered. Default: false.`),
			item(`**login_grace_time** = __duration__`, `Time from connecting to being logged in, one-time code included, after which the connection is closed (sshd's LoginGraceTime). "1s" to "1h". Default: "2m".`),
			item(`**max_auth_tries** = __integer__`, `Authentication attempts per connection (sshd's MaxAuthTries). 1 to 100. Default: 6.`),
			item(`**max_unauthenticated** = __integer__`, `Connections that have not logged in yet, at most; more are dropped at once, before the SSH version line (sshd's MaxStartups full). 1 to 100000. Default: 100.`),
			item(`**max_unauthenticated_per_source** = __integer__`, `Of those, at most this many from one source: an IPv4 address, or an IPv6 /64 (sshd's PerSourceMaxStartups with PerSourceNetBlockSize 32:64), so that a few hosts cannot keep everyone else out. 1 to __max_unauthenticated__. Default: 10, or a quarter of __max_unauthenticated__ (at least 1) when that is smaller.`),
			item(`**early_drop_start** = __integer__, **early_drop_rate** = __percent__`, `Random early drop (sshd's MaxStartups start:rate:full, with __max_unauthenticated__ as full): from __early_drop_start__ connections not yet logged in, a new one is dropped with probability __early_drop_rate__ percent, rising linearly to 100 at __max_unauthenticated__. A start equal to __max_unauthenticated__ turns it off. Start 1 to __max_unauthenticated__, default 10 (or __max_unauthenticated__ when smaller); rate 0 to 100, default 30.`),
			item(`**penalty_noauth**, **penalty_authfail**, **penalty_timeout** = __duration__`, `Penalties (sshd's PerSourcePenalties noauth, authfail and grace-exceeded): what a source (as for __max_unauthenticated_per_source__) accrues when a connection ends without logging in, having never tried to authenticate, having failed or been refused, or closed by __handshake_timeout__ or __login_grace_time__. "0" for none, else "1s" to "1h". Defaults: "1s", "5s", "10s". A login forgives what its source accrued.`),
			item(`**penalty_min**, **penalty_max** = __duration__`, `Accrued penalties add up to __penalty_max__ ("1s" to "24h", default "10m"); once above __penalty_min__ ("0" to "1h", default "15s", below __penalty_max__) the source's new connections are closed at once, without taking a slot, until the time runs out. The server logs each penalty and each kind of refusal at most once per 10 seconds, with the count of those not logged.`),
			item(`**penalty_max_sources** = __integer__, **penalty_overflow** = "permissive" | "deny-all"`, `Sources tracked for penalties, per address family, 1 to 1000000 (default 65536). When they are all taken, "permissive" (default) forgets the penalty closest to its end; "deny-all" refuses every new connection of that family, but from __penalty_exempt__, until one ends.`),
			item(`**penalty_exempt** = [__address__ | __network__, ...]`, `Your admin hosts (sshd's PerSourcePenaltyExemptList): addresses ("192.0.2.10") and networks in CIDR form ("198.51.100.0/24", "2001:db8::/48", no bits past the mask) whose connections are never penalised nor dropped at random, and may use __max_unauthenticated_per_source__ slots kept beyond __max_unauthenticated__, so a server filled by others still lets them in. A source that logged in within the last 24 hours has those slots too (but is penalised like any other). Default: [].`),
			item(`**handshake_timeout** = __duration__`, `Time for the SSH key exchange of a new connection. "1s" to "10m". Default: "20s".`),
			item(`**sftp_server** = __path__`, `An absolute path to the program run, as the user and through their login shell (shell -c PATH, as sshd runs a Subsystem), for the sftp subsystem. "" (default) takes the first that exists of /usr/lib/openssh/sftp-server, /usr/libexec/openssh/sftp-server, /usr/lib/ssh/sftp-server and /usr/libexec/sftp-server.`),
		}},
		{"example", []block{code(`[latch]
app_id = "..."
secret_file = "/etc/latch-ssh/secret"

[policy]
fail_mode = "closed"
exempt_groups = ["latch-breakglass"]

[operations]
sudo = "..."
server = "..."

[users]
alice = "..."

[server]
listen = "0.0.0.0:2222"`)}},
		{"files", []block{
			item(`__/etc/latch-ssh/latch.toml__`, `This file; a conffile of the package, kept on removal, deleted on purge (with the rest of __/etc/latch-ssh__, host keys included).`),
			item(`__/usr/share/doc/latch-ssh/examples/latch.toml.example__`, `The commented template.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml__`, `The __[server]__ table for the embedded SSH server.`),
		}},
		{"see also", []block{p(`**latch-ssh**(8), **latch-check**(8), **sshd_config**(5)`)}},
	}}
}
