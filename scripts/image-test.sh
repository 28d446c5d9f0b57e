#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make image-test` (root): the image built by `make image`, run by podman the
# way the DaemonSet runs it, against a test cgroup and a test netns.
#
#   netns ksi-*   the "node": pods 10.244.1.11/.12 (v1) and 10.244.2.11/.12
#                 (v2) are ks_servers on addresses of its lo; the agent's
#                 container joins it (podman --network ns:PATH: the node's
#                 netns, as hostNetwork does, but this test's own, so that the
#                 health checks reach the pods and the host's netns is never
#                 touched); a client in the test cgroup calls the example's
#                 VIP 10.100.50.10:80, which exists nowhere but in the hook.
#   cgroup        $CG2/ksplit-imgtest-*, the only one the agent attaches to.
#   pins          /sys/fs/bpf/ksplit-imgtest-* (bpffs bound in, rshared).
#
# Steps, each a check:
#   1. container A, --privileged --pid=host: applies the example config
#      (bind-mounted read-only at /etc/ksplit/config); /healthz and /readyz
#      answer 200; the observed split is 25/75 within TOL points;
#   2. `podman restart` A while a client loops: the new agent logs "adopted
#      pinned datapath", 0 failed connects over the whole loop;
#   3. A removed and `ksplit down`, container B with --cap-drop=all and only
#      --cap-add=$CAPS (the DaemonSet's set; no --privileged) attaches and
#      pins afresh, the probes answer, the split is 25/75; connections held
#      to v2 are destroyed when v2's endpoints turn not ready; `podman restart` B
#      with a client looping: adopted, 0 failed connects.
# Every exit path removes the containers, the image ref this test made,
# the netns, the cgroup and the pins.
#
# Podman here: storage driver overlay (the kernel has it), cgroup manager
# cgroupfs and events in a file, the defaults podman picks on a machine
# without systemd as PID 1. The OCI runtime is runc, not podman's default
# crun: on a hybrid cgroup host whose cgroup2 mount holds a controller (this
# one's holds hugetlb) crun 1.8 refuses every container with "cgroups in
# hybrid mode not supported, drop all controllers from cgroupv2", even with
# --cgroups=disabled. PODMAN_OPTS replaces the global options (default
# "--runtime runc"; for example add "--storage-driver vfs" where overlay is
# missing).
# Environment: OUT (default build), IMG_N (connects per split check, default
# 10000), IMG_TOL (points, default 2), CAPS (default as the DaemonSet),
# B_OPTS (more podman run options for B, e.g. "--security-opt seccomp=unconfined").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
KSPLIT=$OUT/ksplit
KS_SERVER=$OUT/ks_server
KS_LOAD=$OUT/ks_load
ARCHIVE=$OUT/image/ksplit-image.tar
EXAMPLE=$ROOT/examples/checkout-ab
N=${IMG_N:-10000}
TOL=${IMG_TOL:-2}
CAPS=${CAPS:-SYS_ADMIN,NET_ADMIN,SYS_PTRACE}
VIP=10.100.50.10:80
NOFILE=$(ulimit -Hn)
TIMEOUT=20	# seconds for an agent to apply or adopt
read -r -a podman_opts <<<"${PODMAN_OPTS:---runtime runc}"

# shellcheck source=bpffs.sh
source "$ROOT/scripts/bpffs.sh"

log() { printf '[image-test] %s\n' "$*"; }
die() { printf '[image-test] FAIL: %s\n' "$*" >&2; exit 1; }
pm() { podman "${podman_opts[@]}" "$@"; }

[[ $EUID -eq 0 ]] || die "run as root (netns, cgroup, BPF, podman)"
command -v podman >/dev/null || die "podman missing (run: scripts/deps.sh --image)"
command -v jq >/dev/null || die "jq missing (run: scripts/deps.sh)"
for b in "$KSPLIT" "$KS_SERVER" "$KS_LOAD" "$ARCHIVE"; do
	[[ -e $b ]] || die "$b missing (run: make && make image)"
done

RAND=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
NS=ksi-$RAND
TMP=$(mktemp -d "/tmp/ksplit-imgtest-$RAND.XXXX")
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=
PIN=/sys/fs/bpf/ksplit-imgtest-$RAND
REF=localhost/ksplit-imgtest:$RAND
CTRS=()
SERVER_PIDS=()
LOOP_PID=
HOLDER=
NS_MADE=0

cleanup() {
	local rc=$? c pid
	set +e
	trap - EXIT INT TERM
	[[ -n $LOOP_PID ]] && kill "$LOOP_PID" 2>/dev/null && wait "$LOOP_PID" 2>/dev/null
	[[ -n $HOLDER ]] && kill "$HOLDER" 2>/dev/null && wait "$HOLDER" 2>/dev/null
	for c in "${CTRS[@]}"; do
		[[ -n $c ]] || continue
		if ((rc != 0)); then
			log "container $c log (last 15 lines):"
			pm logs "$c" 2>&1 | tail -n 15 | sed 's/^/    /'
		fi
		pm rm -f -t 5 "$c" >/dev/null 2>&1 || log "podman rm $c failed"
	done
	pm image exists "$REF" 2>/dev/null && { pm rmi "$REF" >/dev/null || log "podman rmi $REF failed"; }
	if [[ -e $PIN ]]; then
		"$KSPLIT" down --pin-dir "$PIN" >/dev/null 2>&1 || log "ksplit down --pin-dir $PIN failed"
		rm -rf "$PIN"
	fi
	for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	((NS_MADE)) && ip netns del "$NS"
	[[ -n $CG && -d $CG ]] && { rmdir "$CG" || log "cannot remove $CG"; }
	bpffs_release
	rm -rf "$TMP"
	if ((rc == 0)); then log "PASS; cleaned up"; else log "cleaned up after failure (exit $rc)"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the image ----------------------------------------------------------------

# `podman load` names an OCI archive after its ref (the version tag alone);
# this test's own name is what it removes, with the image if no other name
# holds it.
loaded=$(pm load -q -i "$ARCHIVE" | sed -n 's/^Loaded image: //p' | tail -n 1)
[[ -n $loaded ]] || die "podman load -i $ARCHIVE printed no image name"
pm tag "$loaded" "$REF"
pm untag "$loaded" "$loaded" 2>/dev/null || true
log "image $REF ($(pm image inspect -f '{{.Size}}' "$REF" | awk '{ printf "%.1f MB", $1 / 1e6 }') unpacked)"

# --- node netns, pods, cgroup, config -----------------------------------------

PODS=(
	"10.244.1.11 v1 checkout-v1-6f8d9-aaaaa"
	"10.244.1.12 v1 checkout-v1-6f8d9-bbbbb"
	"10.244.2.11 v2 checkout-v2-84c7b-ccccc"
	"10.244.2.12 v2 checkout-v2-84c7b-ddddd"
)
ip netns add "$NS"
NS_MADE=1
ip -n "$NS" link set lo up
for p in "${PODS[@]}"; do
	read -r ip ver name <<<"$p"
	grep -q -- "- $ip\$" "$EXAMPLE/endpointslices.yaml" || die "$ip is not in $EXAMPLE/endpointslices.yaml"
	ip -n "$NS" addr add "$ip/32" dev lo
	nsenter --net="/run/netns/$NS" "$KS_SERVER" --listen "$ip:8080" --id "$ver $name" >"$TMP/server-$ip.log" 2>&1 &
	SERVER_PIDS+=($!)
done
for p in "${PODS[@]}"; do
	read -r ip _ <<<"$p"
	for ((i = 0; i < 50; i++)); do grep -qx ready "$TMP/server-$ip.log" && break; sleep 0.1; done
	grep -qx ready "$TMP/server-$ip.log" || die "ks_server $ip did not start: $(cat "$TMP/server-$ip.log")"
done

[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/mounts"
CG=$CG2/ksplit-imgtest-$RAND
mkdir "$CG"
bpffs_mount_if_missing || die "cannot mount bpffs at /sys/fs/bpf"
mkdir "$TMP/config"
cp "$EXAMPLE"/*.yaml "$TMP/config/"

# --- helpers ------------------------------------------------------------------

# start NAME PODMAN-SECURITY-OPTIONS...: the agent as the DaemonSet runs it.
# /proc comes with --pid=host (drain reads /proc/<pid>/ns/net); the cgroup2
# mount is bound at its host path so that --cgroup names the same directory.
# --ulimit: podman's defaults (RLIMIT_NOFILE 1048576, RLIMIT_NPROC its own
# maximum) are above this machine's hard limits and the runtime fails with
# EPERM setting them (so does --ulimit host); the agent gets the shell's hard
# limit of open files and 4096 processes (it runs one thread).
# --read-only without podman's tmpfs on /tmp and /run: the DaemonSet's
# readOnlyRootFilesystem, which adds none either.
start() {
	local name=$1
	shift
	CTRS+=("$name")
	pm run -d --name "$name" "$@" --ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=4096:4096 \
		--read-only --read-only-tmpfs=false --pid=host --network "ns:/run/netns/$NS" \
		--mount "type=bind,src=/sys/fs/bpf,dst=/sys/fs/bpf,bind-propagation=rshared" \
		--mount "type=bind,src=$CG2,dst=$CG2" \
		--mount "type=bind,src=$TMP/config,dst=/etc/ksplit/config,ro=true" \
		"$REF" --config /etc/ksplit/config --cgroup "$CG" --pin-dir "$PIN" >/dev/null
}

# count NAME PATTERN: lines of the container's log holding PATTERN.
count() { pm logs "$1" 2>&1 | grep -c -- "$2" || true; }

# wait_log NAME PATTERN MIN: until the log holds PATTERN more than MIN times.
wait_log() {
	local deadline=$((SECONDS + TIMEOUT))
	while (($(count "$1" "$2") <= $3)); do
		[[ $(pm inspect -f '{{.State.Running}}' "$1") == true ]] || die "container $1 exited"
		((SECONDS < deadline)) || die "no '$2' from container $1 within ${TIMEOUT}s"
		sleep 0.2
	done
}

# in_node CMD...: run in the node netns.
in_node() { nsenter --net="/run/netns/$NS" "$@"; }

# client COUNT: the client joins the test cgroup (the hook only sees it
# there) and the netns; 60 s at most, so that a broken datapath fails the test.
client() {
	sh -c 'echo $$ >"$1/cgroup.procs" && exec timeout 60 nsenter --net="$2" "$3" --target "$4" -n "$5" --http --json --timeout-ms 500' \
		sh "$CG" "/run/netns/$NS" "$KS_LOAD" "$VIP" "$1"
}

# probes: /healthz and /readyz answer 200 on the default metrics address.
probes() {
	local p code
	for p in healthz readyz; do
		code=$(in_node curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:9965/$p") || code=none
		[[ $code == 200 ]] || die "/$p answered $code, want 200"
	done
	log "/healthz and /readyz: 200"
}

# split TITLE: N connects, v1/v2 shares within TOL points of 25/75, no errors.
split() {
	local json v1 v2
	json=$(client "$N") || die "ks_load failed"
	read -r v1 v2 < <(jq -r '[.ids | to_entries[] | {v: (.key | split(" ")[0]), n: .value}]
		| "\(map(select(.v == "v1") | .n) | add // 0) \(map(select(.v == "v2") | .n) | add // 0)"' <<<"$json")
	log "$1: $N connects, $(jq -r .ok <<<"$json") ok, errors $(jq -c .errors <<<"$json"): v1 $v1 v2 $v2" \
		"($(awk -v a="$v1" -v n="$N" 'BEGIN { printf "%.1f/%.1f%%", 100 * a / n, 100 - 100 * a / n }'))"
	[[ $(jq -r .ok <<<"$json") == "$N" ]] || die "$1: failed connects"
	awk -v a="$v1" -v n="$N" -v t="$TOL" 'BEGIN { d = 100 * a / n - 25; if (d < 0) d = -d; exit !(d <= t) }' ||
		die "$1: v1 share is more than $TOL points from 25%"
	((v1 + v2 == N)) || die "$1: replies from something that is neither v1 nor v2"
}

# drain NAME: the capabilities' hardest user. 16 connections are held open
# to the VIP from the test cgroup, then one pod of each version (.11) leaves
# its EndpointSlice: each connection is on one of them with p = 1/2, and
# there is p = 2^-16 that none is. The agent must find the held sockets
# through /proc/<pid>/ns/net, enter their netns and SOCK_DESTROY them. (A
# not-ready endpoint is still listed and keeps its connections: drain only
# cuts what left.) The config is put back afterwards.
drain() {
	local prev destroyed
	sh -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="$2" bash -c "
		for fd in \$(seq 3 18); do eval \"exec \$fd<>/dev/tcp/${3%:*}/${3#*:}\"; done
		echo held; exec sleep 60"' sh "$CG" "/run/netns/$NS" "$VIP" >"$TMP/held" 2>&1 &
	HOLDER=$!
	for ((i = 0; i < 50; i++)); do grep -qx held "$TMP/held" && break; sleep 0.1; done
	grep -qx held "$TMP/held" || die "could not hold 16 connections to $VIP: $(cat "$TMP/held")"
	prev=$(count "$1" 'msg="config applied"')
	# Each "- addresses:" item of the slices is buffered and dropped if it is a .11.
	awk 'function flush() { if (!drop) printf "%s", blk; blk = ""; drop = 0 }
		/^- addresses:/ { flush(); inblk = 1 }
		inblk && /^([^ -]|---)/ { flush(); inblk = 0 }
		inblk { blk = blk $0 "\n"; if ($0 ~ /- 10\.244\.[12]\.11$/) drop = 1; next }
		{ print }
		END { flush() }' "$EXAMPLE/endpointslices.yaml" >"$TMP/eps.yaml"
	mv "$TMP/eps.yaml" "$TMP/config/endpointslices.yaml"
	wait_log "$1" 'msg="config applied"' "$prev"
	destroyed=$(pm logs "$1" 2>&1 | grep 'msg="drained sockets' | tail -n 1)
	log "10.244.1.11 and 10.244.2.11 removed: $(grep -o 'steered=.*' <<<"$destroyed")"
	if ! [[ $destroyed =~ sockets_destroyed=([0-9]+)\ refused=0\ failed=0 ]] || ((BASH_REMATCH[1] == 0)); then
		die "the agent destroyed no socket held to the .11 pods (or some failed): $destroyed"
	fi
	# Any warning about the drain (a capability missing) fails too.
	if pm logs "$1" 2>&1 | grep -E 'level=warn msg="(SOCK_DESTROY|setns|cannot read /proc|drain)'; then
		die "the drain warned (above)"
	fi
	kill "$HOLDER" 2>/dev/null
	wait "$HOLDER" 2>/dev/null || true
	HOLDER=
	prev=$(count "$1" 'msg="config applied"')
	cp "$EXAMPLE/endpointslices.yaml" "$TMP/eps.yaml"
	mv "$TMP/eps.yaml" "$TMP/config/endpointslices.yaml"
	wait_log "$1" 'msg="config applied"' "$prev"
}

# A client that loops until $TMP/stop exists: one JSON line per batch.
loop_start() {
	rm -f "$TMP/stop" "$TMP/loop.jsonl"
	(while [[ ! -e $TMP/stop ]]; do client 200 >>"$TMP/loop.jsonl" || echo '{"ok":0,"ops":-1}' >>"$TMP/loop.jsonl"; done) &
	LOOP_PID=$!
	sleep 0.5
}

# loop_stop TITLE: stop the loop; every connect it made must have succeeded.
loop_stop() {
	local ops ok
	touch "$TMP/stop"
	wait "$LOOP_PID"
	LOOP_PID=
	read -r ops ok < <(jq -s -r '"\(map(.ops) | add) \(map(.ok) | add)"' "$TMP/loop.jsonl")
	log "$1: client looped $(wc -l <"$TMP/loop.jsonl") batches: $ops connects, $((ops - ok)) failed" \
		"$(jq -s -c 'map(.errors // {}) | add' "$TMP/loop.jsonl")"
	((ops > 0 && ok == ops)) || die "$1: failed connects across the restart"
}

# --- 1. privileged: apply, probes, split --------------------------------------

A=ksplit-imgtest-a-$RAND
log "container A: podman run --privileged --pid=host, netns $NS, cgroup $CG, pins $PIN"
start "$A" --privileged
wait_log "$A" 'msg="config applied"' 0
log "A: $(pm logs "$A" 2>&1 | grep -m1 -E 'msg="(attached|adopted)')"
probes
split "A, privileged"

# --- 2. podman restart with a client looping -----------------------------------

loop_start
t0=$(date +%s%N)
pm restart -t 10 "$A" >/dev/null
# The restarted container's log continues the old one: count from there.
wait_log "$A" 'msg="adopted pinned datapath"' 0
wait_log "$A" 'msg="config applied"' 1
log "A restarted: adopted and applied after $((($(date +%s%N) - t0) / 1000000)) ms"
sleep 1
loop_stop "podman restart A"

# --- 3. capabilities only: a fresh attach, then a restart -------------------

# Taken down first, so that B attaches, pins and drains by itself with its
# capabilities rather than only adopting what A made.
pm rm -f -t 10 "$A" >/dev/null
CTRS=("${CTRS[@]/$A/}")
"$KSPLIT" down --pin-dir "$PIN" >/dev/null || die "ksplit down --pin-dir $PIN failed"
B=ksplit-imgtest-b-$RAND
log "container B: --cap-drop=all --cap-add=$CAPS ${B_OPTS:-}(not privileged), fresh pins"
# shellcheck disable=SC2086 # B_OPTS is a list of options
start "$B" --cap-drop=all --cap-add="$CAPS" ${B_OPTS:-}
wait_log "$B" 'msg="config applied"' 0
[[ $(pm inspect -f '{{.HostConfig.Privileged}}' "$B") == false ]] || die "B is privileged"
log "B: effective capabilities $(pm inspect -f '{{.EffectiveCaps}}' "$B");" \
	"$(pm logs "$B" 2>&1 | grep -m1 -E 'msg="(attached|adopted)' | grep -o 'msg="[^"]*"')"
probes
split "B, capabilities only"
drain "$B"

loop_start
pm restart -t 10 "$B" >/dev/null
wait_log "$B" 'msg="adopted pinned datapath"' 0
wait_log "$B" 'msg="config applied"' 1
sleep 1
loop_stop "podman restart B"
