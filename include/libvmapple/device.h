/* SPDX-License-Identifier: MIT */
/**
 * @file device.h
 * The device object: what every libvmapple device has in common.
 *
 * A device is created by its own constructor (vmapple_aes_create(), ...),
 * which takes the host ops, the host's opaque pointer and a versioned
 * options struct, and is then driven through the functions below: its MMIO
 * regions are enumerated and accessed, it is reset, saved and loaded, and
 * finally destroyed.
 *
 * Options structs: every vmapple_<device>_options begins with a uint32_t
 * size, has a VMAPPLE_<DEVICE>_OPTIONS_INIT initialiser, and may be passed as
 * NULL for the defaults. The library reads only the fields the size covers
 * and uses defaults for the rest (a caller built against an older header).
 * A size larger than the library knows is accepted when every byte beyond
 * the known fields is zero, and refused with -EINVAL otherwise (the caller
 * asked for an option this library does not have).
 *
 * Threading: one device is driven by one thread at a time; different devices
 * are independent.
 */
#ifndef LIBVMAPPLE_DEVICE_H
#define LIBVMAPPLE_DEVICE_H

#include "common.h"
#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque device object. */
typedef struct vmapple_device vmapple_device;

/** What a device object is. Values are stable; new ones are appended. */
typedef enum vmapple_device_type {
    VMAPPLE_DEVICE_AES = 1,            /**< AES engine (aes.h) */
    VMAPPLE_DEVICE_BDIF = 2,           /**< backdoor block interface (bdif.h) */
    VMAPPLE_DEVICE_CFG = 3,            /**< configuration region (cfg.h) */
    VMAPPLE_DEVICE_PVPANIC = 4,        /**< pvpanic over MMIO (pvpanic.h) */
    VMAPPLE_DEVICE_XHCI_POLICY = 5,    /**< xHCI interrupter-mapping quirk (xhci.h) */
    VMAPPLE_DEVICE_VIRTIO_BLK = 6,     /**< Apple virtio-blk PCI function (virtio-blk.h) */
    VMAPPLE_DEVICE_APPLE_DMA_PCI = 7,  /**< apple-dma-pci PCI function (apple-dma-pci.h) */
    VMAPPLE_DEVICE_PCI_HOST_BRIDGE = 8 /**< a PCI host bridge function (pci.h) */
} vmapple_device_type;

/** A base or address that the vmapple map does not fix (e.g. a PCI BAR). */
#define VMAPPLE_NO_BASE UINT64_MAX
/** An interrupt that has no fixed GIC SPI (e.g. PCI INTx, routed by slot). */
#define VMAPPLE_NO_IRQ UINT32_MAX

/** Region flags (vmapple_region_info.flags). */
enum {
    /** Accesses go through vmapple_device_read() / vmapple_device_write(). */
    VMAPPLE_REGION_MMIO = 1u << 0,
    /**
     * The region is plain memory to the guest: its backing bytes are
     * available through vmapple_device_get_region_memory(), and a host may map
     * them straight into the guest instead of trapping accesses.
     */
    VMAPPLE_REGION_RAM = 1u << 1,
    /** The region is a PCI BAR: the guest chooses its base. */
    VMAPPLE_REGION_PCI_BAR = 1u << 2
};

/** One MMIO region of a device. Owned by the library; fields are appended only. */
typedef struct vmapple_region_info {
    const char *name; /**< e.g. "aes-window1"; unique within the device */
    uint64_t size;    /**< bytes */
    uint64_t base;    /**< base in the vmapple map, or VMAPPLE_NO_BASE */
    uint32_t flags;   /**< VMAPPLE_REGION_* */
    uint32_t pci_bar; /**< BAR number when VMAPPLE_REGION_PCI_BAR, else UINT32_MAX */
} vmapple_region_info;

/** Interrupt flags (vmapple_irq_info.flags). */
enum {
    VMAPPLE_IRQ_LEVEL = 1u << 0,   /**< level-triggered line (all current devices) */
    VMAPPLE_IRQ_PCI_INTX = 1u << 1 /**< a PCI INTx pin; the SPI depends on the slot */
};

/** One interrupt output of a device. Owned by the library; fields are appended only. */
typedef struct vmapple_irq_info {
    const char *name; /**< e.g. "aes" */
    uint32_t spi;     /**< GIC SPI number in the vmapple map, or VMAPPLE_NO_IRQ */
    uint32_t flags;   /**< VMAPPLE_IRQ_* */
} vmapple_irq_info;

/**
 * Destroy a device: waits for any asynchronous work, releases everything.
 * NULL is accepted and ignored.
 */
VMAPPLE_API void vmapple_device_destroy(vmapple_device *dev);

/**
 * @return the device's vmapple_device_type (> 0), or -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_device_get_type(const vmapple_device *dev);

/**
 * The device's name as used in log lines and state blobs ("aes", "bdif",
 * ...). Never NULL ("(null)" for a NULL device).
 */
VMAPPLE_API const char *vmapple_device_get_name(const vmapple_device *dev);

/**
 * Give the device an instance name for its log lines (e.g. "virtio-blk-root"
 * when a machine has two). At most 31 bytes.
 * @return 0; -EINVAL for NULL arguments or a name that is empty or too long.
 */
VMAPPLE_API int vmapple_device_set_name(vmapple_device *dev, const char *name);

/**
 * The detailed message of the most recent failed call on @p dev.
 * @return never NULL; "" when nothing has failed yet. Valid until the next
 *         call on the device.
 */
VMAPPLE_API const char *vmapple_device_last_error(const vmapple_device *dev);

/**
 * @return the number of MMIO regions (>= 0), or -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_device_count_regions(const vmapple_device *dev);

/**
 * Describe region @p index.
 * @param[out] info set to a library-owned description valid until the
 *                  device is destroyed.
 * @return 0; -EINVAL for NULL arguments; -ENOENT if @p index >= count.
 */
VMAPPLE_API int vmapple_device_get_region(const vmapple_device *dev, uint32_t index,
                                          const vmapple_region_info **info);

/**
 * @return the index of the region called @p name (>= 0), -ENOENT if there is
 *         none, -EINVAL for NULL arguments.
 */
VMAPPLE_API int vmapple_device_find_region(const vmapple_device *dev, const char *name);

/**
 * The backing bytes of a VMAPPLE_REGION_RAM region, for a host that maps the
 * region into the guest. The pointer stays valid until the device is
 * destroyed; reset and load rewrite the bytes in place.
 * @return 0; -EINVAL for NULL arguments; -ENOENT for a bad index; -ENOTSUP
 *         when the region is not VMAPPLE_REGION_RAM.
 */
VMAPPLE_API int vmapple_device_get_region_memory(vmapple_device *dev, uint32_t index, void **host,
                                                 uint64_t *size);

/** @return the number of interrupt outputs (>= 0), or -EINVAL for NULL. */
VMAPPLE_API int vmapple_device_count_irqs(const vmapple_device *dev);

/**
 * Describe interrupt output @p index (the line number passed to
 * vmapple_host_ops.irq_set).
 * @return 0; -EINVAL for NULL arguments; -ENOENT if @p index >= count.
 */
VMAPPLE_API int vmapple_device_get_irq(const vmapple_device *dev, uint32_t index,
                                       const vmapple_irq_info **info);

/**
 * A guest read of @p size bytes at @p offset in region @p region.
 *
 * Registers the device does not decode, and sizes or alignments its
 * hardware does not accept, behave as the device's spec says (typically:
 * read as 0, logged as a guest error); they are not failures of this call.
 *
 * @param size 1, 2, 4 or 8.
 * @param[out] value the value read, zero-extended.
 * @return 0; -EINVAL for NULL arguments, a bad size, a region index out of
 *         range or an access that does not fit inside the region (host bus
 *         errors, not guest errors).
 */
VMAPPLE_API int vmapple_device_read(vmapple_device *dev, uint32_t region, uint64_t offset,
                                    uint32_t size, uint64_t *value);

/**
 * A guest write of the low @p size bytes of @p value at @p offset in region
 * @p region. Same rules as vmapple_device_read(). A write may run a device
 * command synchronously (DMA, interrupts, block I/O in synchronous mode).
 * @return 0, or -EINVAL as for vmapple_device_read().
 */
VMAPPLE_API int vmapple_device_write(vmapple_device *dev, uint32_t region, uint64_t offset,
                                     uint32_t size, uint64_t value);

/**
 * Reset the device to its power-on state (as a machine reset does). Waits
 * for, or cancels, asynchronous work; no completion touches guest memory
 * afterwards. Interrupt lines are deasserted.
 * @return 0 or -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_device_reset(vmapple_device *dev);

/**
 * Save the device's state to a versioned, checksummed blob.
 *
 * Call with @p buf NULL (or too small) to learn the size: the call then
 * returns -ENOSPC and sets @p *size_out to the bytes needed. Saving waits
 * for asynchronous work to complete first.
 *
 * @param[out] size_out bytes written (or needed); required.
 * @return 0; -ENOSPC; -EINVAL for NULL arguments.
 */
VMAPPLE_API int vmapple_device_save(vmapple_device *dev, void *buf, size_t buf_size,
                                    size_t *size_out);

/**
 * Load a blob made by vmapple_device_save() into @p dev, normally a fresh
 * object created with the same options. The blob is checked completely
 * before anything changes: on failure the device is untouched.
 * After loading, the device calls irq_set once per line with its level.
 *
 * @return 0; -EINVAL for NULL arguments; -EBADMSG for a blob that is
 *         truncated, corrupt or not a libvmapple state blob; -ENODEV for a
 *         blob of another device type; -EPROTONOSUPPORT for a newer state
 *         version; -EINVAL when the blob contradicts the device's options
 *         (the last error names the option).
 */
VMAPPLE_API int vmapple_device_load(vmapple_device *dev, const void *buf, size_t size);

/**
 * Devices in asynchronous mode: a file descriptor that becomes readable when
 * completions are ready. Poll it on the host's thread and then call
 * vmapple_device_process(). Owned by the device.
 * @return the descriptor (>= 0); -ENOTSUP for devices or modes without
 *         asynchronous work; -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_device_poll_fd(vmapple_device *dev);

/**
 * Deliver the completions of asynchronous work (used-ring updates,
 * interrupts) on the calling thread and clear the poll descriptor. Never
 * blocks on I/O.
 * @return the number of completions delivered (>= 0); -EINVAL for NULL.
 *         Devices without asynchronous work return 0.
 */
VMAPPLE_API int vmapple_device_process(vmapple_device *dev);

/**
 * PCI functions: a configuration-space read of @p size (1, 2 or 4) bytes at
 * @p offset. Reads beyond the implemented space return all ones, as on PCI.
 * @return 0; -ENOTSUP when @p dev is not a PCI function; -EINVAL for NULL
 *         arguments, a bad size or offset + size > 4096.
 */
VMAPPLE_API int vmapple_device_pci_config_read(vmapple_device *dev, uint32_t offset, uint32_t size,
                                               uint32_t *value);

/**
 * PCI functions: a configuration-space write. Read-only bits are kept;
 * changes to BARs or COMMAND are reported through pci_bar_update.
 * @return as vmapple_device_pci_config_read().
 */
VMAPPLE_API int vmapple_device_pci_config_write(vmapple_device *dev, uint32_t offset, uint32_t size,
                                                uint32_t value);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_DEVICE_H */
