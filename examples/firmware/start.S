/* SPDX-License-Identifier: MIT */
/*
 * Entry of the self-test firmware at the vmapple reset PC (0x100000): EL1,
 * MMU off, interrupts masked. Sets up the stack and exception vectors,
 * clears .bss and calls fw_main().
 */
    .section .text.boot, "ax"
    .global _start
_start:
    b       reset
    .word   0
    .ascii  "LVMXSELF"              /* SELFTEST_FW_MAGIC at SELFTEST_FW_MAGIC_OFF */
    .word   1                       /* SELFTEST_VERSION */
    .word   0

reset:
    msr     daifset, #0xf
    ldr     x0, =__stack_top
    mov     sp, x0
    adr     x0, vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  bl      fw_main
    b       .

/*
 * Every exception is unexpected: report it and stop. (Under the unicorn
 * accelerator the host sees exceptions before the guest does; on HVF or
 * KVM these vectors are what runs.)
 */
    .macro vector kind
    .balign 0x80
    mov     x0, #\kind
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    b       fw_exception
    .endm

    .balign 0x800
vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15
