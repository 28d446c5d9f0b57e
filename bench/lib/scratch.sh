# SPDX-License-Identifier: BSD-2-Clause
# One scratch agent for the single-purpose bench scripts (sourced): a temp
# dir, a cgroup and a pin dir of their own, and one cleanup for every exit
# path. (bench/run.sh, with many of each, has lib/common.sh.)
#   scratch_init NAME     sets TMP, CG, PIN and the EXIT/INT/TERM trap
#   AGENT=$!              the agent the script started (BIN: its binary, else KSPLIT)
#   SCRATCH_PIDS+=($!)    anything else it started, stopped on exit
#   scratch_stop_agent    stop the agent, `down` its pins, remove the cgroup (to start over)
#   KEEP=1                copy $TMP/agent.log to /tmp/<NAME>_agent.log before removing TMP

KSPLIT=${KSPLIT:-build/ksplit}
AGENT=
SCRATCH_PIDS=()

scratch_stop_agent() {
	if [[ -n $AGENT ]] && kill -0 "$AGENT" 2>/dev/null; then
		kill -TERM "$AGENT"
		wait "$AGENT" 2>/dev/null || true
	fi
	AGENT=
	if [[ -e $PIN ]]; then
		"${BIN:-$KSPLIT}" down --pin-dir "$PIN" >/dev/null 2>&1 || true
		rm -rf "$PIN"
	fi
	[[ -d $CG ]] && rmdir "$CG"
	return 0
}

scratch_cleanup() {
	local p
	set +e
	scratch_stop_agent
	for p in "${SCRATCH_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[[ -n ${KEEP:-} && -f $TMP/agent.log ]] && cp "$TMP/agent.log" "/tmp/${SCRATCH_NAME}_agent.log"
	rm -rf "$TMP"
}

scratch_init() {
	SCRATCH_NAME=$1
	TMP=$(mktemp -d "/tmp/ks-$1-XXXXXX")
	CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/ks$1-$$
	PIN=/sys/fs/bpf/ks$1-$$
	trap scratch_cleanup EXIT INT TERM
}
