#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Install the Debian 12 packages that ksplit's build, tests and demo need.
# Idempotent: when everything is installed it only runs dpkg-query and exits.
#   scripts/deps.sh           build + test + demo
#   scripts/deps.sh --bench   also what `make bench` compares against
#   scripts/deps.sh --image   also what `make image` and `make image-test` use
#   scripts/deps.sh --deploy  also kubectl and python3-yaml for `make deploy-test`
#   scripts/deps.sh --vm      also qemu, cpio and kmod for `make vm-test`
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
case "${1:-}" in
--bench) pkgs+=(iptables nftables haproxy gnuplot-nox linux-perf curl iperf3) ;;
# mmdebstrap unpacks the runtime libraries, umoci makes the OCI layout;
# podman runs it with runc (crun refuses hybrid cgroup hosts, see
# scripts/image-test.sh); curl asks the agent's probes.
--image) pkgs+=(mmdebstrap umoci podman runc curl) ;;
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
esac

missing=()
for p in "${pkgs[@]}"; do
	# dpkg-query prints "install ok installed" only for a fully installed package.
	if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
