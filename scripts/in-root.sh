# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
#
# Sourced by scripts/image.sh and scripts/image-test-arm64.sh.
#
# in_root ARCH ROOT PROG [ARG...] (root): run PROG, a path inside the file tree
# ROOT (an image's root file system), with ROOT's program interpreter and
# libraries and no others, so that a library missing from ROOT fails the run.
# ARCH is a Debian architecture (amd64, arm64).
#   - the host's own architecture: chroot ROOT.
#   - arm64 on another host: qemu-aarch64 -L ROOT (qemu-user; no binfmt_misc
#     handler is used or registered: the machine may be shared). qemu maps
#     each absolute path the program opens to ROOT's copy when one exists and
#     to the host's own file when none does, so the host's arm64 multiarch
#     libraries (scripts/deps.sh --arm64 installs them for the cross build)
#     would quietly stand in for one the image lacks. The run is therefore in
#     a private mount namespace in which an empty read-only tmpfs covers each
#     host directory that holds arm64 libraries or the arm64 loader.
#     Arguments that are paths outside ROOT reach the host's files there
#     (not under chroot).
in_root() {
	local arch=$1 root=$2 prog=$3
	shift 3
	if [[ $arch == "$(dpkg --print-architecture)" ]]; then
		chroot "$root" "$prog" "$@"
		return
	fi
	if [[ $arch != arm64 ]]; then
		echo "in_root: cannot run $arch programs on $(dpkg --print-architecture)" >&2
		return 1
	fi
	if ! command -v qemu-aarch64 >/dev/null; then
		echo "in_root: qemu-aarch64 missing (run: scripts/deps.sh --image)" >&2
		return 1
	fi
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare --mount --propagation private -- bash -c '
		set -e
		root=$1 prog=$2
		shift 2
		# /lib is a link to usr/lib on a merged-/usr host: hide each directory once.
		for d in $(readlink -e /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu \
			/usr/aarch64-linux-gnu | sort -u); do
			mount -t tmpfs -o ro,size=4k,mode=555 ksplit-hide "$d"
		done
		exec qemu-aarch64 -L "$root" "$root$prog" "$@"' in_root "$root" "$prog" "$@"
}
