#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# BPF ns per connection (root): what every ksplit program together costs for
# one connect + request + close, and, with BEFORE=<build dir of another
# checkout>, the same for that build beside this one, in the same run.
#
#   bash bench/bpf_cost.sh                          # this build only
#   BEFORE=/tmp/ks-before/build bash bench/bpf_cost.sh
#
#   netns kbc-srv-R   10 ks_server pods 10.244.1.1-10:8080 (CPU 1)
#     ├─ veth ─ kbc-direct-R   client, no rules (the end-to-end reference)
#     ├─ veth ─ kbc-after-R    client in cgroup kbcost-R/after,  this build's agent
#     └─ veth ─ kbc-before-R   client in cgroup kbcost-R/before, BEFORE's agent
#
# Each build's agent loads N services (gen_ksplit.sh, shared shape; the
# measured service is the last). kernel.bpf_stats_enabled=1 for the whole run
# (restored on exit). ROUNDS rounds, each: direct, before, after (the order
# of the two builds alternates per round), one `ks_load -n CONN` run each.
# Per run and program: the delta of run_cnt and run_time_ns. BPF ns per
# connection = sum over programs of run_time_ns delta / connections, which
# is connect4 + getpeername4 + sockops x its runs. Reported: medians over the
# rounds. The stats themselves add about 20 ns per program run; freeing the
# socket storage (after an RCU grace period, at socket destruction) runs in
# no program and is not in the figure.
#
# Environment: OUT (build dir, default build), BEFORE, NS ("1 50000"),
# ROUNDS (7), CONN (5000), KEEP_TMP=1. Writes bench/results/<date>-<host>-bpf-cost.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
KSPLIT=$OUT/ksplit
KS_SERVER=$OUT/ks_server
KS_LOAD=$OUT/ks_load
# shellcheck source=lib/common.sh
source "$BENCH/lib/common.sh"
# shellcheck source=../scripts/bpffs.sh
source "$ROOT/scripts/bpffs.sh"

NS=(${NS:-1 50000})
ROUNDS=${ROUNDS:-7}
CONN=${CONN:-5000}
BEFORE=${BEFORE:-}
[[ -z $BEFORE || $BEFORE = /* ]] || BEFORE=$(cd "$BEFORE" && pwd)
STATS_NS_PER_RUN=20	# what bpf_stats adds per program run (two clock reads, a per-CPU add)

[[ $EUID -eq 0 ]] || die "run as root (netns, cgroup, BPF)"
for c in jq nsenter ip taskset bpftool; do
	command -v "$c" >/dev/null 2>&1 || die "$c missing: run 'bash scripts/deps.sh --bench'"
done
for b in "$KSPLIT" "$KS_SERVER" "$KS_LOAD" ${BEFORE:+"$BEFORE/ksplit"}; do
	[[ -x $b ]] || die "$b not built (run: make)"
done
(($(nproc) >= 2)) || die "needs 2 CPUs (client on CPU 0, servers on CPU 1)"
BUILDS=(after)
[[ -n $BEFORE ]] && BUILDS=(before after)
declare -A BIN=([after]=$KSPLIT [before]=${BEFORE:+$BEFORE/ksplit})
max_n=0
for n in "${NS[@]}"; do ((n > max_n)) && max_n=$n; done

RAND=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
BENCH_TMP=$(mktemp -d "/tmp/kbcost-$RAND.XXXX")
TMP=$BENCH_TMP
RUNS=$TMP/runs.tsv	# N mech round ops ok p50 p99 rate
PROGS=$TMP/progs.tsv	# N mech round prog runs ns
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
: >"$RUNS"
: >"$PROGS"
START_EPOCH=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
LOADS=()
log "kbcost-$RAND: N = ${NS[*]}, $ROUNDS rounds of $CONN connections, builds: ${BUILDS[*]}"

CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || die "no cgroup2 mount"
CG=$CG2/kbcost-$RAND
mkdir "$CG"
BENCH_CGROUPS+=("$CG")
for c in cli srv "${BUILDS[@]}"; do
	mkdir "$CG/$c"
	BENCH_CGROUPS+=("$CG/$c")
done
bpffs_mount_if_missing || die "cannot mount bpffs at /sys/fs/bpf"
declare -A PIN
for b in "${BUILDS[@]}"; do
	PIN[$b]=/sys/fs/bpf/kbcost-$RAND-$b
	BENCH_PINS+=("${PIN[$b]}")
done

SRV=kbc-srv-$RAND
ip netns add "$SRV"
BENCH_NETNS+=("$SRV")
ip -n "$SRV" link set lo up
for k in $(seq 1 10); do ip -n "$SRV" addr add "10.244.1.$k/32" dev lo; done
declare -A NSOF
k=0
for m in direct "${BUILDS[@]}"; do
	k=$((k + 1))
	ns=kbc-$m-$RAND
	NSOF[$m]=$ns
	ip netns add "$ns"
	BENCH_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	ip -n "$ns" link add "kc$RAND${k}c" type veth peer name "kc$RAND${k}s" netns "$SRV"
	ip -n "$ns" addr add "10.250.$k.2/24" dev "kc$RAND${k}c"
	ip -n "$ns" link set "kc$RAND${k}c" up
	ip -n "$SRV" addr add "10.250.$k.1/24" dev "kc$RAND${k}s"
	ip -n "$SRV" link set "kc$RAND${k}s" up
	ip -n "$ns" route add default via "10.250.$k.1"
	in_ns "$ns" sh -c 'echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range'
done
for k in $(seq 1 10); do
	if ((k <= 5)); then id=a$k; else id=b$((k - 5)); fi
	spawn_cg_ns "$CG/srv" "$SRV" taskset -c 1 "$KS_SERVER" --listen "10.244.1.$k:8080" --id "$id" \
		>"$TMP/server-$id.log" 2>&1
done
for id in a1 a2 a3 a4 a5 b1 b2 b3 b4 b5; do
	for ((i = 0; i < 50; i++)); do
		grep -qx ready "$TMP/server-$id.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -qx ready "$TMP/server-$id.log" || die "ks_server $id did not start"
done

vip_of() {	# service i -> VIP, as lib/gen_common.awk
	local i=$1
	echo "10.$((96 + i / 65536)).$(((i / 256) % 256)).$((i % 256))"
}
cg_of() { [[ $1 == direct ]] && echo "$CG/cli" || echo "$CG/$1"; }
load() {	# load MECH TARGET ARGS...
	local m=$1 t=$2
	shift 2
	in_cg_ns "$(cg_of "$m")" "${NSOF[$m]}" timeout 300 "$KS_LOAD" --target "$t" --cpu 0 --json "$@"
}

# --- agents ----------------------------------------------------------------------
declare -A APID
wait_applied() {	# wait_applied BUILD WANT_SERVICES: until its last apply has them all
	local b=$1 want=$2 deadline=$((SECONDS + 900)) line
	while :; do
		kill -0 "${APID[$b]}" 2>/dev/null || die "agent $b exited: $(tail -n 5 "$TMP/agent-$b.log")"
		line=$(grep 'msg="config applied"' "$TMP/agent-$b.log" 2>/dev/null | tail -n 1) || true
		[[ $(sed -n 's/.* services=\([0-9]*\).*/\1/p' <<<"$line") == "$want" ]] && return 0
		((SECONDS < deadline)) || die "agent $b: no config applied with services=$want: $line"
		sleep 0.1
	done
}
stage() {	# stage N: every build's agent on N services (+ the control service)
	local n=$1 b f
	for b in "${BUILDS[@]}"; do
		rm -rf "$TMP/stage"
		bash "$BENCH/gen_ksplit.sh" "$n" "$TMP/stage" shared 1 0
		mkdir -p "$TMP/cfg-$b"
		# rename(2) each file in: the agent never reads a half-written file.
		for f in "$TMP/stage"/*.yaml; do mv "$f" "$TMP/cfg-$b/"; done
		if [[ -z ${APID[$b]:-} ]]; then
			"${BIN[$b]}" run --config "$TMP/cfg-$b" --cgroup "$CG/$b" --pin-dir "${PIN[$b]}" \
				--max-services $((max_n + 1024)) --max-endpoints $(((max_n + 1024) * 10)) \
				>>"$TMP/agent-$b.log" 2>&1 &
			APID[$b]=$!
			BENCH_PIDS+=("${APID[$b]}")
		fi
		wait_applied "$b" $((n + 1))
	done
}

prog_stats() {	# prog_stats BUILD -> "name run_cnt run_time_ns" per ksplit program
	local l id
	for l in "${PIN[$1]}"/link_*; do
		id=$(bpftool link show pinned "$l" -j | jq -r .prog_id)
		echo "${l##*/link_} $(bpftool prog show id "$id" -j | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"')"
	done
}

measure() {	# measure N MECH ROUND
	local n=$1 m=$2 r=$3 j before after
	[[ $m != direct ]] && before=$(prog_stats "$m")
	if [[ $m == direct ]]; then
		j=$(load direct 10.244.1.1:8080 -n "$CONN") || die "ks_load direct failed"
	else
		j=$(load "$m" "$(vip_of "$n"):80" -n "$CONN") || die "ks_load $m failed"
		after=$(prog_stats "$m")
		join <(sort <<<"$before") <(sort <<<"$after") |
			awk -v n="$n" -v m="$m" -v r="$r" '{ print n "\t" m "\t" r "\t" $1 "\t" ($4 - $2) "\t" ($5 - $3) }' >>"$PROGS"
	fi
	jq -r --arg n "$n" --arg m "$m" --arg r "$r" \
		'[$n, $m, $r, .ops, .ok, .lat_ns.p50, .lat_ns.p99, .rate] | @tsv' <<<"$j" >>"$RUNS"
	[[ $(jq -r '.ok == .ops' <<<"$j") == true ]] || log "  $m N=$n round $r: $(jq -c '{ok, ops, errors}' <<<"$j")"
}

set_sysctl /proc/sys/kernel/bpf_stats_enabled 1
for n in "${NS[@]}"; do
	log "N=$n: loading ${BUILDS[*]}"
	stage "$n"
	for b in "${BUILDS[@]}"; do
		j=$(load "$b" "$(vip_of "$n"):80" -n 50) || die "$b: ks_load failed"
		[[ $(jq -r .ok <<<"$j") == 50 ]] || die "$b at N=$n does not answer: $j"
	done
	LOADS+=("N=$n: $(cut -d' ' -f1-3 /proc/loadavg)")
	for ((r = 1; r <= ROUNDS; r++)); do
		order=("${BUILDS[@]}")
		((r % 2 == 0 && ${#BUILDS[@]} == 2)) && order=(after before)
		measure "$n" direct "$r"
		for b in "${order[@]}"; do measure "$n" "$b" "$r"; done
		log "N=$n round $r/$ROUNDS done"
	done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
END_EPOCH=$(date +%s)

# --- report ------------------------------------------------------------------------
med() { median | awk '{ if ($1 == "nan") print "n/a"; else printf "%.0f", $1 }'; }
# Per round: total BPF ns / connections of that run.
bpf_per_conn() {	# N BUILD -> median over rounds
	awk -F'\t' -v n="$1" -v m="$2" '$1 == n && $2 == m { t[$3] += $6 } END { for (r in t) print r, t[r] }' "$PROGS" |
		while read -r r t; do
			ops=$(awk -F'\t' -v n="$1" -v m="$2" -v r="$r" '$1 == n && $2 == m && $3 == r { print $4 }' "$RUNS")
			awk -v t="$t" -v o="$ops" 'BEGIN { printf "%.1f\n", t / o }'
		done | med
}
runs_per_conn() {	# N BUILD -> program runs per connection, median over rounds
	awk -F'\t' -v n="$1" -v m="$2" '$1 == n && $2 == m { t[$3] += $5 } END { for (r in t) print r, t[r] }' "$PROGS" |
		while read -r r t; do
			ops=$(awk -F'\t' -v n="$1" -v m="$2" -v r="$r" '$1 == n && $2 == m && $3 == r { print $4 }' "$RUNS")
			awk -v t="$t" -v o="$ops" 'BEGIN { printf "%.2f\n", t / o }'
		done | median
}
paired() {	# N -> median over rounds of after/before BPF ns per connection, each round with itself
	awk -F'\t' -v n="$1" 'NR == FNR { if ($1 == n) ops[$2 " " $3] = $4; next }
		$1 == n { t[$2 " " $3] += $6 }
		END { for (k in t) { split(k, a, " "); if (a[1] == "after" && ("before " a[2]) in t)
			printf "%.4f\n", (t[k] / ops[k]) / (t["before " a[2]] / ops["before " a[2]]) } }' "$RUNS" "$PROGS" |
		median | awk '{ if ($1 == "nan") print "n/a"; else printf "%.3f", $1 }'
}
prog_ns() {	# N BUILD PROG -> median ns/run
	awk -F'\t' -v n="$1" -v m="$2" -v p="$3" '$1 == n && $2 == m && $4 == p && $5 > 0 { printf "%.1f\n", $6 / $5 }' "$PROGS" | med
}
prog_runs() {	# N BUILD PROG -> runs per connection (median)
	awk -F'\t' -v n="$1" -v m="$2" -v p="$3" '$1 == n && $2 == m && $4 == p { print $5 }' "$PROGS" | median |
		awk -v c="$CONN" '{ printf "%.2f", $1 / c }'
}
e2e() {	# N MECH COL(6 p50, 7 p99, 8 rate) -> median
	awk -F'\t' -v n="$1" -v m="$2" -v c="$3" '$1 == n && $2 == m { print $c }' "$RUNS" | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.3f", a / b }'; }
us() { awk -v v="$1" 'BEGIN { if (v == "nan") print "n/a"; else printf "%.1f", v / 1000 }'; }

host=$(hostname -s)
res=$BENCH/results
mkdir -p "$res"
md=$res/$(date +%Y-%m-%d)-$host-bpf-cost.md
{
	echo "# ksplit BPF ns per connection: $(date +%Y-%m-%d) on $host"
	echo
	echo "Command: \`${BEFORE:+BEFORE=$BEFORE }bash bench/bpf_cost.sh\` (N = ${NS[*]}; $ROUNDS interleaved rounds of $CONN connect + 1 request + close per build; kernel.bpf_stats_enabled=1 during the run, restored after)."
	echo
	echo "- Kernel $(uname -r), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); client on CPU 0, servers on CPU 1."
	echo "- after: $("$KSPLIT" version 2>/dev/null | head -n 1), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet -- . ':!bench/results' 2>/dev/null || echo ' + uncommitted changes')"
	[[ -n $BEFORE ]] && echo "- before: $BEFORE/ksplit, git $(git -C "$BEFORE/.." rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- Load average (1/5/15 min) at start: $LOAD_START; $(printf '%s; ' "${LOADS[@]}")at end: $LOAD_END. Shared 2-vCPU VM: rounds are interleaved and medians reported."
	echo "- Duration: $((END_EPOCH - START_EPOCH)) s"
	echo
	echo "BPF ns per connection = sum over the ksplit programs of their run_time_ns delta over a run, divided by the run's connections: connect4 + getpeername4 + sockops x its runs. It includes what bpf_stats adds (about $STATS_NS_PER_RUN ns per program run, column \"stats share\"). Freeing the socket storage (at socket destruction, after an RCU grace period) runs in no program and is not in it."
	echo
	echo "| N | build | BPF ns per connection | program runs per connection | stats share (ns) | connect4 ns/run | getpeername4 ns/run | sockops ns/run x runs | p50 us | x direct p50 | conn/s (1 core) | p99 us |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in "${NS[@]}"; do
		dp50=$(e2e "$n" direct 6)
		printf '| %s | direct | - | - | - | - | - | - | %s | 1.000 | %.0f | %s |\n' "$n" "$(us "$dp50")" \
			"$(e2e "$n" direct 8)" "$(us "$(e2e "$n" direct 7)")"
		for b in "${BUILDS[@]}"; do
			rpc=$(runs_per_conn "$n" "$b")
			printf '| %s | %s | **%s** | %s | %s | %s | %s | %s x %s | %s | %s | %.0f | %s |\n' "$n" "$b" \
				"$(bpf_per_conn "$n" "$b")" "$rpc" "$(awk -v r="$rpc" -v s="$STATS_NS_PER_RUN" 'BEGIN { printf "%.0f", r * s }')" \
				"$(prog_ns "$n" "$b" connect4)" "$(prog_ns "$n" "$b" getpeername4)" \
				"$(prog_ns "$n" "$b" sockops)" "$(prog_runs "$n" "$b" sockops)" \
				"$(us "$(e2e "$n" "$b" 6)")" "$(ratio "$(e2e "$n" "$b" 6)" "$dp50")" \
				"$(e2e "$n" "$b" 8)" "$(us "$(e2e "$n" "$b" 7)")"
		done
	done
	if [[ -n $BEFORE ]]; then
		echo
		echo "after / before, medians of the same rounds:"
		echo
		echo "| N | BPF ns per connection | the same, median of per-round ratios | connect4 ns/run | p50 | conn/s |"
		echo "|---:|---:|---:|---:|---:|---:|"
		for n in "${NS[@]}"; do
			printf '| %s | **%s** | %s | %s | %s | %s |\n' "$n" \
				"$(ratio "$(bpf_per_conn "$n" after)" "$(bpf_per_conn "$n" before)")" "$(paired "$n")" \
				"$(ratio "$(prog_ns "$n" after connect4)" "$(prog_ns "$n" before connect4)")" \
				"$(ratio "$(e2e "$n" after 6)" "$(e2e "$n" before 6)")" \
				"$(ratio "$(e2e "$n" after 8)" "$(e2e "$n" before 8)")"
		done
	fi
	echo
	echo "Every program, median ns/run and runs per connection:"
	echo
	echo "| N | build | program | ns/run | runs per connection |"
	echo "|---:|---|---|---:|---:|"
	for n in "${NS[@]}"; do
		for b in "${BUILDS[@]}"; do
			for p in $(awk -F'\t' -v n="$n" -v m="$b" '$1 == n && $2 == m && $5 > 0 { print $4 }' "$PROGS" | sort -u); do
				printf '| %s | %s | %s | %s | %s |\n' "$n" "$b" "$p" "$(prog_ns "$n" "$b" "$p")" "$(prog_runs "$n" "$b" "$p")"
			done
		done
	done
} >"$md"
cp "$PROGS" "${md%.md}-progs.tsv"
cp "$RUNS" "${md%.md}-runs.tsv"
log "report: $md"
cat "$md"
