/* SPDX-License-Identifier: MIT */
/*
 * An in-memory volume for device tests, served through the host-callback
 * blockdev backend: either backed by a buffer, or (for huge volumes) a
 * "pattern" volume whose bytes are computed from their offset. Failures can
 * be injected per operation; every call is counted.
 */
#ifndef VMAPPLE_TEST_MEMVOL_H
#define VMAPPLE_TEST_MEMVOL_H

#include <stdbool.h>
#include <stdint.h>

#include <libvmapple/libvmapple.h>

struct memvol {
    uint8_t *data; /* NULL: pattern volume (reads computed, writes counted only) */
    uint64_t capacity;
    int fail_reads, fail_writes, fail_flushes; /* >0: fail that many more calls with -EIO */
    unsigned reads, writes, flushes, closes;
    uint64_t bytes_read, bytes_written;
    uint64_t max_read_len, max_write_len; /* largest single call */
    /* Called from the flush callback before it returns (ordering checks). */
    void (*on_flush)(void *ctx);
    void *on_flush_ctx;
};

/* The byte a pattern volume (and a freshly made backed one) holds at `off`. */
static inline uint8_t memvol_pattern(uint64_t off)
{
    return (uint8_t)((off * 131u) ^ (off >> 9) ^ 0x5a);
}

/* A volume of `capacity` bytes (a multiple of 512), filled with the pattern. */
struct memvol *memvol_new(uint64_t capacity, bool backed);
void memvol_free(struct memvol *v);
/*
 * A blockdev over `v` (flags: VMAPPLE_BLOCKDEV_READ_ONLY to make it
 * read-only). The caller owns the reference.
 */
vmapple_blockdev *memvol_open(struct memvol *v, uint32_t flags);

#endif
