#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make image`: OCI images of the agent built only from Debian packages; no
# base image is pulled from a registry (none is reachable from CI, and a base
# image would bring a shell, apt and dpkg that the agent never runs). One
# image of $OUT/ksplit (this host's architecture) and, when the arm64 cross
# build $ARM64_OUT/ksplit exists (`make ARCH=arm64`), a second one for
# linux/arm64. For each:
#   1. the runtime libraries: each shared object the binary names (readelf -d
#      NEEDED; readelf reads a foreign ELF file where ldd would have to run
#      it) is looked up in that architecture's multiarch directory and mapped
#      to its package with `dpkg -S` (the arm64 ones are the :arm64 packages
#      the cross build linked against); mmdebstrap --variant=extract
#      --architectures=ARCH unpacks those packages and what they depend on
#      (apt resolves it) from the same package sources this machine uses.
#      extract, not essential or custom: those install dpkg, tar, perl-base
#      and maintainer scripts into the root, and for arm64 would have to run
#      foreign code; the libraries need no maintainer script, only the
#      loader's built-in multiarch search path (no ld.so.cache is needed).
#      Documentation, man pages and locales are dropped.
#   2. the binary, debug info stripped, must run in that root with its
#      libraries only (scripts/in-root.sh: chroot, or for arm64 qemu-aarch64
#      with the host's arm64 libraries hidden): the loader lists no library
#      "not found" and `ksplit version` prints the version.
#   3. umoci (a Debian package) makes an OCI image with two layers: the
#      libraries (changes only with the Debian packages) and /usr/bin/ksplit,
#      entrypoint `/usr/bin/ksplit run`, config architecture ARCH, os linux.
# Layers are tarred with sorted names, uid/gid 0 and mtime SOURCE_DATE_EPOCH
# (default: the last commit's time), so the same inputs give the same digests.
#
# Output in $OUT/image/:
#   oci/               OCI layout: tags $TAG-amd64 and $TAG-arm64 (one per
#                      image) and $TAG: with two images an image index whose
#                      entries carry their platform (linux/amd64, linux/arm64),
#                      with one image that image's manifest.
#   ksplit-image.tar   oci-archive of the host's image alone, ref $TAG
#                      (`podman load -i`, `podman run oci-archive:`);
#   ksplit-image-arm64.tar  oci-archive of the arm64 image alone, ref $TAG-arm64;
#   packages.txt, packages-arm64.txt  package=version of each package in the image.
# Prints each image's size compressed (the layers as stored) and unpacked.
#
# Environment: OUT (default build), ARM64_OUT (default $OUT-arm64, i.e.
# build-arm64, where `make ARCH=arm64` builds), IMAGE_TAG (default the
# ksplit version), IMAGE_MIRRORS (mirror arguments for mmdebstrap; default as
# fresh-check.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
ARM64_OUT=${ARM64_OUT:-$OUT-arm64}
[[ $ARM64_OUT = /* ]] || ARM64_OUT=$ROOT/$ARM64_OUT
BIN=$OUT/ksplit
IMG=$OUT/image
HOST_ARCH=$(dpkg --print-architecture)

# shellcheck source=in-root.sh
source "$ROOT/scripts/in-root.sh"

log() { printf '[image] %s\n' "$*"; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }

[[ -x $BIN ]] || die "$BIN not built (run: make)"
for c in mmdebstrap umoci jq readelf; do
	command -v "$c" >/dev/null || die "$c missing (run: scripts/deps.sh --image)"
done
TAG=${IMAGE_TAG:-$("$BIN" version | awk '{ print $2 }')}
[[ -n $TAG ]] || die "cannot read the version from $BIN version"
VERSION=$("$BIN" version | awk '{ print $2 }')
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)

arches=("$HOST_ARCH")
bins=("$BIN")
if [[ $HOST_ARCH == amd64 && -x $ARM64_OUT/ksplit ]]; then
	arches+=(arm64)
	bins+=("$ARM64_OUT/ksplit")
elif [[ $HOST_ARCH == amd64 ]]; then
	log "x86 (amd64) image only: no ${ARM64_OUT#"$ROOT"/}/ksplit; run make ARCH=arm64 first for the linux/arm64 image beside it"
fi

if [[ -n ${IMAGE_MIRRORS:-} ]]; then
	read -r -a mirrors <<<"$IMAGE_MIRRORS"
elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
	mirrors=(/etc/apt/sources.list.d/debian.sources)
else
	mirrors=("deb http://deb.debian.org/debian bookworm main"
		"deb http://deb.debian.org/debian bookworm-updates main"
		"deb http://deb.debian.org/debian-security bookworm-security main")
fi

# The GNU triplet of a Debian architecture: its multiarch library directory.
triplet() {
	case $1 in
	amd64) echo x86_64-linux-gnu ;;
	arm64) echo aarch64-linux-gnu ;;
	*) die "no image for architecture $1" ;;
	esac
}

# libs_to_pkgs ARCH BIN: the package of each library BIN names. dpkg knows a
# file by the path its package ships it at: on a merged-/usr system the same
# file is under /lib/TRIPLET and /usr/lib/TRIPLET and only one is dpkg's.
libs_to_pkgs() {
	local arch=$1 bin=$2 t lib d p
	t=$(triplet "$arch")
	while read -r lib; do
		p=
		for d in /usr/lib/$t /lib/$t; do
			[[ -e $d/$lib ]] && p=$(dpkg -S "$d/$lib" 2>/dev/null | head -n 1) && break
		done
		[[ -n $p ]] || die "no installed $arch package ships $lib (named by $bin)"
		echo "${p%%:*}"
	done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p') | sort -u
}

# tar a directory as one layer, reproducibly.
layer_tar() {
	tar -C "$1" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -cf "$2" .
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

TMP=$(mktemp -d "$OUT/.image.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# build ARCH BIN REF: $TMP/ARCH/oci, an OCI layout holding BIN's image
# tagged REF; $TMP/ARCH/packages.txt.
build() {
	local arch=$1 bin=$2 ref=$3 W=$TMP/$1 t0=$SECONDS pkgs incl loader missing strip v comp raw
	mkdir -p "$W/root" "$W/bin/usr/bin"
	mapfile -t pkgs < <(libs_to_pkgs "$arch" "$bin")
	((${#pkgs[@]} > 0)) || die "readelf -d $bin names no library"
	log "$arch: runtime packages from readelf -d ${bin#"$ROOT"/}: ${pkgs[*]}"
	incl=$(IFS=,; echo "${pkgs[*]}")
	# The hook lists the .debs it unpacked (name=version) before mmdebstrap
	# cleans apt's cache: what the image holds, for provenance.
	# shellcheck disable=SC2016 # $1 is the hook's argument, expanded by mmdebstrap's shell
	mmdebstrap --quiet --variant=extract --architectures="$arch" --include="$incl" --format=directory \
		--extract-hook='find "$1/var/cache/apt/archives" -name "*.deb" -printf "%f\n" >"$1/../debs.txt"' \
		bookworm "$W/root" "${mirrors[@]}"
	sed -E 's/^([^_]+)_([^_]+)_.*/\1=\2/; s/%3a/:/' "$W/debs.txt" | sort >"$W/packages.txt"
	[[ -s $W/packages.txt ]] || die "$arch: mmdebstrap unpacked no packages"
	rm -rf "$W/root/usr/share/doc" "$W/root/usr/share/man" "$W/root/usr/share/locale" \
		"$W/root/usr/share/info" "$W/root/usr/share/lintian" "$W/root/var/cache/apt" \
		"$W/root/var/lib/apt" "$W/root/var/log"/* "$W/root/dev"/* 2>/dev/null || true
	mkdir -p "$W/root/tmp" "$W/root/sys/fs/bpf" "$W/root/proc" "$W/root/run" "$W/root/etc/ksplit"
	chmod 1777 "$W/root/tmp"
	log "$arch: mmdebstrap --variant=extract: $((SECONDS - t0)) s"

	# The agent: the debug info is for developers, not for the node.
	strip=objcopy
	[[ $arch == "$HOST_ARCH" ]] || strip=$(triplet "$arch")-objcopy
	command -v "$strip" >/dev/null || die "$strip missing (run: scripts/deps.sh --arm64)"
	"$strip" --strip-debug "$bin" "$W/bin/usr/bin/ksplit"
	# Every library the binary needs must resolve inside the image, with the
	# image's own loader and nothing of the host's.
	loader=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
	[[ -n $loader ]] || die "readelf -l $bin names no program interpreter"
	cp "$W/bin/usr/bin/ksplit" "$W/root/ksplit.check"
	missing=$(in_root "$arch" "$W/root" "$loader" --list /ksplit.check 2>&1 | grep 'not found' || true)
	[[ -z $missing ]] || die "$arch: libraries missing from the image: $missing"
	v=$(in_root "$arch" "$W/root" /ksplit.check version 2>&1) || die "$arch: ksplit version in the image root: $v"
	[[ $v == "ksplit $VERSION" ]] || die "$arch: the image's ksplit prints '$v', ${BIN#"$ROOT"/} 'ksplit $VERSION'"
	rm -f "$W/root/ksplit.check"

	layer_tar "$W/root" "$W/libs.tar"
	layer_tar "$W/bin" "$W/ksplit.tar"
	umoci init --layout "$W/oci"
	umoci new --image "$W/oci:$ref"
	umoci raw add-layer --image "$W/oci:$ref" --history.created "$created" \
		--history.created_by "mmdebstrap --variant=extract --architectures=$arch bookworm: $incl" "$W/libs.tar"
	umoci raw add-layer --image "$W/oci:$ref" --history.created "$created" \
		--history.created_by "ksplit $VERSION (strip-debug)" "$W/ksplit.tar"
	umoci config --image "$W/oci:$ref" --created "$created" --history.created "$created" \
		--architecture "$arch" --os linux \
		--config.entrypoint /usr/bin/ksplit --config.entrypoint run \
		--config.label org.opencontainers.image.title=ksplit \
		--config.label "org.opencontainers.image.version=$TAG" \
		--config.label "org.opencontainers.image.revision=$revision"
	# The blobs the config replaced stay unreferenced until collected.
	umoci gc --layout "$W/oci"

	# Compressed: the gzip layers and the JSON as a registry stores them.
	comp=$(du -sb --apparent-size "$W/oci/blobs" | awk '{ print $1 }')
	raw=$(($(stat -c %s "$W/libs.tar") + $(stat -c %s "$W/ksplit.tar")))
	log "$arch: $(wc -l <"$W/packages.txt") packages, $(mb "$comp") compressed, $(mb "$raw") unpacked," \
		"$((SECONDS - t0)) s"
}

rm -rf "$IMG"
mkdir -p "$IMG"
L=$IMG/oci
mkdir -p "$L/blobs/sha256"
descs=()
for i in "${!arches[@]}"; do
	a=${arches[i]}
	# The host's image keeps the plain version as its archive's ref.
	ref=$TAG
	[[ $a == "$HOST_ARCH" ]] || ref=$TAG-$a
	build "$a" "${bins[i]}" "$ref"
	sfx=
	[[ $a == "$HOST_ARCH" ]] || sfx=-$a
	cp "$TMP/$a/packages.txt" "$IMG/packages$sfx.txt"
	tar -C "$TMP/$a/oci" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		-cf "$IMG/ksplit-image$sfx.tar" .
	cp -n "$TMP/$a/oci/blobs/sha256/"* "$L/blobs/sha256/"
	# The manifest's descriptor, with the platform an index entry carries.
	descs+=("$(jq -c --arg a "$a" '.manifests[0] | del(.annotations) | .platform = {architecture: $a, os: "linux"}' \
		"$TMP/$a/oci/index.json")")
done

# The layout of both: an image index (OCI image-spec image-index.md) in a
# blob, tagged $TAG, and each manifest tagged $TAG-ARCH, written here
# because umoci makes no index of several platforms.
IDX=application/vnd.oci.image.index.v1+json
tagged() { jq -c --arg r "$1" '.annotations = {"org.opencontainers.image.ref.name": $r}'; }
entries=()
if ((${#descs[@]} > 1)); then
	printf '%s\n' "${descs[@]}" | jq -c -s --arg m "$IDX" '{schemaVersion: 2, mediaType: $m, manifests: .}' \
		| tr -d '\n' >"$TMP/index"
	d=$(sha256sum "$TMP/index" | awk '{ print $1 }')
	cp "$TMP/index" "$L/blobs/sha256/$d"
	entries+=("$(jq -n -c --arg m "$IDX" --arg d "sha256:$d" --argjson s "$(stat -c %s "$TMP/index")" \
		'{mediaType: $m, digest: $d, size: $s}' | tagged "$TAG")")
else
	entries+=("$(tagged "$TAG" <<<"${descs[0]}")")
fi
for i in "${!arches[@]}"; do
	entries+=("$(tagged "$TAG-${arches[i]}" <<<"${descs[i]}")")
done
printf '%s\n' "${entries[@]}" | jq -c -s --arg m "$IDX" '{schemaVersion: 2, mediaType: $m, manifests: .}' \
	>"$L/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"

for a in "${arches[@]}"; do
	log "image $a: $(jq -r --arg t "$TAG-$a" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$L/index.json")"
done
log "${L#"$ROOT"/}:$TAG: $(jq -r '.manifests[0] | "\(.mediaType | sub(".*/vnd.oci.image."; "") | sub(".v1.json"; "")) \(.digest)"' "$L/index.json")"
log "archives: $(cd "$IMG" && echo ksplit-image*.tar), packages: $(cd "$IMG" && echo packages*.txt)"
