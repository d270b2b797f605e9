/* SPDX-License-Identifier: MIT */
/*
 * For bench-exits: 2^20 loads from a library device register (cfg
 * version) and 2^20 from a host handler's (the PL011 flag register), then
 * PSCI SYSTEM_OFF. Every load is one MMIO exit.
 */
    .text
    .global _start
_start:
    mov     x1, #0x400000           /* cfg */
    mov     x2, #0x20010000         /* PL011 */
    mov     x3, #0x100000           /* 2^20 */
1:  ldr     w4, [x1]
    subs    x3, x3, #1
    b.ne    1b
    mov     x3, #0x100000
2:  ldr     w4, [x2, #0x18]
    subs    x3, x3, #1
    b.ne    2b
    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16
    hvc     #0
    b       .
