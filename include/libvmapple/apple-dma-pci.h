/* SPDX-License-Identifier: MIT */
/**
 * @file apple-dma-pci.h
 * apple-dma-pci: the DMA-mapping companion of PCI passthrough on Apple hosts.
 *
 * A paravirtual PCI function (1b36:0015, class 0x0880, BAR0 4 KiB) through
 * which a guest kernel module asks for guest buffers to be made visible to a
 * passed-through device and learns the bus address the device must use. One
 * instance serves one passthrough function and sits on the same guest bus.
 * Requests go to a vmapple_dma_backend (dma-backend.h).
 *
 * BAR0 registers (32-bit accesses; other sizes and offsets read 0 and ignore
 * writes, logged as guest errors):
 *
 *   0x00 VERSION      R  2
 *   0x04 MANAGED_BDF  R  option managed_bdf (bus << 8 | devfn)
 *   0x08 MAX_ENTRIES  R  option max_entries
 *   0x0c STATUS       R  status of the last doorbell (0 after reset)
 *   0x10 CMD_GPA_LO   W  command page address, bits 31:0 (reads 0)
 *   0x14 CMD_GPA_HI   W  bits 63:32 (reads 0)
 *   0x18 DOORBELL     W  any value: process the batch the command page describes
 *
 * Command page (32 bytes of guest RAM, little-endian): u32 type (1 MAP,
 * 2 UNMAP), u32 count, u32 status (written by the device), u32 reserved,
 * u64 request array, u64 response array.
 *
 * Entries (VMAPPLE_APPLE_DMA_PCI_LAYOUT_PUBLISHED, as published with the
 * QEMU RFC series):
 *   MAP request    u64 gpa, u32 len, u32 flags                       16 bytes
 *   MAP response   u64 id, u64 dma_addr, u32 dma_len, u32 status     24 bytes
 *   UNMAP request  u64 id, u64 size                                  16 bytes
 *   UNMAP response u64 id, u32 status, u32 reserved                  16 bytes
 * VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE (the guest module published beside the
 * series, same version number) differs for MAP only:
 *   MAP request    u64 gpa, u64 len, u32 flags                       20 bytes
 *   MAP response   u64 id, u64 dma_addr, u64 dma_len, u32 status     28 bytes
 * A device cannot tell the two apart: the layout is an option.
 *
 * Status codes (batch and entry): 0 OK; 1 IOERR (batch: at least one entry
 * failed; entries are independent and the others proceed); 3 INVAL (the
 * batch itself is malformed: no command page set (address 0), count 0 or
 * above MAX_ENTRIES, a zero array address, an unknown type, a command page
 * or an array that is not wholly guest RAM, or bus mastering off). INVAL is
 * decided before any entry is processed; when the command page itself is
 * unreadable, or bus mastering is off, only the STATUS register holds it. When the doorbell write
 * returns, responses and status are in guest memory and STATUS holds the same
 * code. The device writes nothing but the response array and the status field
 * of the command page. Requests are read in full before any response is
 * written, so the arrays may overlap.
 *
 * MAP: the device checks [gpa, gpa + len) is guest RAM (len 0 or a range that
 * wraps is IOERR), registers it with the backend and answers id = gpa, the
 * bus address and bus length. The RAM check goes through mem_map; what a few
 * host mappings do not show (or everything, without mem_map) is checked by
 * reading the first and last byte, which is exact for vmapple's one RAM
 * range and bounded however long the entry. A second MAP of a gpa that is already mapped,
 * with the same length and flags, takes a reference and answers the same id
 * and bus address; with another length or flags it is IOERR (the id would be
 * ambiguous). UNMAP names the id and the length the MAP asked for (a
 * different size is IOERR and the mapping stays); it drops one reference and
 * unregisters the range with the last one. An unknown id is IOERR. At most
 * option max_mappings distinct ranges are live; the backend's own limits
 * (occupancy) apply too. Reset and destroy unregister every live mapping.
 *
 * State: save writes the live mappings; load registers each again with the
 * loading device's backend and fails (-EINVAL, nothing changed) unless every
 * one gets the same bus address (the identity backend always does). A live
 * mapping identical to a saved one is kept as it is, so a device loads its
 * own state whatever its backend; live mappings the state lacks are
 * unregistered.
 */
#ifndef LIBVMAPPLE_APPLE_DMA_PCI_H
#define LIBVMAPPLE_APPLE_DMA_PCI_H

#include "common.h"
#include "device.h"
#include "dma-backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Entry layouts (vmapple_apple_dma_pci_options.layout). */
enum {
    /** 16/24-byte MAP entries as published with the QEMU RFC series (default). */
    VMAPPLE_APPLE_DMA_PCI_LAYOUT_PUBLISHED = 0,
    /** 20/28-byte MAP entries of the guest module published beside it. */
    VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE = 1
};

/** Protocol constants. */
#define VMAPPLE_APPLE_DMA_PCI_VERSION          2u
#define VMAPPLE_APPLE_DMA_PCI_DEFAULT_ENTRIES  4096u
#define VMAPPLE_APPLE_DMA_PCI_MAX_ENTRIES      65536u
#define VMAPPLE_APPLE_DMA_PCI_DEFAULT_MAPPINGS 65536u
#define VMAPPLE_APPLE_DMA_PCI_MAX_MAPPINGS     (1u << 22)

/** Options of vmapple_apple_dma_pci_create(). */
typedef struct vmapple_apple_dma_pci_options {
    uint32_t size;   /**< set by VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT */
    uint32_t layout; /**< VMAPPLE_APPLE_DMA_PCI_LAYOUT_*; default PUBLISHED */
    /** Most entries per batch (register MAX_ENTRIES), 1 .. 65536; 0 = 4096. */
    uint32_t max_entries;
    /**
     * Most distinct live mappings, 1 .. 4194304; 0 = 65536. The device's
     * table grows with the most mappings ever live, to at most 224 bytes
     * each: 14 MiB at the default, 896 MiB at the largest.
     */
    uint32_t max_mappings;
    /** Guest bus << 8 | devfn of the passthrough function served (register MANAGED_BDF). */
    uint16_t managed_bdf;
    uint8_t host_bus;      /**< host bus of the passthrough function */
    uint8_t host_device;   /**< host device, 0 .. 31 */
    uint8_t host_function; /**< host function, 0 .. 7 */
    uint8_t reserved[11];  /**< 0 */
    /**
     * The backend that registers the guest's buffers; the device takes its
     * own reference. NULL: a new identity backend (bus address = gpa).
     */
    vmapple_dma_backend *dma;
} vmapple_apple_dma_pci_options;

#define VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_apple_dma_pci_options)

/**
 * Create an apple-dma-pci function. Its one region is BAR0 ("bar0", 4 KiB,
 * VMAPPLE_REGION_PCI_BAR); it has no interrupt.
 *
 * @param ops mem_read and mem_write are required; mem_map is used when present
 *            (zero-copy RAM checks and host addresses for the backend).
 * @param opts NULL for the defaults (published layout, 4096 entries, identity
 *             backend, managed BDF 0, host 00:00.0).
 * @return 0; -EINVAL for a NULL @p out, a missing callback or an option out of
 *         range (the last error names it and the limit); -ENOMEM.
 */
VMAPPLE_API int vmapple_apple_dma_pci_create(const vmapple_host_ops *ops, void *opaque,
                                             const vmapple_apple_dma_pci_options *opts,
                                             vmapple_device **out);

/** What an apple-dma-pci function serves (vmapple_apple_dma_pci_get_info()). */
typedef struct vmapple_apple_dma_pci_info {
    uint32_t size; /**< set by the caller (VMAPPLE_APPLE_DMA_PCI_INFO_INIT) */
    uint32_t layout;
    uint32_t max_entries;
    uint32_t max_mappings;
    uint32_t live_mappings; /**< distinct ranges mapped now */
    uint16_t managed_bdf;
    uint8_t host_bus;
    uint8_t host_device;
    uint8_t host_function;
    uint8_t reserved[7];
    uint64_t doorbells; /**< doorbells rung since creation */
} vmapple_apple_dma_pci_info;

#define VMAPPLE_APPLE_DMA_PCI_INFO_INIT VMAPPLE_SIZED_INIT(vmapple_apple_dma_pci_info)

/**
 * Describe an apple-dma-pci function (used to find the companion of a
 * passthrough function, see vfio-apple.h).
 * @param[in,out] info its size set by VMAPPLE_APPLE_DMA_PCI_INFO_INIT; the
 *                     fields that size covers are filled.
 * @return 0; -EINVAL for NULL arguments or a size below 8; -ENODEV when
 *         @p dev is not an apple-dma-pci function.
 */
VMAPPLE_API int vmapple_apple_dma_pci_get_info(const vmapple_device *dev,
                                               vmapple_apple_dma_pci_info *info);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_APPLE_DMA_PCI_H */
