/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.2, section 2.7), device side, as a unit of its
 * own: the transport (lib/virtio-pci.c) configures one per queue, devices pop
 * descriptor chains from it and push used elements back.
 *
 * Everything in guest memory is hostile. A chain that breaks the rules of the
 * ring (an index out of range, a loop, more descriptors than the queue has, a
 * nested or malformed indirect table, a device-readable descriptor after a
 * device-writable one, a range that wraps the address space) or a ring that
 * cannot be read or written makes the queue broken: vm_vq_pop() returns
 * -EIO, logs a guest error, and the device is expected to set
 * DEVICE_NEEDS_RESET and leave the queue alone until the driver resets it.
 * Whether a buffer is guest RAM is not checked here: the device finds that out
 * when it touches the buffer and reports it in the request's status.
 *
 * Guest memory: between vm_vq_begin() and vm_vq_end() the rings are mapped
 * through the host's mem_map when it offers it (zero-copy); otherwise, and
 * outside that bracket, every ring access is a small bounded copy through
 * mem_read/mem_write. Not thread-safe: one thread (the one calling into the
 * device) drives a queue.
 */
#ifndef VMAPPLE_VIRTQUEUE_H
#define VMAPPLE_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

/* The largest split queue the spec allows. */
#define VM_VQ_MAX_SIZE 32768u

/* Feature bits of the ring and of virtio 1.x, whatever the transport. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u

/* Ring flags. */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY     1u

/* Sizes in guest memory. */
#define VIRTQ_DESC_SIZE      16u
#define VIRTQ_USED_ELEM_SIZE 8u

/* One buffer of a chain: readable (device reads it) or writable. */
struct vm_vq_seg {
    uint64_t addr;
    uint32_t len;
    bool write;
};

/*
 * A popped descriptor chain. The caller supplies `segs` with room for `cap`
 * entries (a chain never has more than the queue size of non-empty buffers, so
 * cap >= queue size always suffices). Readable buffers come first (nr_out of
 * them), then writable ones. Empty descriptors are dropped.
 */
struct vm_vq_chain {
    struct vm_vq_seg *segs;
    uint32_t cap;
    uint32_t nr_segs;
    uint32_t nr_out;
    uint16_t head;
    uint64_t out_len; /* bytes in readable buffers */
    uint64_t in_len;  /* bytes in writable buffers */
};

struct vm_vq {
    vmapple_device *dev;
    bool ready;     /* set up and enabled */
    bool broken;    /* a rule was broken; nothing more is done until reset */
    bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
    bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
    uint16_t size;
    uint64_t desc_gpa, avail_gpa, used_gpa;

    uint16_t last_avail;     /* next available-ring slot to consume */
    uint16_t shadow_avail;   /* the avail idx as last read: entries below it are published */
    uint16_t used_idx;       /* our used idx, published by vm_vq_publish() */
    uint16_t published_used; /* the used idx the guest can see */
    uint16_t signalled_used; /* used idx when we last decided about an interrupt */
    bool signalled_valid;    /* signalled_used means something */

    /* Ring mappings, valid between vm_vq_begin() and vm_vq_end(). */
    unsigned map_depth;
    uint8_t *desc_map, *avail_map, *used_map;
};

/* Bytes of each ring part for a queue of `size` entries (with the event fields). */
static inline uint64_t vm_vq_desc_bytes(uint16_t size)
{
    return (uint64_t)size * VIRTQ_DESC_SIZE;
}
static inline uint64_t vm_vq_avail_bytes(uint16_t size)
{
    return 6 + 2 * (uint64_t)size;
}
static inline uint64_t vm_vq_used_bytes(uint16_t size)
{
    return 6 + (uint64_t)size * VIRTQ_USED_ELEM_SIZE;
}

VM_HIDDEN void vm_vq_init(struct vm_vq *vq, vmapple_device *dev);

/*
 * Check a ring layout: size a power of two <= VM_VQ_MAX_SIZE, the three parts
 * aligned (16, 2, 4) and not wrapping the address space. Returns 0 or -EINVAL
 * and, for -EINVAL, a reason in `why` (static string).
 */
VM_HIDDEN int vm_vq_check_layout(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
                                 const char **why);

/* Enable the queue with a checked layout; indices start at 0. */
VM_HIDDEN int vm_vq_setup(struct vm_vq *vq, uint16_t size, uint64_t desc, uint64_t avail,
                          uint64_t used);
VM_HIDDEN void vm_vq_set_features(struct vm_vq *vq, bool indirect, bool event_idx);
/* Forget everything (a device reset); drops ring mappings. */
VM_HIDDEN void vm_vq_reset(struct vm_vq *vq);
/*
 * Resume at available-ring slot `v` (state load, vhost-user SET_VRING_BASE):
 * the next look at the guest's idx counts from there.
 */
static inline void vm_vq_set_last_avail(struct vm_vq *vq, uint16_t v)
{
    vq->last_avail = vq->shadow_avail = v;
}

/* Bracket a burst of ring accesses so the rings are mapped once. Nests. */
VM_HIDDEN void vm_vq_begin(struct vm_vq *vq);
VM_HIDDEN void vm_vq_end(struct vm_vq *vq);

/*
 * How many chains the driver has made available and we have not popped:
 * >= 0, or -EIO when the queue is (or now becomes) broken, e.g. the avail idx
 * ran ahead of us by more than the queue size.
 */
VM_HIDDEN int vm_vq_pending(struct vm_vq *vq);

/*
 * Take the next available chain. Returns 1 and fills `chain`, 0 when there is
 * none, -EIO when the queue is broken (see the file comment), -ENOSPC when
 * `chain->cap` is too small (a caller bug; the chain stays available).
 */
VM_HIDDEN int vm_vq_pop(struct vm_vq *vq, struct vm_vq_chain *chain);

/*
 * Put the chain starting at `head` in the used ring with `len` bytes
 * written. Not visible to the driver until vm_vq_publish(). Returns 0 or -EIO
 * (the used ring is not writable guest memory: the queue is now broken).
 */
VM_HIDDEN int vm_vq_push(struct vm_vq *vq, uint16_t head, uint32_t len);

/*
 * Make every pushed element visible (store the used idx after the elements)
 * and decide whether the driver wants a used-buffer notification for them.
 * Returns true when the device should interrupt.
 */
VM_HIDDEN bool vm_vq_publish(struct vm_vq *vq);

/*
 * Before going idle: tell the driver (avail_event, with VIRTIO_F_EVENT_IDX)
 * that we want a notification for the next chain, then look again. Returns
 * true when chains arrived meanwhile (so the caller must keep processing);
 * false when the queue is empty or broken.
 */
VM_HIDDEN bool vm_vq_arm(struct vm_vq *vq);

#endif /* VMAPPLE_VIRTQUEUE_H */
