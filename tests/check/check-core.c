/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of the core: hostile access sequences
 * through the bus, mutated state blobs, random option structs and bus
 * churn. Each case runs in its own process (CK_FORK), so a crash fails the
 * case without killing the suite. After the abuse, the device must still work.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mockhost.h"
#include "testdev.h"
#include "testpci.h"
#include "rng.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x20000ull

static void assert_usable(vmapple_device *dev)
{
    uint64_t v = 0;

    ck_assert_int_eq(vmapple_device_write(dev, 0, 0, 8, 0x0123456789abcdefull), 0);
    ck_assert_int_eq(vmapple_device_read(dev, 0, 0, 8, &v), 0);
    ck_assert_uint_eq(v, 0x0123456789abcdefull);
}

START_TEST(hostile_bus_sequences)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev;
    vmapple_bus *bus;
    static const uint32_t sizes[] = { 0, 1, 2, 3, 4, 5, 8, 16 };

    seed(0x1000 + (uint64_t)_i);
    ck_assert_int_eq(testdev_create(mock_host_ops(), h, NULL, &dev), 0);
    ck_assert_int_eq(vmapple_bus_create(&bus), 0);
    ck_assert_int_eq(vmapple_bus_map_device(bus, dev), 0);
    ck_assert_int_eq(vmapple_bus_map_region(bus, dev, 1, 0x1000), 0);
    /* Keep DMA inside RAM to prove nothing strays beyond it. */
    h->guard_writes = true;
    h->guard_lo = RAM_BASE;
    h->guard_hi = RAM_BASE + RAM_SIZE;
    for (int k = 0; k < 20000; k++) {
        uint64_t r = rnd();
        uint64_t addr;
        uint32_t size = sizes[r % 8];
        uint64_t value = rnd();
        switch ((r >> 8) % 4) {
        case 0:
            addr = TESTDEV_BASE + ((r >> 16) % 0x110);
            break;
        case 1:
            addr = 0x1000 + ((r >> 16) % 0x1010);
            break;
        case 2:
            addr = rnd();
            break;
        default:
            /* DMA registers with addresses near RAM and near the top of memory. */
            addr = TESTDEV_BASE + 0x10 + ((r >> 16) % 5) * 8;
            size = 8;
            value = (r & 0x100000) ? RAM_BASE + (rnd() % (RAM_SIZE + 0x100))
                                   : UINT64_MAX - (rnd() % 64);
            if (addr == TESTDEV_BASE + 0x20) {
                value = rnd() % 0x20000;
            }
            break;
        }
        uint64_t v;
        int ret = (r >> 12) & 1 ? vmapple_bus_write(bus, addr, size, value)
                                : vmapple_bus_read(bus, addr, size, &v);
        ck_assert(ret == 0 || ret == -ENXIO || ret == -EINVAL);
    }
    ck_assert_uint_eq(h->stray_writes, 0);
    ck_assert_uint_eq(h->wrapping_accesses, 0);
    ck_assert_uint_gt(h->bytes_written, 0);
    ck_assert_uint_eq(h->maps_live, 0);
    ck_assert_int_eq(vmapple_device_write(dev, 0, 0x38, 8, 1), 0);
    assert_usable(dev);
    vmapple_bus_destroy(bus);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}
END_TEST

START_TEST(mutated_state_blobs)
{
    vmapple_device *src, *dst;
    uint8_t *blob, *bad;
    size_t size = 0;

    seed(0x2000 + (uint64_t)_i);
    ck_assert_int_eq(testdev_create(NULL, NULL, NULL, &src), 0);
    ck_assert_int_eq(vmapple_device_write(src, 0, 0, 8, 0x77), 0);
    vmapple_device_save(src, NULL, 0, &size);
    blob = malloc(size);
    bad = malloc(size + 64);
    ck_assert_int_eq(vmapple_device_save(src, blob, size, &size), 0);
    ck_assert_int_eq(testdev_create(NULL, NULL, NULL, &dst), 0);
    for (int k = 0; k < 2000; k++) {
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
        ck_assert(ret == 0 || ret == -EBADMSG || ret == -ENODEV || ret == -EPROTONOSUPPORT);
    }
    ck_assert_int_eq(vmapple_device_load(dst, blob, size), 0);
    uint64_t v;
    ck_assert_int_eq(vmapple_device_read(dst, 0, 0, 8, &v), 0);
    ck_assert_uint_eq(v, 0x77);
    assert_usable(dst);
    free(blob);
    free(bad);
    vmapple_device_destroy(src);
    vmapple_device_destroy(dst);
}
END_TEST

START_TEST(random_option_structs)
{
    uint8_t raw[256];

    seed(0x3000 + (uint64_t)_i);
    for (int k = 0; k < 5000; k++) {
        vmapple_device *dev = NULL;
        uint32_t size = (uint32_t)(rnd() % sizeof(raw));
        for (size_t j = 0; j < sizeof(raw); j++) {
            raw[j] = (rnd() % 3) ? 0 : (uint8_t)rnd();
        }
        memcpy(raw, &size, sizeof(size));
        int ret = testdev_create(NULL, NULL, (const struct testdev_options *)(void *)raw, &dev);
        ck_assert(ret == 0 || ret == -EINVAL);
        ck_assert((ret == 0) == (dev != NULL));
        if (dev) {
            assert_usable(dev);
            vmapple_device_destroy(dev);
        }
    }
}
END_TEST

START_TEST(bus_churn_matches_model)
{
    enum { SLOTS = 64 };
    uint64_t base[SLOTS] = { 0 }, len[SLOTS] = { 0 };
    vmapple_bus *bus;

    seed(0x4000 + (uint64_t)_i);
    ck_assert_int_eq(vmapple_bus_create(&bus), 0);
    for (int k = 0; k < 20000; k++) {
        unsigned s = (unsigned)(rnd() % SLOTS);
        if (len[s]) {
            ck_assert_int_eq(vmapple_bus_unmap(bus, base[s]), 0);
            len[s] = 0;
            continue;
        }
        uint64_t b = (rnd() % 4096) * 16, l = 1 + rnd() % 256;
        bool overlaps = false;
        for (unsigned j = 0; j < SLOTS; j++) {
            if (len[j] && b < base[j] + len[j] && base[j] < b + l) {
                overlaps = true;
            }
        }
        int ret = vmapple_bus_map_handler(bus, "h", b, l, NULL, NULL, NULL);
        ck_assert_int_eq(ret, overlaps ? -EEXIST : 0);
        if (!overlaps) {
            base[s] = b;
            len[s] = l;
        }
        uint64_t probe = rnd() % (4096 * 16 + 256), v;
        bool hit = false;
        for (unsigned j = 0; j < SLOTS; j++) {
            if (len[j] && probe >= base[j] && probe < base[j] + len[j]) {
                hit = true;
            }
        }
        ck_assert_int_eq(vmapple_bus_read(bus, probe, 1, &v), hit ? 0 : -ENXIO);
    }
    vmapple_bus_destroy(bus);
}
END_TEST

START_TEST(hostile_pci_config)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev;
    uint32_t v;

    seed(0x5000 + (uint64_t)_i);
    ck_assert_int_eq(testpci_create(mock_host_ops(), h, 4, &dev), 0);
    for (int k = 0; k < 50000; k++) {
        uint32_t off = (uint32_t)(rnd() % 0x1010);
        uint32_t size = 1u << (rnd() % 3);
        int ret = vmapple_device_pci_config_write(dev, off, size, (uint32_t)rnd());
        ck_assert(ret == 0 || (ret == -EINVAL && off + size > 4096));
        if (rnd() % 16 == 0) {
            uint64_t val;
            vmapple_device_write(dev, 1, rnd() % 0x3ff8, 4, rnd());
            vmapple_device_read(dev, 1, rnd() % 0x3ff8, 8, &val);
            vmapple_device_write(dev, 0, (rnd() % 4) * 4, 8, rnd() % 6);
        }
    }
    ck_assert_int_eq(vmapple_device_pci_config_read(dev, 0, 4, &v), 0);
    ck_assert_uint_eq(v, 0x56781234);
    ck_assert_uint_eq(h->wrapping_accesses, 0);
    /* After a reset it is a clean function again. */
    ck_assert_int_eq(vmapple_device_reset(dev), 0);
    ck_assert_int_eq(vmapple_device_pci_config_read(dev, 4, 2, &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(h->irq_level[0], 0);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core-robustness");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, hostile_bus_sequences, 0, 4);
    tcase_add_loop_test(tc, mutated_state_blobs, 0, 4);
    tcase_add_loop_test(tc, random_option_structs, 0, 2);
    tcase_add_loop_test(tc, bus_churn_matches_model, 0, 2);
    tcase_add_loop_test(tc, hostile_pci_config, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
