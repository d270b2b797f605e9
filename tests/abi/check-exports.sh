#!/bin/sh
# The shared library exports vmapple_* only, under version LIBVMAPPLE_1.0,
# and carries the SONAME libvmapple.so.1.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' |
      grep -vE '^(vmapple_[a-z0-9_]+@@LIBVMAPPLE_1\.0|LIBVMAPPLE_1\.0)$' || true)
if [ -n "$bad" ]; then
    echo "exports outside vmapple_*@@LIBVMAPPLE_1.0:" >&2
    echo "$bad" >&2
    exit 1
fi
count=$(nm -D --defined-only "$lib" | grep -c ' vmapple_' || true)
[ "$count" -gt 0 ] || { echo "no vmapple_ symbols exported" >&2; exit 1; }
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libvmapple.so.1" ] || { echo "SONAME is '$soname', want libvmapple.so.1" >&2; exit 1; }
echo "ok: $count vmapple_* symbols, SONAME $soname"
