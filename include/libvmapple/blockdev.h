/* SPDX-License-Identifier: MIT */
/**
 * @file blockdev.h
 * Block backends: the volumes behind bdif and virtio-blk.
 *
 * A vmapple_blockdev is either a file (or host block device) opened by the
 * library, or a set of host callbacks. It is reference counted: a device
 * given a blockdev takes its own reference, so the host may release its
 * reference right after creating the devices; the volume closes when the
 * last device using it is destroyed. One blockdev may back several devices
 * (the root image behind both bdif and virtio-blk).
 *
 * Durability: a write that returns 0 is in the backend (the file's page
 * cache, for files); a flush that returns 0 has made every earlier
 * completed write durable (fdatasync, for files).
 *
 * Threading: the file backend may be used from any number of threads at
 * once. Callbacks of a host backend may be called from library worker
 * threads (asynchronous devices), one call at a time unless the host sets
 * VMAPPLE_BLOCKDEV_THREAD_SAFE.
 */
#ifndef LIBVMAPPLE_BLOCKDEV_H
#define LIBVMAPPLE_BLOCKDEV_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque, reference-counted block backend. */
typedef struct vmapple_blockdev vmapple_blockdev;

/** Flags of vmapple_blockdev_file_options and vmapple_blockdev_options. */
enum {
    /** Open (or treat) the volume read-only: no write ever reaches it. */
    VMAPPLE_BLOCKDEV_READ_ONLY = 1u << 0,
    /**
     * Files: do not take an advisory lock. By default a read-write open takes
     * an exclusive lock and a read-only open a shared one (open file
     * description locks), so two VMs cannot corrupt one image.
     */
    VMAPPLE_BLOCKDEV_NO_LOCK = 1u << 1,
    /**
     * Files: bypass the host page cache (O_DIRECT), like QEMU's cache=none:
     * guest data is not cached twice and reaches the disk without a copy.
     * Writes still become durable only with a flush. The file's direct-I/O
     * alignment is measured at open: buffers in memory that do not meet it
     * go through an aligned bounce buffer; a transfer whose offset or length
     * is not aligned fails with -EINVAL (virtio-blk requests are whole
     * sectors, so there only where the alignment is above 512 bytes, and the
     * device then advertises that block size to the driver).
     * vmapple_blockdev_open_file() fails with -EINVAL when the file
     * system cannot do direct I/O (tmpfs) or the option offset is not
     * aligned.
     */
    VMAPPLE_BLOCKDEV_DIRECT = 1u << 2,
    /** Host backends: the callbacks may be called from several threads at once. */
    VMAPPLE_BLOCKDEV_THREAD_SAFE = 1u << 3
};

/** What a backend can do (vmapple_blockdev_get_features()). */
enum {
    VMAPPLE_BLOCKDEV_CAN_WRITE = 1u << 0,       /**< not read-only */
    VMAPPLE_BLOCKDEV_CAN_FLUSH = 1u << 1,       /**< flush does something */
    VMAPPLE_BLOCKDEV_CAN_DISCARD = 1u << 2,     /**< discard is supported */
    VMAPPLE_BLOCKDEV_CAN_WRITE_ZEROES = 1u << 3 /**< write_zeroes is supported */
};

/** Options of vmapple_blockdev_open_file(). */
typedef struct vmapple_blockdev_file_options {
    uint32_t size;  /**< sizeof, set by VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT */
    uint32_t flags; /**< VMAPPLE_BLOCKDEV_READ_ONLY | _NO_LOCK | _DIRECT */
    /**
     * Where the volume starts in the file, in bytes (e.g. 0x4000 to skip the
     * VZ header of an untrimmed aux image). A multiple of 512. Default 0.
     */
    uint64_t offset;
    /**
     * Bytes of the volume, a multiple of 512; 0 (default) = from offset to
     * the end of the file, which must then be a multiple of 512 long.
     */
    uint64_t length;
} vmapple_blockdev_file_options;

#define VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_blockdev_file_options)

/**
 * Open a file or block device as a volume.
 * @param opts NULL for defaults (read-write, locked, whole file).
 * @return 0; -EINVAL for NULL arguments or options that do not fit the file
 *         (the last error names the option and the file's size); -EBUSY when
 *         another process holds a conflicting lock; the errno of open(2) or
 *         fstat(2) otherwise (-ENOENT, -EACCES, -EROFS, ...).
 */
VMAPPLE_API int vmapple_blockdev_open_file(const char *path,
                                           const vmapple_blockdev_file_options *opts,
                                           vmapple_blockdev **out);

/**
 * Callbacks of a host-supplied backend. Offsets and lengths are in bytes and
 * always lie inside the volume. Every callback returns 0 or a negative errno
 * and transfers everything or fails (no short transfers).
 */
typedef struct vmapple_blockdev_ops {
    uint32_t size; /**< sizeof, set by VMAPPLE_BLOCKDEV_OPS_INIT */
    /** Required. */
    int (*read)(void *opaque, uint64_t offset, void *buf, uint64_t len);
    /** NULL: the volume is read-only. */
    int (*write)(void *opaque, uint64_t offset, const void *buf, uint64_t len);
    /** NULL: writes are durable when write returns. */
    int (*flush)(void *opaque);
    /** Optional: the range's contents become unspecified. */
    int (*discard)(void *opaque, uint64_t offset, uint64_t len);
    /** Optional: the range reads as zeros; may_unmap allows deallocation. */
    int (*write_zeroes)(void *opaque, uint64_t offset, uint64_t len, int may_unmap);
    /** Optional: called once when the last reference goes away. */
    void (*close)(void *opaque);
} vmapple_blockdev_ops;

#define VMAPPLE_BLOCKDEV_OPS_INIT VMAPPLE_SIZED_INIT(vmapple_blockdev_ops)

/** Options of vmapple_blockdev_create(). */
typedef struct vmapple_blockdev_options {
    uint32_t size;     /**< sizeof, set by VMAPPLE_BLOCKDEV_OPTIONS_INIT */
    uint32_t flags;    /**< VMAPPLE_BLOCKDEV_READ_ONLY | _THREAD_SAFE */
    uint64_t capacity; /**< bytes of the volume; a multiple of 512 */
} vmapple_blockdev_options;

#define VMAPPLE_BLOCKDEV_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_blockdev_options)

/**
 * Create a volume served by host callbacks.
 * @return 0; -EINVAL for NULL arguments, a missing read callback or a
 *         capacity that is not a multiple of 512; -ENOMEM.
 */
VMAPPLE_API int vmapple_blockdev_create(const vmapple_blockdev_ops *ops, void *opaque,
                                        const vmapple_blockdev_options *opts,
                                        vmapple_blockdev **out);

/**
 * Drop the caller's reference. The volume closes (close callback, file
 * descriptor) when no device holds one either. NULL is ignored.
 */
VMAPPLE_API void vmapple_blockdev_release(vmapple_blockdev *bd);

/** @return 0 and the volume's size in bytes, or -EINVAL. */
VMAPPLE_API int vmapple_blockdev_get_capacity(const vmapple_blockdev *bd, uint64_t *bytes);

/** @return VMAPPLE_BLOCKDEV_CAN_* flags (>= 0), or -EINVAL. */
VMAPPLE_API int vmapple_blockdev_get_features(const vmapple_blockdev *bd);

/**
 * Read @p len bytes at byte @p offset of the volume.
 * @return 0; -ERANGE when [offset, offset + len) leaves the volume; -EIO or
 *         the backend's error otherwise; -EINVAL for NULL arguments.
 */
VMAPPLE_API int vmapple_blockdev_read(vmapple_blockdev *bd, uint64_t offset, void *buf,
                                      uint64_t len);

/**
 * Write @p len bytes at byte @p offset.
 * @return 0; -EROFS on a read-only volume; otherwise as vmapple_blockdev_read().
 */
VMAPPLE_API int vmapple_blockdev_write(vmapple_blockdev *bd, uint64_t offset, const void *buf,
                                       uint64_t len);

/** Make every completed write durable. @return 0 or a negative errno. */
VMAPPLE_API int vmapple_blockdev_flush(vmapple_blockdev *bd);

/** The detailed message of the most recent failed call on @p bd. Never NULL. */
VMAPPLE_API const char *vmapple_blockdev_last_error(const vmapple_blockdev *bd);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_BLOCKDEV_H */
