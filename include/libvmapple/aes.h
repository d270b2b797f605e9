/* SPDX-License-Identifier: MIT */
/**
 * @file aes.h
 * The vmapple AES engine: a command-FIFO AES block (ECB and CBC, 128-, 192-
 * and 256-bit keys) that reads and writes guest memory itself.
 *
 * Regions: 0 "aes-window1" (0x4000 bytes at 0x3022_0000: registers and the
 * command FIFO) and 1 "aes-window2" (0x4000 bytes at 0x3023_0000, reads 0).
 * One level-triggered interrupt, "aes", GIC SPI 0x12: asserted while
 * IRQ_STATUS & IRQ_ENABLE is non-zero.
 *
 * Both windows take 4- and 8-byte accesses at naturally aligned offsets (an
 * 8-byte access is two 4-byte accesses, low half first); other sizes and
 * alignments are guest errors: writes are ignored and reads return 0.
 *
 * Guest errors (a malformed or failing command, a DMA address that is not
 * guest RAM) never stop the device: the command is dropped, IRQ_STATUS bit 2
 * (INVALID_CMD) is set and the engine takes the next command.
 *
 * A DATA command whose DMA fails part-way has written the correct output
 * for a prefix of its blocks (a suffix when the destination overlaps the
 * source at a higher address) and nothing else; its IV context is left
 * unchanged. The host's mem_write may also have written a prefix of the
 * chunk that failed (see vmapple_host_ops.mem_write); nothing outside the
 * destination the guest named is ever written.
 *
 * Requires mem_read and mem_write; uses mem_map/mem_unmap when offered
 * (zero-copy DATA), irq_set and log when present.
 */
#ifndef LIBVMAPPLE_AES_H
#define LIBVMAPPLE_AES_H

#include "common.h"
#include "device.h"
#include "host.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Number of built-in keys: KEY command key select values 1..7. */
#define VMAPPLE_AES_BUILTIN_KEYS 7
/** Largest key in bytes (AES-256). */
#define VMAPPLE_AES_MAX_KEY 32

/** One built-in key, the value behind a KEY command's key select n (1..7). */
typedef struct vmapple_aes_builtin_key {
    /**
     * Key length in bytes: 16, 24 or 32. 0 keeps the library's default for
     * this select value: the reference's placeholder for 1..3 (a 32-byte key
     * whose first byte is n, the others 0), no key for 4..7 (a KEY command
     * selecting it fails with INVALID_CMD).
     */
    uint32_t length;
    /** The key bytes; bytes beyond length are ignored. */
    uint8_t key[VMAPPLE_AES_MAX_KEY];
} vmapple_aes_builtin_key;

/** Options of vmapple_aes_create(). Fields are only ever appended. */
typedef struct vmapple_aes_options {
    uint32_t size; /**< sizeof, set by VMAPPLE_AES_OPTIONS_INIT */
    /**
     * 0 (default, the reference's behaviour): a CBC DATA command leaves its
     * IV context unchanged. 1: it stores its last ciphertext block there, so
     * consecutive DATA commands continue one CBC chain (encrypt and decrypt,
     * in place or not). Other values are refused.
     */
    uint32_t cbc_chain_iv;
    /**
     * Device-unique hardware keys: builtin_keys[n - 1] is the key a KEY
     * command with key select n loads. Zero-filled entries keep the default
     * (see vmapple_aes_builtin_key.length).
     */
    vmapple_aes_builtin_key builtin_keys[VMAPPLE_AES_BUILTIN_KEYS];
} vmapple_aes_options;

#define VMAPPLE_AES_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_aes_options)

/**
 * Create an AES engine.
 *
 * @param ops host callbacks; mem_read and mem_write are required.
 * @param opaque passed to every callback.
 * @param opts NULL for the defaults.
 * @param[out] out the new device (destroy with vmapple_device_destroy()).
 * @return 0; -EINVAL for NULL @p ops or @p out, a host ops or options
 *         struct with a bad size field, a missing required callback, or an
 *         option out of range (vmapple_last_error() names it and its limit);
 *         -ENOMEM when out of memory; -ENOTSUP when the OpenSSL libcrypto in
 *         use provides no AES-ECB/CBC or SHA-256.
 */
VMAPPLE_API int vmapple_aes_create(const vmapple_host_ops *ops, void *opaque,
                                   const vmapple_aes_options *opts, vmapple_device **out);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_AES_H */
