# SPDX-License-Identifier: BSD-2-Clause
# Sourced by bench/run.sh after the measurements: turns $RAW, $CP, $BPFS,
# $TMP/cdf-*.dat and $TMP/profile.txt into bench/results/<date>-<host>.md,
# a .tsv of every run, and two PNGs (gnuplot, bench/plot.gp).

# agg N MECH KIND FIELD -> median over rounds of column FIELD
# RAW columns: 1 N 2 mech 3 round 4 kind 5 ops 6 ok 7 p50 8 p90 9 p99 10 p999 11 rate 12 cpu 13 errors 14 ids
agg() {
	awk -F'\t' -v n="$1" -v m="$2" -v k="$3" -v f="$4" '$1 == n && $2 == m && $4 == k { print $f }' "$RAW" | median
}
# CPU ms (both CPUs, /proc/stat) per 100k connections, median over rounds
agg_cpu() {
	awk -F'\t' -v n="$1" -v m="$2" '$1 == n && $2 == m && $4 == "conn" && $5 > 0 { print $12 * 1000 / ENVIRON["HZ"] / $5 * 100000 }' "$RAW" | median
}
agg_spread() {	# min and max of p50 over rounds, us
	awk -F'\t' -v n="$1" -v m="$2" '$1 == n && $2 == m && $4 == "conn" { v = $7 / 1000; if (min == "" || v < min) min = v; if (v > max) max = v } END { printf "%.1f-%.1f", min, max }' "$RAW"
}
us() { awk -v v="$1" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.1f", v / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "n/a"; else printf "%.3f", a / b }'; }
# Disturbance: the persistent run of the same (N, mech, round) is a request on an
# open connection, which no mechanism touches; when its p50 is > 1.5x that
# mechanism's median persistent p50 at the first N, something else (another
# tenant of the VM) ran during that slot. Such rounds are counted, not dropped.
disturbed_rounds() {	# disturbed_rounds N MECH -> space separated round numbers
	local base
	base=$(agg "${NS[0]}" "$2" pers 7)
	awk -F'\t' -v n="$1" -v m="$2" -v b="$base" '$1 == n && $2 == m && $4 == "pers" && $7 > 1.5 * b { printf "%s ", $3 }' "$RAW"
}
# agg_clean N MECH FIELD: median of conn FIELD over the undisturbed rounds
agg_clean() {
	local d
	d=" $(disturbed_rounds "$1" "$2")"
	awk -F'\t' -v n="$1" -v m="$2" -v f="$3" -v d="$d" '$1 == n && $2 == m && $4 == "conn" && index(d, " " $3 " ") == 0 { print $f }' "$RAW" | median
}
# sq MECH Q: Q-quantile (ns) of each spread-MECH-ROUND ks_stat cdf file, median over rounds
sq() { local f; for f in "$TMP"/spread-$1-*.dat; do [[ -e $f ]] && awk -v q="$2" '!/^#/ && $2 >= q { print $1 * 1000; exit }' "$f"; done | median; }

# Split accuracy: ids pooled over every conn run of MECH at N; chi-square vs 1:3 groups.
split_line() {	# split_line N MECH
	local n=$1 m=$2 args counts total
	counts=$(awk -F'\t' -v n="$n" -v m="$m" '$1 == n && $2 == m && $4 == "conn" { print $14 }' "$RAW" |
		jq -s -r 'reduce .[] as $o ({}; reduce ($o | to_entries[]) as $e (.; .[$e.key] += $e.value))
			| [ "a1","a2","a3","a4","a5","b1","b2","b3","b4","b5" ] as $k | [ $k[] as $x | (.[$x] // 0) ] | @tsv')
	total=$(tr '\t' '\n' <<<"$counts" | awk '{ s += $1 } END { print s + 0 }')
	args=$(awk -F'\t' '{ for (i = 1; i <= 10; i++) printf "%d:%d ", (i <= 5 ? 1 : 3), $i }' <<<"$counts")
	read -r chi df p < <("$KS_STAT" chi2 $args)
	local share_b
	share_b=$(awk -F'\t' '{ a = $1 + $2 + $3 + $4 + $5; b = $6 + $7 + $8 + $9 + $10; if (a + b) printf "%.2f", 100 * b / (a + b); else print "n/a" }' <<<"$counts")
	printf '| %s | %s | %s%% | %s | %s | %s | %s |\n' "${MNAME[$m]}" "$total" "$share_b" \
		"$(tr '\t' ' ' <<<"$counts")" "$chi" "$df" "$p"
}

write_report() {
	HZ=$(getconf CLK_TCK)
	export HZ
	local host date base res n m p50d
	host=$(hostname -s)
	date=$(date +%Y-%m-%d)
	res=$BENCH/results
	mkdir -p "$res"
	base=$res/$date-$host${QUICK:+-quick}
	local md=$base.md
	cp "$RAW" "$base.tsv"

	# plot data
	local pd=$TMP/plot
	mkdir -p "$pd"
	for m in "${MECHS[@]}"; do
		for n in "${NS[@]}"; do
			echo "$n $(agg "$n" "$m" conn 7) $(agg "$n" "$m" conn 9)"
		done >"$pd/lat-$m.dat"
		[[ -s $TMP/cdf-$m.dat ]] && cp "$TMP/cdf-$m.dat" "$pd/cdf-$m.dat"
	done
	cat "$TMP"/spread-direct10-1.dat >"$pd/cdf-direct10.dat" 2>/dev/null || echo "1 0" >"$pd/cdf-direct10.dat"
	if gnuplot -e "dir='$pd'; out_lat='$base-latency-vs-n.png'; out_cdf='$base-cdf-n$CDF_N.png'; cdf_n='$CDF_N'" \
		"$BENCH/plot.gp" 2>"$TMP/gnuplot.err"; then
		:
	else
		log "gnuplot failed: $(head -n 3 "$TMP/gnuplot.err")"
	fi

	# headline numbers at CDF_N (or the largest N measured when CDF_N is absent)
	local hn=$CDF_N
	grep -q "^$hn	" "$RAW" || hn=$max_n
	local kp50 dp50 n0=${NS[0]}
	kp50=$(agg "$hn" ksplit conn 7)
	dp50=$(agg "$hn" direct conn 7)
	local r_kd
	r_kd=$(ratio "$kp50" "$dp50")
	local k_first k_last
	k_first=$(agg "$n0" ksplit conn 7)
	k_last=$(agg "$max_n" ksplit conn 7)
	local c4_first c4_last
	c4() { awk -v n="$1" '$1 == n && $2 ~ /connect4/ && $3 > 0 { printf "%.0f", $4 / $3 }' "$BPFS"; }
	c4_first=$(c4 "$n0")
	c4_last=$(c4 "$max_n")
	# BPF ns per connection: every ksplit program's run_time_ns over the pass, per connection.
	bpf_conn() { awk -v n="$1" -v c="$CONN" '$1 == n { t += $4 } END { if (t > 0) printf "%.0f", t / c }' "$BPFS"; }
	bpf_runs() { awk -v n="$1" -v c="$CONN" '$1 == n { r += $3 } END { if (r > 0) printf "%.1f", r / c }' "$BPFS"; }
	bpf_parts() {	# "connect4 X + getpeername4 Y + sockops Z x R" at N
		awk -v n="$1" -v c="$CONN" '$1 == n && $3 > 0 { s = s (s ? " + " : "") sprintf("%s %.0f", $2, $4 / $3); if ($3 != c) s = s sprintf(" x %.1f", $3 / c) } END { print s }' "$BPFS"
	}

	{
		echo "# ksplit benchmark: $date on $host${QUICK:+ (QUICK)}"
		echo
		echo "Command: \`make bench${QUICK:+ QUICK=1}\` (bench/run.sh; N = ${NS[*]}; $ROUNDS rounds; $CONN connections per run, $CONN_CDF at N = $CDF_N; $PERS requests per persistent run)."
		echo
		echo "## Machine"
		echo
		echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) CPUs; client on CPU 0, servers and haproxy on CPU 1"
		echo "- Kernel: $(uname -r); $(iptables-legacy --version | head -n 1); $(nft --version); $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
		echo "- ksplit: $("$KSPLIT" version 2>/dev/null | head -n 1), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
		echo "- Load average (1/5/15 min) at start: $LOAD_START; at end: $LOAD_END. This is a shared 2-vCPU VM: other work on it shows as noise, most in p99/p99.9 and CPU."
		echo "- Duration: $((END_EPOCH - START_EPOCH)) s"
		echo "- TIME_WAIT: clients close with SO_LINGER {1,0} (RST; ks_load's default), so no TIME_WAIT and no ephemeral-port exhaustion; tcp_tw_reuse is left at its default; ip_local_port_range 1024-65535 in the client netns."
		echo
		echo "## Headline (N = $hn)"
		echo
		local verdict
		verdict=$(awk -v r="$r_kd" 'BEGIN { if (r == "n/a") print "n/a"; else if (r <= 1.03) print "**met**"; else print "**MISSED**" }')
		echo "- ksplit p50 / direct p50 = **$r_kd** ($(us "$kp50") us vs $(us "$dp50") us); target <= 1.03: $verdict."
		if ls "$TMP"/spread-direct-*.dat >/dev/null 2>&1; then
			echo "- Spreading control (below): ksplit p50 / p50 of direct connects rotating over the same 10 pods = **$(ratio "$(sq ksplit 0.5)" "$(sq direct10 0.5)")** (ks_stat, medians of $ROUNDS rounds; one pod: $(us "$(sq direct 0.5)") us, 10 pods: $(us "$(sq direct10 0.5)") us, ksplit: $(us "$(sq ksplit 0.5)") us)."
		fi
		for m in iptleg iptnft nft hap; do
			local mp
			mp=$(agg "$hn" "$m" conn 7)
			echo "- ksplit vs ${MNAME[$m]}: p50 $(us "$kp50") vs $(us "$mp") us, ratio ksplit/${MNAME[$m]} = $(ratio "$kp50" "$mp"); ${MNAME[$m]} adds $(awk -v a="$mp" -v d="$dp50" 'BEGIN { printf "%+.1f", (a - d) / 1000 }') us over direct, ksplit $(awk -v a="$kp50" -v d="$dp50" 'BEGIN { printf "%+.1f", (a - d) / 1000 }') us."
		done
		echo "- ksplit slope N = $n0 -> $max_n: p50 $(us "$k_first") -> $(us "$k_last") us (ratio $(ratio "$k_last" "$k_first")); round-to-round p50 range of ksplit: $(agg_spread "$n0" ksplit) us at N = $n0, $(agg_spread "$max_n" ksplit) us at N = $max_n; direct over the same stages: $(us "$(agg "$n0" direct conn 7)") -> $(us "$(agg "$max_n" direct conn 7)") us."
		echo "- Disturbed rounds (persistent p50 > 1.5x its N = $n0 median: other work on the VM): ksplit at N = $max_n: [$(disturbed_rounds "$max_n" ksplit)], direct: [$(disturbed_rounds "$max_n" direct)]. Over undisturbed rounds only, ksplit p50 $(us "$(agg_clean "$n0" ksplit 7)") -> $(us "$(agg_clean "$max_n" ksplit 7)") us (ratio $(ratio "$(agg_clean "$max_n" ksplit 7)" "$(agg_clean "$n0" ksplit 7)")), direct $(us "$(agg_clean "$n0" direct 7)") -> $(us "$(agg_clean "$max_n" direct 7)") us. The table uses all rounds."
		echo "- **BPF ns per connection** (every ksplit program that runs for one connect + request + close, from bpf_stats run_time_ns / run_cnt deltas over $CONN connections): **$(bpf_conn "$n0")** at N = $n0 ($(bpf_parts "$n0") ns), **$(bpf_conn "$max_n")** at N = $max_n ($(bpf_parts "$max_n") ns); beside it ksplit p50 / direct p50 = $(ratio "$k_first" "$(agg "$n0" direct conn 7)") at N = $n0 and $(ratio "$k_last" "$(agg "$max_n" direct conn 7)") at N = $max_n. bpf_stats adds about 20 ns per program run, $(bpf_runs "$n0") runs per connection here; freeing the socket storage (at socket destruction, after an RCU grace period) runs in no program and is not in the figure. Before/after two builds: \`make bench-bpf BEFORE=<build dir>\` (bench/README.md)."
		echo "- connect4 program: ${c4_first:-n/a} ns per run at N = $n0, ${c4_last:-n/a} ns per run at N = $max_n (kernel.bpf_stats_enabled=1; includes the ~20 ns the stats themselves add)."
		if [[ $QUICK ]]; then
			echo "- QUICK run: N = 50,000 and 1,000 are not measured; the slope and BPF cost use N = $max_n. Use \`make bench\` for the full report."
		fi
		echo
		echo "## Connect + 1 request + close, and persistent request/response"
		echo
		echo "Medians over $ROUNDS interleaved rounds (mechanisms in the order ${MECHS[*]} within each round). Latency in us, socket() to close() (ks_load, exact percentiles over every operation). x direct = p50 / direct p50 at the same N. CPU = busy time of both CPUs from /proc/stat during the run, ms per 100k connections (includes anything else running on the VM). Disturbed rounds: rounds whose persistent run (untouched by any mechanism) had a p50 over 1.5x its median at the first N, i.e. the VM was busy with other work; they are kept in the medians."
		echo
		echo "| N | mechanism | p50 | p99 | p99.9 | x direct | conn/s (1 core) | CPU ms/100k | persistent p50 | persistent p99 | errors | disturbed rounds |"
		echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
		for n in "${NS[@]}"; do
			p50d=$(agg "$n" direct conn 7)
			for m in "${MECHS[@]}"; do
				local p50 errs
				p50=$(agg "$n" "$m" conn 7)
				errs=$(awk -F'\t' -v n="$n" -v m="$m" '$1 == n && $2 == m { e += $5 - $6 } END { print e + 0 }' "$RAW")
				printf '| %s | %s | %s | %s | %s | %s | %.0f | %.0f | %s | %s | %s | %s |\n' "$n" "${MNAME[$m]}" \
					"$(us "$p50")" "$(us "$(agg "$n" "$m" conn 9)")" "$(us "$(agg "$n" "$m" conn 10)")" \
					"$(ratio "$p50" "$p50d")" "$(agg "$n" "$m" conn 11)" "$(agg_cpu "$n" "$m")" \
					"$(us "$(agg "$n" "$m" pers 7)")" "$(us "$(agg "$n" "$m" pers 9)")" "$errs" "$(disturbed_rounds "$n" "$m")"
			done
		done
		echo
		echo "![latency vs N]($(basename "$base")-latency-vs-n.png)"
		echo
		if [[ -s $TMP/cdf-direct.dat ]]; then
			echo "![CDF at N = $CDF_N]($(basename "$base")-cdf-n$CDF_N.png)"
			echo
			echo "The CDF comes from \`ks_stat cdf\` (the same operation as ks_load, every sample kept), one run of $CONN connections per mechanism after the rounds."
			echo
		fi
		if ls "$TMP"/spread-direct-*.dat >/dev/null 2>&1; then
			local s1 s10 sk
			s1=$(sq direct 0.5); s10=$(sq direct10 0.5); sk=$(sq ksplit 0.5)
			echo "## Spreading control at N = $CDF_N"
			echo
			echo "direct connects to one pod; every other mechanism spreads connections over 10 server processes on CPU 1, which costs something by itself (a different, colder process wakes for each connection). In every round at N = $CDF_N the bench also ran \`ks_stat cdf\` (the same operation as ks_load, without getpeername) $SPREAD times against: one pod, the 10 pods in rotation with no load balancer, and ksplit's VIP. Medians over the $ROUNDS rounds:"
			echo
			echo "| run | p50 us | p99 us | p50 x one pod | p50 x 10 pods |"
			echo "|---|---:|---:|---:|---:|"
			for m in direct direct10 ksplit; do
				local sm
				sm=$(sq "$m" 0.5)
				printf '| %s | %s | %s | %s | %s |\n' "$(case $m in direct) echo "direct, one pod";; direct10) echo "direct, 10 pods in rotation";; *) echo ksplit;; esac)" \
					"$(us "$sm")" "$(us "$(sq "$m" 0.99)")" "$(ratio "$sm" "$s1")" "$(ratio "$sm" "$s10")"
			done
			echo
			echo "ksplit p50 / direct-over-10-pods p50 = **$(ratio "$sk" "$s10")**: the part of the gap the hook itself costs."
			echo
		fi
		echo "## Split accuracy at N = $hn"
		echo
		echo "Every connection of the $ROUNDS rounds pooled. The measured service weights group a (pods a1-a5) 1 and group b (b1-b5) 3, i.e. 5% per a-pod and 15% per b-pod; chi-square goodness of fit over the 10 pods (9 degrees of freedom). A p-value far below 0.01 means the split is biased; haproxy's roundrobin is deterministic, so its p-value near 1 means 'too even to be random', not 'better'."
		echo
		echo "| mechanism | connections | share b | per pod a1..a5 b1..b5 | chi2 | df | p |"
		echo "|---|---:|---:|---|---:|---:|---:|"
		for m in ksplit iptleg iptnft nft hap; do split_line "$hn" "$m"; done
		echo
		echo "## BPF cost (kernel.bpf_stats_enabled=1, one run of $CONN connections)"
		echo
		echo "| N | program | runs | ns/run |"
		echo "|---:|---|---:|---:|"
		awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, ($3 > 0 ? sprintf("%.0f", $4 / $3) : "-") }' "$BPFS"
		for n in $(awk '{ print $1 }' "$BPFS" | sort -un); do
			echo "| $n | **all, per connection** | $(bpf_runs "$n") per connection | **$(bpf_conn "$n")** ns per connection |"
		done
		echo
		echo "bpf_stats adds about 20 ns per program run (two clock reads and the per-CPU counter update), so the connect4 figure above is an upper bound; the difference between N values is the part that would grow with the service count (a hash lookup: it should not)."
		echo
		echo "## Control plane"
		echo
		echo "| what | mechanism | N | value | unit | detail |"
		echo "|---|---|---:|---:|---|---|"
		awk '{ d = ""; for (i = 6; i <= NF; i++) d = d (i > 6 ? " " : "") $i; printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, d }' "$CP" |
			sed -e 's/| iptleg |/| iptables-legacy |/; s/| iptnft |/| iptables-nft |/; s/| nft |/| nftables |/; s/| hap |/| haproxy |/'
		echo
		echo "Rows: load_cold = agent start to its first \"config applied\"; load_grow = the agent re-applying after the next N's files were renamed into its config directory (it re-reads every file); load = a full iptables-restore / nft -f / haproxy start of this stage's rules; load_full = the full kube-proxy shape (own chains and 10 endpoints per service) in a scratch netns; wchange* = one weight change of the control service (10.95.0.1:80) from group a to group b, timed to the first connect that lands on group b; validate_own = \`ksplit validate\` of manifests with a backend Service pair and EndpointSlices per service (the shape of a real cluster)."
		echo
		echo "## Profile"
		echo
		if [[ $r_kd != n/a ]] && awk -v r="$r_kd" 'BEGIN { exit !(r > 1.03) }'; then
			echo "ksplit missed the p50 <= 1.03 x direct target at N = $hn; the profiles below were taken at that N."
		else
			echo "Taken at N = $CDF_N for reference."
		fi
		echo
		echo '```'
		cat "$TMP/profile.txt" 2>/dev/null || echo "(no profile)"
		echo '```'
		echo
		echo "## Not measured here"
		echo
		echo "- IPVS, Cilium, Calico, Istio: no kernel modules / not installable on this VM. haproxy (1 thread, CPU 1) stands in for the userspace proxy / sidecar hop."
		echo "- At N > 1,000 the iptables, nftables and haproxy stages let filler services share chains/servers (see bench/README.md): what a packet of the measured service walks is still N entries long, but the load times in those rows are not a full kube-proxy ruleset; load_full rows are."
		echo "- ksplit manifests give every service its own Service + HTTPRoute but share the two backend Services (a choice made when the agent's manifest checks were quadratic in the object count; the validate_own rows show the per-service shape as it is now)."
		echo
		echo "Raw per-run data: $(basename "$base").tsv (columns: N mech round kind ops ok p50 p90 p99 p999 rate cpu_jiffies errors ids; latency in ns)."
	} >"$md"
	log "report: $md"
	echo "$md"
}
