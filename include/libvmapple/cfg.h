/* SPDX-License-Identifier: MIT */
/**
 * @file cfg.h
 * cfg: the configuration region (VMAPPLE_DEVICE_CFG).
 *
 * 64 KiB at 0x0040_0000 (region "cfg", no interrupt) that the firmware reads
 * to learn the machine: ECID, RAM size, CPU count, MAC addresses, serial,
 * model and SoC name. To the guest it is ordinary RAM: reads and writes of
 * any size and alignment go to the 64 KiB image and are kept; reset restores
 * the initial image (zeros plus the fields below).
 *
 * The region is flagged VMAPPLE_REGION_RAM: a host may map the bytes that
 * vmapple_device_get_region_memory() returns straight into the guest
 * instead of trapping accesses. Reset and load rewrite them in place.
 *
 * Initial image (little-endian; offsets for the compiled / commented layout):
 *
 *   0x000 version 2, 0x004 nr_cpus, 0x008 1, 0x00c 1, 0x010 0x20, 0x014 0,
 *   0x018 ecid (u64), 0x020 ram_size (u64), 0x028 run_installer1,
 *   0x02c 1, 0x030 1, 0x034 run_installer2, 0x038 rnd, 0x03c 0,
 *   0x040 / 0x048 / 0x050 / 0x058 MACs en0, en1, wifi0, bt0 (6 bytes each),
 *   0x100 cpu_ids[i] = i for i < nr_cpus (128 / 32 slots),
 *   0x500 / 0x380 serial, 0x520 / 0x3a0 "D/A", 0x540 / 0x3c0 model,
 *   0x580 / 0x400 u32 1, 0x584 / 0x404 soc_name (strings: char[32], NUL
 *   terminated, at most 31 characters).
 *
 * A state blob holds the whole image, guest writes included, and the
 * configuration; loading it into a device created with other options fails
 * with -EINVAL naming the first option that differs.
 */
#ifndef LIBVMAPPLE_CFG_H
#define LIBVMAPPLE_CFG_H

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Base and size of the cfg region in the vmapple map. */
#define VMAPPLE_CFG_BASE 0x00400000ULL
#define VMAPPLE_CFG_SIZE 0x00010000ULL

/** The longest string option (serial, model, soc_name), in bytes without the NUL. */
#define VMAPPLE_CFG_MAX_STRING 31u

/**
 * Layouts of the image (vmapple_cfg_options.layout). The reference declares
 * a struct whose comments and whose compiled (naturally aligned) layout
 * disagree after 0x100; macOS 12 boots with the compiled one. Which one VZ
 * uses is unknown.
 */
typedef enum vmapple_cfg_layout {
    /** The reference's real layout: 128 cpu_ids slots, strings from 0x500. Default. */
    VMAPPLE_CFG_LAYOUT_COMPILED = 0,
    /** The layout its comments describe: 32 cpu_ids slots, strings from 0x380. */
    VMAPPLE_CFG_LAYOUT_COMMENTED = 1
} vmapple_cfg_layout;

/** CPU slots of each layout: the largest nr_cpus it accepts. */
#define VMAPPLE_CFG_COMPILED_MAX_CPUS  128u
#define VMAPPLE_CFG_COMMENTED_MAX_CPUS 32u

/** Options of vmapple_cfg_create(). */
typedef struct vmapple_cfg_options {
    uint32_t size;   /**< sizeof, set by VMAPPLE_CFG_OPTIONS_INIT */
    uint32_t layout; /**< vmapple_cfg_layout; default VMAPPLE_CFG_LAYOUT_COMPILED */
    /** Machine ECID (the "ECID" of a VZ machine identifier). Default 0. */
    uint64_t ecid;
    /** Bytes of guest RAM, as the firmware will see them. Default 0. */
    uint64_t ram_size;
    /**
     * CPU count: 1 .. the layout's slots (128 compiled, 32 commented). 0 is
     * refused; a NULL options pointer means 1.
     */
    uint32_t nr_cpus;
    /** The random value the host chose at machine creation. Default 0. */
    uint32_t rnd;
    uint8_t mac_en0[6];   /**< MAC of en0; default zeros */
    uint8_t mac_en1[6];   /**< MAC of en1; default zeros */
    uint8_t mac_wifi0[6]; /**< MAC of wifi0; default zeros */
    uint8_t mac_bt0[6];   /**< MAC of bt0; default zeros */
    /** Serial number, at most 31 characters; NULL: "1234". */
    const char *serial;
    /** Model, at most 31 characters; NULL: "VM0001". */
    const char *model;
    /** SoC name, at most 31 characters; NULL: "Apple M1 (Virtual)". */
    const char *soc_name;
    /** 1: installer mode (both installer words set to 1); 0 (default): normal boot. */
    uint32_t run_installer;
    uint32_t reserved0; /**< must be 0 */
} vmapple_cfg_options;

#define VMAPPLE_CFG_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_cfg_options)

/**
 * Create a cfg device. Needs no host callbacks.
 *
 * @param opts NULL for defaults (compiled layout, 1 CPU, everything else as
 *             documented per field).
 * @param[out] out the new device.
 * @return 0; -EINVAL for a NULL @p out, a bad options or host ops struct, or
 *         an invalid option: a string longer than 31 characters, nr_cpus 0
 *         or above the layout's slots, an unknown layout, run_installer
 *         other than 0 or 1, reserved0 not 0 (vmapple_last_error() names
 *         the option and the limit, e.g. "cfg: option serial is 40
 *         characters, the limit is 31"); -ENOMEM.
 */
VMAPPLE_API int vmapple_cfg_create(const vmapple_host_ops *ops, void *opaque,
                                   const vmapple_cfg_options *opts, vmapple_device **out);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_CFG_H */
