#!/bin/bash
# packaging/test-package-ns.sh: the checks of test-package.sh that must not
# change this machine for good. test-package.sh runs it in a private mount
# namespace (unshare -m --propagation private), so every mount made here
# goes away with it:
#
#   scripts WORK CONTROL  the maintainer scripts of the .deb (from CONTROL)
#                         and of the .rpm (WORK/postinst.rpm, prerm.rpm),
#                         with /run/systemd/system on a tmpfs and stand-ins
#                         for systemctl, deb-systemd-invoke, pam-auth-update
#   pam WORK              pam-auth-update --enable latch-ssh, pamtester on
#                         two test users, then dpkg -r latch-ssh, on private
#                         copies of /etc/pam.d, /var/lib/pam, debconf's
#                         database, /etc/passwd and /etc/shadow
#   fleet WORK DEB        the Ansible example run three times by
#                         ansible-playbook (connection local) on a private
#                         copy of /etc, around a pairing in the pairing
#                         drop-in, with pamtester logins through the sshd
#                         PAM stack it wired
#
# Run from the repository root. It prints "ok ..." for each check, and
# "FAIL ..." then exits 1 at the first failure.
set -euo pipefail
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; exit 1; }

[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] ||
	fail "test-package-ns.sh must run in its own mount namespace (unshare -m), see test-package.sh"

# The daemon's systemd status when the embedded server is on contains this
# text (internal/daemon, status()); postinst looks for it.
ssh_status=$(sed -n 's/.*st += "\(.*\)" + d\.listen.*/\1/p' internal/daemon/daemon.go)
[ -n "$ssh_status" ] || fail "cannot find the STATUS= text of the embedded server in internal/daemon/daemon.go: update postinst and this test"

scripts() {
	local work=$1 ctrl=$2 stub=$1/stub
	mount -t tmpfs tmpfs /run
	mkdir -p /run/systemd/system "$stub"
	cat >"$stub/stand-in" <<'EOF'
#!/bin/sh
echo "${0##*/} $*" >>"$CALLS"
case "${0##*/} $1" in
"systemctl show") [ -z "${STATUS_TEXT:-}" ] || echo "$STATUS_TEXT" ;;
"systemctl is-active") exit "${INACTIVE:-0}" ;;
esac
exit 0
EOF
	chmod 755 "$stub/stand-in"
	for c in systemctl deb-systemd-invoke pam-auth-update; do ln -s stand-in "$stub/$c"; done
	export CALLS=$work/calls PATH="$stub:$PATH"
	local gate="serving the gate socket at /run/latch-ssh/gate.sock"
	# run SCRIPT ARGS: sets $calls (the stand-ins called, one a line, with
	# their arguments) and $err (the script's stderr).
	run() {
		local rc=0
		: >"$CALLS"
		err=$(sh "$@" 2>&1 >/dev/null) || rc=$?
		[ $rc = 0 ] || fail "$* exited $rc: $err"
		calls=$(cat "$CALLS")
	}
	want() { [ "$calls" = "$1" ] || fail "$2: called"$'\n'"${calls:-(nothing)}"$'\n'"want"$'\n'"${1:-(nothing)}"; }
	local restart="deb-systemd-invoke try-restart latch-ssh.service"

	run "$ctrl/postinst" configure
	want "systemctl --system daemon-reload" "deb postinst, first install"
	run "$ctrl/postinst" configure
	want "systemctl --system daemon-reload" "deb postinst, run again"
	ok "deb postinst, install: daemon-reload only, twice the same (no start, no enable)"

	INACTIVE=3 run "$ctrl/postinst" configure 0.0.1
	want "systemctl --system daemon-reload
systemctl is-active --quiet latch-ssh.service" "deb postinst, upgrade, daemon stopped"
	STATUS_TEXT=$gate run "$ctrl/postinst" configure 0.0.1
	grep -qxF "$restart" <<<"$calls" || fail "deb postinst, upgrade, gate socket only: no try-restart: $calls"
	ok "deb postinst, upgrade: try-restart when the daemon runs (gate socket only), nothing when it is stopped"

	STATUS_TEXT="$gate${ssh_status}0.0.0.0:2222" run "$ctrl/postinst" configure 0.0.1
	! grep -q 'restart' <<<"$calls" || fail "deb postinst restarted a daemon whose status says it serves SSH: $calls"
	grep -q 'not restarting' <<<"$err" || fail "deb postinst did not say why it does not restart: $err"
	printf '[daemon]\n[server] # on\n  listen = "0.0.0.0:2222"\n[users]\n' >"$work/server.toml"
	mount --bind "$work/server.toml" /etc/latch-ssh/latch.toml
	STATUS_TEXT=$gate run "$ctrl/postinst" configure 0.0.1
	umount /etc/latch-ssh/latch.toml
	! grep -q 'restart' <<<"$calls" || fail "deb postinst restarted a daemon whose configuration sets [server] listen: $calls"
	ok "deb postinst, upgrade: no restart (and a message) when the daemon runs the embedded server, by its status or its configuration"

	run "$ctrl/prerm" remove
	want "pam-auth-update --package --remove latch-ssh
deb-systemd-invoke stop latch-ssh.service" "deb prerm remove"
	run "$ctrl/prerm" upgrade 0.0.2
	want "" "deb prerm upgrade"
	ok "deb prerm: remove takes the pam-auth-update profile out, then stops the daemon; upgrade does nothing"

	run "$work/postinst.rpm" 1
	want "systemctl daemon-reload" "rpm %post, install"
	STATUS_TEXT=$gate run "$work/postinst.rpm" 2
	grep -qxF "systemctl try-restart latch-ssh.service" <<<"$calls" || fail "rpm %post, upgrade: no try-restart: $calls"
	STATUS_TEXT="$gate${ssh_status}0.0.0.0:2222" run "$work/postinst.rpm" 2
	! grep -q 'restart' <<<"$calls" || fail "rpm %post restarted a daemon that serves SSH: $calls"
	run "$work/prerm.rpm" 0
	grep -qxF "systemctl stop latch-ssh.service" <<<"$calls" || fail "rpm %preun, removal: no stop: $calls"
	run "$work/prerm.rpm" 1
	want "" "rpm %preun, upgrade"
	ok "rpm %post/%preun: the same decisions"
}

pam() {
	local work=$1 x
	for x in latchpkg1 latchpkg2; do
		! getent passwd "$x" >/dev/null || fail "user $x exists on this machine"
	done
	# Private copies, bound over the originals. All of /etc rather than
	# /etc/passwd and /etc/shadow alone: a file bind-mounted in this
	# namespace is detached from it when anything outside renames a new file
	# over the original (useradd and userdel do, in any test running beside
	# this one; Linux >= 3.18), and the lines added below would then be
	# written to, and missed from, the real files.
	for x in /etc /var/lib/pam /var/cache/debconf; do
		mkdir -p "$work/ns$(dirname "$x")"
		cp -a "$x" "$work/ns$x"
		mount --bind "$work/ns$x" "$x"
	done
	export DEBIAN_FRONTEND=noninteractive
	# latchpkg1 may log in; latchpkg2 must change its password first
	# (last change on day 0), for which pam_unix ends the account stack.
	echo "latchpkg1:x:64531:64531:latch-ssh package test:/nonexistent:/usr/sbin/nologin" >>/etc/passwd
	echo "latchpkg1:*:$(($(date +%s) / 86400)):0:99999:7:::" >>/etc/shadow
	echo "latchpkg2:x:64532:64532:latch-ssh package test:/nonexistent:/usr/sbin/nologin" >>/etc/passwd
	echo "latchpkg2:*:0:0:99999:7:::" >>/etc/shadow
	echo 'account include common-account' >/etc/pam.d/latch-ssh-test
	# An admin's per-service line, which removal must warn about.
	echo 'account required pam_exec.so quiet seteuid /usr/sbin/latch-check' >/etc/pam.d/latch-ssh-test-hook
	acct() { pamtester latch-ssh-test "$1" acct_mgmt 2>&1; }
	local out expired='new one required'

	out=$(acct latchpkg1) || fail "without the profile, latchpkg1 is refused: $out"
	out=$(acct latchpkg2) && fail "without the profile, latchpkg2 (expired password) is allowed"
	grep -q "$expired" <<<"$out" || fail "without the profile, latchpkg2: $out"
	ok "stock common-account: latchpkg1 allowed; pam_unix ends latchpkg2's stack (password expired)"

	out=$(pam-auth-update --enable latch-ssh 2>&1) || fail "pam-auth-update --enable latch-ssh: $out"
	[ -z "$out" ] || fail "pam-auth-update --enable latch-ssh printed: $out"
	local lines
	lines=$(grep -E '^account[[:space:]]' /etc/pam.d/common-account)
	grep -qE '^account[[:space:]]+required[[:space:]]+pam_exec\.so quiet seteuid /usr/sbin/latch-check$' <<<"$(head -n1 <<<"$lines")" ||
		fail "the hook is not the first account line of common-account:"$'\n'"$lines"
	grep -q pam_unix.so <<<"$(sed -n 2p <<<"$lines")" || fail "pam_unix does not follow the hook:"$'\n'"$lines"
	ok "pam-auth-update --enable latch-ssh: quiet; the hook is the first line of common-account, pam_unix next"
	grep -qE '^session[[:space:]]+optional[[:space:]]+pam_exec\.so quiet seteuid /usr/sbin/latch-check$' /etc/pam.d/common-session ||
		fail "the session line is not in common-session:"$'\n'"$(cat /etc/pam.d/common-session)"
	ok "pam-auth-update --enable latch-ssh: the session line is in common-session"

	# The configuration still holds its placeholders: latch-check denies.
	out=$(acct latchpkg1) && fail "with the profile, latchpkg1 is allowed by a placeholder configuration"
	out=$(acct latchpkg2) && fail "with the profile, latchpkg2 is allowed"
	! grep -q "$expired" <<<"$out" || fail "with the profile, pam_unix still ends latchpkg2's stack before the hook: $out"
	ok "with the profile, latch-check decides first: both denied, the expired-password user included"

	out=$(dpkg -r latch-ssh 2>&1) || fail "dpkg -r latch-ssh: $out"
	echo "$out" | sed 's/^/    /'
	! grep -q latch-check /etc/pam.d/common-account || fail "common-account still runs latch-check after dpkg -r"
	! grep -q latch-check /etc/pam.d/common-session || fail "common-session still runs latch-check after dpkg -r"
	out2=$(acct latchpkg1) || fail "after dpkg -r, latchpkg1 is refused: $out2"
	ok "dpkg -r: prerm took the profile out of common-account before latch-check went; PAM allows again"
	grep -q '/etc/pam.d/latch-ssh-test-hook' <<<"$out" || fail "dpkg -r did not warn about /etc/pam.d/latch-ssh-test-hook"
	! grep -q 'common-account' <<<"$out" || fail "dpkg -r warned about common-account"
	ok "dpkg -r: warned that /etc/pam.d/latch-ssh-test-hook still runs latch-check"
}

# fleet WORK DEB: the fleet layout of issue 17 on this machine, as
# configuration management would apply it: the shipped playbook and task
# list (packaging/examples/ansible), run by ansible-playbook against
# localhost (connection local) on a private copy of /etc. Between runs a
# pairing is written into the pairing drop-in the way latch-ssh pair writes
# it (there is no Latch here to pair with): the runs must keep it byte for
# byte, rewrite latch.toml only when a variable changes, and the PAM hook
# must read both files at each login.
fleet() {
	local work=$1 deb=$2 x out recap
	for x in latchpkg3 latchpkg4; do
		! getent passwd "$x" >/dev/null || fail "user $x exists on this machine"
	done
	for x in /etc /var/lib/pam /var/cache/debconf; do
		mkdir -p "$work/fleet-ns$(dirname "$x")"
		cp -a "$x" "$work/fleet-ns$x"
		mount --bind "$work/fleet-ns$x" "$x"
	done
	echo "latchpkg3:x:64533:64533:latch-ssh package test:/nonexistent:/usr/sbin/nologin" >>/etc/passwd
	echo "latchpkg3:*:$(($(date +%s) / 86400)):0:99999:7:::" >>/etc/shadow
	echo "latchpkg4:x:64534:64534:latch-ssh package test:/nonexistent:/usr/sbin/nologin" >>/etc/passwd
	echo "latchpkg4:*:$(($(date +%s) / 86400)):0:99999:7:::" >>/etc/shadow
	if [ ! -f /etc/pam.d/sshd ]; then
		# No openssh-server here: the lines of Debian's that matter.
		printf '%s\n' '@include common-auth' 'account    required     pam_nologin.so' '@include common-account' \
			'session    required     pam_loginuid.so' '@include common-session' '@include common-password' >/etc/pam.d/sshd
	fi
	local pam_before ex=$work/fleet-example
	pam_before=$(cat /etc/pam.d/sshd)
	cp -r packaging/examples/ansible "$ex"
	printf '[latch_ssh_servers]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' >"$work/fleet-inventory"
	# Extra vars over the play's placeholders. Latch is a closed port: a
	# paired user is decided by fail_mode "closed". Root already: no
	# become (sudo may not be installed).
	printf '%s\n' "latch_ssh_deb: $deb" 'latch_ssh_app_id: AAAAAAAAAAAAAAAAAAAA' \
		'latch_ssh_secret: BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' 'latch_ssh_fail_mode: closed' \
		'latch_ssh_api_url: https://127.0.0.1:9' 'latch_ssh_operations: {sshd: CCCCCCCCCCCCCCCCCCCC}' \
		'ansible_become: false' >"$work/fleet-vars.yml"
	export HOME=$work/fleet-home ANSIBLE_LOCAL_TEMP=$work/fleet-home/tmp ANSIBLE_REMOTE_TEMP=$work/fleet-home/rtmp
	export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_STDOUT_CALLBACK=default
	mkdir -p "$HOME"
	# play EXTRA...: runs the example playbook; sets $out to its output
	# and $recap to its "localhost : ok=..." line.
	play() {
		out=$(ansible-playbook -i "$work/fleet-inventory" "$ex/playbook.yml" -e "@$work/fleet-vars.yml" "$@" 2>&1) ||
			fail "ansible-playbook $*: $out"
		recap=$(grep -E '^localhost +: ok=' <<<"$out") || fail "no PLAY RECAP: $out"
	}
	play
	grep -q 'changed=[1-9]' <<<"$recap" && grep -q 'failed=0' <<<"$recap" || fail "first run: $recap"$'\n'"$out"
	local conf=/etc/latch-ssh/latch.toml
	[ "$(stat -c '%a %U %G' $conf)" = "600 root root" ] || fail "templated latch.toml: $(stat -c '%a %U %G' $conf)"
	[ "$(stat -c '%a %U %G' /etc/latch-ssh/secret)" = "600 root root" ] || fail "secret: $(stat -c '%a %U %G' /etc/latch-ssh/secret)"
	[ "$(cat /etc/latch-ssh/secret)" = BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB ] || fail "secret file content"
	! grep -q BBBBBBBB <<<"$out" || fail "the secret is in ansible-playbook's output"
	grep -qx 'pairing_file = "latch.d/50-paired.toml"' $conf || fail "latch.toml has no pairing_file: $(cat $conf)"
	! grep -q '^\[users\]' $conf || fail "the templated latch.toml has a [users] table"
	grep -B1 -x '@include common-account' /etc/pam.d/sshd | head -n1 |
		grep -qx 'account required pam_exec.so quiet seteuid /usr/sbin/latch-check' ||
		fail "account hook not right before common-account: $(cat /etc/pam.d/sshd)"
	grep -B1 -x '@include common-session' /etc/pam.d/sshd | head -n1 |
		grep -qx 'session optional pam_exec.so quiet seteuid /usr/sbin/latch-check' ||
		fail "session hook not right before common-session: $(cat /etc/pam.d/sshd)"
	[ "$(diff <(echo "$pam_before") /etc/pam.d/sshd | grep -c '^[<>]')" = 2 ] || fail "/etc/pam.d/sshd: not just the two lines added"
	grep -q 'latch_ssh_check.stdout_lines' <<<"$out" || fail "check-config's findings were not shown: $out"
	ok "ansible-playbook (the example, connection local): package, secret 600, latch.toml 600 without [users], PAM hooks right before common-account and common-session, check-config passed"

	local acct=DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD
	local paired=/etc/latch-ssh/latch.d/50-paired.toml
	printf '# Written by latch-ssh pair and latch-ssh unpair\n[users]\nlatchpkg4 = "%s"\n' "$acct" >$paired
	chmod 600 $paired
	out=$(pamtester sshd latchpkg3 acct_mgmt 2>&1) || fail "latchpkg3 (not paired, unpaired = allow) refused: $out"
	out=$(pamtester sshd latchpkg4 acct_mgmt 2>&1) && fail "latchpkg4 (paired in $paired, Latch unreachable, fail_mode closed) allowed"
	out=$(latch-ssh check-config --no-wiring --users 2>&1) || fail "check-config --users: $out"
	grep -qF "note: $paired:3: maps latchpkg4" <<<"$out" || fail "check-config --users does not place latchpkg4 at $paired:3: $out"
	ok "pamtester through the wired sshd stack: latchpkg3 (unpaired) allowed, latchpkg4 (paired in the drop-in) denied (Latch unreachable, closed); check-config --users: $paired:3"

	local sum_conf sum_paired sum_pam
	sum_conf=$(md5sum <$conf) sum_paired=$(md5sum <$paired) sum_pam=$(md5sum </etc/pam.d/sshd)
	play --check --diff
	grep -q 'changed=0' <<<"$recap" || fail "second run, --check --diff, would change something: $recap"$'\n'"$out"
	play
	grep -q 'changed=0' <<<"$recap" || fail "second run changed something: $recap"$'\n'"$out"
	[ "$sum_conf" = "$(md5sum <$conf)" ] && [ "$sum_pam" = "$(md5sum </etc/pam.d/sshd)" ] || fail "second run changed latch.toml or pam.d/sshd"
	[ "$sum_paired" = "$(md5sum <$paired)" ] || fail "second run changed the pairing file"
	ok "second run, --check --diff then for real: changed=0; latch.toml, pam.d/sshd and the pairing file byte for byte the same"

	play -e latch_ssh_unpaired=deny
	grep -q 'changed=1 ' <<<"$recap" || fail "third run (unpaired = deny): $recap"$'\n'"$out"
	grep -qx 'unpaired = "deny"' $conf || fail "third run did not rewrite latch.toml"
	[ "$sum_paired" = "$(md5sum <$paired)" ] || fail "third run changed the pairing file"
	out=$(pamtester sshd latchpkg3 acct_mgmt 2>&1) && fail "latchpkg3 allowed after unpaired = deny"
	ok "third run (unpaired = deny): latch.toml rewritten (changed=1), the pairing file untouched; latchpkg3 (unpaired) now denied"
}

case "${1:-}" in
scripts) scripts "$2" "$3" ;;
pam) pam "$2" ;;
fleet) fleet "$2" "$3" ;;
*) fail "usage: test-package-ns.sh scripts WORK CONTROL | pam WORK | fleet WORK DEB" ;;
esac
