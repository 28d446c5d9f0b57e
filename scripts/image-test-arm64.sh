#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
#
# `make image-test-arm64` (root; also the second half of `make image-test`):
# the linux/arm64 image that `make image` built from the arm64 cross build,
# checked on this x86 host. No arm64 hardware and no binfmt_misc handler:
# the image's own binary is run by qemu-user with the image's root as its
# only library tree (scripts/in-root.sh). What it proves: the index resolves
# each platform to its image, the arm64 image is what podman calls arm64,
# it holds this build's binary, and every library and the loader that binary
# needs come from the image. What it does not: the BPF datapath on an arm64
# kernel (make vm-test ARCH=arm64 boots one, with the build, not the image).
#
# Steps, each a check:
#   1. podman pull --arch arm64 and --arch amd64 from the layout's index
#      ($OUT/image/oci:TAG): each gives the image whose config the index
#      entry of that platform names, and podman inspect says arm64 / amd64,
#      linux; podman load of ksplit-image-arm64.tar gives the same arm64 image;
#   2. podman image mount of the pulled arm64 image: its /usr/bin/ksplit is
#      $ARM64_OUT/ksplit with its debug info stripped, byte for byte;
#   3. that binary, run by qemu-aarch64 in the mounted root, prints the same
#      `version --json` as $OUT/ksplit and the same `validate --json` of
#      examples/checkout-ab (which needs no kernel);
#   4. the control: the same root without libyaml's file must fail with the
#      loader's "cannot open shared object file" (the host has libyaml's
#      arm64 package installed for the cross build: were the host's arm64
#      libraries reachable, this would pass and prove nothing).
# Every exit path unmounts the image and removes the image names it made.
#
# Environment: OUT (default build), ARM64_OUT (default $OUT-arm64), PODMAN_OPTS
# as scripts/image-test.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-build}
[[ $OUT = /* ]] || OUT=$ROOT/$OUT
ARM64_OUT=${ARM64_OUT:-$OUT-arm64}
[[ $ARM64_OUT = /* ]] || ARM64_OUT=$ROOT/$ARM64_OUT
IMG=$OUT/image
EXAMPLE=$ROOT/examples/checkout-ab
read -r -a podman_opts <<<"${PODMAN_OPTS:---runtime runc}"

# shellcheck source=in-root.sh
source "$ROOT/scripts/in-root.sh"

log() { printf '[image-test-arm64] %s\n' "$*"; }
die() { printf '[image-test-arm64] FAIL: %s\n' "$*" >&2; exit 1; }
pm() { podman "${podman_opts[@]}" "$@"; }

[[ $EUID -eq 0 ]] || die "run as root (podman storage, mount namespace)"
for c in podman jq qemu-aarch64 aarch64-linux-gnu-objcopy; do
	command -v "$c" >/dev/null || die "$c missing (run: scripts/deps.sh --image --arm64)"
done
for f in "$OUT/ksplit" "$ARM64_OUT/ksplit" "$IMG/oci/index.json" "$IMG/ksplit-image-arm64.tar"; do
	[[ -e $f ]] || die "$f missing (run: make && make ARCH=arm64 && make image)"
done

RAND=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
TMP=$(mktemp -d "/tmp/ksplit-imgtest-arm64-$RAND.XXXX")
REFS=()
MOUNTED=

cleanup() {
	local rc=$? r
	set +e
	trap - EXIT INT TERM
	[[ -n $MOUNTED ]] && { pm image unmount "$MOUNTED" >/dev/null || log "podman image unmount $MOUNTED failed"; }
	for r in "${REFS[@]}"; do
		pm image exists "$r" 2>/dev/null && { pm rmi "$r" >/dev/null || log "podman rmi $r failed"; }
	done
	rm -rf "$TMP"
	if ((rc == 0)); then log "PASS; cleaned up"; else log "cleaned up after failure (exit $rc)"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What runs the binary: the kernel's binfmt_misc handlers are the machine's
# (shared), used or registered by nothing here; said for the record.
if [[ -r /proc/sys/fs/binfmt_misc/status ]]; then
	handlers=$(find /proc/sys/fs/binfmt_misc -maxdepth 1 -type f ! -name status ! -name register -printf '%f ' 2>/dev/null)
	log "binfmt_misc mounted, handlers: ${handlers:-none}; not used: qemu-aarch64 is run directly"
else
	log "binfmt_misc not mounted (no handler); qemu-aarch64 is run directly"
fi

# --- 1. the index, by platform; the archive -----------------------------------

TAG=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$IMG/oci/index.json")
[[ $(jq -r '.manifests[0].mediaType' "$IMG/oci/index.json") == application/vnd.oci.image.index.v1+json ]] ||
	die "$IMG/oci:$TAG is not an image index"

# config ARCH: the config digest (= podman's image ID) of the index entry for ARCH.
config() {
	local idx m
	idx=$(jq -r '.manifests[0].digest | sub("sha256:"; "")' "$IMG/oci/index.json")
	m=$(jq -r --arg a "$1" '.manifests[] | select(.platform == {architecture: $a, os: "linux"}) | .digest
		| sub("sha256:"; "")' "$IMG/oci/blobs/sha256/$idx")
	[[ -n $m ]] || die "the index $IMG/oci:$TAG has no linux/$1 entry"
	jq -r '.config.digest | sub("sha256:"; "")' "$IMG/oci/blobs/sha256/$m"
}

# The names image ID has now (none if podman does not hold it).
names_of() { pm image inspect -f '{{join .RepoTags " "}}' "$1" 2>/dev/null || true; }

# adopt ID REF PRIOR: name the image ID as REF (this test's, removed at exit)
# and drop the names podman gave it from where it came from (its path, its
# tag), but none of PRIOR, the names it had before this test: someone's own.
adopt() {
	local n
	REFS+=("$2")
	pm tag "$1" "$2"
	for n in $(names_of "$1"); do
		[[ $n == "$2" || " $3 " == *" $n "* ]] || pm untag "$1" "$n"
	done
}

for a in arm64 amd64; do
	prior=$(names_of "$(config "$a")")
	id=$(pm pull -q --arch "$a" "oci:$IMG/oci:$TAG") || die "podman pull --arch $a oci:$IMG/oci:$TAG failed"
	adopt "$id" "localhost/ksplit-imgtest-$a:$RAND" "$prior"
	want=$(config "$a")
	[[ $id == "$want" ]] || die "pull --arch $a gave image $id, the index's linux/$a entry is $want"
	got=$(pm image inspect -f '{{.Os}}/{{.Architecture}}' "$id")
	[[ $got == "linux/$a" ]] || die "podman inspect of the $a image says $got"
	log "podman pull --arch $a oci:${IMG#"$ROOT"/}/oci:$TAG: image ${id:0:12}, inspect: $got," \
		"$(pm image inspect -f '{{.Size}}' "$id" | awk '{ printf "%.1f MB", $1 / 1e6 }') unpacked"
done
ARM=localhost/ksplit-imgtest-arm64:$RAND

prior=$(names_of "$(config arm64)")
loaded=$(pm load -q -i "$IMG/ksplit-image-arm64.tar" | sed -n 's/^Loaded image: //p' | tail -n 1)
[[ -n $loaded ]] || die "podman load -i $IMG/ksplit-image-arm64.tar printed no image name"
# Someone's own name for it stays; the one this load gave goes at exit.
[[ " $prior " == *" $loaded "* ]] || REFS+=("$loaded")
lid=$(pm image inspect -f '{{.Id}}' "$loaded")
[[ $lid == "$(config arm64)" ]] || die "ksplit-image-arm64.tar holds image $lid, the index's arm64 entry is $(config arm64)"
[[ " $prior " == *" $loaded "* ]] || pm untag "$lid" "$loaded"
log "podman load -i ksplit-image-arm64.tar: $loaded, the same image"

# --- 2. the binary is this build's ----------------------------------------------

MNT=$(pm image mount "$ARM") || die "podman image mount $ARM failed"
MOUNTED=$ARM
aarch64-linux-gnu-objcopy --strip-debug "$ARM64_OUT/ksplit" "$TMP/ksplit.stripped"
cmp -s "$MNT/usr/bin/ksplit" "$TMP/ksplit.stripped" ||
	die "the image's /usr/bin/ksplit is not ${ARM64_OUT#"$ROOT"/}/ksplit (stripped)"
log "/usr/bin/ksplit in the image = ${ARM64_OUT#"$ROOT"/}/ksplit stripped (machine $(readelf -h "$MNT/usr/bin/ksplit" | sed -n "s/.*Machine: *//p"))"

# --- 3. it runs with the image's libraries --------------------------------------

want=$("$OUT/ksplit" version --json)
got=$(in_root arm64 "$MNT" /usr/bin/ksplit version --json 2>&1) || die "ksplit version --json in the image: $got"
[[ $got == "$want" ]] || die "the image's ksplit version --json printed '$got', ${OUT#"$ROOT"/}/ksplit '$want'"
log "qemu-aarch64, the image's root only: ksplit version --json = $(jq -c . <<<"$got"), as ${OUT#"$ROOT"/}/ksplit"

want=$("$OUT/ksplit" validate --json "$EXAMPLE") || die "${OUT#"$ROOT"/}/ksplit validate $EXAMPLE failed: $want"
got=$(in_root arm64 "$MNT" /usr/bin/ksplit validate --json "$EXAMPLE" 2>&1) ||
	die "ksplit validate --json in the image failed: $got"
[[ $got == "$want" ]] || die "the image's ksplit validate --json differs from ${OUT#"$ROOT"/}/ksplit's: $(diff <(echo "$want") <(echo "$got") | head -n 10)"
[[ $(jq -r .valid <<<"$got") == true ]] || die "the image's ksplit finds examples/checkout-ab not valid"
log "ksplit validate --json examples/checkout-ab: the same $(wc -c <<<"$got") bytes as ${OUT#"$ROOT"/}/ksplit" \
	"($(jq -r '"valid \(.valid), \(.routes | length) route(s), \(.services | length) service(s)"' <<<"$got"))"

# --- 4. control: a library taken away must be missed ---------------------------

cp -a "$MNT/." "$TMP/broken"
lib=$(find "$TMP/broken" -name 'libyaml-0.so.2*' | head -n 1)
[[ -n $lib ]] || die "no libyaml-0.so.2 in the image"
find "$TMP/broken" -name 'libyaml-0.so.2*' -delete
[[ -e /usr/lib/aarch64-linux-gnu/${lib##*/} ]] ||
	log "note: the host has no arm64 ${lib##*/}; the control shows less"
if out=$(in_root arm64 "$TMP/broken" /usr/bin/ksplit version 2>&1); then
	die "the image's ksplit ran without the image's libyaml (the host's arm64 libraries leak into the check): $out"
fi
[[ $out == *"libyaml-0.so.2: cannot open shared object file"* ]] || die "without libyaml: '$out', want the loader's error"
log "control, the root without ${lib#"$TMP"/broken}: refused ($(grep -o 'libyaml[^:]*: cannot open shared object file' <<<"$out"))"
