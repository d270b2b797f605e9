/* SPDX-License-Identifier: MIT */
/*
 * Register names for --trace, from the platform's public description: the
 * library exposes regions, not registers, so the example keeps the names
 * the public descriptions give. Offsets nobody has named print as
 * region+offset.
 */
#include <stdio.h>
#include <string.h>

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
