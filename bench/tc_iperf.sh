#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# iperf3 throughput through the TC path (root), the topology of
# selftests/kern/test_tc, every namespace the run's own:
#
#   pod 198.18.0.2 <-veth-> kstp0 | node | kstb0 <-veth-> backends 198.18.1.1 (iperf3 -s)
#
# ROUNDS times, in turn:
#   off     no program on kstp0: iperf3 from the pod to 198.18.1.1
#   nonvip  `ksplit run --cgroup none --tc-iface kstp0` in "node": the same
#           iperf3 (not a VIP: the programs look and pass)
#   vip     the same agent: iperf3 to the VIP 198.19.0.10:5201, translated
#           to 198.18.1.1:5201 on the way in and back on the way out
# Each run is SECS seconds of one TCP stream (-O 1: the first second,
# slow start, is left out); medians over the rounds, and each case against
# "off" of the same run (issue 13's target: >= 0.9 x).
#
# Environment: OUT (build dir, default build), ROUNDS (5), SECS (10).
# Writes bench/results/<date>-<host>-tc-iperf.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-10}
KSPLIT=$OUT/ksplit
VIP=198.19.0.10
BE=198.18.1.1
PORT=5201

# shellcheck source=lib/common.sh
source "$ROOT/bench/lib/common.sh"
# shellcheck source=../scripts/bpffs.sh
source "$ROOT/scripts/bpffs.sh"
[[ $EUID -eq 0 ]] || die "run as root (BPF, network namespaces)"
[[ -x $KSPLIT ]] || die "$KSPLIT not built (run: make)"
command -v iperf3 >/dev/null || die "no iperf3 (scripts/deps.sh --bench)"
command -v jq >/dev/null || die "no jq (scripts/deps.sh)"
trap bench_cleanup EXIT INT TERM

R=$RANDOM$$
POD=ksti-pod-$R NODE=ksti-node-$R BES=ksti-be-$R
BENCH_TMP=$(mktemp -d /tmp/ks-tciperf-XXXXXX)
bpffs_mount_if_missing || die "cannot mount bpffs at /sys/fs/bpf"
PIN=/sys/fs/bpf/ksti-$R
BENCH_PINS+=("$PIN")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

for ns in "$POD" "$NODE" "$BES"; do
	ip netns add "$ns"
	BENCH_NETNS+=("$ns")
	in_ns "$ns" ip link set lo up
done
in_ns "$NODE" ip link add kstp0 type veth peer name eth0 netns "$POD"
in_ns "$NODE" ip link add kstb0 type veth peer name eth0 netns "$BES"
in_ns "$NODE" ip addr add 198.18.0.1/24 dev kstp0
in_ns "$NODE" ip addr add 198.18.1.254/24 dev kstb0
in_ns "$NODE" ip link set kstp0 up
in_ns "$NODE" ip link set kstb0 up
in_ns "$NODE" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
in_ns "$POD" ip addr add 198.18.0.2/24 dev eth0
in_ns "$POD" ip link set eth0 up
in_ns "$POD" ip route add default via 198.18.0.1
in_ns "$BES" ip addr add $BE/24 dev eth0
in_ns "$BES" ip link set eth0 up
in_ns "$BES" ip route add default via 198.18.1.254

# nsenter execs what it runs: $! is the process itself, which stop_pid can end.
nsenter --net="/run/netns/$BES" iperf3 -s -B $BE -p $PORT >"$BENCH_TMP/iperf3-server.log" 2>&1 &
BENCH_PIDS+=("$!")

mkdir "$BENCH_TMP/cfg"
cat >"$BENCH_TMP/cfg/routes.yaml" <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: b}
spec:
  gatewayClassName: ksplit
  addresses:
  - {type: IPAddress, value: "$VIP"}
  listeners:
  - {name: tcp, port: $PORT, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: v1, namespace: b}
spec:
  type: ClusterIP
  ports:
  - {name: tcp, port: $PORT, protocol: TCP, targetPort: $PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: v1
  namespace: b
  labels: {kubernetes.io/service-name: v1}
addressType: IPv4
ports:
- {name: tcp, port: $PORT, protocol: TCP}
endpoints:
- addresses: ["$BE"]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: r, namespace: b}
spec:
  parentRefs:
  - {name: gw, sectionName: tcp}
  rules:
  - backendRefs:
    - {name: v1, port: $PORT}
EOF

AGENT=
agent_start() {
	local log=$BENCH_TMP/agent.log i
	: >"$log"
	nsenter --net="/run/netns/$NODE" "$KSPLIT" run --config "$BENCH_TMP/cfg" --cgroup none --tc-iface kstp0 \
		--pin-dir "$PIN" --metrics-addr none 2>"$log" &
	AGENT=$!
	BENCH_PIDS+=("$AGENT")
	for ((i = 0; i < 100; i++)); do
		grep -q 'msg="config applied"' "$log" && grep -q 'msg="TC programs attached"' "$log" &&
			return 0
		kill -0 "$AGENT" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log" >&2
	die "the agent did not attach"
}
agent_stop() {
	stop_pid "$AGENT"
	# The tcx links are pinned and outlive the agent: off means down.
	in_ns "$NODE" "$KSPLIT" down --pin-dir "$PIN" >/dev/null
}

# iperf3 from the pod to $1 -> Gbit/s received.
run_iperf() {
	in_ns "$POD" iperf3 -c "$1" -p $PORT -t "$SECS" -O 1 -J >"$BENCH_TMP/last.json" ||
		die "iperf3 to $1 failed"
	jq -r '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000' "$BENCH_TMP/last.json"
}

sleep 0.5	# the server listens
for ((r = 1; r <= ROUNDS; r++)); do
	off=$(run_iperf $BE)
	agent_start
	nonvip=$(run_iperf $BE)
	vip=$(run_iperf $VIP)
	agent_stop
	printf '%s %s %s\n' "$off" "$nonvip" "$vip" >>"$BENCH_TMP/rounds"
	log "round $r: off $off nonvip $nonvip vip $vip Gbit/s"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

col() { awk -v c="$1" '{ print $c }' "$BENCH_TMP/rounds" | median; }
# A round's case against the same round's off: the pairs share the machine's state of the moment.
pair() { awk -v c="$1" '{ printf "%.3f\n", $c / $1 }' "$BENCH_TMP/rounds" | median; }
OFF=$(col 1) NONVIP=$(col 2) VIPM=$(col 3)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v v="$1" 'BEGIN { print (v >= 0.9) ? "met" : "missed" }'; }
RN=$(ratio "$NONVIP" "$OFF") RV=$(ratio "$VIPM" "$OFF")
PN=$(pair 2) PV=$(pair 3)
mkdir -p "$ROOT/bench/results"
RES=$ROOT/bench/results/$(date -u +%F)-$(hostname -s)-tc-iperf.md
{
	echo "# TC path: iperf3 throughput ($(date -u +%F), $(hostname -s), $(uname -r), $(nproc) CPUs)"
	echo
	echo "bench/tc_iperf.sh: pod -> veth -> node (ksplit_tc_ingress/egress on the node side of the"
	echo "pod's veth, tcx) -> veth -> backends, all in the run's own network namespaces; one iperf3"
	echo "TCP stream of $SECS s (-O 1) per run, $ROUNDS rounds of off / nonvip / vip in turn, medians."
	echo "Load average: $LOAD_START at the start, $LOAD_END at the end."
	echo
	echo "| case | Gbit/s (median) | x off (medians) | x off (median of the rounds' ratios) | target | |"
	echo "|---|---:|---:|---:|---:|---|"
	echo "| off: no program on the veth, to $BE | $OFF | 1.000 | 1.000 | | |"
	echo "| nonvip: programs on, to $BE (not a VIP) | $NONVIP | $RN | $PN | 0.9 | $(verdict "$PN") |"
	echo "| vip: programs on, to $VIP (translated) | $VIPM | $RV | $PV | 0.9 | $(verdict "$PV") |"
	echo
	echo "Rounds (off nonvip vip, Gbit/s):"
	echo
	sed 's/^/    /' "$BENCH_TMP/rounds"
} >"$RES"
cat "$RES"
log "wrote $RES"
