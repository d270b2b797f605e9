/* SPDX-License-Identifier: MIT */
/**
 * @file bus.h
 * A guest-physical address dispatcher for hosts: register device regions
 * (and the host's own handlers) at bases, then route each guest access by
 * address. Ranges are kept sorted and looked up by binary search; the last
 * range hit is tried first.
 *
 * Threading: registration and removal must not run concurrently with any
 * other call on the same bus. vmapple_bus_read() and vmapple_bus_write() may
 * run concurrently with each other (the devices behind them have their own
 * rules: one thread per device at a time); their failures are described by
 * the calling thread's vmapple_last_error(), not vmapple_bus_last_error().
 */
#ifndef LIBVMAPPLE_BUS_H
#define LIBVMAPPLE_BUS_H

#include "common.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque bus. */
typedef struct vmapple_bus vmapple_bus;

/**
 * A host-supplied handler for a range (for parts the host models itself).
 * @p offset is relative to the range's base.
 * @return 0, or a negative errno the bus passes back to its caller.
 */
typedef int (*vmapple_bus_read_fn)(void *opaque, uint64_t offset, uint32_t size, uint64_t *value);
typedef int (*vmapple_bus_write_fn)(void *opaque, uint64_t offset, uint32_t size, uint64_t value);

/**
 * What is mapped at an address (vmapple_bus_lookup()). The caller allocates
 * it and sets size with VMAPPLE_BUS_RANGE_INIT; the library fills the fields
 * that size covers.
 */
typedef struct vmapple_bus_range {
    uint32_t size;          /**< sizeof(vmapple_bus_range) as the caller knows it */
    uint32_t region;        /**< the device's region index (UINT32_MAX for handlers) */
    uint64_t base;          /**< guest-physical base of the range */
    uint64_t length;        /**< bytes */
    const char *name;       /**< region or handler name */
    vmapple_device *device; /**< the device, or NULL for a host handler */
} vmapple_bus_range;

#define VMAPPLE_BUS_RANGE_INIT VMAPPLE_SIZED_INIT(vmapple_bus_range)

/**
 * Create an empty bus.
 * @return 0; -EINVAL for NULL @p out; -ENOMEM.
 */
VMAPPLE_API int vmapple_bus_create(vmapple_bus **out);

/** Destroy a bus (not the devices on it). NULL is ignored. */
VMAPPLE_API void vmapple_bus_destroy(vmapple_bus *bus);

/**
 * The detailed message of the most recent failed call on @p bus (e.g. which
 * ranges overlap). Never NULL.
 */
VMAPPLE_API const char *vmapple_bus_last_error(const vmapple_bus *bus);

/**
 * Map region @p region of @p dev at @p base (VMAPPLE_NO_BASE: at the base the
 * vmapple map gives the region).
 * @return 0; -EINVAL for NULL arguments, a bad region, a region with no map
 *         base when @p base is VMAPPLE_NO_BASE, or a range that wraps;
 *         -EEXIST when the range overlaps one already mapped (the last error
 *         names both); -ENOMEM.
 */
VMAPPLE_API int vmapple_bus_map_region(vmapple_bus *bus, vmapple_device *dev, uint32_t region,
                                       uint64_t base);

/**
 * Map every region of @p dev that has a base in the vmapple map, at that
 * base. All or nothing: on failure the ranges this call mapped are removed
 * again (ranges of @p dev mapped by earlier calls, such as a BAR, stay).
 * @return 0, or an error of vmapple_bus_map_region().
 */
VMAPPLE_API int vmapple_bus_map_device(vmapple_bus *bus, vmapple_device *dev);

/**
 * Map a host handler over [base, base + size). Either handler may be NULL:
 * reads then return 0 and writes are dropped, both successfully.
 * @return as vmapple_bus_map_region().
 */
VMAPPLE_API int vmapple_bus_map_handler(vmapple_bus *bus, const char *name, uint64_t base,
                                        uint64_t size, vmapple_bus_read_fn read,
                                        vmapple_bus_write_fn write, void *opaque);

/**
 * Remove the range that starts at @p base (e.g. a PCI BAR the guest moves).
 * @return 0; -ENOENT when no range starts there; -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_bus_unmap(vmapple_bus *bus, uint64_t base);

/** Remove every range of @p dev. @return the number removed, or -EINVAL. */
VMAPPLE_API int vmapple_bus_unmap_device(vmapple_bus *bus, vmapple_device *dev);

/**
 * Dispatch a guest read of @p size (1, 2, 4, 8) bytes at @p addr.
 * @return 0; -ENXIO when no range covers [addr, addr + size) (the access is
 *         counted, *value is 0 and vmapple_last_error() says where); -EINVAL for
 *         NULL arguments or a bad size; otherwise what the device or handler
 *         returned.
 */
VMAPPLE_API int vmapple_bus_read(vmapple_bus *bus, uint64_t addr, uint32_t size, uint64_t *value);

/** Dispatch a guest write. @return as vmapple_bus_read(). */
VMAPPLE_API int vmapple_bus_write(vmapple_bus *bus, uint64_t addr, uint32_t size, uint64_t value);

/**
 * What is mapped at @p addr.
 * @return 0 and fills @p range; -ENXIO when nothing is; -EINVAL for NULL
 *         arguments or a range->size too small to hold the first field.
 */
VMAPPLE_API int vmapple_bus_lookup(const vmapple_bus *bus, uint64_t addr, vmapple_bus_range *range);

/** @return the number of ranges mapped, or -EINVAL. */
VMAPPLE_API int vmapple_bus_count_ranges(const vmapple_bus *bus);

/**
 * Range @p index in ascending address order.
 * @return 0; -ENOENT past the end; -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_bus_get_range(const vmapple_bus *bus, uint32_t index,
                                      vmapple_bus_range *range);

/**
 * Accesses that hit no range since the bus was created.
 * @return 0 or -EINVAL; either output may be NULL.
 */
VMAPPLE_API int vmapple_bus_get_unmapped_counts(const vmapple_bus *bus, uint64_t *reads,
                                                uint64_t *writes);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_BUS_H */
