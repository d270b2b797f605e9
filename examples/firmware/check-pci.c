/* SPDX-License-Identifier: MIT */
/*
 * PCI: enumerate bus 0 through ECAM, size and assign every memory BAR in
 * the PCIe MMIO window, enable decoding and bus mastering, and check the
 * host bridge VZ has at slot 0. The PCI device modules that follow find
 * their function and its BARs here.
 */
#include "fw.h"

#define PCI_COMMAND     0x04
#define PCI_CLASS_REV   0x08
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_INT_PIN     0x3d
#define PCI_CMD_MEMORY  0x0002
#define PCI_CMD_MASTER  0x0004

static struct fw_pci_fn functions[32];
static unsigned nr_functions;
static bool enumerated;

static uint64_t cfg_addr(uint32_t slot, uint32_t reg)
{
    return FW_ECAM_BASE + ((uint64_t)slot << 15) + reg;
}

uint32_t fw_pci_read32(uint32_t slot, uint32_t reg)
{
    return mmio_read32(cfg_addr(slot, reg));
}

uint16_t fw_pci_read16(uint32_t slot, uint32_t reg)
{
    return mmio_read16(cfg_addr(slot, reg));
}

uint8_t fw_pci_read8(uint32_t slot, uint32_t reg)
{
    return mmio_read8(cfg_addr(slot, reg));
}

void fw_pci_write32(uint32_t slot, uint32_t reg, uint32_t v)
{
    mmio_write32(cfg_addr(slot, reg), v);
}

void fw_pci_write16(uint32_t slot, uint32_t reg, uint16_t v)
{
    mmio_write16(cfg_addr(slot, reg), v);
}

const struct fw_pci_fn *fw_pci_slot(uint32_t slot)
{
    for (unsigned i = 0; i < nr_functions; i++) {
        if (functions[i].slot == slot) {
            return &functions[i];
        }
    }
    return NULL;
}

/*
 * Size one BAR; returns the BARs it took (1, or 2 for 64-bit), or 0 for a
 * 64-bit BAR5, malformed: its upper half would be config 0x28, past the BARs.
 */
static unsigned size_bar(uint32_t slot, unsigned bar, uint64_t *size, bool *is64)
{
    uint32_t reg = PCI_BAR0 + 4 * bar;
    uint32_t orig = fw_pci_read32(slot, reg), lo, hi = 0xffffffffu;
    uint64_t mask;

    fw_pci_write32(slot, reg, 0xffffffffu);
    lo = fw_pci_read32(slot, reg);
    fw_pci_write32(slot, reg, orig);
    if (!lo || (lo & 1)) {
        *size = 0;
        return 1; /* empty, or an I/O BAR (VZ has none): skip it */
    }
    *is64 = ((lo >> 1) & 3) == 2;
    if (*is64 && bar == 5) {
        *size = 0;
        return 0;
    }
    if (*is64) {
        uint32_t orig_hi = fw_pci_read32(slot, reg + 4);
        fw_pci_write32(slot, reg + 4, 0xffffffffu);
        hi = fw_pci_read32(slot, reg + 4);
        fw_pci_write32(slot, reg + 4, orig_hi);
    } else {
        hi = 0xffffffffu;
    }
    mask = ((uint64_t)hi << 32) | (lo & ~0xfu);
    *size = ~mask + 1;
    return *is64 ? 2 : 1;
}

void fw_pci_enumerate(void)
{
    uint64_t next = FW_PCI_MMIO_BASE;

    if (enumerated) {
        return;
    }
    enumerated = true;
    for (uint32_t slot = 0; slot < 32; slot++) {
        uint32_t id = fw_pci_read32(slot, 0);
        struct fw_pci_fn *f;

        if ((id & 0xffff) == 0xffff) {
            continue;
        }
        f = &functions[nr_functions++];
        memset(f, 0, sizeof(*f));
        f->slot = (uint8_t)slot;
        f->vendor = (uint16_t)id;
        f->device = (uint16_t)(id >> 16);
        f->class_rev = fw_pci_read32(slot, PCI_CLASS_REV);
        f->header_type = fw_pci_read8(slot, PCI_HEADER_TYPE);
        f->pin = fw_pci_read8(slot, PCI_INT_PIN);
        if ((f->header_type & 0x7f) != 0) {
            continue; /* not a type-0 function: no BARs of ours to assign */
        }
        for (unsigned bar = 0; bar < 6;) {
            uint64_t size = 0;
            bool is64 = false;
            unsigned used = size_bar(slot, bar, &size, &is64);

            if (!used) {
                f->bar_failed = true;
                break;
            }
            if (size) {
                uint64_t at = (next + size - 1) & ~(size - 1);
                if (at + size > FW_PCI_MMIO_BASE + FW_PCI_MMIO_SIZE) {
                    f->bar_failed = true;
                } else {
                    fw_pci_write32(slot, PCI_BAR0 + 4 * bar, (uint32_t)at);
                    if (is64) {
                        fw_pci_write32(slot, PCI_BAR0 + 4 * bar + 4, (uint32_t)(at >> 32));
                    }
                    f->bar[bar] = at;
                    f->bar_size[bar] = size;
                    next = at + size;
                }
            }
            bar += used;
        }
        fw_pci_write16(slot, PCI_COMMAND,
                       fw_pci_read16(slot, PCI_COMMAND) | PCI_CMD_MEMORY | PCI_CMD_MASTER);
    }
}

void check_pci(void)
{
    const struct fw_pci_fn *hb;
    unsigned bars = 0, bad = 0;
    uint32_t empty = 0xffffffffu;

    fw_pci_enumerate();
    fw_check("enumerate", nr_functions > 0, "functions on bus 0: %u", nr_functions);
    for (unsigned i = 0; i < nr_functions; i++) {
        const struct fw_pci_fn *f = &functions[i];
        fw_note("00:%02x.0 %04x:%04x class %06x pin %u", f->slot, f->vendor, f->device,
                f->class_rev >> 8, f->pin);
    }

    hb = fw_pci_slot(0);
    fw_check("host-bridge",
             hb && hb->vendor == 0x106b && hb->device == 0x1a05 &&
                 (hb->class_rev >> 8) == 0x060000 && (hb->header_type & 0x7f) == 0,
             "00:00.0 is %04x:%04x class %06x (VZ: 106b:1a05 class 060000)", hb ? hb->vendor : 0,
             hb ? hb->device : 0, hb ? hb->class_rev >> 8 : 0);

    /* A slot VZ leaves empty reads all ones. */
    for (uint32_t slot = 31; slot > 0; slot--) {
        if (!fw_pci_slot(slot)) {
            empty = fw_pci_read32(slot, 0);
            break;
        }
    }
    fw_check("empty-slot", empty == 0xffffffffu, "an empty slot's vendor/device reads 0x%08x",
             empty);

    /* Every BAR holds the address we gave it. */
    for (unsigned i = 0; i < nr_functions; i++) {
        const struct fw_pci_fn *f = &functions[i];
        for (unsigned b = 0; b < 6; b++) {
            if (!f->bar_size[b]) {
                continue;
            }
            bars++;
            if ((fw_pci_read32(f->slot, PCI_BAR0 + 4 * b) & ~0xfu) != (uint32_t)f->bar[b]) {
                bad++;
            }
        }
        if (f->bar_failed) {
            bad++;
        }
    }
    fw_check("bars", bad == 0, "%u memory BARs assigned in the PCIe MMIO window, %u wrong", bars,
             bad);
}
