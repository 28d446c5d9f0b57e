#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# gen_iptables.sh N E OUT [CTL_WA CTL_WB]
# Writes OUT, an iptables-restore input (nat table) in kube-proxy's iptables
# shape for the control service plus N ClusterIP services:
#   OUTPUT -> KUBE-SERVICES: one "-d VIP/32 -p tcp --dport 80 -j KUBE-SVC-<hash>"
#     per service, control first, the measured service (i = N) last, then the
#     nodeports jump, as kube-proxy orders them;
#   KUBE-SVC-*: the masquerade-mark rule, then one "-m statistic --mode random
#     --probability p -j KUBE-SEP-*" per endpoint (the last one unconditional);
#   KUBE-SEP-*: "-s EP/32 -j KUBE-MARK-MASQ" and "-p tcp -j DNAT --to EP:8080".
# kube-proxy gives each endpoint the same share; to split 1:3 like the other
# mechanisms each group-b endpoint gets 3x the probability mass
# (p_j = w_j / the weight of endpoints j..m). Services 1..N-1 get E endpoints
# (E/2 per group), the measured and control services 10.
# FILL=own (default): every service has its own KUBE-SVC/KUBE-SEP chains.
# FILL=shared: services 1..N-1 keep their own KUBE-SERVICES rule (the linear
#   part a packet walks) but jump to one shared KUBE-SVC chain, so that 50k
#   services restore in seconds; the measured service keeps the full shape.
# OUT.svc holds the control service's KUBE-SVC chain name.
set -euo pipefail
N=$1 E=$2 OUT=$3 WA=${4:-1} WB=${5:-0} FILL=${FILL:-own}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
awk -v FILL="$FILL" -v N="$N" -v E="$E" -v WA="$WA" -v WB="$WB" -v O="$OUT" "$(cat "$HERE/lib/gen_common.awk")"'
function svc(i, wa, wb,   n, k, j, m, name, svch, rem, w, addr, seps) {
	n = neps(i); name = "bench/" svcname(i) ":http"
	svch = "KUBE-SVC-" hash16(name)
	if (i == 0) print svch > (O ".svc")
	m = 0
	for (k = 1; k <= n; k++) if (wa > 0) { m++; addr[m] = ep("a", k); w[m] = wa }
	for (k = 1; k <= n; k++) if (wb > 0) { m++; addr[m] = ep("b", k); w[m] = wb }
	print ":" svch " - [0:0]" > CH
	printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j %s\n", vipof(i), name, svch > SV
	printf "-A %s ! -s 10.244.0.0/16 -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n", svch, vipof(i), name > BD
	rem = 0
	for (j = 1; j <= m; j++) rem += w[j]
	for (j = 1; j <= m; j++) {
		seps = "KUBE-SEP-" hash16(name ":" addr[j])
		print ":" seps " - [0:0]" > CH
		if (j < m)
			printf "-A %s -m comment --comment \"%s -> %s:8080\" -m statistic --mode random --probability %.11f -j %s\n", svch, name, addr[j], w[j] / rem, seps > BD
		else
			printf "-A %s -m comment --comment \"%s -> %s:8080\" -j %s\n", svch, name, addr[j], seps > BD
		rem -= w[j]
		printf "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", seps, addr[j], name > BD
		printf "-A %s -p tcp -m comment --comment \"%s\" -m tcp -j DNAT --to-destination %s:8080\n", seps, name, addr[j] > BD
	}
}
BEGIN {
	CH = O ".ch"; SV = O ".sv"; BD = O ".bd"
	print "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]" > CH
	print ":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]" > CH
	print "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" > SV
	print "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING" > SV
	print "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" > SV
	print "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" > SV
	print "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0" > SV
	print "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully" > SV
	svc(0, WA, WB)
	if (FILL == "shared" && N > 1) { svc(1, 1, 3); for (i = 2; i < N; i++) printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/%s:http cluster IP\" -m tcp --dport 80 -j %s\n", vipof(i), svcname(i), "KUBE-SVC-" hash16("bench/s1:http") > SV; if (N > 1) svc(N, 1, 3) }
	else for (i = 1; i <= N; i++) svc(i, 1, 3)
	print "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" > SV
	print "COMMIT" > BD
}'
cat "$OUT.ch" "$OUT.sv" "$OUT.bd" >"$OUT"
rm -f "$OUT.ch" "$OUT.sv" "$OUT.bd"
