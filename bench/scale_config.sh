#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Wall time of the agent's config path at sizes that used to stall its event
# loop (issue "Reliability", item 5). Not part of `make test`: a benchmark is
# not a test (selftests/unit/test_stalls.c checks the results).
#
#   bash bench/scale_config.sh                       # build/ksplit
#   BEFORE=/tmp/ksplit-old bash bench/scale_config.sh  # and an older binary beside it
#
# Cases (each `ksplit validate FILE`, except plan):
#   keys40k    one mapping of 40,000 keys plus one duplicate
#   keys500k   one mapping of 499,990 keys plus one duplicate (a file holds at
#              most 1,000,000 YAML nodes, so this is about the largest one)
#   eps200k    one Service with 200,000 endpoints (200 slices of 1,000)
#   plan100k   root only: `ksplit run` on a scratch cgroup with 100,000
#              endpoints, then one endpoint removed; the time is the agent's
#              own "config applied ... ms=" of the second apply
# TIMEOUT (s, default 300) caps each run; a capped run prints ">TIMEOUT".
set -euo pipefail

KSPLIT=${KSPLIT:-build/ksplit}
BEFORE=${BEFORE:-}
TIMEOUT=${TIMEOUT:-300}
CASES=${CASES:-"keys40k keys500k eps200k plan100k"}
. "$(dirname "${BASH_SOURCE[0]}")/lib/scratch.sh"
scratch_init scale

# gen_keys N FILE: a ConfigMap whose data has keys k0..k(N-1), then k123 again.
gen_keys() {
	awk -v n="$1" 'BEGIN {
		print "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:"
		for (i = 0; i < n; i++) printf "  k%d: v\n", i
		print "  k123: again"
	}' >"$2"
}

# gen_eps N FILE: Gateway 10.0.0.1:80 -> Service a -> N endpoints 10.x.y.z:8080.
gen_eps() {
	awk -v n="$1" 'BEGIN {
		print "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: app}"
		print "spec:\n  gatewayClassName: ksplit\n  addresses: [{value: 10.0.0.1}]"
		print "  listeners: [{name: http, port: 80, protocol: HTTP}]\n---"
		print "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: app}"
		print "spec:\n  clusterIP: 10.96.0.10\n  ports: [{name: web, port: 80}]\n---"
		print "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: app}"
		print "spec:\n  parentRefs: [{name: gw}]\n  rules:\n    - backendRefs: [{name: a, port: 80}]"
		for (i = 0; i < n; i++) {
			if (i % 1000 == 0) {
				print "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice"
				printf "metadata: {name: a-%d, namespace: app, labels: {kubernetes.io/service-name: a}}\n", i / 1000
				print "addressType: IPv4\nports: [{name: web, port: 8080}]\nendpoints:"
			}
			a = i + 1
			printf "  - addresses: [10.%d.%d.%d]\n", int(a / 65536), int(a / 256) % 256, a % 256
		}
	}' >"$2"
}

# timed BIN FILE: seconds of `BIN validate FILE`, or ">TIMEOUT".
timed() {
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	timeout "$TIMEOUT" "$1" validate "$2" >/dev/null 2>&1 || rc=$?
	t1=$(date +%s.%N)
	((rc == 124)) && { echo ">$TIMEOUT"; return; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

# applied_ms LOG K: the ms= of the K-th "config applied" line, waiting up to TIMEOUT s.
applied_ms() {
	local i
	for ((i = 0; i < TIMEOUT * 10; i++)); do
		local ms
		ms=$(grep 'config applied' "$1" | sed -n "${2}p" | sed 's/.* ms=\([0-9]*\).*/\1/')
		[[ -n $ms ]] && { echo "$ms"; return; }
		kill -0 "$AGENT" 2>/dev/null || { echo "agent-exited"; return; }
		sleep 0.1
	done
	echo ">${TIMEOUT}000"
}

# plan BIN: ms of the apply that removes one of 100,000 endpoints.
plan() {
	local dir=$TMP/cfg log=$TMP/agent.log ms
	rm -rf "$dir" && mkdir -p "$dir"
	mkdir "$CG"
	gen_eps 100000 "$dir/a.yaml"
	gen_eps 99999 "$TMP/next.yaml"
	"$1" run --config "$dir" --cgroup "$CG" --pin-dir "$PIN" --max-endpoints 262144 \
		--no-destroy --no-wait 2>"$log" &
	AGENT=$!
	ms=$(applied_ms "$log" 1)
	if [[ $ms =~ ^[0-9]+$ ]]; then
		mv "$TMP/next.yaml" "$dir/a.yaml"
		ms=$(applied_ms "$log" 2)
		grep 'config applied' "$log" | sed -n 2p | sed 's/^/# /' >&2
		[[ $ms =~ ^[0-9]+$ ]] && ms=$(awk -v m="$ms" 'BEGIN { printf "%.2f", m / 1000 }')
	fi
	scratch_stop_agent
	echo "$ms"
}

run_case() {	# run_case CASE BIN
	case $1 in
	keys40k) timed "$2" "$TMP/keys40k.yaml" ;;
	keys500k) timed "$2" "$TMP/keys500k.yaml" ;;
	eps200k) timed "$2" "$TMP/eps200k.yaml" ;;
	plan100k)
		if ((EUID)); then echo "skipped (not root)"; else plan "$2"; fi ;;
	esac
}

gen_keys 40000 "$TMP/keys40k.yaml"
gen_keys 499990 "$TMP/keys500k.yaml"
gen_eps 200000 "$TMP/eps200k.yaml"

echo "# $(uname -r), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %12s %12s\n' case "after (s)" "${BEFORE:+before (s)}"
for c in $CASES; do
	after=$(run_case "$c" "$KSPLIT")
	before=
	[[ -n $BEFORE ]] && before=$(run_case "$c" "$BEFORE")
	printf '%-10s %12s %12s\n' "$c" "$after" "$before"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
