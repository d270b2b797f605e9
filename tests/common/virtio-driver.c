/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virtio-driver.h"

#define STATUS_ACK         0x01
#define STATUS_DRIVER      0x02
#define STATUS_DRIVER_OK   0x04
#define STATUS_FEATURES_OK 0x08

#define DESC_F_NEXT     1
#define DESC_F_WRITE    2
#define DESC_F_INDIRECT 4

#define BAR0_ADDR 0x50000000u

static uint32_t cfg_read(struct vdrv *d, uint32_t off, uint32_t size)
{
    uint32_t v = 0;
    vmapple_device_pci_config_read(d->dev, off, size, &v);
    return v;
}

static void cfg_write(struct vdrv *d, uint32_t off, uint32_t size, uint32_t v)
{
    vmapple_device_pci_config_write(d->dev, off, size, v);
}

static uint64_t bar_read(struct vdrv *d, uint64_t off, uint32_t size)
{
    uint64_t v = 0;
    vmapple_device_read(d->dev, d->bar0, off, size, &v);
    return v;
}

static void bar_write(struct vdrv *d, uint64_t off, uint32_t size, uint64_t v)
{
    vmapple_device_write(d->dev, d->bar0, off, size, v);
}

uint64_t vdrv_common_read(struct vdrv *d, uint32_t off, uint32_t size)
{
    return bar_read(d, d->common_off + off, size);
}

void vdrv_common_write(struct vdrv *d, uint32_t off, uint32_t size, uint64_t v)
{
    bar_write(d, d->common_off + off, size, v);
}

uint8_t vdrv_read_isr(struct vdrv *d)
{
    return (uint8_t)bar_read(d, d->isr_off, 1);
}

uint64_t vdrv_devcfg_read(struct vdrv *d, uint32_t off, uint32_t size)
{
    return bar_read(d, d->devcfg_off + off, size);
}

uint8_t vdrv_status(struct vdrv *d)
{
    return (uint8_t)vdrv_common_read(d, 0x14, 1);
}

uint64_t vdrv_alloc(struct vdrv *d, uint64_t len, uint64_t align)
{
    uint64_t p = (d->heap + align - 1) & ~(align - 1);

    if (p + len > d->heap_end) {
        abort();
    }
    d->heap = p + len;
    memset(vdrv_ptr(d, p), 0, len);
    return p;
}

void *vdrv_ptr(struct vdrv *d, uint64_t gpa)
{
    return mock_ram(d->h, gpa, 1);
}

static int find_caps(struct vdrv *d)
{
    unsigned found = 0;
    uint32_t cap = cfg_read(d, 0x34, 1);

    for (int guard = 0; cap && guard < 48; guard++) {
        if (cfg_read(d, cap, 1) == 0x09) {
            uint32_t type = cfg_read(d, cap + 3, 1);
            uint32_t off = cfg_read(d, cap + 8, 4);
            switch (type) {
            case 1:
                d->common_off = off;
                found |= 1;
                break;
            case 2:
                d->notify_off = off;
                d->notify_mult = cfg_read(d, cap + 16, 4);
                found |= 2;
                break;
            case 3:
                d->isr_off = off;
                found |= 4;
                break;
            case 4:
                d->devcfg_off = off;
                d->devcfg_len = cfg_read(d, cap + 12, 4);
                found |= 8;
                break;
            case 5:
                d->pci_cfg_cap = (uint8_t)cap;
                break;
            default:
                break;
            }
        }
        cap = cfg_read(d, cap + 1, 1);
    }
    return found == 15 ? 0 : -ENODEV;
}

int vdrv_init(struct vdrv *d, struct mock_host *h, vmapple_device *dev, uint64_t heap_gpa,
              uint64_t heap_len, const struct vdrv_config *cfg)
{
    uint64_t want;
    uint16_t qmax;
    int n = vmapple_device_count_regions(dev);

    memset(d, 0, sizeof(*d));
    d->h = h;
    d->dev = dev;
    d->heap = heap_gpa;
    d->heap_end = heap_gpa + heap_len;
    d->async = cfg->async;
    for (int i = 0; i < n; i++) {
        const vmapple_region_info *ri;
        vmapple_device_get_region(dev, (uint32_t)i, &ri);
        if (ri->pci_bar == 0) {
            d->bar0 = (uint32_t)i;
        }
    }
    if (find_caps(d) < 0) {
        return -ENODEV;
    }
    cfg_write(d, 0x10, 4, BAR0_ADDR);
    cfg_write(d, 0x04, 2, 0x0006); /* memory decode, bus master */

    vdrv_common_write(d, 0x14, 1, 0);
    if (vdrv_status(d) != 0) {
        return -EIO;
    }
    vdrv_common_write(d, 0x14, 1, STATUS_ACK);
    vdrv_common_write(d, 0x14, 1, STATUS_ACK | STATUS_DRIVER);
    vdrv_common_write(d, 0x00, 4, 0);
    d->offered = vdrv_common_read(d, 0x04, 4);
    vdrv_common_write(d, 0x00, 4, 1);
    d->offered |= vdrv_common_read(d, 0x04, 4) << 32;
    want = cfg->want_features | (cfg->no_version_1 ? 0 : VDRV_F_VERSION_1);
    d->features = cfg->no_version_1 ? want & ~VDRV_F_VERSION_1 : want & d->offered;
    vdrv_common_write(d, 0x08, 4, 0);
    vdrv_common_write(d, 0x0c, 4, (uint32_t)d->features);
    vdrv_common_write(d, 0x08, 4, 1);
    vdrv_common_write(d, 0x0c, 4, (uint32_t)(d->features >> 32));
    vdrv_common_write(d, 0x14, 1, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
    if (!(vdrv_status(d) & STATUS_FEATURES_OK)) {
        return -EPROTO;
    }

    vdrv_common_write(d, 0x16, 2, 0);
    qmax = (uint16_t)vdrv_common_read(d, 0x18, 2);
    d->qsize = cfg->queue_size ? cfg->queue_size : qmax;
    vdrv_common_write(d, 0x18, 2, d->qsize);
    d->desc = vdrv_alloc(d, 16ull * d->qsize, 4096);
    d->avail = vdrv_alloc(d, 6 + 2ull * d->qsize, 4096);
    d->used = vdrv_alloc(d, 6 + 8ull * d->qsize, 4096);
    d->next_free = calloc(d->qsize, sizeof(*d->next_free));
    d->chain_len = calloc(d->qsize, sizeof(*d->chain_len));
    if (!d->next_free || !d->chain_len) {
        abort();
    }
    for (uint16_t i = 0; i < d->qsize; i++) {
        d->next_free[i] = (uint16_t)(i + 1);
    }
    d->free_head = 0;
    d->num_free = d->qsize;
    if (d->features & VDRV_F_INDIRECT_DESC) {
        d->indirect_pool = vdrv_alloc(d, (uint64_t)d->qsize * VDRV_MAX_INDIRECT * 16, 4096);
    }
    d->blk_area = vdrv_alloc(d, 32ull * d->qsize, 4096);
    vdrv_common_write(d, 0x20, 4, (uint32_t)d->desc);
    vdrv_common_write(d, 0x24, 4, (uint32_t)(d->desc >> 32));
    vdrv_common_write(d, 0x28, 4, (uint32_t)d->avail);
    vdrv_common_write(d, 0x2c, 4, (uint32_t)(d->avail >> 32));
    vdrv_common_write(d, 0x30, 4, (uint32_t)d->used);
    vdrv_common_write(d, 0x34, 4, (uint32_t)(d->used >> 32));
    vdrv_common_write(d, 0x1c, 2, 1);
    vdrv_common_write(d, 0x14, 1,
                      STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    return 0;
}

void vdrv_fini(struct vdrv *d)
{
    free(d->next_free);
    free(d->chain_len);
    d->next_free = d->chain_len = NULL;
}

static void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static uint16_t take_desc(struct vdrv *d)
{
    uint16_t i = d->free_head;

    d->free_head = d->next_free[i];
    d->num_free--;
    return i;
}

int vdrv_add(struct vdrv *d, const struct vdrv_seg *segs, unsigned n, bool indirect)
{
    uint8_t *table = vdrv_ptr(d, d->desc);
    uint16_t *ring = (uint16_t *)vdrv_ptr(d, d->avail + 4);
    uint16_t head, prev = 0;

    if (n == 0) {
        return -EINVAL;
    }
    if (indirect) {
        uint8_t *ind;
        if (!(d->features & VDRV_F_INDIRECT_DESC) || n > VDRV_MAX_INDIRECT || d->num_free < 1) {
            return -ENOSPC;
        }
        head = take_desc(d);
        ind = vdrv_ptr(d, d->indirect_pool + (uint64_t)head * VDRV_MAX_INDIRECT * 16);
        for (unsigned i = 0; i < n; i++) {
            put_desc(ind + 16 * i, segs[i].gpa, segs[i].len,
                     (uint16_t)((segs[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0)),
                     (uint16_t)(i + 1));
        }
        put_desc(table + 16 * head, d->indirect_pool + (uint64_t)head * VDRV_MAX_INDIRECT * 16,
                 n * 16, DESC_F_INDIRECT, 0);
        d->chain_len[head] = 1;
    } else {
        if (d->num_free < n) {
            return -ENOSPC;
        }
        head = take_desc(d);
        prev = head;
        for (unsigned i = 0; i < n; i++) {
            uint16_t cur = i == 0 ? head : take_desc(d);
            if (i > 0) {
                /* Link the previous descriptor to this one. */
                uint16_t flags;
                memcpy(&flags, table + 16 * prev + 12, 2);
                flags |= DESC_F_NEXT;
                memcpy(table + 16 * prev + 12, &flags, 2);
                memcpy(table + 16 * prev + 14, &cur, 2);
            }
            put_desc(table + 16 * cur, segs[i].gpa, segs[i].len, segs[i].write ? DESC_F_WRITE : 0,
                     0);
            prev = cur;
        }
        d->chain_len[head] = (uint16_t)n;
    }
    ring[d->avail_idx % d->qsize] = head;
    d->avail_idx++;
    return head;
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vdrv_kick(struct vdrv *d)
{
    uint16_t *avail_idx = (uint16_t *)vdrv_ptr(d, d->avail + 2);
    bool notify;

    __atomic_store_n(avail_idx, d->avail_idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (d->features & VDRV_F_EVENT_IDX) {
        uint16_t *avail_event = (uint16_t *)vdrv_ptr(d, d->used + 4 + 8ull * d->qsize);
        notify =
            need_event(__atomic_load_n(avail_event, __ATOMIC_RELAXED), d->avail_idx, d->kicked_idx);
    } else {
        uint16_t *flags = (uint16_t *)vdrv_ptr(d, d->used);
        notify = !(__atomic_load_n(flags, __ATOMIC_RELAXED) & 1);
    }
    d->kicked_idx = d->avail_idx;
    if (notify) {
        d->notifications++;
        bar_write(d, d->notify_off, 2, 0);
    }
}

static void free_chain(struct vdrv *d, uint16_t head)
{
    uint8_t *table = vdrv_ptr(d, d->desc);
    uint16_t i = head;

    /* Walk our own record of the chain length, never the device-visible table. */
    for (uint16_t k = 0; k < d->chain_len[head]; k++) {
        uint16_t next;
        memcpy(&next, table + 16 * i + 14, 2);
        d->next_free[i] = d->free_head;
        d->free_head = i;
        d->num_free++;
        i = next;
    }
}

int vdrv_get_used(struct vdrv *d, uint16_t *head, uint32_t *len)
{
    uint16_t *used_idx = (uint16_t *)vdrv_ptr(d, d->used + 2);
    uint8_t *elem;
    uint32_t id;

    if (__atomic_load_n(used_idx, __ATOMIC_ACQUIRE) == d->last_used) {
        return 0;
    }
    elem = vdrv_ptr(d, d->used + 4 + 8ull * (d->last_used % d->qsize));
    memcpy(&id, elem, 4);
    memcpy(len, elem + 4, 4);
    d->last_used++;
    if (d->features & VDRV_F_EVENT_IDX) {
        uint16_t *used_event = (uint16_t *)vdrv_ptr(d, d->avail + 4 + 2ull * d->qsize);
        __atomic_store_n(used_event, d->last_used, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    *head = (uint16_t)id;
    if (id < d->qsize) {
        free_chain(d, (uint16_t)id);
    }
    return 1;
}

int vdrv_wait_used(struct vdrv *d, uint16_t *head, uint32_t *len, int timeout_ms)
{
    struct timespec start, now;
    int fd = d->async ? vmapple_device_poll_fd(d->dev) : -1;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        long elapsed;
        if (vdrv_get_used(d, head, len)) {
            return 1;
        }
        if (!d->async) {
            return -ETIMEDOUT; /* synchronous devices finish inside the notify */
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > timeout_ms) {
            return -ETIMEDOUT;
        }
        poll(&p, 1, 10);
        vmapple_device_process(d->dev);
    }
}

int vdrv_blk_submit(struct vdrv *d, uint32_t type, uint64_t sector, uint64_t data_gpa,
                    uint32_t data_len, bool indirect)
{
    struct vdrv_seg segs[3];
    unsigned n = 0;
    uint64_t area;
    uint8_t *hdr;
    int head;

    /* The per-head area is known only once the head is; reserve via a peek. */
    uint16_t next_head = d->free_head;
    if (d->num_free == 0) {
        return -ENOSPC;
    }
    area = d->blk_area + 32ull * next_head;
    hdr = vdrv_ptr(d, area);
    memset(hdr, 0, 17);
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    hdr[16] = 0xff;
    segs[n++] = (struct vdrv_seg){ area, 16, false };
    if (data_len) {
        segs[n++] = (struct vdrv_seg){ data_gpa, data_len,
                                       type != VDRV_BLK_T_OUT && type != VDRV_BLK_T_DISCARD &&
                                           type != VDRV_BLK_T_WRITE_ZEROES };
    }
    segs[n++] = (struct vdrv_seg){ area + 16, 1, true };
    head = vdrv_add(d, segs, n, indirect);
    return head;
}

uint8_t vdrv_blk_status(struct vdrv *d, uint16_t head)
{
    return *(uint8_t *)vdrv_ptr(d, d->blk_area + 32ull * head + 16);
}

int vdrv_blk_do(struct vdrv *d, uint32_t type, uint64_t sector, uint64_t data_gpa,
                uint32_t data_len, uint32_t *used_len)
{
    uint16_t head;
    uint32_t len = 0;
    int h = vdrv_blk_submit(d, type, sector, data_gpa, data_len, false);
    int ret;

    if (h < 0) {
        return h;
    }
    vdrv_kick(d);
    ret = vdrv_wait_used(d, &head, &len, 10000);
    if (ret < 0) {
        return ret;
    }
    if (head != h) {
        return -EPROTO;
    }
    if (used_len) {
        *used_len = len;
    }
    return vdrv_blk_status(d, head);
}
