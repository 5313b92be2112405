#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME (default 30s) each.
#
# A failure that leaves a new input under testdata/fuzz is a real finding:
# it fails the run at once (commit the input with the fix, as a regression
# case). A failure with no new input is the fuzzing engine's own hiccup
# (seen here: "context deadline exceeded" from the coordinator on a loaded
# 2-core machine); that target is run once more, and fails the run only if
# it fails again.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
GO=${GO:-go}
for pkg in $($GO list ./...); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	for f in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		for try in 1 2; do
			echo "== $pkg $f (try $try)"
			# A new target has no corpus directory yet: find fails, and
			# under pipefail and set -e that must not end the run.
			before=$(find "$dir/testdata/fuzz/$f" -type f 2>/dev/null | sort || true)
			if $GO test -run='^$' -fuzz="^$f\$" -fuzztime="$FUZZTIME" "$pkg"; then
				break
			fi
			after=$(find "$dir/testdata/fuzz/$f" -type f 2>/dev/null | sort || true)
			if [ "$before" != "$after" ]; then
				echo "fuzz: $pkg $f found a failing input:"
				comm -13 <(echo "$before") <(echo "$after")
				exit 1
			fi
			[ "$try" = 1 ] || { echo "fuzz: $pkg $f failed twice without a failing input"; exit 1; }
		done
	done
done
