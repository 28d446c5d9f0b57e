#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make image`: an OCI image of the agent built only from Debian packages; no
# base image is pulled from a registry (none is reachable from CI, and a base
# image would bring a shell, apt and dpkg that the agent never runs).
#   1. the runtime libraries: every shared object `ldd $OUT/ksplit` resolves
#      is mapped to its package with `dpkg -S`; mmdebstrap --variant=extract
#      unpacks those packages and what they depend on (apt resolves it) from
#      the same package sources this machine uses. extract, not essential or
#      custom: those install dpkg, tar, perl-base and maintainer scripts into
#      the root; the libraries need no maintainer script, only the loader's
#      built-in multiarch search path (no ld.so.cache is needed).
#      Documentation, man pages and locales are dropped.
#   2. umoci (a Debian package) makes an OCI layout with two layers: the
#      libraries (changes only with the Debian packages) and /usr/bin/ksplit
#      (debug info stripped), entrypoint `/usr/bin/ksplit run`.
# Layers are tarred with sorted names, uid/gid 0 and mtime SOURCE_DATE_EPOCH
# (default: the last commit's time), so the same inputs give the same digests.
#
# Output: $OUT/image/oci (OCI layout, tag $TAG), $OUT/image/ksplit-image.tar
# (the same as an oci-archive: `podman load -i` or `podman run oci-archive:`),
# $OUT/image/packages.txt (package=version of every package in the image).
# Prints the size compressed (the layers as stored) and unpacked.
#
# Environment: OUT (default build), IMAGE_TAG (default the ksplit version),
# IMAGE_MIRRORS (mirror arguments for mmdebstrap; default as fresh-check.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
BIN=$OUT/ksplit
IMG=$OUT/image

log() { printf '[image] %s\n' "$*"; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }

[[ -x $BIN ]] || die "$BIN not built (run: make)"
for c in mmdebstrap umoci; do
	command -v "$c" >/dev/null || die "$c missing (run: scripts/deps.sh --image)"
done
TAG=${IMAGE_TAG:-$("$BIN" version | awk '{ print $2 }')}
[[ -n $TAG ]] || die "cannot read the version from $BIN version"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

if [[ -n ${IMAGE_MIRRORS:-} ]]; then
	read -r -a mirrors <<<"$IMAGE_MIRRORS"
elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
	mirrors=(/etc/apt/sources.list.d/debian.sources)
else
	mirrors=("deb http://deb.debian.org/debian bookworm main"
		"deb http://deb.debian.org/debian bookworm-updates main"
		"deb http://deb.debian.org/debian-security bookworm-security main")
fi

# The package of each library the binary links. dpkg knows a file by the
# path its package ships it at: on a merged-/usr system ldd may print
# /lib/... for a file shipped as /usr/lib/... or the other way round.
libs_to_pkgs() {
	local lib p
	while read -r lib; do
		p=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null ||
			dpkg -S "${lib#/usr}" 2>/dev/null) || die "no package ships $lib"
		echo "${p%%:*}"
	done < <(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }') | sort -u
}
mapfile -t pkgs < <(libs_to_pkgs)
((${#pkgs[@]} > 0)) || die "ldd $BIN found no libraries"
log "runtime packages from ldd $BIN: ${pkgs[*]}"

TMP=$(mktemp -d "$OUT/.image.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/root" "$TMP/bin/usr/bin"

# tar a directory as one layer, reproducibly.
layer_tar() {
	tar -C "$1" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$2" .
}

t0=$SECONDS
incl=$(IFS=,; echo "${pkgs[*]}")
# The hook lists the .debs it unpacked (name=version) before mmdebstrap
# cleans apt's cache: what the image holds, for provenance.
# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
mmdebstrap --quiet --variant=extract --include="$incl" --format=directory \
	--extract-hook='find "$1/var/cache/apt/archives" -name "*.deb" -printf "%f\n" >"$1/../debs.txt"' \
	bookworm "$TMP/root" "${mirrors[@]}"
sed -E 's/^([^_]+)_([^_]+)_.*/\1=\2/; s/%3a/:/' "$TMP/debs.txt" | sort >"$TMP/packages.txt"
[[ -s $TMP/packages.txt ]] || die "mmdebstrap unpacked no packages"
rm -rf "$TMP/root/usr/share/doc" "$TMP/root/usr/share/man" "$TMP/root/usr/share/locale" \
	"$TMP/root/usr/share/info" "$TMP/root/usr/share/lintian" "$TMP/root/var/cache/apt" \
	"$TMP/root/var/lib/apt" "$TMP/root/var/log"/* "$TMP/root/dev"/* 2>/dev/null || true
mkdir -p "$TMP/root/tmp" "$TMP/root/sys/fs/bpf" "$TMP/root/proc" "$TMP/root/run" "$TMP/root/etc/ksplit"
chmod 1777 "$TMP/root/tmp"
log "mmdebstrap --variant=extract: $((SECONDS - t0)) s"

# The agent: the debug info is for developers, not for the node.
objcopy --strip-debug "$BIN" "$TMP/bin/usr/bin/ksplit"
# Every library the binary needs must resolve inside the image: a chroot
# runs its loader with only the image's files.
loader=$(ldd "$BIN" | awk '$1 ~ /^\// { print $1; exit }')
[[ -n $loader ]] || die "ldd $BIN names no program interpreter"
cp "$TMP/bin/usr/bin/ksplit" "$TMP/root/ksplit.check"
missing=$(chroot "$TMP/root" "$loader" --list /ksplit.check 2>&1 | grep 'not found' || true)
rm -f "$TMP/root/ksplit.check"
[[ -z $missing ]] || die "libraries missing from the image: $missing"

layer_tar "$TMP/root" "$TMP/libs.tar"
layer_tar "$TMP/bin" "$TMP/ksplit.tar"

rm -rf "$IMG"
mkdir -p "$IMG"
L=$IMG/oci
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
umoci init --layout "$L"
umoci new --image "$L:$TAG"
umoci raw add-layer --image "$L:$TAG" --history.created "$created" \
	--history.created_by "mmdebstrap --variant=extract bookworm: $incl" "$TMP/libs.tar"
umoci raw add-layer --image "$L:$TAG" --history.created "$created" \
	--history.created_by "ksplit $TAG (strip-debug)" "$TMP/ksplit.tar"
umoci config --image "$L:$TAG" --created "$created" --history.created "$created" \
	--config.entrypoint /usr/bin/ksplit --config.entrypoint run \
	--config.label org.opencontainers.image.title=ksplit \
	--config.label "org.opencontainers.image.version=$TAG" \
	--config.label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# The blobs the config replaced stay unreferenced until collected.
umoci gc --layout "$L"
cp "$TMP/packages.txt" "$IMG/packages.txt"
tar -C "$L" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
	-cf "$IMG/ksplit-image.tar" .

# Compressed: the gzip layers and the JSON as a registry stores them.
comp=$(du -sb --apparent-size "$L/blobs" | awk '{ print $1 }')
raw=$(($(stat -c %s "$TMP/libs.tar") + $(stat -c %s "$TMP/ksplit.tar")))
log "packages: $(wc -l <"$IMG/packages.txt") ($IMG/packages.txt)"
log "image ksplit:$TAG in $L and $IMG/ksplit-image.tar:" \
	"$(awk -v b="$comp" 'BEGIN { printf "%.1f MB", b / 1e6 }') compressed," \
	"$(awk -v b="$raw" 'BEGIN { printf "%.1f MB", b / 1e6 }') unpacked"
