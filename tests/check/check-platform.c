/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of the platform devices (bdif, cfg,
 * pvpanic, xHCI policy): random and hostile register and request sequences,
 * mutated state blobs and random options. Each case runs in its own process
 * (CK_FORK), so a crash fails the case, not the suite. Afterwards every
 * device must still do its job.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memvol.h"
#include "mockhost.h"
#include "rng.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (4ull << 20)
#define VOL_SIZE (1ull << 20)

static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* A guest address a hostile guest might pick: in RAM, at its edges, or anywhere. */
static uint64_t hostile_addr(void)
{
    switch (rnd() % 6) {
    case 0:
    case 1:
    case 2:
        return RAM_BASE + rnd() % RAM_SIZE;
    case 3:
        return RAM_BASE + RAM_SIZE - rnd() % 64;
    case 4:
        return UINT64_MAX - rnd() % 64;
    default:
        return rnd();
    }
}

static uint32_t hostile_len(void)
{
    switch (rnd() % 5) {
    case 0:
        return (uint32_t)(rnd() % 4096);
    case 1:
        return (uint32_t)(rnd() % (3u << 20));
    case 2:
        return (128u << 20) + (uint32_t)(rnd() % 3) - 1;
    case 3:
        return UINT32_MAX - (uint32_t)(rnd() % 4);
    default:
        return (uint32_t)rnd();
    }
}

static uint32_t hostile_sector(void)
{
    switch (rnd() % 4) {
    case 0:
        return (uint32_t)(rnd() % (VOL_SIZE / 512));
    case 1:
        return (uint32_t)(VOL_SIZE / 512) - (uint32_t)(rnd() % 4);
    case 2:
        return UINT32_MAX - (uint32_t)(rnd() % 4);
    default:
        return (uint32_t)rnd();
    }
}

static uint32_t hostile_flags(void)
{
    static const uint32_t f[] = { 0x00030001, 0x00010001, 0, 0x00030000, 0xffffffff };
    return rnd() % 2 ? f[rnd() % 5] : (uint32_t)rnd();
}

/* Writes a random (often almost valid) request somewhere in RAM; returns its address. */
static uint64_t random_request(struct mock_host *h)
{
    uint64_t req = RAM_BASE + (rnd() % (RAM_SIZE / 64 - 1)) * 64;
    uint64_t secb = RAM_BASE + (rnd() % (RAM_SIZE / 16 - 1)) * 16;
    uint8_t *r = mock_ram(h, req, 48);
    uint8_t *s = mock_ram(h, secb, 16);

    st64(r, rnd() % 8 ? secb : hostile_addr());
    st32(r + 8, rnd() % 8 ? 16 : (uint32_t)rnd() % 64);
    st32(r + 12, (uint32_t)rnd());
    st64(r + 32, rnd() % 4 ? RAM_BASE + rnd() % RAM_SIZE : hostile_addr());
    st32(r + 40, (uint32_t)rnd());
    st32(r + 44, (uint32_t)rnd());
    if (rnd() % 2) {
        /* A plausible transfer: inside RAM and (mostly) inside the volume. */
        uint32_t len = (uint32_t)(rnd() % (64 * 1024));
        st64(r + 16, RAM_BASE + rnd() % (RAM_SIZE - len));
        st32(r + 24, len);
        st32(r + 28, rnd() % 2 ? 0x00030001 : 0x00010001);
        st32(s + 8, (uint32_t)(rnd() % (VOL_SIZE / 512 / 2 + 8)));
    } else {
        st64(r + 16, hostile_addr());
        st32(r + 24, hostile_len());
        st32(r + 28, hostile_flags());
        st32(s + 8, hostile_sector());
    }
    return req;
}

/* A valid read of 4 KiB from sector 2 of `unit` must work and return the volume's bytes. */
static void assert_bdif_usable(vmapple_device *dev, struct mock_host *h, struct memvol *v,
                               uint32_t unit)
{
    uint64_t req = RAM_BASE, secb = RAM_BASE + 0x100, stat = RAM_BASE + 0x200;
    uint64_t data = RAM_BASE + 0x1000;
    uint8_t *r = mock_ram(h, req, 48);
    uint8_t *s = mock_ram(h, secb, 16);

    st64(r, secb);
    st32(r + 8, 16);
    st64(r + 16, data);
    st32(r + 24, 4096);
    st32(r + 28, 0x00030001);
    st64(r + 32, stat);
    st32(s + 8, 2);
    *(uint8_t *)mock_ram(h, stat, 1) = 0xaa;
    v->fail_reads = 0;
    ck_assert_int_eq(vmapple_device_write(dev, 0, ((uint64_t)unit << 16) | 0x408, 8, req), 0);
    ck_assert_int_eq(*(uint8_t *)mock_ram(h, stat, 1), 0);
    ck_assert_int_eq(memcmp(mock_ram(h, data, 4096), v->data + 1024, 4096), 0);
}

START_TEST(bdif_hostile_requests)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *root = memvol_new(VOL_SIZE, true), *aux = memvol_new(VOL_SIZE / 2, true);
    vmapple_blockdev *rb = memvol_open(root, 0);
    vmapple_blockdev *ab = memvol_open(aux, _i % 2 ? VMAPPLE_BLOCKDEV_READ_ONLY : 0);
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_device *dev;
    vmapple_bus *bus;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    seed(0x5000 + (uint64_t)_i);
    o.root = rb;
    o.aux = _i % 3 ? ab : NULL;
    o.flags = _i % 2 ? VMAPPLE_BDIF_ALLOW_WRITES | VMAPPLE_BDIF_FLUSH_WRITES : 0;
    ck_assert_int_eq(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), 0);
    vmapple_blockdev_release(rb);
    vmapple_blockdev_release(ab);
    ck_assert_int_eq(vmapple_bus_create(&bus), 0);
    ck_assert_int_eq(vmapple_bus_map_device(bus, dev), 0);
    /* Every write the device makes must land in RAM. */
    h->guard_writes = true;
    h->guard_lo = RAM_BASE;
    h->guard_hi = RAM_BASE + RAM_SIZE;
    for (int k = 0; k < 3000; k++) {
        uint64_t r = rnd(), v;
        h->allow_map = (r >> 40) & 1;
        h->map_chunk = (r >> 41) & 1 ? 4096 * (1 + rnd() % 64) : 0;
        root->fail_reads = (r >> 42) % 16 == 0;
        root->fail_writes = (r >> 46) % 16 == 0;
        root->fail_flushes = (r >> 50) % 16 == 0;
        h->fail_reads = (r >> 54) % 32 == 0;
        h->fail_writes = (r >> 59) % 32 == 0;
        uint32_t unit = (r >> 8) % 4 == 0 ? (uint32_t)(rnd() % 32) : (uint32_t)((r >> 10) % 2);
        uint64_t addr = 0x30000000ull + ((uint64_t)unit << 16);
        switch (r % 4) {
        case 0:
        case 1:
            ck_assert_int_eq(vmapple_bus_write(bus, addr + 0x408, 8, random_request(h)), 0);
            break;
        case 2:
            ck_assert_int_eq(vmapple_bus_write(bus, addr + 0x408, sizes[rnd() % 4], rnd()), 0);
            break;
        default: {
            uint64_t off = rnd() % 0x200000;
            uint32_t size = sizes[rnd() % 4];
            int ret = (r >> 20) & 1 ? vmapple_bus_read(bus, 0x30000000ull + off, size, &v)
                                    : vmapple_bus_write(bus, 0x30000000ull + off, size, rnd());
            ck_assert(ret == 0 || ret == -ENXIO);
            break;
        }
        }
        ck_assert_uint_eq(h->maps_live, 0);
    }
    ck_assert_uint_eq(h->stray_writes, 0);
    ck_assert_uint_eq(h->wrapping_accesses, 0);
    /* The sequence reached real transfers, not only the early refusals. */
    ck_assert_uint_gt(root->bytes_read, 0);
    if (o.flags & VMAPPLE_BDIF_ALLOW_WRITES) {
        ck_assert_uint_gt(root->bytes_written, 0);
        ck_assert_uint_gt(root->flushes, 0);
    }
    h->allow_map = false;
    h->fail_reads = h->fail_writes = 0;
    assert_bdif_usable(dev, h, root, 0);
    if (o.aux) {
        assert_bdif_usable(dev, h, aux, 1);
    }
    ck_assert_int_eq(vmapple_device_reset(dev), 0);
    assert_bdif_usable(dev, h, root, 0);
    vmapple_bus_destroy(bus);
    vmapple_device_destroy(dev);
    ck_assert_uint_eq(root->closes, 1);
    memvol_free(root);
    memvol_free(aux);
    mock_host_free(h);
}
END_TEST

/* Save, then load many mutated copies: every result is clean, the device unharmed. */
static void mutate_and_load(vmapple_device *src, vmapple_device *dst, int rounds)
{
    uint8_t *blob, *bad;
    size_t size = 0;

    ck_assert_int_eq(vmapple_device_save(src, NULL, 0, &size), -ENOSPC);
    blob = malloc(size);
    bad = malloc(size + 64);
    ck_assert_int_eq(vmapple_device_save(src, blob, size, &size), 0);
    for (int k = 0; k < rounds; k++) {
        size_t n = size;
        memcpy(bad, blob, size);
        int flips = 1 + (int)(rnd() % 8);
        for (int j = 0; j < flips; j++) {
            bad[rnd() % size] ^= (uint8_t)(1u << (rnd() % 8));
        }
        if (rnd() % 4 == 0) {
            n = (size_t)(rnd() % (size + 64));
        }
        int ret = vmapple_device_load(dst, bad, n);
        ck_assert(ret == 0 || ret == -EBADMSG || ret == -ENODEV || ret == -EPROTONOSUPPORT ||
                  ret == -EINVAL);
    }
    ck_assert_int_eq(vmapple_device_load(dst, blob, size), 0);
    free(blob);
    free(bad);
}

START_TEST(bdif_mutated_state_blobs)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *root = memvol_new(VOL_SIZE, true);
    vmapple_blockdev *rb = memvol_open(root, 0);
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_device *src, *dst;

    seed(0x5100 + (uint64_t)_i);
    o.root = rb;
    ck_assert_int_eq(vmapple_bdif_create(mock_host_ops(), h, &o, &src), 0);
    ck_assert_int_eq(vmapple_bdif_create(mock_host_ops(), h, &o, &dst), 0);
    vmapple_blockdev_release(rb);
    mutate_and_load(src, dst, 3000);
    assert_bdif_usable(dst, h, root, 0);
    vmapple_device_destroy(src);
    vmapple_device_destroy(dst);
    memvol_free(root);
    mock_host_free(h);
}
END_TEST

START_TEST(cfg_hostile_accesses_and_blobs)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_device *dev, *dst;
    uint8_t *initial = malloc(0x10000), *mirror = malloc(0x10000);
    void *mem;
    uint64_t msize, v;
    static const uint32_t sizes[] = { 1, 2, 4, 8, 3, 0, 16 };

    seed(0x6000 + (uint64_t)_i);
    o.layout = (uint32_t)_i % 2;
    o.nr_cpus = 1 + (uint32_t)(rnd() % 32);
    o.ecid = rnd();
    ck_assert_int_eq(vmapple_cfg_create(NULL, NULL, &o, &dev), 0);
    ck_assert_int_eq(vmapple_cfg_create(NULL, NULL, &o, &dst), 0);
    ck_assert_int_eq(vmapple_device_get_region_memory(dev, 0, &mem, &msize), 0);
    memcpy(initial, mem, 0x10000);
    memcpy(mirror, mem, 0x10000);
    /* The guest may write anything anywhere; a byte model must agree. */
    for (int k = 0; k < 50000; k++) {
        uint32_t size = sizes[rnd() % 7];
        uint64_t off = rnd() % 0x10010;
        uint64_t value = rnd();
        bool fits = (size == 1 || size == 2 || size == 4 || size == 8) && off + size <= 0x10000;
        if (rnd() % 2) {
            int ret = vmapple_device_write(dev, 0, off, size, value);
            ck_assert_int_eq(ret, fits ? 0 : -EINVAL);
            for (uint32_t b = 0; fits && b < size; b++) {
                mirror[off + b] = (uint8_t)(value >> (8 * b));
            }
        } else {
            int ret = vmapple_device_read(dev, 0, off, size, &v);
            ck_assert_int_eq(ret, fits ? 0 : -EINVAL);
        }
    }
    ck_assert_int_eq(memcmp(mem, mirror, 0x10000), 0);
    mutate_and_load(dev, dst, 300);
    void *dmem;
    ck_assert_int_eq(vmapple_device_get_region_memory(dst, 0, &dmem, &msize), 0);
    ck_assert_int_eq(memcmp(dmem, mirror, 0x10000), 0);
    ck_assert_int_eq(vmapple_device_reset(dev), 0);
    ck_assert_int_eq(memcmp(mem, initial, 0x10000), 0);
    free(initial);
    free(mirror);
    vmapple_device_destroy(dev);
    vmapple_device_destroy(dst);
}
END_TEST

START_TEST(cfg_random_options)
{
    static char strings[40][41];

    seed(0x6100 + (uint64_t)_i);
    for (int i = 0; i < 40; i++) {
        memset(strings[i], 'a' + i % 26, (size_t)i);
        strings[i][i] = 0;
    }
    for (int k = 0; k < 5000; k++) {
        vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
        vmapple_device *dev = NULL;
        uint8_t *raw = (uint8_t *)&o;
        /* Random bytes in every plain field; pointers are NULL or real strings. */
        for (size_t j = sizeof(uint32_t); j < sizeof(o); j++) {
            raw[j] = rnd() % 3 ? 0 : (uint8_t)rnd();
        }
        o.serial = rnd() % 2 ? NULL : strings[rnd() % 40];
        o.model = rnd() % 2 ? NULL : strings[rnd() % 40];
        o.soc_name = rnd() % 2 ? NULL : strings[rnd() % 40];
        if (rnd() % 2) {
            o.nr_cpus = (uint32_t)(rnd() % 140);
            o.layout = (uint32_t)(rnd() % 3);
            o.run_installer = (uint32_t)(rnd() % 3);
            o.reserved0 = rnd() % 4 == 0;
        }
        o.size = rnd() % 4 ? (uint32_t)sizeof(o) : (uint32_t)(rnd() % sizeof(o));
        int ret = vmapple_cfg_create(NULL, NULL, &o, &dev);
        ck_assert(ret == 0 || ret == -EINVAL);
        ck_assert((ret == 0) == (dev != NULL));
        if (dev) {
            uint64_t v;
            ck_assert_int_eq(vmapple_device_read(dev, 0, 0, 4, &v), 0);
            ck_assert_uint_eq(v, 2);
            vmapple_device_destroy(dev);
        } else {
            ck_assert(vmapple_last_error()[0] != 0);
        }
    }
}
END_TEST

static unsigned events_seen;
static uint64_t bits_seen[3];

static void count_event(void *opaque, uint32_t events)
{
    (void)opaque;
    ck_assert(events != 0);
    events_seen++;
    for (int b = 0; b < 3; b++) {
        bits_seen[b] += (events >> b) & 1;
    }
}

START_TEST(pvpanic_hostile_writes)
{
    struct mock_host *h = mock_host_new(0, 16);
    vmapple_pvpanic_options o = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_pvpanic_counts c = VMAPPLE_PVPANIC_COUNTS_INIT;
    vmapple_device *dev, *dst;
    uint64_t want[3] = { 0 }, unsupported = 0, v;
    unsigned calls = 0;

    seed(0x7000 + (uint64_t)_i);
    o.events = (uint32_t)(_i % 8);
    o.event = count_event;
    events_seen = 0;
    memset(bits_seen, 0, sizeof(bits_seen));
    ck_assert_int_eq(vmapple_pvpanic_create(mock_host_ops(), h, &o, &dev), 0);
    ck_assert_int_eq(vmapple_pvpanic_create(mock_host_ops(), h, &o, &dst), 0);
    uint32_t supported = o.events ? o.events : 3;
    for (int k = 0; k < 20000; k++) {
        uint32_t size = rnd() % 2 ? 1 : 2;
        uint64_t off = rnd() % 3;
        uint64_t value = rnd() % 4 ? rnd() % 8 : rnd();
        bool fits = off + size <= 2;
        if (rnd() % 3) {
            ck_assert_int_eq(vmapple_device_write(dev, 0, off, size, value), fits ? 0 : -EINVAL);
            if (fits) {
                value &= size == 1 ? 0xff : 0xffff;
                calls += (value & supported) != 0;
                unsupported += (value & ~(uint64_t)supported) != 0;
                for (int b = 0; b < 3; b++) {
                    want[b] += (value & supported) >> b & 1;
                }
            }
        } else {
            ck_assert_int_eq(vmapple_device_read(dev, 0, off, size, &v), fits ? 0 : -EINVAL);
            ck_assert(!fits || v == supported);
        }
    }
    ck_assert_int_eq(vmapple_pvpanic_get_counts(dev, &c), 0);
    ck_assert_uint_eq(c.panicked, want[0]);
    ck_assert_uint_eq(c.crash_loaded, want[1]);
    ck_assert_uint_eq(c.shutdown, want[2]);
    ck_assert_uint_eq(c.unsupported_writes, unsupported);
    ck_assert_uint_eq(events_seen, calls);
    for (int b = 0; b < 3; b++) {
        ck_assert_uint_eq(bits_seen[b], want[b]);
    }
    /* The host's log saw a burst, not 20000 lines. */
    ck_assert_uint_le(h->nr_log, 64);
    mutate_and_load(dev, dst, 2000);
    ck_assert_int_eq(vmapple_pvpanic_get_counts(dst, &c), 0);
    ck_assert_uint_eq(c.panicked, want[0]);
    vmapple_device_destroy(dev);
    vmapple_device_destroy(dst);
    mock_host_free(h);
}
END_TEST

START_TEST(xhci_random_queries_keep_invariants)
{
    vmapple_xhci_policy_options o = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_device *dev, *dst;
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT, cur = VMAPPLE_XHCI_IRQ_STATE_INIT;
    vmapple_xhci_route_request q = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route r = VMAPPLE_XHCI_ROUTE_INIT;

    seed(0x8000 + (uint64_t)_i);
    o.numintrs = (uint32_t)(rnd() % 1025);
    o.mapping = (uint32_t)_i % 2;
    uint32_t m = o.numintrs ? o.numintrs : 16;
    ck_assert_int_eq(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), 0);
    ck_assert_int_eq(vmapple_xhci_policy_create(NULL, NULL, &o, &dst), 0);
    for (int k = 0; k < 50000; k++) {
        if (rnd() % 16 == 0) {
            s.flags = (uint32_t)(rnd() % 5);
            s.msi_vectors = rnd() % 2 ? 1u << (rnd() % 7) : (uint32_t)rnd() % 70;
            s.msix_vectors = (uint32_t)(rnd() % 2100);
            int ret = vmapple_xhci_policy_set_irq_state(dev, &s);
            ck_assert(ret == 0 || ret == -EINVAL);
            continue;
        }
        ck_assert_int_eq(vmapple_xhci_policy_get_irq_state(dev, &cur), 0);
        q.interrupter = rnd() % 2 ? (uint32_t)(rnd() % (m + 4)) : (uint32_t)rnd();
        ck_assert_int_eq(vmapple_xhci_policy_route(dev, &q, &r), 0);
        bool msix = cur.flags & VMAPPLE_XHCI_MSIX_ENABLED;
        bool msi = !msix && (cur.flags & VMAPPLE_XHCI_MSI_ENABLED);
        uint32_t vectors = msix ? cur.msix_vectors : cur.msi_vectors;
        bool mapping = m > 1 && (o.mapping == VMAPPLE_XHCI_MAPPING_ALWAYS || msi || msix);
        uint32_t ring = mapping ? q.interrupter : 0;
        ck_assert_uint_eq(r.irq_mode, msix ? 2u : msi ? 1u : 0u);
        if (ring >= m) {
            ck_assert_uint_eq(r.flags, 0);
            ck_assert_uint_eq(r.event_ring, VMAPPLE_XHCI_NO_RING);
            continue;
        }
        ck_assert_uint_eq(r.event_ring, ring);
        ck_assert(r.flags & VMAPPLE_XHCI_ROUTE_DELIVER);
        if (msi || msix) {
            ck_assert_uint_lt(r.vector, vectors);
            ck_assert_uint_eq(r.vector, ring % vectors);
            ck_assert(r.flags & VMAPPLE_XHCI_ROUTE_SIGNAL);
        } else {
            ck_assert_uint_eq(r.vector, 0);
            ck_assert_uint_eq(!!(r.flags & VMAPPLE_XHCI_ROUTE_SIGNAL), ring == 0);
        }
    }
    mutate_and_load(dev, dst, 3000);
    ck_assert_int_eq(vmapple_xhci_policy_get_irq_state(dst, &s), 0);
    ck_assert_int_eq(vmapple_xhci_policy_get_irq_state(dev, &cur), 0);
    ck_assert_int_eq(memcmp(&s, &cur, sizeof(s)), 0);
    vmapple_device_destroy(dev);
    vmapple_device_destroy(dst);
}
END_TEST

static Suite *platform_suite(void)
{
    Suite *s = suite_create("platform-robustness");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, bdif_hostile_requests, 0, 6);
    tcase_add_loop_test(tc, bdif_mutated_state_blobs, 0, 2);
    tcase_add_loop_test(tc, cfg_hostile_accesses_and_blobs, 0, 2);
    tcase_add_loop_test(tc, cfg_random_options, 0, 2);
    tcase_add_loop_test(tc, pvpanic_hostile_writes, 0, 8);
    tcase_add_loop_test(tc, xhci_random_queries_keep_invariants, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(platform_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
