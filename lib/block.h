/* SPDX-License-Identifier: MIT */
/*
 * Internal block-backend interface used by bdif and virtio-blk. Offsets are
 * bytes within the volume. Every function checks the range against the
 * capacity (-ERANGE) and transfers all or fails.
 */
#ifndef VMAPPLE_BLOCK_H
#define VMAPPLE_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core.h"

/* The most iovecs one vm_blockdev_readv/writev call accepts. */
#define VM_BLOCK_MAX_IOV 1024

VM_HIDDEN void vm_blockdev_ref(vmapple_blockdev *bd);
/* Same as vmapple_blockdev_release(). */
VM_HIDDEN void vm_blockdev_unref(vmapple_blockdev *bd);

VM_HIDDEN uint64_t vm_blockdev_capacity(const vmapple_blockdev *bd);
VM_HIDDEN uint32_t vm_blockdev_features(const vmapple_blockdev *bd);
static inline bool vm_blockdev_read_only(const vmapple_blockdev *bd)
{
    return !(vm_blockdev_features(bd) & VMAPPLE_BLOCKDEV_CAN_WRITE);
}
/* True when [off, off + len) lies inside the volume. */
VM_HIDDEN bool vm_blockdev_range_ok(const vmapple_blockdev *bd, uint64_t off, uint64_t len);

VM_HIDDEN int vm_blockdev_read(vmapple_blockdev *bd, uint64_t off, void *buf, uint64_t len);
VM_HIDDEN int vm_blockdev_write(vmapple_blockdev *bd, uint64_t off, const void *buf, uint64_t len);
/* Scatter/gather, iovcnt <= VM_BLOCK_MAX_IOV. */
VM_HIDDEN int vm_blockdev_readv(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                                int iovcnt);
VM_HIDDEN int vm_blockdev_writev(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                                 int iovcnt);
/*
 * Try a transfer that must not wait for the disk: file backends use
 * RWF_NOWAIT (data already in the page cache, a write that needs no
 * allocation or throttling). Returns 0 when all of it was transferred,
 * -EAGAIN when it would have blocked, was short, or the backend cannot tell
 * (host callbacks, old kernels): redo it with vm_blockdev_readv/writev then.
 * Other negative errno values are real errors. Safe on any thread.
 */
VM_HIDDEN int vm_blockdev_readv_nowait(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                                       int iovcnt);
VM_HIDDEN int vm_blockdev_writev_nowait(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                                        int iovcnt);
VM_HIDDEN int vm_blockdev_flush(vmapple_blockdev *bd);
/* -ENOTSUP when the backend cannot. */
VM_HIDDEN int vm_blockdev_discard(vmapple_blockdev *bd, uint64_t off, uint64_t len);
VM_HIDDEN int vm_blockdev_write_zeroes(vmapple_blockdev *bd, uint64_t off, uint64_t len,
                                       bool may_unmap);

/*
 * File backends: the descriptor and the byte offset of the volume in it, for
 * callers that submit I/O themselves (io_uring). -1 for host backends.
 */
VM_HIDDEN int vm_blockdev_fd(const vmapple_blockdev *bd, uint64_t *file_offset);

#endif /* VMAPPLE_BLOCK_H */
