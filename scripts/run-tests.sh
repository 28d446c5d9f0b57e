#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Run cmocka test binaries and sum their results:
#   scripts/run-tests.sh unit|kern BIN...
# The last line is always "<kind>: N passed, M failed" (test cases, as cmocka
# counts them; a binary that crashes, hangs or exits non-zero without a
# cmocka summary counts as one failure). Exit status is non-zero if anything
# failed.
#
# kern tests need root. Without it: exit 1 under CI=true (a CI job that
# silently skips them proves nothing), otherwise print SKIPPED and exit 0.
#
# Environment: TEST_TIMEOUT (seconds per binary; default 120 unit, 600 kern),
# KS_TEST_EXEC (a program each binary runs under, as do the build's binaries
# the tests start: qemu-aarch64 for `make unit-test ARCH=arm64`).
# After kern tests the script checks that nothing of theirs was left behind
# (netns, cgroup, pin dir named kstest-<pid>-*) and counts leftovers as a failure.
set -u

kind=${1:-}
case "$kind" in
unit | kern) shift ;;
*)
	echo "usage: $0 unit|kern BIN..." >&2
	exit 2
	;;
esac

if [ "$kind" = kern ] && [ "$(id -u)" -ne 0 ]; then
	if [ "${CI:-}" = true ]; then
		echo "kern: kernel tests need root (netns, cgroup, BPF); CI=true, so this is a failure" >&2
		exit 1
	fi
	echo "SKIPPED: kernel tests need root"
	exit 0
fi

timeout_s=${TEST_TIMEOUT:-$([ "$kind" = kern ] && echo 600 || echo 120)}
passed=0
failed=0
failed_bins=()

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)

# Anything named after this test process that still exists is a leak.
leftovers() {
	local pid=$1 found=0 x
	for x in /run/netns/kstest-"$pid"-* /sys/fs/bpf/kstest-"$pid"-* ${cg2:+"$cg2"/kstest-"$pid"-*}; do
		[ -e "$x" ] || continue
		echo "LEFT BEHIND: $x" >&2
		found=1
	done
	return $found
}

for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "$kind: $bin: not built" >&2
		failed=$((failed + 1))
		failed_bins+=("$name")
		continue
	fi
	echo "=== $name"
	log=$(mktemp)
	start=$(date +%s.%N)
	# SIGTERM first: the kern harness cleans up on it; SIGKILL 15 s later.
	# shellcheck disable=SC2086 # KS_TEST_EXEC is a program name, or empty
	timeout --kill-after=15 "$timeout_s" ${KS_TEST_EXEC:-} "$bin" > >(tee "$log") 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	# tee runs in a process substitution: let it drain before the log is read.
	sleep 0.1
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log" | tail -n1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:.*/\1/p' "$log" | tail -n1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		# Crash, timeout (124) or an exit without a cmocka verdict.
		echo "$kind: $name exited with status $rc" >&2
		f=1
	fi
	if [ "$kind" = kern ]; then
		# timeout(1) runs the test as its child; its pid is in the names it made.
		tpid=$(sed -n 's/.*kstest-\([0-9]*\)-.*/\1/p' "$log" | head -n1)
		if [ -n "$tpid" ] && ! leftovers "$tpid"; then
			echo "$kind: $name left resources behind" >&2
			f=$((f + 1))
		fi
	fi
	rm -f "$log"
	printf '=== %s: %d passed, %d failed (%.1f s)\n' "$name" "$p" "$f" "$secs"
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failed_bins+=("$name")
done

[ ${#failed_bins[@]} -eq 0 ] || echo "failed: ${failed_bins[*]}"
echo "$kind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
