#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make fresh-check` (root): test the README's promise on a fresh Debian 12
# system. CI and dev machines have packages installed by hand, which hides a
# package missing from scripts/deps.sh; a clean bookworm root file system does
# not. The check:
#   1. builds a minbase bookworm tarball with mmdebstrap (cached in
#      $OUT/fresh/, keyed by its recipe; installs mmdebstrap if missing) with
#      only make and ca-certificates added: what a user needs to type `make`,
#      not what deps.sh must install;
#   2. unpacks the pristine tarball into a new directory every run and copies
#      the work tree in (tracked and untracked files, not build/ nor ignored
#      files, so uncommitted changes are checked too);
#   3. in a private mount namespace (nothing mounted there propagates back and
#      every mount dies with it), mounts /proc, /dev, /sys (with the host's
#      cgroup2 and bpffs under it: the tests' cgroups and pins are real), a
#      tmpfs /run, and runs `make demo` then `make test` in a chroot;
#   4. always: kills every process whose root is the chroot, checks nothing is
#      mounted there any more and removes the directory.
# Netns made inside are bound under the chroot's own /run/netns in the private
# namespace, so one a test leaked would die with it rather than outlive the check.
# Each output line of the inner makes is prefixed with seconds since the
# phase started, so the deps install time can be read off the log.
#
# Environment: OUT (build dir, default build), FRESH_MIRRORS (mirror arguments
# for mmdebstrap; default this machine's /etc/apt/sources.list.d/debian.sources
# if it exists, else deb.debian.org bookworm, bookworm-updates, bookworm-security).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
INNER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[fresh] %s\n' "$*"; }
die() { printf '[fresh] FAIL: %s\n' "$*" >&2; exit 1; }

# Prefix each line with the seconds since this phase began.
stamp() {
	local line t0=$SECONDS
	while IFS= read -r line; do printf '[%4ds] %s\n' $((SECONDS - t0)) "$line"; done
}

# --- inner half: runs as `unshare --mount` child, mounts and chroots ----------
if [[ ${1:-} == --inner ]]; then
	CH=$2
	# Private propagation (unshare's default, stated again): unmounts and
	# mounts below never reach the host's namespace.
	mount --make-rprivate /
	# The chroot's / must be a mount point, as a machine's is: `ip netns`
	# runs `mount --make-rslave /`, which fails (EINVAL) on a plain directory.
	mount --bind "$CH" "$CH"
	mount -t proc proc "$CH/proc"
	mount --rbind /dev "$CH/dev"
	mount --make-rslave "$CH/dev"
	# /sys with its submounts: the cgroup2 mount and bpffs come along at the
	# same paths as on the host.
	mount --rbind /sys "$CH/sys"
	mount --make-rslave "$CH/sys"
	if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
		mount -t bpf bpf "$CH/sys/fs/bpf"
	fi
	cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[[ -n $cg2 ]] || die "no cgroup2 mount on this machine"
	[[ -d $CH$cg2 ]] || die "cgroup2 mount $cg2 not visible in the chroot"
	# A booted Debian has a tmpfs /run; ip netns keeps its handles there.
	mount -t tmpfs -o mode=755 tmpfs "$CH/run"
	mkdir -p "$CH/run/netns"
	cp -L /etc/resolv.conf "$CH/etc/resolv.conf"

	in_chroot() {
		env -i PATH=$INNER_PATH HOME=/root TERM=dumb LANG=C.UTF-8 \
			chroot "$CH" /bin/bash -c "cd /root/ksplit && $1" 2>&1 | stamp
		return "${PIPESTATUS[0]}"
	}
	rc=0
	t=$(date +%s)
	log "phase make demo (installs deps first)"
	in_chroot 'make demo' || rc=$?
	log "phase make demo: exit $rc, $(($(date +%s) - t)) s"
	if ((rc == 0)); then
		t=$(date +%s)
		log "phase make test"
		in_chroot 'make test' || rc=$?
		log "phase make test: exit $rc, $(($(date +%s) - t)) s"
	fi
	exit "$rc"
fi

# --- outer half ---------------------------------------------------------------
[[ $EUID -eq 0 ]] || die "run as root (mmdebstrap, chroot, mounts, kernel tests)"
cd "$ROOT"
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
FRESH=$OUT/fresh
mkdir -p "$FRESH"

if ! command -v mmdebstrap >/dev/null; then
	log "installing mmdebstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap
fi

if [[ -n ${FRESH_MIRRORS:-} ]]; then
	read -r -a mirrors <<<"$FRESH_MIRRORS"
elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
	mirrors=(/etc/apt/sources.list.d/debian.sources)
else
	mirrors=("deb http://deb.debian.org/debian bookworm main"
		"deb http://deb.debian.org/debian bookworm-updates main"
		"deb http://deb.debian.org/debian-security bookworm-security main")
fi
mmargs=(--variant=minbase "--include=make,ca-certificates" bookworm)
# The cache is keyed by the recipe, so changing it never reuses an old tarball.
key=$( { printf '%s\n' "${mmargs[@]}" "${mirrors[@]}"
	for m in "${mirrors[@]}"; do [[ -f $m ]] && cat "$m"; done; } | sha256sum | cut -c1-12)
TAR=$FRESH/rootfs-$key.tar

t0=$(date +%s)
if [[ ! -s $TAR ]]; then
	log "phase mmdebstrap: ${mmargs[*]} -> $TAR"
	mmdebstrap --quiet --format=tar "${mmargs[@]}" "$TAR.tmp" "${mirrors[@]}"
	mv "$TAR.tmp" "$TAR"
	log "phase mmdebstrap: $(($(date +%s) - t0)) s"
else
	log "phase mmdebstrap: cached $TAR (rm it to rebuild)"
fi

INNER_PID=
CH=$(mktemp -d "$FRESH/root.XXXXXX")
CH_ID=$(stat -c %d:%i "$CH")

# Every process whose root is the chroot: the inner makes' leftovers.
chroot_pids() {
	local d p
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[[ $(stat -L -c %d:%i "$d/root" 2>/dev/null) == "$CH_ID" ]] && echo "$p"
	done
	return 0
}

cleanup() {
	local rc=$? pids i sig
	set +e
	trap - EXIT INT TERM
	# The inner half first, so it starts nothing new in the chroot.
	[[ -n $INNER_PID ]] && kill -TERM "$INNER_PID" 2>/dev/null
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(chroot_pids)
		[[ -z $pids ]] && break
		sig=TERM
		((i <= 3)) || sig=KILL
		log "SIG$sig to processes left in the chroot: ${pids//$'\n'/ }"
		# shellcheck disable=SC2086 # one pid per word
		kill -"$sig" $pids 2>/dev/null
		sleep 1
	done
	[[ -z $(chroot_pids) ]] || { log "processes still in the chroot"; rc=1; }
	# The mounts lived in the inner namespace; none may show here.
	if awk -v ch="$CH" 'index($2, ch) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
		log "still mounted under $CH: not removing it"
		rc=1
	else
		# --one-file-system: never descend into anything mounted after all.
		rm -rf --one-file-system "$CH"
	fi
	log "total $(($(date +%s) - t0)) s; $([[ $rc -eq 0 ]] && echo PASS || echo "FAIL (exit $rc)")"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t=$(date +%s)
tar -C "$CH" --numeric-owner -xpf "$TAR"
# No daemon a package ships may start inside (nghttp2-server's nghttpx): a
# chroot has no init to stop it. The standard Debian chroot convention.
printf '#!/bin/sh\nexit 101\n' >"$CH/usr/sbin/policy-rc.d"
chmod 755 "$CH/usr/sbin/policy-rc.d"
mkdir -p "$CH/root/ksplit"
# Tracked and untracked (not ignored) files of the work tree; deleted ones skipped.
git ls-files -z -co --exclude-standard |
	while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done |
	tar --null -T - -cf - | tar -C "$CH/root/ksplit" -xf -
log "phase unpack + copy: $(($(date +%s) - t)) s"

# In the background so that a TERM or INT reaches cleanup() at once, not
# after the whole inner run.
unshare --mount --propagation private bash "$ROOT/scripts/fresh-check.sh" --inner "$CH" &
INNER_PID=$!
wait "$INNER_PID"
