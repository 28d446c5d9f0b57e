#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# gen_ksplit.sh N DIR [SHAPE] [CTL_WA CTL_WB]
# Writes ksplit manifests for N mesh Services (GAMMA: an HTTPRoute whose parent
# is a ClusterIP Service) into DIR, 1000 services per file (the agent refuses
# files over 16 MiB). Every route weights two backend Services 1:3, each with
# 5 ready pods (10.244.1.1-5 and 10.244.1.6-10), so every service owns 10
# endpoint slots in the maps.
#   SHAPE=shared (default): the N routes share the two backend Services and
#     their EndpointSlices: N Services + N HTTPRoutes + 2 + 2 objects.
#   SHAPE=own: each service has its own two backend Services and slices
#     (what a real cluster looks like): 3N Services, 2N slices, N routes.
#     The agent's manifest checks are O(objects^2) today, so this shape is only
#     used for the control-plane scaling table (see bench/README.md).
# The control service (10.95.0.1:80, weights CTL_WA:CTL_WB, default 1:0) lives
# alone in DIR/ctl.yaml so that a weight change rewrites one small file.
set -euo pipefail
N=$1 DIR=$2 SHAPE=${3:-shared} WA=${4:-1} WB=${5:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$DIR"
prog='
function svc(name, ip) {
	printf "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: bench}\nspec: {type: ClusterIP, clusterIP: %s, ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]}\n", name, ip > out
}
function be(name, g,   k) {
	printf "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: bench}\nspec: {type: ClusterIP, clusterIP: None, ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]}\n", name > out
	printf "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: %s-x, namespace: bench, labels: {kubernetes.io/service-name: %s}}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\nendpoints: [", name, name > out
	for (k = 1; k <= 5; k++) printf "%s{addresses: [%s], targetRef: {kind: Pod, name: p%s%d}}", (k > 1 ? ", " : ""), ep(g, k), g, k > out
	printf "]\n" > out
}
function route(name, ba, bb, wa, wb) {
	printf "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: %s, namespace: bench}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: %s, port: 80}]\n  rules: [{backendRefs: [{name: %s, port: 80, weight: %d}, {name: %s, port: 80, weight: %d}]}]\n", name, name, ba, wa, bb, wb > out
}
function one(i, wa, wb,   n) {
	n = svcname(i)
	svc(n, vipof(i))
	if (SHAPE == "own") { be(n "-a", "a"); be(n "-b", "b"); route(n, n "-a", n "-b", wa, wb) }
	else route(n, "pods-a", "pods-b", wa, wb)
}
'
rm -f "$DIR"/svc-*.yaml
awk -v N="$N" -v E=10 -v D="$DIR" -v SHAPE="$SHAPE" "$(cat "$HERE/lib/gen_common.awk")$prog"'
BEGIN {
	if (SHAPE != "own") { out = D "/svc-pods.yaml"; be("pods-a", "a"); be("pods-b", "b"); close(out); out = "" }
	for (i = 1; i <= N; i++) { f = sprintf("%s/svc-%03d.yaml", D, int((i - 1) / 1000)); if (f != out) { if (out) close(out); out = f }; one(i, 1, 3) }
}'
awk -v N="$N" -v E=10 -v SHAPE="$SHAPE" -v WA="$WA" -v WB="$WB" -v out="$DIR/.ctl.yaml.tmp" "$(cat "$HERE/lib/gen_common.awk")$prog"'
BEGIN { one(0, WA, WB) }'
mv "$DIR/.ctl.yaml.tmp" "$DIR/ctl.yaml"
