/* SPDX-License-Identifier: MIT */
/*
 * pvpanic (spec/pvpanic.md): the supported events read at every offset and
 * size. The device is used for real at the end: main.c writes PANICKED
 * when a check failed.
 */
#include <libvmapple/pvpanic.h>

#include "fw.h"

void check_pvpanic(void)
{
    uint8_t b0 = mmio_read8(VMAPPLE_PVPANIC_BASE), b1 = mmio_read8(VMAPPLE_PVPANIC_BASE + 1);
    uint16_t w = mmio_read16(VMAPPLE_PVPANIC_BASE);

    fw_check("events",
             b0 == (VMAPPLE_PVPANIC_PANICKED | VMAPPLE_PVPANIC_CRASH_LOADED) && b1 == b0 && w == b0,
             "supported events 0x%x at offset 0, 0x%x at offset 1, 0x%x as 2 bytes (VZ's "
             "default: PANICKED | CRASH_LOADED)",
             b0, b1, w);
}
