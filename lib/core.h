/* SPDX-License-Identifier: MIT */
/*
 * Internal core of libvmapple: the device object every device embeds, the
 * class (vtable) each device file defines, and the helpers devices use to
 * reach the host (errors, logs, DMA, interrupts). Nothing here is public.
 */
#ifndef VMAPPLE_CORE_H
#define VMAPPLE_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvmapple/libvmapple.h"
#include "util.h"

#define VM_HIDDEN __attribute__((visibility("hidden")))

#define VM_ERROR_LEN     256
#define VM_NAME_LEN      32
#define VM_MAX_IRQ_LINES 64

struct vm_state_writer;
struct vm_state_reader;

/*
 * What a device file defines once per device type. The generic layer has
 * already validated region index, size (1/2/4/8) and bounds when read or
 * write is called.
 */
struct vmapple_device_class {
    uint32_t type;          /* vmapple_device_type */
    const char *name;       /* "aes", ... */
    uint32_t state_version; /* version of the device's own state payload */

    int (*read)(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                uint64_t *value);
    int (*write)(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                 uint64_t value);
    /* Back to power-on state. The core deasserts lines afterwards if needed. */
    void (*reset)(vmapple_device *dev);
    /* Serialise the device's state. */
    int (*save)(vmapple_device *dev, struct vm_state_writer *w);
    /*
     * Parse and validate the payload written by save (of state version
     * `version` <= state_version); change nothing unless all of it is valid.
     */
    int (*load)(vmapple_device *dev, struct vm_state_reader *r, uint32_t version);
    /* Release device resources and free the object. */
    void (*destroy)(vmapple_device *dev);

    /* Optional hooks. */
    int (*region_memory)(vmapple_device *dev, uint32_t region, void **host, uint64_t *size);
    int (*poll_fd)(vmapple_device *dev);
    int (*process)(vmapple_device *dev);
    int (*config_read)(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t *value);
    int (*config_write)(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t value);
};

/* Token bucket for guest-triggerable log lines. */
struct vm_ratelimit {
    bool primed;
    uint64_t last_refill_ns;
    uint32_t tokens;
    uint64_t suppressed;
};

/* Burst and sustained rate of guest-error log lines per device. */
#define VM_RATELIMIT_BURST       10u
#define VM_RATELIMIT_INTERVAL_NS 1000000000ull

struct vmapple_device {
    const struct vmapple_device_class *cls;
    vmapple_host_ops ops; /* the host's ops, fields it did not know zeroed */
    void *opaque;

    const vmapple_region_info *regions;
    uint32_t nr_regions;
    const vmapple_irq_info *irqs;
    uint32_t nr_irqs;

    uint64_t irq_levels; /* bit n: current level of line n */
    bool dma_enabled;    /* false while a PCI function's bus mastering is off */

    struct vm_ratelimit ratelimit;
    char name[VM_NAME_LEN];
    char last_error[VM_ERROR_LEN];
};

/*
 * Initialise the embedded core of a new device: copies the host ops
 * (accepting older, smaller structs), sets the name and the region and irq
 * tables. Returns 0 or -EINVAL (with the thread's last error set).
 */
VM_HIDDEN int vm_device_init(vmapple_device *dev, const struct vmapple_device_class *cls,
                             const vmapple_host_ops *ops, void *opaque,
                             const vmapple_region_info *regions, uint32_t nr_regions,
                             const vmapple_irq_info *irqs, uint32_t nr_irqs);

/*
 * Copy a caller's versioned struct (leading uint32_t size) over `dst`, which
 * holds the defaults and is `known` bytes long. Fields beyond the caller's
 * size keep their defaults; bytes beyond `known` must be zero. `what` names
 * the struct in the error ("aes options"). NULL src keeps the defaults.
 */
VM_HIDDEN int vm_copy_sized(void *dst, size_t known, const void *src, const char *what);
/*
 * Copy a filled-in versioned struct `full` (`full_size` bytes, the library's
 * version) out to a caller's `out`, whose leading size field (at least 4,
 * checked by the caller) says how much room it has: only that much is
 * written, and the caller's size field is left as it is.
 */
VM_HIDDEN void vm_fill_sized(void *out, const void *full, size_t full_size);
/*
 * Copy a callbacks struct of any size that starts with its size field into
 * `dst` (`known` bytes, size already set): unknown newer callbacks are
 * ignored. -EINVAL, nothing copied, when *given (the caller's size) is below 4.
 */
VM_HIDDEN int vm_copy_ops(void *dst, size_t known, const void *src, uint32_t *given);
/* vm_copy_ops for host ops, with the error message; NULL: none. */
VM_HIDDEN int vm_copy_host_ops(vmapple_host_ops *dst, const vmapple_host_ops *src,
                               const char *devname);

/*
 * True when the size field of a caller's versioned struct `src` ends inside
 * the field at [off, off + len). vm_copy_sized() would then copy part of
 * that field; for a pointer that is a wild pointer, so devices refuse such
 * a size (-EINVAL) for each pointer field. NULL src: false.
 */
static inline bool vm_sized_splits_field(const void *src, size_t off, size_t len)
{
    uint32_t given;

    if (!src) {
        return false;
    }
    memcpy(&given, src, sizeof(given));
    return given > off && given < off + len;
}

/* Require a host callback; the error names it and the device. */
VM_HIDDEN int vm_require_op(const char *devname, const void *fn, const char *opname);

/*
 * Record an error on `dev` (may be NULL: only the thread's last error) and
 * return `err`, so callers can `return vm_error(dev, -EINVAL, "...")`.
 * The message is prefixed with the device name.
 */
VM_HIDDEN int vm_error(vmapple_device *dev, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
VM_HIDDEN int vm_error_named(const char *prefix, char *slot, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
VM_HIDDEN void vm_set_thread_error(const char *msg);

/* Log through the host (no rate limit: host-side events). */
VM_HIDDEN void vm_log(vmapple_device *dev, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Log a guest-triggerable event, rate-limited per device. */
VM_HIDDEN void vm_log_ratelimited(vmapple_device *dev, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define vm_guest_error(dev, ...) vm_log_ratelimited((dev), VMAPPLE_LOG_GUEST_ERROR, __VA_ARGS__)

/* Monotonic clock used by the rate limiter; tests may replace it. */
VM_HIDDEN uint64_t vm_clock_ns(void);
extern VM_HIDDEN uint64_t (*vm_clock_hook)(void);

/*
 * Guest memory. All return 0 or a negative errno: -EFAULT when the range is
 * not guest RAM or wraps, -EPERM while DMA is disabled (PCI bus master off).
 */
VM_HIDDEN int vm_dma_read(vmapple_device *dev, uint64_t gpa, void *buf, uint64_t len);
VM_HIDDEN int vm_dma_write(vmapple_device *dev, uint64_t gpa, const void *buf, uint64_t len);

/*
 * Map up to `len` bytes at `gpa` through the host's mem_map. Returns the
 * host pointer and sets *mapped (<= len), or NULL when the host has no
 * mem_map, the range is not mappable, or DMA is off; callers then fall back
 * to vm_dma_read/vm_dma_write. Release with vm_dma_unmap.
 */
VM_HIDDEN void *vm_dma_map(vmapple_device *dev, uint64_t gpa, uint64_t len, bool writable,
                           uint64_t *mapped);
VM_HIDDEN void vm_dma_unmap(vmapple_device *dev, void *host, uint64_t len, bool written);

/* True when [gpa, gpa + len) does not wrap around the 64-bit space. */
static inline bool vm_range_ok(uint64_t gpa, uint64_t len)
{
    return len == 0 || gpa <= UINT64_MAX - (len - 1);
}

/* Set interrupt line `line` (called only on change). */
VM_HIDDEN void vm_irq_set(vmapple_device *dev, uint32_t line, bool level);
static inline bool vm_irq_level(const vmapple_device *dev, uint32_t line)
{
    return line < VM_MAX_IRQ_LINES && (dev->irq_levels >> line) & 1;
}

/* Internal, non-PLT versions of the public entry points (used by the bus). */
VM_HIDDEN int vm_device_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                             uint64_t *value);
VM_HIDDEN int vm_device_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                              uint64_t value);

#endif /* VMAPPLE_CORE_H */
