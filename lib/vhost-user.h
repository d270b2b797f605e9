/* SPDX-License-Identifier: MIT */
/*
 * The back-end side of the vhost-user protocol (QEMU's
 * docs/interop/vhost-user.rst), independent of the device it serves: message
 * framing with file descriptors, feature and protocol-feature negotiation,
 * the memory table (shared-memory regions mapped into this process, guest
 * addresses and front-end user addresses translated through it), vrings
 * (size, addresses, base, kick/call/err descriptors, enable), the device
 * configuration (GET_CONFIG/SET_CONFIG), reset, and one thread per started
 * ring.
 *
 * A device (vhost-user-blk.c) supplies its feature bits, its configuration
 * bytes and, per ring, what to do on a kick, on its completion descriptor
 * and when the ring stops; it gets for each ring a struct vm_vq (set up by
 * this layer from the front end's messages) and a vmapple_device whose host
 * ops reach guest memory through the memory table, so the library's
 * virtqueue and device code run unchanged.
 *
 * Everything the front end sends is hostile: a message of the wrong size, an
 * index out of range, a missing or extra descriptor, a region that does not
 * fit its file, overlapping regions, a ring outside guest memory, a request
 * or feature that was not offered closes the connection with one log line
 * naming the message and the field; nothing the front end sends can crash or
 * hang the back end.
 *
 * Threading: the connection (vm_vhu_attach/step/serve) is driven by one
 * thread; started rings run on their own threads (or, for tests and the
 * fuzzer, inline through vm_vhu_run_inline()). A ring's thread is stopped
 * (joined) before any message changes what it uses, so the ring threads need
 * no locks against the control thread.
 */
#ifndef VMAPPLE_VHOST_USER_H
#define VMAPPLE_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "virtqueue.h"

/* Messages (front end to back end). */
enum {
    VHU_GET_FEATURES = 1,
    VHU_SET_FEATURES = 2,
    VHU_SET_OWNER = 3,
    VHU_RESET_OWNER = 4,
    VHU_SET_MEM_TABLE = 5,
    VHU_SET_LOG_BASE = 6,
    VHU_SET_LOG_FD = 7,
    VHU_SET_VRING_NUM = 8,
    VHU_SET_VRING_ADDR = 9,
    VHU_SET_VRING_BASE = 10,
    VHU_GET_VRING_BASE = 11,
    VHU_SET_VRING_KICK = 12,
    VHU_SET_VRING_CALL = 13,
    VHU_SET_VRING_ERR = 14,
    VHU_GET_PROTOCOL_FEATURES = 15,
    VHU_SET_PROTOCOL_FEATURES = 16,
    VHU_GET_QUEUE_NUM = 17,
    VHU_SET_VRING_ENABLE = 18,
    VHU_GET_CONFIG = 24,
    VHU_SET_CONFIG = 25,
    VHU_RESET_DEVICE = 34,
    VHU_REQUEST_MAX = 41
};

/* Header flags. */
#define VHU_VERSION          0x1u
#define VHU_VERSION_MASK     0x3u
#define VHU_FLAG_REPLY       0x4u
#define VHU_FLAG_NEED_REPLY  0x8u
#define VHU_HDR_SIZE         12u
#define VHU_MAX_PAYLOAD      4096u
#define VHU_MAX_FDS          8u
#define VHU_MAX_REGIONS      8u
#define VHU_MAX_CONFIG_SIZE  256u
#define VHU_CONFIG_HDR_SIZE  12u
#define VHU_REGION_DESC_SIZE 32u

/* The feature bit that says protocol features exist (a reserved virtio bit). */
#define VHU_F_PROTOCOL_FEATURES 30

/* Protocol features. */
#define VHU_PF_MQ           0
#define VHU_PF_REPLY_ACK    3
#define VHU_PF_CONFIG       9
#define VHU_PF_RESET_DEVICE 13

/* Vring descriptor messages: the index and the "no descriptor" flag. */
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD     0x100u

/* The most rings this layer serves. */
#define VHU_MAX_RINGS 16u

struct vm_vhu;

/* What a device does with its rings; every hook gets the setup's opaque. */
struct vm_vhu_ring_ops {
    /*
     * Ring `q` has (possibly) new chains: take them (ring thread). Also
     * called once when the ring starts, and periodically for a ring the
     * front end asked to be polled.
     */
    void (*kick)(void *opaque, uint16_t q);
    /* A descriptor that becomes readable when completions wait, or -1. */
    int (*poll_fd)(void *opaque, uint16_t q);
    /* The poll descriptor became readable (ring thread). */
    void (*process)(void *opaque, uint16_t q);
    /*
     * The ring stops (its thread is about to end): wait for everything in
     * flight. `keep`: deliver it to the guest (GET_VRING_BASE, a new memory
     * table, disable); otherwise drop it without touching guest memory
     * (a reset, or the front end went away).
     */
    void (*stop)(void *opaque, uint16_t q, bool keep);
};

struct vm_vhu_setup {
    const char *name;           /* log prefix and ring device names, e.g. "vhost-user-blk" */
    uint64_t features;          /* virtio features of the device */
    uint64_t protocol_features; /* offered, a subset of what this layer implements */
    uint16_t num_queues;        /* 1..VHU_MAX_RINGS */
    uint16_t max_queue_size;    /* largest SET_VRING_NUM accepted, a power of two */
    const uint8_t *config;      /* device configuration, owned by the device */
    uint32_t config_len;        /* <= VHU_MAX_CONFIG_SIZE */
    const struct vm_vhu_ring_ops *ops;
    void *opaque;
    bool inline_rings; /* no ring threads: vm_vhu_run_inline() drives the rings */
};

/*
 * Create the protocol layer. `host` supplies the log callback (other
 * callbacks are not used: guest memory comes from the front end). Returns 0
 * or a negative errno (thread's last error set).
 */
VM_HIDDEN int vm_vhu_create(const struct vm_vhu_setup *setup, const vmapple_host_ops *host,
                            void *host_opaque, struct vm_vhu **out);
/* Detaches any connection (dropping work in flight) and frees. NULL is ignored. */
VM_HIDDEN void vm_vhu_destroy(struct vm_vhu *v);

/* The per-ring objects the device builds on (valid for the layer's lifetime). */
VM_HIDDEN vmapple_device *vm_vhu_ring_device(struct vm_vhu *v, uint16_t q);
VM_HIDDEN struct vm_vq *vm_vhu_ring_vq(struct vm_vhu *v, uint16_t q);

/* For the device's engine, on the ring's thread. */
VM_HIDDEN bool vm_vhu_ring_live(struct vm_vhu *v, uint16_t q);
VM_HIDDEN bool vm_vhu_has_feature(struct vm_vhu *v, unsigned bit);
/* Signal the ring's call descriptor (a used-buffer notification). */
VM_HIDDEN void vm_vhu_ring_notify(struct vm_vhu *v, uint16_t q);
/* The driver broke the rules of ring q: stop using it until it is set up again. */
VM_HIDDEN void vm_vhu_ring_broken(struct vm_vhu *v, uint16_t q);

/*
 * Serve one front end on the connected socket `fd` (which this takes over
 * and closes) until it disconnects, sends a malformed message or
 * vm_vhu_stop() is called. Returns 0 (the front end closed the connection),
 * -EPROTO (we closed it; the last error says why), -ECANCELED (stopped),
 * -EBUSY (already serving).
 */
VM_HIDDEN int vm_vhu_serve(struct vm_vhu *v, int fd);
/* Make the current and every later vm_vhu_serve() return -ECANCELED. Async-signal-safe. */
VM_HIDDEN void vm_vhu_stop(struct vm_vhu *v);

/* The pieces of vm_vhu_serve(), for tests and the fuzzer. */
VM_HIDDEN int vm_vhu_attach(struct vm_vhu *v, int fd);
/*
 * Read and handle one message (blocking until it has arrived). Returns 1
 * (handled), 0 (the front end disconnected cleanly), -EPROTO (malformed: the
 * connection is closed), -ECANCELED (stopped while waiting), -ENOTCONN.
 */
VM_HIDDEN int vm_vhu_step(struct vm_vhu *v);
/* Stop every ring (dropping work in flight), unmap memory, close the connection. */
VM_HIDDEN void vm_vhu_detach(struct vm_vhu *v);
/* With inline_rings: drain the kick descriptors and run the hooks of every started ring. */
VM_HIDDEN void vm_vhu_run_inline(struct vm_vhu *v);
/* The reason the last connection was closed by us ("" if none). */
VM_HIDDEN const char *vm_vhu_last_error(const struct vm_vhu *v);

#endif /* VMAPPLE_VHOST_USER_H */
