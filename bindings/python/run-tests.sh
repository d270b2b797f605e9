#!/bin/sh
# Run the binding tests with pytest against one build of the library.
# meson test calls it (bindings/python/meson.build); by hand:
#   bindings/python/run-tests.sh --library build/lib/libvmapple.so.1 \
#       --tests bindings/python/tests [pytest arguments]
# Exit status 77 tells meson the test was skipped.
set -eu
python=/usr/bin/python3
library=""
tests=""
require=0
asan_rt=""
while [ $# -gt 0 ]; do
    case "$1" in
    --python) python="$2"; shift 2 ;;
    --library) library="$2"; shift 2 ;;
    --tests) tests="$2"; shift 2 ;;
    --asan-runtime) asan_rt="$2"; shift 2 ;;
    --require) require=1; shift ;;
    --) shift; break ;;
    *) break ;;
    esac
done
[ -n "$library" ] && [ -n "$tests" ] || { echo "usage: $0 --library LIB --tests DIR" >&2; exit 2; }

skip() {
    if [ "$require" = 1 ]; then
        echo "FAIL: $1 (python_bindings=enabled)" >&2
        exit 1
    fi
    echo "SKIP: $1"
    exit 77
}

[ -x "$python" ] || skip "$python is not installed (Debian: apt-get install python3 python3-pytest)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    skip "$python is older than Python 3.11"
"$python" -c 'import pytest' 2>/dev/null ||
    skip "pytest is not installed for $python (Debian: apt-get install python3-pytest)"

if [ -n "$asan_rt" ]; then
    # The library was built with AddressSanitizer. Python is not, so the
    # runtime must be loaded before anything else (LD_PRELOAD); without it
    # loading the library fails ("ASan runtime does not come first").
    case "$asan_rt" in
    /*) [ -f "$asan_rt" ] || skip "the ASan runtime $asan_rt does not exist" ;;
    *) skip "the compiler does not know where its ASan runtime is ($asan_rt)" ;;
    esac
    LD_PRELOAD="$asan_rt${LD_PRELOAD:+ $LD_PRELOAD}"
    export LD_PRELOAD
    # Leak checking stays on: what CPython still holds at exit is reachable,
    # so LeakSanitizer reports only memory the library (or the bindings'
    # use of it) lost.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
    export ASAN_OPTIONS
    # pymalloc would hide Python's small buffers (guest memory, volumes) from
    # ASan's redzones; with malloc an overrun through a mem_map pointer is
    # caught.
    PYTHONMALLOC=malloc
    export PYTHONMALLOC
fi

# Absolute, so subprocesses started elsewhere (the README example) find it.
case "$library" in
/*) LIBVMAPPLE_PATH="$library" ;;
*) LIBVMAPPLE_PATH="$(pwd)/$library" ;;
esac
PYTHONPATH="$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
PYTHONDONTWRITEBYTECODE=1
export LIBVMAPPLE_PATH PYTHONPATH PYTHONDONTWRITEBYTECODE
exec "$python" -m pytest -p no:cacheprovider -q -rs "$tests" "$@"
