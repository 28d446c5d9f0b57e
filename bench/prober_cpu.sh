#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# CPU of the active health checker: 5,000 endpoints checked every 5 s for
# SECONDS_RUN seconds (default 60), for each check kind in KINDS. Runs
# selftests/kern/test_prober_scale (root: it makes its own network namespace,
# serves every 127.1.x.y:8080 from one wildcard listener, and removes it all).
# https (HTTP/1.1 over TLS) and https2 (h2 via ALPN) are served by haproxy on
# 8443 with a throwaway self-signed certificate (scripts/deps.sh --bench).
# A kind that fails is reported and the others still run; the exit status is
# then nonzero.
# Usage: bench/prober_cpu.sh   (KINDS="http tcp https https2 h2c" SECONDS_RUN=60 N=5000)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build}
BIN=$OUT/selftests/kern/test_prober_scale
KINDS=${KINDS:-http tcp https https2 h2c}
SECONDS_RUN=${SECONDS_RUN:-60}
N=${N:-5000}

make -s OUT="$OUT" "$BIN"

failed=""
for k in $KINDS; do
	rc=0
	KS_SCALE_KIND=$k KS_SCALE_N=$N KS_SCALE_SECONDS=$SECONDS_RUN KS_SCALE_INTERVAL_MS=5000 \
		timeout $((SECONDS_RUN + 120)) "$BIN" 2>/dev/null | grep -E '^(prober scale|  )' || rc=$?
	if [ "$rc" != 0 ]; then
		echo "prober scale: kind=$k FAILED (exit $rc)"
		failed="$failed $k"
	fi
done
if [ -n "$failed" ]; then
	echo "prober scale: failed kinds:$failed" >&2
	exit 1
fi
