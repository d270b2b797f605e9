/* SPDX-License-Identifier: MIT */
/*
 * Register names for --trace, from the platform's public description: the
 * library exposes regions, not registers, so the example keeps the names
 * the public descriptions give. Offsets nobody has named print as
 * region+offset.
 */
#include <stdio.h>
#include <string.h>

#include <libvmapple/libvmapple.h>

#include "regnames.h"

struct name {
    uint32_t off;
    const char *name;
};

static const struct name aes_window1[] = {
    { 0x00c, "STATUS" },   { 0x018, "IRQ_STATUS" }, { 0x01c, "IRQ_ENABLE" }, { 0x020, "WATERMARK" },
    { 0x024, "Q_STATUS" }, { 0x030, "FLAG_INFO" },  { 0x200, "FIFO" },
};

static const struct name bdif_regs[] = {
    { 0x000, "STATUS" }, { 0x004, "CFG" },         { 0x010, "BUSY" },
    { 0x408, "CMD" },    { 0x420, "NEXT_DEVICE" },
};

static const struct name dma_pci_regs[] = {
    { 0x00, "VERSION" },    { 0x04, "MANAGED_BDF" }, { 0x08, "MAX_ENTRIES" }, { 0x0c, "STATUS" },
    { 0x10, "CMD_GPA_LO" }, { 0x14, "CMD_GPA_HI" },  { 0x18, "DOORBELL" },
};

static const struct name cfg_fields[] = {
    { 0x000, "version" },   { 0x004, "nr_cpus" },        { 0x018, "ecid" },
    { 0x020, "ram_size" },  { 0x028, "run_installer1" }, { 0x034, "run_installer2" },
    { 0x038, "rnd" },       { 0x040, "mac_en0" },        { 0x048, "mac_en1" },
    { 0x050, "mac_wifi0" }, { 0x058, "mac_bt0" },        { 0x500, "serial" },
    { 0x540, "model" },     { 0x584, "soc_name" },
};

static const char *lookup(const struct name *t, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].off == off) {
            return t[i].name;
        }
    }
    return NULL;
}

#define LOOKUP(t, off) lookup((t), sizeof(t) / sizeof((t)[0]), (off))

bool regname(const char *device, const char *region, uint64_t off, char *buf, size_t len)
{
    const char *n = NULL;

    if (!strcmp(device, "aes") && !strcmp(region, "aes-window1")) {
        n = LOOKUP(aes_window1, off);
    } else if (!strcmp(device, "bdif")) {
        const char *unit = (off >> 16) == 0      ? "root"
                           : (off >> 16) == 1    ? "aux"
                           : (off >> 16) == 0x10 ? "usb"
                                                 : "absent";
        n = LOOKUP(bdif_regs, off & 0xffff);
        if (n) {
            snprintf(buf, len, "%s.%s", unit, n);
            return true;
        }
        return false;
    } else if (!strcmp(device, "apple-dma-pci") && !strcmp(region, "bar0")) {
        n = LOOKUP(dma_pci_regs, off);
    } else if (!strcmp(device, "pvpanic")) {
        n = "events";
    } else if (!strcmp(device, "cfg")) {
        if (off >= 0x100 && off < 0x300) {
            snprintf(buf, len, "cpu_ids[%u]", (unsigned)((off - 0x100) / 4));
            return true;
        }
        if (off >= 0x300 && off < 0x500) {
            snprintf(buf, len, "scratch+0x%x", (unsigned)(off - 0x300));
            return true;
        }
        n = LOOKUP(cfg_fields, off);
    }
    if (!n) {
        return false;
    }
    snprintf(buf, len, "%s", n);
    return true;
}

/* PCI Local Bus 3.0, 6.1: the type 0 configuration header. */
static const struct name pci_config[] = {
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

const char *pci_config_regname(uint32_t reg)
{
    const char *n = LOOKUP(pci_config, reg);

    if (n) {
        return n;
    }
    return reg < 0x40 ? "header" : reg < 0x100 ? "capabilities" : "extended";
}

/* virtio 1.2, 4.1.4.3: the common configuration structure. */
static const struct name virtio_common[] = {
    { 0x00, "device_feature_select" }, { 0x04, "device_feature" },
    { 0x08, "driver_feature_select" }, { 0x0c, "driver_feature" },
    { 0x10, "config_msix_vector" },    { 0x12, "num_queues" },
    { 0x14, "device_status" },         { 0x15, "config_generation" },
    { 0x16, "queue_select" },          { 0x18, "queue_size" },
    { 0x1a, "queue_msix_vector" },     { 0x1c, "queue_enable" },
    { 0x1e, "queue_notify_off" },      { 0x20, "queue_desc" },
    { 0x24, "queue_desc_hi" },         { 0x28, "queue_driver" },
    { 0x2c, "queue_driver_hi" },       { 0x30, "queue_device" },
    { 0x34, "queue_device_hi" },
};

/* virtio 1.2, 5.2.4, with Apple's type at 60 (spec: virtio-blk-vmapple). */
static const struct name virtio_blk_config[] = {
    { 0, "capacity" },    { 4, "capacity_hi" }, { 8, "size_max" },  { 12, "seg_max" },
    { 16, "geometry" },   { 20, "blk_size" },   { 24, "topology" }, { 32, "writeback" },
    { 34, "num_queues" }, { 60, "apple_type" },
};

bool virtio_regname(vmapple_device *dev, uint32_t bar, uint64_t off, char *buf, size_t len)
{
    static const char *const kinds[] = { "", "common", "notify", "isr", "config" };
    uint32_t ptr = 0, status = 0;

    if (vmapple_device_pci_config_read(dev, 0x06, 2, &status) < 0 || !(status & 0x10) ||
        vmapple_device_pci_config_read(dev, 0x34, 1, &ptr) < 0) {
        return false;
    }
    for (unsigned guard = 0; ptr >= 0x40 && ptr < 0x100 && guard < 48; guard++) {
        uint32_t id = 0, next = 0, type = 0, cbar = 0, coff = 0, clen = 0;

        vmapple_device_pci_config_read(dev, ptr, 1, &id);
        vmapple_device_pci_config_read(dev, ptr + 1, 1, &next);
        if (id == 0x09) {
            vmapple_device_pci_config_read(dev, ptr + 3, 1, &type);
            vmapple_device_pci_config_read(dev, ptr + 4, 1, &cbar);
            vmapple_device_pci_config_read(dev, ptr + 8, 4, &coff);
            vmapple_device_pci_config_read(dev, ptr + 12, 4, &clen);
            if (cbar == bar && type >= 1 && type <= 4 && off >= coff && off - coff < clen) {
                uint64_t rel = off - coff;
                const char *n = NULL;

                if (type == 1) {
                    n = LOOKUP(virtio_common, rel);
                } else if (type == 4) {
                    n = LOOKUP(virtio_blk_config, rel);
                }
                if (n) {
                    snprintf(buf, len, "%s.%s", kinds[type], n);
                } else {
                    snprintf(buf, len, "%s+0x%x", kinds[type], (unsigned)rel);
                }
                return true;
            }
        }
        ptr = next & 0xfc;
    }
    return false;
}
