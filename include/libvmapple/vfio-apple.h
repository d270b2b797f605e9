/* SPDX-License-Identifier: MIT */
/**
 * @file vfio-apple.h
 * vfio-apple: the VMM-side policy of PCI passthrough on Apple hosts.
 *
 * On an Apple Silicon host a DriverKit extension (dext) owns the physical
 * PCI function; the VMM reaches it through a handful of operations (connect,
 * config space, BARs, DMA registration, interrupts, reset). What the VMM
 * does with them is host-independent policy, and that policy is what this
 * header offers. Three objects:
 *
 *  - vmapple_vfio_backend: a host mechanism (the dext on macOS, libpciaccess
 *    on Linux and the BSDs, a simulation for tests) behind
 *    vmapple_vfio_backend_ops, plus its registry of connections: one
 *    connection per host function (key bus << 16 | device << 8 | function),
 *    shared and reference counted, with at most one owner (a passthrough
 *    function); the last release disconnects.
 *  - vmapple_vfio_apple: one passed-through function. It owns its host
 *    function's connection and applies the policy: config reads from the
 *    device, config writes filtered (below), BAR accesses bounds-checked,
 *    region and interrupt information, interrupt delivery, reset, and the
 *    apple-dma-pci companion (apple-dma-pci.h) found or created.
 *  - vmapple_vfio_sim: a simulated host mechanism with fake functions (config
 *    space, BARs, a pending-interrupt bitmap the test sets, counters), for
 *    tests of VMMs and bindings without hardware.
 *
 * Config write policy (vmapple_vfio_apple_config_write()): bytes of the write
 * that fall on COMMAND (0x04, 0x05) are forwarded one byte at a time, so bus
 * master and memory enable reach the device; a write that touches STATUS
 * (0x06, 0x07), the BARs (0x10 .. 0x27) or the expansion ROM BAR
 * (0x30 .. 0x33) is otherwise dropped and reported done (the host owns
 * address decoding: reprogramming it makes the device fall off the bus; the
 * ROM BAR is dropped too although the platform's list stops at 0x27, as it
 * decodes host addresses the same way and the ROM region is not offered); a
 * write that touches none of these is forwarded as it is (capabilities, MSI,
 * MSI-X, PCIe); a write that touches COMMAND and other bytes but no
 * host-owned byte is forwarded one byte at a time. Sizes
 * other than 1, 2 and 4 are refused. The VMM's PCI layer still virtualises
 * what the guest sees of BARs and of the MSI/MSI-X capabilities, as any vfio
 * VMM does; this object decides what reaches the device.
 *
 * No migration (no dirty tracking) and no hot-plug. HVF maps guest memory in
 * 16 KiB pages, so BAR quirks that need finer mappings are not offered.
 *
 * Threading: one vmapple_vfio_apple is driven by one thread at a time; a
 * backend (and its registry) may be shared by objects on different threads.
 */
#ifndef LIBVMAPPLE_VFIO_APPLE_H
#define LIBVMAPPLE_VFIO_APPLE_H

#include "common.h"
#include "host.h"
#include "device.h"
#include "dma-backend.h"
#include "apple-dma-pci.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The registry key of host function bus:device.function. */
#define VMAPPLE_VFIO_HOST_FN(bus, device, function)                        \
    ((((uint32_t)(bus)&0xffu) << 16) | (((uint32_t)(device)&0x1fu) << 8) | \
     ((uint32_t)(function)&0x7u))

/** Bytes of a function's configuration space (PCIe). */
#define VMAPPLE_VFIO_CONFIG_SIZE 4096u
/** Bits of the pending-interrupt bitmap and of the mask (four u64). */
#define VMAPPLE_VFIO_MAX_VECTORS 256u

/** An opaque host mechanism with its connection registry. */
typedef struct vmapple_vfio_backend vmapple_vfio_backend;
/** An opaque passed-through function. */
typedef struct vmapple_vfio_apple vmapple_vfio_apple;
/** An opaque simulated host mechanism. */
typedef struct vmapple_vfio_sim vmapple_vfio_sim;

/** BAR flags (vmapple_vfio_bar_info.flags). */
enum {
    VMAPPLE_VFIO_BAR_MEM = 1u << 0, /**< memory BAR */
    VMAPPLE_VFIO_BAR_IO = 1u << 1,  /**< I/O BAR (never mapped: Apple hosts have no I/O space) */
    VMAPPLE_VFIO_BAR_64 = 1u << 2,  /**< 64-bit memory BAR (takes the next BAR too) */
    VMAPPLE_VFIO_BAR_PREFETCH = 1u << 3 /**< prefetchable */
};

/** One BAR of a host function. */
typedef struct vmapple_vfio_bar_info {
    uint32_t size;     /**< set by VMAPPLE_VFIO_BAR_INFO_INIT */
    uint32_t flags;    /**< VMAPPLE_VFIO_BAR_* */
    uint64_t bar_size; /**< bytes; 0 when the BAR is not implemented */
    uint64_t address;  /**< host bus address, for information (0 when unknown) */
} vmapple_vfio_bar_info;

#define VMAPPLE_VFIO_BAR_INFO_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_bar_info)

/** One host function as a backend enumerates it. */
typedef struct vmapple_vfio_function_info {
    uint32_t size;   /**< set by VMAPPLE_VFIO_FUNCTION_INFO_INIT */
    uint16_t domain; /**< PCI domain (segment); 0 on most machines */
    uint8_t bus;
    uint8_t device;
    uint8_t function;
    uint8_t revision;
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint16_t reserved;
    uint32_t class_code; /**< 24 bits: class, subclass, programming interface */
} vmapple_vfio_function_info;

#define VMAPPLE_VFIO_FUNCTION_INFO_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_function_info)

/**
 * The operations a host mechanism provides ("Backend operations" of the
 * vfio-apple spec). On macOS each is a call into the DriverKit extension.
 * Every callback gets the opaque pointer given to vmapple_vfio_backend_create()
 * and, once connected, the connection handle connect returned. The library
 * calls them with validated arguments (offsets and sizes in range, bar < 6),
 * serialised per connection. Return 0 (or a count where stated) or a negative
 * errno.
 */
typedef struct vmapple_vfio_backend_ops {
    uint32_t size; /**< sizeof, set by VMAPPLE_VFIO_BACKEND_OPS_INIT */

    /**
     * Required. Connect to host function @p host_fn (VMAPPLE_VFIO_HOST_FN())
     * and claim it. The registry calls it once per function however many
     * users share the connection.
     * @param[out] conn the backend's handle for the connection.
     * @return 0; -ENODEV when there is no such function; -EBUSY when another
     *         process holds it; another negative errno.
     */
    int (*connect)(void *opaque, uint32_t host_fn, void **conn);
    /** Required. Release the function (the last user went away). */
    void (*disconnect)(void *opaque, void *conn);
    /**
     * Required. Read @p len (1 .. 4096) bytes of config space at @p offset
     * into @p buf (offset + len <= 4096).
     * @return the bytes read (0 .. len; fewer when the function's config space
     *         is shorter, e.g. 256 bytes for conventional PCI), or an errno.
     */
    int (*config_read)(void *opaque, void *conn, uint32_t offset, void *buf, uint32_t len);
    /** Write @p size (1, 2, 4) bytes of @p value at @p offset. NULL: -ENOTSUP. */
    int (*config_write)(void *opaque, void *conn, uint32_t offset, uint32_t size, uint32_t value);
    /** Describe BAR @p bar (0 .. 5). NULL: the function has no BARs. */
    int (*bar_info)(void *opaque, void *conn, uint32_t bar, vmapple_vfio_bar_info *info);
    /**
     * Map BAR @p bar into the VMM's address space: @p host gets the address,
     * @p len the bytes mapped (the BAR's size). NULL: BARs cannot be mapped.
     */
    int (*bar_map)(void *opaque, void *conn, uint32_t bar, void **host, uint64_t *len);
    /** Undo bar_map. Optional. */
    void (*bar_unmap)(void *opaque, void *conn, uint32_t bar, void *host, uint64_t len);
    /** Register a buffer for device DMA; as vmapple_dma_ops.map. NULL: -ENOTSUP. */
    int (*dma_map)(void *opaque, void *conn, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                   uint64_t *bus_addr, uint64_t *bus_len);
    /** Unregister it; as vmapple_dma_ops.unmap. NULL: -ENOTSUP. */
    int (*dma_unmap)(void *opaque, void *conn, uint64_t gpa, uint64_t len, uint64_t bus_addr,
                     uint64_t bus_len);
    /** Set up interrupts; @p vectors gets how many (0 .. 256). NULL: none. */
    int (*irq_setup)(void *opaque, void *conn, uint32_t *vectors);
    /** Read and clear the pending bitmap (bit v of pending[v / 64]). NULL: nothing pending. */
    int (*irq_read_and_clear)(void *opaque, void *conn, uint64_t pending[4]);
    /** Set the vectors that may signal (bit set = enabled). Optional. */
    int (*irq_set_mask)(void *opaque, void *conn, const uint64_t mask[4]);
    /**
     * Arm the asynchronous "interrupts pending" notification: when a bit is
     * (or becomes) pending, notify the VMM once, by whatever means the host
     * set up; the VMM then calls vmapple_vfio_apple_process_interrupts() on
     * its own thread, which re-arms. Optional.
     */
    int (*irq_arm)(void *opaque, void *conn);
    /** Reset the function (FLR or hot reset). NULL: -ENOTSUP. */
    int (*reset)(void *opaque, void *conn);
    /**
     * Enumerate host functions: describe the @p index-th (0-based), filling
     * the fields @p info->size covers. @return 0, -ENOENT past the last one.
     * NULL: the backend cannot enumerate (-ENOTSUP).
     */
    int (*get_function)(void *opaque, uint32_t index, vmapple_vfio_function_info *info);
    /** Optional: the backend's last reference went away. */
    void (*close)(void *opaque);
} vmapple_vfio_backend_ops;

#define VMAPPLE_VFIO_BACKEND_OPS_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_backend_ops)

/**
 * Create a backend from host callbacks (e.g. a macOS host's dext calls).
 * @return 0; -EINVAL for NULL @p ops or @p out or a missing required callback
 *         (the last error names it); -ENOMEM.
 */
VMAPPLE_API int vmapple_vfio_backend_create(const vmapple_vfio_backend_ops *ops, void *opaque,
                                            vmapple_vfio_backend **out);

/** Flags of vmapple_vfio_pciaccess_options. */
enum {
    /**
     * Allow config writes and BAR mappings on the host's real devices. Off by
     * default: without it the backend only enumerates and reads (config
     * writes answer -EPERM, BAR mappings -EPERM). Writing to a device that a
     * host driver owns can crash the host; enable it only for a function
     * unbound from its driver.
     */
    VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE = 1u << 0
};

/** Options of vmapple_vfio_backend_create_pciaccess(). */
typedef struct vmapple_vfio_pciaccess_options {
    uint32_t size;   /**< set by VMAPPLE_VFIO_PCIACCESS_OPTIONS_INIT */
    uint32_t flags;  /**< VMAPPLE_VFIO_PCIACCESS_* */
    uint16_t domain; /**< PCI domain whose functions connect() reaches; default 0 */
} vmapple_vfio_pciaccess_options;

#define VMAPPLE_VFIO_PCIACCESS_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_pciaccess_options)

/**
 * Create the libpciaccess backend (Linux, the BSDs): enumerates the host's
 * PCI functions (all domains), reads their config space and BAR
 * information. It programs no IOMMU (dma_map: -ENOTSUP), sets up no
 * interrupts and resets nothing. libpciaccess keeps process-wide state: the
 * library initialises it with the first such backend and cleans it up with
 * the last; a program that uses libpciaccess itself should not mix the two.
 * @param opts NULL: read-only, domain 0.
 * @return 0; -ENOTSUP when the library was built without libpciaccess (the
 *         last error says so); -EINVAL for bad options; the errno of
 *         pci_system_init() (e.g. -ENOENT without /sys/bus/pci, -EACCES).
 */
VMAPPLE_API int vmapple_vfio_backend_create_pciaccess(const vmapple_vfio_pciaccess_options *opts,
                                                      vmapple_vfio_backend **out);

/** Drop the caller's reference; the backend closes with the last one. NULL is ignored. */
VMAPPLE_API void vmapple_vfio_backend_release(vmapple_vfio_backend *backend);

/**
 * Describe the @p index-th host function the backend knows.
 * @return 0; -ENOENT past the last one; -ENOTSUP when the backend cannot
 *         enumerate; -EINVAL for NULL arguments or a size below 8.
 */
VMAPPLE_API int vmapple_vfio_backend_get_function(vmapple_vfio_backend *backend, uint32_t index,
                                                  vmapple_vfio_function_info *info);

/**
 * Read config space of host function @p host_fn, sharing its connection when
 * one is open (connecting for the call otherwise). Never writes.
 * @return the bytes read (>= 0; the function's config space may be shorter
 *         than asked, e.g. 256 bytes, or 64 without privileges on Linux);
 *         -EINVAL for NULL arguments, len 0 or offset + len > 4096;
 *         -ENODEV when there is no such function; the backend's errno.
 */
VMAPPLE_API int vmapple_vfio_backend_read_config(vmapple_vfio_backend *backend, uint32_t host_fn,
                                                 uint32_t offset, void *buf, uint32_t len);

/**
 * Describe BAR @p bar (0 .. 5) of host function @p host_fn.
 * @return 0 (bar_size 0 for an unimplemented BAR); -EINVAL for NULL
 *         arguments or bar > 5; -ENODEV; the backend's errno.
 */
VMAPPLE_API int vmapple_vfio_backend_get_bar_info(vmapple_vfio_backend *backend, uint32_t host_fn,
                                                  uint32_t bar, vmapple_vfio_bar_info *info);

/**
 * The registry: how many users share the connection to @p host_fn.
 * @return the count (0: not connected); -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_vfio_backend_get_refs(vmapple_vfio_backend *backend, uint32_t host_fn);

/**
 * Is @p host_fn owned by a passthrough function?
 * @return 1 owned, 0 not; -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_vfio_backend_is_owned(vmapple_vfio_backend *backend, uint32_t host_fn);

/**
 * A DMA backend whose map and unmap go to @p host_fn's dma_map and dma_unmap
 * (for an apple-dma-pci companion made by the host). It holds a reference on
 * the function's connection (connecting if needed) until released.
 * @param opts limits the library enforces on top (NULL: none).
 * @return 0; -EINVAL; -ENODEV; the backend's connect errno.
 */
VMAPPLE_API int vmapple_vfio_backend_get_dma(vmapple_vfio_backend *backend, uint32_t host_fn,
                                             const vmapple_dma_backend_options *opts,
                                             vmapple_dma_backend **out);

/** The detailed message of the most recent failed call on @p backend. Never NULL. */
VMAPPLE_API const char *vmapple_vfio_backend_last_error(const vmapple_vfio_backend *backend);

/* ---- the passthrough function ---- */

/** Interrupt types (modes and vmapple_vfio_apple_get_irq_count() indexes). */
enum {
    VMAPPLE_VFIO_IRQ_NONE = 0, /**< mode: nothing delivered */
    VMAPPLE_VFIO_IRQ_INTX = 1, /**< legacy INTx: bit 0 is the line */
    VMAPPLE_VFIO_IRQ_MSI = 2,
    VMAPPLE_VFIO_IRQ_MSIX = 3,
    VMAPPLE_VFIO_IRQ_ERR = 4, /**< error notification (count 0) */
    VMAPPLE_VFIO_IRQ_REQ = 5  /**< device request notification (count 0) */
};

/** Region indexes (vmapple_vfio_apple_get_region_info()), as vfio numbers them. */
enum {
    VMAPPLE_VFIO_REGION_BAR0 = 0, /**< BAR n is region n, 0 .. 5 */
    VMAPPLE_VFIO_REGION_ROM = 6,
    VMAPPLE_VFIO_REGION_CONFIG = 7,
    VMAPPLE_VFIO_REGION_VGA = 8,
    VMAPPLE_VFIO_NUM_REGIONS = 9
};

/** Region flags. */
enum {
    VMAPPLE_VFIO_REGION_READ = 1u << 0,
    VMAPPLE_VFIO_REGION_WRITE = 1u << 1,
    VMAPPLE_VFIO_REGION_MMAP = 1u << 2 /**< vmapple_vfio_apple_get_bar_memory() gives it */
};

/** A region as the VMM reports it. */
typedef struct vmapple_vfio_region_info {
    uint32_t size;        /**< set by VMAPPLE_VFIO_REGION_INFO_INIT */
    uint32_t flags;       /**< VMAPPLE_VFIO_REGION_* */
    uint64_t region_size; /**< bytes; 0 for an absent region (ROM, VGA) */
} vmapple_vfio_region_info;

#define VMAPPLE_VFIO_REGION_INFO_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_region_info)

/** Options of vmapple_vfio_apple_create(). */
typedef struct vmapple_vfio_apple_options {
    uint32_t size;         /**< set by VMAPPLE_VFIO_APPLE_OPTIONS_INIT */
    uint16_t guest_bdf;    /**< the function's guest bus << 8 | devfn */
    uint8_t host_bus;      /**< the host function */
    uint8_t host_device;   /**< 0 .. 31 */
    uint8_t host_function; /**< 0 .. 7 */
    uint8_t reserved[7];   /**< 0 */
    /** Required: the host mechanism (the object takes its own reference). */
    vmapple_vfio_backend *backend;
    /**
     * Template of an automatically created apple-dma-pci companion (layout,
     * max_entries, max_mappings, dma). NULL: defaults. Its managed_bdf and
     * host fields are replaced by this function's; a NULL dma becomes the
     * host function's own (vmapple_vfio_backend_get_dma()).
     */
    const vmapple_apple_dma_pci_options *companion;
    /**
     * Required: deliver an interrupt, called from
     * vmapple_vfio_apple_process_interrupts() in vector order with the
     * opaque pointer given to create. @p type is the mode
     * (VMAPPLE_VFIO_IRQ_INTX, _MSI, _MSIX); for INTx @p vector is 0 and the
     * host asserts the line until the guest's EOI, as for any level
     * interrupt; for MSI and MSI-X the host sends the message the guest
     * programmed for @p vector.
     */
    void (*irq_deliver)(void *opaque, uint32_t type, uint32_t vector);
} vmapple_vfio_apple_options;

#define VMAPPLE_VFIO_APPLE_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_apple_options)

/**
 * Take host function host_bus:host_device.host_function for the guest.
 * Connects (or joins the connection an apple-dma-pci DMA backend opened)
 * as its owner, sets up interrupts (mask: nothing enabled), maps its memory
 * BARs (a BAR the backend cannot map is reported without
 * VMAPPLE_VFIO_REGION_MMAP and its accesses fail) and reads its MSI-X table
 * size from config space.
 *
 * @param ops host callbacks for the companion (mem_read, mem_write,
 *            optionally mem_map and log); may be NULL when no companion is
 *            created; log lines of this object go to its log.
 * @return 0; -EINVAL for NULL arguments, a missing option (backend,
 *         irq_deliver) or one out of range; -EBUSY when another passthrough
 *         function owns the host function; the backend's connect errno
 *         (-ENODEV: no such function); -ENOMEM.
 */
VMAPPLE_API int vmapple_vfio_apple_create(const vmapple_host_ops *ops, void *opaque,
                                          const vmapple_vfio_apple_options *opts,
                                          vmapple_vfio_apple **out);

/**
 * Release the function: destroys the companion if it was created
 * automatically, unmaps the BARs, masks every vector and drops the
 * connection (disconnecting with the last user). NULL is ignored.
 */
VMAPPLE_API void vmapple_vfio_apple_destroy(vmapple_vfio_apple *pt);

/** The detailed message of the most recent failed call on @p pt. Never NULL. */
VMAPPLE_API const char *vmapple_vfio_apple_last_error(const vmapple_vfio_apple *pt);

/**
 * A config read of @p size (1, 2, 4) bytes at @p offset, from the device.
 * Bytes beyond the function's config space (a conventional function has 256)
 * read as 0.
 * @return 0; -EINVAL for NULL, a bad size or offset + size > 4096; the
 *         backend's errno.
 */
VMAPPLE_API int vmapple_vfio_apple_config_read(vmapple_vfio_apple *pt, uint32_t offset,
                                               uint32_t size, uint32_t *value);

/**
 * Read @p len (1 .. 4096) bytes of config space at @p offset.
 * @return as vmapple_vfio_apple_config_read().
 */
VMAPPLE_API int vmapple_vfio_apple_config_read_block(vmapple_vfio_apple *pt, uint32_t offset,
                                                     void *buf, uint32_t len);

/**
 * A config write, filtered by the policy in this header's description.
 * @return 0 when forwarded or dropped by policy; -EINVAL for a size other
 *         than 1, 2, 4 or offset + size > 4096; the backend's errno when a
 *         forwarded write failed (-EPERM: a read-only backend).
 */
VMAPPLE_API int vmapple_vfio_apple_config_write(vmapple_vfio_apple *pt, uint32_t offset,
                                                uint32_t size, uint32_t value);

/**
 * A little-endian load of @p size (1, 2, 4, 8) bytes at @p offset of BAR
 * @p bar, straight from the mapped BAR.
 * @return 0; -EINVAL for NULL, a bad size, bar > 5, an unaligned offset
 *         (device memory faults on unaligned accesses on arm64) or an access
 *         that does not fit the BAR (-ERANGE); -ENXIO when the BAR is not
 *         implemented; the backend's bar_map error when it is not mapped.
 */
VMAPPLE_API int vmapple_vfio_apple_bar_read(vmapple_vfio_apple *pt, uint32_t bar, uint64_t offset,
                                            uint32_t size, uint64_t *value);

/** A little-endian store; @return as vmapple_vfio_apple_bar_read(). */
VMAPPLE_API int vmapple_vfio_apple_bar_write(vmapple_vfio_apple *pt, uint32_t bar, uint64_t offset,
                                             uint32_t size, uint64_t value);

/**
 * The host mapping of BAR @p bar, for a VMM that maps it into the guest
 * (HVF: in 16 KiB pages). Valid until the object is destroyed.
 * @return 0; -EINVAL; -ENXIO; the bar_map error.
 */
VMAPPLE_API int vmapple_vfio_apple_get_bar_memory(vmapple_vfio_apple *pt, uint32_t bar, void **host,
                                                  uint64_t *len);

/**
 * Region @p index (VMAPPLE_VFIO_REGION_*): BAR0..5 their sizes from the
 * backend (read, write, mmap when mapped), config 4096 (read, write), ROM and
 * VGA 0.
 * @return 0; -EINVAL for NULL arguments, a size below 8 or an index >= 9.
 */
VMAPPLE_API int vmapple_vfio_apple_get_region_info(vmapple_vfio_apple *pt, uint32_t index,
                                                   vmapple_vfio_region_info *info);

/**
 * Interrupt counts: INTx 1; MSI the vectors the backend set up; MSI-X the
 * entries of the function's MSI-X table (0 without the capability); ERR and
 * REQ 0.
 * @return the count (>= 0); -EINVAL for NULL or an unknown type.
 */
VMAPPLE_API int vmapple_vfio_apple_get_irq_count(vmapple_vfio_apple *pt, uint32_t type);

/**
 * Choose the interrupt mode, as the guest programmed the function.
 * @param type VMAPPLE_VFIO_IRQ_NONE, _INTX, _MSI or _MSIX.
 * @param enabled vectors the guest enabled (MSI: up to the MSI count;
 *                MSI-X: up to the MSI-X count; INTx: 1; NONE: 0).
 * @param in_use the vectors the VMM will deliver (bit v of in_use[v / 64]),
 *               e.g. those with a message programmed; ignored for INTx
 *               (bit 0) and NONE. NULL: none.
 * The backend's mask becomes in_use (MSI, MSI-X) without the vectors from
 * @p enabled up, which are never delivered; bit 0 (INTx); or nothing.
 * @return 0; -EINVAL for NULL, an unknown type or @p enabled above the count;
 *         the backend's irq_set_mask errno (the mode is then unchanged).
 */
VMAPPLE_API int vmapple_vfio_apple_set_irqs(vmapple_vfio_apple *pt, uint32_t type, uint32_t enabled,
                                            const uint64_t in_use[4]);

/**
 * Handle the backend's "interrupts pending" notification: read and clear the
 * pending bitmap, deliver each set bit in order through irq_deliver (MSI,
 * MSI-X: vector v only when v < enabled and v is in use; INTx: bit 0 is the
 * line; other bits and mode NONE deliver nothing), then re-arm the
 * notification. Safe to call when nothing is pending.
 * @return the number of interrupts delivered (>= 0); -EINVAL for NULL; the
 *         backend's errno (nothing delivered).
 */
VMAPPLE_API int vmapple_vfio_apple_process_interrupts(vmapple_vfio_apple *pt);

/**
 * Reset the function through the backend (FLR or hot reset). The interrupt
 * mode returns to NONE (the reset disabled MSI/MSI-X on the device) and the
 * mask to nothing.
 * @return 0; -EINVAL for NULL; -ENOTSUP when the backend cannot reset; its errno.
 */
VMAPPLE_API int vmapple_vfio_apple_reset(vmapple_vfio_apple *pt);

/**
 * Find the function's apple-dma-pci companion among @p candidates (the
 * host's devices on the function's guest bus; NULL entries and devices of
 * other types are skipped): the one whose managed BDF is the function's
 * guest BDF and whose host bus/device/function are the function's. When
 * there is none, create one (options from the template, see
 * vmapple_vfio_apple_options.companion, and the host ops given to create):
 * the host must put it on the guest bus (at a free slot of that bus) and
 * must not destroy it; it is destroyed with the function.
 *
 * @param[out] companion the companion found or created.
 * @return 0 when found; 1 when created; -EINVAL for NULL arguments or a
 *         host ops table without mem_read/mem_write (creating); -EEXIST when
 *         candidates contradict (two companions, or one that serves this
 *         guest BDF for another host function or this host function for
 *         another guest BDF; the last error names it); -EBUSY when the
 *         function already has an automatically created companion; the
 *         errors of vmapple_apple_dma_pci_create().
 */
VMAPPLE_API int vmapple_vfio_apple_attach_companion(vmapple_vfio_apple *pt,
                                                    vmapple_device *const *candidates,
                                                    uint32_t count, vmapple_device **companion);

/* ---- the simulated host mechanism ---- */

/** Options of vmapple_vfio_sim_create(). */
typedef struct vmapple_vfio_sim_options {
    uint32_t size;     /**< set by VMAPPLE_VFIO_SIM_OPTIONS_INIT */
    uint32_t reserved; /**< 0 */
    /**
     * Where the functions' dma_map goes (the simulation takes a reference).
     * NULL: one simulated DART with the platform's limits, shared by all
     * functions of the simulation.
     */
    vmapple_dma_backend *dma;
    /**
     * Optional: the "interrupts pending" notification. Called (once per
     * arm) from vmapple_vfio_sim_raise() when the function is armed.
     */
    void (*notify)(void *opaque, uint32_t host_fn);
    void *notify_opaque;
} vmapple_vfio_sim_options;

#define VMAPPLE_VFIO_SIM_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_sim_options)

/** One simulated host function (vmapple_vfio_sim_add_function()). */
typedef struct vmapple_vfio_sim_function {
    uint32_t size; /**< set by VMAPPLE_VFIO_SIM_FUNCTION_INIT */
    uint8_t bus;
    uint8_t device;   /**< 0 .. 31 */
    uint8_t function; /**< 0 .. 7 */
    uint8_t reserved0;
    /** Length of its config space: 256 or 4096; 0 = 4096. */
    uint32_t config_len;
    /** Vectors irq_setup answers, 0 .. 256. */
    uint32_t msi_vectors;
    /**
     * Initial config bytes (config_bytes of them, at most config_len);
     * the rest reads 0. NULL: all zero. Copied.
     */
    const void *config;
    uint32_t config_bytes;
    uint32_t reserved1;
    /** Memory BAR sizes: 0 = none, else a power of two, 16 .. 1 GiB. */
    uint64_t bar_size[6];
    /** VMAPPLE_VFIO_BAR_64 / _PREFETCH per BAR (a 64-bit BAR n leaves n + 1 empty). */
    uint32_t bar_flags[6];
} vmapple_vfio_sim_function;

#define VMAPPLE_VFIO_SIM_FUNCTION_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_sim_function)

/** Counters and registers of a simulated function (vmapple_vfio_sim_get_state()). */
typedef struct vmapple_vfio_sim_state {
    uint32_t size;          /**< set by VMAPPLE_VFIO_SIM_STATE_INIT */
    uint32_t connected;     /**< 1 while a connection is open */
    uint32_t connects;      /**< connects since it was added */
    uint32_t resets;        /**< resets */
    uint32_t config_writes; /**< config writes that reached it */
    uint32_t irq_setups;    /**< irq_setup calls */
    uint32_t arms;          /**< irq_arm calls */
    uint32_t armed;         /**< 1 when armed and not notified since */
    uint32_t notifies;      /**< notifications sent */
    uint32_t bars_mapped;   /**< BAR mappings live */
    uint64_t pending[4];    /**< pending bitmap */
    uint64_t mask[4];       /**< the last mask set */
} vmapple_vfio_sim_state;

#define VMAPPLE_VFIO_SIM_STATE_INIT VMAPPLE_SIZED_INIT(vmapple_vfio_sim_state)

/**
 * Create a simulated host mechanism without functions.
 * @param opts NULL: defaults.
 * @return 0; -EINVAL; -ENOMEM.
 */
VMAPPLE_API int vmapple_vfio_sim_create(const vmapple_vfio_sim_options *opts,
                                        vmapple_vfio_sim **out);

/**
 * Drop the simulation's own reference. Functions stay alive as long as the
 * backend (vmapple_vfio_sim_get_backend()) has users; @p sim itself must not
 * be used afterwards. NULL is ignored.
 */
VMAPPLE_API void vmapple_vfio_sim_destroy(vmapple_vfio_sim *sim);

/**
 * Add a function.
 * @return 0; -EINVAL for NULL, a field out of range (named in the last
 *         error); -EEXIST when bus:device.function exists; -ENOMEM.
 */
VMAPPLE_API int vmapple_vfio_sim_add_function(vmapple_vfio_sim *sim,
                                              const vmapple_vfio_sim_function *fn);

/**
 * The simulation's backend: borrowed (take no reference; it lives as long as
 * the simulation or any object holding one).
 * @return the backend, or NULL for a NULL @p sim.
 */
VMAPPLE_API vmapple_vfio_backend *vmapple_vfio_sim_get_backend(vmapple_vfio_sim *sim);

/**
 * Make @p vector (0 .. 255) pending on @p host_fn, as the device would, and
 * send the notification when armed.
 * @return 0; -EINVAL for NULL or a vector >= 256; -ENODEV for no such function.
 */
VMAPPLE_API int vmapple_vfio_sim_raise(vmapple_vfio_sim *sim, uint32_t host_fn, uint32_t vector);

/**
 * Counters, pending bitmap and mask of @p host_fn.
 * @return 0; -EINVAL for NULL or a size below 8; -ENODEV.
 */
VMAPPLE_API int vmapple_vfio_sim_get_state(vmapple_vfio_sim *sim, uint32_t host_fn,
                                           vmapple_vfio_sim_state *state);

/**
 * The @p index-th config write that reached @p host_fn (0 = the first since
 * it was added; the last 256 are kept).
 * @return 0; -EINVAL for NULL arguments; -ENODEV; -ENOENT for an index not
 *         (or no longer) kept.
 */
VMAPPLE_API int vmapple_vfio_sim_get_config_write(vmapple_vfio_sim *sim, uint32_t host_fn,
                                                  uint32_t index, uint32_t *offset, uint32_t *size,
                                                  uint32_t *value);

/**
 * The memory behind BAR @p bar of @p host_fn (what bar_map hands out), for a
 * test to look at or prepare.
 * @return 0; -EINVAL; -ENODEV; -ENXIO for an unimplemented BAR.
 */
VMAPPLE_API int vmapple_vfio_sim_get_bar_memory(vmapple_vfio_sim *sim, uint32_t host_fn,
                                                uint32_t bar, void **host, uint64_t *len);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_VFIO_APPLE_H */
