/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues, device side (virtio 1.2, 2.7).
 *
 * Memory ordering. The driver runs on other CPUs and shares the rings with
 * us, so the order in which the two sides see each other's stores matters:
 *
 *  - Available ring: the driver writes descriptors and ring entries, then
 *    (after a write barrier) the avail idx. We load the idx first and issue an
 *    acquire fence before reading any ring entry or descriptor, so that every
 *    entry below the idx we saw is the driver's finished entry, not a stale one.
 *
 *  - Used ring: the driver reads the used idx and then (after a read barrier)
 *    the elements and the buffers they name. We write the buffers (data and
 *    status, done by the device before vm_vq_push()) and the elements first,
 *    then a release fence, then the idx, so no CPU can see the new idx before
 *    the elements and data it covers.
 *
 *  - Notification decisions are store-then-load races on both sides: we store
 *    the used idx and then read used_event/flags; the driver stores used_event
 *    and then reads the used idx. Without a full fence between our store and
 *    our load, both sides could read the other's old value and the driver
 *    would sleep on an interrupt we decided not to send. The same holds for
 *    avail_event against the driver's avail idx (vm_vq_arm()).
 *
 * The fences also order accesses the host makes for us in mem_read/mem_write
 * (a fence orders all of this thread's memory accesses, callees included).
 * Mapped rings are accessed with 16-bit atomic loads and stores so that an
 * index is never torn.
 */
#include <errno.h>
#include <string.h>

#include "virtqueue.h"

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* A descriptor table being walked: the ring's own, or an indirect one. */
struct desc_table {
    const uint8_t *map; /* NULL: read descriptors through mem_read */
    uint64_t gpa;
    uint32_t count;
};

void vm_vq_init(struct vm_vq *vq, vmapple_device *dev)
{
    memset(vq, 0, sizeof(*vq));
    vq->dev = dev;
}

int vm_vq_check_layout(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
                       const char **why)
{
    if (!vm_is_pow2(size) || size > VM_VQ_MAX_SIZE) {
        *why = "queue size is not a power of two up to 32768";
        return -EINVAL;
    }
    if ((desc & 15) || (avail & 1) || (used & 3)) {
        *why = "a ring part is misaligned (descriptors 16, available 2, used 4)";
        return -EINVAL;
    }
    if (!vm_range_ok(desc, vm_vq_desc_bytes(size)) ||
        !vm_range_ok(avail, vm_vq_avail_bytes(size)) ||
        !vm_range_ok(used, vm_vq_used_bytes(size))) {
        *why = "a ring part wraps the address space";
        return -EINVAL;
    }
    return 0;
}

int vm_vq_setup(struct vm_vq *vq, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
    const char *why;
    int ret = vm_vq_check_layout(size, desc, avail, used, &why);

    if (ret < 0) {
        return ret;
    }
    vm_vq_reset(vq);
    vq->size = size;
    vq->desc_gpa = desc;
    vq->avail_gpa = avail;
    vq->used_gpa = used;
    vq->ready = true;
    return 0;
}

void vm_vq_set_features(struct vm_vq *vq, bool indirect, bool event_idx)
{
    vq->indirect = indirect;
    vq->event_idx = event_idx;
}

static void unmap_rings(struct vm_vq *vq)
{
    if (vq->desc_map) {
        vm_dma_unmap(vq->dev, vq->desc_map, vm_vq_desc_bytes(vq->size), false);
    }
    if (vq->avail_map) {
        vm_dma_unmap(vq->dev, vq->avail_map, vm_vq_avail_bytes(vq->size), false);
    }
    if (vq->used_map) {
        vm_dma_unmap(vq->dev, vq->used_map, vm_vq_used_bytes(vq->size), true);
    }
    vq->desc_map = vq->avail_map = vq->used_map = NULL;
}

void vm_vq_reset(struct vm_vq *vq)
{
    vmapple_device *dev = vq->dev;

    unmap_rings(vq);
    memset(vq, 0, sizeof(*vq));
    vq->dev = dev;
}

/* Map a whole ring part, or nothing: a partial or misaligned mapping is unused. */
static uint8_t *map_ring(struct vm_vq *vq, uint64_t gpa, uint64_t len, bool writable)
{
    uint64_t mapped;
    uint8_t *p = vm_dma_map(vq->dev, gpa, len, writable, &mapped);

    if (!p) {
        return NULL;
    }
    /* Index fields are accessed atomically: they must be naturally aligned. */
    if (mapped < len || ((uintptr_t)p & 3) != (gpa & 3)) {
        vm_dma_unmap(vq->dev, p, mapped, false);
        return NULL;
    }
    return p;
}

void vm_vq_begin(struct vm_vq *vq)
{
    if (vq->map_depth++ > 0 || !vq->ready || vq->broken) {
        return;
    }
    vq->desc_map = map_ring(vq, vq->desc_gpa, vm_vq_desc_bytes(vq->size), false);
    vq->avail_map = map_ring(vq, vq->avail_gpa, vm_vq_avail_bytes(vq->size), false);
    vq->used_map = map_ring(vq, vq->used_gpa, vm_vq_used_bytes(vq->size), true);
}

void vm_vq_end(struct vm_vq *vq)
{
    if (vq->map_depth == 0 || --vq->map_depth > 0) {
        return;
    }
    unmap_rings(vq);
}

static int vq_break(struct vm_vq *vq, const char *what, unsigned a, unsigned b)
{
    if (!vq->broken) {
        vq->broken = true;
        vm_guest_error(vq->dev, "virtqueue: %s (%u, %u); the queue is stopped until reset", what, a,
                       b);
    }
    return -EIO;
}

/* 16-bit ring fields. */

/*
 * `order` is __ATOMIC_ACQUIRE for the avail idx: the fence after it already
 * orders the ring reads, but an acquire load also says so to tools (TSan)
 * that do not model fences.
 */
static int avail_load16(struct vm_vq *vq, uint64_t off, uint16_t *v, int order)
{
    uint8_t b[2];

    if (vq->avail_map) {
        uint16_t raw =
            __atomic_load_n((const uint16_t *)(const void *)(vq->avail_map + off), order);
        *v = vm_ld_le16(&raw);
        return 0;
    }
    if (vm_dma_read(vq->dev, vq->avail_gpa + off, b, 2) < 0) {
        return -EFAULT;
    }
    *v = vm_ld_le16(b);
    return 0;
}

static int used_store16(struct vm_vq *vq, uint64_t off, uint16_t v, int order)
{
    uint8_t b[2];

    vm_st_le16(b, v);
    if (vq->used_map) {
        uint16_t raw;
        memcpy(&raw, b, 2);
        __atomic_store_n((uint16_t *)(void *)(vq->used_map + off), raw, order);
        return 0;
    }
    return vm_dma_write(vq->dev, vq->used_gpa + off, b, 2) < 0 ? -EFAULT : 0;
}

int vm_vq_pending(struct vm_vq *vq)
{
    uint16_t idx, n;

    if (!vq->ready) {
        return 0;
    }
    if (vq->broken) {
        return -EIO;
    }
    /*
     * Entries up to the idx read last time are known published (and were
     * ordered by that read): no new look at the guest's idx, whose cache line
     * the driver keeps writing, until they are consumed.
     */
    n = (uint16_t)(vq->shadow_avail - vq->last_avail);
    if (n) {
        return n;
    }
    for (int tries = 0;; tries++) {
        if (avail_load16(vq, 2, &idx, __ATOMIC_ACQUIRE) < 0) {
            return vq_break(vq, "available ring is not guest memory at idx", 0, 0);
        }
        n = (uint16_t)(idx - vq->last_avail);
        if (n <= vq->size) {
            break;
        }
        /* Look twice more before calling the guest hostile (a host whose copy tore the index). */
        if (tries == 2) {
            return vq_break(vq, "available idx moved too far (from, to)", vq->last_avail, idx);
        }
    }
    /* Entries and descriptors below idx are read only after idx itself. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    vq->shadow_avail = idx;
    return n;
}

static int read_desc(struct vm_vq *vq, const struct desc_table *t, uint32_t i, struct vq_desc *d)
{
    uint8_t raw[VIRTQ_DESC_SIZE];

    if (t->map) {
        /* One copy, then only the copy is looked at: the guest may change it. */
        memcpy(raw, t->map + (uint64_t)i * VIRTQ_DESC_SIZE, sizeof(raw));
    } else if (vm_dma_read(vq->dev, t->gpa + (uint64_t)i * VIRTQ_DESC_SIZE, raw, sizeof(raw)) < 0) {
        return -EFAULT;
    }
    d->addr = vm_ld_le64(raw);
    d->len = vm_ld_le32(raw + 8);
    d->flags = vm_ld_le16(raw + 12);
    d->next = vm_ld_le16(raw + 14);
    return 0;
}

int vm_vq_pop(struct vm_vq *vq, struct vm_vq_chain *chain)
{
    struct desc_table main_table = { vq->desc_map, vq->desc_gpa, vq->size };
    struct desc_table ind = { NULL, 0, 0 };
    const struct desc_table *t = &main_table;
    uint8_t *ind_map = NULL;
    uint64_t ind_mapped = 0;
    uint32_t idx, steps = 0, bufs = 0;
    bool seen_write = false;
    uint16_t head;
    int ret;

    ret = vm_vq_pending(vq);
    if (ret <= 0) {
        return ret;
    }
    if (avail_load16(vq, 4 + 2 * (uint64_t)(vq->last_avail % vq->size), &head, __ATOMIC_RELAXED) <
        0) {
        return vq_break(vq, "available ring is not guest memory at slot", vq->last_avail, 0);
    }
    if (head >= vq->size) {
        return vq_break(vq, "chain head index out of range (head, size)", head, vq->size);
    }
    chain->head = head;
    chain->nr_segs = chain->nr_out = 0;
    chain->out_len = chain->in_len = 0;
    idx = head;
    for (;;) {
        struct vq_desc d;

        if (t == &main_table && ++steps > vq->size) {
            ret = vq_break(vq, "descriptor chain loops or is longer than the queue (head, size)",
                           head, vq->size);
            goto out;
        }
        if (read_desc(vq, t, idx, &d) < 0) {
            ret = vq_break(vq, "descriptor table is not guest memory (head, index)", head, idx);
            goto out;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (t != &main_table) {
                ret = vq_break(vq, "indirect descriptor inside an indirect table (head, index)",
                               head, idx);
                goto out;
            }
            if (!vq->indirect) {
                ret =
                    vq_break(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC (head, index)",
                             head, idx);
                goto out;
            }
            if (d.flags & VIRTQ_DESC_F_NEXT) {
                ret = vq_break(vq, "indirect descriptor with NEXT set (head, index)", head, idx);
                goto out;
            }
            if (d.len == 0 || d.len % VIRTQ_DESC_SIZE || !vm_range_ok(d.addr, d.len)) {
                ret = vq_break(vq, "indirect table length or address is invalid (head, len)", head,
                               d.len);
                goto out;
            }
            ind.gpa = d.addr;
            ind.count = d.len / VIRTQ_DESC_SIZE;
            ind_map = vm_dma_map(vq->dev, d.addr, d.len, false, &ind_mapped);
            if (ind_map && ind_mapped < d.len) {
                vm_dma_unmap(vq->dev, ind_map, ind_mapped, false);
                ind_map = NULL;
            }
            ind.map = ind_map;
            t = &ind;
            idx = 0;
            continue;
        }
        if (++bufs > vq->size) {
            ret = vq_break(vq, "descriptor chain loops or is longer than the queue (head, size)",
                           head, vq->size);
            goto out;
        }
        if (d.len > 0) {
            bool write = d.flags & VIRTQ_DESC_F_WRITE;
            if (!vm_range_ok(d.addr, d.len)) {
                ret = vq_break(vq, "buffer wraps the address space (head, index)", head, idx);
                goto out;
            }
            if (!write && seen_write) {
                ret =
                    vq_break(vq, "device-readable buffer after a device-writable one (head, index)",
                             head, idx);
                goto out;
            }
            if (chain->nr_segs >= chain->cap) {
                ret = -ENOSPC;
                goto out;
            }
            if (chain->out_len + chain->in_len + d.len > UINT32_MAX) {
                ret =
                    vq_break(vq, "descriptor chain is longer than 4 GiB (head, index)", head, idx);
                goto out;
            }
            seen_write |= write;
            chain->segs[chain->nr_segs].addr = d.addr;
            chain->segs[chain->nr_segs].len = d.len;
            chain->segs[chain->nr_segs].write = write;
            chain->nr_segs++;
            if (write) {
                chain->in_len += d.len;
            } else {
                chain->nr_out++;
                chain->out_len += d.len;
            }
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT)) {
            break;
        }
        if (d.next >= t->count) {
            ret = vq_break(vq, "next descriptor index out of range (head, next)", head, d.next);
            goto out;
        }
        idx = d.next;
    }
    vq->last_avail++;
    ret = 1;
out:
    if (ind_map) {
        vm_dma_unmap(vq->dev, ind_map, ind_mapped, false);
    }
    return ret;
}

int vm_vq_push(struct vm_vq *vq, uint16_t head, uint32_t len)
{
    uint64_t off;
    uint8_t elem[VIRTQ_USED_ELEM_SIZE];

    if (!vq->ready || vq->broken) {
        return -EIO;
    }
    off = 4 + (uint64_t)(vq->used_idx % vq->size) * VIRTQ_USED_ELEM_SIZE;
    vm_st_le32(elem, head);
    vm_st_le32(elem + 4, len);
    if (vq->used_map) {
        memcpy(vq->used_map + off, elem, sizeof(elem));
    } else if (vm_dma_write(vq->dev, vq->used_gpa + off, elem, sizeof(elem)) < 0) {
        return vq_break(vq, "used ring is not guest memory (slot, head)", vq->used_idx, head);
    }
    vq->used_idx++;
    return 0;
}

/* virtio's vring_need_event(): did [old, new) cross event? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vm_vq_publish(struct vm_vq *vq)
{
    uint16_t old, v;

    if (!vq->ready || vq->broken || vq->used_idx == vq->published_used) {
        return false;
    }
    /* Elements and the data they describe before the idx that exposes them. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (used_store16(vq, 2, vq->used_idx, __ATOMIC_RELEASE) < 0) {
        vq_break(vq, "used ring is not guest memory at idx", vq->used_idx, 0);
        return false;
    }
    vq->published_used = vq->used_idx;
    /* Our idx store before reading the driver's suppression fields. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx) {
        if (avail_load16(vq, 0, &v, __ATOMIC_RELAXED) < 0) {
            return true; /* cannot tell: an extra interrupt is harmless */
        }
        return !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    old = vq->signalled_used;
    vq->signalled_used = vq->used_idx;
    if (!vq->signalled_valid) {
        vq->signalled_valid = true;
        return true;
    }
    if (avail_load16(vq, 4 + 2 * (uint64_t)vq->size, &v, __ATOMIC_RELAXED) < 0) {
        return true;
    }
    return need_event(v, vq->used_idx, old);
}

bool vm_vq_arm(struct vm_vq *vq)
{
    if (!vq->ready || vq->broken) {
        return false;
    }
    if (vq->event_idx && used_store16(vq, 4 + (uint64_t)vq->size * VIRTQ_USED_ELEM_SIZE,
                                      vq->last_avail, __ATOMIC_RELAXED) < 0) {
        vq_break(vq, "used ring is not guest memory at avail_event", vq->last_avail, 0);
        return false;
    }
    /* avail_event before the second look at the avail idx. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return vm_vq_pending(vq) > 0;
}
