#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make vm-test KERNEL=6.1|5.10 [ARCH=arm64]` (root; network on the first
# run): run the build against a Debian cloud kernel under qemu, because EKS
# nodes do not run the kernel this machine runs (AL2023: 6.1, AL2: 5.10; many
# of them on arm64, Graviton).
#   1. downloads, with apt, the kernel's own package and busybox-static into
#      $OUT/vm/<kernel>/debs/, never installing them: a private sources list
#      and private lists under $OUT/vm/<kernel>/apt/ (apt's Dir::Etc::sourcelist,
#      Dir::State::Lists, Dir::Cache), so the machine's own sources and lists
#      stay untouched;
#   2. packs an initramfs: busybox, the host programs the tests exec (bash,
#      ip, nsenter, bpftool, jq, timeout, date) with their shared libraries and
#      loader (this host is Debian 12, the guest runs its binaries; for
#      ARCH=arm64 the same programs from Debian 12's arm64 packages, downloaded
#      with their dependencies the same private way and unpacked into
#      $OUT/vm/userland/sysroot/, their libraries found by readelf's NEEDED
#      there and then in the host's arm64 multiarch libraries), the build
#      ($OUT/ksplit, the tools, the kernel test binaries named in TESTS),
#      scripts/run-tests.sh and the demo, and the modules the tests need
#      (veth, bridge, sock_diag ...) from the kernel's own package, in the
#      order modprobe --show-depends gives;
#   3. boots it with qemu-system-x86_64 (ARCH=arm64: qemu-system-aarch64,
#      -M virt) without KVM (nested virtualization fails here; TCG), serial
#      console on stdout. Inside: `ksplit probe`, the
#      kernel tests through scripts/run-tests.sh (the usual "=== test_X: N
#      passed, M failed" lines), then the checkout demo (`ksplit run` on
#      examples/checkout-ab, a short client check of the 25/75 and 50/50
#      splits), then a line "vm-test: guest done rc=N".
# Exit status: 0 only when that line says rc=0.
#
# Environment: OUT (build dir, default build), KERNEL (6.1 or 5.10), ARCH
# (x86 or arm64, the build's: `make ARCH=arm64` builds into build-arm64/),
# TESTS (kernel test names, default below), VM_TIMEOUT (seconds for the whole
# guest, default 1800), VM_MIRROR (Debian mirror, default deb.debian.org),
# DEMO_N (connections per demo run in the guest, default 1000; the guest
# allows 6 points off the configured share, 4.4 sigma at 1000), KT_SLOW
# (how much slower the guest is, default 20: selftests/kern/env.h).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
KERNEL=${KERNEL:-${1:-}}
ARCH=${ARCH:-x86}
# Each loads and attaches the datapath; the split and getpeername (split),
# UDP (udp_vips), passive ejection (passive), drain (drain). `ksplit run`
# is the demo's. test_agent (restart, adopt) takes ~5 min here: TESTS=... adds it.
TESTS=${TESTS:-split udp_vips passive drain}
VM_TIMEOUT=${VM_TIMEOUT:-1800}
MIRROR=${VM_MIRROR:-http://deb.debian.org}
DEMO_N=${DEMO_N:-1000}
# Without KVM the guest runs ~20-30x slower: the share tests make 1/K of
# their connects, widen their tolerance by sqrt(K) and wait K times longer
# (selftests/kern/env.h).
KT_SLOW=${KT_SLOW:-20}
# Modules the tests and the demo load on a modular kernel (built in on 6.18).
MODULES=(veth bridge sch_ingress cls_bpf inet_diag tcp_diag udp_diag dummy)
# Host programs the guest runs; everything else is busybox.
HOST_BINS=(bash timeout date mktemp jq ip nsenter bpftool)
# Their Debian packages, for a guest of another architecture (ARCH=arm64).
HOST_PKGS=(bash coreutils jq iproute2 util-linux bpftool)

log() { printf '[vm-test] %s\n' "$*"; }
die() { printf '[vm-test] FAIL: %s\n' "$*" >&2; exit 1; }

# The guest's architecture: Debian's name for it, qemu, the serial console.
case $ARCH in
x86)
	DEB_ARCH=amd64 QEMU=qemu-system-x86_64 TTY=ttyS0 DEPS=--vm
	QEMU_ARGS=(-cpu max)
	;;
arm64)
	# -cpu max: an ARMv8.x with LSE atomics, as a Graviton 2 or later is.
	# pauth-impdef: QEMU's documentation calls the architected
	# pointer-authentication hash slow to emulate; its own one is cheaper.
	DEB_ARCH=arm64 QEMU=qemu-system-aarch64 TTY=ttyAMA0 DEPS=--vm-arm64
	# shellcheck disable=SC2054 # one -cpu value with its property
	QEMU_ARGS=(-M virt -cpu max,pauth-impdef=on)
	;;
*) die "ARCH must be x86 or arm64, not '$ARCH'" ;;
esac
# Guest programs come from the host when the guest runs the host's architecture.
CROSS=0
[[ $DEB_ARCH == "$(dpkg --print-architecture)" ]] || CROSS=1

# What the guest checks (scripts/vm-guest.sh): the tests pass, or ksplit
# refuses this kernel naming what it lacks.
case $KERNEL in
6.1) SUITE=bookworm VM_EXPECT=run VM_MISSING= ;;
5.10) SUITE=bullseye VM_EXPECT=refuse VM_MISSING='BPF atomics with fetch (Linux 5.12)|bpf_loop (Linux 5.17)|ksplit needs Linux 5.17 or later' ;;
*) die "KERNEL must be 6.1 (Debian 12) or 5.10 (Debian 11), not '${KERNEL}'" ;;
esac
[[ $EUID -eq 0 ]] || die "run as root (apt downloads into a private state dir)"
# A kernel ksplit refuses runs no kernel test.
[[ $VM_EXPECT == run ]] || TESTS=
command -v $QEMU >/dev/null || die "$QEMU missing (scripts/deps.sh $DEPS)"
for t in $TESTS; do
	[[ -x $OUT/selftests/kern/test_$t ]] || die "$OUT/selftests/kern/test_$t not built"
done
for b in ksplit ks_load ks_server ks_stat; do
	[[ -x $OUT/$b ]] || die "$OUT/$b not built (run: make ARCH=$ARCH)"
done
# A build for another machine would not run in the guest.
want=$([[ $ARCH == arm64 ]] && echo AArch64 || echo X86-64)
readelf -h "$OUT/ksplit" | grep -q "Machine: *.*$want" || die "$OUT/ksplit is not an $ARCH build (make ARCH=$ARCH)"

VM=$OUT/vm/$KERNEL
mkdir -p "$VM/debs"

# --- 1. the kernel's package, from a private apt state ------------------------

# apt_state DIR SUITE ARRAY: a private sources list and lists for SUITE's
# $DEB_ARCH packages under DIR, fresh within a day; ARRAY gets apt's options.
apt_state() {
	local dir=$1 suite=$2
	local -n opts=$3
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	printf 'deb %s/debian %s main\ndeb %s/debian %s-updates main\ndeb %s/debian-security %s-security main\n' \
		"$MIRROR" "$suite" "$MIRROR" "$suite" "$MIRROR" "$suite" >"$dir/sources.list"
	opts=(
		-o "Dir::Etc::sourcelist=$dir/sources.list"
		-o "Dir::Etc::sourceparts=-"
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/cache"
		-o "APT::Sandbox::User=root"
		-o "APT::Architecture=$DEB_ARCH"
		-o "APT::Architectures=$DEB_ARCH"
	)
	# A day-old list still names a package the mirror has; older ones may not.
	if [[ -z $(find "$dir/lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null) ]]; then
		log "apt-get update for $suite $DEB_ARCH (private lists in $dir)"
		apt-get "${opts[@]}" update -qq || die "apt-get update of $dir/sources.list failed"
	fi
}
apt_state "$VM/apt" "$SUITE" APT_OPTS
KPKG=$(apt-cache "${APT_OPTS[@]}" depends linux-image-cloud-$DEB_ARCH |
	sed -n "s/^ *Depends: \\(linux-image-[0-9].*-cloud-$DEB_ARCH\\)\$/\\1/p" | head -n1)
[[ -n $KPKG ]] || die "no versioned package behind linux-image-cloud-$DEB_ARCH in $SUITE"
KVER=${KPKG#linux-image-}
if ! compgen -G "$VM/debs/${KPKG}_*.deb" >/dev/null || ! compgen -G "$VM/debs/busybox-static_*.deb" >/dev/null; then
	log "downloading $KPKG and busybox-static ($SUITE) into $VM/debs"
	(cd "$VM/debs" && apt-get "${APT_OPTS[@]}" download -qq "$KPKG" busybox-static) || die "apt-get download failed"
fi
KDIR=$VM/kernel-$KVER
if [[ ! -e $KDIR/.ok ]]; then
	rm -rf "$KDIR" && mkdir -p "$KDIR"
	dpkg-deb -x "$(compgen -G "$VM/debs/${KPKG}_*.deb" | tail -n1)" "$KDIR"
	dpkg-deb -x "$(compgen -G "$VM/debs/busybox-static_*.deb" | tail -n1)" "$KDIR/busybox"
	# modules.dep for modprobe --show-depends below (the package ships none).
	depmod -b "$KDIR" "$KVER"
	touch "$KDIR/.ok"
fi
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
[[ -f $VMLINUZ ]] || die "$VMLINUZ not in $KPKG"
log "kernel $KVER ($KPKG, $SUITE)"

# The guest's programs for another architecture: HOST_PKGS and everything
# they depend on (apt-cache's closure, without recommends), unpacked, not
# installed, into a sysroot the initramfs takes its files from. From this
# host's release (Debian 12) whatever the kernel's: the build's libraries
# and these share one libc, which must be as new as the one it linked with.
USR=$OUT/vm/userland
SYS=$USR/sysroot
if ((CROSS)) && [[ ! -e $SYS/.ok ]]; then
	# shellcheck disable=SC1091 # this host's, read where it runs
	USR_SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME")
	apt_state "$USR/apt" "$USR_SUITE" USR_OPTS
	mapfile -t sys_pkgs < <(apt-cache "${USR_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances "${HOST_PKGS[@]}" | grep -v -e '^ ' -e '^<' | sort -u)
	((${#sys_pkgs[@]} > 0)) || die "apt-cache found no $DEB_ARCH packages for ${HOST_PKGS[*]}"
	log "downloading ${#sys_pkgs[@]} $USR_SUITE $DEB_ARCH packages for the guest's programs into $USR/debs"
	mkdir -p "$USR/debs"
	(cd "$USR/debs" && apt-get "${USR_OPTS[@]}" download -qq "${sys_pkgs[@]}") || die "apt-get download of the guest's programs failed"
	rm -rf "$SYS" && mkdir -p "$SYS"
	for deb in "$USR"/debs/*.deb; do
		dpkg-deb -x "$deb" "$SYS"
	done
	touch "$SYS/.ok"
fi

# --- 2. the initramfs ---------------------------------------------------------

R=$VM/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,root,etc,ksplit/scripts,ksplit/examples}
ln -s usr/lib "$R/lib"
ln -s usr/lib64 "$R/lib64"
mkdir -p "$R/var" && ln -s ../run "$R/var/run"
cp "$KDIR/busybox/bin/busybox" "$R/bin/busybox"
# system() and popen() run /bin/sh: Debian's busybox sh prefers its own
# applets to PATH (its ip has no netns), so /bin/sh is the host's bash.
# /init links busybox's other applets into /bin (this host may not run an
# arm64 busybox to list them).
ln -s /usr/bin/bash "$R/bin/sh"

# A host file at its own path in the root, under /usr for the merged /lib.
copy_host() {
	local src=$1 dst=$1
	case $dst in /lib/* | /lib64/* | /bin/* | /sbin/*) dst=/usr$dst ;; esac
	[[ -e $R$dst ]] && return 0
	mkdir -p "$(dirname "$R$dst")"
	cp -L "$src" "$R$dst"
}
# A path inside the sysroot, its symlinks followed inside it too (an
# absolute link must not land on this host's file).
sys_file() {
	local p=$1 t i
	for ((i = 0; i < 16; i++)); do
		[[ -L $SYS$p ]] || break
		t=$(readlink "$SYS$p")
		if [[ $t == /* ]]; then p=$t; else p=$(dirname "$p")/$t; fi
	done
	printf '%s\n' "$SYS$p"
}
# The libraries an arm64 file names (readelf's NEEDED, recursively) and its
# loader, from the sysroot, else from this host's arm64 multiarch libraries
# (the ones the build linked against: scripts/deps.sh --arm64).
MULTIARCH=aarch64-linux-gnu
copy_cross_libs() {
	local f=$1 n d src interp
	interp=$(readelf -l "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	if [[ -n $interp && ! -e $R/usr$interp ]]; then
		mkdir -p "$(dirname "$R/usr$interp")"
		cp -L "$(sys_file "$interp")" "$R/usr$interp"
	fi
	for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
		[[ -e $R/usr/lib/$MULTIARCH/$n ]] && continue
		src=
		for d in "$SYS"/{,usr/}lib/$MULTIARCH /{,usr/}lib/$MULTIARCH; do
			[[ -e $d/$n || -L $d/$n ]] || continue
			src=$d/$n
			[[ $d != "$SYS"/* ]] || src=$(sys_file "${d#"$SYS"}/$n")
			break
		done
		[[ -n $src && -e $src ]] || die "$n (needed by $f) is in neither $SYS nor /usr/lib/$MULTIARCH"
		mkdir -p "$R/usr/lib/$MULTIARCH"
		cp -L "$src" "$R/usr/lib/$MULTIARCH/$n"
		copy_cross_libs "$R/usr/lib/$MULTIARCH/$n"
	done
}
# Every shared library a program needs, the loader included.
copy_libs() {
	local f=$1 lib
	if ((CROSS)); then
		copy_cross_libs "$f"
		return
	fi
	for lib in $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		copy_host "$lib"
	done
}
for b in "${HOST_BINS[@]}"; do
	p=$(command -v "$b") || die "$b not installed on this host (scripts/deps.sh)"
	if ((CROSS)); then
		# Where this host has it (PATH order), from the sysroot's package.
		src=
		for d in /usr/sbin /usr/bin /sbin /bin; do
			[[ -e $SYS$d/$b || -L $SYS$d/$b ]] && src=$(sys_file "$d/$b") && break
		done
		[[ -n $src && -f $src ]] || die "$b is not in the $DEB_ARCH packages ${HOST_PKGS[*]} ($SYS)"
		dst=$p
		case $dst in /bin/* | /sbin/*) dst=/usr$dst ;; esac
		mkdir -p "$(dirname "$R$dst")"
		cp -L "$src" "$R$dst"
		copy_cross_libs "$R$dst"
		continue
	fi
	copy_host "$(readlink -f "$p")"
	copy_libs "$(readlink -f "$p")"
	# Under its PATH name too: /usr/bin and /usr/sbin come before busybox's /bin.
	[[ $(readlink -f "$p") == "$p" ]] || copy_host "$p"
done

mkdir -p "$R/ksplit/build/selftests/kern"
for b in ksplit ks_load ks_server ks_stat; do
	copy_libs "$OUT/$b"
	cp "$OUT/$b" "$R/ksplit/build/$b"
done
for t in $TESTS; do
	copy_libs "$OUT/selftests/kern/test_$t"
	cp "$OUT/selftests/kern/test_$t" "$R/ksplit/build/selftests/kern/"
done
cp "$ROOT"/scripts/{vm-guest.sh,run-tests.sh,demo.sh,bpffs.sh} "$R/ksplit/scripts/"
cp "$OUT/ksplit.bpf.o" "$R/ksplit/build/"
cp -r "$ROOT/examples/checkout-ab" "$R/ksplit/examples/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"

# Modules in load order; one already built into this kernel gives no insmod line.
: >"$R/modules.list"
for m in "${MODULES[@]}"; do
	deps=$(modprobe -d "$KDIR" -S "$KVER" --show-depends "$m") || die "module $m is not in $KPKG"
	awk '$1 == "insmod" { print $2 }' <<<"$deps" | while read -r ko; do
		rel=${ko#"$KDIR"}
		grep -qxF "$rel" "$R/modules.list" && continue
		mkdir -p "$(dirname "$R$rel")"
		cp "$ko" "$R$rel"
		echo "$rel" >>"$R/modules.list"
	done
done
[[ -s $R/modules.list ]] || grep -q 'CONFIG_VETH=y' "$KDIR/boot/config-$KVER" ||
	die "no module found in $KPKG (depmod of $KDIR failed?)"

cat >"$R/init" <<EOF
#!/bin/sh
# Generated by scripts/vm-test.sh: mounts, modules, then scripts/vm-guest.sh.
# Busybox's applets into /bin, each where no host program already is.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C KT_SLOW=$KT_SLOW DEMO_N=$DEMO_N
export VM_EXPECT=$VM_EXPECT VM_MISSING='$VM_MISSING'
export VM_TESTS='$(for t in $TESTS; do printf 'build/selftests/kern/test_%s ' "$t"; done)'
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# bash's process substitution (run-tests.sh) opens /dev/fd/N.
ln -s /proc/self/fd /dev/fd
mount -t tmpfs tmp /tmp
mount -t tmpfs -o mode=755 run /run
mkdir -p /run/netns
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
while read -r ko; do insmod "\$ko" || echo "vm-test: insmod \$ko failed"; done </modules.list
ip link set lo up
echo "vm-test: guest up, kernel \$(uname -r)"
bash /ksplit/scripts/vm-guest.sh
echo "vm-test: guest done rc=\$?"
poweroff -f
EOF
chmod +x "$R/init"
# No modules.dep in the guest: insmod takes the files in the order above.
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$VM/initrd.gz"
log "initramfs $(du -h "$VM/initrd.gz" | cut -f1) ($(du -sh "$R" | cut -f1) unpacked), tests: $TESTS"

# --- 3. boot ------------------------------------------------------------------

CONSOLE=$VM/console.log
log "booting under qemu (TCG, no KVM), console in $CONSOLE"
start=$SECONDS
set +e
timeout --kill-after=10 "$VM_TIMEOUT" "$QEMU" -accel tcg "${QEMU_ARGS[@]}" -smp 2 -m 2048 -nographic \
	-no-reboot -kernel "$VMLINUZ" -initrd "$VM/initrd.gz" \
	-append "console=$TTY panic=-1 quiet rdinit=/init" </dev/null 2>&1 |
	sed -u 's/\r$//' | tee "$CONSOLE"
qrc=${PIPESTATUS[0]}
set -e
log "qemu exited with status $qrc after $((SECONDS - start)) s"
grc=$(sed -n 's/^vm-test: guest done rc=\([0-9]*\)$/\1/p' "$CONSOLE" | tail -n1)
[[ -n $grc ]] || die "the guest did not finish (timeout ${VM_TIMEOUT}s or crash); see $CONSOLE"
[[ $grc -eq 0 ]] || die "a test failed in the guest on $KVER; see $CONSOLE"
log "all passed on $KVER ($ARCH)"
