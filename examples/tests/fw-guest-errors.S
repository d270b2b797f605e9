/* SPDX-License-Identifier: MIT */
/*
 * A guest that repeats, far more often than the machine logs it, what
 * makes the machine log a guest error (test-guest-errors.sh counts the
 * lines), then PSCI SYSTEM_OFF:
 *  - 5 times: virtio-blk-aux (slot 7) decodes its BAR 0 on top of
 *    virtio-blk-root's (slot 6), which the bus refuses;
 *  - 100 times: virtio-blk-root decodes its BAR 0 outside the PCIe MMIO
 *    window;
 *  - 100 times the overlap again, after the limit;
 *  - 100 reads from 0x200000, where nothing decodes.
 * "Decodes" is a write of COMMAND.MEMORY, then one clearing it again.
 */
    .text
    .global _start
_start:
    mov     x1, #0x40030000         /* ECAM, 00:06.0 (virtio-blk-root) */
    add     x2, x1, #0x8000         /* ECAM, 00:07.0 (virtio-blk-aux) */
    mov     w5, #2                  /* COMMAND.MEMORY */
    mov     w6, #0x50000000         /* the start of the PCIe MMIO window */
    mov     w7, #0x20000000         /* outside it */

    str     w6, [x1, #0x10]         /* root's BAR 0 in the window, decoding */
    strh    w5, [x1, #0x4]
    str     w6, [x2, #0x10]         /* aux's on top of it */
    mov     x3, #5
1:  strh    w5, [x2, #0x4]
    strh    wzr, [x2, #0x4]
    subs    x3, x3, #1
    b.ne    1b

    strh    wzr, [x1, #0x4]
    str     w7, [x1, #0x10]         /* root's BAR 0 outside the window */
    mov     x3, #100
2:  strh    w5, [x1, #0x4]
    strh    wzr, [x1, #0x4]
    subs    x3, x3, #1
    b.ne    2b

    str     w6, [x1, #0x10]         /* back in the window, decoding */
    strh    w5, [x1, #0x4]
    mov     x3, #100
3:  strh    w5, [x2, #0x4]
    strh    wzr, [x2, #0x4]
    subs    x3, x3, #1
    b.ne    3b

    mov     x4, #0x200000
    mov     x3, #100
4:  ldr     w8, [x4]
    subs    x3, x3, #1
    b.ne    4b

    movz    x0, #0x0008
    movk    x0, #0x8400, lsl #16    /* PSCI SYSTEM_OFF */
    hvc     #0
    b       .
