/* SPDX-License-Identifier: MIT */
/**
 * @file bdif.h
 * bdif: the boot "backdoor" block interface (VMAPPLE_DEVICE_BDIF).
 *
 * A 2 MiB MMIO window at 0x3000_0000 (region "bdif", no interrupt) through
 * which the firmware (iBoot) reads the aux and root volumes before any PCI
 * driver runs. Bits 31:16 of an offset select a unit (0 root, 1 aux; every
 * other unit, "usb" at 0x10 included, is absent), bits 15:0 a register.
 * Registers are decoded by the address of the access, as the reference does:
 * an access of any size (1, 2, 4, 8) at a register's offset returns that
 * register's value truncated or zero-extended to the access size; every
 * other offset reads as all ones. Every unit, absent ones included, answers
 * the same reads; only NEXT_DEVICE (0x420) differs (root 0x0800_0000, aux
 * 0x0001_0000, others all ones).
 *
 * A write to CMD (0x408) of the root or aux unit executes the 48-byte
 * request at the guest-physical address written, before the write returns:
 *
 *   +0  u64 addr, u32 len (16), u32 flags   sector descriptor: bytes 8..11
 *                                           of the 16 bytes at addr hold
 *                                           the start sector (512 bytes)
 *   +16 u64 addr, u32 len, u32 flags        data: flags 0x00030001 read
 *                                           from the volume, 0x00010001
 *                                           write to it
 *   +32 u64 addr, u32 len, u32 flags        status: one byte, 0 success,
 *                                           1 failure
 *
 * Behaviour this library defines (see spec/bdif.md):
 * - A request that cannot be read from guest memory writes nothing at all
 *   (there is no trustworthy status address).
 * - Transfers of at most 128 MiB; larger ones fail with status 1. Data is
 *   streamed in bounded chunks, or moved directly between the volume and
 *   guest memory when the host offers mem_map; no allocation depends on the
 *   request.
 * - A transfer that ends exactly at the end of the volume succeeds; one that
 *   crosses it fails with status 1 before any byte moves: the guest's data
 *   buffer (or, for writes, the volume) is left untouched, the valid prefix
 *   is NOT transferred.
 * - A unit whose volume is not configured (root or aux NULL in the options)
 *   answers register reads like the others and fails every request it is
 *   given with status 1. CMD writes to absent units (any unit but root and
 *   aux) are ignored: no request is read, no status is written.
 * - Writes are refused (status 1) unless VMAPPLE_BDIF_ALLOW_WRITES is set,
 *   and always on a read-only volume. With VMAPPLE_BDIF_FLUSH_WRITES a write
 *   is made durable (flush) before its status byte reports success.
 * - Unknown data flags, a sector descriptor whose len is not 16, guest
 *   memory faults and volume I/O errors give status 1 and a rate-limited log
 *   line. The status descriptor's len and flags are not checked (the
 *   reference writes one byte whatever they say).
 * - A failure in the middle of a transfer (I/O error, guest memory fault)
 *   may leave a prefix of the data buffer (or of the volume range) written;
 *   never anything outside it.
 *
 * The device holds no guest-visible state: reset does nothing, and a state
 * blob records only the configuration (which volumes, their capacities, the
 * flags), which a loading device must match.
 */
#ifndef LIBVMAPPLE_BDIF_H
#define LIBVMAPPLE_BDIF_H

#include "blockdev.h"
#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Base and size of the bdif window in the vmapple map. */
#define VMAPPLE_BDIF_BASE 0x30000000ULL
#define VMAPPLE_BDIF_SIZE 0x00200000ULL

/** The largest transfer one request may ask for (bytes). */
#define VMAPPLE_BDIF_MAX_TRANSFER (128ULL << 20)

/** Flags of vmapple_bdif_options. */
enum {
    /** Execute write requests (off by default: iBoot only reads). */
    VMAPPLE_BDIF_ALLOW_WRITES = 1u << 0,
    /**
     * Flush the volume after every write and before its status byte reports
     * success, so a write the guest sees complete is durable. Requires
     * VMAPPLE_BDIF_ALLOW_WRITES.
     */
    VMAPPLE_BDIF_FLUSH_WRITES = 1u << 1
};

/** Options of vmapple_bdif_create(). */
typedef struct vmapple_bdif_options {
    uint32_t size;  /**< sizeof, set by VMAPPLE_BDIF_OPTIONS_INIT */
    uint32_t flags; /**< VMAPPLE_BDIF_*; default 0 (read requests only) */
    /**
     * The root volume (unit 0), or NULL for none. The device takes its own
     * reference; the caller may release its reference after creation.
     */
    vmapple_blockdev *root;
    /** The aux volume (unit 1), or NULL for none. Same rules as root. */
    vmapple_blockdev *aux;
} vmapple_bdif_options;

#define VMAPPLE_BDIF_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_bdif_options)

/**
 * Create a bdif device.
 *
 * Needs the host's mem_read and mem_write; uses mem_map/mem_unmap when the
 * host offers them (zero-copy transfers).
 *
 * @param opts NULL for defaults: no volumes, read requests only.
 * @param[out] out the new device.
 * @return 0; -EINVAL for a NULL @p out, a bad options or host ops struct, a
 *         missing host callback, unknown flags or VMAPPLE_BDIF_FLUSH_WRITES
 *         without VMAPPLE_BDIF_ALLOW_WRITES (vmapple_last_error() names the
 *         option); -ENOMEM.
 */
VMAPPLE_API int vmapple_bdif_create(const vmapple_host_ops *ops, void *opaque,
                                    const vmapple_bdif_options *opts, vmapple_device **out);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_BDIF_H */
