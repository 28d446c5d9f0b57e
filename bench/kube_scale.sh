#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The Kubernetes API source at scale (issue "Kubernetes API source",
# Performance): N mesh Services, each with a 10-endpoint EndpointSlice and an
# HTTPRoute whose parent is the Service, served by the stand-in API server
# (selftests/apiserver). Measures, for `ksplit run --kubeconfig`:
#   start -> first "config applied" (and how long after the lists arrived),
#   the agent's RSS after it,
#   one EndpointSlice change -> "config applied" (p50, p99 of ROUNDS), also
#     from the agent's own log: event -> maps written, event -> apply returned,
#   one route weight edit -> "config applied".
# Not part of `make test`: a benchmark is not a test. Root (a scratch cgroup
# and pin dir, removed on every exit path).
#   bash bench/kube_scale.sh            # N=50000
#   N=10000 ROUNDS=10 bash bench/kube_scale.sh
set -euo pipefail

KSPLIT=${KSPLIT:-build/ksplit}
APISERVER=${APISERVER:-build/selftests/apiserver/ks-apiserver}
N=${N:-50000}
ROUNDS=${ROUNDS:-20}
. "$(dirname "${BASH_SOURCE[0]}")/lib/scratch.sh"
scratch_init kube

now_ms() { date +%s%3N; }

"$APISERVER" --listen 127.0.0.1:0 >"$TMP/srv.out" 2>"$TMP/srv.err" &
SCRATCH_PIDS+=($!)
SRV=$!
for _ in $(seq 100); do grep -q listening "$TMP/srv.out" && break; sleep 0.05; done
BASE=$(sed -n 's/^listening //p' "$TMP/srv.out")
[[ -n $BASE ]] || { echo "ks-apiserver did not start" >&2; exit 1; }

# One /_ksplit/load request per 2,000 objects: Service, EndpointSlice, HTTPRoute for each i.
gen() {
	awk -v from="$1" -v to="$2" 'BEGIN {
		printf "{\"items\":["
		for (i = from; i < to; i++) {
			ip = sprintf("10.%d.%d.%d", 96 + int(i / 65536), int(i / 256) % 256, i % 256)
			if (i > from) printf ","
			printf "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s%d\",\"namespace\":\"bench\"},\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}},", i, ip
			printf "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":\"s%d-x\",\"namespace\":\"bench\",\"labels\":{\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080}],\"endpoints\":[", i, i
			for (k = 1; k <= 10; k++)
				printf "%s{\"addresses\":[\"10.%d.%d.%d\"]}", (k > 1 ? "," : ""), 128 + int(i / 6554) % 64, int(i * 10 / 256) % 256, (i * 10 + k) % 256
			printf "]},"
			printf "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r%d\",\"namespace\":\"bench\"},\"spec\":{\"parentRefs\":[{\"group\":\"\",\"kind\":\"Service\",\"name\":\"s%d\",\"port\":80}],\"rules\":[{\"backendRefs\":[{\"name\":\"s%d\",\"port\":80}]}]}}", i, i, i
		}
		printf "]}"
	}'
}
t0=$(now_ms)
for ((i = 0; i < N; i += 2000)); do
	j=$((i + 2000 > N ? N : i + 2000))
	gen "$i" "$j" | curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
		--data-binary @- "$BASE/_ksplit/load"
done
echo "loaded $((3 * N)) objects into the stand-in in $(($(now_ms) - t0)) ms"

cat >"$TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: b
contexts: [{name: b, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: '$BASE'}}]
users: [{name: u, user: {}}]
EOF
mkdir -p "$CG"
t0=$(now_ms)
"$KSPLIT" run --kubeconfig "$TMP/kubeconfig" --cgroup "$CG" --pin-dir "$PIN" \
	--max-services $((N + 1024)) --max-endpoints $((10 * N + 1024)) --metrics-addr none ${VERBOSE:+-v} \
	2>"$TMP/agent.log" &
AGENT=$!
applied() { grep -c 'msg="config applied"' "$TMP/agent.log" || true; }
until (($(applied) >= 1)); do
	kill -0 "$AGENT" || { cat "$TMP/agent.log" >&2; exit 1; }
	sleep 0.02
done
t_applied=$(now_ms)
lists=$(awk -F'ts=' '/first lists received/ { print substr($2, 1, 24); exit }' "$TMP/agent.log")
echo "start -> first apply: $((t_applied - t0)) ms (lists received at $lists)"
grep -E 'first lists received|config applied' "$TMP/agent.log" | head -2
echo "agent RSS after the first apply: $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' /proc/$AGENT/status)," \
	"peak $(awk '/VmHWM/ { print $2 / 1024 " MiB" }' /proc/$AGENT/status)"
echo "stand-in RSS: $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' /proc/$SRV/status)"

# One EndpointSlice changed: the time until the agent says the apply is done.
lat=()
for ((r = 0; r < ROUNDS; r++)); do
	i=$((RANDOM % N))
	before=$(applied)
	body=$(gen "$i" "$((i + 1))" | sed 's/^{"items":\[//; s/\]}$//' |
		awk -v r="$r" 'BEGIN { RS = "},{\"apiVersion\":\"discovery" } NR == 2 {
			sub(/\},\{"apiVersion":"gateway.*/, "")
			sub(/"\]\}\]$/, "")
			print "{\"apiVersion\":\"discovery" $0 "\"]},{\"addresses\":[\"10.250." r ".1\"]}]}" }')
	t=$(now_ms)
	curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' --data-binary "$body" \
		"$BASE/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices/s$i-x"
	until (($(applied) > before)); do sleep 0.001; done
	lat+=($(($(now_ms) - t)))
done
printf '%s\n' "${lat[@]}" | sort -n | awk '{ v[NR] = $1 } END {
	printf "one EndpointSlice change -> applied: p50 %d ms, p99 %d ms, max %d ms (%d rounds)\n",
		v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)], v[NR], NR }'
# The same from the agent's own clock, without this script's forks and polling:
# from the watch event's arrival to the last map write (in force for new
# connects) and to the apply's return (grace period passed).
for f in event_publish_ms event_ms; do
	grep 'msg="config applied"' "$TMP/agent.log" | tail -n "$ROUNDS" | sed -n "s/.* $f=\([0-9.]*\).*/\1/p" |
		sort -n | awk -v f="$f" '{ v[NR] = $1 } END { if (NR)
		printf "  agent %s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d rounds)\n", f,
			v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)], v[NR], NR }'
done

before=$(applied)
t=$(now_ms)
curl -sf -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' \
	--data-binary '{"spec":{"rules":[{"backendRefs":[{"name":"s0","port":80,"weight":7}]}]}}' \
	"$BASE/apis/gateway.networking.k8s.io/v1/namespaces/bench/httproutes/r0"
until (($(applied) > before)); do sleep 0.001; done
echo "one route weight edit -> applied: $(($(now_ms) - t)) ms"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
