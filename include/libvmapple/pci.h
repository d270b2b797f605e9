/* SPDX-License-Identifier: MIT */
/**
 * @file pci.h
 * PCI functions and the PCI host bridge.
 *
 * Every PCI device of the library (virtio-blk, apple-dma-pci, the host
 * bridge) is a vmapple_device with a 4 KiB (PCIe) configuration space:
 * the host's ECAM (or CF8/CFC) emulation calls
 * vmapple_device_pci_config_read() / vmapple_device_pci_config_write(), and
 * the device reports BAR placement through vmapple_host_ops.pci_bar_update.
 * BAR regions appear in vmapple_device_get_region() with
 * VMAPPLE_REGION_PCI_BAR and their BAR number.
 *
 * Config semantics: read-only bits keep their value; STATUS error bits are
 * write-1-to-clear; writing all ones to a BAR reads back its size mask.
 * COMMAND.MEMORY gates decoding (a BAR is reported enabled only while it is
 * set and the BAR holds an address other than 0 or its sizing pattern);
 * COMMAND.MASTER gates every DMA of the function (and MSI-X messages, held
 * pending meanwhile); COMMAND.INTX_DISABLE masks the INTx line while
 * STATUS.INTERRUPT keeps showing the request. The INTx pin is the function's
 * interrupt line 0 (vmapple_device_get_irq(), flag VMAPPLE_IRQ_PCI_INTX);
 * which GIC SPI it raises depends on the slot the host gives the function
 * (vmapple_platform_get_intx_spi()).
 */
#ifndef LIBVMAPPLE_PCI_H
#define LIBVMAPPLE_PCI_H

#include "common.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of vmapple_pci_host_bridge_create(). */
typedef struct vmapple_pci_host_bridge_options {
    uint32_t size;                /**< set by VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT */
    uint16_t vendor_id;           /**< 0 = default 0x106b (Apple, as on VZ) */
    uint16_t device_id;           /**< 0 = default 0x1a05 (VZ's host bridge) */
    uint32_t class_code;          /**< 0 = default 0x060000 (host bridge) */
    uint16_t subsystem_vendor_id; /**< default 0 */
    uint16_t subsystem_id;        /**< default 0 */
    uint8_t revision;             /**< default 0 */
} vmapple_pci_host_bridge_options;

#define VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_pci_host_bridge_options)

/**
 * Create the host bridge function that sits at slot 0 of bus 0 (no BARs, no
 * interrupt). QEMU's vmapple machine uses 1b36:0008 instead of VZ's
 * 106b:1a05; macOS accepts both.
 *
 * @param ops may be NULL (the bridge needs no callbacks).
 * @param opts NULL for VZ's identity.
 * @return 0; -EINVAL for a NULL @p out, bad options (the last error names
 *         the option: class_code has 24 bits); -ENOMEM.
 */
VMAPPLE_API int vmapple_pci_host_bridge_create(const vmapple_host_ops *ops, void *opaque,
                                               const vmapple_pci_host_bridge_options *opts,
                                               vmapple_device **out);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_PCI_H */
