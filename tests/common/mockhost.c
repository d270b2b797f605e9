/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mockhost.h"

struct mock_host *mock_host_new(uint64_t ram_base, uint64_t ram_size)
{
    struct mock_host *h = calloc(1, sizeof(*h));

    if (!h) {
        abort();
    }
    h->ram_base = ram_base;
    h->ram_size = ram_size;
    h->ram = calloc(1, ram_size ? ram_size : 1);
    if (!h->ram) {
        abort();
    }
    return h;
}

void mock_host_free(struct mock_host *h)
{
    if (h) {
        free(h->ram);
        free(h);
    }
}

void *mock_ram(struct mock_host *h, uint64_t gpa, uint64_t len)
{
    if (gpa < h->ram_base || gpa - h->ram_base > h->ram_size ||
        len > h->ram_size - (gpa - h->ram_base)) {
        return NULL;
    }
    return h->ram + (gpa - h->ram_base);
}

/*
 * Guest RAM is shared with other CPUs: a naturally aligned access of 2, 4 or
 * 8 bytes is one load or store, as on real hardware (host.h asks this of
 * every host; sanitizer memcpy interceptors may copy byte by byte).
 */
static void copy_atomic(void *dst, const void *src, uint64_t len)
{
    if (len == 2 && !((uintptr_t)src & 1) && !((uintptr_t)dst & 1)) {
        __atomic_store_n((uint16_t *)dst, __atomic_load_n((const uint16_t *)src, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
    } else if (len == 4 && !((uintptr_t)src & 3) && !((uintptr_t)dst & 3)) {
        __atomic_store_n((uint32_t *)dst, __atomic_load_n((const uint32_t *)src, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
    } else if (len == 8 && !((uintptr_t)src & 7) && !((uintptr_t)dst & 7)) {
        __atomic_store_n((uint64_t *)dst, __atomic_load_n((const uint64_t *)src, __ATOMIC_RELAXED),
                         __ATOMIC_RELAXED);
    } else {
        memcpy(dst, src, len);
    }
}

static int mock_mem_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    struct mock_host *h = opaque;
    void *p;

    h->mem_reads++;
    if (len && gpa > UINT64_MAX - (len - 1)) {
        h->wrapping_accesses++;
    }
    if (h->fail_reads > 0) {
        h->fail_reads--;
        return -EFAULT;
    }
    p = mock_ram(h, gpa, len);
    if (!p) {
        return -EFAULT;
    }
    copy_atomic(buf, p, len);
    h->bytes_read += len;
    return 0;
}

static int mock_mem_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    struct mock_host *h = opaque;
    void *p;

    h->mem_writes++;
    if (len && gpa > UINT64_MAX - (len - 1)) {
        h->wrapping_accesses++;
    }
    if (h->fail_writes > 0) {
        h->fail_writes--;
        return -EFAULT;
    }
    p = mock_ram(h, gpa, len);
    if (!p) {
        return -EFAULT;
    }
    if (h->guard_writes && (gpa < h->guard_lo || gpa + len > h->guard_hi)) {
        h->stray_writes++;
    }
    copy_atomic(p, buf, len);
    h->bytes_written += len;
    return 0;
}

static void *mock_mem_map(void *opaque, uint64_t gpa, uint64_t len, int writable,
                          uint64_t *mapped_len)
{
    struct mock_host *h = opaque;
    uint64_t n = len;
    void *p;

    if (!h->allow_map) {
        return NULL;
    }
    if (len && gpa > UINT64_MAX - (len - 1)) {
        h->wrapping_accesses++;
    }
    if (h->map_chunk && n > h->map_chunk) {
        n = h->map_chunk;
    }
    p = mock_ram(h, gpa, n);
    if (!p) {
        /* Map the part that is RAM, like a host whose RAM ends mid-range. */
        if (gpa < h->ram_base || gpa - h->ram_base >= h->ram_size) {
            return NULL;
        }
        n = h->ram_size - (gpa - h->ram_base);
        p = h->ram + (gpa - h->ram_base);
    }
    if (writable && h->guard_writes && (gpa < h->guard_lo || gpa + n > h->guard_hi)) {
        h->stray_writes++;
    }
    h->maps_live++;
    h->maps_total++;
    *mapped_len = n;
    return p;
}

static void mock_mem_unmap(void *opaque, void *host, uint64_t len, int written)
{
    struct mock_host *h = opaque;
    (void)host;
    (void)len;
    (void)written;
    h->maps_live--;
}

static void mock_irq_set(void *opaque, uint32_t line, int level)
{
    struct mock_host *h = opaque;

    if (line < MOCK_MAX_LINES) {
        h->irq_level[line] = level;
        h->irq_changes[line]++;
    }
}

static void mock_msi_send(void *opaque, uint64_t address, uint32_t data)
{
    struct mock_host *h = opaque;

    if (h->nr_msi < MOCK_MAX_MSI) {
        h->msi[h->nr_msi].address = address;
        h->msi[h->nr_msi].data = data;
    }
    h->nr_msi++;
}

static void mock_log(void *opaque, int level, const char *message)
{
    struct mock_host *h = opaque;
    unsigned slot = h->nr_log % MOCK_LOG_KEEP;

    snprintf(h->log[slot], sizeof(h->log[slot]), "%s", message);
    h->log_level[slot] = level;
    h->nr_log++;
    if (getenv("MOCK_HOST_VERBOSE")) {
        fprintf(stderr, "[%s] %s\n", vmapple_log_level_name(level), message);
    }
}

static void mock_bar_update(void *opaque, uint32_t region, uint64_t address, uint64_t size,
                            int enabled)
{
    struct mock_host *h = opaque;

    h->last_bar.region = region;
    h->last_bar.address = address;
    h->last_bar.size = size;
    h->last_bar.enabled = enabled;
    h->bar_updates++;
}

static void mock_async_notify(void *opaque)
{
    struct mock_host *h = opaque;
    __atomic_fetch_add(&h->async_notifies, 1, __ATOMIC_RELAXED);
}

static const vmapple_host_ops mock_ops = {
    .size = sizeof(vmapple_host_ops),
    .mem_read = mock_mem_read,
    .mem_write = mock_mem_write,
    .mem_map = mock_mem_map,
    .mem_unmap = mock_mem_unmap,
    .irq_set = mock_irq_set,
    .msi_send = mock_msi_send,
    .log = mock_log,
    .pci_bar_update = mock_bar_update,
    .async_notify = mock_async_notify,
};

const vmapple_host_ops *mock_host_ops(void)
{
    return &mock_ops;
}

bool mock_log_contains(const struct mock_host *h, const char *needle)
{
    unsigned n = h->nr_log < MOCK_LOG_KEEP ? h->nr_log : MOCK_LOG_KEEP;

    for (unsigned i = 0; i < n; i++) {
        if (strstr(h->log[i], needle)) {
            return true;
        }
    }
    return false;
}

void mock_log_clear(struct mock_host *h)
{
    h->nr_log = 0;
    memset(h->log, 0, sizeof(h->log));
}
