/* SPDX-License-Identifier: MIT */
/*
 * A small guest-side virtio driver for the tests, over the mock host's RAM:
 * it finds the virtio-pci capabilities, negotiates features, sets up one
 * split queue (direct or indirect descriptors, with or without event index)
 * and submits descriptor chains; block helpers build virtio-blk requests.
 * It drives a device only through the public API (PCI config, BAR accesses,
 * poll fd + process), so it serves any virtio-pci device of the library.
 *
 * Memory ordering is the driver's half of the contract in lib/virtqueue.c:
 * descriptors and ring entries before the avail idx (release), the avail idx
 * before reading the notification suppression fields (full fence), the used
 * idx before the elements (acquire).
 */
#ifndef VMAPPLE_TEST_VIRTIO_DRIVER_H
#define VMAPPLE_TEST_VIRTIO_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include <libvmapple/libvmapple.h>

#include "mockhost.h"

#define VDRV_F_INDIRECT_DESC (1ull << 28)
#define VDRV_F_EVENT_IDX     (1ull << 29)
#define VDRV_F_VERSION_1     (1ull << 32)

#define VDRV_BLK_T_IN            0u
#define VDRV_BLK_T_OUT           1u
#define VDRV_BLK_T_FLUSH         4u
#define VDRV_BLK_T_GET_ID        8u
#define VDRV_BLK_T_DISCARD       11u
#define VDRV_BLK_T_WRITE_ZEROES  13u
#define VDRV_BLK_T_APPLE_BARRIER 0x10000u

#define VDRV_MAX_INDIRECT 64u

struct vdrv_seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

struct vdrv {
    struct mock_host *h;
    vmapple_device *dev;
    uint32_t bar0; /* device region of BAR0 */
    uint32_t common_off, notify_off, isr_off, devcfg_off, devcfg_len;
    uint32_t notify_mult;
    uint8_t pci_cfg_cap;

    uint64_t offered;
    uint64_t features; /* negotiated */
    bool async;        /* the device completes through poll fd + process */

    uint16_t qsize;
    uint64_t desc, avail, used;
    uint16_t avail_idx;  /* next avail slot */
    uint16_t kicked_idx; /* avail idx at the last notification decision */
    uint16_t last_used;
    uint16_t free_head;
    uint16_t num_free;
    uint16_t *next_free;    /* our own free list, never trusted from guest RAM */
    uint16_t *chain_len;    /* descriptors a head holds */
    uint64_t indirect_pool; /* qsize tables of VDRV_MAX_INDIRECT descriptors */
    uint64_t blk_area;      /* per head: 16-byte header at +0, status at +16 */

    uint64_t heap, heap_end; /* bump allocator in guest RAM */
    unsigned notifications;
};

/* What the driver asks for. */
struct vdrv_config {
    uint64_t want_features; /* accepted if offered; VERSION_1 is added unless no_version_1 */
    bool no_version_1;      /* behave like a legacy driver (must fail FEATURES_OK) */
    uint16_t queue_size;    /* 0: the device's maximum */
    bool async;
};

/*
 * Set the driver up on `dev` (BAR0 placed, memory and bus master on, reset,
 * negotiation, queue 0, DRIVER_OK). Guest RAM is the mock host's; the driver
 * allocates from `heap_gpa` upwards (`heap_len` bytes). Returns 0, -EPROTO
 * when FEATURES_OK does not stick, -ENODEV when capabilities are missing.
 */
int vdrv_init(struct vdrv *d, struct mock_host *h, vmapple_device *dev, uint64_t heap_gpa,
              uint64_t heap_len, const struct vdrv_config *cfg);
void vdrv_fini(struct vdrv *d);

/* Guest RAM. */
uint64_t vdrv_alloc(struct vdrv *d, uint64_t len, uint64_t align);
void *vdrv_ptr(struct vdrv *d, uint64_t gpa);

/* Register access. */
uint64_t vdrv_common_read(struct vdrv *d, uint32_t off, uint32_t size);
void vdrv_common_write(struct vdrv *d, uint32_t off, uint32_t size, uint64_t v);
uint8_t vdrv_read_isr(struct vdrv *d);
uint64_t vdrv_devcfg_read(struct vdrv *d, uint32_t off, uint32_t size);
uint8_t vdrv_status(struct vdrv *d);

/*
 * Add a chain (readable segments first). `indirect`: one indirect table.
 * Returns the head index, or -ENOSPC when descriptors are short.
 */
int vdrv_add(struct vdrv *d, const struct vdrv_seg *segs, unsigned n, bool indirect);
/* Publish added chains and notify the device unless it suppressed that. */
void vdrv_kick(struct vdrv *d);
/* Take one used element: 1 (head and len set), or 0. Frees its descriptors. */
int vdrv_get_used(struct vdrv *d, uint16_t *head, uint32_t *len);
/*
 * Wait for a used element: in asynchronous mode poll the device's fd and call
 * vmapple_device_process(). Returns 1, or -ETIMEDOUT after `timeout_ms`.
 */
int vdrv_wait_used(struct vdrv *d, uint16_t *head, uint32_t *len, int timeout_ms);

/* virtio-blk: header + optional data + status; returns the head or -ENOSPC. */
int vdrv_blk_submit(struct vdrv *d, uint32_t type, uint64_t sector, uint64_t data_gpa,
                    uint32_t data_len, bool indirect);
uint8_t vdrv_blk_status(struct vdrv *d, uint16_t head);
/* Submit, kick, wait; returns the status byte (0 to 255) or a negative errno. */
int vdrv_blk_do(struct vdrv *d, uint32_t type, uint64_t sector, uint64_t data_gpa,
                uint32_t data_len, uint32_t *used_len);

#endif
