#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make bench` (root): connect-time latency of ksplit against a direct
# connect, kube-proxy-shaped iptables-legacy / iptables-nft / nftables rules
# and haproxy, measured in one run, interleaved, at N installed services.
# See bench/README.md for the method and how to read the report.
#
#   netns ksb-srv-R      10 ks_server "pods" 10.244.1.1-10:8080 on lo, CPU 1
#     ├─ veth ─ netns ksb-direct-R    client, no rules
#     ├─ veth ─ netns ksb-ksplit-R    client, in cgroup ksbench-R/ks (ksplit attached there)
#     ├─ veth ─ netns ksb-iptleg-R    client, iptables-legacy nat OUTPUT rules
#     ├─ veth ─ netns ksb-iptnft-R    client, iptables-nft nat OUTPUT rules
#     ├─ veth ─ netns ksb-nft-R       client, nftables kube-proxy table
#     └─ veth ─ netns ksb-hap-R       client + haproxy (VIPs on lo, CPU 1)
#
# Clients (build/ks_load) run on CPU 0. Every namespace, cgroup, pin, rule
# and process is removed on exit, Ctrl-C included.
#
# Environment: QUICK=1 (N = 1 and 10,000, fewer connections; < 2 min),
# OUT (build dir), ROUNDS, CONN (connections per run), PERS (requests per
# persistent run), BENCH_NS (space separated N list), KEEP_TMP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
KSPLIT=$OUT/ksplit
KS_SERVER=$OUT/ks_server
KS_LOAD=$OUT/ks_load
KS_STAT=$OUT/ks_stat
# shellcheck source=lib/common.sh
source "$BENCH/lib/common.sh"
# shellcheck source=../scripts/bpffs.sh
source "$ROOT/scripts/bpffs.sh"

QUICK=${QUICK:-}
[[ $QUICK == 0 ]] && QUICK=
if [[ -n $QUICK ]]; then
	NS=(${BENCH_NS:-1 10000})
	ROUNDS=${ROUNDS:-5}
	CONN=${CONN:-2000}
	CONN_CDF=${CONN_CDF:-$CONN}	# per round at N = 10,000 (split accuracy pools them)
	SPREAD=${SPREAD:-1000}		# per spreading-control run
	PERS=${PERS:-500}
	FULLSHAPE_N=1000		# iptables/nft full-shape load (control plane)
	VALIDATE_NS=(1000 2000)
else
	NS=(${BENCH_NS:-1 1000 10000 50000})
	ROUNDS=${ROUNDS:-5}
	CONN=${CONN:-8000}
	CONN_CDF=${CONN_CDF:-20000}	# 5 rounds x 20k = 100k connections for split accuracy
	SPREAD=${SPREAD:-5000}
	PERS=${PERS:-5000}
	FULLSHAPE_N=10000
	VALIDATE_NS=(1000 2000 4000)
fi
CDF_N=10000			# the N of the CDF plot, split accuracy and control plane
MECHS=(direct ksplit iptleg iptnft nft hap)
declare -A MNAME=([direct]="direct" [ksplit]="ksplit" [iptleg]="iptables-legacy"
	[iptnft]="iptables-nft" [nft]="nftables" [hap]="haproxy")
VIP_PORT=80
DIRECT_TARGET=10.244.1.1:8080

[[ $EUID -eq 0 ]] || die "run as root (netns, cgroup, BPF and netfilter setup)"
for c in jq nsenter ip taskset iptables-legacy-restore iptables-nft-restore nft haproxy gnuplot bpftool; do
	command -v "$c" >/dev/null 2>&1 || die "$c missing: run 'bash scripts/deps.sh --bench'"
done
for b in "$KSPLIT" "$KS_SERVER" "$KS_LOAD" "$KS_STAT"; do
	[[ -x $b ]] || die "$b not built (run: make)"
done
(($(nproc) >= 2)) || die "needs 2 CPUs (client on CPU 0, servers on CPU 1)"
max_n=0
for n in "${NS[@]}"; do ((n > max_n)) && max_n=$n; done

RAND=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
BENCH_TMP=$(mktemp -d "/tmp/ksbench-$RAND.XXXX")
TMP=$BENCH_TMP
RAW=$TMP/raw.tsv		# one line per measured run
CP=$TMP/cp.tsv			# control-plane lines: metric mech N value unit note
BPFS=$TMP/bpf.tsv		# N prog run_cnt run_time_ns
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
: >"$RAW"
: >"$CP"
: >"$BPFS"
START_EPOCH=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "ksbench-$RAND: N = ${NS[*]}, $ROUNDS rounds, $CONN connections per run ($CONN_CDF at N = $CDF_N), QUICK=${QUICK:-0}"

# --- cgroups -------------------------------------------------------------------
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2 ]] || die "no cgroup2 mount"
CG=$CG2/ksbench-$RAND
mkdir "$CG"
BENCH_CGROUPS+=("$CG")
for c in ks cli srv; do
	mkdir "$CG/$c"
	BENCH_CGROUPS+=("$CG/$c")
done
bpffs_mount_if_missing || die "cannot mount bpffs at /sys/fs/bpf"
PIN=/sys/fs/bpf/ksbench-$RAND
BENCH_PINS+=("$PIN")

# --- topology ------------------------------------------------------------------
SRV=ksb-srv-$RAND
ip netns add "$SRV"
BENCH_NETNS+=("$SRV")
ip -n "$SRV" link set lo up
for k in $(seq 1 10); do ip -n "$SRV" addr add "10.244.1.$k/32" dev lo; done
declare -A NSOF
k=0
for m in "${MECHS[@]}"; do
	k=$((k + 1))
	ns=ksb-$m-$RAND
	NSOF[$m]=$ns
	ip netns add "$ns"
	BENCH_NETNS+=("$ns")
	ip -n "$ns" link set lo up
	ip -n "$ns" link add "kb$RAND${k}c" type veth peer name "kb$RAND${k}s" netns "$SRV"
	ip -n "$ns" addr add "10.250.$k.2/24" dev "kb$RAND${k}c"
	ip -n "$ns" link set "kb$RAND${k}c" up
	ip -n "$SRV" addr add "10.250.$k.1/24" dev "kb$RAND${k}s"
	ip -n "$SRV" link set "kb$RAND${k}s" up
	ip -n "$ns" route add default via "10.250.$k.1"
	# Ephemeral ports: the widest range; closes are RSTs (SO_LINGER 0), no TIME_WAIT.
	in_ns "$ns" sh -c 'echo "1024 65535" >/proc/sys/net/ipv4/ip_local_port_range'
done
# haproxy's netns: every VIP is local (AnyIP routes), haproxy binds them.
in_ns "${NSOF[hap]}" ip route add local 10.96.0.0/12 dev lo
in_ns "${NSOF[hap]}" ip route add local 10.95.0.0/16 dev lo

# Backend pods: group a = 10.244.1.1-5 (ids a1..a5), group b = 10.244.1.6-10 (b1..b5).
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
	grep -qx ready "$TMP/server-$id.log" || die "ks_server $id did not start: $(cat "$TMP/server-$id.log")"
done
log "topology up: server netns $SRV, 6 client netns, 10 pods"

# --- clients -------------------------------------------------------------------
cg_of() { [[ $1 == ksplit ]] && echo "$CG/ks" || echo "$CG/cli"; }
target_of() { [[ $1 == direct ]] && echo "$DIRECT_TARGET" || echo "$2"; }
vip_of() {	# service i -> VIP, same formula as lib/gen_common.awk
	local i=$1
	echo "10.$((96 + i / 65536)).$(((i / 256) % 256)).$((i % 256))"
}
CTL_VIP=10.95.0.1

# load MECH TARGET ARGS... : ks_load on CPU 0 in the mechanism's cgroup and netns.
load() {
	local m=$1 t=$2
	shift 2
	in_cg_ns "$(cg_of "$m")" "${NSOF[$m]}" timeout 300 "$KS_LOAD" --target "$t" --cpu 0 --json "$@"
}
stat_in() {	# stat_in MECH ks_stat-args...
	local m=$1
	shift
	in_cg_ns "$(cg_of "$m")" "${NSOF[$m]}" timeout 120 "$KS_STAT" "$@"
}

# --- ksplit agent ----------------------------------------------------------------
KCFG=$TMP/ksplit-config
AGENT_LOG=$TMP/agent.log
AGENT_PID=
applied_count() { grep -c 'msg="config applied"' "$AGENT_LOG" 2>/dev/null || true; }
wait_applied() {	# wait_applied PREV TIMEOUT_S
	local prev=$1 deadline=$((SECONDS + $2))
	while (($(applied_count) <= prev)); do
		kill -0 "$AGENT_PID" 2>/dev/null || die "ksplit agent exited: $(tail -n 5 "$AGENT_LOG")"
		((SECONDS < deadline)) || die "no msg=\"config applied\" within $2 s: $(tail -n 3 "$AGENT_LOG")"
		sleep 0.02
	done
}
last_applied() { grep 'msg="config applied"' "$AGENT_LOG" | tail -n 1; }
logfield() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
agent_rss() { awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%d %d\n", r / 1024, h / 1024 }' "/proc/$AGENT_PID/status"; }

ksplit_stage() {	# ksplit_stage N
	local n=$1 stage=$TMP/kstage prev t0 t1 line
	rm -rf "$stage"
	bash "$BENCH/gen_ksplit.sh" "$n" "$stage" shared 1 0
	if [[ -z $AGENT_PID ]]; then
		mkdir -p "$KCFG"
		mv "$stage"/*.yaml "$KCFG/"
		t0=$(date +%s%N)
		"$KSPLIT" run --config "$KCFG" --cgroup "$CG/ks" --pin-dir "$PIN" \
			--max-services $((max_n + 1024)) --max-endpoints $(((max_n + 1024) * 10)) >>"$AGENT_LOG" 2>&1 &
		AGENT_PID=$!
		BENCH_PIDS+=("$AGENT_PID")
		wait_applied 0 900
		t1=$(date +%s%N)
		line=$(last_applied)
		echo "load_cold ksplit $n $(((t1 - t0) / 1000000)) ms start->applied; apply log ms=$(logfield ms "$line")" >>"$CP"
	else
		prev=$(applied_count)
		t0=$(date +%s%N)
		# rename(2) each file in: the agent never reads a half-written file.
		rm -f "$KCFG"/svc-[0-9]*.yaml.gone
		for f in "$stage"/svc-*.yaml; do mv "$f" "$KCFG/"; done
		wait_applied "$prev" 900
		t1=$(date +%s%N)
		line=$(last_applied)
		echo "load_grow ksplit $n $(((t1 - t0) / 1000000)) ms rename->applied (added=$(logfield added "$line")); apply log ms=$(logfield ms "$line")" >>"$CP"
	fi
	[[ $(logfield services "$line") == $((n + 1)) ]] || die "agent applied $(logfield services "$line") services, want $((n + 1))"
	echo "rss ksplit $n $(agent_rss) MB VmRSS VmHWM" >>"$CP"
}

# --- netfilter and haproxy stages ---------------------------------------------------
# At N > 1,000 filler services share chains (FILL=shared): the measured
# service keeps the full kube-proxy shape, and the linear part a packet walks
# (KUBE-SERVICES rules, map elements) still has N entries. See README.
ipt_stage() {	# ipt_stage legacy|nft N
	local v=$1 n=$2 m=ipt${1:0:3} f=$TMP/ipt-$1-$2.rules t0 t1 fill=own e=10
	[[ $v == legacy ]] && m=iptleg || m=iptnft
	((n > 1000)) && fill=shared
	FILL=$fill bash "$BENCH/gen_iptables.sh" "$n" "$e" "$f" 1 0
	cp "$f.svc" "$TMP/ipt-ctl.svc"
	t0=$(date +%s%N)
	in_ns "${NSOF[$m]}" "iptables-$v-restore" -w <"$f"
	t1=$(date +%s%N)
	echo "load $m $n $(((t1 - t0) / 1000000)) ms iptables-$v-restore ($(wc -l <"$f") lines, FILL=$fill)" >>"$CP"
	rm -f "$f"
}
nft_stage() {	# nft_stage N
	local n=$1 f=$TMP/nft-$1.nft t0 t1 fill=shared
	FILL=$fill bash "$BENCH/gen_nft.sh" "$n" 10 "$f" 1 0
	cp "$f.svc" "$TMP/nft-ctl.svc"
	in_ns "${NSOF[nft]}" nft flush ruleset
	t0=$(date +%s%N)
	in_ns "${NSOF[nft]}" nft -f "$f"
	t1=$(date +%s%N)
	echo "load nft $n $(((t1 - t0) / 1000000)) ms nft -f ($(wc -l <"$f") lines, FILL=$fill)" >>"$CP"
	rm -f "$f"
}
HAP_PID=
hap_start() {	# hap_start CFG [-sf OLDPID]: start haproxy, set HAP_PID
	local cfg=$1 pidf=$TMP/haproxy-$RANDOM.pid
	shift
	in_cg_ns "$CG/srv" "${NSOF[hap]}" taskset -c 1 haproxy -D -p "$pidf" -f "$cfg" "$@" \
		>"$TMP/haproxy.log" 2>&1 || die "haproxy failed: $(tail -n 5 "$TMP/haproxy.log")"
	HAP_PID=$(cat "$pidf")
}
# filler servers per haproxy service: 10 up to N = 1,000, then 1, then (N > 10,000) one wildcard listener
hap_e() { if (($1 <= 1000)); then echo 10; elif (($1 <= 10000)); then echo 0; else echo -1; fi; }
hap_stage() {	# hap_stage N
	local n=$1 f=$TMP/haproxy-$1.cfg t0 t1 e
	e=$(hap_e "$n")
	bash "$BENCH/gen_haproxy.sh" "$n" "$e" "$f" 1 0
	[[ -n $HAP_PID ]] && stop_pid "$HAP_PID"
	t0=$(date +%s%N)
	hap_start "$f"
	t1=$(date +%s%N)
	echo "load hap $n $(((t1 - t0) / 1000000)) ms haproxy -D ($(grep -c '^listen' "$f") listen sections, filler servers: $e (0 = one, -1 = one wildcard listener))" >>"$CP"
	echo "rss hap $n $(awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%d %d\n", r / 1024, h / 1024 }' "/proc/$HAP_PID/status") MB VmRSS VmHWM" >>"$CP"
	HAP_CFG=$f
}

# --- one measured run -------------------------------------------------------------
# run_one N MECH ROUND KIND COUNT: appends to RAW:
# N mech round kind ops ok p50 p90 p99 p999 rate cpu_jiffies errors ids_json
run_one() {
	local n=$1 m=$2 r=$3 kind=$4 cnt=$5 t j c0 c1 extra=()
	t=$(target_of "$m" "$(vip_of "$n"):$VIP_PORT")
	[[ $kind == pers ]] && extra=(--persistent)
	c0=$(cpu_busy)
	j=$(load "$m" "$t" -n "$cnt" "${extra[@]}") || die "ks_load failed for $m at N=$n"
	c1=$(cpu_busy)
	jq -r --arg n "$n" --arg m "$m" --arg r "$r" --arg k "$kind" --arg c "$((c1 - c0))" \
		'[$n, $m, $r, $k, .ops, .ok, .lat_ns.p50, .lat_ns.p90, .lat_ns.p99, .lat_ns.p999, .rate,
		  $c, (.errors | tojson), (.ids | tojson)] | @tsv' <<<"$j" >>"$RAW"
	if [[ $(jq -r '.ok == .ops' <<<"$j") != true ]]; then
		log "  $m N=$n round $r $kind: $(jq -c '{ok, ops, errors}' <<<"$j")"
	fi
}

bpf_stats_pass() {	# bpf_stats_pass N: run_time_ns/run_cnt of each ksplit program
	local n=$1 l id before after
	set_sysctl /proc/sys/kernel/bpf_stats_enabled 1
	declare -A b0
	for l in "$PIN"/link_*; do
		id=$(bpftool link show pinned "$l" -j | jq -r .prog_id)
		b0[$l]=$(bpftool prog show id "$id" -j | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"')
	done
	load ksplit "$(vip_of "$n"):$VIP_PORT" -n "$CONN" >/dev/null
	for l in "$PIN"/link_*; do
		id=$(bpftool link show pinned "$l" -j | jq -r .prog_id)
		after=$(bpftool prog show id "$id" -j | jq -r '"\(.run_cnt // 0) \(.run_time_ns // 0)"')
		read -r c0 t0 <<<"${b0[$l]}"
		read -r c1 t1 <<<"$after"
		echo "$n ${l##*/link_} $((c1 - c0)) $((t1 - t0))" >>"$BPFS"
	done
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
}

# --- control plane at N = CDF_N (or the largest N below it) ------------------------------
control_plane() {	# control_plane N
	local n=$1 t0 t1 first ops prev line f ch
	log "control plane at N=$n"
	# ksplit, manifest: ctl 1:0 -> 0:1, time from rename to the first connect answered by group b.
	for w in "0 1 b" "1 0 a"; do
		read -r wa wb want <<<"$w"
		bash "$BENCH/gen_ksplit.sh" 0 "$TMP/kctl" shared "$wa" "$wb"
		prev=$(applied_count)
		t0=$(date +%s%N)
		mv "$TMP/kctl/ctl.yaml" "$KCFG/ctl.yaml"
		read -r first ops < <(stat_in ksplit flip --target "$CTL_VIP:80" --want "$want" --timeout-ms 600000) ||
			die "ksplit never answered from group $want after the weight change"
		wait_applied "$prev" 600
		line=$(last_applied)
		echo "wchange_file ksplit $n $(((first - t0) / 1000000)) ms rename->first connect to the new group ($ops connects; apply log ms=$(logfield ms "$line"), changed=$(logfield changed "$line"); includes the agent's 100 ms debounce)" >>"$CP"
	done
	# ksplit, one map update (the kernel's share of a weight change)
	for w in "0,1 b" "1,0 a"; do
		read -r ws want <<<"$w"
		t0=$(date +%s%N)
		ns=$("$KS_STAT" mapw --pin-dir "$PIN" --vip "$CTL_VIP" --port 80 --weights "$ws") || die "mapw failed"
		read -r first ops < <(stat_in ksplit flip --target "$CTL_VIP:80" --want "$want" --timeout-ms 10000) || die "mapw flip not seen"
		echo "wchange_map ksplit $n $((ns / 1000)) us bpf_map_update_elem of one ks_services entry (first connect on the new weights $(((first - t0) / 1000)) us after the tool started)" >>"$CP"
	done
	# iptables: kube-proxy's partial restore (--noflush) rewriting the control KUBE-SVC chain.
	for v in legacy nft; do
		local m
		[[ $v == legacy ]] && m=iptleg || m=iptnft
		bash "$BENCH/gen_iptables.sh" 0 10 "$TMP/ctl-b.rules" 0 1
		awk '/^\*nat|^COMMIT/ || (/^:KUBE-(SVC|SEP)-/) || (/^-A KUBE-(SVC|SEP)-/)' "$TMP/ctl-b.rules" >"$TMP/ctl-b.delta"
		t0=$(date +%s%N)
		in_ns "${NSOF[$m]}" "iptables-$v-restore" -w --noflush <"$TMP/ctl-b.delta"
		t1=$(date +%s%N)
		read -r first ops < <(stat_in "$m" flip --target "$CTL_VIP:80" --want b --timeout-ms 10000) || die "$m flip not seen"
		echo "wchange $m $n $(((t1 - t0) / 1000000)) ms iptables-$v-restore --noflush of the control chain (first connect to the new group $(((first - t0) / 1000000)) ms after the start)" >>"$CP"
	done
	# nftables: flush the control service chain and add its new numgen rule + endpoint chains.
	ch=$(cat "$TMP/nft-ctl.svc")
	f=$TMP/ctl-b.nft
	{
		for k in 1 2 3 4 5; do
			echo "add chain ip kube-proxy endpoint-ctl-b$k"
			echo "add rule ip kube-proxy endpoint-ctl-b$k meta l4proto tcp dnat to 10.244.1.$((k + 5)):8080"
		done
		echo "flush chain ip kube-proxy $ch"
		echo "add rule ip kube-proxy $ch numgen random mod 5 vmap { 0 : goto endpoint-ctl-b1, 1 : goto endpoint-ctl-b2, 2 : goto endpoint-ctl-b3, 3 : goto endpoint-ctl-b4, 4 : goto endpoint-ctl-b5 }"
	} >"$f"
	t0=$(date +%s%N)
	in_ns "${NSOF[nft]}" nft -f "$f"
	t1=$(date +%s%N)
	read -r first ops < <(stat_in nft flip --target "$CTL_VIP:80" --want b --timeout-ms 10000) || die "nft flip not seen"
	echo "wchange nft $n $(((t1 - t0) / 1000000)) ms nft -f (flush + re-add the control chain; first connect to the new group $(((first - t0) / 1000000)) ms after the start)" >>"$CP"
	# haproxy: a config-file change is a reload (-sf); the new process owns the VIPs when it answers.
	bash "$BENCH/gen_haproxy.sh" "$n" "$(hap_e "$n")" "$TMP/haproxy-b.cfg" 0 1
	local old=$HAP_PID
	t0=$(date +%s%N)
	hap_start "$TMP/haproxy-b.cfg" -sf "$old"
	read -r first ops < <(stat_in hap flip --target "$CTL_VIP:80" --want b --timeout-ms 60000) || die "haproxy flip not seen"
	echo "wchange hap $n $(((first - t0) / 1000000)) ms haproxy reload (-sf) with the new weights to the first connect on them" >>"$CP"
	stop_pid "$old" 2>/dev/null || true
	HAP_CFG=$TMP/haproxy-b.cfg
}

# Full kube-proxy shape (every service with its own chains, 10 endpoints) in a
# scratch netns: what kube-proxy's own restore of N services costs.
fullshape_load() {	# fullshape_load N
	local n=$1 ns=ksb-scratch-$RAND t0 t1 v f=$TMP/full.rules
	ip netns add "$ns"
	BENCH_NETNS+=("$ns")
	FILL=own bash "$BENCH/gen_iptables.sh" "$n" 10 "$f" 1 0
	for v in legacy nft; do
		t0=$(date +%s%N)
		in_ns "$ns" "iptables-$v-restore" -w <"$f"
		t1=$(date +%s%N)
		echo "load_full ipt${v:0:3} $n $(((t1 - t0) / 1000000)) ms iptables-$v-restore, full shape ($(wc -l <"$f") lines)" >>"$CP"
		in_ns "$ns" "iptables-$v" -t nat -F
		in_ns "$ns" "iptables-$v" -t nat -X
	done
	for nn in 1000 2000; do
		((nn > n)) && break
		FILL=own bash "$BENCH/gen_nft.sh" "$nn" 10 "$TMP/full.nft" 1 0
		in_ns "$ns" nft flush ruleset
		t0=$(date +%s%N)
		timeout 300 nsenter --net="/run/netns/$ns" nft -f "$TMP/full.nft"
		t1=$(date +%s%N)
		echo "load_full nft $nn $(((t1 - t0) / 1000000)) ms nft -f, full shape ($(grep -c 'chain ' "$TMP/full.nft") chains)" >>"$CP"
	done
	ip netns del "$ns"
	rm -f "$f" "$TMP/full.nft"
}

validate_scaling() {	# ksplit manifests with per-service backend Services/slices
	local n t0 t1
	for n in "${VALIDATE_NS[@]}"; do
		rm -rf "$TMP/own"
		bash "$BENCH/gen_ksplit.sh" "$n" "$TMP/own" own
		t0=$(date +%s%N)
		"$KSPLIT" validate "$TMP/own" >/dev/null
		t1=$(date +%s%N)
		echo "validate_own ksplit $n $(((t1 - t0) / 1000000)) ms ksplit validate, one backend Service pair + slices per service ($((5 * n + 5)) objects)" >>"$CP"
	done
	rm -rf "$TMP/own"
}

profile_pass() {	# profile_pass N: perf on CPU 0 during a ksplit and a direct run
	local n=$1 m
	command -v perf >/dev/null || { echo "perf not installed" >"$TMP/profile.txt"; return; }
	: >"$TMP/profile.txt"
	for m in direct ksplit; do
		local try
		for try in 1 2 3; do
			rm -f "$TMP/perf-$m.data"
			# perf follows the load generator itself (and the kernel work done in
			# its context), in the mechanism's cgroup and netns, for 3 s.
			in_cg_ns "$(cg_of "$m")" "${NSOF[$m]}" perf record -q -g -o "$TMP/perf-$m.data" -- \
				timeout -s INT 3 "$KS_LOAD" --target "$(target_of "$m" "$(vip_of "$n"):$VIP_PORT")" \
				--cpu 0 -n 100000000 >"$TMP/perf-$m.err" 2>&1 || true
			[[ $(perf report -i "$TMP/perf-$m.data" --comms ks_load --stdio 2>/dev/null | grep -cE '^ +[0-9]') -gt 0 ]] && break
			log "perf profile of $m: no ks_load samples (try $try): $(tail -n 2 "$TMP/perf-$m.err" | tr '\n' ' ')"
		done
		{
			echo "### perf record -g -- ks_load: 3 s of $m connect loops at N=$n (ks_load and the kernel work in its context; top symbols, self, % of its samples)"
			perf report -i "$TMP/perf-$m.data" --comms ks_load --no-children --sort sym --stdio 2>/dev/null |
				grep -E '^ +[0-9]' | head -n 30 || true
			echo "# BPF, sk_storage, cgroup-hook and netfilter symbols (self):"
			perf report -i "$TMP/perf-$m.data" --comms ks_load --no-children --sort sym --stdio 2>/dev/null |
				grep -E '^ +[0-9]' | grep -Ei 'bpf|sk_storage|cgroup|nf_|prandom|htab' | head -n 20 || true
			echo
		} >>"$TMP/profile.txt"
	done
	{
		echo "### bpftool prog profile (connect4, 3 s, cycles + instructions)"
		local id
		id=$(bpftool link show pinned "$PIN/link_ksplit_connect4" -j 2>/dev/null | jq -r .prog_id) ||
			id=$(bpftool link show pinned "$PIN/link_connect4" -j | jq -r .prog_id)
		spawn_cg_ns "$CG/ks" "${NSOF[ksplit]}" timeout 60 "$KS_LOAD" --target "$(vip_of "$n"):$VIP_PORT" --cpu 0 -n 100000000 >/dev/null 2>&1
		timeout 10 bpftool prog profile id "$id" duration 3 cycles instructions 2>&1 || echo "(bpftool prog profile failed: no PMU in this VM?)"
		stop_pid "$SPAWNED"
	} >>"$TMP/profile.txt"
}

# --- the run ---------------------------------------------------------------------
for n in "${NS[@]}"; do
	log "N=$n: loading ksplit, iptables-legacy, iptables-nft, nftables, haproxy"
	ksplit_stage "$n"
	ipt_stage legacy "$n"
	ipt_stage nft "$n"
	nft_stage "$n"
	hap_stage "$n"
	# Sanity: every mechanism answers on the measured service before measuring.
	for m in "${MECHS[@]}"; do
		j=$(load "$m" "$(target_of "$m" "$(vip_of "$n"):$VIP_PORT")" -n 50 --timeout-ms 500) || die "$m: ks_load failed"
		[[ $(jq -r .ok <<<"$j") == 50 ]] || die "$m at N=$n does not answer: $(jq -c '{ok, errors}' <<<"$j")"
	done
	cnt=$CONN
	((n == CDF_N)) && cnt=$CONN_CDF
	for ((r = 1; r <= ROUNDS; r++)); do
		for m in "${MECHS[@]}"; do
			run_one "$n" "$m" "$r" conn "$cnt"
			run_one "$n" "$m" "$r" pers "$PERS"
		done
		if ((n == CDF_N)); then
			# Spreading control, same tool for all three: direct to one pod, direct
			# rotating over the 10 pods, ksplit (which spreads over the 10 pods).
			stat_in direct cdf --target "$DIRECT_TARGET" -n "$SPREAD" --cpu 0 --points 100 >"$TMP/spread-direct-$r.dat"
			stat_in direct cdf --target "$(seq -s, -f "10.244.1.%g:8080" 1 10)" -n "$SPREAD" --cpu 0 --points 100 >"$TMP/spread-direct10-$r.dat"
			stat_in ksplit cdf --target "$(vip_of "$n"):$VIP_PORT" -n "$SPREAD" --cpu 0 --points 100 >"$TMP/spread-ksplit-$r.dat"
		fi
		log "N=$n round $r/$ROUNDS done"
	done
	if ((n == ${NS[0]} || n == max_n)); then
		bpf_stats_pass "$n"
	fi
	if ((n == CDF_N)); then
		for m in "${MECHS[@]}"; do
			stat_in "$m" cdf --target "$(target_of "$m" "$(vip_of "$n"):$VIP_PORT")" -n "$CONN" --cpu 0 --points 400 \
				>"$TMP/cdf-$m.dat" || die "cdf $m failed"
		done
		profile_pass "$n"
		control_plane "$n"
		fullshape_load "$FULLSHAPE_N"
		validate_scaling
	fi
done

END_EPOCH=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "measurements done in $((END_EPOCH - START_EPOCH)) s; writing the report"
source "$BENCH/lib/report.sh"
write_report
