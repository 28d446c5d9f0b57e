# SPDX-License-Identifier: BSD-2-Clause
# Shared by the bench generators: service i (1..N) and its addresses.
#   VIP of service i   10.(96 + i/65536).(i/256 % 256).(i % 256), port 80
#   control service    10.95.0.1:80 (installed first; used for weight-change timing)
#   backends           10.244.1.1..5 = group a (weight 1), 10.244.1.6..10 = group b (weight 3)
# The measured service is i = N, always with all 10 endpoints; services 1..N-1
# get E endpoints each (E/2 per group, at least 1), pointing at the same pods.
function vip(i) { return sprintf("10.%d.%d.%d", 96 + int(i / 65536), int(i / 256) % 256, i % 256) }
function ep(g, k) { return sprintf("10.244.1.%d", (g == "a" ? 0 : 5) + k) }
function neps(i) { if (i == N || i == 0) return 5; e = int(E / 2); return e < 1 ? 1 : e }
function svcname(i) { return i == 0 ? "ctl" : "s" i }
function vipof(i) { return i == 0 ? "10.95.0.1" : vip(i) }
# 16 upper-case hex chars derived from a name, like kube-proxy's chain hashes.
function hash16(s,   h, j, c) {
	h = 5381
	for (j = 1; j <= length(s); j++) { c = index("abcdefghijklmnopqrstuvwxyz0123456789-/:", substr(s, j, 1)); h = (h * 33 + c) % 4294967291 }
	return sprintf("%08X%08X", h, (h * 2654435761) % 4294967291)
}
