/* SPDX-License-Identifier: MIT */
/*
 * DMA backends: the generic object (reference count, limits, occupancy,
 * serialisation) around a callbacks struct, and two implementations of the
 * callbacks: identity and a simulated DART.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

static char *dma_slot(vmapple_dma_backend *dma)
{
    return dma ? dma->last_error : NULL;
}

#define dma_error(dma, err, ...) vm_error_named("dma-backend", dma_slot(dma), (err), __VA_ARGS__)

int vm_dma_backend_new(const vmapple_dma_ops *ops, void *opaque, const char *name,
                       uint32_t max_mappings, uint64_t max_bytes, vmapple_dma_backend **out)
{
    vmapple_dma_ops copy = VMAPPLE_DMA_OPS_INIT;
    vmapple_dma_backend *dma;
    uint32_t given;

    if (vm_copy_ops(&copy, sizeof(copy), ops, &given) < 0) {
        return dma_error(NULL, -EINVAL,
                         "dma ops: size field is %u; set it with VMAPPLE_DMA_OPS_INIT", given);
    }
    if (!copy.map || !copy.unmap) {
        return dma_error(NULL, -EINVAL, "dma ops: %s is required", copy.map ? "unmap" : "map");
    }
    dma = calloc(1, sizeof(*dma));
    if (!dma) {
        return -ENOMEM;
    }
    dma->refs = 1;
    dma->ops = copy;
    dma->opaque = opaque;
    dma->name = name;
    dma->max_mappings = max_mappings;
    dma->max_bytes = max_bytes;
    pthread_mutex_init(&dma->lock, NULL);
    *out = dma;
    return 0;
}

void vm_dma_backend_ref(vmapple_dma_backend *dma)
{
    __atomic_add_fetch(&dma->refs, 1, __ATOMIC_RELAXED);
}

const char *vm_dma_backend_name(const vmapple_dma_backend *dma)
{
    return dma->name;
}

VMAPPLE_API void vmapple_dma_backend_release(vmapple_dma_backend *dma)
{
    if (!dma || __atomic_sub_fetch(&dma->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    if (dma->ops.close) {
        dma->ops.close(dma->opaque);
    }
    pthread_mutex_destroy(&dma->lock);
    free(dma);
}

static int copy_limits(const vmapple_dma_backend_options *user, vmapple_dma_backend_options *opts)
{
    return vm_copy_sized(opts, sizeof(*opts), user, "dma backend options");
}

VMAPPLE_API int vmapple_dma_backend_create(const vmapple_dma_ops *ops, void *opaque,
                                           const vmapple_dma_backend_options *user_opts,
                                           vmapple_dma_backend **out)
{
    vmapple_dma_backend_options opts = VMAPPLE_DMA_BACKEND_OPTIONS_INIT;
    int ret;

    if (!ops || !out) {
        return dma_error(NULL, -EINVAL, "create: NULL %s", ops ? "out" : "ops");
    }
    ret = copy_limits(user_opts, &opts);
    if (ret < 0) {
        return ret;
    }
    return vm_dma_backend_new(ops, opaque, "host", opts.max_mappings, opts.max_bytes, out);
}

void vm_dma_backend_lock(vmapple_dma_backend *dma)
{
    pthread_mutex_lock(&dma->lock);
}

void vm_dma_backend_unlock(vmapple_dma_backend *dma)
{
    pthread_mutex_unlock(&dma->lock);
}

int vm_dma_backend_map_refused(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len)
{
    int ret;

    if (len == 0 || !vm_range_ok(gpa, len)) {
        return dma_error(dma, -EINVAL, "map: %llu bytes at 0x%llx %s", (unsigned long long)len,
                         (unsigned long long)gpa, len ? "wrap around" : "(empty)");
    }
    if (dma->max_mappings && dma->mappings >= dma->max_mappings) {
        ret = dma_error(dma, -ENOSPC, "%s: %u live mappings, the limit (max_mappings) is %u",
                        dma->name, dma->mappings, dma->max_mappings);
    } else {
        ret = dma_error(dma, -ENOSPC,
                        "%s: %llu bytes registered, %llu more would pass the limit (max_bytes) "
                        "of %llu",
                        dma->name, (unsigned long long)dma->bytes, (unsigned long long)len,
                        (unsigned long long)dma->max_bytes);
    }
    dma->failed_maps++;
    return ret;
}

int vm_dma_backend_map_failed(vmapple_dma_backend *dma, int ret, uint64_t gpa, uint64_t len,
                              uint64_t addr, uint64_t blen)
{
    if (ret > 0) {
        ret = -EIO;
    }
    if (ret < 0) {
        dma_error(dma, ret, "%s: map of %llu bytes at 0x%llx failed: %s", dma->name,
                  (unsigned long long)len, (unsigned long long)gpa, vmapple_strerror(ret));
    } else {
        /* A backend bug: never hand a nonsensical range to the guest. */
        dma->ops.unmap(dma->opaque, gpa, len, addr, blen);
        ret = dma_error(dma, -EIO, "%s: map answered %llu bytes at bus 0x%llx for %llu bytes",
                        dma->name, (unsigned long long)blen, (unsigned long long)addr,
                        (unsigned long long)len);
    }
    dma->failed_maps++;
    return ret;
}

int vm_dma_backend_unmap_locked(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len,
                                uint64_t bus_addr, uint64_t bus_len)
{
    int ret = dma->ops.unmap(dma->opaque, gpa, len, bus_addr, bus_len);

    if (ret > 0) {
        ret = -EIO;
    }
    if (ret < 0) {
        return dma_error(dma, ret, "%s: unmap of bus 0x%llx (%llu bytes) failed: %s", dma->name,
                         (unsigned long long)bus_addr, (unsigned long long)bus_len,
                         vmapple_strerror(ret));
    }
    /* Counts never go below zero, whatever a caller unmaps. */
    dma->mappings -= dma->mappings ? 1 : 0;
    dma->bytes -= VM_MIN(len, dma->bytes);
    return 0;
}

VMAPPLE_API int vmapple_dma_backend_map(vmapple_dma_backend *dma, uint64_t gpa, void *host,
                                        uint64_t len, uint32_t flags, uint64_t *bus_addr,
                                        uint64_t *bus_len)
{
    int ret;

    if (!dma || !bus_addr || !bus_len) {
        return dma_error(dma, -EINVAL, "map: NULL argument");
    }
    pthread_mutex_lock(&dma->lock);
    ret = len == 0 || !vm_range_ok(gpa, len)
              ? vm_dma_backend_map_refused(dma, gpa, len)
              : vm_dma_backend_map_locked(dma, gpa, host, len, flags, bus_addr, bus_len);
    pthread_mutex_unlock(&dma->lock);
    return ret;
}

VMAPPLE_API int vmapple_dma_backend_unmap(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len,
                                          uint64_t bus_addr, uint64_t bus_len)
{
    int ret;

    if (!dma) {
        return dma_error(NULL, -EINVAL, "unmap: NULL backend");
    }
    pthread_mutex_lock(&dma->lock);
    ret = vm_dma_backend_unmap_locked(dma, gpa, len, bus_addr, bus_len);
    pthread_mutex_unlock(&dma->lock);
    return ret;
}

VMAPPLE_API int vmapple_dma_backend_get_occupancy(vmapple_dma_backend *dma,
                                                  vmapple_dma_occupancy *occ)
{
    vmapple_dma_occupancy v = VMAPPLE_DMA_OCCUPANCY_INIT;

    if (!dma || !occ || occ->size < 8) {
        return dma_error(dma, -EINVAL, "get_occupancy: NULL argument or size below 8");
    }
    pthread_mutex_lock(&dma->lock);
    v.mappings = dma->mappings;
    v.max_mappings = dma->max_mappings;
    v.bytes = dma->bytes;
    v.max_bytes = dma->max_bytes;
    v.failed_maps = dma->failed_maps;
    pthread_mutex_unlock(&dma->lock);
    vm_fill_sized(occ, &v, sizeof(v));
    return 0;
}

VMAPPLE_API const char *vmapple_dma_backend_last_error(const vmapple_dma_backend *dma)
{
    return dma ? dma->last_error : "NULL DMA backend";
}

/* ---- identity: bus address = guest-physical address ---- */

static int identity_map(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                        uint64_t *bus_addr, uint64_t *bus_len)
{
    (void)opaque;
    (void)host;
    (void)flags;
    *bus_addr = gpa;
    *bus_len = len;
    return 0;
}

static int identity_unmap(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr,
                          uint64_t bus_len)
{
    (void)opaque;
    (void)gpa;
    (void)len;
    (void)bus_addr;
    (void)bus_len;
    return 0;
}

VMAPPLE_API int vmapple_dma_backend_create_identity(const vmapple_dma_backend_options *user_opts,
                                                    vmapple_dma_backend **out)
{
    static const vmapple_dma_ops identity_ops = {
        .size = sizeof(vmapple_dma_ops),
        .map = identity_map,
        .unmap = identity_unmap,
    };
    vmapple_dma_backend_options opts = VMAPPLE_DMA_BACKEND_OPTIONS_INIT;
    int ret;

    if (!out) {
        return dma_error(NULL, -EINVAL, "create_identity: NULL out");
    }
    ret = copy_limits(user_opts, &opts);
    if (ret < 0) {
        return ret;
    }
    return vm_dma_backend_new(&identity_ops, NULL, "identity", opts.max_mappings, opts.max_bytes,
                              out);
}

/* ---- the simulated DART ---- */

#define DART_PAGE      ((uint64_t)VMAPPLE_SIM_DART_PAGE)
#define DART_MAX_BYTES (64ull << 30)
#define DART_MAX_MAPS  (1u << 20)

/* What the DART keeps of a mapping, on the mapping's first page (len 0: none starts there). */
struct dart_entry {
    uint64_t gpa, len;
};

struct sim_dart {
    uint64_t bus_base;
    uint64_t pages;   /* pages in the window */
    uint64_t *bitmap; /* bit p set: page p is in use */
    uint64_t cursor;  /* next-fit start */
    uint64_t live;    /* mappings */
    /*
     * Indexed by page. A bus address names its first page, so unmap finds
     * the mapping directly; its other pages follow from gpa and len. The
     * array is calloc'd: pages never used cost no memory.
     */
    struct dart_entry *first;
};

/* The first page in [from, to) that is used (or free, `used` false), or `to`; a word at a time. */
static uint64_t first_page(const struct sim_dart *d, uint64_t from, uint64_t to, bool used)
{
    uint64_t p = from;

    while (p < to) {
        uint64_t word = (used ? d->bitmap[p / 64] : ~d->bitmap[p / 64]) >> (p % 64);
        if (word) {
            p += (uint64_t)__builtin_ctzll(word);
            return p < to ? p : to;
        }
        p = (p / 64 + 1) * 64;
    }
    return to;
}

static void mark_pages(struct sim_dart *d, uint64_t from, uint64_t n, bool used)
{
    if (from % 64 + n <= 64) {
        uint64_t mask = (UINT64_MAX >> (64 - n)) << (from % 64);
        d->bitmap[from / 64] = used ? d->bitmap[from / 64] | mask : d->bitmap[from / 64] & ~mask;
        return;
    }
    for (uint64_t p = from; p < from + n;) {
        uint64_t bit = p % 64;
        uint64_t take = VM_MIN(64 - bit, from + n - p);
        uint64_t mask = (UINT64_MAX >> (64 - take)) << bit;
        if (used) {
            d->bitmap[p / 64] |= mask;
        } else {
            d->bitmap[p / 64] &= ~mask;
        }
        p += take;
    }
}

/* n free pages starting on an odd page in [lo, hi), or UINT64_MAX. */
static uint64_t find_run(const struct sim_dart *d, uint64_t lo, uint64_t hi, uint64_t n)
{
    uint64_t p = lo | 1;

    while (p < hi && n <= hi - p) {
        uint64_t q = first_page(d, p, p + n, true);
        if (q == p + n) {
            return p;
        }
        /* Skip past the used page and the rest of its used run. */
        p = first_page(d, q + 1, hi, false) | 1;
    }
    return UINT64_MAX;
}

/* Record a mapping of n pages at page p and answer its bus address. */
static inline void dart_record(struct sim_dart *d, uint64_t p, uint64_t n, uint64_t gpa,
                               uint64_t len, uint64_t *bus_addr, uint64_t *bus_len)
{
    d->first[p].gpa = gpa;
    d->first[p].len = len;
    d->cursor = p + n;
    d->live++;
    *bus_addr = d->bus_base + p * DART_PAGE + (gpa & (DART_PAGE - 1));
    *bus_len = len;
}

/* The slow path: search the window for n free pages, from the cursor on, then from the start. */
static __attribute__((noinline)) int dart_map_search(struct sim_dart *d, uint64_t n, uint64_t gpa,
                                                     uint64_t len, uint64_t *bus_addr,
                                                     uint64_t *bus_len)
{
    uint64_t p = find_run(d, d->cursor, d->pages, n);

    if (p == UINT64_MAX) {
        /*
         * No run starts at or after the cursor, so only starts up to it are
         * left: end the search there. The cursor is at most d->pages.
         */
        uint64_t hi = n < d->pages - d->cursor ? d->cursor + n : d->pages;
        p = find_run(d, 0, hi, n);
    }
    if (p == UINT64_MAX) {
        return -ENOSPC; /* the window is fragmented */
    }
    mark_pages(d, p, n, true);
    dart_record(d, p, n, gpa, len, bus_addr, bus_len);
    return 0;
}

static int dart_map(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                    uint64_t *bus_addr, uint64_t *bus_len)
{
    struct sim_dart *d = opaque;
    uint64_t n = ((gpa & (DART_PAGE - 1)) + len + DART_PAGE - 1) / DART_PAGE;
    uint64_t p = d->cursor | 1;
    uint64_t mask;

    (void)host;
    (void)flags;
    /*
     * Most mappings are small and the pages after the cursor free: one word
     * to test and set. The search is a tail call, so this path saves no
     * registers.
     */
    if (p % 64 + n > 64) {
        return dart_map_search(d, n, gpa, len, bus_addr, bus_len);
    }
    /* Pages past the window are marked used, so this also keeps the run inside it. */
    mask = (UINT64_MAX >> (64 - n)) << (p % 64);
    if (d->bitmap[p / 64] & mask) {
        return dart_map_search(d, n, gpa, len, bus_addr, bus_len);
    }
    d->bitmap[p / 64] |= mask;
    dart_record(d, p, n, gpa, len, bus_addr, bus_len);
    return 0;
}

static int dart_unmap(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr, uint64_t bus_len)
{
    struct sim_dart *d = opaque;
    struct dart_entry *e;
    uint64_t page, off;

    if (bus_addr < d->bus_base || (page = (bus_addr - d->bus_base) / DART_PAGE) >= d->pages) {
        return -ENOENT;
    }
    e = &d->first[page];
    off = (bus_addr - d->bus_base) % DART_PAGE;
    if (e->len == 0 || off != (e->gpa & (DART_PAGE - 1))) {
        return -ENOENT; /* no mapping starts at this bus address */
    }
    if (e->gpa != gpa || e->len != len || bus_len != len) {
        return -EINVAL;
    }
    mark_pages(d, page, (off + len + DART_PAGE - 1) / DART_PAGE, false);
    e->len = 0;
    if (--d->live == 0) {
        /* Empty: start over at the bottom, where the pages and their entries are still cached. */
        d->cursor = 0;
    }
    return 0;
}

static void dart_close(void *opaque)
{
    struct sim_dart *d = opaque;

    free(d->first);
    free(d->bitmap);
    free(d);
}

VMAPPLE_API int vmapple_dma_backend_create_sim_dart(const vmapple_sim_dart_options *user_opts,
                                                    vmapple_dma_backend **out)
{
    static const vmapple_dma_ops dart_ops = {
        .size = sizeof(vmapple_dma_ops),
        .map = dart_map,
        .unmap = dart_unmap,
        .close = dart_close,
    };
    vmapple_sim_dart_options opts = VMAPPLE_SIM_DART_OPTIONS_INIT;
    struct sim_dart *d;
    uint64_t pages;
    int ret;

    if (!out) {
        return dma_error(NULL, -EINVAL, "create_sim_dart: NULL out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "sim-dart options");
    if (ret < 0) {
        return ret;
    }
    opts.max_mappings = opts.max_mappings ? opts.max_mappings : VMAPPLE_SIM_DART_MAX_MAPPINGS;
    opts.max_bytes = opts.max_bytes ? opts.max_bytes : VMAPPLE_SIM_DART_MAX_BYTES;
    opts.bus_base = opts.bus_base ? opts.bus_base : VMAPPLE_SIM_DART_BUS_BASE;
    if (opts.max_mappings > DART_MAX_MAPS) {
        return dma_error(NULL, -EINVAL, "sim-dart: option max_mappings is %u, the limit is %u",
                         opts.max_mappings, DART_MAX_MAPS);
    }
    if (opts.max_bytes > DART_MAX_BYTES) {
        return dma_error(NULL, -EINVAL,
                         "sim-dart: option max_bytes is %llu, the limit is %llu (64 GiB)",
                         (unsigned long long)opts.max_bytes, (unsigned long long)DART_MAX_BYTES);
    }
    /*
     * Room for every byte twice over plus four pages per mapping (its
     * partial pages and its odd start), so fragmentation rarely refuses a
     * mapping within the limits.
     */
    pages = 2 * ((opts.max_bytes + DART_PAGE - 1) / DART_PAGE) + 4ull * opts.max_mappings + 2;
    if (opts.bus_base % DART_PAGE || opts.bus_base > UINT64_MAX - pages * DART_PAGE) {
        return dma_error(NULL, -EINVAL,
                         "sim-dart: option bus_base 0x%llx is not a multiple of 16 KiB or its "
                         "window of 0x%llx bytes wraps",
                         (unsigned long long)opts.bus_base,
                         (unsigned long long)(pages * DART_PAGE));
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->bus_base = opts.bus_base;
    d->pages = pages;
    /*
     * The bitmap runs on to the word after the one holding page `pages`
     * (the fast path of dart_map may look there), with every page past the
     * window marked used.
     */
    d->bitmap = calloc((size_t)(pages / 64 + 2), sizeof(uint64_t));
    d->first = calloc((size_t)pages, sizeof(*d->first));
    if (!d->bitmap || !d->first) {
        dart_close(d);
        return -ENOMEM;
    }
    d->bitmap[pages / 64] = UINT64_MAX << (pages % 64);
    d->bitmap[pages / 64 + 1] = UINT64_MAX;
    ret = vm_dma_backend_new(&dart_ops, d, "sim-dart", opts.max_mappings, opts.max_bytes, out);
    if (ret < 0) {
        dart_close(d);
    }
    return ret;
}
