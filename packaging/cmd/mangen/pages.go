package main

// pages returns the three man pages. Keep them complete: every command,
// flag, configuration key, exit status and file (packaging/test-package.sh
// checks that every flag printed by --help appears in the pages).
func pages() []page {
	return []page{latchSSH(), latchCheck(), latchTOML()}
}

func latchSSH() page {
	return page{name: "latch-ssh", section: "8", title: "System Administration", sections: []section{
		{"name", []block{p(`latch-ssh - put a Latch in front of SSH logins: ForceCommand gate, daemon, pairing, configuration check`)}},
		{"synopsis", []block{p(`**latch-ssh**
.br
**latch-ssh serve** [**-c** __file__]
.br
**latch-ssh pair** [**--user** __user__] [**-c** __file__] __token__
.br
**latch-ssh unpair** [**--user** __user__] [**-c** __file__]
.br
**latch-ssh status** [**--user** __user__] [**-c** __file__] [**--json**]
.br
**latch-ssh check-config** [**-c** __file__] [**--online**] [**--no-wiring**] [**--pam-dir** __directory__] [**--sshd-config** __file__]
.br
**latch-ssh version**
.br
**latch-ssh** {**help** | **-h** | **--help**}`)}},
		{"description", []block{
			p(`latch-ssh puts a Latch (the phone-controlled on/off switch for accounts) in front of every login to a Linux server. A person pairs their server account with the Latch app; while their latch is closed nobody can log in as them, even with the right key or password.`),
			p(`There are three front ends and one decision core, all driven by __/etc/latch-ssh/latch.toml__ (see **latch.toml**(5)): the PAM hook **latch-check**(8), recommended for OpenSSH; the ForceCommand gate, which is **latch-ssh** run with no arguments; and the daemon **latch-ssh serve**, which answers the gate over a local socket and holds the application secret.`),
			p(`Installing the package enables nothing. Configure __/etc/latch-ssh/latch.toml__, run **latch-ssh check-config**, then wire one front end and, for the ForceCommand gate, enable the daemon: **systemctl enable --now latch-ssh**.`),
		}},
		{"commands", []block{
			item(`(no arguments)`, `The ForceCommand gate, for __ForceCommand /usr/bin/latch-ssh__ in **sshd_config**(5). It runs as the person logging in and never reads the configuration or the secret: it asks the daemon over the gate socket, which identifies the caller by the kernel (SO_PEERCRED). When the latch is open it replaces itself (exec) with the user's shell from the passwd database: __shell -c "$SSH_ORIGINAL_COMMAND"__, or a login shell when there is no command; __internal-sftp__ runs the system's sftp-server. It prints nothing on standard output when there is a command. When the latch asks for a one-time code it prompts "Latch one-time code: " on an interactive terminal only (60 seconds, one try). Denied, interrupted (SIGINT, SIGHUP, SIGTERM) or with the daemon unreachable, it prints one line on standard error and exits 1.`),
			item(`**serve**`, `Runs the daemon: the gate socket (__[daemon] socket__, default __/run/latch-ssh/gate.sock__) for the ForceCommand gate and self-service pairing, with warm HTTPS connections to Latch. Logs are JSON lines on standard error (journald under systemd). It tells systemd READY=1 when serving, RELOADING=1 during a reload and STOPPING=1 when stopping (sd_notify, if NOTIFY_SOCKET is set). SIGHUP reloads the configuration: a broken one is refused and the old one kept. SIGTERM or SIGINT stops it after the logins in progress. The embedded SSH server (__[server] listen__) is not built in this version.`),
			item(`**pair** __token__`, `Pairs a local user with the Latch account of the person who generated __token__, the pairing code of the Latch app, and writes the user into __[users]__ of the configuration in place (temporary file, fsync, rename, under a lock), keeping every comment. Root pairs any existing local user; others pair themselves through the daemon, if __allow_self_pairing = true__. Flags go before __token__.`),
			item(`**unpair**`, `Removes a local user from __[users]__, keeping every comment, and unpairs the account at Latch unless another local user maps to the same account. Root unpairs anyone; others themselves through the daemon, if __allow_self_pairing = true__ (refused while __unpaired = "allow"__).`),
			item(`**status**`, `Shows whether a user is paired and the live state (open, closed, error) of each of their latches: the application's and the operation of every service in __[operations]__. Asking never sends a one-time code to the phone.`),
			item(`**check-config**`, `Validates the configuration (every problem with file:line and the fix), the permissions of the file, of __secret_file__ and __ca_file__ and of their directories, and, as root, the sshd and PAM wiring: the hook only in the auth stack, __UsePAM no__, a control that cannot deny, a line before the hook that can skip it, forwarding still open for gated users, __~/.ssh/rc__ allowed, risky __AcceptEnv__. It never prints the secret.`),
			item(`**version**`, `Prints "latch-ssh" and the version.`),
			item(`**demo**`, `Reserved for a demonstration mode with a simulated Latch; not built in this version (exit status 2).`),
			item(`**help**, **-h**, **--help**`, `Prints the list of commands. Every command takes **-h** or **--help**.`),
		}},
		{"options", []block{
			p(`Flags may be written with one dash or two. Each command accepts only its own flags.`),
			item(`**-c** __file__`, `(serve, pair, unpair, status, check-config) Use __file__ instead of __/etc/latch-ssh/latch.toml__. Honoured only for root; other users get exit status 2.`),
			item(`**--user** __user__`, `(pair, unpair, status) The local user to act on. Root only; default: the user running the command (from the effective uid, never from $USER).`),
			item(`**--json**`, `(status) Print the status as JSON, for scripts.`),
			item(`**--no-wiring**`, `(check-config) Do not inspect sshd and PAM; check the configuration file only. The systemd unit uses this before starting and reloading the daemon.`),
			item(`**--online**`, `(check-config) Also ask Latch to check app_id and secret (one API call).`),
			item(`**--pam-dir** __directory__`, `(check-config) The PAM configuration directory to inspect. Default: __/etc/pam.d__.`),
			item(`**--sshd-config** __file__`, `(check-config) The sshd configuration file to inspect. Default: sshd's own.`),
		}},
		{"exit status", []block{
			item(`gate (no arguments)`, `When the login is allowed the gate becomes the shell, so the status is the shell's or the command's. 1: denied.`),
			item(`**serve**`, `0: stopped cleanly; 1: could not start, or the socket failed; 2: bad usage.`),
			item(`**pair**, **unpair**`, `0: done; 1: not done, or only partly (the message says how to finish); 2: bad usage.`),
			item(`**status**`, `0: shown; 1: not shown, or some latch could not be read (state "error"); 2: bad usage.`),
			item(`**check-config**`, `0: no errors (warnings may have been printed); 1: errors, and logins are not protected as configured until they are fixed; 2: bad usage.`),
			item(`**version**, **help**`, `0; 2 when given extra arguments.`),
			item(`unknown command, **demo**`, `2.`),
		}},
		{"environment", []block{
			item(`SSH_ORIGINAL_COMMAND`, `(gate) The command the client asked for, set by sshd.`),
			item(`NOTIFY_SOCKET`, `(serve) The systemd notification socket; removed from the environment once read.`),
			p(`Nothing in the environment changes a security setting: the configuration path, the Latch URL, CA roots (SSL_CERT_FILE, SSL_CERT_DIR), proxies (HTTPS_PROXY and friends) and the fail mode come from the configuration only. The user is taken from the kernel, never from $USER or $LOGNAME, and the shell from the passwd database, never from $SHELL.`),
		}},
		{"files", []block{
			item(`__/etc/latch-ssh/latch.toml__`, `The configuration, root-owned, mode 0600 while it holds the secret. See **latch.toml**(5).`),
			item(`__/run/latch-ssh/gate.sock__`, `The daemon's gate socket (fixed at build time for the gate; __[daemon] socket__ for the daemon).`),
			item(`__/usr/lib/systemd/system/latch-ssh.service__`, `The systemd unit of the daemon; not enabled on install.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch.toml.example__`, `The commented configuration template.`),
			item(`__/usr/share/doc/latch-ssh/examples/latch-ssh-forcecommand.conf__`, `The sshd snippet for the ForceCommand gate; copy it to __/etc/ssh/sshd_config.d/latch-ssh.conf__. It sets __ForceCommand__, __DisableForwarding yes__ and __PermitUserRC no__ for __Match Group latch-users__.`),
			item(`__/usr/share/doc/latch-ssh/examples/pam/__`, `The PAM lines for sshd, sudo and su; see **latch-check**(8).`),
			item(`__/usr/share/pam-configs/latch-ssh__`, `(Debian) A **pam-auth-update**(8) profile, off by default.`),
		}},
		{"logging", []block{p(`Every decision writes one structured line (user, service, remote address, operation, outcome, reason, latency, whether the fail mode was applied). The gate and the hook log to syslog, facility AUTHPRIV, tag latch-ssh, never to the user's terminal; the daemon logs JSON lines to standard error.`)}},
		{"examples", []block{code(`latch-ssh check-config
latch-ssh pair --user alice AbC123
latch-ssh status --user alice --json
systemctl enable --now latch-ssh`)}},
		{"see also", []block{p(`**latch-check**(8), **latch.toml**(5), **sshd_config**(5), **pam_exec**(8), **pam-auth-update**(8), **systemctl**(1)`)}},
	}}
}

func latchCheck() page {
	return page{name: "latch-check", section: "8", title: "System Administration", sections: []section{
		{"name", []block{p(`latch-check - PAM hook of latch-ssh: decide a login by its user's Latch`)}},
		{"synopsis", []block{p(`**account required pam_exec.so quiet /usr/sbin/latch-check**
.br
**latch-check** [**-c** __file__] [**--service** __name__] __user__
.br
**latch-check --version**
.br
**latch-check** {**-h** | **--help**}`)}},
		{"description", []block{
			p(`**latch-check** decides whether a user may log in, from their Latch and the policy in __/etc/latch-ssh/latch.toml__ (see **latch.toml**(5)). Run by **pam_exec**(8) it takes the user from PAM_USER and the service from PAM_SERVICE (the service picks an operation in __[operations]__); by hand it takes the user as an argument.`),
			p(`Put it in the account stack, which sshd runs for every login, public-key ones included, before any shell, command or forward exists. In __/etc/pam.d/sshd__, before __@include common-account__ (Debian's pam_unix ends the account stack early for a user whose password has expired):`),
			code(`account required pam_exec.so quiet /usr/sbin/latch-check`),
			p(`Keep __UsePAM yes__ in **sshd_config**(5). sudo takes the same line; su needs __seteuid__ (__account required pam_exec.so quiet seteuid /usr/sbin/latch-check__). Add __stdout__ after __quiet__ to show the person the one-line refusal. The latch checked is the target user's (PAM_USER). Run **latch-ssh check-config** afterwards and keep a root shell open while you try a login.`),
			p(`Under PAM it decides for PAM_TYPE auth, account and open_session; it allows close_session and password without asking (the login was decided before) and denies any other type. It never prompts and never reads standard input: Latch is asked not to require a one-time code (/nootp). It clears its whole environment before reading anything.`),
			p(`On Debian, the **pam-auth-update**(8) profile "latch-ssh" (off by default) adds the line to __common-account__ instead, for every PAM service that includes it (cron too). It lands in the "Additional" block, after pam_unix, so it does not run for users whose password has expired; prefer the per-service line above.`),
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
			item(`Latch unreachable, slow, 5xx, 429, malformed answer, error code`, `the __fail_mode__ policy (fail-open is logged as a warning FAIL-OPEN).`),
			item(`configuration missing or invalid`, `deny.`),
		}},
		{"exit status", []block{
			item(`0`, `allowed (also: --help, --version, and PAM_TYPE close_session or password).`),
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
		{"logging", []block{p(`One JSON line per decision to syslog, facility AUTHPRIV, tag latch-ssh.`)}},
		{"see also", []block{p(`**latch-ssh**(8), **latch.toml**(5), **pam_exec**(8), **pam.conf**(5), **pam-auth-update**(8), **sshd**(8)`)}},
	}}
}

func latchTOML() page {
	return page{name: "latch.toml", section: "5", title: "File Formats", sections: []section{
		{"name", []block{p(`latch.toml - configuration of latch-ssh`)}},
		{"synopsis", []block{p(`__/etc/latch-ssh/latch.toml__`)}},
		{"description", []block{
			p(`The configuration of **latch-ssh**(8) and **latch-check**(8), in TOML. The package installs a template with placeholders (REPLACE_WITH_...); until they are replaced every login through latch-ssh is denied and **latch-ssh check-config** says why. The commented template is also in __/usr/share/doc/latch-ssh/examples/latch.toml.example__.`),
			p(`The file must belong to root and be writable only by root; while it holds the secret it must be readable only by root (mode 0600). The same holds for __secret_file__ and __ca_file__. Unknown keys, wrong types and values out of range are errors, reported with file:line and the fix; an invalid file denies every login. Durations are strings with a unit: "500ms", "3s", "2m", "1h". Identifiers are letters and digits of a fixed length.`),
			p(`**latch-ssh pair** and **unpair** edit __[users]__ in place and keep every other line and comment.`),
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
			item(`**otp** = "prompt" | "never"`, `"prompt" asks for a one-time code where a person can type it (a terminal) and elsewhere asks Latch not to require one; "never" always asks Latch not to require one. Default: "prompt".`),
			item(`**silent** = __bool__`, `Ask Latch not to push a notification to the phone for each check. Default: false.`),
			item(`**allow_self_pairing** = __bool__`, `Let users pair, unpair and see their own status through the daemon (**latch-ssh pair** __token__). Root can always pair anyone. Default: false.`),
			item(`**pair_common_name** = __bool__`, `Send user@host as the pairing's name, so the Latch app shows which account on which server the latch guards. Default: true.`),
		}},
		{"[operations]", []block{
			p(`__service__ = __operation id__: a Latch operation per service, so the app shows separate switches. Keys are PAM service names ("sshd", "sudo", "su") or front ends ("latch-ssh" for the ForceCommand gate, "server" for the embedded server); values are 20-letter-and-digit operation ids. A service with none checks the application's latch.`),
		}},
		{"[user_operations.USER]", []block{
			p(`__service__ = __operation id__, for one user, overriding __[operations]__. USER must be in __[users]__.`),
		}},
		{"[users]", []block{
			p(`__user__ = __account id__: local user name to the Latch account id (64 letters and digits) pairing returned. User and group names are 1 to 32 letters, digits, "_", "." or "-", not starting with "." or "-".`),
		}},
		{"[daemon]", []block{
			item(`**socket** = __path__`, `The gate socket's absolute path. Default: "/run/latch-ssh/gate.sock" (the ForceCommand gate uses the path compiled into it).`),
			item(`**rate_limit** = __integer__`, `Decisions per user per minute through the socket, 1 to 10000. Default: 10.`),
		}},
		{"[server]", []block{
			p(`The embedded SSH server of **latch-ssh serve** (not built in this version; the keys are already checked).`),
			item(`**listen** = "__host__:__port__"`, `"" keeps the server off (default).`),
			item(`**host_key** = [__path__, ...]`, `Absolute paths of host private keys. Default: ["/etc/latch-ssh/ssh_host_ed25519_key"].`),
			item(`**authorized_keys** = __pattern__`, `Where each user's keys are, starting with / or %h: %h is the home directory, %u the user name, %% a literal %. Default: "%h/.ssh/authorized_keys".`),
			item(`**recheck** = __duration__`, `How often open sessions re-check the latch; closing it ends them. "0" never, else "1s" to "24h". Default: "30s".`),
			item(`**allow_tcp_forwarding** = __bool__`, `Default: false.`),
			item(`**login_grace_time** = __duration__`, `"1s" to "1h". Default: "2m".`),
			item(`**max_auth_tries** = __integer__`, `1 to 100. Default: 6.`),
			item(`**max_unauthenticated** = __integer__`, `Connections that have not authenticated yet, at most: 1 to 100000. Default: 100.`),
			item(`**handshake_timeout** = __duration__`, `"1s" to "10m". Default: "20s".`),
			item(`**sftp_server** = __path__`, `An absolute path to the sftp server; "" finds the system's (default).`),
		}},
		{"example", []block{code(`[latch]
app_id = "..."
secret_file = "/etc/latch-ssh/secret"

[policy]
fail_mode = "closed"
exempt_groups = ["latch-breakglass"]

[operations]
sudo = "..."

[users]
alice = "..."`)}},
		{"files", []block{
			item(`__/etc/latch-ssh/latch.toml__`, `This file; a conffile of the package, kept on removal, deleted on purge (with the rest of __/etc/latch-ssh__).`),
			item(`__/usr/share/doc/latch-ssh/examples/latch.toml.example__`, `The commented template.`),
		}},
		{"see also", []block{p(`**latch-ssh**(8), **latch-check**(8)`)}},
	}}
}
