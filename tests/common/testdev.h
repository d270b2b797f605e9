/* SPDX-License-Identifier: MIT */
/*
 * A device class that exists only in the tests: it exercises the core's
 * plumbing (regions, options, DMA, interrupts, save/load) without depending
 * on any real device.
 *
 * Region 0 "regs" (0x100 bytes, base TESTDEV_BASE):
 *   0x00 SCRATCH  R/W 64-bit
 *   0x08 IRQ      W: bit n sets line n's level (2 lines)
 *   0x10 SRC, 0x18 DST, 0x20 LEN   R/W
 *   0x28 GO       W: copy LEN bytes SRC -> DST by DMA; STATUS = result
 *   0x30 STATUS   R: 0 or the negative errno, as u64
 *   0x38 DMA_EN   W: 0 disables DMA (like PCI bus master off)
 * Region 1 "mem" (0x1000 bytes, RAM, no map base).
 */
#ifndef VMAPPLE_TEST_TESTDEV_H
#define VMAPPLE_TEST_TESTDEV_H

#include <libvmapple/libvmapple.h>

#define TESTDEV_TYPE 0x7ff0u
#define TESTDEV_BASE 0x90000000ull

struct testdev_options {
    uint32_t size;
    uint32_t pad;
    uint64_t scratch_reset; /* SCRATCH after reset; default 0x5a5a */
};

int testdev_create(const vmapple_host_ops *ops, void *opaque, const struct testdev_options *opts,
                   vmapple_device **out);

#endif
