#!/bin/sh
# Install the build into a temporary prefix, then build and run an external
# program with nothing but `pkg-config --cflags --libs libvmapple`.
set -eu
build="$1"
src="$2"
cc="${CC:-cc}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >/dev/null
pcfile=$(find "$tmp/root" -name libvmapple.pc | head -1)
[ -n "$pcfile" ] || { echo "libvmapple.pc was not installed" >&2; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pcfile")
export PKG_CONFIG_PATH="$(dirname "$pcfile")"
pc="pkg-config --define-variable=prefix=$tmp/root$prefix"
# Our own Cflags line carries only our include directory; glib and OpenSSL
# are Requires.private (pkgconf still adds their -I paths to --cflags).
own=$(sed -n 's/^Cflags: *//p' "$pcfile")
[ "$own" = '-I${includedir}' ] || { echo "libvmapple.pc Cflags is '$own'" >&2; exit 1; }
grep -q '^Requires.private: glib-2.0 libcrypto' "$pcfile" ||
    { echo "libvmapple.pc lacks Requires.private: glib-2.0 libcrypto" >&2; exit 1; }
cflags=$($pc --cflags libvmapple)
libs=$($pc --libs libvmapple)
case "$libs" in
    *glib*|*crypto*) echo "private dependencies leak into Libs: $libs" >&2; exit 1 ;;
esac
echo "cflags: $cflags"
echo "libs:   $libs"
# shellcheck disable=SC2086
$cc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer" "$src" $cflags $libs
libdir=$(dirname "$(find "$tmp/root" -name 'libvmapple.so.1' | head -1)")
LD_LIBRARY_PATH="$libdir" "$tmp/consumer"
# Static linking through pkg-config --static as well.
slibs=$($pc --static --libs libvmapple)
# shellcheck disable=SC2086
$cc -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer-static" "$src" $cflags \
    "$libdir/libvmapple.a" $(echo "$slibs" | sed 's/-lvmapple//')
"$tmp/consumer-static"
