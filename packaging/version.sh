#!/bin/sh
# Prints the package version, Debian- and RPM-compatible, from git describe:
#   tag v1.2.3 on HEAD          -> 1.2.3
#   tag v1.2.3-rc1 on HEAD      -> 1.2.3~rc1        (sorts before 1.2.3)
#   5 commits after v1.2.3      -> 1.2.3+git20261124.5.d9945b6
#   no tag                      -> 0.0.0~git20261124.d9945b6
# with ".dirty" appended when the work tree has uncommitted changes. The
# date is the commit's (UTC), so a rebuild of the same commit gives the same
# version.
set -eu
sha=$(git rev-parse --short=7 HEAD)
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty=".dirty"
if desc=$(git describe --tags --long --match 'v[0-9]*' HEAD 2>/dev/null); then
	# desc is TAG-N-gSHA; TAG may itself contain dashes.
	n=${desc%-g*}; n=${n##*-}
	tag=${desc%-*-g*}
	upstream=$(printf '%s' "${tag#v}" | tr -- '-_' '~~')
	if [ "$n" = 0 ]; then
		echo "${upstream}${dirty:++git${date}.${sha}${dirty}}"
	else
		echo "${upstream}+git${date}.${n}.${sha}${dirty}"
	fi
else
	echo "0.0.0~git${date}.${sha}${dirty}"
fi
