#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# gen_haproxy.sh N E OUT [CTL_WA CTL_WB]
# Writes OUT, an haproxy.cfg: TCP mode, one "listen" per service bound to its
# VIP:80 (the bench netns routes 10.95.0.0/16 and 10.96.0.0/12 to lo, so
# every VIP is local), balance roundrobin over weighted servers (group a
# weight 1, group b weight 3), one thread (nbthread 1), no health checks, no
# logging. The measured service (i = N) and the control service have 10
# servers; services 1..N-1 get E/2 per group (E=0: a single server).
# E<0: services 1..N-1 are one listener on 0.0.0.0:80 instead (the kernel
# prefers the measured VIP's own listener): one fd per service does not fit
# this machine's fd limit at N = 50,000, and haproxy's per-connection work
# does not depend on how many listeners it has.
# The control service sits in "listen ctl" (10.95.0.1:80).
set -euo pipefail
N=$1 E=$2 OUT=$3 WA=${4:-1} WB=${5:-0}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
awk -v SOCK="$OUT.sock" -v N="$N" -v E="$E" -v WA="$WA" -v WB="$WB" "$(cat "$HERE/lib/gen_common.awk")"'
function lst(i, wa, wb,   n, k) {
	printf "listen %s\n\tbind %s:80\n", svcname(i), vipof(i)
	if (E <= 0 && i != 0 && i != N) { printf "\tserver a1 %s:8080\n", ep("a", 1); return }
	n = neps(i)
	for (k = 1; k <= n; k++) printf "\tserver a%d %s:8080 weight %d\n", k, ep("a", k), wa
	for (k = 1; k <= n; k++) printf "\tserver b%d %s:8080 weight %d\n", k, ep("b", k), wb
}
BEGIN {
	print "global\n\tnbthread 1\n\tmaxconn 2000\n\tstats socket \"" SOCK "\" level admin\n"
	print "defaults\n\tmode tcp\n\tbalance roundrobin\n\ttimeout connect 2s\n\ttimeout client 10s\n\ttimeout server 10s\n"
	lst(0, WA, WB)
	if (E < 0 && N > 2) {
		print "listen fillers\n\tbind 0.0.0.0:80\n\tserver a1 " ep("a", 1) ":8080 weight 1\n\tserver b1 " ep("b", 1) ":8080 weight 3"
		lst(N, 1, 3)
	} else
		for (i = 1; i <= N; i++) lst(i, 1, 3)
}' >"$OUT"
