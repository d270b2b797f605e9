/* SPDX-License-Identifier: MIT */
/*
 * The request engine of Apple's virtio-blk variant, independent of any
 * transport: one struct vm_blkq serves one split virtqueue (lib/virtqueue.h)
 * of a virtio-blk device. The virtio-pci function (virtio-blk.c) runs one on
 * its only queue; the vhost-user back end (vhost-user-blk.c) runs one per
 * queue, each on its own thread.
 *
 * The transport owns the virtqueue and tells the engine through
 * struct vm_blkq_ops whether the driver lets the device work, which features
 * it accepted, how to send a used-buffer notification and how to report a
 * driver that broke the rules (DEVICE_NEEDS_RESET).
 *
 * Threading: one engine is driven by one thread at a time (the one that
 * calls vm_blkq_notify/process/quiesce); its guest-memory accesses and log
 * lines go through the vmapple_device it was created with. Worker threads
 * only touch the volume. Different engines sharing one volume may run on
 * different threads (the volume is thread-safe, see blockdev.h).
 */
#ifndef VMAPPLE_VIRTIO_BLK_CORE_H
#define VMAPPLE_VIRTIO_BLK_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "virtqueue.h"
#include "libvmapple/virtio-blk.h"

/* Device feature bits (virtio 1.2, 5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/*
 * Device configuration (struct virtio_blk_config) with the Apple type at
 * offset 60: 96 bytes.
 */
#define VM_BLK_CONFIG_LEN 96

/* Queue sizes the engine accepts (and the PCI function offers). */
#define VM_BLK_MIN_QUEUE_SIZE 8u
#define VM_BLK_MAX_QUEUE_SIZE 1024u

/*
 * Validated options shared by every queue of a device. Immutable after
 * vm_blk_params_init(); the engines only read it.
 */
struct vm_blk_params {
    vmapple_virtio_blk_options opts; /* defaults filled in; serial is NULL */
    vmapple_blockdev *bd;            /* not referenced here: the device holds it */
    char serial[VMAPPLE_VIRTIO_BLK_SERIAL_MAX];
    bool read_only;
    uint64_t capacity;
    uint64_t max_request_bytes; /* seg_max * size_max */
};

/*
 * Check every option of `o` (a copy the caller made with vm_copy_sized),
 * fill in the defaults and derive the rest into `p`. Errors name the option
 * and its limits, prefixed with `who` ("virtio-blk", "vhost-user-blk");
 * -EINVAL.
 */
VM_HIDDEN int vm_blk_params_init(struct vm_blk_params *p, const vmapple_virtio_blk_options *o,
                                 const char *who);

/* The device features the engine implements for these parameters. */
VM_HIDDEN uint64_t vm_blk_device_features(const struct vm_blk_params *p);

/* The 96-byte device configuration with `num_queues` in num_queues. */
VM_HIDDEN void vm_blk_fill_config(const struct vm_blk_params *p, uint16_t num_queues,
                                  uint8_t config[VM_BLK_CONFIG_LEN]);

struct vm_blkq_ops {
    /* The driver lets the device use its queues (e.g. DRIVER_OK, not NEEDS_RESET). */
    bool (*live)(void *opaque);
    /* Did the driver accept feature `bit`? */
    bool (*has_feature)(void *opaque, unsigned bit);
    /* A used-buffer notification is due. */
    void (*notify)(void *opaque);
    /* The driver broke the rules of the queue: DEVICE_NEEDS_RESET. */
    void (*needs_reset)(void *opaque);
};

struct vm_blkq;

/*
 * Create the engine of one queue. `dev` carries the host ops for guest
 * memory and logs (and the asynchronous notification callback); `vq` is the
 * transport's queue, which it sets up and resets itself. In asynchronous
 * mode the engine starts its worker threads and, when chosen, its io_uring.
 * Returns 0 or a negative errno with the thread's last error set.
 */
VM_HIDDEN int vm_blkq_create(vmapple_device *dev, const struct vm_blk_params *p, struct vm_vq *vq,
                             const struct vm_blkq_ops *ops, void *opaque, struct vm_blkq **out);
/* Waits for the I/O in flight and drops it, then frees. NULL is ignored. */
VM_HIDDEN void vm_blkq_destroy(struct vm_blkq *q);

/* The driver notified the queue: take, parse and start what it made available. */
VM_HIDDEN void vm_blkq_notify(struct vm_blkq *q);

/* Asynchronous mode: the descriptor that becomes readable with completions; -1 otherwise. */
VM_HIDDEN int vm_blkq_poll_fd(struct vm_blkq *q);

/* Deliver finished requests (used ring, notification); never blocks. Returns the count. */
VM_HIDDEN int vm_blkq_process(struct vm_blkq *q);

/*
 * Wait for every request in flight. `keep`: deliver them (and what waited
 * behind them) to the guest; otherwise drop them all without a single write
 * to guest memory (a reset).
 */
VM_HIDDEN void vm_blkq_quiesce(struct vm_blkq *q, bool keep);

/* Counters; in_flight is the number of requests taken and not yet completed. */
VM_HIDDEN void vm_blkq_get_stats(const struct vm_blkq *q, vmapple_virtio_blk_stats *s);
/* Restore the request counter (a loaded state). */
VM_HIDDEN void vm_blkq_set_requests(struct vm_blkq *q, uint64_t requests);

#endif /* VMAPPLE_VIRTIO_BLK_CORE_H */
