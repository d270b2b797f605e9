#!/bin/sh
# Regenerate the committed ABI baseline from a gcc build:
#   tests/abi/update-baseline.sh build
set -eu
build="${1:-build}"
top=$(cd "$(dirname "$0")/../.." && pwd)
lib="$build/lib/libvmapple.so.1"
abidw --headers-dir "$top/include/libvmapple" --drop-private-types --no-corpus-path \
      --no-comp-dir-path --no-show-locs --type-id-style hash "$lib" > "$top/tests/abi/libvmapple.abi"
echo "wrote tests/abi/libvmapple.abi from $lib"
