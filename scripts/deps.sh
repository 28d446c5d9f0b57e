#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Install the Debian 12 packages that ksplit's build, tests and demo need.
# Idempotent: when everything is installed it only runs dpkg-query and exits.
#   scripts/deps.sh           build + test + demo
#   scripts/deps.sh --bench   also what `make bench` compares against
#   scripts/deps.sh --image   also what `make image` and `make image-test` use
#   scripts/deps.sh --deploy  also kubectl and python3-yaml for `make deploy-test`
#   scripts/deps.sh --vm      also qemu, cpio and kmod for `make vm-test`
#   scripts/deps.sh --arm64   also the aarch64 cross gcc and the arm64 -dev
#                             libraries for `make ARCH=arm64` (adds dpkg's arm64
#                             architecture when it is missing)
#   scripts/deps.sh --vm-arm64  --arm64 and qemu-system-aarch64 for
#                             `make vm-test ARCH=arm64`
set -euo pipefail

pkgs=(
	make gcc clang llvm pkg-config
	libbpf-dev bpftool libelf-dev zlib1g-dev
	libyaml-dev libjson-c-dev libmnl-dev libhttp-parser-dev libnghttp2-dev libssl-dev
	libcurl4-openssl-dev
	libcmocka-dev libclang-rt-14-dev libmicrohttpd-dev
	iproute2 jq openssl nghttp2-server
	# promtool and the server that test_metrics scrapes the agent with
	prometheus
)
arm64=0
# Several groups may be named: `deps.sh --arm64 --vm`.
for group in "$@"; do
	case $group in
	--bench) pkgs+=(iptables nftables haproxy gnuplot-nox linux-perf curl iperf3) ;;
	# mmdebstrap unpacks the runtime libraries, umoci makes the OCI layout;
	# podman runs it with runc (crun refuses hybrid cgroup hosts, see
	# scripts/image-test.sh); curl asks the agent's probes; qemu-user runs the
	# arm64 image's binary in its root (scripts/in-root.sh; the arm64 image
	# also needs the cross build's --arm64 packages: its objcopy and the
	# :arm64 libraries dpkg -S maps to packages).
	--image) pkgs+=(mmdebstrap umoci podman runc curl qemu-user) ;;
	# kubectl renders the kustomizations offline, python3-yaml reads what it
	# renders. Debian's kubectl is kubernetes-client; one from another source
	# (its own package "kubectl") will do as well, and both cannot be installed:
	# they ship the same /usr/bin/kubectl.
	--deploy)
		pkgs+=(python3-yaml)
		if ! command -v kubectl >/dev/null; then
			pkgs+=(kubernetes-client)
		fi
		;;
	# qemu boots the downloaded kernel, cpio packs its initramfs, kmod's modprobe
	# orders the guest's modules (the kernel and busybox are downloaded by
	# scripts/vm-test.sh into build/, not installed).
	--vm) pkgs+=(qemu-system-x86 cpio kmod) ;;
	# The cross compiler and, through multiarch, the arm64 libraries the link
	# line names. libhttp-parser-dev is not Multi-Arch: same (its :arm64 would
	# remove the host's): only the arm64 runtime library, which the Makefile
	# links by file name. The header comes from the host's -dev package.
	--arm64 | --vm-arm64)
		arm64=1
		# qemu-user: `make unit-test ARCH=arm64` (qemu-aarch64, no binfmt handler).
	pkgs+=(gcc-aarch64-linux-gnu libhttp-parser-dev qemu-user)
		for p in libbpf-dev libelf-dev zlib1g-dev libyaml-dev libjson-c-dev libmnl-dev libnghttp2-dev \
			libssl-dev libcurl4-openssl-dev libmicrohttpd-dev libcmocka-dev libhttp-parser2.9 pkgconf; do
			pkgs+=("$p:arm64")
		done
		# qemu boots Debian's arm64 cloud kernel; the kernel, busybox and the
		# guest's programs are downloaded by scripts/vm-test.sh, not installed.
		[[ $group == --arm64 ]] || pkgs+=(qemu-system-arm cpio kmod)
		;;
	*) echo "deps.sh: unknown group $group" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	# dpkg-query prints "install ok installed" only for a fully installed
	# package; a Multi-Arch: same one installed for amd64 and arm64 gives a
	# line per architecture.
	# (It exits 1 for a package it does not know: no status, so missing.)
	st=$(dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | sort -u) || st=
	if [[ $st != "install ok installed" ]]; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ((arm64)) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "deps.sh: adding dpkg architecture arm64"
	dpkg --add-architecture arm64
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
