/* SPDX-License-Identifier: MIT */
/* PCI function plumbing: config space, BARs, COMMAND/STATUS, INTx, MSI-X. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"

struct vm_pci_snapshot {
    uint8_t config[VM_PCI_CONFIG_SIZE];
    bool intx_pending;
    uint8_t *msix_table;
    uint8_t *msix_pba;
};

static uint32_t msix_table_bytes(const struct vm_pci_function *pci)
{
    return (uint32_t)pci->msix_vectors * PCI_MSIX_ENTRY_SIZE;
}

static uint32_t msix_pba_bytes(const struct vm_pci_function *pci)
{
    return ((uint32_t)pci->msix_vectors + 63) / 64 * 8;
}

void vm_pci_set_wmask(struct vm_pci_function *pci, uint32_t offset, uint32_t len, uint64_t mask)
{
    for (uint32_t i = 0; i < len && offset + i < VM_PCI_CONFIG_SIZE; i++) {
        pci->wmask[offset + i] = (uint8_t)(mask >> (8 * i));
    }
}

void vm_pci_init(struct vm_pci_function *pci, vmapple_device *dev, const struct vm_pci_ids *ids,
                 uint32_t intx_line)
{
    memset(pci, 0, sizeof(*pci));
    pci->dev = dev;
    pci->intx_line = intx_line;
    vm_pci_set16(pci, PCI_VENDOR_ID, ids->vendor_id);
    vm_pci_set16(pci, PCI_DEVICE_ID, ids->device_id);
    vm_pci_set8(pci, PCI_REVISION_ID, ids->revision);
    vm_pci_set8(pci, PCI_CLASS_PROG, (uint8_t)ids->class_code);
    vm_pci_set16(pci, PCI_CLASS_PROG + 1, (uint16_t)(ids->class_code >> 8));
    vm_pci_set8(pci, PCI_HEADER_TYPE, 0);
    vm_pci_set16(pci, PCI_SUBSYSTEM_VENDOR_ID, ids->subsystem_vendor_id);
    vm_pci_set16(pci, PCI_SUBSYSTEM_ID, ids->subsystem_id);
    vm_pci_set8(pci, PCI_INTERRUPT_PIN, ids->irq_pin);
    /* No I/O BARs, so COMMAND.IO stays 0. */
    vm_pci_set_wmask(pci, PCI_COMMAND, 2,
                     PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
                         PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
    pci->w1cmask[PCI_STATUS] = (uint8_t)PCI_STATUS_W1C;
    pci->w1cmask[PCI_STATUS + 1] = (uint8_t)(PCI_STATUS_W1C >> 8);
    vm_pci_set_wmask(pci, PCI_CACHE_LINE_SIZE, 1, 0xff);
    vm_pci_set_wmask(pci, PCI_LATENCY_TIMER, 1, 0xff);
    vm_pci_set_wmask(pci, PCI_INTERRUPT_LINE, 1, 0xff);
    pci->next_cap = 0x40;
    dev->dma_enabled = false;
}

int vm_pci_add_bar(struct vm_pci_function *pci, uint32_t bar, uint32_t region, uint64_t size,
                   uint32_t flags)
{
    bool is64 = flags & VM_PCI_BAR_64;
    uint32_t off = PCI_BAR0 + 4 * bar;
    uint64_t mask;

    if (bar >= VM_PCI_NUM_BARS || (is64 && bar + 1 >= VM_PCI_NUM_BARS) || size < 16 ||
        !vm_is_pow2(size) || (!is64 && size > (1ull << 31)) || pci->bars[bar].present ||
        (is64 && pci->bars[bar + 1].present)) {
        return -EINVAL;
    }
    pci->bars[bar].present = true;
    pci->bars[bar].is64 = is64;
    pci->bars[bar].size = size;
    pci->bars[bar].region = region;
    vm_pci_set32(pci, off,
                 (is64 ? PCI_BAR_MEM_64 : 0) |
                     ((flags & VM_PCI_BAR_PREFETCH) ? PCI_BAR_MEM_PREFETCH : 0));
    mask = ~(size - 1) & ~0xfull;
    vm_pci_set_wmask(pci, off, 4, (uint32_t)mask);
    if (is64) {
        vm_pci_set_wmask(pci, off + 4, 4, (uint32_t)(mask >> 32));
    }
    return 0;
}

int vm_pci_add_capability(struct vm_pci_function *pci, uint8_t cap_id, uint32_t size)
{
    uint32_t off = (pci->next_cap + 3) & ~3u;

    if (size < 2 || off + size > 0x100) {
        return -ENOSPC;
    }
    pci->config[off] = cap_id;
    pci->config[off + 1] = 0;
    if (pci->last_cap) {
        pci->config[pci->last_cap + 1] = (uint8_t)off;
    } else {
        pci->config[PCI_CAPABILITY_LIST] = (uint8_t)off;
    }
    pci->last_cap = (uint8_t)off;
    vm_pci_set16(pci, PCI_STATUS, vm_pci_get16(pci, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    pci->next_cap = off + size;
    return (int)off;
}

int vm_pci_msix_init(struct vm_pci_function *pci, uint16_t vectors, uint32_t bar,
                     uint64_t table_off, uint64_t pba_off)
{
    int cap;

    if (vectors == 0 || vectors > 2048 || bar >= VM_PCI_NUM_BARS || !pci->bars[bar].present ||
        (table_off & 7) || (pba_off & 7) || table_off >= UINT32_MAX || pba_off >= UINT32_MAX) {
        return -EINVAL;
    }
    pci->msix_vectors = vectors;
    if (table_off + msix_table_bytes(pci) > pci->bars[bar].size ||
        pba_off + msix_pba_bytes(pci) > pci->bars[bar].size ||
        (pba_off < table_off + msix_table_bytes(pci) &&
         table_off < pba_off + msix_pba_bytes(pci))) {
        pci->msix_vectors = 0;
        return -EINVAL;
    }
    cap = vm_pci_add_capability(pci, PCI_CAP_ID_MSIX, 12);
    if (cap < 0) {
        pci->msix_vectors = 0;
        return cap;
    }
    pci->msix_table = calloc(1, msix_table_bytes(pci));
    pci->msix_pba = calloc(1, msix_pba_bytes(pci));
    if (!pci->msix_table || !pci->msix_pba) {
        free(pci->msix_table);
        free(pci->msix_pba);
        pci->msix_table = pci->msix_pba = NULL;
        pci->msix_vectors = 0;
        return -ENOMEM;
    }
    pci->msix_cap = (uint8_t)cap;
    pci->msix_bar = bar;
    pci->msix_table_off = table_off;
    pci->msix_pba_off = pba_off;
    vm_pci_set16(pci, cap + PCI_MSIX_FLAGS, (uint16_t)(vectors - 1));
    vm_pci_set32(pci, cap + 4, (uint32_t)table_off | bar);
    vm_pci_set32(pci, cap + 8, (uint32_t)pba_off | bar);
    vm_pci_set_wmask(pci, cap + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    for (uint16_t v = 0; v < vectors; v++) {
        pci->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] = PCI_MSIX_ENTRY_CTRL_MASK;
    }
    return 0;
}

void vm_pci_finalize(struct vm_pci_function *pci)
{
    memcpy(pci->initial, pci->config, sizeof(pci->initial));
}

void vm_pci_release(struct vm_pci_function *pci)
{
    free(pci->msix_table);
    free(pci->msix_pba);
    pci->msix_table = pci->msix_pba = NULL;
}

static uint64_t bar_address(const struct vm_pci_function *pci, uint32_t bar, bool *sizing)
{
    const struct vm_pci_bar *b = &pci->bars[bar];
    uint32_t lo = vm_pci_get32(pci, PCI_BAR0 + 4 * bar) & ~0xfu;
    uint64_t mask = ~(b->size - 1);
    uint64_t addr = lo;

    *sizing = lo == ((uint32_t)mask & ~0xfu);
    if (b->is64) {
        uint32_t hi = vm_pci_get32(pci, PCI_BAR0 + 4 * bar + 4);
        addr |= (uint64_t)hi << 32;
        /* A half-sized 64-bit BAR (one dword all ones) is not an address either. */
        *sizing = *sizing || hi == (uint32_t)(mask >> 32);
    }
    return addr;
}

/* Tell the host where each BAR decodes now, when that changed. */
static void pci_update_bars(struct vm_pci_function *pci)
{
    bool decode = vm_pci_get16(pci, PCI_COMMAND) & PCI_COMMAND_MEMORY;

    for (uint32_t i = 0; i < VM_PCI_NUM_BARS; i++) {
        struct vm_pci_bar *b = &pci->bars[i];
        bool sizing, mapped;
        uint64_t addr;

        if (!b->present) {
            continue;
        }
        addr = bar_address(pci, i, &sizing);
        /* Address 0 and the sizing pattern mean "not placed yet". */
        mapped = decode && addr != 0 && !sizing && addr <= UINT64_MAX - (b->size - 1);
        if (mapped == b->mapped && (!mapped || addr == b->addr)) {
            continue;
        }
        b->mapped = mapped;
        b->addr = addr;
        if (pci->dev->ops.pci_bar_update) {
            pci->dev->ops.pci_bar_update(pci->dev->opaque, b->region, addr, b->size,
                                         mapped ? 1 : 0);
        }
    }
}

static void pci_update_intx(struct vm_pci_function *pci)
{
    uint16_t cmd = vm_pci_get16(pci, PCI_COMMAND);
    uint16_t status = vm_pci_get16(pci, PCI_STATUS);
    bool level =
        pci->intx_pending && !(cmd & PCI_COMMAND_INTX_DISABLE) && !vm_pci_msix_enabled(pci);

    /* STATUS.INTERRUPT shows the request even while INTx is disabled. */
    status = pci->intx_pending ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
    vm_pci_set16(pci, PCI_STATUS, status);
    vm_irq_set(pci->dev, pci->intx_line, level);
}

void vm_pci_set_intx(struct vm_pci_function *pci, bool level)
{
    pci->intx_pending = level;
    pci_update_intx(pci);
}

bool vm_pci_msix_enabled(const struct vm_pci_function *pci)
{
    return pci->msix_vectors &&
           (vm_pci_get16(pci, pci->msix_cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE);
}

static bool msix_masked(const struct vm_pci_function *pci, uint16_t v)
{
    uint16_t ctrl = vm_pci_get16(pci, pci->msix_cap + PCI_MSIX_FLAGS);

    return (ctrl & PCI_MSIX_FLAGS_MASKALL) ||
           (pci->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] & PCI_MSIX_ENTRY_CTRL_MASK);
}

static void msix_send(struct vm_pci_function *pci, uint16_t v)
{
    const uint8_t *e = pci->msix_table + v * PCI_MSIX_ENTRY_SIZE;

    pci->msix_pba[v / 8] &= (uint8_t) ~(1u << (v % 8));
    if (pci->dev->ops.msi_send) {
        pci->dev->ops.msi_send(pci->dev->opaque, vm_ld_le64(e), vm_ld_le32(e + 8));
    }
}

void vm_pci_msix_notify(struct vm_pci_function *pci, uint16_t vector)
{
    if (!vm_pci_msix_enabled(pci) || vector >= pci->msix_vectors) {
        return;
    }
    /* Masked, or no bus mastering (an MSI is a memory write): hold it pending. */
    if (msix_masked(pci, vector) || !vm_pci_bus_master(pci)) {
        pci->msix_pba[vector / 8] |= (uint8_t)(1u << (vector % 8));
        return;
    }
    msix_send(pci, vector);
}

/*
 * Deliver what became deliverable among vectors [first, last] after an
 * unmask, enable or bus-master change. A table write passes only the
 * entries it touched: a guest programming every vector costs O(n), not
 * O(n^2). PBA bytes with nothing pending are skipped whole.
 */
static void msix_flush_range(struct vm_pci_function *pci, uint32_t first, uint32_t last)
{
    if (!vm_pci_msix_enabled(pci) || !vm_pci_bus_master(pci)) {
        return;
    }
    for (uint32_t v = first; v <= last;) {
        if (v % 8 == 0 && pci->msix_pba[v / 8] == 0) {
            v += 8;
            continue;
        }
        if ((pci->msix_pba[v / 8] >> (v % 8)) & 1 && !msix_masked(pci, (uint16_t)v)) {
            msix_send(pci, (uint16_t)v);
        }
        v++;
    }
}

static void msix_flush_pending(struct vm_pci_function *pci)
{
    if (pci->msix_vectors) {
        msix_flush_range(pci, 0, pci->msix_vectors - 1u);
    }
}

void vm_pci_msix_mmio_read(struct vm_pci_function *pci, uint64_t offset, uint32_t size,
                           uint64_t *value)
{
    uint64_t t0 = pci->msix_table_off, p0 = pci->msix_pba_off;

    if (offset >= t0 && offset + size <= t0 + msix_table_bytes(pci)) {
        *value = vm_ld_le(pci->msix_table + (offset - t0), size);
    } else if (offset >= p0 && offset + size <= p0 + msix_pba_bytes(pci)) {
        *value = vm_ld_le(pci->msix_pba + (offset - p0), size);
    } else {
        *value = 0;
    }
}

void vm_pci_msix_mmio_write(struct vm_pci_function *pci, uint64_t offset, uint32_t size,
                            uint64_t value)
{
    uint64_t t0 = pci->msix_table_off;
    uint64_t rel;
    uint32_t first, last;

    /* The PBA is read-only; so is everything outside the table. */
    if (offset < t0 || offset + size > t0 + msix_table_bytes(pci)) {
        return;
    }
    rel = offset - t0;
    first = (uint32_t)(rel / PCI_MSIX_ENTRY_SIZE);
    last = (uint32_t)((rel + size - 1) / PCI_MSIX_ENTRY_SIZE);
    vm_st_le(pci->msix_table + rel, size, value);
    /* Only the mask bit of Vector Control is writable; the rest is reserved. */
    for (uint32_t e = first; e <= last; e++) {
        uint8_t *ctrl = pci->msix_table + e * PCI_MSIX_ENTRY_SIZE + 12;
        ctrl[0] &= PCI_MSIX_ENTRY_CTRL_MASK;
        ctrl[1] = ctrl[2] = ctrl[3] = 0;
    }
    msix_flush_range(pci, first, last);
}

int vm_pci_config_read(struct vm_pci_function *pci, uint32_t offset, uint32_t size, uint32_t *value)
{
    uint32_t v = 0;

    for (uint32_t i = 0; i < size; i++) {
        v |= (uint32_t)pci->config[offset + i] << (8 * i);
    }
    *value = v;
    return 0;
}

static bool overlaps(uint32_t off, uint32_t size, uint32_t start, uint32_t len)
{
    return off < start + len && start < off + size;
}

int vm_pci_config_write(struct vm_pci_function *pci, uint32_t offset, uint32_t size, uint32_t value)
{
    bool was_master = vm_pci_bus_master(pci);

    for (uint32_t i = 0; i < size; i++) {
        uint32_t o = offset + i;
        uint8_t b = (uint8_t)(value >> (8 * i));
        pci->config[o] = (uint8_t)((pci->config[o] & ~pci->wmask[o]) | (b & pci->wmask[o]));
        pci->config[o] &= (uint8_t) ~(b & pci->w1cmask[o]);
    }
    if (overlaps(offset, size, PCI_COMMAND, 2)) {
        pci->dev->dma_enabled = vm_pci_bus_master(pci);
    }
    if (overlaps(offset, size, PCI_COMMAND, 2) || overlaps(offset, size, PCI_BAR0, 24)) {
        pci_update_bars(pci);
    }
    if (overlaps(offset, size, PCI_COMMAND, 2) ||
        (pci->msix_vectors && overlaps(offset, size, pci->msix_cap + PCI_MSIX_FLAGS, 2))) {
        pci_update_intx(pci);
        if (!was_master || pci->msix_vectors) {
            msix_flush_pending(pci);
        }
    }
    if (pci->write_hook) {
        pci->write_hook(pci, offset, size, value);
    }
    return 0;
}

void vm_pci_reset(struct vm_pci_function *pci)
{
    memcpy(pci->config, pci->initial, sizeof(pci->config));
    if (pci->msix_vectors) {
        memset(pci->msix_table, 0, msix_table_bytes(pci));
        memset(pci->msix_pba, 0, msix_pba_bytes(pci));
        for (uint16_t v = 0; v < pci->msix_vectors; v++) {
            pci->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] = PCI_MSIX_ENTRY_CTRL_MASK;
        }
    }
    pci->dev->dma_enabled = false;
    pci->intx_pending = false;
    pci_update_bars(pci);
    pci_update_intx(pci);
}

void vm_pci_save(const struct vm_pci_function *pci, struct vm_state_writer *w)
{
    vm_st_put_bytes(w, pci->config, sizeof(pci->config));
    vm_st_put_bool(w, pci->intx_pending);
    vm_st_put_u16(w, pci->msix_vectors);
    if (pci->msix_vectors) {
        vm_st_put_bytes(w, pci->msix_table, msix_table_bytes(pci));
        vm_st_put_bytes(w, pci->msix_pba, msix_pba_bytes(pci));
    }
}

void vm_pci_snapshot_free(struct vm_pci_snapshot *snap)
{
    if (snap) {
        free(snap->msix_table);
        free(snap->msix_pba);
        free(snap);
    }
}

int vm_pci_load_parse(struct vm_pci_function *pci, struct vm_state_reader *r,
                      struct vm_pci_snapshot **out)
{
    struct vm_pci_snapshot *s = calloc(1, sizeof(*s));
    uint16_t vectors;

    if (!s) {
        return -ENOMEM;
    }
    vm_st_get_bytes(r, s->config, sizeof(s->config));
    s->intx_pending = vm_st_get_bool(r);
    vectors = vm_st_get_u16(r);
    if (r->failed || vectors != pci->msix_vectors) {
        vm_pci_snapshot_free(s);
        return vm_error(pci->dev, -EBADMSG,
                        "load: PCI state has %u MSI-X vectors, this function %u", vectors,
                        pci->msix_vectors);
    }
    if (vectors) {
        s->msix_table = malloc(msix_table_bytes(pci));
        s->msix_pba = malloc(msix_pba_bytes(pci));
        if (!s->msix_table || !s->msix_pba) {
            vm_pci_snapshot_free(s);
            return -ENOMEM;
        }
        vm_st_get_bytes(r, s->msix_table, msix_table_bytes(pci));
        vm_st_get_bytes(r, s->msix_pba, msix_pba_bytes(pci));
    }
    if (r->failed) {
        vm_pci_snapshot_free(s);
        return vm_error(pci->dev, -EBADMSG, "load: truncated PCI state");
    }
    /* Only bits the guest can write may differ from this function's image. */
    for (uint32_t i = 0; i < VM_PCI_CONFIG_SIZE; i++) {
        uint8_t dyn = pci->wmask[i] | pci->w1cmask[i];
        if (i == PCI_STATUS) {
            dyn |= PCI_STATUS_INTERRUPT;
        }
        if ((s->config[i] ^ pci->initial[i]) & ~dyn) {
            uint32_t off = i;
            vm_pci_snapshot_free(s);
            return vm_error(pci->dev, -EBADMSG,
                            "load: PCI config byte 0x%x is read-only and differs (another "
                            "identity or options?)",
                            off);
        }
    }
    if (!!(s->config[PCI_STATUS] & PCI_STATUS_INTERRUPT) != s->intx_pending) {
        vm_pci_snapshot_free(s);
        return vm_error(pci->dev, -EBADMSG, "load: STATUS.INTERRUPT contradicts the INTx state");
    }
    if (pci->intx_line < pci->dev->nr_irqs) {
        uint16_t cmd = vm_ld_le16(s->config + PCI_COMMAND);
        bool msix = vectors && (vm_ld_le16(s->config + pci->msix_cap + PCI_MSIX_FLAGS) &
                                PCI_MSIX_FLAGS_ENABLE);
        bool want = s->intx_pending && !(cmd & PCI_COMMAND_INTX_DISABLE) && !msix;
        if (((r->irq_levels >> pci->intx_line) & 1) != want) {
            vm_pci_snapshot_free(s);
            return vm_error(pci->dev, -EBADMSG,
                            "load: the INTx level in the blob contradicts the PCI state");
        }
    }
    for (uint16_t v = 0; v < vectors; v++) {
        const uint8_t *ctrl = s->msix_table + v * PCI_MSIX_ENTRY_SIZE + 12;
        if ((ctrl[0] & ~PCI_MSIX_ENTRY_CTRL_MASK) || ctrl[1] || ctrl[2] || ctrl[3]) {
            vm_pci_snapshot_free(s);
            return vm_error(pci->dev, -EBADMSG, "load: reserved MSI-X vector control bits set");
        }
    }
    for (uint32_t bit = vectors; bit < msix_pba_bytes(pci) * 8; bit++) {
        if ((s->msix_pba[bit / 8] >> (bit % 8)) & 1) {
            vm_pci_snapshot_free(s);
            return vm_error(pci->dev, -EBADMSG, "load: MSI-X pending bit of a missing vector");
        }
    }
    *out = s;
    return 0;
}

void vm_pci_load_commit(struct vm_pci_function *pci, struct vm_pci_snapshot *s)
{
    memcpy(pci->config, s->config, sizeof(pci->config));
    if (pci->msix_vectors) {
        memcpy(pci->msix_table, s->msix_table, msix_table_bytes(pci));
        memcpy(pci->msix_pba, s->msix_pba, msix_pba_bytes(pci));
    }
    pci->intx_pending = s->intx_pending;
    pci->dev->dma_enabled = vm_pci_bus_master(pci);
    pci_update_bars(pci);
    pci_update_intx(pci);
    vm_pci_snapshot_free(s);
}
