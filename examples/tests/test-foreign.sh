#!/bin/sh
# SPDX-License-Identifier: MIT
# `run` with firmware that is not ours: it is said up front; the guest's
# UART text reaches the terminal; PSCI SYSTEM_OFF ends the run with status
# 0; a firmware that needs Apple's CPU and apple-gfx is stopped with an
# explanation naming the register and HVF, and status 1.
set -u
# shellcheck source=examples/tests/fw-run.sh
. "$(dirname "$0")/fw-run.sh"

run_firmware "$FW_HELLO"
[ "$status" = 0 ] || fail "hello: exit status $status"
grep -q "is not libvmapple's self-test firmware" "$out" || fail "hello: no up-front note"
grep -q "^hello from a foreign firmware$" "$out" || fail "hello: the guest's text is missing"
grep -q "powered the machine off" "$out" || fail "hello: no power-off"

run_firmware "$FW_APPLE"
[ "$status" = 1 ] || fail "apple: exit status $status, expected 1"
grep -q 'looks like Apple.s AVPBooter (it contains "iBoot-0000.0.0.test")' "$out" || fail "apple: AVPBooter not recognised"
# Not the up-front note's words: these lines come only after the run.
grep -q "^a real AVPBooter needs an Apple CPU with HVF (macOS" "$out" || fail "apple: no HVF explanation"
grep -q "it cannot boot under unicorn\.$" "$out" || fail "apple: the explanation does not say it cannot boot"
grep -q "\[warning\] guest read from apple-gfx .*(0x30200000), which this machine does not provide" \
    "$out" || fail "apple: apple-gfx access not reported"
grep -q "MRS S3_6_C15_C1_0" "$out" || fail "apple: the register is not named"
grep -q "cannot run that instruction" "$out" || fail "apple: no undefined-instruction explanation"
exit 0
