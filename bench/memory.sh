#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The agent's memory and `ksplit status`'s time at N services (issue 10,
# item 10). Root: it runs the real agent on a scratch cgroup. Not part of
# `make test`: a benchmark is not a test.
#
#   sudo bash bench/memory.sh                            # build/ksplit, N=50000, both shapes
#   sudo BEFORE=/tmp/ksplit-old bash bench/memory.sh     # and an older binary after it
#   sudo N=10000 SHAPES=own RELOADS=2 bash bench/memory.sh
#
# Per shape (gen_ksplit.sh N DIR SHAPE: "own" gives every service its own
# backend Services and slices, "shared" shares them) and binary:
#   start     VmRSS and VmHWM of the agent after its first "config applied"
#   reload    RELOADS reloads, alternately a rewrite of ctl.yaml (inotify) and
#             SIGHUP, each after `echo 5 > /proc/PID/clear_refs` (VmHWM back
#             to VmRSS); the table has the highest VmHWM of those reloads and
#             VmRSS after the last one
#   status    wall/CPU (user + sys) seconds and max RSS of `ksplit status`
#             and `status --json` (output to /dev/null), the agent still
#             running; on a shared machine the CPU time is the steadier one
# Everything it makes (cgroup, pin dir, config dir, agent) is removed on every
# exit path. TIMEOUT (s, default 600) caps each wait for "config applied".
set -euo pipefail

KSPLIT=${KSPLIT:-build/ksplit}
BEFORE=${BEFORE:-}
N=${N:-50000}
SHAPES=${SHAPES:-"own shared"}
RELOADS=${RELOADS:-4}
TIMEOUT=${TIMEOUT:-600}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/lib/scratch.sh"
BIN=
((EUID == 0)) || { echo "bench/memory.sh: needs root (it runs the agent)" >&2; exit 1; }
scratch_init mem

# kib FIELD: a /proc/AGENT/status field in KiB.
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$AGENT/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# applied K: wait for the K-th "config applied" line of the agent's log.
applied() {
	local i
	for ((i = 0; i < TIMEOUT * 10; i++)); do
		(($(grep -c 'config applied' "$TMP/agent.log") >= $1)) && return 0
		kill -0 "$AGENT" 2>/dev/null || { echo "agent exited; log: $TMP/agent.log" >&2; tail -5 "$TMP/agent.log" >&2; return 1; }
		sleep 0.1
	done
	echo "no 'config applied' #$1 in ${TIMEOUT}s" >&2
	return 1
}

# timed ARGS...: "wall_s/cpu_s maxrss_MiB" of `BIN ARGS` (output discarded); cpu = user + sys.
timed() {
	/usr/bin/time -f '%e %U %S %M' -o "$TMP/time" "$BIN" "$@" >/dev/null 2>&1 || true
	awk '{ printf "%s/%.2f %.0f", $1, $2 + $3, $4 / 1024 }' "$TMP/time"
}

# measure SHAPE: one row for binary BIN.
measure() {
	local shape=$1 dir=$TMP/cfg-$1 t0 t1 start_rss start_hwm peak=0 hwm i st stj ms
	mkdir "$CG"
	t0=$(date +%s.%N)
	# Maps sized to fit: N+1 VIPs, 10 endpoint slots each.
	"$BIN" run --config "$dir" --cgroup "$CG" --pin-dir "$PIN" \
		--max-services $(((N + 1) * 5 / 4)) --max-endpoints $(((N + 1) * 10 * 5 / 4)) \
		--no-destroy --no-wait 2>"$TMP/agent.log" &
	AGENT=$!
	applied 1
	t1=$(date +%s.%N)
	start_rss=$(kib VmRSS) start_hwm=$(kib VmHWM)
	ms=$(grep 'config applied' "$TMP/agent.log" | head -1 | sed 's/.* ms=\([0-9]*\).*/\1/')
	for ((i = 1; i <= RELOADS; i++)); do
		echo 5 >"/proc/$AGENT/clear_refs"
		if ((i % 2)); then
			# One small file changes: the control service's weights flip.
			sed 's/weight: 1}/weight: X}/; s/weight: 0}/weight: 1}/; s/weight: X}/weight: 0}/' \
				"$dir/ctl.yaml" >"$dir/.ctl.tmp"
			mv "$dir/.ctl.tmp" "$dir/ctl.yaml"
		else
			kill -HUP "$AGENT"
		fi
		applied $((i + 1))
		hwm=$(kib VmHWM)
		((hwm > peak)) && peak=$hwm
	done
	st=$(timed status --pin-dir "$PIN")
	stj=$(timed status --json --pin-dir "$PIN")
	printf '%-7s %-8s %7s %7s %9s %6s %10s %11s %9s %11s %9s\n' "$shape" "$2" \
		"$(mib "$start_rss")" "$(mib "$start_hwm")" "$(mib "$peak")" "$(mib "$(kib VmRSS)")" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" \
		${st% *} ${st#* } ${stj% *} ${stj#* }
	grep 'config applied' "$TMP/agent.log" | tail -1 | sed 's/^/# last reload: /'
	scratch_stop_agent
}

echo "# $(uname -r), $(nproc) CPUs, N=$N, RELOADS=$RELOADS, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %-8s %7s %7s %9s %6s %10s %11s %9s %11s %9s\n' shape binary "rss MiB" "hwm MiB" \
	"rl.peak" "rss" "start (s)" "status s" "stat MiB" "json s" "json MiB"
for shape in $SHAPES; do
	bash "$HERE/gen_ksplit.sh" "$N" "$TMP/cfg-$shape" "$shape"
	BIN=$KSPLIT measure "$shape" after
	[[ -n $BEFORE ]] && BIN=$BEFORE measure "$shape" before
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
