# SPDX-License-Identifier: BSD-2-Clause
# Helpers for bench/run.sh (sourced). Everything the bench creates is recorded
# here and undone by bench_cleanup, whatever the exit path.

log() { printf '[bench %4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf '[bench] FAIL: %s\n' "$*" >&2; exit 1; }

BENCH_PIDS=()		# processes we started (servers, haproxy, agent)
BENCH_NETNS=()		# network namespaces we created
BENCH_CGROUPS=()	# cgroups we created, children first when removed (reverse order)
BENCH_PINS=()		# ksplit pin dirs
BENCH_SYSCTL_RESTORE=()	# "path value" to write back
BENCH_TMP=
BENCH_KEEP_TMP=${KEEP_TMP:-0}

# Kill one pid we started: TERM, up to 5 s, then KILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
	local rc=$? x i
	set +e
	trap - EXIT INT TERM
	for x in "${BENCH_SYSCTL_RESTORE[@]}"; do
		echo "${x#* }" >"${x%% *}" 2>/dev/null
	done
	for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${BENCH_PIDS[i]}"
	done
	# haproxy daemons write pid files; they are ours too.
	if [[ -n $BENCH_TMP ]]; then
		for x in "$BENCH_TMP"/haproxy*.pid; do
			[[ -s $x ]] && stop_pid "$(cat "$x")"
		done
	fi
	for x in "${BENCH_PINS[@]}"; do
		if [[ -e $x ]]; then
			"$KSPLIT" down --pin-dir "$x" >/dev/null 2>&1 || log "ksplit down --pin-dir $x failed"
			rm -rf "$x"
		fi
	done
	for x in "${BENCH_NETNS[@]}"; do
		ip netns del "$x" 2>/dev/null
	done
	for ((i = ${#BENCH_CGROUPS[@]} - 1; i >= 0; i--)); do
		x=${BENCH_CGROUPS[i]}
		[[ -d $x ]] || continue
		# Only processes this run started can be in its own cgroups (a child of a
		# server or a ks_load that outlived its timeout): end them by pid.
		for pid in $(cat "$x/cgroup.procs" 2>/dev/null); do
			stop_pid "$pid"
		done
		# A cgroup only goes away once empty; anything left in it is ours.
		for ((j = 0; j < 20; j++)); do
			rmdir "$x" 2>/dev/null && break
			sleep 0.1
		done
		[[ -d $x ]] && log "could not remove cgroup $x"
	done
	if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
		if ((rc != 0)) || ((BENCH_KEEP_TMP)); then
			log "scratch files kept in $BENCH_TMP"
		else
			rm -rf "$BENCH_TMP"
		fi
	fi
	bpffs_release
	((rc == 0)) && log "cleaned up" || log "cleaned up after failure (exit $rc)"
	exit "$rc"
}

# set_sysctl PATH VALUE: global sysctl, restored on exit.
set_sysctl() {
	BENCH_SYSCTL_RESTORE+=("$1 $(cat "$1")")
	echo "$2" >"$1"
}

# in_ns NS CMD...: run CMD in netns NS (nsenter: no /sys remount).
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# in_cg_ns CGROUP NS CMD...: join CGROUP, then exec CMD inside netns NS.
in_cg_ns() {
	sh -c 'cg=$1 ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$ns" "$@"' \
		sh "$@"
}

# spawn_cg_ns CGROUP NS CMD... : the same in the background; sets SPAWNED to the pid of
# CMD itself (sh execs nsenter which execs CMD), recorded for cleanup.
spawn_cg_ns() {
	sh -c 'cg=$1 ns=$2; shift 2; echo $$ >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$ns" "$@"' \
		sh "$@" &
	SPAWNED=$!
	BENCH_PIDS+=("$SPAWNED")
}

# Busy jiffies (USER_HZ) summed over every CPU, from /proc/stat.
cpu_busy() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

median() {	# numbers on stdin -> median (mean of the middle two)
	sort -g | awk '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
