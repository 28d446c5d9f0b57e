#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# The checkout A/B demo (`make demo`, as root): the seed article's 25/75
# HTTPRoute split, reproduced on this machine by ksplit instead of VPC Lattice.
#
#   netns ksd-node-*  "ui" client, bridge br0 10.244.0.1/16, no route to 10.100/16
#     ├─ netns ksd-v1a-*  10.244.1.11:8080  ks_server "v1 checkout-v1-6f8d9-aaaaa"
#     ├─ netns ksd-v1b-*  10.244.1.12:8080  ks_server "v1 checkout-v1-6f8d9-bbbbb"
#     ├─ netns ksd-v2a-*  10.244.2.11:8080  ks_server "v2 checkout-v2-84c7b-ccccc"
#     └─ netns ksd-v2b-*  10.244.2.12:8080  ks_server "v2 checkout-v2-84c7b-ddddd"
#
# The client calls the checkout ClusterIP 10.100.50.10:80, which exists
# nowhere: only ksplit's connect hook, attached to a demo cgroup the client
# joins, turns it into a pod address. The demo measures the split, changes it
# live to 50/50 and measures again. It is also a check: it exits non-zero if a
# step fails or an observed share is more than DEMO_TOL points off.
#
# Environment: OUT (build dir, default build), DEMO_N (connections per run,
# default 10000: at 2000 a fair random pick misses +-2 points ~10% of the
# time, at 10000 practically never), DEMO_TOL (points, default 2),
# DEMO_SKIP_DEPS (1: do not run scripts/deps.sh for missing build tools),
# DEMO_APPLY_TIMEOUT and DEMO_CLIENT_TIMEOUT (seconds; 15 and 20 by default,
# more on a slow machine such as make vm-test's qemu guest).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
KSPLIT=$OUT/ksplit
KS_SERVER=$OUT/ks_server
KS_LOAD=$OUT/ks_load
EXAMPLE=$ROOT/examples/checkout-ab
N=${DEMO_N:-10000}
TOL=${DEMO_TOL:-2}
VIP=10.100.50.10
VIP_PORT=80
APPLY_TIMEOUT=${DEMO_APPLY_TIMEOUT:-15}	# seconds to wait for the agent's msg="config applied"
CLIENT_TIMEOUT=${DEMO_CLIENT_TIMEOUT:-20}	# seconds for one client run

# shellcheck source=bpffs.sh
source "$ROOT/scripts/bpffs.sh"

log() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] FAIL: %s\n' "$*" >&2; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "DEMO_N must be a positive integer"
[[ $TOL =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DEMO_TOL must be a number of percentage points"
[[ $EUID -eq 0 ]] || die "run as root (netns, cgroup and BPF setup)"

# Build/test deps come from scripts/deps.sh; only call it when something is missing.
# DEMO_SKIP_DEPS=1: the caller brings the programs (make vm-test's guest has no apt).
need_deps=0
for c in bpftool clang jq nsenter ip; do
	command -v "$c" >/dev/null 2>&1 || need_deps=1
done
pkg-config --exists libbpf yaml-0.1 cmocka 2>/dev/null || need_deps=1
if ((need_deps)) && [[ ${DEMO_SKIP_DEPS:-0} != 1 ]]; then
	log "missing dependencies, running scripts/deps.sh"
	bash "$ROOT/scripts/deps.sh"
fi
command -v jq >/dev/null || die "jq is required (apt-get install jq)"
for b in "$KSPLIT" "$KS_SERVER" "$KS_LOAD"; do
	[[ -x $b ]] || die "$b not built (run: make)"
done

# --- everything below is undone by cleanup(), whatever the exit path ---------

RAND=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
NODE=ksd-node-$RAND
TMP=$(mktemp -d "/tmp/ksplit-demo-$RAND.XXXX")
CFG=$TMP/config
AGENT_LOG=$TMP/agent.log
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
DEMO_CG=
PIN=/sys/fs/bpf/ksplit-demo-$RAND
AGENT_PID=
SERVER_PIDS=()
NETNS=()

cleanup() {
	local rc=$? pid i
	set +e
	trap - EXIT INT TERM
	if [[ -n $AGENT_PID ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		# A wedged agent must not wedge the cleanup: SIGKILL after 5 s.
		for ((i = 0; i < 50; i++)); do
			kill -0 "$AGENT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$AGENT_PID" 2>/dev/null && { log "agent ignored SIGTERM, killing"; kill -KILL "$AGENT_PID"; rc=1; }
		wait "$AGENT_PID" 2>/dev/null
	fi
	if [[ -e $PIN ]]; then
		"$KSPLIT" down --pin-dir "$PIN" >/dev/null 2>&1 || log "ksplit down --pin-dir $PIN failed"
		rm -rf "$PIN"	# unpinning is how BPF objects are released
	fi
	for pid in "${SERVER_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${SERVER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for i in "${NETNS[@]}"; do
		ip netns del "$i" 2>/dev/null
	done
	[[ -n $DEMO_CG && -d $DEMO_CG ]] && rmdir "$DEMO_CG"
	bpffs_release
	if ((rc != 0)) && [[ -s $AGENT_LOG ]]; then
		log "agent log (last 20 lines):"
		tail -n 20 "$AGENT_LOG" | sed 's/^/    /'
	fi
	rm -rf "$TMP"
	if ((rc == 0)); then log "cleaned up"; else log "cleaned up after failure (exit $rc)"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- topology -----------------------------------------------------------------

# short-name  pod-ip  version  pod-name (must match examples/checkout-ab/endpointslices.yaml)
PODS=(
	"v1a 10.244.1.11 v1 checkout-v1-6f8d9-aaaaa"
	"v1b 10.244.1.12 v1 checkout-v1-6f8d9-bbbbb"
	"v2a 10.244.2.11 v2 checkout-v2-84c7b-ccccc"
	"v2b 10.244.2.12 v2 checkout-v2-84c7b-ddddd"
)
for p in "${PODS[@]}"; do
	read -r _ ip _ name <<<"$p"
	if ! grep -q -- "- $ip\$" "$EXAMPLE/endpointslices.yaml" || ! grep -q "name: $name\$" "$EXAMPLE/endpointslices.yaml"; then
		die "pod $name $ip is not in $EXAMPLE/endpointslices.yaml; keep the two in sync"
	fi
done

log "topology: node netns $NODE, 4 pod netns, bridge 10.244.0.1/16"
ip netns add "$NODE"
NETNS+=("$NODE")
ip -n "$NODE" link set lo up
# STP off and no forwarding delay: ports forward as soon as they are up.
ip -n "$NODE" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$NODE" addr add 10.244.0.1/16 dev br0
ip -n "$NODE" link set br0 up

for p in "${PODS[@]}"; do
	read -r short ip ver name <<<"$p"
	ns=ksd-$short-$RAND
	ip netns add "$ns"
	NETNS+=("$ns")
	ip -n "$ns" link set lo up
	ip -n "$NODE" link add "$short" type veth peer name eth0 netns "$ns"
	ip -n "$NODE" link set "$short" master br0 up
	ip -n "$ns" addr add "$ip/16" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via 10.244.0.1
	# nsenter, not `ip netns exec`: the latter remounts /sys in a new mount ns.
	# nsenter execs the server, so $! is the server's own pid.
	nsenter --net="/run/netns/$ns" "$KS_SERVER" --listen "$ip:8080" --id "$ver $name" \
		>"$TMP/server-$short.log" 2>&1 &
	SERVER_PIDS+=($!)
done

# Servers print "ready" once listening.
for p in "${PODS[@]}"; do
	read -r short _ _ name <<<"$p"
	for ((i = 0; i < 50; i++)); do
		grep -qx ready "$TMP/server-$short.log" && break
		sleep 0.1
	done
	grep -qx ready "$TMP/server-$short.log" || die "ks_server $name did not start: $(cat "$TMP/server-$short.log")"
done

# Direct sanity check: every pod answers from the node with its own id, which
# proves the topology before ksplit is involved.
for p in "${PODS[@]}"; do
	read -r _ ip ver name <<<"$p"
	got=$(timeout 10 nsenter --net="/run/netns/$NODE" "$KS_LOAD" --target "$ip:8080" -n 20 --http --json \
		--timeout-ms 200 | jq -r '[.ok, (.ids | keys | join(","))] | @tsv') || got="(ks_load failed)"
	[[ $got == "20	$ver $name" ]] || die "direct check of $name at $ip:8080: got '$got'"
done
log "direct check: all 4 pods answer on :8080"
# Without ksplit the ClusterIP is unroutable from the node netns.
before=$(timeout 10 nsenter --net="/run/netns/$NODE" "$KS_LOAD" --target "$VIP:$VIP_PORT" -n 5 --timeout-ms 200 --json |
	jq -r '"ok=\(.ok) errors=\(.errors | to_entries | map("\(.key):\(.value)") | join(","))"') || before="(check failed)"
log "before ksplit, $VIP:$VIP_PORT from the node: $before"

# --- cgroup, bpffs, agent ------------------------------------------------------

[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/mounts"
DEMO_CG=$CG2/ksplit-demo-$RAND
mkdir "$DEMO_CG"
bpffs_mount_if_missing || die "cannot mount bpffs at /sys/fs/bpf"

mkdir -p "$CFG"
cp "$EXAMPLE"/*.yaml "$CFG/"

applied_count() { grep -c 'msg="config applied"' "$AGENT_LOG" || true; }

# Wait until the agent has logged more than $1 applies.
wait_applied() {
	local prev=$1 deadline=$((SECONDS + APPLY_TIMEOUT))
	while (($(applied_count) <= prev)); do
		kill -0 "$AGENT_PID" 2>/dev/null || die "ksplit agent exited (see log below)"
		((SECONDS < deadline)) || die "no msg=\"config applied\" from the agent within ${APPLY_TIMEOUT}s"
		sleep 0.05
	done
}

log "starting agent: ksplit run --config $CFG --cgroup $DEMO_CG --pin-dir $PIN (in the node netns)"
: >"$AGENT_LOG"
# The agent is a hostNetwork pod on a real node: it runs in the node netns so
# that its health checks reach the pod IPs. nsenter --net keeps the bpffs and
# cgroup mounts (it does not touch the mount namespace) and execs the agent.
nsenter --net="/run/netns/$NODE" "$KSPLIT" run --config "$CFG" --cgroup "$DEMO_CG" --pin-dir "$PIN" \
	2>>"$AGENT_LOG" >>"$AGENT_LOG" &
AGENT_PID=$!
wait_applied 0
log "agent applied the config: $(grep 'msg="config applied"' "$AGENT_LOG" | tail -n 1)"

# --- the "ui" client ----------------------------------------------------------

# The client joins the demo cgroup first (so the connect hook sees it), then
# enters the node netns and calls the ClusterIP like the UI pod would. Short
# per-op timeouts plus an overall one keep a broken datapath from blowing the
# demo's one-minute budget.
run_client() {
	sh -c 'echo $$ > "$1/cgroup.procs" &&
		exec timeout "$6" nsenter --net="$2" "$3" --target "$4" -n "$5" --http --json --timeout-ms 200' \
		sh "$DEMO_CG" "/run/netns/$NODE" "$KS_LOAD" "$VIP:$VIP_PORT" "$N" "$CLIENT_TIMEOUT"
}

# Configured shares, read from the route in the config dir (v1 first, v2 second).
configured() {
	awk '/weight:/ { w[n++] = $2 } END { if (n != 2) exit 1; printf "%.1f %.1f\n", 100 * w[0] / (w[0] + w[1]), 100 * w[1] / (w[0] + w[1]) }' \
		"$CFG/httproute.yaml"
}

FAILED=0

# Print version and pod shares from one ks_load JSON result and check them.
# Optional: expected v1/v2 shares (default: the configured weights) and how
# many failed connects are acceptable (default 0).
report() {
	local json=$1 title=$2 conf_v1 conf_v2 ok fails
	local allowed=${5:-0}
	read -r conf_v1 conf_v2 < <(configured) || die "cannot read the two weights from $CFG/httproute.yaml"
	[[ -n ${3:-} ]] && conf_v1=$3 && conf_v2=$4
	ok=$(jq -r .ok <<<"$json")
	fails=$((N - ok))
	echo
	echo "== $title: $N checkouts to $VIP:$VIP_PORT, $ok ok, $(jq -r '.rate | floor' <<<"$json") conn/s," \
		"p50 $(jq -r '.lat_ns.p50 / 1000 | floor' <<<"$json") us, p99 $(jq -r '.lat_ns.p99 / 1000 | floor' <<<"$json") us"
	if ((fails > 0)); then
		echo "   failed connects: $fails $(jq -c .errors <<<"$json") (acceptable here: $allowed)"
		((fails <= allowed)) || FAILED=1
	fi
	printf '   %-28s %10s %10s %8s\n' "version / pod" configured observed count
	local ver conf obs cnt
	for ver in v1 v2; do
		[[ $ver == v1 ]] && conf=$conf_v1 || conf=$conf_v2
		read -r cnt obs < <(jq -r --arg v "$ver" '
			([.ids | to_entries[] | select(.key | startswith($v + " ")) | .value] | add // 0) as $c
			| "\($c) \(if .ok > 0 then ($c * 1000 / .ok | round) / 10 else 0 end)"' <<<"$json")
		printf '   %-28s %9.1f%% %9.1f%% %8s\n' "$ver" "$conf" "$obs" "$cnt"
		jq -r --arg v "$ver" '.ok as $ok | .ids | to_entries[] | select(.key | startswith($v + " "))
			| "\(.key | sub("^[^ ]+ "; ""))\t\(if $ok > 0 then (.value * 1000 / $ok | round) / 10 else 0 end)\t\(.value)"' <<<"$json" |
			while IFS=$'\t' read -r pod pobs pcnt; do
				printf '     %-26s %10s %9.1f%% %8s\n' "$pod" "" "$pobs" "$pcnt"
			done
		if ! awk -v c="$conf" -v o="$obs" -v t="$TOL" 'BEGIN { d = c - o; if (d < 0) d = -d; exit !(d <= t) }'; then
			echo "   !! $ver observed $obs% is more than $TOL points from configured $conf%"
			FAILED=1
		fi
	done
	# Anything that is not one of the four pods means the hook sent traffic astray.
	local stray
	stray=$(jq -r '[.ids | keys[] | select(test("^v[12] ") | not)] | join(", ")' <<<"$json")
	if [[ -n $stray ]]; then
		echo "   !! unexpected replies from: $stray"
		FAILED=1
	fi
}

json=$(run_client) || die "ks_load failed or took longer than $CLIENT_TIMEOUT s"
report "$json" "split from the example route ($(configured | tr ' ' /))"

# --- live weight change ------------------------------------------------------

# Write the new route next to the config dir (same filesystem) and rename it
# in: the agent never sees a half-written file, and the temp file never
# appears in the watched directory to trigger an apply of its own.
prev=$(applied_count)
sed -e 's/^\( *weight:\) 25$/\1 50/' -e 's/^\( *weight:\) 75$/\1 50/' "$CFG/httproute.yaml" >"$TMP/httproute.yaml.new"
grep -c 'weight: 50$' "$TMP/httproute.yaml.new" | grep -qx 2 || die "could not rewrite the weights to 50/50"
t0=$(date +%s%N)
mv "$TMP/httproute.yaml.new" "$CFG/httproute.yaml"
wait_applied "$prev"
t1=$(date +%s%N)
echo
log "weights changed to 50/50 by renaming a new httproute.yaml into place; applied after $(((t1 - t0) / 1000000)) ms"

json=$(run_client) || die "ks_load failed or took longer than $CLIENT_TIMEOUT s"
report "$json" "split after the live change ($(configured | tr ' ' /))"

# --- health: a pod dies, then a whole version ---------------------------------

prev=$(applied_count)
cp "$EXAMPLE/httproute.yaml" "$TMP/httproute.yaml.new"
mv "$TMP/httproute.yaml.new" "$CFG/httproute.yaml"
wait_applied "$prev"
echo
log "weights back to 25/75"

# PODS order is v1a v1b v2a v2b. Killing the server leaves the pod's netns up,
# so connects get a RST: what a crashed container looks like from outside.
kill "${SERVER_PIDS[2]}" && wait "${SERVER_PIDS[2]}" 2>/dev/null || true
log "killed pod checkout-v2-84c7b-ccccc (10.244.2.11); passive checks eject it after 3 failed connects"
json=$(run_client) || die "ks_load failed or took longer than $CLIENT_TIMEOUT s"
report "$json" "one v2 pod killed" 25 75 3
dead=$(jq -r '.ids["v2 checkout-v2-84c7b-ccccc"] // 0' <<<"$json")
echo "   killed pod checkout-v2-84c7b-ccccc answered $dead checkouts"
((dead == 0)) || FAILED=1

degraded_before=$(grep -c 'msg="degraded' "$AGENT_LOG" || true)
kill "${SERVER_PIDS[3]}" && wait "${SERVER_PIDS[3]}" 2>/dev/null || true
t0=$(date +%s%N)
log "killed pod checkout-v2-84c7b-ddddd too: all of v2 is down; waiting for the active checks (5 s x 2)"
deadline=$((SECONDS + 30))
until (($(grep -c 'msg="degraded' "$AGENT_LOG" || true) > degraded_before)); do
	((SECONDS < deadline)) || die "v2 was not taken out within 30 s"
	sleep 0.1
done
log "v2 marked unhealthy and its weight shifted after $((($(date +%s%N) - t0) / 1000000)) ms"
json=$(run_client) || die "ks_load failed or took longer than $CLIENT_TIMEOUT s"
report "$json" "all of v2 killed: its 75% shifts to v1" 100 0 0

echo
log "ksplit status --pin-dir $PIN (counters cover every run)"
"$KSPLIT" status --pin-dir "$PIN" | sed 's/^/    /' || { echo "   !! ksplit status failed"; FAILED=1; }
echo

((FAILED == 0)) || die "observed split does not match the configuration (or errors occurred)"
log "PASS: observed shares within $TOL points of the expected ones at every step"
