/* SPDX-License-Identifier: MIT */
/* The vmapple memory map table (spec/README.md). */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <libvmapple/libvmapple.h>

static const vmapple_platform_region *find(uint32_t id)
{
    const vmapple_platform_region *r = NULL;
    assert_int_equal(vmapple_platform_find_region(id, &r), 0);
    assert_int_equal(r->id, id);
    return r;
}

static void test_table_is_sorted_and_disjoint(void **state)
{
    int n = vmapple_platform_count_regions();
    const vmapple_platform_region *prev = NULL, *r;
    (void)state;

    assert_int_equal(n, 16);
    for (int i = 0; i < n; i++) {
        assert_int_equal(vmapple_platform_get_region((uint32_t)i, &r), 0);
        assert_non_null(r->name);
        assert_non_null(r->description);
        assert_true((r->flags & (VMAPPLE_PLATFORM_LIBRARY | VMAPPLE_PLATFORM_HOST)) != 0);
        if (prev) {
            assert_true(prev->base + prev->size <= r->base);
        }
        prev = r;
    }
    assert_int_equal(vmapple_platform_get_region((uint32_t)n, &r), -ENOENT);
    assert_int_equal(vmapple_platform_get_region(0, NULL), -EINVAL);
}

static void test_rows_match_the_spec(void **state)
{
    (void)state;
    const struct {
        uint32_t id;
        uint64_t base, size;
        uint32_t spi;
        bool library;
    } want[] = {
        { VMAPPLE_MAP_FIRMWARE, 0x00100000, 0x00100000, VMAPPLE_PLATFORM_NO_SPI, false },
        { VMAPPLE_MAP_CFG, 0x00400000, 0x00010000, VMAPPLE_PLATFORM_NO_SPI, true },
        { VMAPPLE_MAP_GIC_DIST, 0x10000000, 0x00010000, VMAPPLE_PLATFORM_NO_SPI, false },
        { VMAPPLE_MAP_GIC_REDIST, 0x10010000, 0x00400000, VMAPPLE_PLATFORM_NO_SPI, false },
        { VMAPPLE_MAP_UART, 0x20010000, 0x00010000, 1, false },
        { VMAPPLE_MAP_RTC, 0x20050000, 0x00001000, 2, false },
        { VMAPPLE_MAP_GPIO, 0x20060000, 0x00001000, 5, false },
        { VMAPPLE_MAP_PVPANIC, 0x20070000, 0x00000002, VMAPPLE_PLATFORM_NO_SPI, true },
        { VMAPPLE_MAP_BDIF, 0x30000000, 0x00200000, VMAPPLE_PLATFORM_NO_SPI, true },
        { VMAPPLE_MAP_GFX, 0x30200000, 0x00010000, 0x11, false },
        { VMAPPLE_MAP_GFX_IOSFC, 0x30210000, 0x00010000, 0x10, false },
        { VMAPPLE_MAP_AES1, 0x30220000, 0x00004000, 0x12, true },
        { VMAPPLE_MAP_AES2, 0x30230000, 0x00004000, 0x12, true },
        { VMAPPLE_MAP_PCIE_ECAM, 0x40000000, 0x10000000, VMAPPLE_PLATFORM_NO_SPI, false },
        { VMAPPLE_MAP_PCIE_MMIO, 0x50000000, 0x1fff0000, 0x20, false },
        { VMAPPLE_MAP_RAM, 0x70000000, 0, VMAPPLE_PLATFORM_NO_SPI, false },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const vmapple_platform_region *r = find(want[i].id);
        assert_int_equal(r->base, want[i].base);
        assert_int_equal(r->size, want[i].size);
        assert_int_equal(r->spi, want[i].spi);
        assert_int_equal(!!(r->flags & VMAPPLE_PLATFORM_LIBRARY), want[i].library);
    }
    assert_int_equal(find(VMAPPLE_MAP_PCIE_MMIO)->spi_count, 16);
    assert_int_equal(find(VMAPPLE_MAP_AES1)->spi_count, 1);
    assert_true(find(VMAPPLE_MAP_RAM)->flags & VMAPPLE_PLATFORM_MEMORY);
    assert_int_equal(VMAPPLE_RESET_PC, 0x100000);
    assert_int_equal(VMAPPLE_RAM_BASE, 0x70000000);
}

static void test_find_unknown(void **state)
{
    const vmapple_platform_region *r;
    (void)state;
    assert_int_equal(vmapple_platform_find_region(0, &r), -ENOENT);
    assert_int_equal(vmapple_platform_find_region(999, &r), -ENOENT);
    assert_int_equal(vmapple_platform_find_region(VMAPPLE_MAP_CFG, NULL), -EINVAL);
}

static void test_intx_routing(void **state)
{
    (void)state;
    /* The spec's observations: slot 1 -> 0x21, slot 9 -> 0x29, mod 16. */
    assert_int_equal(vmapple_platform_get_intx_spi(1, 1), 0x21);
    assert_int_equal(vmapple_platform_get_intx_spi(9, 1), 0x29);
    assert_int_equal(vmapple_platform_get_intx_spi(6, 1), 0x26);
    assert_int_equal(vmapple_platform_get_intx_spi(16, 1), 0x20);
    assert_int_equal(vmapple_platform_get_intx_spi(31, 1), 0x2f);
    /* Other pins swizzle. */
    assert_int_equal(vmapple_platform_get_intx_spi(1, 2), 0x22);
    assert_int_equal(vmapple_platform_get_intx_spi(15, 4), 0x22);
    assert_int_equal(vmapple_platform_get_intx_spi(32, 1), VMAPPLE_PLATFORM_NO_SPI);
    assert_int_equal(vmapple_platform_get_intx_spi(0, 0), VMAPPLE_PLATFORM_NO_SPI);
    assert_int_equal(vmapple_platform_get_intx_spi(0, 5), VMAPPLE_PLATFORM_NO_SPI);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_sorted_and_disjoint),
        cmocka_unit_test(test_rows_match_the_spec),
        cmocka_unit_test(test_find_unknown),
        cmocka_unit_test(test_intx_routing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
