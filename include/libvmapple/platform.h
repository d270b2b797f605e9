/* SPDX-License-Identifier: MIT */
/**
 * @file platform.h
 * The vmapple machine as data: its guest-physical memory map and interrupt
 * numbers, as Apple's Virtualization.framework lays them out.
 *
 * A host iterates the table to build its machine; each row says whether
 * libvmapple models the region (VMAPPLE_PLATFORM_LIBRARY) or the host must
 * supply it (GIC, PL011, ...).
 */
#ifndef LIBVMAPPLE_PLATFORM_H
#define LIBVMAPPLE_PLATFORM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Identifiers of the rows of the memory map. Stable; new ones are appended. */
typedef enum vmapple_map_id {
    VMAPPLE_MAP_FIRMWARE = 1,   /**< AVPBooter image, loaded into RAM-like memory */
    VMAPPLE_MAP_CFG = 2,        /**< configuration region */
    VMAPPLE_MAP_GIC_DIST = 3,   /**< GICv3 distributor */
    VMAPPLE_MAP_GIC_REDIST = 4, /**< GICv3 redistributors */
    VMAPPLE_MAP_UART = 5,       /**< PL011 UART */
    VMAPPLE_MAP_RTC = 6,        /**< PL031 RTC */
    VMAPPLE_MAP_GPIO = 7,       /**< PL061 GPIO (power button on pin 3) */
    VMAPPLE_MAP_PVPANIC = 8,    /**< pvpanic (MMIO) */
    VMAPPLE_MAP_BDIF = 9,       /**< backdoor block interface */
    VMAPPLE_MAP_GFX = 10,       /**< apple-gfx (host framework only) */
    VMAPPLE_MAP_GFX_IOSFC = 11, /**< apple-gfx IOSurface mapper */
    VMAPPLE_MAP_AES1 = 12,      /**< AES window 1 (registers, FIFO) */
    VMAPPLE_MAP_AES2 = 13,      /**< AES window 2 */
    VMAPPLE_MAP_PCIE_ECAM = 14, /**< PCIe configuration space (ECAM) */
    VMAPPLE_MAP_PCIE_MMIO = 15, /**< PCIe MMIO window (PCI address = CPU address) */
    VMAPPLE_MAP_RAM = 16        /**< guest RAM (size chosen by the host) */
} vmapple_map_id;

/** Row flags (vmapple_platform_region.flags). */
enum {
    /** libvmapple has a device for this region. */
    VMAPPLE_PLATFORM_LIBRARY = 1u << 0,
    /** The host supplies this region (GIC, PL011, RAM, ...). */
    VMAPPLE_PLATFORM_HOST = 1u << 1,
    /** Memory rather than registers (firmware, RAM). */
    VMAPPLE_PLATFORM_MEMORY = 1u << 2
};

/** One row of the memory map. Owned by the library; fields are appended only. */
typedef struct vmapple_platform_region {
    uint32_t id;             /**< vmapple_map_id */
    uint32_t flags;          /**< VMAPPLE_PLATFORM_* */
    const char *name;        /**< short name, e.g. "aes1" */
    const char *description; /**< one line for people */
    uint64_t base;           /**< guest-physical base */
    uint64_t size;           /**< bytes; 0 for RAM, whose size the host chooses */
    uint32_t spi;            /**< first GIC SPI number, or VMAPPLE_PLATFORM_NO_SPI */
    uint32_t spi_count;      /**< number of consecutive SPIs (16 for PCIe INTx), 0 if none */
} vmapple_platform_region;

#define VMAPPLE_PLATFORM_NO_SPI UINT32_MAX

/** Fixed facts of the machine. */
#define VMAPPLE_FIRMWARE_BASE     0x00100000ULL
#define VMAPPLE_FIRMWARE_SIZE     0x00100000ULL
#define VMAPPLE_RAM_BASE          0x70000000ULL
#define VMAPPLE_RESET_PC          VMAPPLE_FIRMWARE_BASE
#define VMAPPLE_MAX_CPUS          32u
#define VMAPPLE_GIC_SPI_BASE      32u /**< SPI n is GIC interrupt ID n + 32 */
#define VMAPPLE_VTIMER_PPI        27u /**< virtual timer, a PPI (interrupt ID) */
#define VMAPPLE_PCI_INTX_SPI_BASE 0x20u
#define VMAPPLE_PCI_INTX_LINES    16u

/** @return the number of rows in the memory map. */
VMAPPLE_API int vmapple_platform_count_regions(void);

/**
 * Row @p index of the memory map, in ascending order of base address.
 * @return 0; -ENOENT past the end; -EINVAL for a NULL @p region.
 */
VMAPPLE_API int vmapple_platform_get_region(uint32_t index, const vmapple_platform_region **region);

/**
 * The row with identifier @p id (a vmapple_map_id).
 * @return 0; -ENOENT for an unknown id; -EINVAL for a NULL @p region.
 */
VMAPPLE_API int vmapple_platform_find_region(uint32_t id, const vmapple_platform_region **region);

/**
 * The GIC SPI that PCI slot @p slot raises on INTx pin @p pin (1 = INTA ..
 * 4 = INTD). VZ routes slot s, pin A to SPI 0x20 + (s mod 16); other pins
 * follow the standard swizzle (s + pin - 1) mod 16, which VZ never needs
 * since its functions all use pin A.
 * @return the SPI number, or VMAPPLE_PLATFORM_NO_SPI for slot > 31 or a pin
 *         outside 1..4.
 */
VMAPPLE_API uint32_t vmapple_platform_get_intx_spi(uint32_t slot, uint32_t pin);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_PLATFORM_H */
