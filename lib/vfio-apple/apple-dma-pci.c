/* SPDX-License-Identifier: MIT */
/*
 * apple-dma-pci: the guest's DMA map/unmap requests for a passed-through
 * function, in batches described by a command page, forwarded to a DMA
 * backend. See include/libvmapple/apple-dma-pci.h and
 * spec/apple-dma-pci.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"
#include "state.h"
#include "u64map.h"
#include "vfio-internal.h"

/* BAR0 registers (32-bit). */
#define ADP_REG_VERSION     0x00
#define ADP_REG_MANAGED_BDF 0x04
#define ADP_REG_MAX_ENTRIES 0x08
#define ADP_REG_STATUS      0x0c
#define ADP_REG_CMD_GPA_LO  0x10
#define ADP_REG_CMD_GPA_HI  0x14
#define ADP_REG_DOORBELL    0x18
#define ADP_BAR0_SIZE       0x1000

/* Command page. */
#define ADP_CMD_TYPE   0x00
#define ADP_CMD_COUNT  0x04
#define ADP_CMD_STATUS 0x08
#define ADP_CMD_REQ    0x10
#define ADP_CMD_RESP   0x18
#define ADP_CMD_SIZE   0x20

#define ADP_TYPE_MAP   1u
#define ADP_TYPE_UNMAP 2u

#define ADP_STATUS_OK    0u
#define ADP_STATUS_IOERR 1u
#define ADP_STATUS_INVAL 3u

/* MAP entries checked through mem_map in at most this many pieces. */
#define ADP_MAX_RAM_PIECES 16u
/*
 * Host mappings a doorbell keeps open for the RAM checks of its entries
 * (released before the doorbell returns), and the span each one asks for.
 */
#define ADP_WINDOWS      4u
#define ADP_WINDOW_BYTES (2ull << 20)

#define ADP_STATE_VERSION 1
#define ADP_NO_MAPPING    UINT32_MAX

/* Entry sizes of a layout; `wide`: u64 len and dma_len in MAP entries. */
struct adp_layout {
    uint32_t map_req, map_resp, unmap_req, unmap_resp;
    bool wide;
};

static const struct adp_layout adp_layouts[] = {
    [VMAPPLE_APPLE_DMA_PCI_LAYOUT_PUBLISHED] = { 16, 24, 16, 16, false },
    [VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE] = { 20, 28, 16, 16, true },
};

struct adp_mapping {
    uint64_t gpa, len;
    uint64_t bus, bus_len;
    uint32_t flags;
    uint32_t refs;      /* MAPs of this gpa not yet unmapped */
    uint32_t next_free; /* free-list link while unused */
};

struct apple_dma_pci {
    vmapple_device dev;
    struct vm_pci_function pci;
    vmapple_apple_dma_pci_options opts;
    const struct adp_layout *layout;
    vmapple_dma_backend *dma;

    uint64_t cmd_gpa;
    uint32_t status;
    uint64_t doorbells;

    /* Live mappings by gpa (the id the guest names in UNMAP). */
    struct vm_u64map by_gpa;
    struct adp_mapping *maps;
    uint32_t nr_maps, cap_maps, free_head, live;

    /* One batch of requests and responses, max_entries long. */
    uint8_t *req_buf, *resp_buf;

    /* Host mappings open during one doorbell (see adp_range_is_ram). */
    struct {
        uint64_t gpa, len;
        void *host;
    } win[ADP_WINDOWS];
    uint32_t nr_win, next_win, hit_win; /* hit_win: the window that answered last */

    /* The first failure of the batch being processed, for one log line. */
    uint32_t failed, first_failed;
    char first_why[96];
};

static const vmapple_region_info adp_regions[] = {
    { "bar0", ADP_BAR0_SIZE, VMAPPLE_NO_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR, 0 },
};

static struct apple_dma_pci *to_adp(vmapple_device *dev)
{
    return vm_container_of(dev, struct apple_dma_pci, dev);
}

/* ---- the mapping table ---- */

static struct adp_mapping *adp_find(struct apple_dma_pci *a, uint64_t gpa, uint32_t *idx)
{
    return vm_u64map_get(&a->by_gpa, gpa, idx) ? &a->maps[*idx] : NULL;
}

/* The slot the next mapping would take, or ADP_NO_MAPPING when max_mappings are live. */
static uint32_t adp_peek_slot(const struct apple_dma_pci *a)
{
    if (a->free_head != ADP_NO_MAPPING) {
        return a->free_head;
    }
    return a->nr_maps < a->opts.max_mappings ? a->nr_maps : ADP_NO_MAPPING;
}

/* Take the slot adp_peek_slot() named, growing the array. */
static int adp_take_slot(struct apple_dma_pci *a, uint32_t idx)
{
    if (idx == a->free_head) {
        a->free_head = a->maps[idx].next_free;
        return 0;
    }
    if (idx == a->cap_maps) {
        uint32_t cap = VM_MIN(a->cap_maps ? a->cap_maps * 2 : 64, a->opts.max_mappings);
        struct adp_mapping *maps = realloc(a->maps, (size_t)cap * sizeof(*maps));
        if (!maps) {
            return -ENOMEM;
        }
        a->maps = maps;
        a->cap_maps = cap;
    }
    a->nr_maps++;
    return 0;
}

static void adp_give_slot(struct apple_dma_pci *a, uint32_t idx)
{
    a->maps[idx].refs = 0;
    a->maps[idx].next_free = a->free_head;
    a->free_head = idx;
}

/* Record a mapping whose gpa is not in the table (load). */
static int adp_add(struct apple_dma_pci *a, const struct adp_mapping *m)
{
    uint32_t idx = adp_peek_slot(a);

    if (idx == ADP_NO_MAPPING || adp_take_slot(a, idx) < 0) {
        return -ENOMEM;
    }
    if (vm_u64map_insert(&a->by_gpa, m->gpa, idx) < 0) {
        adp_give_slot(a, idx);
        return -ENOMEM;
    }
    a->maps[idx] = *m;
    a->live++;
    return 0;
}

static void adp_remove(struct apple_dma_pci *a, uint32_t idx)
{
    vm_u64map_remove(&a->by_gpa, a->maps[idx].gpa);
    adp_give_slot(a, idx);
    a->live--;
}

/* Unregister every live mapping (reset, destroy, replaced by a load). */
static void adp_unmap_all(struct apple_dma_pci *a)
{
    for (uint32_t i = 0; i < a->nr_maps; i++) {
        struct adp_mapping *m = &a->maps[i];
        if (m->refs == 0) {
            continue;
        }
        if (vmapple_dma_backend_unmap(a->dma, m->gpa, m->len, m->bus, m->bus_len) < 0) {
            vm_log(&a->dev, VMAPPLE_LOG_ERROR, "dropping mapping of gpa 0x%llx: %s",
                   (unsigned long long)m->gpa, vmapple_dma_backend_last_error(a->dma));
        }
    }
    vm_u64map_clear(&a->by_gpa);
    a->nr_maps = 0;
    a->live = 0;
    a->free_head = ADP_NO_MAPPING;
}

/* ---- guest memory checks ---- */

/*
 * Is the batch array [gpa, gpa + len) wholly guest RAM? Through mem_map when
 * the host has it (nothing copied), else by reading it into `scratch`
 * (len bytes).
 */
static bool adp_array_is_ram(struct apple_dma_pci *a, uint64_t gpa, uint64_t len, uint8_t *scratch)
{
    uint64_t done = 0;

    if (!vm_range_ok(gpa, len)) {
        return false;
    }
    while (a->dev.ops.mem_map && done < len) {
        uint64_t got;
        void *p = vm_dma_map(&a->dev, gpa + done, len - done, true, &got);
        if (!p) {
            break;
        }
        vm_dma_unmap(&a->dev, p, got, false);
        done += got;
    }
    return done == len || vm_dma_read(&a->dev, gpa + done, scratch, len - done) == 0;
}

/* Release the host mappings a doorbell kept open. */
static void adp_windows_release(struct apple_dma_pci *a)
{
    for (uint32_t i = 0; i < a->nr_win; i++) {
        vm_dma_unmap(&a->dev, a->win[i].host, a->win[i].len, false);
        a->win[i].len = 0; /* adp_range_is_ram tries hit_win without looking at nr_win */
    }
    a->nr_win = 0;
    a->next_win = 0;
    a->hit_win = 0;
}

/* A mapping kept open for the rest of the doorbell, replacing the oldest. */
static void adp_window_add(struct apple_dma_pci *a, uint64_t gpa, uint64_t len, void *host)
{
    uint32_t i;

    if (a->nr_win < ADP_WINDOWS) {
        i = a->nr_win++;
    } else {
        i = a->next_win;
        vm_dma_unmap(&a->dev, a->win[i].host, a->win[i].len, false);
    }
    a->win[i].gpa = gpa;
    a->win[i].len = len;
    a->win[i].host = host;
    a->next_win = (i + 1) % ADP_WINDOWS;
    a->hit_win = i;
}

/* No open window covers the range: open one, or check it piece by piece. */
static __attribute__((noinline)) bool adp_range_open(struct apple_dma_pci *a, uint64_t gpa,
                                                     uint64_t len, void **host)
{
    uint64_t done = 0;
    uint8_t probe;

    if (a->dev.ops.mem_map && len <= ADP_WINDOW_BYTES) {
        uint64_t want = vm_range_ok(gpa, ADP_WINDOW_BYTES) ? ADP_WINDOW_BYTES : len;
        uint64_t got;
        void *p = vm_dma_map(&a->dev, gpa, want, true, &got);
        if (p && got >= len) {
            adp_window_add(a, gpa, got, p);
            *host = p;
            return true;
        }
        if (p) {
            vm_dma_unmap(&a->dev, p, got, false);
        }
    }
    for (uint32_t piece = 0; a->dev.ops.mem_map && done < len && piece < ADP_MAX_RAM_PIECES;
         piece++) {
        uint64_t got;
        void *p = vm_dma_map(&a->dev, gpa + done, len - done, true, &got);
        if (!p) {
            break; /* a host may decline to map: probe the rest */
        }
        if (piece == 0 && got == len) {
            /* Kept open like a window: the backend is handed *host. */
            adp_window_add(a, gpa, got, p);
            *host = p;
            return true;
        }
        vm_dma_unmap(&a->dev, p, got, false);
        done += got;
    }
    if (done == len) {
        return true;
    }
    return vm_dma_read(&a->dev, gpa + done, &probe, 1) == 0 &&
           vm_dma_read(&a->dev, gpa + len - 1, &probe, 1) == 0;
}

/*
 * Is the MAP range [gpa, gpa + len) guest RAM? Sets *host when one host
 * mapping covers it. Mappings are asked for in windows of a few MiB and
 * kept open until the doorbell returns, so a batch of nearby buffers costs
 * one mem_map, not one per entry. Guest RAM is one range on vmapple, so
 * beyond what mem_map shows in a few pieces (or where the host has or gives
 * no mapping) both ends of the rest are probed with mem_read: a bounded
 * check however long the range.
 */
static inline bool adp_range_is_ram(struct apple_dma_pci *a, uint64_t gpa, uint64_t len,
                                    void **host)
{
    /* The window that answered last first: a batch usually walks one buffer area. */
    uint32_t i = a->hit_win;
    uint64_t off = gpa - a->win[i].gpa;

    /* off wraps above len when gpa is below the window; an unused window has len 0. */
    if (vm_likely(off < a->win[i].len && len <= a->win[i].len - off)) {
        *host = (uint8_t *)a->win[i].host + off;
        return true;
    }
    for (i = 0; i < a->nr_win; i++) {
        off = gpa - a->win[i].gpa;
        if (off < a->win[i].len && len <= a->win[i].len - off) {
            *host = (uint8_t *)a->win[i].host + off;
            a->hit_win = i;
            return true;
        }
    }
    *host = NULL;
    return adp_range_open(a, gpa, len, host);
}

/* ---- entries ---- */

static void adp_entry_failed(struct apple_dma_pci *a, uint32_t i, const char *why)
{
    if (a->failed++ == 0) {
        a->first_failed = i;
        snprintf(a->first_why, sizeof(a->first_why), "%s", why);
    }
}

static uint32_t adp_map_entry(struct apple_dma_pci *a, uint32_t i, uint64_t gpa, uint64_t len,
                              uint32_t flags, uint64_t *bus, uint64_t *bus_len)
{
    struct adp_mapping *m;
    uint32_t idx = adp_peek_slot(a), found = idx;
    void *host;
    int ret;

    *bus = 0;
    *bus_len = 0;
    if (len == 0 || !vm_range_ok(gpa, len)) {
        adp_entry_failed(a, i, len ? "range wraps" : "length 0");
        return ADP_STATUS_IOERR;
    }
    /* One probe finds a live mapping of this gpa or claims the key for a new one. */
    if (idx == ADP_NO_MAPPING) {
        ret = vm_u64map_get(&a->by_gpa, gpa, &found) ? 1 : -ENOSPC;
    } else {
        ret = vm_u64map_get_or_insert(&a->by_gpa, gpa, &found);
    }
    if (ret == 1) {
        m = &a->maps[found];
        /* The id is the gpa: only an identical second MAP can share it. */
        if (m->len != len || m->flags != flags || m->refs == UINT32_MAX) {
            adp_entry_failed(a, i, "gpa already mapped with another length or flags");
            return ADP_STATUS_IOERR;
        }
        m->refs++;
        *bus = m->bus;
        *bus_len = m->bus_len;
        return ADP_STATUS_OK;
    }
    if (ret < 0) {
        adp_entry_failed(
            a, i, ret == -ENOSPC ? "device's mapping table full (max_mappings)" : "out of memory");
        return ADP_STATUS_IOERR;
    }
    if (adp_take_slot(a, idx) < 0) {
        vm_u64map_remove(&a->by_gpa, gpa);
        adp_entry_failed(a, i, "out of memory");
        return ADP_STATUS_IOERR;
    }
    m = &a->maps[idx];
    if (!adp_range_is_ram(a, gpa, len, &host)) {
        adp_entry_failed(a, i, "range is not guest RAM");
        goto undo;
    }
    if (vm_dma_backend_map_locked(a->dma, gpa, host, len, flags, &m->bus, &m->bus_len) < 0) {
        adp_entry_failed(a, i, vmapple_dma_backend_last_error(a->dma));
        goto undo;
    }
    m->gpa = gpa;
    m->len = len;
    m->flags = flags;
    m->refs = 1;
    a->live++;
    *bus = m->bus;
    *bus_len = m->bus_len;
    return ADP_STATUS_OK;

undo:
    vm_u64map_remove(&a->by_gpa, gpa);
    adp_give_slot(a, idx);
    return ADP_STATUS_IOERR;
}

static uint32_t adp_unmap_entry(struct apple_dma_pci *a, uint32_t i, uint64_t id, uint64_t size)
{
    struct adp_mapping *m;
    uint32_t idx;

    m = adp_find(a, id, &idx);
    if (!m) {
        adp_entry_failed(a, i, "unknown id");
        return ADP_STATUS_IOERR;
    }
    if (size != m->len) {
        adp_entry_failed(a, i, "size differs from the mapped length");
        return ADP_STATUS_IOERR;
    }
    if (m->refs > 1) {
        m->refs--;
        return ADP_STATUS_OK;
    }
    if (vm_dma_backend_unmap_locked(a->dma, m->gpa, m->len, m->bus, m->bus_len) < 0) {
        adp_entry_failed(a, i, vmapple_dma_backend_last_error(a->dma));
        return ADP_STATUS_IOERR;
    }
    adp_remove(a, idx);
    return ADP_STATUS_OK;
}

static void adp_process_map(struct apple_dma_pci *a, uint32_t count)
{
    const struct adp_layout *l = a->layout;

    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *req = a->req_buf + (size_t)i * l->map_req;
        uint8_t *resp = a->resp_buf + (size_t)i * l->map_resp;
        uint64_t gpa = vm_ld_le64(req);
        uint64_t len = l->wide ? vm_ld_le64(req + 8) : vm_ld_le32(req + 8);
        uint32_t flags = vm_ld_le32(req + (l->wide ? 16 : 12));
        uint64_t bus, bus_len;
        uint32_t st;

        st = adp_map_entry(a, i, gpa, len, flags, &bus, &bus_len);

        vm_st_le64(resp, gpa);
        vm_st_le64(resp + 8, bus);
        if (l->wide) {
            vm_st_le64(resp + 16, bus_len);
            vm_st_le32(resp + 24, st);
        } else {
            /* bus_len <= len < 2^32 in this layout. */
            vm_st_le32(resp + 16, (uint32_t)bus_len);
            vm_st_le32(resp + 20, st);
        }
    }
}

static void adp_process_unmap(struct apple_dma_pci *a, uint32_t count)
{
    const struct adp_layout *l = a->layout;

    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *req = a->req_buf + (size_t)i * l->unmap_req;
        uint8_t *resp = a->resp_buf + (size_t)i * l->unmap_resp;
        uint64_t id = vm_ld_le64(req);

        vm_st_le64(resp, id);
        vm_st_le32(resp + 8, adp_unmap_entry(a, i, id, vm_ld_le64(req + 8)));
        vm_st_le32(resp + 12, 0);
    }
}

/* ---- the doorbell ---- */

/* A malformed batch: INVAL in STATUS and, when it can be written, the page. */
static void adp_batch_invalid(struct apple_dma_pci *a, bool page_ok, const char *why)
{
    uint8_t st[4];

    vm_guest_error(&a->dev, "doorbell: %s: batch status INVAL", why);
    a->status = ADP_STATUS_INVAL;
    if (page_ok) {
        vm_st_le32(st, ADP_STATUS_INVAL);
        vm_dma_write(&a->dev, a->cmd_gpa + ADP_CMD_STATUS, st, sizeof(st));
    }
}

static void adp_doorbell(struct apple_dma_pci *a)
{
    const struct adp_layout *l = a->layout;
    uint8_t page[ADP_CMD_SIZE], st[4];
    uint32_t type, count, req_size, resp_size;
    uint64_t req, resp, req_len, resp_len;

    a->doorbells++;
    if (!a->dev.dma_enabled) {
        adp_batch_invalid(a, false, "bus mastering is off");
        return;
    }
    if (a->cmd_gpa == 0) {
        adp_batch_invalid(a, false, "no command page set");
        return;
    }
    if (!vm_range_ok(a->cmd_gpa, ADP_CMD_SIZE) ||
        vm_dma_read(&a->dev, a->cmd_gpa, page, sizeof(page)) < 0) {
        adp_batch_invalid(a, false, "command page is not guest RAM");
        return;
    }
    type = vm_ld_le32(page + ADP_CMD_TYPE);
    count = vm_ld_le32(page + ADP_CMD_COUNT);
    req = vm_ld_le64(page + ADP_CMD_REQ);
    resp = vm_ld_le64(page + ADP_CMD_RESP);
    if (type != ADP_TYPE_MAP && type != ADP_TYPE_UNMAP) {
        adp_batch_invalid(a, true, "unknown type");
        return;
    }
    if (count == 0 || count > a->opts.max_entries) {
        adp_batch_invalid(a, true, count ? "count above MAX_ENTRIES" : "count 0");
        return;
    }
    if (req == 0 || resp == 0) {
        adp_batch_invalid(a, true, "zero array address");
        return;
    }
    req_size = type == ADP_TYPE_MAP ? l->map_req : l->unmap_req;
    resp_size = type == ADP_TYPE_MAP ? l->map_resp : l->unmap_resp;
    req_len = (uint64_t)count * req_size;
    resp_len = (uint64_t)count * resp_size;
    /* Both arrays are checked before any entry is processed. */
    if (!vm_range_ok(req, req_len) || vm_dma_read(&a->dev, req, a->req_buf, req_len) < 0) {
        adp_batch_invalid(a, true, "request array is not guest RAM");
        return;
    }
    if (!adp_array_is_ram(a, resp, resp_len, a->resp_buf)) {
        adp_batch_invalid(a, true, "response array is not guest RAM");
        return;
    }
    a->failed = 0;
    /* One acquisition of the backend for the whole batch. */
    vm_dma_backend_lock(a->dma);
    if (type == ADP_TYPE_MAP) {
        adp_process_map(a, count);
    } else {
        adp_process_unmap(a, count);
    }
    vm_dma_backend_unlock(a->dma);
    adp_windows_release(a);
    a->status = a->failed ? ADP_STATUS_IOERR : ADP_STATUS_OK;
    if (a->failed) {
        vm_log_ratelimited(&a->dev, VMAPPLE_LOG_GUEST_ERROR,
                           "%s batch of %u: %u entries failed (IOERR); entry %u: %s",
                           type == ADP_TYPE_MAP ? "MAP" : "UNMAP", count, a->failed,
                           a->first_failed, a->first_why);
    }
    if (vm_dma_write(&a->dev, resp, a->resp_buf, resp_len) < 0) {
        /* The host said it was RAM a moment ago; nothing better to report. */
        vm_log(&a->dev, VMAPPLE_LOG_ERROR, "doorbell: writing %llu bytes of responses failed",
               (unsigned long long)resp_len);
        a->status = ADP_STATUS_IOERR;
    }
    vm_st_le32(st, a->status);
    vm_dma_write(&a->dev, a->cmd_gpa + ADP_CMD_STATUS, st, sizeof(st));
}

/* ---- registers ---- */

static int adp_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                    uint64_t *value)
{
    struct apple_dma_pci *a = to_adp(dev);

    (void)region;
    *value = 0;
    if (size != 4 || offset % 4) {
        vm_guest_error(dev, "read of %u bytes at 0x%llx: registers are 32-bit", size,
                       (unsigned long long)offset);
        return 0;
    }
    switch (offset) {
    case ADP_REG_VERSION:
        *value = VMAPPLE_APPLE_DMA_PCI_VERSION;
        break;
    case ADP_REG_MANAGED_BDF:
        *value = a->opts.managed_bdf;
        break;
    case ADP_REG_MAX_ENTRIES:
        *value = a->opts.max_entries;
        break;
    case ADP_REG_STATUS:
        *value = a->status;
        break;
    case ADP_REG_CMD_GPA_LO:
    case ADP_REG_CMD_GPA_HI:
    case ADP_REG_DOORBELL:
        break; /* write-only */
    default:
        vm_guest_error(dev, "read of unknown register 0x%llx", (unsigned long long)offset);
        break;
    }
    return 0;
}

static int adp_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t value)
{
    struct apple_dma_pci *a = to_adp(dev);

    (void)region;
    if (size != 4 || offset % 4) {
        vm_guest_error(dev, "write of %u bytes at 0x%llx ignored: registers are 32-bit", size,
                       (unsigned long long)offset);
        return 0;
    }
    switch (offset) {
    case ADP_REG_CMD_GPA_LO:
        a->cmd_gpa = (a->cmd_gpa & 0xffffffff00000000ull) | (uint32_t)value;
        break;
    case ADP_REG_CMD_GPA_HI:
        a->cmd_gpa = (a->cmd_gpa & 0xffffffffull) | ((uint64_t)(uint32_t)value << 32);
        break;
    case ADP_REG_DOORBELL:
        adp_doorbell(a);
        break;
    default:
        vm_guest_error(dev, "write to %s register 0x%llx ignored",
                       offset < ADP_REG_CMD_GPA_LO ? "read-only" : "unknown",
                       (unsigned long long)offset);
        break;
    }
    return 0;
}

/* ---- device class ---- */

static void adp_reset(vmapple_device *dev)
{
    struct apple_dma_pci *a = to_adp(dev);

    adp_unmap_all(a);
    a->cmd_gpa = 0;
    a->status = ADP_STATUS_OK;
    vm_pci_reset(&a->pci);
}

static int adp_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct apple_dma_pci *a = to_adp(dev);

    vm_pci_save(&a->pci, w);
    vm_st_put_u32(w, a->opts.layout);
    vm_st_put_u32(w, a->opts.max_entries);
    vm_st_put_u32(w, a->opts.max_mappings);
    vm_st_put_u16(w, a->opts.managed_bdf);
    vm_st_put_u8(w, a->opts.host_bus);
    vm_st_put_u8(w, a->opts.host_device);
    vm_st_put_u8(w, a->opts.host_function);
    vm_st_put_u64(w, a->cmd_gpa);
    vm_st_put_u32(w, a->status);
    vm_st_put_u64(w, a->doorbells);
    vm_st_put_u32(w, a->live);
    for (uint32_t i = 0; i < a->nr_maps; i++) {
        const struct adp_mapping *m = &a->maps[i];
        if (m->refs == 0) {
            continue;
        }
        vm_st_put_u64(w, m->gpa);
        vm_st_put_u64(w, m->len);
        vm_st_put_u64(w, m->bus);
        vm_st_put_u64(w, m->bus_len);
        vm_st_put_u32(w, m->flags);
        vm_st_put_u32(w, m->refs);
    }
    return 0;
}

#define ADP_SAVED_MAPPING_BYTES 40u

static int adp_check_option(struct apple_dma_pci *a, const char *name, uint64_t saved,
                            uint64_t mine)
{
    if (saved == mine) {
        return 0;
    }
    return vm_error(&a->dev, -EINVAL, "load: the state has option %s %llu, this device %llu", name,
                    (unsigned long long)saved, (unsigned long long)mine);
}

/* A live mapping identical to a saved one (loading a device's own state). */
static bool adp_same_live(struct apple_dma_pci *a, const struct adp_mapping *m)
{
    uint32_t idx;
    const struct adp_mapping *old = adp_find(a, m->gpa, &idx);

    return old && old->len == m->len && old->flags == m->flags && old->bus == m->bus &&
           old->bus_len == m->bus_len;
}

/*
 * Register the loaded mappings again; every one gets its saved bus address
 * or none stays. An identical live mapping is kept as it is (`kept`).
 */
static int adp_remap(struct apple_dma_pci *a, struct adp_mapping *maps, bool *kept, uint32_t n)
{
    bool was_enabled = a->dev.dma_enabled;
    int ret = 0;

    /* The RAM checks are the device's own, whatever the guest's bus master says. */
    a->dev.dma_enabled = true;
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        struct adp_mapping *m = &maps[i];
        uint64_t bus, bus_len;
        void *host;

        kept[i] = adp_same_live(a, m);
        if (kept[i]) {
            continue;
        }
        ret = -EFAULT;
        if (adp_range_is_ram(a, m->gpa, m->len, &host)) {
            ret = vmapple_dma_backend_map(a->dma, m->gpa, host, m->len, m->flags, &bus, &bus_len);
        }
        if (ret == 0 && (bus != m->bus || bus_len != m->bus_len)) {
            vmapple_dma_backend_unmap(a->dma, m->gpa, m->len, bus, bus_len);
            ret = -EINVAL;
        }
        if (ret < 0) {
            for (uint32_t j = 0; j < i; j++) {
                if (!kept[j]) {
                    vmapple_dma_backend_unmap(a->dma, maps[j].gpa, maps[j].len, maps[j].bus,
                                              maps[j].bus_len);
                }
            }
            ret = vm_error(&a->dev, -EINVAL,
                           "load: mapping of gpa 0x%llx cannot be registered again with the "
                           "%s backend at bus address 0x%llx",
                           (unsigned long long)m->gpa, vm_dma_backend_name(a->dma),
                           (unsigned long long)m->bus);
        }
    }
    adp_windows_release(a);
    a->dev.dma_enabled = was_enabled;
    return ret;
}

/* Commit a load: drop the live mappings the state does not keep, install the state's. */
static void adp_replace_mappings(struct apple_dma_pci *a, const struct adp_mapping *maps,
                                 const bool *kept, uint32_t n, const struct vm_u64map *loaded)
{
    for (uint32_t i = 0; i < a->nr_maps; i++) {
        const struct adp_mapping *m = &a->maps[i];
        uint32_t j;
        if (m->refs == 0 || (vm_u64map_get(loaded, m->gpa, &j) && kept[j])) {
            continue;
        }
        if (vmapple_dma_backend_unmap(a->dma, m->gpa, m->len, m->bus, m->bus_len) < 0) {
            vm_log(&a->dev, VMAPPLE_LOG_ERROR, "load: dropping mapping of gpa 0x%llx: %s",
                   (unsigned long long)m->gpa, vmapple_dma_backend_last_error(a->dma));
        }
    }
    vm_u64map_clear(&a->by_gpa);
    a->nr_maps = 0;
    a->live = 0;
    a->free_head = ADP_NO_MAPPING;
    for (uint32_t i = 0; i < n; i++) {
        if (adp_add(a, &maps[i]) < 0) {
            vmapple_dma_backend_unmap(a->dma, maps[i].gpa, maps[i].len, maps[i].bus,
                                      maps[i].bus_len);
            vm_log(&a->dev, VMAPPLE_LOG_ERROR, "load: out of memory; mapping of gpa 0x%llx dropped",
                   (unsigned long long)maps[i].gpa);
        }
    }
}

static int adp_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct apple_dma_pci *a = to_adp(dev);
    struct vm_pci_snapshot *snap;
    struct adp_mapping *maps = NULL;
    bool *kept = NULL;
    struct vm_u64map seen;
    uint32_t layout, max_entries, max_mappings, status, live;
    uint16_t managed_bdf;
    uint8_t host_bus, host_device, host_function;
    uint64_t cmd_gpa, doorbells;
    int ret;

    (void)version;
    ret = vm_pci_load_parse(&a->pci, r, &snap);
    if (ret < 0) {
        return ret;
    }
    layout = vm_st_get_u32(r);
    max_entries = vm_st_get_u32(r);
    max_mappings = vm_st_get_u32(r);
    managed_bdf = vm_st_get_u16(r);
    host_bus = vm_st_get_u8(r);
    host_device = vm_st_get_u8(r);
    host_function = vm_st_get_u8(r);
    cmd_gpa = vm_st_get_u64(r);
    status = vm_st_get_u32(r);
    doorbells = vm_st_get_u64(r);
    live = vm_st_get_u32(r);
    vm_u64map_init(&seen);
    if (r->failed) {
        ret = vm_error(dev, -EBADMSG, "load: truncated state");
        goto fail;
    }
    if ((ret = adp_check_option(a, "layout", layout, a->opts.layout)) < 0 ||
        (ret = adp_check_option(a, "max_entries", max_entries, a->opts.max_entries)) < 0 ||
        (ret = adp_check_option(a, "max_mappings", max_mappings, a->opts.max_mappings)) < 0 ||
        (ret = adp_check_option(a, "managed_bdf", managed_bdf, a->opts.managed_bdf)) < 0 ||
        (ret = adp_check_option(a, "host_bus", host_bus, a->opts.host_bus)) < 0 ||
        (ret = adp_check_option(a, "host_device", host_device, a->opts.host_device)) < 0 ||
        (ret = adp_check_option(a, "host_function", host_function, a->opts.host_function)) < 0) {
        goto fail;
    }
    if (status != ADP_STATUS_OK && status != ADP_STATUS_IOERR && status != ADP_STATUS_INVAL) {
        ret = vm_error(dev, -EBADMSG, "load: status %u is not a status code", status);
        goto fail;
    }
    /* The count is checked against what the blob can hold before allocating. */
    if (live > a->opts.max_mappings ||
        (uint64_t)live * ADP_SAVED_MAPPING_BYTES != r->len - r->pos) {
        ret =
            vm_error(dev, -EBADMSG, "load: %u mappings do not fit the state or max_mappings", live);
        goto fail;
    }
    maps = calloc(live ? live : 1, sizeof(*maps));
    kept = calloc(live ? live : 1, sizeof(*kept));
    if (!maps || !kept) {
        ret = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < live; i++) {
        struct adp_mapping *m = &maps[i];
        uint32_t dummy;
        m->gpa = vm_st_get_u64(r);
        m->len = vm_st_get_u64(r);
        m->bus = vm_st_get_u64(r);
        m->bus_len = vm_st_get_u64(r);
        m->flags = vm_st_get_u32(r);
        m->refs = vm_st_get_u32(r);
        if (m->len == 0 || !vm_range_ok(m->gpa, m->len) || m->bus_len == 0 || m->bus_len > m->len ||
            !vm_range_ok(m->bus, m->bus_len) || m->refs == 0 ||
            (!a->layout->wide && m->len > UINT32_MAX) || vm_u64map_get(&seen, m->gpa, &dummy) ||
            vm_u64map_insert(&seen, m->gpa, i) < 0) {
            ret = vm_error(dev, -EBADMSG, "load: mapping %u is invalid or repeats a gpa", i);
            goto fail;
        }
    }
    if (!vm_st_complete(r)) {
        ret = vm_error(dev, -EBADMSG, "load: truncated or oversized state");
        goto fail;
    }
    ret = adp_remap(a, maps, kept, live);
    if (ret < 0) {
        goto fail;
    }
    /* Everything checked: commit. */
    adp_replace_mappings(a, maps, kept, live, &seen);
    vm_pci_load_commit(&a->pci, snap);
    a->cmd_gpa = cmd_gpa;
    a->status = status;
    a->doorbells = doorbells;
    vm_u64map_free(&seen);
    free(maps);
    free(kept);
    return 0;

fail:
    vm_u64map_free(&seen);
    free(maps);
    free(kept);
    vm_pci_snapshot_free(snap);
    return ret;
}

static void adp_destroy(vmapple_device *dev)
{
    struct apple_dma_pci *a = to_adp(dev);

    adp_unmap_all(a);
    vmapple_dma_backend_release(a->dma);
    vm_u64map_free(&a->by_gpa);
    free(a->maps);
    free(a->req_buf);
    free(a->resp_buf);
    vm_pci_release(&a->pci);
    free(a);
}

static int adp_config_read(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t *value)
{
    return vm_pci_config_read(&to_adp(dev)->pci, offset, size, value);
}

static int adp_config_write(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t value)
{
    return vm_pci_config_write(&to_adp(dev)->pci, offset, size, value);
}

static const struct vmapple_device_class adp_class = {
    .type = VMAPPLE_DEVICE_APPLE_DMA_PCI,
    .name = "apple-dma-pci",
    .state_version = ADP_STATE_VERSION,
    .read = adp_read,
    .write = adp_write,
    .reset = adp_reset,
    .save = adp_save,
    .load = adp_load,
    .destroy = adp_destroy,
    .config_read = adp_config_read,
    .config_write = adp_config_write,
};

static int adp_check_options(const vmapple_apple_dma_pci_options *o)
{
    const char *n = "apple-dma-pci";

    if (o->layout >= VM_ARRAY_SIZE(adp_layouts)) {
        return vm_error_named(n, NULL, -EINVAL, "option layout %u is not a layout (0 or 1)",
                              o->layout);
    }
    if (o->max_entries > VMAPPLE_APPLE_DMA_PCI_MAX_ENTRIES) {
        return vm_error_named(n, NULL, -EINVAL, "option max_entries is %u, the limit is %u",
                              o->max_entries, VMAPPLE_APPLE_DMA_PCI_MAX_ENTRIES);
    }
    if (o->max_mappings > VMAPPLE_APPLE_DMA_PCI_MAX_MAPPINGS) {
        return vm_error_named(n, NULL, -EINVAL, "option max_mappings is %u, the limit is %u",
                              o->max_mappings, VMAPPLE_APPLE_DMA_PCI_MAX_MAPPINGS);
    }
    if (o->host_device > 31 || o->host_function > 7) {
        return vm_error_named(n, NULL, -EINVAL, "option host_%s is %u, the limit is %u",
                              o->host_device > 31 ? "device" : "function",
                              o->host_device > 31 ? o->host_device : o->host_function,
                              o->host_device > 31 ? 31 : 7);
    }
    for (size_t i = 0; i < sizeof(o->reserved); i++) {
        if (o->reserved[i]) {
            return vm_error_named(n, NULL, -EINVAL, "option reserved[%zu] is not 0", i);
        }
    }
    return 0;
}

VMAPPLE_API int vmapple_apple_dma_pci_create(const vmapple_host_ops *ops, void *opaque,
                                             const vmapple_apple_dma_pci_options *user_opts,
                                             vmapple_device **out)
{
    vmapple_apple_dma_pci_options opts = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct vm_pci_ids ids = { 0 };
    struct apple_dma_pci *a;
    const struct adp_layout *l;
    int ret;

    if (!out) {
        return vm_error_named("apple-dma-pci", NULL, -EINVAL, "create: NULL out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "apple-dma-pci options");
    if (ret < 0) {
        return ret;
    }
    ret = adp_check_options(&opts);
    if (ret < 0) {
        return ret;
    }
    opts.max_entries = opts.max_entries ? opts.max_entries : VMAPPLE_APPLE_DMA_PCI_DEFAULT_ENTRIES;
    opts.max_mappings =
        opts.max_mappings ? opts.max_mappings : VMAPPLE_APPLE_DMA_PCI_DEFAULT_MAPPINGS;
    if ((ret = vm_require_op("apple-dma-pci", ops ? (const void *)ops->mem_read : NULL,
                             "mem_read")) < 0 ||
        (ret = vm_require_op("apple-dma-pci", ops ? (const void *)ops->mem_write : NULL,
                             "mem_write")) < 0) {
        return ret;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        return -ENOMEM;
    }
    ret = vm_device_init(&a->dev, &adp_class, ops, opaque, adp_regions, 1, NULL, 0);
    if (ret < 0) {
        free(a);
        return ret;
    }
    l = &adp_layouts[opts.layout];
    a->layout = l;
    a->free_head = ADP_NO_MAPPING;
    vm_u64map_init(&a->by_gpa);
    a->req_buf = malloc((size_t)opts.max_entries * VM_MAX(l->map_req, l->unmap_req));
    a->resp_buf = malloc((size_t)opts.max_entries * VM_MAX(l->map_resp, l->unmap_resp));
    if (!a->req_buf || !a->resp_buf) {
        free(a->req_buf);
        free(a->resp_buf);
        free(a);
        return -ENOMEM;
    }
    if (opts.dma) {
        vm_dma_backend_ref(opts.dma);
        a->dma = opts.dma;
    } else if ((ret = vmapple_dma_backend_create_identity(NULL, &a->dma)) < 0) {
        free(a->req_buf);
        free(a->resp_buf);
        free(a);
        return ret;
    }
    opts.dma = NULL; /* held in a->dma */
    a->opts = opts;

    ids.vendor_id = 0x1b36;
    ids.device_id = 0x0015;
    ids.class_code = 0x088000;
    vm_pci_init(&a->pci, &a->dev, &ids, 0);
    ret = vm_pci_add_bar(&a->pci, 0, 0, ADP_BAR0_SIZE, 0);
    if (ret < 0) {
        adp_destroy(&a->dev);
        return vm_error_named("apple-dma-pci", NULL, ret, "internal: BAR0 refused");
    }
    vm_pci_finalize(&a->pci);
    *out = &a->dev;
    return 0;
}

VMAPPLE_API int vmapple_apple_dma_pci_get_info(const vmapple_device *dev,
                                               vmapple_apple_dma_pci_info *info)
{
    vmapple_apple_dma_pci_info v = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    const struct apple_dma_pci *a;

    if (!dev || !info || info->size < 8) {
        return vm_error_named("apple-dma-pci", NULL, -EINVAL,
                              "get_info: NULL argument or size below 8");
    }
    if (dev->cls != &adp_class) {
        return vm_error_named("apple-dma-pci", NULL, -ENODEV, "get_info: %s is not apple-dma-pci",
                              dev->name);
    }
    a = vm_container_of(dev, struct apple_dma_pci, dev);
    v.layout = a->opts.layout;
    v.max_entries = a->opts.max_entries;
    v.max_mappings = a->opts.max_mappings;
    v.live_mappings = a->live;
    v.managed_bdf = a->opts.managed_bdf;
    v.host_bus = a->opts.host_bus;
    v.host_device = a->opts.host_device;
    v.host_function = a->opts.host_function;
    v.doorbells = a->doorbells;
    vm_fill_sized(info, &v, sizeof(v));
    return 0;
}
