#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# Runs inside make vm-test's qemu guest (scripts/vm-test.sh packs it and
# /init runs it from /ksplit once /proc, /sys, cgroup2 and bpffs are
# mounted). Prints the usual "=== name: N passed, M failed" lines and exits
# non-zero on any failure.
#   VM_EXPECT=run     (6.1) ksplit probe passes, the CO-RE relocations of the
#                     object all resolve, the kernel tests in VM_TESTS pass
#                     (scripts/run-tests.sh), the checkout demo splits;
#   VM_EXPECT=refuse  (5.10) ksplit probe and ksplit run both refuse, naming
#                     each missing feature with its Linux version (VM_MISSING,
#                     "|"-separated), and leave nothing pinned.
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
rc=0

# One check's line, as run-tests.sh prints a binary's.
result() {
	local name=$1 ok=$2
	if ((ok)); then
		echo "=== $name: 1 passed, 0 failed"
	else
		echo "=== $name: 0 passed, 1 failed"
		rc=1
	fi
}

# The agent's load, with libbpf's debug lines (-v): every CO-RE relocation
# it made against this kernel's BTF. A field this kernel lacks shows as a
# relocation without a target (libbpf then poisons the instruction).
core_check() {
	local log ok=1 relos patched bad pid i
	local cfg=/tmp/vm-core-cfg cg=/sys/fs/cgroup/vm-core pin=/sys/fs/bpf/vm-core
	echo "=== vm_core"
	mkdir -p "$cfg" "$cg" && cp examples/checkout-ab/*.yaml "$cfg/"
	$B/ksplit run -v --config "$cfg" --cgroup "$cg" --pin-dir "$pin" --metrics-addr none >/tmp/vm-core.log 2>&1 &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q 'msg="attached datapath"' /tmp/vm-core.log && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	log=$(grep 'msg="libbpf"' /tmp/vm-core.log)
	grep -q 'msg="attached datapath"' /tmp/vm-core.log || { tail -n 20 /tmp/vm-core.log; ok=0; }
	relos=$(grep -c 'relo #[0-9]*: <byte_off>' <<<"$log")
	patched=$(grep -c 'relo #[0-9]*: patched insn' <<<"$log")
	bad=$(grep -E 'relo #[0-9]*: (no matching targets|failed)|poison' <<<"$log")
	# Which fields, once each: "struct bpf_sock_addr.user_port (0:5 @ offset 24)".
	grep -o 'relo #[0-9]*: <byte_off> \[[0-9]*\] [^(]*' <<<"$log" | sed 's/.*<byte_off> \[[0-9]*\] //' |
		sort | uniq -c | sed 's/^/  /'
	echo "  $relos CO-RE relocations, $patched instructions patched"
	[[ -z $bad ]] || { echo "$bad"; ok=0; }
	((relos > 0 && patched >= relos)) || ok=0
	$B/ksplit down --pin-dir "$pin" >/dev/null || ok=0
	rmdir "$cg"
	result vm_core "$ok"
}

# `ksplit probe` and `ksplit run` on a kernel without what ksplit needs.
refuse_check() {
	local out arc prc ok=1 m cfg=/tmp/vm-cfg cg=/sys/fs/cgroup/vm-refuse pin=/sys/fs/bpf/vm-refuse
	echo "=== vm_refuse"
	out=$($B/ksplit probe 2>&1)
	prc=$?
	echo "$out" | sed 's/^/  [probe] /'
	((prc == 1)) || { echo "  ksplit probe exited $prc, want 1"; ok=0; }
	mkdir -p "$cfg" "$cg" && cp examples/checkout-ab/*.yaml "$cfg/"
	out=$($B/ksplit run --config "$cfg" --cgroup "$cg" --pin-dir "$pin" 2>&1)
	arc=$?
	echo "$out" | sed 's/^/  [run] /'
	((arc == 1)) || { echo "  ksplit run exited $arc, want 1"; ok=0; }
	grep -q 'level=error msg="kernel not supported"' <<<"$out" || { echo "  no kernel-not-supported line"; ok=0; }
	IFS='|' read -ra missing <<<"$VM_MISSING"
	for m in "${missing[@]}"; do
		grep -qF "$m" <<<"$out" || { echo "  run does not name: $m"; ok=0; }
	done
	# The old symptom: a verifier message and a blame on the pinned maps.
	if grep -qE 'BPF_STX|pinned map' <<<"$out"; then
		echo "  run still reports the verifier's or the pin dir's error"
		ok=0
	fi
	[[ ! -e $pin ]] || { echo "  $pin left behind"; ok=0; }
	rmdir "$cg"
	result vm_refuse "$ok"
}

$B/ksplit probe
case ${VM_EXPECT:-run} in
run)
	core_check
	# shellcheck disable=SC2086
	bash scripts/run-tests.sh kern $VM_TESTS || rc=1
	OUT=$PWD/$B DEMO_TOL=6 DEMO_SKIP_DEPS=1 DEMO_APPLY_TIMEOUT=300 DEMO_CLIENT_TIMEOUT=300 \
		bash scripts/demo.sh || rc=1
	;;
refuse) refuse_check ;;
*) echo "VM_EXPECT=$VM_EXPECT: want run or refuse"; rc=1 ;;
esac
exit "$rc"
