# SPDX-License-Identifier: BSD-2-Clause
# Sourced by scripts/demo.sh and bench/run.sh: mount bpffs at /sys/fs/bpf if
# it is missing, and unmount it again at the end if this run mounted it and
# nothing but the kernel's own *.debug files is left there (someone else's
# pins keep it mounted). The kern test harness does the same in C.

BPFFS_OURS=0

bpffs_mount_if_missing() {
	awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts && return 0
	mount -t bpf bpf /sys/fs/bpf || return 1
	BPFFS_OURS=1
}

bpffs_release() {
	local x
	((BPFFS_OURS)) || return 0
	for x in /sys/fs/bpf/*; do
		case ${x##*/} in maps.debug | progs.debug | '*') ;; *) return 0 ;; esac
	done
	umount /sys/fs/bpf && BPFFS_OURS=0
}
