/* SPDX-License-Identifier: MIT */
/**
 * @file vhost-user-blk.h
 * Apple's virtio-blk variant as a vhost-user back end, for VMMs that keep
 * devices in another process (QEMU's vhost-user-blk-pci, cloud-hypervisor,
 * crosvm, Firecracker, ...).
 *
 * The back end speaks the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst) on a connected Unix socket: the front end (the
 * VMM) negotiates features and protocol features (MQ, REPLY_ACK, CONFIG,
 * RESET_DEVICE), shares guest memory as file descriptors (SET_MEM_TABLE),
 * sets up each vring (size, addresses, base, kick/call/err eventfds, enable)
 * and reads the device configuration with GET_CONFIG: the variant's 96-byte
 * virtio_blk_config with the Apple type at offset 60. Requests are processed
 * by the same engine as the PCI device (virtio-blk.h): IN, OUT, FLUSH,
 * GET_ID, DISCARD and WRITE_ZEROES when the volume supports them, and
 * APPLE_BARRIER (per queue: it orders the requests of its own queue).
 *
 * Each started vring is served by its own thread with its own I/O engine
 * (io_uring for file volumes when available, otherwise worker threads), so
 * queues never wait for each other. Guest memory is reached through the
 * shared mappings (zero-copy).
 *
 * The front end is not trusted: a malformed message (a wrong size, an index
 * out of range, a missing descriptor, a memory region that does not fit its
 * file, a ring outside guest memory, a feature or request that was not
 * offered) closes the connection with one log line naming the message and
 * the field. When the front end goes away (or the connection is closed),
 * the I/O that is running finishes (acknowledged writes are always in the
 * volume), its completions are dropped, every mapping and descriptor is
 * released, and the back end is ready for the next connection.
 *
 * Not offered: dirty logging (live migration), postcopy, inflight I/O
 * tracking (reconnection of a restarted back end), packed rings, IOMMU.
 *
 * Threading: vmapple_vhost_user_blk_serve() blocks its calling thread for
 * one connection; the log callback is also called from ring threads (it must
 * be thread-safe). vmapple_vhost_user_blk_stop() may be called from any
 * thread or a signal handler.
 */
#ifndef LIBVMAPPLE_VHOST_USER_BLK_H
#define LIBVMAPPLE_VHOST_USER_BLK_H

#include "common.h"
#include "host.h"
#include "blockdev.h"
#include "virtio-blk.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque vhost-user-blk back end. */
typedef struct vmapple_vhost_user_blk vmapple_vhost_user_blk;

/** The most queues a back end serves. */
#define VMAPPLE_VHOST_USER_BLK_MAX_QUEUES 16u

/**
 * Options of vmapple_vhost_user_blk_create(). Zero means "the default" for
 * every numeric field. Fields are only ever appended.
 */
typedef struct vmapple_vhost_user_blk_options {
    uint32_t size; /**< set by VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT */
    /** Required: VMAPPLE_VIRTIO_BLK_VARIANT_ROOT or _AUX (config offset 60). */
    uint32_t variant;
    /** Required: the volume; the back end takes its own reference. */
    vmapple_blockdev *blockdev;
    /**
     * VMAPPLE_VIRTIO_BLK_READ_ONLY, _NO_DISCARD, _NO_WRITE_ZEROES,
     * _NO_INDIRECT, _NO_EVENT_IDX (virtio-blk.h).
     */
    uint32_t flags;
    uint32_t barrier_mode; /**< vmapple_virtio_blk_barrier_mode; default FLUSH */
    /** Queues offered (GET_QUEUE_NUM, VIRTIO_BLK_F_MQ): 1..16; default 1. */
    uint32_t num_queues;
    /**
     * The largest vring size the front end may set: a power of two, 8..1024;
     * default 1024.
     */
    uint32_t max_queue_size;
    uint32_t io_engine; /**< vmapple_virtio_blk_io_engine; default AUTO */
    /** Worker threads per queue, 1..64; default 4. */
    uint32_t io_threads;
    /**
     * seg_max advertised: 1..max_queue_size - 2; default 126, which fits
     * QEMU's default vring of 128 entries (a request must never need more
     * descriptors than the vring has).
     */
    uint32_t seg_max;
    /** size_max advertised, 4096..4 MiB; default 64 KiB. */
    uint32_t size_max;
    /** blk_size advertised: 512, 1024, 2048 or 4096; default 512. */
    uint32_t blk_size;
    /** GET_ID's serial: printable ASCII, at most 20 characters; NULL: zeros. */
    const char *serial;
    /**
     * Bounce-buffer bytes in flight per queue (see virtio-blk.h): at least
     * seg_max * size_max, at most 1 GiB; default 16 MiB or seg_max *
     * size_max, whichever is larger.
     */
    uint64_t max_bounce_bytes;
    /**
     * Polling before sleep, 0..10000 us; default 0 (see virtio-blk.h): with
     * io_uring, one polling kernel thread per queue.
     */
    uint32_t worker_poll_us;
} vmapple_vhost_user_blk_options;

#define VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_vhost_user_blk_options)

/**
 * Create a back end (it serves nobody until vmapple_vhost_user_blk_serve()).
 *
 * @param ops host callbacks; only log is used (NULL: no log lines).
 * @param opts required (variant and blockdev have no defaults).
 * @return 0 and the back end in @p *out; -EINVAL for NULL @p out or
 *         @p opts or an option out of range (the last error names it);
 *         -ENOTSUP when io_engine asks for io_uring and it is unavailable;
 *         -ENOMEM; or the errno of creating threads or eventfds.
 */
VMAPPLE_API int vmapple_vhost_user_blk_create(const vmapple_host_ops *ops, void *opaque,
                                              const vmapple_vhost_user_blk_options *opts,
                                              vmapple_vhost_user_blk **out);

/** Stop serving, release everything (the volume reference too). NULL is ignored. */
VMAPPLE_API void vmapple_vhost_user_blk_destroy(vmapple_vhost_user_blk *be);

/**
 * Serve one front end on the connected Unix stream socket @p fd until it
 * disconnects. The back end takes @p fd over and closes it before
 * returning. Blocks the calling thread.
 *
 * @return 0 when the front end closed the connection; -EPROTO when the back
 *         end closed it because of a malformed message (the last error says
 *         which); -ECANCELED after vmapple_vhost_user_blk_stop(); -EBUSY
 *         when another call is serving; -EINVAL for a NULL back end or a
 *         negative @p fd.
 */
VMAPPLE_API int vmapple_vhost_user_blk_serve(vmapple_vhost_user_blk *be, int fd);

/**
 * Make the running and every later vmapple_vhost_user_blk_serve() return
 * -ECANCELED (after finishing the I/O in flight). Async-signal-safe.
 * @return 0 or -EINVAL for NULL.
 */
VMAPPLE_API int vmapple_vhost_user_blk_stop(vmapple_vhost_user_blk *be);

/**
 * The counters of every queue, summed (see vmapple_virtio_blk_stats); they
 * survive reconnections. Fields beyond @p stats->size are not written.
 * @return 0; -EINVAL for NULL arguments or a size below 8.
 */
VMAPPLE_API int vmapple_vhost_user_blk_get_stats(vmapple_vhost_user_blk *be,
                                                 vmapple_virtio_blk_stats *stats);

/**
 * The detailed message of the most recent failure on @p be, e.g. why the
 * last connection was closed. Never NULL; "" when nothing has failed.
 */
VMAPPLE_API const char *vmapple_vhost_user_blk_last_error(const vmapple_vhost_user_blk *be);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_VHOST_USER_BLK_H */
