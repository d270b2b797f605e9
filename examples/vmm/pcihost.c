/* SPDX-License-Identifier: MIT */
/* PCIe host: ECAM decoding, BAR placement on the bus. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pcihost.h"
#include "regnames.h"
#include "vmmlog.h"

#define ECAM_BUS(off) ((uint32_t)((off) >> 20) & 0xffu)
#define ECAM_DEV(off) ((uint32_t)((off) >> 15) & 0x1fu)
#define ECAM_FN(off)  ((uint32_t)((off) >> 12) & 0x7u)
#define ECAM_REG(off) ((uint32_t)(off)&0xfffu)

int pcihost_init(struct pcihost *h, vmapple_bus *bus,
                 void (*log)(void *opaque, int level, const char *message), void *opaque)
{
    const vmapple_platform_region *win;
    int ret;

    memset(h, 0, sizeof(*h));
    h->bus = bus;
    h->log = log;
    h->opaque = opaque;
    for (uint32_t s = 0; s < PCIHOST_SLOTS; s++) {
        for (uint32_t r = 0; r < PCIHOST_MAX_REGION; r++) {
            h->slots[s].bar_base[r] = VMAPPLE_NO_BASE;
        }
    }
    ret = vmapple_platform_find_region(VMAPPLE_MAP_PCIE_MMIO, &win);
    if (ret < 0) {
        return ret;
    }
    h->mmio_base = win->base;
    h->mmio_size = win->size;
    return 0;
}

int pcihost_attach(struct pcihost *h, uint32_t slot, vmapple_device *dev, const char *label)
{
    if (slot >= PCIHOST_SLOTS || !dev) {
        return -EINVAL;
    }
    if (h->slots[slot].dev) {
        return -EBUSY;
    }
    h->slots[slot].dev = dev;
    h->slots[slot].label = label;
    return 0;
}

static void unmap_bar(struct pcihost *h, struct pcihost_slot *s, uint32_t region)
{
    if (s->bar_base[region] != VMAPPLE_NO_BASE) {
        vmapple_bus_unmap(h->bus, s->bar_base[region]);
        s->bar_base[region] = VMAPPLE_NO_BASE;
    }
}

void pcihost_reset(struct pcihost *h)
{
    for (uint32_t s = 0; s < PCIHOST_SLOTS; s++) {
        for (uint32_t r = 0; r < PCIHOST_MAX_REGION; r++) {
            unmap_bar(h, &h->slots[s], r);
        }
    }
}

void pcihost_bar_update(struct pcihost *h, uint32_t slot, uint32_t region, uint64_t address,
                        uint64_t size, int enabled)
{
    struct pcihost_slot *s;
    int ret;

    if (slot >= PCIHOST_SLOTS || region >= PCIHOST_MAX_REGION || !h->slots[slot].dev) {
        return;
    }
    s = &h->slots[slot];
    unmap_bar(h, s, region);
    if (!enabled) {
        return;
    }
    /* The host bridge forwards only its window; a BAR elsewhere decodes nothing. */
    if (address < h->mmio_base || size > h->mmio_size ||
        address - h->mmio_base > h->mmio_size - size) {
        vmm_guest_error(h->log, h->opaque, &h->bar_errors_logged, "BAR errors",
                        "pci 00:%02x.0 %s: BAR of region %u at 0x%" PRIx64 " (+0x%" PRIx64
                        ") is outside the PCIe MMIO window; not mapped",
                        slot, s->label, region, address, size);
        return;
    }
    ret = vmapple_bus_map_region(h->bus, s->dev, region, address);
    if (ret < 0) {
        vmm_guest_error(h->log, h->opaque, &h->bar_errors_logged, "BAR errors",
                        "pci 00:%02x.0 %s: BAR not mapped: %s", slot, s->label,
                        vmapple_bus_last_error(h->bus));
        return;
    }
    s->bar_base[region] = address;
}

static struct pcihost_slot *decode(struct pcihost *h, uint64_t offset)
{
    if (ECAM_BUS(offset) != 0 || ECAM_FN(offset) != 0) {
        return NULL;
    }
    return h->slots[ECAM_DEV(offset)].dev ? &h->slots[ECAM_DEV(offset)] : NULL;
}

int pcihost_ecam_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value)
{
    struct pcihost *h = opaque;
    struct pcihost_slot *s = decode(h, offset);
    uint32_t reg = ECAM_REG(offset), v;

    *value = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    if (!s || reg & (size - 1)) {
        return 0; /* no function, or an unaligned access: all ones, as on PCIe */
    }
    if (size == 8) {
        uint32_t hi;
        if (vmapple_device_pci_config_read(s->dev, reg, 4, &v) == 0 &&
            vmapple_device_pci_config_read(s->dev, reg + 4, 4, &hi) == 0) {
            *value = v | (uint64_t)hi << 32;
        }
        return 0;
    }
    if (vmapple_device_pci_config_read(s->dev, reg, size, &v) == 0) {
        *value = v;
    }
    return 0;
}

int pcihost_ecam_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value)
{
    struct pcihost *h = opaque;
    struct pcihost_slot *s = decode(h, offset);
    uint32_t reg = ECAM_REG(offset);

    if (!s || reg & (size - 1)) {
        return 0;
    }
    if (size == 8) {
        vmapple_device_pci_config_write(s->dev, reg, 4, (uint32_t)value);
        vmapple_device_pci_config_write(s->dev, reg + 4, 4, (uint32_t)(value >> 32));
        return 0;
    }
    vmapple_device_pci_config_write(s->dev, reg, size, (uint32_t)value);
    return 0;
}

void pcihost_describe(const struct pcihost *h, uint64_t offset, char *buf, size_t len)
{
    uint32_t dev = ECAM_DEV(offset);
    const char *label = "";

    if (ECAM_BUS(offset) == 0 && ECAM_FN(offset) == 0 && h->slots[dev].dev) {
        label = h->slots[dev].label;
    } else {
        label = "(none)";
    }
    snprintf(buf, len, "%02x:%02x.%u %s %s+0x%03x", ECAM_BUS(offset), dev, ECAM_FN(offset), label,
             pci_config_regname(ECAM_REG(offset)), ECAM_REG(offset));
}
