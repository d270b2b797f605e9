#!/bin/sh
# SPDX-License-Identifier: MIT
# --trace names every MMIO access: device and register (the public names
# where there are any, the library's region names otherwise); and --timeout
# stops a guest that never ends.
set -u
[ "${HAVE_SELFTEST_FIRMWARE:-0}" = 1 ] || { echo "no self-test firmware in this build"; exit 77; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out="$dir/out"
fail() { echo "FAIL: $*"; exit 1; }

"$EXAMPLE" demo --trace --no-reset >"$out" 2>&1 || { cat "$out"; fail "demo --trace failed"; }
tr -s ' ' <"$out" >"$out.squeezed"
for pattern in \
    'mmio W4 0x20010000 uart UARTDR ' \
    'mmio R4 0x20010018 uart UARTFR ' \
    'mmio R4 0x10000204 gic-dist GICD_ISPENDR1 ' \
    'mmio R4 0x00400018 cfg ecid ' \
    'mmio R1 0x00400500 cfg serial ' \
    'mmio W4 0x30010408 bdif aux.CMD ' \
    'mmio R4 0x30000420 bdif root.NEXT_DEVICE ' \
    'mmio W4 0x30220200 aes FIFO ' \
    'mmio R4 0x30230000 aes aes-window2+0x0 ' \
    'mmio R1 0x20070000 pvpanic events ' \
    'mmio R4 0x40000000 ecam 00:00.0 pci-host-bridge VENDOR_ID+0x000 ' \
    'mmio R4 0x400f8000 ecam 00:1f.0 (none) VENDOR_ID+0x000 ' \
    'virtio-blk-root common.device_status ' \
    'virtio-blk-aux config.apple_type -> 0x2' \
    'virtio-blk-root config.apple_type -> 0x1' \
    'virtio-blk-aux notify+0x0 <- 0x0' \
    'virtio-blk-root isr+0x0 -> 0x1' \
    'apple-dma-pci DOORBELL <- 0x1'; do
    grep -qF -- "$pattern" "$out.squeezed" || fail "no trace line like '$pattern'"
done
# Every access the summary counts is traced.
exits=$(sed -n 's/^  guest MMIO exits *\([0-9]*\)$/\1/p' "$out")
lines=$(grep -c '^mmio ' "$out")
[ "$exits" = "$lines" ] || fail "$exits exits counted, $lines traced"
echo "ok: --trace: $lines accesses named"

"$EXAMPLE" images --out "$dir" >/dev/null || exit 1
"$EXAMPLE" run --firmware "$FW_SPIN" --aux "$dir/aux.img" --root "$dir/root.img" --timeout 0.5 >"$out" 2>&1
status=$?
[ "$status" = 1 ] || { cat "$out"; fail "--timeout: exit status $status, expected 1"; }
grep -q "time limit reached" "$out" || { cat "$out"; fail "--timeout: not reported"; }
echo "ok: --timeout"
