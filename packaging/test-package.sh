#!/bin/bash
# packaging/test-package.sh: build the latch-ssh .deb and .rpm with
# `make package`, inspect both, then install, reinstall, remove and purge
# the .deb on this machine and run lintian on it. `make package-test` runs
# it. Needs root on a Debian-like system: it installs the tools it uses
# (rpm, lintian, man-db, binutils) with apt-get when they are missing, and it
# installs the package for real (it does not enable or start anything).
# systemd-analyze checks are skipped when systemd is not installed.
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS
pass=0
warn=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }
note() { warn=$((warn + 1)); echo "note $*"; }
step() { echo; echo "== $* ($((SECONDS - start))s)"; }

[ "$(id -u)" = 0 ] || fail "run as root: the test installs and purges the package"
command -v apt-get >/dev/null || fail "needs a Debian-like system (apt-get)"

step "tools"
need=()
for pair in rpm:rpm lintian:lintian man:man-db objdump:binutils gzip:gzip; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian images often exclude man pages (dpkg path-exclude): this test needs
# ours installed, so lift the exclusion for our paths only, while it runs.
exclude=/etc/dpkg/dpkg.cfg.d/latch-ssh-test-include
if grep -qsr 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/ 2>/dev/null; then
	printf 'path-include=/usr/share/man/man5/latch.toml.5.gz\npath-include=/usr/share/man/man8/latch-*.8.gz\n' >"$exclude"
fi
cleanup() {
	rm -f "$exclude"
	if [ -n "${keep:-}" ]; then return; fi
	dpkg -P latch-ssh >/dev/null 2>&1 || true
}
trap cleanup EXIT
if dpkg-query -W -f='${Status}' latch-ssh 2>/dev/null | grep -q 'install ok'; then
	fail "latch-ssh is already installed here; remove it first (this test purges it)"
fi

step "make package"
make package
version=$(packaging/version.sh)
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
	"/usr/share/doc/latch-ssh/examples/pam/sshd 0644"
	"/usr/share/doc/latch-ssh/examples/pam/sudo 0644"
	"/usr/share/doc/latch-ssh/examples/pam/su 0644"
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
tmp=$(mktemp -d)
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp"
for s in postinst prerm postrm; do
	[ -f "$tmp/$s" ] || continue
	if grep -Eq 'systemctl[^#]*(enable|start[^ ]*$|restart )|pam-auth-update|sshd_config|/etc/pam\.d' "$tmp/$s"; then
		fail "deb $s enables or edits something:"$'\n'"$(cat "$tmp/$s")"
	fi
done
rm -rf "$tmp"
ok "deb: maintainer scripts enable, start and edit nothing"

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

step "lintian"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
[ -n "$lint" ] && echo "$lint"
if grep -q '^E:' <<<"$lint"; then fail "lintian errors"; fi
nw=$(grep -c '^W:' <<<"$lint" || true)
ok "lintian: no errors, $nw warning(s)"

step "install"
# md5 of the files named, missing ones skipped (no pipefail trip).
sumof() { { cat "$@" 2>/dev/null || true; } | md5sum; }
units_before=$(find /etc/systemd/system -name 'latch-ssh*' 2>/dev/null | sort)
pam_before=$(sumof /etc/pam.d/*)
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
[ "$pam_before" = "$(sumof /etc/pam.d/*)" ] || fail "install changed /etc/pam.d"
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
warnings=$(for f in /usr/share/man/man8/latch-ssh.8.gz /usr/share/man/man8/latch-check.8.gz /usr/share/man/man5/latch.toml.5.gz; do
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null
done)
[ -z "$warnings" ] || fail "man --warnings: $warnings"
ok "man latch-ssh, latch-check, latch.toml render, no groff warnings"
# Completeness: every flag --help prints, every key of the example config.
all=$(for pg in latch-ssh latch-check "5 latch.toml"; do
	# shellcheck disable=SC2086
	MANPAGER=cat MANWIDTH=200 man -P cat $pg 2>/dev/null
done)
for c in serve pair unpair status check-config; do
	for f in $(latch-ssh "$c" --help 2>&1 | grep -oE '^  -[a-z-]+' | sed 's/^ *-*//'); do
		grep -qE -- "-{1,2}$f\b" <<<"$all" || fail "man pages miss latch-ssh $c flag -$f"
	done
done
for f in $(latch-check --help 2>&1 | grep -oE '^  -[a-z-]+' | sed 's/^ *-*//'); do
	grep -qE -- "-{1,2}$f\b" <<<"$all" || fail "man pages miss latch-check flag -$f"
done
for k in $(grep -oE '^#? ?[a-z_]+ =' packaging/latch.toml.example | tr -d '# =' | sort -u); do
	case $k in sshd | sudo | alice) continue ;; esac # example entries, not keys
	grep -q -- "$k" <<<"$all" || fail "latch.toml(5) misses key $k"
done
for c in serve pair unpair status check-config version demo; do
	grep -q -- "$c" <<<"$all" || fail "latch-ssh(8) misses command $c"
done
ok "man pages name every command, --help flag and example-config key"

step "systemd unit"
if command -v systemd-analyze >/dev/null; then
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no /usr/lib/systemd/system/latch-ssh.service 2>&1 || true)
	out=$(grep -v -e 'Failed to connect' -e 'Not running' <<<"$out" || true)
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	ok "systemd-analyze verify latch-ssh.service"
else
	note "systemd-analyze not installed: unit not verified"
fi
unit=/usr/lib/systemd/system/latch-ssh.service
for want in 'Type=notify' 'ExecStartPre=/usr/bin/latch-ssh check-config --no-wiring' 'ExecStart=/usr/bin/latch-ssh serve' \
	'ExecReload=/usr/bin/latch-ssh check-config --no-wiring' 'ExecReload=/bin/kill -HUP $MAINPID' \
	'KillMode=process' 'Restart=on-failure' 'RuntimeDirectory=latch-ssh' 'RuntimeDirectoryMode=0755'; do
	grep -qxF -- "$want" "$unit" || fail "unit lacks $want"
done
if grep -Eq '^(Protect|Private|NoNewPrivileges|ReadOnly|Restrict|CapabilityBoundingSet|SystemCallFilter)' "$unit"; then
	fail "unit has sandboxing that spawned shells would inherit"
fi
ok "unit: sshd-like directives, no sandboxing"
grep -qx 'Default: no' /usr/share/pam-configs/latch-ssh || fail "pam-configs profile is not Default: no"
grep -q 'pam_exec.so quiet /usr/sbin/latch-check' /usr/share/pam-configs/latch-ssh || fail "pam-configs profile lacks the hook"
ok "pam-auth-update profile: Default: no, pam_exec latch-check"

step "edit the config, reinstall"
echo '# edited by test-package.sh' >>/etc/latch-ssh/latch.toml
sum=$(md5sum </etc/latch-ssh/latch.toml)
dpkg -i "$deb"
[ "$sum" = "$(md5sum </etc/latch-ssh/latch.toml)" ] || fail "reinstall replaced the edited config"
[ -z "$(find /etc/latch-ssh -name '*.dpkg-*')" ] || fail "reinstall left $(find /etc/latch-ssh -name '*.dpkg-*')"
[ "$(stat -c '%a' /etc/latch-ssh/latch.toml)" = 600 ] || fail "reinstall changed the config's mode"
ok "reinstall kept the edited config (mode 600, no .dpkg-* files)"

step "remove"
dpkg -r latch-ssh
[ ! -e /usr/bin/latch-ssh ] && [ ! -e /usr/sbin/latch-check ] || fail "binaries left after dpkg -r"
[ ! -e /usr/lib/systemd/system/latch-ssh.service ] || fail "unit left after dpkg -r"
[ "$sum" = "$(md5sum </etc/latch-ssh/latch.toml)" ] || fail "dpkg -r did not keep the config"
ok "dpkg -r: binaries gone, edited config kept"

step "purge"
touch /etc/latch-ssh/latch.toml.lock # something pairing might leave
dpkg -P latch-ssh
[ ! -e /etc/latch-ssh ] || fail "/etc/latch-ssh left after dpkg -P: $(ls -la /etc/latch-ssh)"
[ ! -e /usr/bin/latch-ssh ] || fail "/usr/bin/latch-ssh left after dpkg -P"
! dpkg-query -W latch-ssh >/dev/null 2>&1 || fail "dpkg still knows latch-ssh after purge"
ok "dpkg -P: /etc/latch-ssh and the binaries gone"

echo
echo "PASS: $pass checks, $warn note(s), $nw lintian warning(s), $((SECONDS - start))s"
