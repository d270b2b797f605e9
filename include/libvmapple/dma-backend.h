/* SPDX-License-Identifier: MIT */
/**
 * @file dma-backend.h
 * DMA backends: what makes guest memory visible to a passed-through device.
 *
 * On an Apple Silicon host a physical PCI device sits behind the DART
 * (Apple's IOMMU), programmed by a DriverKit extension: the VMM cannot pick
 * device addresses, it asks for a range of guest memory to be registered and
 * is told the bus address the device must use. apple-dma-pci
 * (apple-dma-pci.h) forwards the guest's requests to a vmapple_dma_backend.
 *
 * Three kinds exist behind the one interface:
 *  - identity (vmapple_dma_backend_create_identity()): bus address = guest
 *    physical address, for guests and tests without a DART;
 *  - a simulated DART (vmapple_dma_backend_create_sim_dart()) with the
 *    platform's limits (1.5 GiB registered, 65536 live mappings, both
 *    configurable) that hands out deliberately unaligned bus addresses;
 *  - a host's own (vmapple_dma_backend_create()): a macOS host fills
 *    vmapple_dma_ops with calls into its DriverKit extension, another host
 *    with whatever programs its IOMMU.
 *
 * Every backend counts what is registered through it (bytes and mappings,
 * vmapple_dma_backend_get_occupancy()) and refuses, with -ENOSPC, a mapping
 * that would take it past its limits.
 *
 * Reference counting: a device given a backend takes its own reference, so
 * the host may release its reference right after creating the device.
 *
 * Threading: a backend may be shared by devices driven on different threads;
 * calls into one backend are serialised by the library, so host callbacks
 * are never called concurrently for one backend.
 */
#ifndef LIBVMAPPLE_DMA_BACKEND_H
#define LIBVMAPPLE_DMA_BACKEND_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque, reference-counted DMA backend. */
typedef struct vmapple_dma_backend vmapple_dma_backend;

/**
 * Callbacks of a host-supplied DMA backend: the interface a macOS host
 * implements with its DriverKit extension (register a host buffer with the
 * DART, answer the bus address; unregister it).
 *
 * The library never calls map with len 0 or a range that wraps. apple-dma-pci
 * calls unmap only with values a successful map returned; a host calling
 * vmapple_dma_backend_unmap() itself gets its values passed through.
 * Callbacks must not call back into the same backend (calls into one backend
 * hold its lock).
 */
typedef struct vmapple_dma_ops {
    uint32_t size; /**< sizeof, set by VMAPPLE_DMA_OPS_INIT */

    /**
     * Required. Register guest memory [gpa, gpa + len) for DMA by the device.
     *
     * @param host the host address backing the whole range, when the device's
     *             host offers mem_map and one mapping covers the range; NULL
     *             otherwise (the backend then translates @p gpa itself). The
     *             pointer is the host's guest-RAM mapping: a backend may keep
     *             the registration as long as the host keeps guest RAM mapped,
     *             which hosts do for the life of the VM.
     * @param flags the guest's MAP flags, passed through unchanged (the
     *              protocol does not define them; a backend may use them as
     *              a direction hint or ignore them).
     * @param[out] bus_addr the address the device must use for the first byte.
     * @param[out] bus_len bytes covered from @p bus_addr, 1 .. @p len.
     * @return 0; -ENOSPC when the IOMMU is full; -EFAULT when the range is not
     *         memory the backend can register; any other negative errno.
     */
    int (*map)(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
               uint64_t *bus_addr, uint64_t *bus_len);

    /**
     * Required. Unregister a range registered by map (same @p gpa, @p len,
     * @p bus_addr, @p bus_len). After it returns 0 the device can no longer
     * reach the memory.
     * @return 0 or a negative errno (the library then keeps the mapping live).
     */
    int (*unmap)(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr, uint64_t bus_len);

    /** Optional: called once when the last reference goes away. */
    void (*close)(void *opaque);
} vmapple_dma_ops;

#define VMAPPLE_DMA_OPS_INIT VMAPPLE_SIZED_INIT(vmapple_dma_ops)

/** Options of vmapple_dma_backend_create() and _create_identity(). */
typedef struct vmapple_dma_backend_options {
    uint32_t size;         /**< sizeof, set by VMAPPLE_DMA_BACKEND_OPTIONS_INIT */
    uint32_t max_mappings; /**< most live mappings; 0 (default) = no limit */
    uint64_t max_bytes;    /**< most bytes registered at once; 0 (default) = no limit */
} vmapple_dma_backend_options;

#define VMAPPLE_DMA_BACKEND_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_dma_backend_options)

/** The simulated DART's defaults: the platform's limits. */
#define VMAPPLE_SIM_DART_MAX_BYTES    (3ull << 29) /* 1.5 GiB */
#define VMAPPLE_SIM_DART_MAX_MAPPINGS 65536u
/** The simulated DART's page (the host's 16 KiB page). */
#define VMAPPLE_SIM_DART_PAGE 16384u
/** Where its bus addresses start by default. */
#define VMAPPLE_SIM_DART_BUS_BASE 0x400000000ull

/** Options of vmapple_dma_backend_create_sim_dart(). */
typedef struct vmapple_sim_dart_options {
    uint32_t size; /**< sizeof, set by VMAPPLE_SIM_DART_OPTIONS_INIT */
    /** Most live mappings, 1 .. 1048576; 0 = VMAPPLE_SIM_DART_MAX_MAPPINGS. */
    uint32_t max_mappings;
    /** Most bytes registered at once, 1 .. 64 GiB; 0 = VMAPPLE_SIM_DART_MAX_BYTES. */
    uint64_t max_bytes;
    /**
     * First bus address of the window the DART hands out; a multiple of
     * 16 KiB; 0 = VMAPPLE_SIM_DART_BUS_BASE. The window is as large as the
     * limits need and must not wrap the 64-bit space.
     */
    uint64_t bus_base;
} vmapple_sim_dart_options;

#define VMAPPLE_SIM_DART_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_sim_dart_options)

/** What a backend holds (vmapple_dma_backend_get_occupancy()). */
typedef struct vmapple_dma_occupancy {
    uint32_t size;         /**< set by the caller (VMAPPLE_DMA_OCCUPANCY_INIT) */
    uint32_t mappings;     /**< live mappings */
    uint32_t max_mappings; /**< the limit; 0 = none */
    uint32_t reserved;     /**< 0 */
    uint64_t bytes;        /**< bytes registered (the lengths the guest asked for) */
    uint64_t max_bytes;    /**< the limit; 0 = none */
    uint64_t failed_maps;  /**< maps refused since creation (limits or backend errors) */
} vmapple_dma_occupancy;

#define VMAPPLE_DMA_OCCUPANCY_INIT VMAPPLE_SIZED_INIT(vmapple_dma_occupancy)

/**
 * Create a backend served by host callbacks (e.g. a macOS host's DriverKit
 * extension). The library enforces the limits of @p opts on top of whatever
 * the host refuses itself.
 * @param opts NULL: no limits.
 * @return 0; -EINVAL for NULL @p ops or @p out, or a missing map or unmap
 *         callback (the last error names it); -ENOMEM.
 */
VMAPPLE_API int vmapple_dma_backend_create(const vmapple_dma_ops *ops, void *opaque,
                                           const vmapple_dma_backend_options *opts,
                                           vmapple_dma_backend **out);

/**
 * Create the identity backend: bus address = guest physical address, bus
 * length = length. Registers nothing anywhere; only counts.
 * @param opts NULL: no limits.
 * @return 0; -EINVAL for a NULL @p out or bad options; -ENOMEM.
 */
VMAPPLE_API int vmapple_dma_backend_create_identity(const vmapple_dma_backend_options *opts,
                                                    vmapple_dma_backend **out);

/**
 * Create a simulated DART. It allocates bus addresses in 16 KiB pages from
 * its window, keeps the guest's offset within a 16 KiB page (as a real DART
 * does), and starts every mapping on an odd page, so no bus address it
 * hands out is aligned to more than 16 KiB, whatever the guest's buffer
 * alignment: guests that assume more are caught off Apple hardware.
 * Allocation is next-fit from where the last mapping ended; when no mapping
 * is live it starts over at the bottom of the window, whose pages and
 * bookkeeping are then still in the CPU's caches.
 *
 * Memory: the window holds twice max_bytes plus four pages per mapping;
 * the DART keeps 16 bytes and one bit per window page. That is address
 * space reserved at creation (about 7 MiB at the platform's limits, about
 * 200 MiB at the largest), touched only where mappings are made.
 * @param opts NULL: the platform's limits.
 * @return 0; -EINVAL for a NULL @p out or an option out of range (the last
 *         error names the option and the limit); -ENOMEM.
 */
VMAPPLE_API int vmapple_dma_backend_create_sim_dart(const vmapple_sim_dart_options *opts,
                                                    vmapple_dma_backend **out);

/** Drop the caller's reference; the backend closes with the last one. NULL is ignored. */
VMAPPLE_API void vmapple_dma_backend_release(vmapple_dma_backend *dma);

/**
 * Register [gpa, gpa + len) for DMA (what apple-dma-pci does for each MAP
 * entry; public for hosts' and bindings' tests).
 * @param host see vmapple_dma_ops.map; may be NULL.
 * @return 0 with @p bus_addr and @p bus_len set; -EINVAL for NULL arguments,
 *         len 0 or a range that wraps; -ENOSPC when the mapping would exceed
 *         max_mappings or max_bytes (the last error says which); the host
 *         callback's error otherwise.
 */
VMAPPLE_API int vmapple_dma_backend_map(vmapple_dma_backend *dma, uint64_t gpa, void *host,
                                        uint64_t len, uint32_t flags, uint64_t *bus_addr,
                                        uint64_t *bus_len);

/**
 * Unregister a range registered by vmapple_dma_backend_map(), with the same
 * values it used and returned.
 * @return 0; -EINVAL for NULL; -ENOENT when the simulated DART has no
 *         mapping at @p bus_addr, -EINVAL when its gpa or length differ (the
 *         identity backend keeps no per-mapping record, only the counts, which
 *         never go below 0; host backends answer for themselves); the host
 *         callback's error otherwise.
 */
VMAPPLE_API int vmapple_dma_backend_unmap(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len,
                                          uint64_t bus_addr, uint64_t bus_len);

/**
 * What the backend holds now, and its limits.
 * @param[in,out] occ its size field set by VMAPPLE_DMA_OCCUPANCY_INIT; the
 *                    library fills the fields that size covers.
 * @return 0; -EINVAL for NULL arguments or a size below 8.
 */
VMAPPLE_API int vmapple_dma_backend_get_occupancy(vmapple_dma_backend *dma,
                                                  vmapple_dma_occupancy *occ);

/** The detailed message of the most recent failed call on @p dma. Never NULL. */
VMAPPLE_API const char *vmapple_dma_backend_last_error(const vmapple_dma_backend *dma);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_DMA_BACKEND_H */
