/* SPDX-License-Identifier: MIT */
/*
 * A vhost-user front end for tests, in the role QEMU plays: it talks to a
 * back end over a socket (messages with file descriptors), shares guest RAM
 * as memfds, and drives split virtqueues in that RAM as a guest driver would
 * (descriptors, available ring, kick eventfd; used ring, call eventfd), with
 * virtio-blk request helpers. Raw message helpers let tests send anything,
 * malformed included.
 *
 * Guest RAM is one memfd of `ram_size` bytes mapped here; by default it is
 * one region at guest address VFRONT_GPA and user address VFRONT_UVA (the
 * user address is only a number the back end translates through; nothing is
 * mapped there). Tests may describe other layouts with vfront_set_mem_table.
 */
#ifndef VMAPPLE_TEST_VHOST_FRONT_H
#define VMAPPLE_TEST_VHOST_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VFRONT_GPA 0x100000000ull
#define VFRONT_UVA 0x7f1200000000ull

#define VFRONT_MAX_RINGS 16
#define VFRONT_MAX_SEGS  8

/* Messages. */
enum {
    VF_GET_FEATURES = 1,
    VF_SET_FEATURES = 2,
    VF_SET_OWNER = 3,
    VF_RESET_OWNER = 4,
    VF_SET_MEM_TABLE = 5,
    VF_SET_LOG_BASE = 6,
    VF_SET_VRING_NUM = 8,
    VF_SET_VRING_ADDR = 9,
    VF_SET_VRING_BASE = 10,
    VF_GET_VRING_BASE = 11,
    VF_SET_VRING_KICK = 12,
    VF_SET_VRING_CALL = 13,
    VF_SET_VRING_ERR = 14,
    VF_GET_PROTOCOL_FEATURES = 15,
    VF_SET_PROTOCOL_FEATURES = 16,
    VF_GET_QUEUE_NUM = 17,
    VF_SET_VRING_ENABLE = 18,
    VF_GET_CONFIG = 24,
    VF_SET_CONFIG = 25,
    VF_RESET_DEVICE = 34,
};

#define VF_FLAG_VERSION    0x1u
#define VF_FLAG_REPLY      0x4u
#define VF_FLAG_NEED_REPLY 0x8u

#define VF_F_INDIRECT_DESC     (1ull << 28)
#define VF_F_EVENT_IDX         (1ull << 29)
#define VF_F_PROTOCOL_FEATURES (1ull << 30)
#define VF_F_VERSION_1         (1ull << 32)

#define VF_PF_MQ           (1ull << 0)
#define VF_PF_REPLY_ACK    (1ull << 3)
#define VF_PF_CONFIG       (1ull << 9)
#define VF_PF_RESET_DEVICE (1ull << 13)

#define VF_BLK_T_IN      0u
#define VF_BLK_T_OUT     1u
#define VF_BLK_T_FLUSH   4u
#define VF_BLK_T_GET_ID  8u
#define VF_BLK_T_BARRIER 0x10000u

struct vfront_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

struct vfront_ring {
    uint16_t size;
    uint64_t desc, avail, used; /* guest addresses */
    int kick, call, err;        /* our ends (eventfds) */
    uint16_t avail_idx, last_used, kicked_idx;
    uint16_t free_head, num_free;
    uint16_t next_free[1024];
    uint16_t chain_len[1024];
    uint64_t blk_area; /* per head: header at +0, status at +16 */
    bool set_up;
};

struct vfront {
    int sock;
    int memfd;
    uint8_t *ram;
    uint64_t ram_size;
    uint64_t heap; /* bump allocator: offset into ram */
    uint64_t features;
    uint64_t protocol;
    struct vfront_ring rings[VFRONT_MAX_RINGS];
};

/* Connect: ram is a fresh memfd (sealed against shrinking and growing). Aborts on failure. */
void vfront_init(struct vfront *f, int sock, uint64_t ram_size);
/* Close the socket and every descriptor; keeps nothing. */
void vfront_fini(struct vfront *f);

/* Guest RAM. */
uint64_t vfront_alloc(struct vfront *f, uint64_t len, uint64_t align);
void *vfront_ptr(struct vfront *f, uint64_t gpa);

/* Raw messages. Return 0 or -errno. */
int vfront_send(struct vfront *f, uint32_t request, uint32_t flags, const void *payload,
                uint32_t size, const int *fds, unsigned nfds);
/*
 * Receive one reply (waits up to timeout_ms). Returns the payload size
 * (>= 0), -ETIMEDOUT, or -ECONNRESET when the back end closed the
 * connection.
 */
int vfront_recv(struct vfront *f, uint32_t *request, uint32_t *flags, void *payload, uint32_t cap,
                int timeout_ms);
/* True when the back end closed the connection (within timeout_ms). */
bool vfront_closed(struct vfront *f, int timeout_ms);

/* Typed helpers. Return 0 (or a value) or -errno. */
int vfront_get_u64(struct vfront *f, uint32_t request, uint64_t *value);
int vfront_set_u64(struct vfront *f, uint32_t request, uint64_t value);
int vfront_vring_state(struct vfront *f, uint32_t request, uint32_t index, uint32_t num);
/* Send with NEED_REPLY set and return the u64 the back end acknowledged with. */
int vfront_acked(struct vfront *f, uint32_t request, const void *payload, uint32_t size,
                 uint64_t *ack);
int vfront_get_config(struct vfront *f, uint32_t offset, uint32_t size, void *out);
/* A round trip: every message sent before has been handled when it returns 0. */
int vfront_sync(struct vfront *f);
/* The whole memory as one region (VFRONT_GPA, VFRONT_UVA). */
int vfront_set_mem_table(struct vfront *f);

/*
 * QEMU's opening: GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER,
 * SET_FEATURES (offered & want, with PROTOCOL_FEATURES), memory table.
 * Returns 0 or -errno.
 */
int vfront_handshake(struct vfront *f, uint64_t want_features, uint64_t want_protocol);
/* Allocate and send ring q of `size` entries (NUM, BASE 0, ADDR, CALL, ERR, KICK, ENABLE). */
int vfront_ring_setup(struct vfront *f, uint16_t q, uint16_t size);
/* Send the ring's addresses again, with `base` (after a GET_VRING_BASE). */
int vfront_ring_restart(struct vfront *f, uint16_t q, uint16_t base);

/* The driver's side of ring q. */
int vfront_add(struct vfront *f, uint16_t q, const struct vfront_seg *segs, unsigned n);
void vfront_kick(struct vfront *f, uint16_t q);
/* 1 and the element, or 0 when the used ring has nothing new. */
int vfront_get_used(struct vfront *f, uint16_t q, uint16_t *head, uint32_t *len);
/* Wait (call eventfd) for a used element: 1, or -ETIMEDOUT. */
int vfront_wait_used(struct vfront *f, uint16_t q, uint16_t *head, uint32_t *len, int timeout_ms);
uint16_t vfront_used_idx(struct vfront *f, uint16_t q);

/* virtio-blk requests on ring q: header, data (if len), status. Returns the head. */
int vfront_blk_submit(struct vfront *f, uint16_t q, uint32_t type, uint64_t sector,
                      uint64_t data_gpa, uint32_t data_len);
uint8_t vfront_blk_status(struct vfront *f, uint16_t q, uint16_t head);
/* Submit, kick, wait: the status byte (0..255) or -errno. */
int vfront_blk_do(struct vfront *f, uint16_t q, uint32_t type, uint64_t sector, uint64_t data_gpa,
                  uint32_t data_len);

#endif
