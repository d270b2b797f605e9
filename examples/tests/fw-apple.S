/* SPDX-License-Identifier: MIT */
/*
 * A firmware that does what AVPBooter does and this machine cannot: it
 * carries an iBoot-style version string, touches apple-gfx and then reads
 * an IMPLEMENTATION DEFINED system register (S3_6_C15_C1_0, in the space
 * Apple's own registers live in), which unicorn's CPU model does not have.
 */
    .text
    .global _start
_start:
    b       1f
    .ascii  "iBoot-0000.0.0.test"
    .balign 4
1:  movz    x1, #0x3020, lsl #16    /* apple-gfx */
    ldr     w2, [x1]
    mrs     x0, S3_6_C15_C1_0
    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16
    hvc     #0
    b       .
