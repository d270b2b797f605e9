/* SPDX-License-Identifier: MIT */
/*
 * The contract between libvmapple-example (host) and its self-test firmware
 * (guest), compiled into both:
 *
 * - how the host recognises the firmware image (a magic after the first
 *   branch instruction);
 * - the parameter block the host writes at the start of guest RAM before
 *   every boot: which devices the machine has and the values the firmware
 *   must find in them (the ECID, RAM size, CPU count it was given);
 * - the layout of the test images (a header in sector 0 and a pattern every
 *   byte of which both sides can compute), so the firmware can check what
 *   it reads through bdif and virtio-blk, and the host can check what the
 *   guest wrote.
 *
 * The report the firmware sends back over the UART is text, one line per
 * event, each starting with "@@ " (see report.c on the host side):
 *   @@ begin <boot number> <firmware version>
 *   @@ check <device> <check> pass|FAIL <detail>
 *   @@ skip <device> <reason>
 *   @@ panic <device> <check>
 *   @@ end <passed> <failed>
 */
#ifndef LIBVMAPPLE_SELFTEST_H
#define LIBVMAPPLE_SELFTEST_H

#include <stdbool.h>
#include <stdint.h>

#define SELFTEST_VERSION 1u

/* At byte 8 of the firmware image (after its first instruction and a pad word). */
#define SELFTEST_FW_MAGIC     "LVMXSELF"
#define SELFTEST_FW_MAGIC_OFF 8u

/* Parameter block: first bytes of guest RAM. */
#define SELFTEST_PARAMS_GPA   0x70000000ull
#define SELFTEST_PARAMS_MAGIC 0x4d524150584d564cull /* "LVMXPARM" little-endian */

/* Devices of the machine (selftest_params.devices). */
enum {
    SELFTEST_DEV_UART = 1u << 0,
    SELFTEST_DEV_GIC = 1u << 1,
    SELFTEST_DEV_CFG = 1u << 2,
    SELFTEST_DEV_BDIF = 1u << 3,
    SELFTEST_DEV_AES = 1u << 4,
    SELFTEST_DEV_PVPANIC = 1u << 5,
    SELFTEST_DEV_PCI_HOST = 1u << 6,
    SELFTEST_DEV_VBLK_ROOT = 1u << 7,
    SELFTEST_DEV_VBLK_AUX = 1u << 8,
    SELFTEST_DEV_DMA_PCI = 1u << 9,
};

/* selftest_params.flags */
enum {
    /* Skip the SYSTEM_RESET round trip (e.g. for a quick run). */
    SELFTEST_FLAG_NO_RESET = 1u << 0,
};

struct selftest_params {
    uint64_t magic;   /* SELFTEST_PARAMS_MAGIC */
    uint32_t version; /* SELFTEST_VERSION */
    uint32_t size;    /* sizeof(struct selftest_params) */
    uint64_t devices; /* SELFTEST_DEV_* */
    uint64_t flags;   /* SELFTEST_FLAG_* */
    uint64_t ecid;    /* what cfg must hold */
    uint64_t ram_size;
    uint32_t nr_cpus;
    uint32_t dma_slot;        /* PCI slot of apple-dma-pci (0: none) */
    uint64_t nonce;           /* per run: seeds what the guest writes to the images */
    uint32_t dma_managed_bdf; /* what apple-dma-pci's MANAGED_BDF must say */
    uint32_t reserved0;       /* zero */
    uint64_t reserved[7];     /* zero */
};

/* RAM the firmware may use: everything from here to the end of RAM. */
#define SELFTEST_RAM_FIRMWARE_GPA 0x70010000ull
/* Marker that survives a machine reset (RAM is not cleared by a reset). */
#define SELFTEST_RESET_MARKER_GPA 0x70001000ull
#define SELFTEST_RESET_MARKER     0x5445534552584d4cull /* "LMXRESET" */
/* A page the firmware maps through apple-dma-pci before the reset. */
#define SELFTEST_RESET_DMA_GPA 0x70002000ull

/* Test images. */
#define SELFTEST_SECTOR      512u
#define SELFTEST_IMAGE_MAGIC 0x31474d49584d564cull /* "LVMXIMG1" */
#define SELFTEST_KIND_ROOT   1u /* the same numbers as the virtio-blk Apple type */
#define SELFTEST_KIND_AUX    2u
/*
 * Sectors of the guest's virtio-blk transfers: one read of sector 0 and the
 * first pattern sectors, one write of the scratch area at pattern_sectors
 * (which the host reads back from the image file).
 */
#define SELFTEST_IO_SECTORS 16u
/*
 * The smallest image the host writes: its scratch area (an eighth of it)
 * must hold one transfer, and selftest_header_valid() requires that.
 */
#define SELFTEST_MIN_IMAGE_SECTORS (8u * SELFTEST_IO_SECTORS)

struct selftest_image_header {
    uint64_t magic;           /* SELFTEST_IMAGE_MAGIC */
    uint32_t kind;            /* SELFTEST_KIND_* */
    uint32_t version;         /* SELFTEST_VERSION */
    uint64_t sectors;         /* size of the volume */
    uint64_t pattern_sectors; /* sectors [1, pattern_sectors) hold the pattern */
    uint64_t seed;            /* of the pattern */
    uint64_t check;           /* selftest_header_check() of the fields above */
};

/* splitmix64: a well-mixed 64-bit value of each index. */
static inline uint64_t selftest_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* The 64-bit word at byte offset 8 * index of a pattern volume. */
static inline uint64_t selftest_pattern_word(uint64_t seed, uint64_t index)
{
    return selftest_mix(seed ^ selftest_mix(index));
}

static inline uint64_t selftest_header_check(const struct selftest_image_header *h)
{
    uint64_t c = selftest_mix(h->magic);
    c = selftest_mix(c ^ ((uint64_t)h->kind << 32 | h->version));
    c = selftest_mix(c ^ h->sectors);
    c = selftest_mix(c ^ h->pattern_sectors);
    return selftest_mix(c ^ h->seed);
}

/*
 * One set of rules for every reader of an image of the given kind, the
 * strictest any of them relies on: the header is intact and of this
 * version; sectors [1, SELFTEST_IO_SECTORS) hold pattern, so the guest's
 * first read is all header and pattern; and SELFTEST_IO_SECTORS scratch
 * sectors fit from pattern_sectors on, so neither the guest's write nor the
 * host's read of them runs past the volume.
 */
static inline bool selftest_header_valid(const struct selftest_image_header *h, uint32_t kind)
{
    return h->magic == SELFTEST_IMAGE_MAGIC && h->kind == kind && h->version == SELFTEST_VERSION &&
           h->check == selftest_header_check(h) && h->pattern_sectors >= SELFTEST_IO_SECTORS &&
           h->sectors >= SELFTEST_IO_SECTORS &&
           h->pattern_sectors <= h->sectors - SELFTEST_IO_SECTORS;
}

/* What the guest writes into sector s of the scratch area in a run with nonce n. */
static inline uint64_t selftest_scratch_word(uint64_t nonce, uint32_t kind, uint64_t index)
{
    return selftest_mix(nonce ^ ((uint64_t)kind << 56) ^ selftest_mix(index ^ 0x5a5a5a5aull));
}

#endif /* LIBVMAPPLE_SELFTEST_H */
