/* SPDX-License-Identifier: MIT */
/*
 * DMA backends: identity, the simulated DART (its default platform limits
 * exactly at and one past, configurable limits, unaligned non-overlapping
 * bus addresses, unmap checks, options) and host-supplied callbacks (limits
 * enforced on top, bad answers refused, reference counting).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libvmapple/libvmapple.h>

static vmapple_dma_occupancy occupancy(vmapple_dma_backend *dma)
{
    vmapple_dma_occupancy o = VMAPPLE_DMA_OCCUPANCY_INIT;
    assert_int_equal(vmapple_dma_backend_get_occupancy(dma, &o), 0);
    return o;
}

static void test_identity(void **state)
{
    vmapple_dma_backend_options o = VMAPPLE_DMA_BACKEND_OPTIONS_INIT;
    vmapple_dma_backend *dma;
    uint64_t bus, len;
    vmapple_dma_occupancy occ;

    (void)state;
    assert_int_equal(vmapple_dma_backend_create_identity(NULL, &dma), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x70001234, NULL, 0x100, 0, &bus, &len), 0);
    assert_int_equal(bus, 0x70001234);
    assert_int_equal(len, 0x100);
    occ = occupancy(dma);
    assert_int_equal(occ.mappings, 1);
    assert_int_equal(occ.bytes, 0x100);
    assert_int_equal(occ.max_mappings, 0);
    assert_int_equal(occ.max_bytes, 0);
    /* Programming errors of the caller. */
    assert_int_equal(vmapple_dma_backend_map(dma, 0, NULL, 0, 0, &bus, &len), -EINVAL);
    assert_int_equal(vmapple_dma_backend_map(dma, UINT64_MAX, NULL, 2, 0, &bus, &len), -EINVAL);
    assert_int_equal(vmapple_dma_backend_map(dma, 0, NULL, 1, 0, NULL, &len), -EINVAL);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70001234, 0x100, bus, len), 0);
    occ = occupancy(dma);
    assert_int_equal(occ.mappings, 0);
    assert_int_equal(occ.bytes, 0);
    /* Counts never go below zero. */
    assert_int_equal(vmapple_dma_backend_unmap(dma, 1, 0x100, 1, 0x100), 0);
    occ = occupancy(dma);
    assert_int_equal(occ.mappings, 0);
    assert_int_equal(occ.bytes, 0);
    vmapple_dma_backend_release(dma);

    /* Limits on an identity backend, at and one past. */
    o.max_mappings = 2;
    o.max_bytes = 0x300;
    assert_int_equal(vmapple_dma_backend_create_identity(&o, &dma), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x1000, NULL, 0x100, 0, &bus, &len), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x201, 0, &bus, &len), -ENOSPC);
    assert_non_null(strstr(vmapple_dma_backend_last_error(dma), "max_bytes"));
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x200, 0, &bus, &len), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x3000, NULL, 1, 0, &bus, &len), -ENOSPC);
    assert_non_null(strstr(vmapple_dma_backend_last_error(dma), "max_mappings"));
    assert_int_equal(occupancy(dma).failed_maps, 2);
    vmapple_dma_backend_release(dma);
    vmapple_dma_backend_release(NULL);
    assert_int_equal(vmapple_dma_backend_create_identity(NULL, NULL), -EINVAL);
}

static void test_sim_dart_defaults(void **state)
{
    vmapple_dma_backend *dma;
    vmapple_dma_occupancy occ;
    uint64_t bus, len, big = VMAPPLE_SIM_DART_MAX_BYTES, first_bus = 0;

    (void)state;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &dma), 0);
    occ = occupancy(dma);
    assert_int_equal(occ.max_bytes, 1536ull << 20);
    assert_int_equal(occ.max_mappings, 65536);
    /* Exactly 1.5 GiB in one mapping, then one byte more. */
    assert_int_equal(vmapple_dma_backend_map(dma, 0x80000000, NULL, big, 0, &bus, &len), 0);
    assert_int_equal(len, big);
    assert_int_equal(occupancy(dma).bytes, big);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x10000000, NULL, 1, 0, &bus, &len), -ENOSPC);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x80000000, big, 0, big), -ENOENT);
    vmapple_dma_backend_release(dma);

    /* Exactly 65536 live mappings, then one more. */
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &dma), 0);
    for (uint32_t i = 0; i < 65536; i++) {
        assert_int_equal(vmapple_dma_backend_map(dma, 0x70000000ull + (uint64_t)i * 0x1000, NULL,
                                                 0x100, 0, &bus, &len),
                         0);
        first_bus = i == 0 ? bus : first_bus;
    }
    occ = occupancy(dma);
    assert_int_equal(occ.mappings, 65536);
    assert_int_equal(occ.bytes, 65536ull * 0x100);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x1000, NULL, 0x100, 0, &bus, &len), -ENOSPC);
    assert_non_null(strstr(vmapple_dma_backend_last_error(dma), "max_mappings"));
    /* Freeing one makes room for exactly one. */
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000000ull, 0x100, first_bus, 0x100), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x1000, NULL, 0x100, 0, &bus, &len), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), -ENOSPC);
    assert_int_equal(occupancy(dma).mappings, 65536);
    vmapple_dma_backend_release(dma);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_sim_dart_addresses(void **state)
{
    enum { N = 4000 };
    vmapple_dma_backend *dma;
    static uint64_t ranges[N][2], gpa[N], lens[N];
    uint64_t seed = 0x1234567, bus, len;

    (void)state;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &dma), 0);
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        /* Guest buffers with every alignment, many of them 64 KiB aligned. */
        gpa[i] = 0x70000000ull + ((seed >> 20) % 0x40000000ull);
        if (i % 3 == 0) {
            gpa[i] &= ~0xffffull;
        }
        lens[i] = 1 + (seed >> 44) % 0x30000;
        assert_int_equal(vmapple_dma_backend_map(dma, gpa[i], NULL, lens[i], 0, &bus, &len), 0);
        assert_int_equal(len, lens[i]);
        /* The offset inside the 16 KiB page is kept, as a DART does... */
        assert_int_equal(bus & 0x3fff, gpa[i] & 0x3fff);
        /* ...and nothing is aligned to more than 16 KiB. */
        assert_int_not_equal(bus & 0x4000, 0);
        assert_true(bus >= VMAPPLE_SIM_DART_BUS_BASE);
        ranges[i][0] = bus;
        ranges[i][1] = bus + len;
    }
    /* No two live mappings overlap. */
    qsort(ranges, N, sizeof(ranges[0]), cmp_u64);
    for (int i = 1; i < N; i++) {
        assert_true(ranges[i - 1][1] <= ranges[i][0]);
    }
    assert_int_equal(occupancy(dma).mappings, N);
    vmapple_dma_backend_release(dma);
}

static void test_sim_dart_unmap(void **state)
{
    vmapple_sim_dart_options o = VMAPPLE_SIM_DART_OPTIONS_INIT;
    vmapple_dma_backend *dma;
    uint64_t bus, len, bus2, len2;

    (void)state;
    o.max_mappings = 1;
    o.max_bytes = 0x4000;
    o.bus_base = 0x100000000ull;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x70000100, NULL, 0x4000, 0, &bus, &len), 0);
    assert_true(bus >= 0x100000000ull && bus < 0x200000000ull);
    assert_int_equal(bus & 0x3fff, 0x100);
    /* Unknown bus address, wrong length or gpa: refused, the mapping stays. */
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000100, 0x4000, bus + 1, len), -ENOENT);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000100, 0x3000, bus, 0x3000), -EINVAL);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000000, 0x4000, bus, len), -EINVAL);
    assert_int_equal(occupancy(dma).mappings, 1);
    /* Exactly at both limits; freeing makes room again. */
    assert_int_equal(vmapple_dma_backend_map(dma, 0x70008000, NULL, 1, 0, &bus2, &len2), -ENOSPC);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000100, 0x4000, bus, len), 0);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000100, 0x4000, bus, len), -ENOENT);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x70008000, NULL, 0x4000, 0, &bus2, &len2), 0);
    assert_int_equal(occupancy(dma).bytes, 0x4000);
    vmapple_dma_backend_release(dma);

    /*
     * Next-fit: a mapping goes after the last one even when lower pages are
     * free; once none is live, allocation starts over at the bottom.
     */
    o.max_mappings = 4;
    o.max_bytes = 0x40000;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), 0);
    {
        uint64_t b[3], l;
        assert_int_equal(vmapple_dma_backend_map(dma, 0x70000000, NULL, 0x4000, 0, &b[0], &l), 0);
        assert_int_equal(b[0], o.bus_base + 1 * 0x4000); /* page 1: the first odd page */
        assert_int_equal(vmapple_dma_backend_map(dma, 0x70004000, NULL, 0x4000, 0, &b[1], &l), 0);
        assert_int_equal(b[1], o.bus_base + 3 * 0x4000);
        assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000000, 0x4000, b[0], l), 0);
        assert_int_equal(vmapple_dma_backend_map(dma, 0x70008000, NULL, 0x4000, 0, &b[2], &l), 0);
        assert_int_equal(b[2], o.bus_base + 5 * 0x4000); /* not page 1, though it is free */
        assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70004000, 0x4000, b[1], l), 0);
        assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70008000, 0x4000, b[2], l), 0);
        assert_int_equal(vmapple_dma_backend_map(dma, 0x7000c000, NULL, 0x4000, 0, &b[0], &l), 0);
        assert_int_equal(b[0], o.bus_base + 1 * 0x4000); /* empty: from the bottom again */
        assert_int_equal(vmapple_dma_backend_unmap(dma, 0x7000c000, 0x4000, b[0], l), 0);
    }
    vmapple_dma_backend_release(dma);

    /* A bus address on a later page of a live mapping names no mapping. */
    o.max_bytes = 0x8000;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), 0);
    assert_int_equal(vmapple_dma_backend_map(dma, 0x70000000, NULL, 0x8000, 0, &bus, &len), 0);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70004000, 0x4000, bus + 0x4000, 0x4000),
                     -ENOENT);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000000, 0x8000, bus + 0x4000, len),
                     -ENOENT);
    assert_int_equal(occupancy(dma).mappings, 1);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x70000000, 0x8000, bus, len), 0);
    vmapple_dma_backend_release(dma);
}

/*
 * Random MAP and UNMAP traffic on a small window, against a model of its
 * pages: each mapping takes free pages starting on an odd page, keeps the
 * offset in its page, and the window refuses (ENOSPC) only when the byte
 * limit would be passed or no such run of free pages exists. Small windows
 * make the allocator wrap, cross bitmap words and fall off its fast path.
 */
static void test_sim_dart_churn(void **state)
{
    enum { MAPS = 48, ITER = 20000 };
    const uint64_t page = VMAPPLE_SIM_DART_PAGE, base = 0x200000000ull;
    vmapple_sim_dart_options o = VMAPPLE_SIM_DART_OPTIONS_INIT;
    struct {
        uint64_t gpa, len, bus;
    } live[MAPS];
    static uint8_t used[4096];
    uint64_t seed = 0xfeedbeef, bytes = 0, pages;
    unsigned nr = 0, maps = 0, unmaps = 0, refused = 0;
    vmapple_dma_backend *dma;

    (void)state;
    o.max_mappings = MAPS;
    o.max_bytes = 1ull << 20;
    o.bus_base = base;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), 0);
    /* The window as dma-backend.c sizes it: twice the bytes plus four pages a mapping, plus 2. */
    pages = 2 * (o.max_bytes / page) + 4ull * MAPS + 2;
    assert_true(pages <= sizeof(used));
    for (int it = 0; it < ITER; it++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if (nr < MAPS && (nr == 0 || (seed >> 60) < 9)) {
            uint64_t gpa = 0x70000000ull + ((seed >> 8) % 0x10000000ull);
            uint64_t len = 1 + (seed >> 33) % (5 * page);
            uint64_t off = gpa % page, n = (off + len + page - 1) / page, bus, blen;
            int ret = vmapple_dma_backend_map(dma, gpa, NULL, len, 0, &bus, &blen);
            if (ret == -ENOSPC) {
                /* Refused: over the byte limit, or no odd-started run of n free pages. */
                if (bytes + len <= o.max_bytes) {
                    for (uint64_t p = 1; p + n <= pages; p += 2) {
                        uint64_t k = 0;
                        while (k < n && !used[p + k]) {
                            k++;
                        }
                        assert_true(k < n);
                    }
                }
                refused++;
                continue;
            }
            assert_int_equal(ret, 0);
            assert_int_equal(blen, len);
            assert_int_equal(bus % page, off);
            assert_true(bus >= base);
            assert_int_equal(((bus - base) / page) % 2, 1);
            assert_true((bus - base) / page + n <= pages);
            for (uint64_t p = (bus - base) / page, k = 0; k < n; k++) {
                assert_int_equal(used[p + k], 0);
                used[p + k] = 1;
            }
            live[nr].gpa = gpa;
            live[nr].len = len;
            live[nr].bus = bus;
            nr++;
            bytes += len;
            maps++;
        } else {
            unsigned i = (unsigned)((seed >> 20) % nr);
            uint64_t off = live[i].bus % page, n = (off + live[i].len + page - 1) / page;
            assert_int_equal(
                vmapple_dma_backend_unmap(dma, live[i].gpa, live[i].len, live[i].bus, live[i].len),
                0);
            for (uint64_t p = (live[i].bus - base) / page, k = 0; k < n; k++) {
                used[p + k] = 0;
            }
            bytes -= live[i].len;
            live[i] = live[--nr];
            unmaps++;
        }
        assert_int_equal(occupancy(dma).mappings, nr);
        assert_int_equal(occupancy(dma).bytes, bytes);
    }
    /* The traffic did what it is for: thousands of each, and some refusals. */
    assert_true(maps > 5000 && unmaps > 5000);
    assert_true(refused > 0);
    vmapple_dma_backend_release(dma);
}

static void test_sim_dart_options(void **state)
{
    vmapple_sim_dart_options o = VMAPPLE_SIM_DART_OPTIONS_INIT;
    vmapple_dma_backend *dma;

    (void)state;
    o.max_mappings = (1u << 20) + 1;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "max_mappings"));
    o.max_mappings = 1u << 20;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), 0);
    assert_int_equal(occupancy(dma).max_mappings, 1u << 20);
    vmapple_dma_backend_release(dma);
    o.max_mappings = 0;
    o.max_bytes = (64ull << 30) + 1;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "max_bytes"));
    o.max_bytes = 0;
    o.bus_base = 0x1000;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "bus_base"));
    o.bus_base = UINT64_MAX & ~0x3fffull;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), -EINVAL);
    o.size = 2;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&o, &dma), -EINVAL);
}

struct host_dma {
    unsigned maps, unmaps, closes;
    int answer;
    uint64_t bus_len; /* 0: the length asked */
    uint64_t bus;
};

static int host_map(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                    uint64_t *bus_addr, uint64_t *bus_len)
{
    struct host_dma *h = opaque;

    (void)gpa;
    (void)host;
    (void)flags;
    h->maps++;
    *bus_addr = h->bus;
    *bus_len = h->bus_len ? h->bus_len : len;
    return h->answer;
}

static int host_unmap(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr, uint64_t bus_len)
{
    struct host_dma *h = opaque;

    (void)gpa;
    (void)len;
    (void)bus_addr;
    (void)bus_len;
    h->unmaps++;
    return 0;
}

static void host_close(void *opaque)
{
    ((struct host_dma *)opaque)->closes++;
}

static void test_host_callbacks(void **state)
{
    struct host_dma h = { 0 };
    vmapple_dma_ops ops = VMAPPLE_DMA_OPS_INIT;
    vmapple_dma_backend_options o = VMAPPLE_DMA_BACKEND_OPTIONS_INIT;
    vmapple_dma_backend *dma;
    uint64_t bus, len;

    (void)state;
    ops.map = host_map;
    assert_int_equal(vmapple_dma_backend_create(&ops, &h, NULL, &dma), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "unmap"));
    ops.unmap = host_unmap;
    ops.close = host_close;
    assert_int_equal(vmapple_dma_backend_create(NULL, &h, NULL, &dma), -EINVAL);
    o.max_mappings = 1;
    assert_int_equal(vmapple_dma_backend_create(&ops, &h, &o, &dma), 0);
    h.bus = 0xabc000;
    assert_int_equal(vmapple_dma_backend_map(dma, 0x1000, NULL, 0x100, 0, &bus, &len), 0);
    assert_int_equal(bus, 0xabc000);
    assert_int_equal(len, 0x100);
    /* The library's limit, before the host is asked. */
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), -ENOSPC);
    assert_int_equal(h.maps, 1);
    assert_int_equal(vmapple_dma_backend_unmap(dma, 0x1000, 0x100, 0xabc000, 0x100), 0);
    /* The host's own refusal is passed on. */
    h.answer = -EFAULT;
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), -EFAULT);
    /* Nonsense answers (too long, empty, wrapping) are refused and undone. */
    h.answer = 0;
    h.bus_len = 0x101;
    h.unmaps = 0;
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), -EIO);
    h.bus_len = 0x10;
    h.bus = UINT64_MAX - 4;
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), -EIO);
    assert_int_equal(h.unmaps, 2);
    assert_int_equal(occupancy(dma).mappings, 0);
    /* A shorter bus range is a valid answer. */
    h.bus = 0x5000;
    assert_int_equal(vmapple_dma_backend_map(dma, 0x2000, NULL, 0x100, 0, &bus, &len), 0);
    assert_int_equal(len, 0x10);
    assert_int_equal(h.closes, 0);
    vmapple_dma_backend_release(dma);
    assert_int_equal(h.closes, 1);
    /* An older caller with a smaller ops struct (no close) works. */
    ops.size = offsetof(vmapple_dma_ops, close);
    assert_int_equal(vmapple_dma_backend_create(&ops, &h, NULL, &dma), 0);
    vmapple_dma_backend_release(dma);
    assert_int_equal(h.closes, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),           cmocka_unit_test(test_sim_dart_defaults),
        cmocka_unit_test(test_sim_dart_addresses), cmocka_unit_test(test_sim_dart_unmap),
        cmocka_unit_test(test_sim_dart_options),   cmocka_unit_test(test_host_callbacks),
        cmocka_unit_test(test_sim_dart_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
