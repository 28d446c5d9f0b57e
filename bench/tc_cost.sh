#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Per-packet cost of the TC programs (root): ROUNDS runs of build/tc_cost
# (BPF_PROG_TEST_RUN, REPEAT >= 1,000,000; see bench/tc_cost.c for what each
# figure is), medians, and each figure less the same-run baseline (a
# program that only returns TC_ACT_OK, measured the same way). The targets
# of issue 13 are on the net figures: non-VIP <= 30 ns, established <= 100
# ns, new flow <= 200 ns.
#
# Environment: OUT (build dir, default build), ROUNDS (5), REPEAT (1000000),
# BEFORE (another build dir, e.g. of the commit before a change: its
# tc_cost runs in the same rounds, right after this build's, and the
# report compares the net figures).
# Writes bench/results/<date>-<host>-tc-cost.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-1000000}
BEFORE=${BEFORE:-}
[[ -z $BEFORE || $BEFORE = /* ]] || BEFORE=$ROOT/$BEFORE

die() { printf '[tc-cost] FAIL: %s\n' "$*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "run as root (BPF)"
[[ -x $OUT/tc_cost ]] || die "$OUT/tc_cost not built (run: make $OUT/tc_cost)"
[[ -z $BEFORE || -x $BEFORE/tc_cost ]] || die "BEFORE=$BEFORE has no tc_cost (make tc_cost there)"

TMP=$(mktemp -d /tmp/ks-tccost-XXXXXX)
PIN=/sys/fs/bpf/kstccost-$$
cleanup() { "$OUT/ksplit" down --pin-dir "$PIN" >/dev/null 2>&1 || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	"$OUT/tc_cost" "$PIN" "$REPEAT" 2>/dev/null >"$TMP/run$r" || die "tc_cost failed (round $r)"
	printf '[tc-cost] round %d: %s\n' "$r" "$(tr '\n' ' ' <"$TMP/run$r")" >&2
	[[ -n $BEFORE ]] || continue
	"$BEFORE/tc_cost" "$PIN" "$REPEAT" 2>/dev/null >"$TMP/before$r" ||
		die "BEFORE's tc_cost failed (round $r)"
	printf '[tc-cost] round %d, BEFORE: %s\n' "$r" "$(tr '\n' ' ' <"$TMP/before$r")" >&2
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { # prefix name -> median over the rounds
	cat "$TMP/$1"* | awk -v k="$2" '$1 == k { print $2 }' | sort -n |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
KEYS="empty_repeat empty_single nonvip_repeat established_repeat established_single
	new_flow_single_table_quarter new_flow_single_table_full chain_empty_quarter chain_empty_full
	new_flow_batch_quarter new_flow_batch_full"
declare -A M B
for k in $KEYS; do
	M[$k]=$(median run "$k")
	[[ -z $BEFORE ]] || B[$k]=$(median before "$k")
done
net() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "met" : "missed" }'; }

mkdir -p "$ROOT/bench/results"
RES=$ROOT/bench/results/$(date -u +%F)-$(hostname -s)-tc-cost.md
NV=$(net "${M[nonvip_repeat]}" "${M[empty_repeat]}")
ES=$(net "${M[established_repeat]}" "${M[empty_repeat]}")
NQ=$(net "${M[new_flow_single_table_quarter]}" "${M[empty_single]}")
NF=$(net "${M[new_flow_single_table_full]}" "${M[empty_single]}")
NQE=$(net "${M[new_flow_single_table_quarter]}" "${M[established_single]}")
BQ=$(net "${M[new_flow_batch_quarter]}" "${M[chain_empty_quarter]}")
BF=$(net "${M[new_flow_batch_full]}" "${M[chain_empty_full]}")
{
	echo "# TC per-packet cost ($(date -u +%F), $(hostname -s), $(uname -r), $(nproc) CPUs)"
	echo
	echo "bench/tc_cost.sh: medians of $ROUNDS rounds of build/tc_cost; BPF_PROG_TEST_RUN on"
	echo "ksplit_tc_ingress, one VIP with 3 endpoints, IPv4 TCP frames. \"repeat\": one call"
	echo "with repeat=$REPEAT (warm caches). \"single\": $REPEAT calls of repeat=1 (a new flow needs"
	echo "a new frame each time; cold caches, so compared with the baseline measured the same way)."
	echo "\"batch\": new flows back to back in one call (repeat 8,192 from an empty table, then"
	echo "repeat $REPEAT with the LRU evicting): a chain program gives the frame a random source and"
	echo "the VIP back and tail-calls ksplit_tc_ingress; its baseline is the same chain into the empty"
	echo "program. Warm code and VIP entry, cold conntrack buckets: the figure for the target."
	echo "Baseline: a program that only returns TC_ACT_OK. Load average: $LOAD_START at the start,"
	echo "$LOAD_END at the end."
	echo
	echo "| packet | method | ns per run | baseline | net | target | |"
	echo "|---|---|---:|---:|---:|---:|---|"
	echo "| non-VIP (ACK to another address) | repeat | ${M[nonvip_repeat]} | ${M[empty_repeat]} | $NV | 30 | $(verdict "$NV" 30) |"
	echo "| established flow (ACK) | repeat | ${M[established_repeat]} | ${M[empty_repeat]} | $ES | 100 | $(verdict "$ES" 100) |"
	echo "| established flow (ACK) | single | ${M[established_single]} | ${M[empty_single]} | $(net "${M[established_single]}" "${M[empty_single]}") | | |"
	echo "| new flow (SYN), table filling (first 8,192 flows) | batch | ${M[new_flow_batch_quarter]} | ${M[chain_empty_quarter]} | $BQ | 200 | $(verdict "$BQ" 200) |"
	echo "| new flow (SYN), table full, LRU evicting | batch | ${M[new_flow_batch_full]} | ${M[chain_empty_full]} | $BF | 200 | $(verdict "$BF" 200) |"
	echo "| new flow (SYN), table a quarter full | single | ${M[new_flow_single_table_quarter]} | ${M[empty_single]} | $NQ | 200 | $(verdict "$NQ" 200) |"
	echo "| new flow (SYN), table full, LRU evicting | single | ${M[new_flow_single_table_full]} | ${M[empty_single]} | $NF | 200 | $(verdict "$NF" 200) |"
	echo
	echo "A new flow costs $NQE ns more than an established packet measured the same way (single)."
	if [[ -n $BEFORE ]]; then
		echo
		echo "BEFORE ($BEFORE), measured in the same rounds right after this build's; net figures:"
		echo
		echo "| figure (tc_cost's name) | before | this build | change |"
		echo "|---|---:|---:|---:|"
		for k in nonvip_repeat established_repeat established_single \
			new_flow_batch_quarter new_flow_batch_full \
			new_flow_single_table_quarter new_flow_single_table_full; do
			base=empty_single
			[[ $k = *_repeat ]] && base=empty_repeat
			[[ $k = new_flow_batch_quarter ]] && base=chain_empty_quarter
			[[ $k = new_flow_batch_full ]] && base=chain_empty_full
			b=$(net "${B[$k]}" "${B[$base]}")
			a=$(net "${M[$k]}" "${M[$base]}")
			echo "| $k | $b | $a | $(net "$a" "$b") |"
		done
	fi
} >"$RES"
cat "$RES"
echo "[tc-cost] wrote $RES" >&2
