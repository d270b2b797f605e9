#!/bin/sh
# SPDX-License-Identifier: MIT
# Broken machines make the self-test firmware report the specific failure,
# raise pvpanic, and the CLI exit non-zero naming the check:
#  - an AES engine given a wrong built-in key 1 (--aes-key);
#  - a root image with one corrupted byte (bdif reads it);
#  - a read-only aux the firmware writes to through virtio-blk (and the
#    host checks the image file was not changed).
set -u
[ "${HAVE_SELFTEST_FIRMWARE:-0}" = 1 ] || { echo "no self-test firmware in this build"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out="$dir/out"
failures=0
fail() { echo "FAIL: $*"; sed 's/^/    /' "$out"; failures=$((failures + 1)); }

# expect_failure NAME CHECK ARGS...: status 1, the firmware's FAIL line for
# CHECK ("device check"), the CLI's FAILED line naming it, and the panic.
expect_failure() {
    name=$1 check=$2
    shift 2
    "$EXAMPLE" "$@" >"$out" 2>&1
    status=$?
    [ "$status" = 1 ] || { fail "$name: exit status $status, expected 1"; return; }
    device=${check%% *} what=${check#* }
    grep -Eq "^  FAIL +$device +$what " "$out" || { fail "$name: no FAIL line for $check"; return; }
    grep -q "^libvmapple-example: FAILED: $check:" "$out" || { fail "$name: the CLI does not name $check"; return; }
    grep -q "the firmware raises pvpanic over: $check" "$out" || { fail "$name: the firmware did not report its panic"; return; }
    grep -q "^libvmapple-example: the guest raised pvpanic (PANICKED) over $check" "$out" ||
        { fail "$name: pvpanic did not reach the host"; return; }
    echo "ok: $name: $(grep "^libvmapple-example: FAILED" "$out")"
}

# Built-in key 1 is not the one the firmware's vector was computed for.
expect_failure "wrong AES built-in key" "aes builtin-key-1" \
    demo --aes-key 1=0200000000000000000000000000000000000000000000000000000000000000
# The same key given explicitly is fine: the option reaches the engine.
"$EXAMPLE" demo --aes-key 1=0100000000000000000000000000000000000000000000000000000000000000 >"$out" 2>&1 \
    && echo "ok: the default key given explicitly" || fail "the default key given explicitly"

# One corrupted byte in the root image, 5 MiB in: inverted, so it differs
# whatever the (random) pattern held there.
"$EXAMPLE" images --out "$dir/img" >/dev/null || exit 1
pos=$((5 * 1048576 + 1234))
was=$(od -An -tu1 -j "$pos" -N1 "$dir/img/root.img" | tr -d ' ')
bad=$((255 - was))
printf "\\$(printf '%03o' "$bad")" | dd of="$dir/img/root.img" bs=1 seek="$pos" conv=notrunc 2>/dev/null
expect_failure "corrupted root image" "bdif root-data" \
    run --firmware "$SELFTEST_FIRMWARE" --aux "$dir/img/aux.img" --root "$dir/img/root.img"
grep -q "sector 10242 byte 210 is $(printf '0x%02x' "$bad")," "$out" ||
    fail "corrupted root: the wrong place or value is reported"

# The aux image opened read-only: virtio-blk refuses the guest's write.
"$EXAMPLE" images --out "$dir/ro" >/dev/null || exit 1
cp "$dir/ro/aux.img" "$dir/aux.before"
expect_failure "read-only aux written" "virtio-blk-aux write" \
    run --firmware "$SELFTEST_FIRMWARE" --aux "$dir/ro/aux.img" --root "$dir/ro/root.img" --aux-read-only
grep -q "status 1 (the device offers VIRTIO_BLK_F_RO" "$out" || fail "read-only aux: no IOERR status reported"
grep -Eq "^  ok +host +aux-untouched " "$out" || fail "read-only aux: the host did not check the image"
cmp -s "$dir/aux.before" "$dir/ro/aux.img" || fail "read-only aux: the image file changed"

[ "$failures" = 0 ] || exit 1
