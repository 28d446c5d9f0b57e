#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Time of one /metrics scrape of a running agent at N services (default
# 10,000, bench/gen_ksplit.sh: 2 backendRefs and 10 endpoint slots each), and
# whether scrapes leave memory behind: the agent's RSS after a warm-up scrape
# and again after SCRAPES more. Wall time is curl's (read, render and
# transfer); the agent's CPU per scrape is also given, as it does not grow
# with the load of a shared machine as wall time does. A benchmark, not a test: the numbers depend
# on the machine and its load, which is printed with them. Root (it runs the
# agent on a scratch cgroup and pin dir, and removes both).
#   bash bench/metrics_scrape.sh            # N=10000 SCRAPES=50
#   ENDPOINTS=1 bash bench/metrics_scrape.sh   # with --metrics-endpoints
set -euo pipefail
cd "$(dirname "$0")/.."

KSPLIT=${KSPLIT:-build/ksplit}
N=${N:-10000}
SCRAPES=${SCRAPES:-50}
. "$(dirname "${BASH_SOURCE[0]}")/lib/scratch.sh"
scratch_init mscrape

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$AGENT/status"; }
# utime + stime of the agent in clock ticks: CPU per scrape does not depend on the load as wall time does.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
scrape() { curl -s -o "$TMP/out.txt" -w '%{time_total}\n' "http://$ADDR/metrics"; }

bash bench/gen_ksplit.sh "$N" "$TMP/cfg" >/dev/null
mkdir "$CG"
"$KSPLIT" run --config "$TMP/cfg" --cgroup "$CG" --pin-dir "$PIN" --no-wait \
	--metrics-addr 127.0.0.1:0 ${ENDPOINTS:+--metrics-endpoints} 2>"$TMP/agent.log" &
AGENT=$!
for ((i = 0; i < 1200; i++)); do
	grep -q 'config applied' "$TMP/agent.log" && break
	kill -0 "$AGENT" 2>/dev/null || { cat "$TMP/agent.log" >&2; exit 1; }
	sleep 0.1
done
ADDR=$(sed -n 's/.*serving \/metrics.* metrics_addr=\([^ ]*\).*/\1/p' "$TMP/agent.log" | head -n1)

echo "# $(uname -r), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# services=$N endpoints_series=${ENDPOINTS:-0} agent=$ADDR"
scrape >/dev/null
rss0=$(rss_kb)
cpu0=$(cpu_ticks)
for ((i = 0; i < SCRAPES; i++)); do scrape; done | sort -n >"$TMP/times"
cpu1=$(cpu_ticks)
rss1=$(rss_kb)
awk -v n="$SCRAPES" '{ t[NR] = $1 * 1000 } END {
	printf "scrape ms: p50 %.1f  p90 %.1f  max %.1f  (%d scrapes)\n", t[int(n * 0.5 + 0.5)], t[int(n * 0.9 + 0.5)], t[n], n }' "$TMP/times"
awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$SCRAPES" \
	'BEGIN { printf "agent CPU per scrape: %.1f ms (user+sys)\n", t * 1000 / hz / n }'
echo "exposition: $(wc -c <"$TMP/out.txt") bytes, $(grep -vc '^#' "$TMP/out.txt") samples"
echo "agent RSS kB: after 1 scrape $rss0, after $((SCRAPES + 1)) scrapes $rss1 (delta $((rss1 - rss0)))"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
