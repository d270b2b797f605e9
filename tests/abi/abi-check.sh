#!/bin/sh
# Compare the built library's ABI with the committed baseline.
#
#   abi-check.sh <libvmapple.so> <public header dir> <baseline.abi>
#
# Any difference fails: an ABI change is deliberate, made by regenerating the
# baseline (tests/abi/update-baseline.sh) in the same commit, whose message
# says why. Skips (exit 77) without abidiff or for a non-gcc build, since the
# baseline's DWARF comes from gcc.
set -u
lib="$1"
headers="$2"
baseline="$3"
if ! command -v abidiff >/dev/null 2>&1; then
    echo "SKIP: abidiff not installed (Debian package abigail-tools)"
    exit 77
fi
if ! readelf --debug-dump=info "$lib" 2>/dev/null | grep -q 'DW_AT_producer.*GNU C'; then
    echo "SKIP: the baseline is made from a gcc build with debug info; this build is not one"
    exit 77
fi
# Dump the built library exactly as update-baseline.sh does and compare the
# two dumps: abidiff of XML against an ELF file filters real changes (seen
# with libabigail 2.2: an inserted struct member went unreported).
current=$(mktemp)
trap 'rm -f "$current"' EXIT
abidw --headers-dir "$headers" --drop-private-types --no-corpus-path --no-comp-dir-path \
      --no-show-locs --type-id-style hash "$lib" > "$current" || exit 1
abidiff "$baseline" "$current"
status=$?
if [ $status -ne 0 ]; then
    echo >&2
    echo "abidiff exit status $status: the ABI differs from $baseline." >&2
    [ $((status & 8)) -ne 0 ] && echo "It is an INCOMPATIBLE change: existing callers would break." >&2
    echo "If the change is deliberate, run tests/abi/update-baseline.sh <build dir> and" >&2
    echo "commit the new baseline with a message that explains the change." >&2
    exit 1
fi
echo "ok: ABI matches $baseline"
