/* SPDX-License-Identifier: MIT */
/*
 * The smallest firmware for the machine: a line on the PL011, then PSCI
 * SYSTEM_OFF over HVC. Not the self-test firmware: `run` treats it as a
 * foreign one.
 */
    .text
    .global _start
_start:
    mov     x1, #0x20010000         /* PL011 UARTDR */
    adr     x2, message
1:  ldrb    w3, [x2], #1
    cbz     w3, 2f
    str     w3, [x1]
    b       1b
2:  movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16    /* PSCI SYSTEM_OFF */
    hvc     #0
    b       .
message:
    .asciz  "hello from a foreign firmware\n"
