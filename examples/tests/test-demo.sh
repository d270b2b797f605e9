#!/bin/sh
# SPDX-License-Identifier: MIT
# The demo end to end: the self-test firmware runs on the whole machine,
# every check passes, and the summary has a row for every device of the
# machine (the list grows as the library's devices land).
set -u
[ "${HAVE_SELFTEST_FIRMWARE:-0}" = 1 ] || { echo "no self-test firmware in this build"; exit 77; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$EXAMPLE" demo >"$out" 2>&1
status=$?
cat "$out"
fail() { echo "test-demo: $*" >&2; exit 1; }

[ "$status" = 0 ] || fail "demo exited with $status"
grep -q "all [0-9]* checks passed" "$out" || fail "no success line"

# The summary table: one row per check, "device check result".
summary=$(sed -n '/^summary$/,$p' "$out")
for device in boot uart gic psci cfg bdif aes pvpanic pci virtio-blk-root virtio-blk-aux \
    apple-dma-pci host; do
    echo "$summary" | grep -Eq "^  $device +[a-z0-9-]+ +pass" || fail "summary lacks device $device"
done
echo "$summary" | grep -q "FAIL" && fail "summary has a failed check"

# The host's own checks: the guest's virtio-blk writes are in the files.
for check in root-written aux-written dma-released; do
    echo "$summary" | grep -Eq "^  host +$check +pass" || fail "summary lacks host check $check"
done

# The figures the summary promises.
echo "$summary" | grep -Eq "guest MMIO exits +[1-9][0-9]*" || fail "no MMIO exit count"
echo "$summary" | grep -Eq "elapsed +[0-9.]+ s" || fail "no elapsed time"
echo "$summary" | grep -Eq "exits per second +[1-9][0-9]*" || fail "no exit rate"
# The PSCI SYSTEM_RESET round trip happened.
echo "$summary" | grep -Eq "machine resets 1" || fail "no machine reset"
exit 0
