#!/bin/sh
# SPDX-License-Identifier: MIT
# A guest can repeat what makes the machine log a guest error as often as
# it likes (fw-guest-errors.S: BARs the PCIe host cannot map, reads where
# nothing decodes): each kind is logged 10 times (VMM_GUEST_ERROR_LINES),
# the tenth line saying the rest are not, and the run goes on to its end.
set -u
# shellcheck source=examples/tests/fw-run.sh
. "$(dirname "$0")/fw-run.sh"

run_firmware "$FW_GUEST_ERRORS"
[ "$status" = 0 ] || fail "exit status $status"
grep -q "powered the machine off" "$out" || fail "no power-off"
# The guest did hammer: all 100 reads arrived, whatever was logged.
grep -q "unmapped accesses 100 reads, 0 writes" "$out" || fail "the guest's 100 reads are not counted"
# And every access of the other phases, the 100 overlaps after the limit
# included, reached the machine: 3 + 10 + 2 + 200 + 2 + 200 writes, then
# the 100 reads, and nothing more.
grep -q "guest MMIO exits  *517$" "$out" || fail "not every access of the firmware arrived (517)"

# Both of the PCIe host's lines, in one budget: 5 overlaps, then 5 of the
# 100 BARs outside the window; none of the 100 overlaps after that.
bar=$(grep -c '^  \[guest-error\] pci 00:' "$out")
[ "$bar" = 10 ] || fail "$bar PCIe host lines, expected 10"
[ "$(grep -c '^  \[guest-error\] pci 00:07.0 virtio-blk-aux: BAR not mapped: .* overlaps ' "$out")" = 5 ] ||
    fail "expected the 5 overlaps before the limit"
grep '^  \[guest-error\] pci 00:' "$out" | tail -n 1 |
    grep -q 'pci 00:06.0 virtio-blk-root: BAR of region 0 at 0x20000000 (+0x4000) is outside the PCIe MMIO window; not mapped (further BAR errors are not logged)$' ||
    fail "the last PCIe host line does not say the rest are not logged"

unmapped=$(grep -c '^  \[guest-error\] guest read 4 bytes at 0x200000: nothing there' "$out")
[ "$unmapped" = 10 ] || fail "$unmapped unmapped-access lines, expected 10"
grep '^  \[guest-error\] guest read' "$out" | tail -n 1 |
    grep -q 'reads as 0 (further unmapped accesses are not logged)$' ||
    fail "the last unmapped-access line does not say the rest are not logged"
exit 0
