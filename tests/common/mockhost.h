/* SPDX-License-Identifier: MIT */
/*
 * A mock host for unit tests: guest RAM in a buffer, interrupt lines, MSI
 * messages, BAR updates and log lines recorded for assertions. Every test
 * program shares it; devices see it only through vmapple_host_ops.
 */
#ifndef VMAPPLE_TEST_MOCKHOST_H
#define VMAPPLE_TEST_MOCKHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvmapple/libvmapple.h>

#define MOCK_MAX_LINES 64
#define MOCK_LOG_KEEP  32
#define MOCK_MAX_MSI   256

struct mock_host {
    uint64_t ram_base;
    uint64_t ram_size;
    uint8_t *ram;

    bool allow_map;     /* offer mem_map */
    uint64_t map_chunk; /* >0: mem_map returns at most this many bytes */
    unsigned maps_live; /* mem_map results not yet unmapped */
    unsigned maps_total;
    unsigned mem_reads, mem_writes;
    uint64_t bytes_read, bytes_written;
    int fail_reads, fail_writes; /* >0: fail this many more calls with -EFAULT */
    /*
     * Writes the host performed outside [guard_lo, guard_hi) while
     * guard_writes is set: a device wrote where the guest did not ask.
     */
    bool guard_writes;
    uint64_t guard_lo, guard_hi;
    unsigned stray_writes;
    /* Accesses whose range wraps the 64-bit space: the core must filter them. */
    unsigned wrapping_accesses;

    int irq_level[MOCK_MAX_LINES];
    unsigned irq_changes[MOCK_MAX_LINES];

    struct {
        uint64_t address;
        uint32_t data;
    } msi[MOCK_MAX_MSI];
    unsigned nr_msi;

    struct {
        uint32_t region;
        uint64_t address, size;
        int enabled;
    } last_bar;
    unsigned bar_updates;

    char log[MOCK_LOG_KEEP][512];
    int log_level[MOCK_LOG_KEEP];
    unsigned nr_log; /* total lines; the last MOCK_LOG_KEEP are kept */
    unsigned async_notifies;
};

/* Create a host with `ram_size` bytes of RAM at `ram_base`, zero-filled. */
struct mock_host *mock_host_new(uint64_t ram_base, uint64_t ram_size);
void mock_host_free(struct mock_host *h);
/* The ops table: every callback set (mem_map answers NULL unless allow_map). */
const vmapple_host_ops *mock_host_ops(void);

/* Host pointer for a guest address, or NULL if [gpa, gpa + len) is not RAM. */
void *mock_ram(struct mock_host *h, uint64_t gpa, uint64_t len);
/* Does any kept log line contain `needle`? */
bool mock_log_contains(const struct mock_host *h, const char *needle);
void mock_log_clear(struct mock_host *h);

#endif
