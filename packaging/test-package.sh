#!/bin/bash
# packaging/test-package.sh: build the latch-ssh .deb and .rpm with
# `make package`, inspect both, then install, reinstall, remove and purge
# the .deb on this machine and run lintian on it. `make package-test` runs
# it. Needs root on a Debian-like system: it installs the tools it uses
# (rpm, lintian, man-db, binutils, pamtester, openssh-client) with apt-get
# when they are missing, and it installs the package for real (it does not
# enable or start anything). It also runs, for a few seconds, the installed
# daemon with the embedded SSH server on a loopback port.
#
# What must not touch this machine for good runs in a private mount
# namespace (unshare -m): enabling the pam-auth-update profile (on copies
# of /etc/pam.d, /var/lib/pam, debconf and two test users in copies of
# /etc/passwd and /etc/shadow) and the maintainer scripts with systemd
# stand-ins. Whatever happens, the package is purged at the end.
#
# Without systemd-analyze or unshare the checks that need them are skipped
# with a note, except under CI=true, where systemd is installed and a
# missing tool fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS
pass=0
warn=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }
note() { warn=$((warn + 1)); echo "note $*"; }
step() { echo; echo "== $* ($((SECONDS - start))s)"; }
# skip_or_fail: outside CI a missing capability skips its checks with a
# note; under CI=true it fails the run.
skip_or_fail() {
	if [ "${CI:-}" = true ]; then fail "$* (CI=true: refusing to skip)"; fi
	note "$*"
}
# counted runs a helper that prints "ok ..." lines (in a mount namespace)
# and counts them; its failure is ours.
counted() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	echo "$out"
	[ $rc = 0 ] || fail "$(sed -n "s/^FAIL //p" <<<"$out" | head -n1 || echo "$1 exited $rc")"
	pass=$((pass + $(grep -c '^ok ' <<<"$out" || true)))
}

[ "$(id -u)" = 0 ] || fail "run as root: the test installs and purges the package"
command -v apt-get >/dev/null || fail "needs a Debian-like system (apt-get)"
# Before the trap below, which purges: an admin's installation is theirs.
if dpkg-query -W -f='${Status}' latch-ssh 2>/dev/null | grep -q 'install ok'; then
	fail "latch-ssh is already installed here; remove it first (this test purges it)"
fi

step "tools"
tools=(rpm:rpm lintian:lintian man:man-db objdump:binutils gzip:gzip pamtester:pamtester
	ssh:openssh-client ssh-keygen:openssh-client unshare:util-linux ansible-playbook:ansible-core)
[ "${CI:-}" = true ] && tools+=(systemd-analyze:systemd)
need=()
for pair in "${tools[@]}"; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# Ansible's apt module needs python3-apt on the managed host (and would
# install it itself, unasked).
dpkg-query -W -f='${Status}' python3-apt 2>/dev/null | grep -q 'install ok installed' || need+=(python3-apt)
if [ ${#need[@]} -gt 0 ]; then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	echo "installing: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for pair in "${tools[@]}"; do
	command -v "${pair%%:*}" >/dev/null || fail "${pair%%:*} (package ${pair#*:}) is still missing"
done
# unshare -m needs CAP_SYS_ADMIN: a container may not have it.
ns=yes
if ! unshare -m --propagation private true 2>/dev/null; then
	ns=""
	skip_or_fail "cannot make a mount namespace (unshare -m): the pam-auth-update and maintainer-script checks are skipped"
fi
# Debian images often exclude man pages and docs (dpkg path-exclude): this
# test needs ours installed, so lift the exclusion for our paths only,
# while it runs.
exclude=/etc/dpkg/dpkg.cfg.d/latch-ssh-test-include
if grep -qsr 'path-exclude' /etc/dpkg/dpkg.cfg.d/ 2>/dev/null; then
	printf '%s\n' path-include=/usr/share/man/man5/latch.toml.5.gz 'path-include=/usr/share/man/man8/latch-*.8.gz' \
		'path-include=/usr/share/doc/latch-ssh/*' >"$exclude"
fi
work=$(mktemp -d)
serve_pid=""
cleanup() {
	[ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
	rm -f "$exclude"
	dpkg -P latch-ssh >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

step "make package"
make package
version=$(packaging/version.sh 2>/dev/null || echo 0.0.0~unknown) # as the Makefile's PKG_VERSION
deb="dist/latch-ssh_${version}_amd64.deb"
rpmf="dist/latch-ssh_${version}_amd64.rpm"
[ -f "$deb" ] || fail "no $deb"
[ -f "$rpmf" ] || fail "no $rpmf"
ok "built $deb and $rpmf (version $version)"
case "$version" in
v* | *[!A-Za-z0-9.+~]*) fail "version $version is not a Debian upstream version" ;;
esac
dpkg --validate-version "$version" || fail "dpkg rejects version $version"
ok "version $version is valid for dpkg"

# Expected files: path and mode (octal permission bits).
expected=(
	"/usr/bin/latch-ssh 0755"
	"/usr/sbin/latch-check 0755"
	"/etc/latch-ssh/latch.toml 0600"
	"/usr/lib/systemd/system/latch-ssh.service 0644"
	"/usr/share/man/man8/latch-ssh.8.gz 0644"
	"/usr/share/man/man8/latch-check.8.gz 0644"
	"/usr/share/man/man5/latch.toml.5.gz 0644"
	"/usr/share/doc/latch-ssh/copyright 0644"
	"/usr/share/doc/latch-ssh/examples/latch.toml.example 0644"
	"/usr/share/doc/latch-ssh/examples/latch-ssh-forcecommand.conf 0644"
	"/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml 0644"
	"/usr/share/doc/latch-ssh/examples/pam/sshd 0644"
	"/usr/share/doc/latch-ssh/examples/pam/sudo 0644"
	"/usr/share/doc/latch-ssh/examples/pam/su 0644"
	"/usr/share/doc/latch-ssh/examples/ansible/latch-ssh.yml 0644"
	"/usr/share/doc/latch-ssh/examples/ansible/latch.toml.j2 0644"
	"/usr/share/doc/latch-ssh/examples/ansible/playbook.yml 0644"
	"/usr/share/doc/latch-ssh/examples/prometheus/latch-ssh-alerts.yml 0644"
)
deb_only=(
	"/usr/share/pam-configs/latch-ssh 0644"
	"/usr/share/doc/latch-ssh/changelog.gz 0644"
)
# mode string (-rwxr-xr-x) -> octal
octal() {
	local s=${1:1:9} n=0 i c
	for i in 0 1 2 3 4 5 6 7 8; do
		c=${s:$i:1}
		n=$((n * 2))
		[ "$c" != - ] && n=$((n + 1))
	done
	printf '%04o' "$n"
}

step "inspect the .deb"
listing=$(dpkg-deb -c "$deb")
echo "$listing"
for e in "${expected[@]}" "${deb_only[@]}"; do
	path=${e% *} mode=${e#* }
	line=$(awk -v p=".$path" '$6 == p' <<<"$listing")
	[ -n "$line" ] || fail "deb: $path missing"
	owner=$(awk '{print $2}' <<<"$line")
	[ "$owner" = root/root ] || fail "deb: $path owned by $owner"
	got=$(octal "$(awk '{print $1}' <<<"$line")")
	[ "$got" = "$mode" ] || fail "deb: $path mode $got, want $mode"
done
ok "deb: ${#expected[@]}+${#deb_only[@]} paths, root/root, modes (latch.toml 0600)"
awk '$6 == "./etc/latch-ssh/latch.d/"' <<<"$listing" | grep -q '^drwxr-xr-x root/root ' || fail "deb: no directory /etc/latch-ssh/latch.d, 0755 root/root"
ok "deb: /etc/latch-ssh/latch.d/ (drop-ins), 0755 root/root"
if grep -Eq '\./(etc/(pam\.d|ssh)|lib/systemd/system/[^ ]*\.wants|etc/systemd)' <<<"$listing"; then
	fail "deb ships files under /etc/pam.d, /etc/ssh or a systemd .wants: installing must enable nothing"
fi
ok "deb: nothing under /etc/pam.d, /etc/ssh or systemd .wants"
info=$(dpkg-deb -I "$deb")
echo "$info" | sed -n '/Package:/,$p'
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "deb: Version is not $version"
conffiles=$(dpkg-deb -I "$deb" conffiles)
grep -qx /etc/latch-ssh/latch.toml <<<"$conffiles" || fail "deb: conffiles lacks /etc/latch-ssh/latch.toml: $conffiles"
ok "deb: conffiles = $(tr '\n' ' ' <<<"$conffiles")"
ctrl=$work/control
mkdir "$ctrl"
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$ctrl"
for s in postinst prerm postrm; do
	cmp -s "$ctrl/$s" "packaging/scripts/$s.deb" || fail "deb $s is not packaging/scripts/$s.deb"
	sh -n "$ctrl/$s" || fail "deb $s: syntax error"
	# The code, without comments and messages: it may reload systemd,
	# try-restart or stop the daemon, and take the pam-auth-update profile
	# out on removal; nothing else that enables, starts or edits.
	code=$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*echo ' "$ctrl/$s")
	if grep -Eq '(systemctl|deb-systemd-invoke|deb-systemd-helper)[^;|&]*[[:space:]](enable|start|restart|reload|reenable|unmask)\b' <<<"$code"; then
		fail "deb $s enables or starts something:"$'\n'"$code"
	fi
	if grep -E 'pam-auth-update' <<<"$code" | grep -v 'command -v pam-auth-update' |
		grep -vqx '[[:space:]]*pam-auth-update --package --remove latch-ssh'; then
		fail "deb $s runs pam-auth-update for something else than removing the profile:"$'\n'"$code"
	fi
	if grep -Eq '(sed[[:space:]]+-i|>|\<(cp|mv|ln|rm|tee|install)\>)[^#]*/etc/(pam\.d|ssh)' <<<"$code"; then
		fail "deb $s edits /etc/pam.d or /etc/ssh:"$'\n'"$code"
	fi
done
ok "deb: maintainer scripts are packaging/scripts/*.deb, and enable, start and edit nothing"

step "inspect the .rpm"
rlisting=$(rpm -qlpv "$rpmf")
echo "$rlisting"
for e in "${expected[@]}"; do
	path=${e% *} mode=${e#* }
	line=$(awk -v p="$path" '$NF == p' <<<"$rlisting")
	[ -n "$line" ] || fail "rpm: $path missing"
	[ "$(awk '{print $3 "/" $4}' <<<"$line")" = root/root ] || fail "rpm: $path not root/root"
	got=$(octal "$(awk '{print $1}' <<<"$line")")
	[ "$got" = "$mode" ] || fail "rpm: $path mode $got, want $mode"
done
ok "rpm: ${#expected[@]} paths, root/root, modes (latch.toml 0600)"
rconf=$(rpm -qp --configfiles "$rpmf")
grep -qx /etc/latch-ssh/latch.toml <<<"$rconf" || fail "rpm: config files lack /etc/latch-ssh/latch.toml: $rconf"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" | grep -q '^cn /etc/latch-ssh/latch.toml$' ||
	fail "rpm: latch.toml is not %config(noreplace)"
[ "$(rpm -qp --qf '%{VERSION}' "$rpmf")" = "$version" ] || fail "rpm: version is not $version"
ok "rpm: %config(noreplace) /etc/latch-ssh/latch.toml, version $version"
for s in POSTIN:postinst PREUN:prerm; do
	rpm -qp --qf "%{${s%%:*}}" "$rpmf" >"$work/${s#*:}.rpm"
	cmp -s "$work/${s#*:}.rpm" "packaging/scripts/${s#*:}.rpm" || fail "rpm %${s%%:*} is not packaging/scripts/${s#*:}.rpm"
	sh -n "$work/${s#*:}.rpm" || fail "rpm %${s%%:*}: syntax error"
done
ok "rpm: %post and %preun are packaging/scripts/*.rpm, valid sh"

step "lintian"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
[ -n "$lint" ] && echo "$lint"
if grep -q '^E:' <<<"$lint"; then fail "lintian errors"; fi
nw=$(grep -c '^W:' <<<"$lint" || true)
ok "lintian: no errors, $nw warning(s)"

step "install"
# md5 of the files named, missing ones skipped (no pipefail trip).
sumof() { { cat "$@" 2>/dev/null || true; } | md5sum; }
# pamfiles lists /etc/pam.d without the private services the Go test
# harness (internal/systest) writes and removes while tests run: they carry
# its marker line, and must not make a concurrent run look like our change.
pamfiles() {
	local f
	for f in /etc/pam.d/*; do
		head -n1 "$f" 2>/dev/null | grep -q '^# written by latch-ssh internal/systest' || printf '%s\n' "$f"
	done
}
units_before=$(find /etc/systemd/system -name 'latch-ssh*' 2>/dev/null | sort)
mapfile -t pam_list < <(pamfiles)
pam_before=$(sumof "${pam_list[@]}" /var/lib/pam/* /var/cache/debconf/config.dat)
ssh_before=$(sumof /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*)
dpkg -i "$deb"
[ -x /usr/bin/latch-ssh ] && [ -x /usr/sbin/latch-check ] || fail "binaries not installed"
got=$(latch-ssh version)
[ "$got" = "latch-ssh $version" ] || fail "latch-ssh version printed '$got', want 'latch-ssh $version'"
ok "latch-ssh version: $got"
got=$(latch-check --version)
[ "$got" = "latch-check $version" ] || fail "latch-check --version printed '$got'"
ok "latch-check --version: $got"
latch-ssh --help >/dev/null || fail "latch-ssh --help"
set +e
latch-check --help >/dev/null 2>&1
rc=$?
set -e
[ $rc = 0 ] || fail "latch-check --help exited $rc"
ok "binaries run"
[ "$(stat -c '%a %U %G' /etc/latch-ssh/latch.toml)" = "600 root root" ] || fail "installed latch.toml: $(stat -c '%a %U %G' /etc/latch-ssh/latch.toml)"
ok "installed /etc/latch-ssh/latch.toml is 600 root root"
[ "$(stat -c '%a %U %G %F' /etc/latch-ssh/latch.d)" = "755 root root directory" ] || fail "installed latch.d: $(stat -c '%a %U %G %F' /etc/latch-ssh/latch.d)"
ok "installed /etc/latch-ssh/latch.d is a directory, 755 root root"
set +e
out=$(latch-ssh check-config --no-wiring 2>&1)
rc=$?
set -e
echo "$out" | sed 's/^/    /'
[ $rc = 1 ] || fail "check-config on the placeholder config exited $rc, want 1"
grep -q app_id <<<"$out" || fail "check-config does not mention app_id"
ok "check-config --no-wiring on the placeholder config fails (1) and names app_id"
set +e
latch-check root >/dev/null 2>&1
rc=$?
set -e
[ $rc = 1 ] || fail "latch-check root with the placeholder config exited $rc, want 1 (deny)"
ok "latch-check denies while the config holds placeholders"
[ "$units_before" = "$(find /etc/systemd/system -name 'latch-ssh*' 2>/dev/null | sort)" ] || fail "install enabled the unit"
mapfile -t pam_now < <(pamfiles)
[ "$pam_before" = "$(sumof "${pam_now[@]}" /var/lib/pam/* /var/cache/debconf/config.dat)" ] || fail "install changed /etc/pam.d"
[ "$ssh_before" = "$(sumof /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*)" ] || fail "install changed sshd's config"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	[ "$(systemctl is-enabled latch-ssh.service 2>/dev/null || true)" = disabled ] || fail "latch-ssh.service is not disabled"
	[ "$(systemctl is-active latch-ssh.service 2>/dev/null || true)" != active ] || fail "latch-ssh.service is running"
fi
ok "install enabled, started and edited nothing (no unit links, /etc/pam.d and sshd config unchanged)"

step "man pages"
for pg in latch-ssh latch-check "5 latch.toml"; do
	# shellcheck disable=SC2086
	txt=$(MANPAGER=cat MANWIDTH=100 man -P cat $pg 2>/dev/null) || fail "man $pg does not render"
	[ "$(wc -l <<<"$txt")" -gt 20 ] || fail "man $pg is too short"
done
pages=(/usr/share/man/man8/latch-ssh.8.gz /usr/share/man/man8/latch-check.8.gz /usr/share/man/man5/latch.toml.5.gz)
warnings=$(for f in "${pages[@]}"; do
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null
done)
[ -z "$warnings" ] || fail "man --warnings: $warnings"
ok "man latch-ssh, latch-check, latch.toml render, no groff warnings"
# Completeness: every command and flag --help prints, every key of the
# example configurations, the messages the embedded server prints. $all is
# the rendered pages, $text their source as one line (phrases that the
# renderer may break or hyphenate).
all=$(for pg in latch-ssh latch-check "5 latch.toml"; do
	# shellcheck disable=SC2086
	MANPAGER=cat MANWIDTH=200 man -P cat $pg 2>/dev/null
done)
text=$(zcat "${pages[@]}" | sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\&//g' | grep -v '^\.' | tr '\n' ' ' | tr -s ' ')
cmds=$(latch-ssh --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[ "$(wc -w <<<"$cmds")" -ge 7 ] || fail "latch-ssh --help lists only: $cmds"
for c in $cmds; do
	grep -q -- "latch-ssh $c" <<<"$text" || fail "latch-ssh(8) misses command $c"
	for f in $(latch-ssh "$c" --help 2>&1 | grep -oE '^  -[a-z-]+' | sed 's/^ *-*//'); do
		grep -qE -- "-{1,2}$f\b" <<<"$all" || fail "man pages miss latch-ssh $c flag -$f"
	done
done
for f in $(latch-check --help 2>&1 | grep -oE '^  -[a-z-]+' | sed 's/^ *-*//'); do
	grep -qE -- "-{1,2}$f\b" <<<"$all" || fail "man pages miss latch-check flag -$f"
done
for k in $(cat latch.toml.example packaging/server/latch-ssh-server.toml | grep -oE '^#? ?[a-z_]+ =' | tr -d '# =' | sort -u); do
	case $k in sshd | sudo | alice) continue ;; esac # example entries, not keys
	grep -q -- "$k" <<<"$all" || fail "latch.toml(5) misses key $k"
done
demo_default=$(latch-ssh demo --help 2>&1 | sed -n 's/.*(default "\(.*\)")$/\1/p')
[ -n "$demo_default" ] || fail "latch-ssh demo --help shows no default address"
grep -qF "default $demo_default" <<<"$text" || fail "latch-ssh(8) does not give demo's default address $demo_default"
# The notices a session reads when it is ended (gate.ClosedNotice, on every front end) or the daemon stops (the embedded server), as the
# source has them.
closed=$(sed -n 's/^const ClosedNotice = "\(.*\)"$/\1/p' gate/recheck.go)
stopping=$(sed -n 's/.*ssh\.Stop("\(.*\)").*/\1/p' internal/daemon/daemon.go)
[ -n "$closed" ] && [ -n "$stopping" ] || fail "cannot find the embedded server's notices in gate/recheck.go and internal/daemon/daemon.go (update this test)"
for m in "$closed" "$stopping"; do
	grep -qF "\"$m\"" <<<"$text" || fail "the man pages do not quote the notice \"$m\""
done
ok "man pages name every command ($(wc -w <<<"$cmds")), --help flag, example-config key, demo's default and the server's notices"

step "systemd unit"
unit=/usr/lib/systemd/system/latch-ssh.service
if command -v systemd-analyze >/dev/null; then
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$unit" 2>&1 || true)
	out=$(grep -v -e 'Failed to connect' -e 'Not running' <<<"$out" || true)
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	ok "systemd-analyze verify latch-ssh.service"
else
	skip_or_fail "systemd-analyze not installed: unit not verified"
fi
for want in 'Type=notify' 'ExecStartPre=/usr/bin/latch-ssh check-config --no-wiring' 'ExecStart=/usr/bin/latch-ssh serve' \
	'ExecReload=/usr/bin/latch-ssh check-config --no-wiring' 'ExecReload=/bin/kill -HUP $MAINPID' \
	'KillMode=process' 'Delegate=yes' 'Restart=on-failure' 'RuntimeDirectory=latch-ssh' 'RuntimeDirectoryMode=0755'; do
	grep -qxF -- "$want" "$unit" || fail "unit lacks $want"
done
# Sandboxing, a user or a capability bound: the embedded server's sessions
# are the daemon's children and would inherit it.
if grep -Eq '^(Protect|Private|NoNewPrivileges|ReadOnly|ReadWrite|Inaccessible|Restrict|CapabilityBoundingSet|AmbientCapabilities|SystemCallFilter|User|Group|DynamicUser|MemoryDenyWriteExecute|LockPersonality)' "$unit"; then
	fail "unit has sandboxing or a user that the embedded server's sessions would inherit"
fi
ok "unit: sshd-like directives, no sandboxing"
profile=/usr/share/pam-configs/latch-ssh
grep -qx 'Default: no' "$profile" || fail "pam-configs profile is not Default: no"
grep -qx 'Account-Type: Primary' "$profile" || fail "pam-configs profile is not in the Primary block"
prio=$(sed -n 's/^Priority: //p' "$profile")
unixprio=$(sed -n 's/^Priority: //p' /usr/share/pam-configs/unix 2>/dev/null || echo 256)
[ "${prio:-0}" -gt "$unixprio" ] || fail "pam-configs profile priority $prio is not above pam_unix's $unixprio"
grep -q 'pam_exec.so quiet seteuid /usr/sbin/latch-check' "$profile" || fail "pam-configs profile lacks the hook (with seteuid)"
ok "pam-auth-update profile: Default: no, Primary, priority $prio > pam_unix's $unixprio, pam_exec seteuid latch-check"

step "embedded SSH server recipe"
# The README recipe on the installed package: the template's placeholders
# filled in, its [server] table replaced by the shipped example with a
# loopback port, then the daemon as the unit runs it. The gate socket goes
# to a private directory, not /run.
conf=/etc/latch-ssh/latch.toml
example=/usr/share/doc/latch-ssh/examples/latch-ssh-server.toml
hostkey=/etc/latch-ssh/ssh_host_ed25519_key
cp -p "$conf" "$work/latch.toml.orig"
[ ! -e "$hostkey" ] || fail "$hostkey exists before the daemon ever ran"
grep -qx 'listen = "0.0.0.0:2222"' "$example" || fail "$example does not set listen = \"0.0.0.0:2222\""
started=""
for try in 1 2 3; do
	port=$((20000 + RANDOM % 30000))
	{
		sed -e '/^\[server\]/,$d' \
			-e 's/"REPLACE_WITH_APP_ID_"/"AAAAAAAAAAAAAAAAAAAA"/' \
			-e 's/"REPLACE_WITH_THE_APPLICATION_SECRET_____"/"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"/' \
			-e 's/"REPLACE_WITH_open_OR_closed"/"closed"/' \
			-e "s|^# socket = .*|socket = \"$work/gate.sock\"|" "$work/latch.toml.orig"
		sed "s/^listen = \"0.0.0.0:2222\"$/listen = \"127.0.0.1:$port\"/" "$example"
	} >"$conf"
	if [ $try = 1 ]; then
		set +e
		out=$(latch-ssh check-config --no-wiring 2>&1)
		rc=$?
		set -e
		[ $rc = 0 ] || fail "check-config on the recipe exited $rc: $out"
		ok "check-config --no-wiring accepts the template filled in with the [server] example"
	fi
	latch-ssh serve >"$work/serve.log" 2>&1 &
	serve_pid=$!
	for _ in $(seq 100); do
		grep -q '"event":"listen"' "$work/serve.log" && break
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q '"event":"listen"' "$work/serve.log"; then
		started=yes
		break
	fi
	kill "$serve_pid" 2>/dev/null || true
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=""
	grep -qi 'address already in use' "$work/serve.log" || break
done
[ -n "$started" ] || fail "latch-ssh serve did not start the embedded server: $(cat "$work/serve.log")"
ok "latch-ssh serve listens on 127.0.0.1:$port"
[ "$(stat -c '%a %U %G' "$hostkey")" = "600 root root" ] || fail "host key: $(stat -c '%a %U %G' "$hostkey")"
[ "$(stat -c '%a %U %G' "$hostkey.pub")" = "644 root root" ] || fail "host key .pub: $(stat -c '%a %U %G' "$hostkey.pub" 2>&1)"
ok "first start generated $hostkey (600 root) and .pub (644)"
logged=$(grep -o '"host_key":"[^"]*"' "$work/serve.log" | cut -d'"' -f4)
fp=$(ssh-keygen -lf "$hostkey.pub" | cut -d' ' -f2)
[ -n "$fp" ] && [ "$logged" = "$fp" ] || fail "fingerprint in the log '$logged' is not ssh-keygen's '$fp'"
ok "the log's host_key is ssh-keygen -lf's fingerprint ($fp)"
# Pinning as the README says: a known_hosts line from the .pub. With it
# ssh gets as far as the keys (and nobody has none); without it, strict
# checking stops at the host key.
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$hostkey.pub")" >"$work/known_hosts"
sshopts=(-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null
	-o IdentityAgent=none -o ConnectTimeout=10 -p "$port")
set +e
out=$(ssh "${sshopts[@]}" -o UserKnownHostsFile="$work/known_hosts" nobody@127.0.0.1 true 2>&1)
rc=$?
out2=$(ssh "${sshopts[@]}" -o UserKnownHostsFile=/dev/null nobody@127.0.0.1 true 2>&1)
rc2=$?
set -e
[ $rc = 255 ] && grep -q 'Permission denied (publickey' <<<"$out" || fail "ssh with the pinned key: exit $rc: $out"
[ $rc2 = 255 ] && grep -q 'Host key verification failed' <<<"$out2" || fail "ssh without the pinned key: exit $rc2: $out2"
ok "ssh -p $port with the pinned host key: publickey refused for nobody; unpinned: host key verification fails"
kill -TERM "$serve_pid"
set +e
wait "$serve_pid"
rc=$?
set -e
serve_pid=""
[ $rc = 0 ] || fail "latch-ssh serve exited $rc after SIGTERM: $(tail -n5 "$work/serve.log")"
grep -q '"event":"stopped"' "$work/serve.log" || fail "no stopped event in the log"
cp -p "$work/latch.toml.orig" "$conf"
ok "SIGTERM: the daemon stopped cleanly (exit 0)"

step "maintainer scripts"
if [ -n "$ns" ]; then
	# Run in a mount namespace with /run on a tmpfs holding
	# /run/systemd/system, and systemctl, deb-systemd-invoke and
	# pam-auth-update replaced by stand-ins that log their arguments.
	counted unshare -m --propagation private bash packaging/test-package-ns.sh scripts "$work" "$ctrl"
else
	note "maintainer-script behaviour not checked (no mount namespace)"
fi

step "edit the config, reinstall"
echo '# edited by test-package.sh' >>/etc/latch-ssh/latch.toml
sum=$(md5sum </etc/latch-ssh/latch.toml)
dpkg -i "$deb"
[ "$sum" = "$(md5sum </etc/latch-ssh/latch.toml)" ] || fail "reinstall replaced the edited config"
[ -z "$(find /etc/latch-ssh -name '*.dpkg-*')" ] || fail "reinstall left $(find /etc/latch-ssh -name '*.dpkg-*')"
[ "$(stat -c '%a' /etc/latch-ssh/latch.toml)" = 600 ] || fail "reinstall changed the config's mode"
ok "reinstall kept the edited config (mode 600, no .dpkg-* files)"

step "fleet: the Ansible example"
if [ -n "$ns" ]; then
	# ansible-playbook on a private copy of /etc: the shipped example
	# installs the package (already there), templates latch.toml, wires
	# sshd's PAM stack; pairings in the drop-in survive its runs.
	counted unshare -m --propagation private bash packaging/test-package-ns.sh fleet "$work" "$(realpath "$deb")"
else
	note "the Ansible example not run (no mount namespace)"
fi

step "pam-auth-update profile, remove"
if [ -n "$ns" ]; then
	# Enabling the profile, and the removal that must take it out again,
	# on private copies of /etc/pam.d, /var/lib/pam and debconf.
	counted unshare -m --propagation private bash packaging/test-package-ns.sh pam "$work"
else
	dpkg -r latch-ssh
fi
mapfile -t pam_now < <(pamfiles)
[ "$pam_before" = "$(sumof "${pam_now[@]}" /var/lib/pam/* /var/cache/debconf/config.dat)" ] || fail "/etc/pam.d, /var/lib/pam or debconf changed outside the namespace"
[ ! -e /usr/bin/latch-ssh ] && [ ! -e /usr/sbin/latch-check ] || fail "binaries left after dpkg -r"
[ ! -e /usr/lib/systemd/system/latch-ssh.service ] || fail "unit left after dpkg -r"
[ ! -e /usr/share/pam-configs/latch-ssh ] || fail "pam-configs profile left after dpkg -r"
[ "$sum" = "$(md5sum </etc/latch-ssh/latch.toml)" ] || fail "dpkg -r did not keep the config"
[ -f "$hostkey" ] || fail "dpkg -r removed the host key"
ok "dpkg -r: binaries gone; edited config and host key kept; this machine's PAM untouched"

step "purge"
touch /etc/latch-ssh/latch.toml.lock # something pairing might leave
dpkg -P latch-ssh
! dpkg-query -W latch-ssh >/dev/null 2>&1 || fail "dpkg still knows latch-ssh after purge"
left=$(ls -d /etc/latch-ssh /run/latch-ssh /usr/bin/latch-ssh /usr/sbin/latch-check /usr/share/doc/latch-ssh \
	/usr/share/man/man*/latch[-.]* /usr/share/pam-configs/latch-ssh /usr/share/lintian/overrides/latch-ssh \
	/usr/lib/systemd/system/latch-ssh.service /var/lib/dpkg/info/latch-ssh.* 2>/dev/null || true)
[ -z "$left" ] || fail "left after dpkg -P: $left"
ok "dpkg -P: nothing left (/etc/latch-ssh with the host key, binaries, docs, dpkg's records)"

echo
echo "PASS: $pass checks, $warn note(s), $nw lintian warning(s), $((SECONDS - start))s"
