/* SPDX-License-Identifier: MIT */
/* PCIe host: ECAM decoding, BAR placement on the bus. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pcihost.h"

#define ECAM_BUS(off) ((uint32_t)((off) >> 20) & 0xffu)
#define ECAM_DEV(off) ((uint32_t)((off) >> 15) & 0x1fu)
#define ECAM_FN(off)  ((uint32_t)((off) >> 12) & 0x7u)
#define ECAM_REG(off) ((uint32_t)(off)&0xfffu)

static void pcihost_log(struct pcihost *h, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pcihost_log(struct pcihost *h, int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    if (!h->log) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h->log(h->opaque, level, msg);
}

void pcihost_init(struct pcihost *h, vmapple_bus *bus,
                  void (*log)(void *opaque, int level, const char *message), void *opaque)
{
    memset(h, 0, sizeof(*h));
    h->bus = bus;
    h->log = log;
    h->opaque = opaque;
    for (uint32_t s = 0; s < PCIHOST_SLOTS; s++) {
        for (uint32_t r = 0; r < PCIHOST_MAX_REGION; r++) {
            h->slots[s].bar_base[r] = VMAPPLE_NO_BASE;
        }
    }
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
    const uint64_t win = 0x50000000ull, win_size = 0x1fff0000ull; /* VMAPPLE_MAP_PCIE_MMIO */
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
    h->bar_moves++;
    /* The host bridge forwards only its window; a BAR elsewhere decodes nothing. */
    if (address < win || size > win_size || address - win > win_size - size) {
        h->bar_refused++;
        pcihost_log(h, VMAPPLE_LOG_GUEST_ERROR,
                    "pci 00:%02x.0 %s: BAR of region %u at 0x%" PRIx64 " (+0x%" PRIx64
                    ") is outside the PCIe MMIO window; not mapped",
                    slot, s->label, region, address, size);
        return;
    }
    ret = vmapple_bus_map_region(h->bus, s->dev, region, address);
    if (ret < 0) {
        h->bar_refused++;
        pcihost_log(h, VMAPPLE_LOG_GUEST_ERROR, "pci 00:%02x.0 %s: BAR not mapped: %s", slot,
                    s->label, vmapple_bus_last_error(h->bus));
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

static const char *config_reg_name(uint32_t reg)
{
    static const struct {
        uint16_t off;
        const char *name;
    } names[] = {
        { 0x00, "VENDOR_ID" },
        { 0x02, "DEVICE_ID" },
        { 0x04, "COMMAND" },
        { 0x06, "STATUS" },
        { 0x08, "REVISION/CLASS" },
        { 0x0c, "CACHE_LINE" },
        { 0x0d, "LATENCY" },
        { 0x0e, "HEADER_TYPE" },
        { 0x10, "BAR0" },
        { 0x14, "BAR1" },
        { 0x18, "BAR2" },
        { 0x1c, "BAR3" },
        { 0x20, "BAR4" },
        { 0x24, "BAR5" },
        { 0x2c, "SUBSYSTEM_VENDOR" },
        { 0x2e, "SUBSYSTEM_ID" },
        { 0x30, "ROM" },
        { 0x34, "CAP_PTR" },
        { 0x3c, "INTERRUPT_LINE" },
        { 0x3d, "INTERRUPT_PIN" },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].off == reg) {
            return names[i].name;
        }
    }
    return reg < 0x40 ? "header" : reg < 0x100 ? "capabilities" : "extended";
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
             config_reg_name(ECAM_REG(offset)), ECAM_REG(offset));
}
