#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# gen_nft.sh N E OUT [CTL_WA CTL_WB]
# Writes OUT, an `nft -f` input in the shape of kube-proxy's nftables mode
# (table ip kube-proxy): a verdict map service-ips keyed by
# "daddr . l4proto . dport" that the nat output hook jumps through, one
# service-* chain per service ending in "numgen random mod M vmap {...}",
# and one endpoint-* chain per endpoint doing the DNAT. The lookup is a hash:
# its cost should not grow with N. Weights 1:3 are slots in the numgen map
# (each group-b endpoint owns 3 of M = 20 slots).
# Written in block syntax: nft 1.0.6 needs minutes for the same ruleset as
# one "add rule" command per line (what knftables emits), see bench/README.md.
# Services 1..N-1 get E endpoints (E/2 per group), the measured and control 10.
# FILL=own (default): every service has its own chains.
# FILL=shared: the map still holds N elements, but services 1..N-1 all goto
#   service 1's chain (nft 1.0.6 takes minutes to load 100k chains);
#   the measured service keeps the full shape.
# OUT.svc holds the control service's chain name.
set -euo pipefail
N=$1 E=$2 OUT=$3 WA=${4:-1} WB=${5:-0} FILL=${FILL:-own}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
awk -v FILL="$FILL" -v N="$N" -v E="$E" -v WA="$WA" -v WB="$WB" -v O="$OUT" "$(cat "$HERE/lib/gen_common.awk")"'
function chname(i) { return "service-" substr(hash16("bench/" svcname(i)), 1, 8) "-" svcname(i) }
function svcchain(i, wa, wb,   n, k, j, m, name, ch, addr, w, slot, s, sep, e) {
	n = neps(i); ch = chname(i)
	m = 0
	for (k = 1; k <= n; k++) if (wa > 0) { m++; addr[m] = ep("a", k); w[m] = wa }
	for (k = 1; k <= n; k++) if (wb > 0) { m++; addr[m] = ep("b", k); w[m] = wb }
	for (j = 1; j <= m; j++) {
		e = "endpoint-" substr(hash16(svcname(i) "__" addr[j]), 1, 8) "-" svcname(i) "__" addr[j] "-8080"
		printf "\tchain %s {\n\t\tip saddr %s jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to %s:8080\n\t}\n", e, addr[j], addr[j]
		en[j] = e
	}
	printf "\tchain %s {\n\t\tip daddr %s tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\t\tnumgen random mod ", ch, vipof(i)
	slot = 0
	for (j = 1; j <= m; j++) slot += w[j]
	printf "%d vmap { ", slot
	slot = 0; sep = ""
	for (j = 1; j <= m; j++) for (s = 0; s < w[j]; s++) { printf "%s%d : goto %s", sep, slot, en[j]; sep = ", "; slot++ }
	printf " }\n\t}\n"
}
BEGIN {
	print "table ip kube-proxy {\n\tcomment \"rules for kube-proxy\""
	print "\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark or 0x4000\n\t}"
	print "\tchain masquerading {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark and 0x4000 == 0 return\n\t\tmeta mark set meta mark xor 0x4000\n\t\tmasquerade fully-random\n\t}"
	svcchain(0, WA, WB)
	print chname(0) > (O ".svc")
	for (i = 1; i <= N; i++) if (FILL != "shared" || i == 1 || i == N) svcchain(i, 1, 3)
	print "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\""
	printf "\t\telements = { %s . tcp . 80 : goto %s", vipof(0), chname(0)
	for (i = 1; i <= N; i++) printf ",\n\t\t\t%s . tcp . 80 : goto %s", vipof(i), (FILL == "shared" && i > 1 && i < N) ? chname(1) : chname(i)
	print " }\n\t}"
	print "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}"
	print "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}"
	print "}"
}' >"$OUT"
