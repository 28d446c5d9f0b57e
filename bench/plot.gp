# SPDX-License-Identifier: BSD-2-Clause
# gnuplot -e "dir='D'; out_lat='A.png'; out_cdf='B.png'; cdf_n='10000'" bench/plot.gp
# D holds lat-<mech>.dat ("N p50_ns p99_ns") and cdf-<mech>.dat ("lat_us fraction").
set terminal pngcairo size 1000,620 enhanced font ",11"
mechs = "direct ksplit iptleg iptnft nft hap"
names = "direct ksplit iptables-legacy iptables-nft nftables haproxy"

set output out_lat
set title "connect + 1 request + close, p50 (solid) and p99 (dashed) vs installed services"
set logscale xy
set xlabel "services installed (N, log scale)"
set ylabel "latency (us, log scale)"
set key outside right
set grid
set xrange [0.7:*]
plot for [i=1:words(mechs)] dir."/lat-".word(mechs,i).".dat" using 1:($2/1000) with linespoints lw 2 lc i title word(names,i)." p50", \
     for [i=1:words(mechs)] dir."/lat-".word(mechs,i).".dat" using 1:($3/1000) with lines dt 2 lc i notitle

set output out_cdf
set title "latency CDF at N = ".cdf_n." (connect + 1 request + close)"
unset logscale
set logscale x
set xlabel "latency (us, log scale)"
set ylabel "fraction of connections"
set yrange [0:1]
set xrange [*:*]
plot for [i=1:words(mechs)] dir."/cdf-".word(mechs,i).".dat" using 1:2 with lines lw 2 lc i title word(names,i), \
     dir."/cdf-direct10.dat" using 1:2 with lines lw 2 dt 2 lc 1 title "direct, 10 pods in rotation (round 1)"
