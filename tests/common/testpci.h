/* SPDX-License-Identifier: MIT */
/*
 * A PCI function that exists only in the tests, to exercise lib/pci.c.
 *
 * BAR0: 32-bit memory, 4 KiB, region 0 "bar0":
 *   0x00 SCRATCH (R/W 32)     0x04 INTX (W: level)     0x08 MSIX (W: notify vector)
 *   0x0c STATUS_ERR (W: sets STATUS error bits, like a master abort)
 *   0x10 SRC 0x18 DST 0x20 LEN 0x28 GO (DMA copy) 0x30 RESULT (64-bit)
 * BAR2: 64-bit prefetchable memory, 16 KiB, region 1 "bar2": the MSI-X table
 *   at 0x0 and PBA at 0x800 (when msix_vectors > 0).
 * Capabilities: a 16-byte vendor capability whose dword at +4 is writable,
 * then MSI-X.
 */
#ifndef VMAPPLE_TEST_TESTPCI_H
#define VMAPPLE_TEST_TESTPCI_H

#include <libvmapple/libvmapple.h>

#define TESTPCI_TYPE 0x7ff1u

int testpci_create(const vmapple_host_ops *ops, void *opaque, uint16_t msix_vectors,
                   vmapple_device **out);
/* Config offset of the vendor capability. */
int testpci_vendor_cap(vmapple_device *dev);

#endif
