# SPDX-License-Identifier: MIT
# Sourced by the tests that boot a test firmware (examples/tests/fw-*.S):
# skips without the cross compiler, makes a scratch directory with the
# disk images, and defines fail and run_firmware.
[ "${HAVE_SELFTEST_FIRMWARE:-0}" = 1 ] || { echo "no cross compiler in this build"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out="$dir/out"
"$EXAMPLE" images --out "$dir" >/dev/null || exit 1

# fail WHY: the verdict, with the last run's output indented below it.
fail() { echo "FAIL: $*"; sed 's/^/    /' "$out"; exit 1; }

# run_firmware FW [OPTION...]: boot FW on the scratch images; its output is
# in $out (and printed), its exit status in $status.
run_firmware() {
    fw=$1
    shift
    "$EXAMPLE" run --firmware "$fw" --aux "$dir/aux.img" --root "$dir/root.img" "$@" >"$out" 2>&1
    status=$?
    cat "$out"
}
