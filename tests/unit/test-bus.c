/* SPDX-License-Identifier: MIT */
/* The bus helper: registration, overlap refusal, dispatch, unmapped accesses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mockhost.h"
#include "testdev.h"

struct fixture {
    vmapple_bus *bus;
    vmapple_device *dev;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_int_equal(vmapple_bus_create(&f->bus), 0);
    assert_int_equal(testdev_create(NULL, NULL, NULL, &f->dev), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vmapple_bus_destroy(f->bus);
    vmapple_device_destroy(f->dev);
    free(f);
    return 0;
}

struct handler_log {
    uint64_t last_offset;
    uint32_t last_size;
    uint64_t last_value;
    unsigned reads, writes;
    int ret;
};

static int h_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value)
{
    struct handler_log *l = opaque;
    l->reads++;
    l->last_offset = offset;
    l->last_size = size;
    *value = 0xabcd0000 + offset;
    return l->ret;
}

static int h_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value)
{
    struct handler_log *l = opaque;
    l->writes++;
    l->last_offset = offset;
    l->last_size = size;
    l->last_value = value;
    return l->ret;
}

static void test_null_and_bad_args(void **state)
{
    uint64_t v;
    vmapple_bus_range r = VMAPPLE_BUS_RANGE_INIT;
    (void)state;

    assert_int_equal(vmapple_bus_create(NULL), -EINVAL);
    vmapple_bus_destroy(NULL);
    assert_non_null(vmapple_bus_last_error(NULL));
    assert_int_equal(vmapple_bus_map_region(NULL, NULL, 0, 0), -EINVAL);
    assert_int_equal(vmapple_bus_map_device(NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_bus_map_handler(NULL, "x", 0, 1, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_bus_unmap(NULL, 0), -EINVAL);
    assert_int_equal(vmapple_bus_unmap_device(NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_bus_read(NULL, 0, 4, &v), -EINVAL);
    assert_int_equal(vmapple_bus_write(NULL, 0, 4, 0), -EINVAL);
    assert_int_equal(vmapple_bus_lookup(NULL, 0, &r), -EINVAL);
    assert_int_equal(vmapple_bus_count_ranges(NULL), -EINVAL);
    assert_int_equal(vmapple_bus_get_range(NULL, 0, &r), -EINVAL);
    assert_int_equal(vmapple_bus_get_unmapped_counts(NULL, &v, &v), -EINVAL);
}

static void test_map_device_at_vmapple_base(void **state)
{
    struct fixture *f = *state;
    vmapple_bus_range r = VMAPPLE_BUS_RANGE_INIT;
    uint64_t v;

    /* Only the region with a map base goes on the bus. */
    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), 0);
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 1);
    assert_int_equal(vmapple_bus_lookup(f->bus, TESTDEV_BASE + 0x80, &r), 0);
    assert_int_equal(r.base, TESTDEV_BASE);
    assert_int_equal(r.length, 0x100);
    assert_string_equal(r.name, "regs");
    assert_ptr_equal(r.device, f->dev);
    assert_int_equal(r.region, 0);

    assert_int_equal(vmapple_bus_write(f->bus, TESTDEV_BASE, 8, 0x1234), 0);
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE, 8, &v), 0);
    assert_int_equal(v, 0x1234);
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE + 1, 1, &v), 0);
    assert_int_equal(v, 0x12);

    /* A region without a map base needs an explicit one. */
    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 1, VMAPPLE_NO_BASE), -EINVAL);
    assert_non_null(strstr(vmapple_bus_last_error(f->bus), "no base in the vmapple map"));
    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 1, 0x1000), 0);
    assert_int_equal(vmapple_bus_write(f->bus, 0x1ffc, 4, 0xa5a5a5a5), 0);
    assert_int_equal(vmapple_bus_read(f->bus, 0x1ffc, 4, &v), 0);
    assert_int_equal(v, 0xa5a5a5a5);
    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 7, 0x9000), -EINVAL);
}

static void test_overlap_refused(void **state)
{
    struct fixture *f = *state;
    struct handler_log l = { 0 };

    assert_int_equal(vmapple_bus_map_handler(f->bus, "a", 0x1000, 0x1000, h_read, h_write, &l), 0);
    /* Every way of overlapping: same base, inside, across either end, around. */
    const uint64_t bad[][2] = {
        { 0x1000, 0x1000 }, { 0x1800, 0x10 },    { 0x0800, 0x0801 },
        { 0x1fff, 0x10 },   { 0x0000, 0x10000 }, { 0x1fff, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            vmapple_bus_map_handler(f->bus, "b", bad[i][0], bad[i][1], NULL, NULL, NULL), -EEXIST);
    }
    assert_non_null(
        strstr(vmapple_bus_last_error(f->bus), "b [0x1fff, 0x1fff] overlaps a [0x1000, 0x1fff]"));
    /* Adjacent on both sides is fine. */
    assert_int_equal(vmapple_bus_map_handler(f->bus, "below", 0x0, 0x1000, NULL, NULL, NULL), 0);
    assert_int_equal(vmapple_bus_map_handler(f->bus, "above", 0x2000, 0x1000, NULL, NULL, NULL), 0);
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 3);
    /* Zero size and wrap-around are refused. */
    assert_int_equal(vmapple_bus_map_handler(f->bus, "z", 0x9000, 0, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_bus_map_handler(f->bus, "w", UINT64_MAX - 4, 16, NULL, NULL, NULL),
                     -EINVAL);
    assert_non_null(strstr(vmapple_bus_last_error(f->bus), "wrap"));
    /* But a range may end exactly at the top of the address space. */
    assert_int_equal(vmapple_bus_map_handler(f->bus, "top", UINT64_MAX - 15, 16, h_read, NULL, &l),
                     0);
    uint64_t v;
    assert_int_equal(vmapple_bus_read(f->bus, UINT64_MAX - 7, 8, &v), 0);
    assert_int_equal(l.last_offset, 8);
    assert_int_equal(vmapple_bus_read(f->bus, UINT64_MAX - 3, 8, &v), -ENXIO);
}

static void test_map_device_all_or_nothing(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(
        vmapple_bus_map_handler(f->bus, "squatter", TESTDEV_BASE + 0x10, 4, NULL, NULL, NULL), 0);
    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), -EEXIST);
    assert_non_null(strstr(vmapple_bus_last_error(f->bus), "squatter"));
    assert_non_null(strstr(vmapple_last_error(), "squatter"));
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 1);
}

/* A failed map_device takes back only what it mapped, not the device's earlier ranges. */
static void test_map_device_failure_keeps_earlier(void **state)
{
    struct fixture *f = *state;
    vmapple_bus_range r = VMAPPLE_BUS_RANGE_INIT;

    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 1, 0xa0000000ull), 0);
    assert_int_equal(
        vmapple_bus_map_handler(f->bus, "squatter", TESTDEV_BASE + 0x10, 4, NULL, NULL, NULL), 0);
    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), -EEXIST);
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 2);
    assert_int_equal(vmapple_bus_lookup(f->bus, 0xa0000000ull, &r), 0);
    assert_string_equal(r.name, "mem");
    /* Once the squatter leaves, the device maps, its "mem" range still in place. */
    assert_int_equal(vmapple_bus_unmap(f->bus, TESTDEV_BASE + 0x10), 0);
    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), 0);
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 2);
}

static void test_handlers(void **state)
{
    struct fixture *f = *state;
    struct handler_log l = { 0 };
    uint64_t v;

    assert_int_equal(
        vmapple_bus_map_handler(f->bus, "uart", 0x20010000, 0x10000, h_read, h_write, &l), 0);
    assert_int_equal(vmapple_bus_read(f->bus, 0x20010018, 4, &v), 0);
    assert_int_equal(v, 0xabcd0018);
    assert_int_equal(l.last_size, 4);
    assert_int_equal(vmapple_bus_write(f->bus, 0x20010000, 1, 0x141), 0);
    assert_int_equal(l.last_offset, 0);
    assert_int_equal(l.last_value, 0x41); /* masked to the access size */
    l.ret = -EIO;
    assert_int_equal(vmapple_bus_write(f->bus, 0x20010000, 1, 0), -EIO);

    /* NULL handlers: reads as zero, writes dropped, both fine. */
    assert_int_equal(vmapple_bus_map_handler(f->bus, "ram-hole", 0x100, 0x100, NULL, NULL, NULL),
                     0);
    v = 7;
    assert_int_equal(vmapple_bus_read(f->bus, 0x100, 8, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_bus_write(f->bus, 0x100, 8, 1), 0);
}

static void test_unmapped(void **state)
{
    struct fixture *f = *state;
    uint64_t v = 5, reads, writes;

    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), 0);
    assert_int_equal(vmapple_bus_read(f->bus, 0x1234, 4, &v), -ENXIO);
    assert_int_equal(v, 0);
    assert_non_null(strstr(vmapple_last_error(), "read of 4 bytes at 0x1234"));
    assert_int_equal(vmapple_bus_write(f->bus, TESTDEV_BASE + 0x100, 4, 0), -ENXIO);
    /* Straddling the end of a range is not inside it. */
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE + 0xfc, 8, &v), -ENXIO);
    assert_int_equal(vmapple_bus_get_unmapped_counts(f->bus, &reads, &writes), 0);
    assert_int_equal(reads, 2);
    assert_int_equal(writes, 1);
    assert_int_equal(vmapple_bus_get_unmapped_counts(f->bus, NULL, NULL), 0);
    /* Bad sizes are host errors. */
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE, 3, &v), -EINVAL);
    assert_int_equal(vmapple_bus_write(f->bus, TESTDEV_BASE, 16, 0), -EINVAL);
    vmapple_bus_range r = VMAPPLE_BUS_RANGE_INIT;
    assert_int_equal(vmapple_bus_lookup(f->bus, 0x1234, &r), -ENXIO);
}

static void test_unmap(void **state)
{
    struct fixture *f = *state;
    uint64_t v;

    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), 0);
    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 1, 0x5000), 0);
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE, 8, &v), 0); /* warms the hint */
    assert_int_equal(vmapple_bus_unmap(f->bus, TESTDEV_BASE + 8), -ENOENT);
    assert_int_equal(vmapple_bus_unmap(f->bus, TESTDEV_BASE), 0);
    /* The hint must not keep routing to a removed range. */
    assert_int_equal(vmapple_bus_read(f->bus, TESTDEV_BASE, 8, &v), -ENXIO);
    /* The BAR-move pattern: remove and map elsewhere. */
    assert_int_equal(vmapple_bus_unmap(f->bus, 0x5000), 0);
    assert_int_equal(vmapple_bus_map_region(f->bus, f->dev, 1, 0x8000), 0);
    assert_int_equal(vmapple_bus_read(f->bus, 0x5000, 1, &v), -ENXIO);
    assert_int_equal(vmapple_bus_read(f->bus, 0x8000, 1, &v), 0);
    assert_int_equal(vmapple_bus_unmap_device(f->bus, f->dev), 1);
    assert_int_equal(vmapple_bus_count_ranges(f->bus), 0);
}

static void test_range_struct_sizes(void **state)
{
    struct fixture *f = *state;
    struct {
        vmapple_bus_range r;
        uint64_t guard;
    } big;
    vmapple_bus_range old;

    assert_int_equal(vmapple_bus_map_device(f->bus, f->dev), 0);
    /* An older caller whose struct ends after `length`: nothing beyond is written. */
    memset(&old, 0xee, sizeof(old));
    old.size = offsetof(vmapple_bus_range, name);
    assert_int_equal(vmapple_bus_get_range(f->bus, 0, &old), 0);
    assert_int_equal(old.base, TESTDEV_BASE);
    assert_int_equal(old.length, 0x100);
    const uint8_t *tail = (const uint8_t *)&old + offsetof(vmapple_bus_range, name);
    for (size_t i = 0; i < sizeof(old) - offsetof(vmapple_bus_range, name); i++) {
        assert_int_equal(tail[i], 0xee);
    }
    /* A newer, larger caller: we fill what we know and leave the rest. */
    memset(&big, 0, sizeof(big));
    big.r.size = sizeof(big);
    big.guard = 0x1122;
    assert_int_equal(vmapple_bus_get_range(f->bus, 0, &big.r), 0);
    assert_string_equal(big.r.name, "regs");
    assert_int_equal(big.guard, 0x1122);
    /* Too small to hold anything. */
    old.size = 4;
    assert_int_equal(vmapple_bus_get_range(f->bus, 0, &old), -EINVAL);
    old.size = sizeof(old);
    assert_int_equal(vmapple_bus_get_range(f->bus, 1, &old), -ENOENT);
}

/* Binary search against a linear reference over many random ranges. */
static void test_many_ranges_match_reference(void **state)
{
    struct fixture *f = *state;
    enum { N = 500 };
    static uint64_t base[N], len[N];
    static struct handler_log logs[N];
    unsigned seed = 12345;
    unsigned mapped = 0;

    for (unsigned i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        base[i] = ((uint64_t)(seed >> 4) % 100000) * 0x100;
        len[i] = 0x10 + (seed % 0x200);
        if (vmapple_bus_map_handler(f->bus, "r", base[i], len[i], h_read, h_write, &logs[i]) == 0) {
            mapped++;
        } else {
            len[i] = 0; /* refused: overlaps an earlier one */
        }
    }
    assert_int_equal(vmapple_bus_count_ranges(f->bus), mapped);
    for (unsigned k = 0; k < 20000; k++) {
        seed = seed * 1103515245 + 12345;
        uint64_t addr = (uint64_t)(seed >> 3) % (100000ull * 0x100 + 0x400);
        int expect = -1;
        for (unsigned i = 0; i < N; i++) {
            if (len[i] && addr >= base[i] && addr < base[i] + len[i]) {
                expect = (int)i;
            }
        }
        uint64_t v;
        int ret = vmapple_bus_read(f->bus, addr, 1, &v);
        if (expect < 0) {
            assert_int_equal(ret, -ENXIO);
        } else {
            assert_int_equal(ret, 0);
            assert_int_equal(v, 0xabcd0000 + (addr - base[expect]));
        }
    }
    /* Ranges come back sorted. */
    vmapple_bus_range prev = VMAPPLE_BUS_RANGE_INIT, cur = VMAPPLE_BUS_RANGE_INIT;
    for (unsigned i = 0; i < mapped; i++) {
        assert_int_equal(vmapple_bus_get_range(f->bus, i, &cur), 0);
        if (i) {
            assert_true(prev.base + prev.length <= cur.base);
        }
        prev = cur;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_and_bad_args),
        cmocka_unit_test_setup_teardown(test_map_device_at_vmapple_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_device_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_device_failure_keeps_earlier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handlers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_struct_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ranges_match_reference, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
