/* SPDX-License-Identifier: MIT */
/* The vmapple memory map (spec/README.md) as a table. */
#include <errno.h>

#include "core.h"

#define LIB  VMAPPLE_PLATFORM_LIBRARY
#define HOST VMAPPLE_PLATFORM_HOST
#define MEM  VMAPPLE_PLATFORM_MEMORY
#define NONE VMAPPLE_PLATFORM_NO_SPI

/* Sorted by base; vmapple_platform_get_region() promises that order. */
static const vmapple_platform_region platform_map[] = {
    { VMAPPLE_MAP_FIRMWARE, HOST | MEM, "firmware", "firmware (AVPBooter image)",
      VMAPPLE_FIRMWARE_BASE, VMAPPLE_FIRMWARE_SIZE, NONE, 0 },
    { VMAPPLE_MAP_CFG, LIB, "cfg", "configuration region", 0x00400000ull, 0x00010000ull, NONE, 0 },
    { VMAPPLE_MAP_GIC_DIST, HOST, "gic-dist", "GICv3 distributor", 0x10000000ull, 0x00010000ull,
      NONE, 0 },
    { VMAPPLE_MAP_GIC_REDIST, HOST, "gic-redist", "GICv3 redistributors", 0x10010000ull,
      0x00400000ull, NONE, 0 },
    { VMAPPLE_MAP_UART, HOST, "uart", "PL011 UART", 0x20010000ull, 0x00010000ull, 1, 1 },
    { VMAPPLE_MAP_RTC, HOST, "rtc", "PL031 RTC", 0x20050000ull, 0x00001000ull, 2, 1 },
    { VMAPPLE_MAP_GPIO, HOST, "gpio", "PL061 GPIO (power button on pin 3)", 0x20060000ull,
      0x00001000ull, 5, 1 },
    { VMAPPLE_MAP_PVPANIC, LIB, "pvpanic", "pvpanic (MMIO)", 0x20070000ull, 0x00000002ull, NONE,
      0 },
    { VMAPPLE_MAP_BDIF, LIB, "bdif", "backdoor block interface", 0x30000000ull, 0x00200000ull, NONE,
      0 },
    { VMAPPLE_MAP_GFX, HOST, "gfx", "apple-gfx (paravirtual GPU, host framework only)",
      0x30200000ull, 0x00010000ull, 0x11, 1 },
    { VMAPPLE_MAP_GFX_IOSFC, HOST, "gfx-iosfc", "apple-gfx IOSurface mapper", 0x30210000ull,
      0x00010000ull, 0x10, 1 },
    { VMAPPLE_MAP_AES1, LIB, "aes1", "AES engine window 1 (registers, FIFO)", 0x30220000ull,
      0x00004000ull, 0x12, 1 },
    { VMAPPLE_MAP_AES2, LIB, "aes2", "AES engine window 2 (shares the window 1 line)",
      0x30230000ull, 0x00004000ull, 0x12, 1 },
    { VMAPPLE_MAP_PCIE_ECAM, HOST, "pcie-ecam", "PCIe configuration space (ECAM)", 0x40000000ull,
      0x10000000ull, NONE, 0 },
    { VMAPPLE_MAP_PCIE_MMIO, HOST, "pcie-mmio", "PCIe MMIO window (PCI address = CPU address)",
      0x50000000ull, 0x1fff0000ull, VMAPPLE_PCI_INTX_SPI_BASE, VMAPPLE_PCI_INTX_LINES },
    { VMAPPLE_MAP_RAM, HOST | MEM, "ram", "guest RAM (size chosen by the host)", VMAPPLE_RAM_BASE,
      0, NONE, 0 },
};

VMAPPLE_API int vmapple_platform_count_regions(void)
{
    return (int)VM_ARRAY_SIZE(platform_map);
}

VMAPPLE_API int vmapple_platform_get_region(uint32_t index, const vmapple_platform_region **region)
{
    if (!region) {
        return -EINVAL;
    }
    if (index >= VM_ARRAY_SIZE(platform_map)) {
        return -ENOENT;
    }
    *region = &platform_map[index];
    return 0;
}

VMAPPLE_API int vmapple_platform_find_region(uint32_t id, const vmapple_platform_region **region)
{
    if (!region) {
        return -EINVAL;
    }
    for (size_t i = 0; i < VM_ARRAY_SIZE(platform_map); i++) {
        if (platform_map[i].id == id) {
            *region = &platform_map[i];
            return 0;
        }
    }
    return -ENOENT;
}

VMAPPLE_API uint32_t vmapple_platform_get_intx_spi(uint32_t slot, uint32_t pin)
{
    if (slot > 31 || pin < 1 || pin > 4) {
        return VMAPPLE_PLATFORM_NO_SPI;
    }
    return VMAPPLE_PCI_INTX_SPI_BASE + (slot + pin - 1) % VMAPPLE_PCI_INTX_LINES;
}
