/* SPDX-License-Identifier: MIT */
/* The xHCI interrupter-mapping policy: the five test vectors of
 * spec/xhci-intr-mapping.md, each rule on its own, out-of-range interrupters,
 * the interrupt-state API and its validation, options, reset and save/load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"
#include "state.h"
#include "mockhost.h"

#define PIN  VMAPPLE_XHCI_IRQ_PIN
#define MSI  VMAPPLE_XHCI_IRQ_MSI
#define MSIX VMAPPLE_XHCI_IRQ_MSIX
#define COND VMAPPLE_XHCI_MAPPING_CONDITIONAL
#define ALWS VMAPPLE_XHCI_MAPPING_ALWAYS

static struct mock_host *host;

static int setup(void **state)
{
    (void)state;
    host = mock_host_new(0, 16);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mock_host_free(host);
    return 0;
}

static vmapple_device *make(uint32_t numintrs, uint32_t mapping)
{
    vmapple_xhci_policy_options o = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_device *dev = NULL;

    o.numintrs = numintrs;
    o.mapping = mapping;
    assert_int_equal(vmapple_xhci_policy_create(mock_host_ops(), host, &o, &dev), 0);
    return dev;
}

/* Puts the controller in `mode` with `vectors` vectors. */
static void set_mode(vmapple_device *dev, uint32_t mode, uint32_t vectors)
{
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT;

    if (mode == MSI) {
        s.flags = VMAPPLE_XHCI_MSI_ENABLED;
        s.msi_vectors = vectors;
    } else if (mode == MSIX) {
        s.flags = VMAPPLE_XHCI_MSIX_ENABLED;
        s.msix_vectors = vectors;
    }
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), 0);
}

static vmapple_xhci_route route(vmapple_device *dev, uint32_t interrupter)
{
    vmapple_xhci_route_request req = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route r = VMAPPLE_XHCI_ROUTE_INIT;

    req.interrupter = interrupter;
    memset((uint8_t *)&r + 4, 0xcc, sizeof(r) - 4); /* every field must be written */
    assert_int_equal(vmapple_xhci_policy_route(dev, &req, &r), 0);
    return r;
}

/* Asserts a delivered event: ring, mode, vector, and whether it signals. */
static void expect(vmapple_device *dev, uint32_t n, uint32_t ring, uint32_t mode, uint32_t vector,
                   bool signal)
{
    vmapple_xhci_route r = route(dev, n);
    uint32_t flags = VMAPPLE_XHCI_ROUTE_DELIVER | (signal ? VMAPPLE_XHCI_ROUTE_SIGNAL : 0);

    if (r.event_ring != ring || r.irq_mode != mode || r.vector != vector || r.flags != flags ||
        r.reserved0 != 0) {
        fail_msg("interrupter %u: ring %u mode %u vector %u flags 0x%x; want ring %u mode %u "
                 "vector %u flags 0x%x",
                 n, r.event_ring, r.irq_mode, r.vector, r.flags, ring, mode, vector, flags);
    }
}

static void expect_dropped(vmapple_device *dev, uint32_t n)
{
    vmapple_xhci_route r = route(dev, n);

    assert_int_equal(r.flags, 0);
    assert_int_equal(r.event_ring, VMAPPLE_XHCI_NO_RING);
}

/* The five test vectors of the spec page. */

static void test_xhci_vector1_pin_quirk_on(void **state)
{
    vmapple_device *dev = make(16, COND);
    (void)state;

    /* (m=16, pin, quirk on, n=2) -> ring 0, pin */
    expect(dev, 2, 0, PIN, 0, true);
    vmapple_device_destroy(dev);
}

static void test_xhci_vector2_pin_quirk_off_lost_interrupt(void **state)
{
    vmapple_device *dev = make(16, ALWS);
    (void)state;

    /* (m=16, pin, quirk off, n=2) -> ring 2, pin: the interrupt is lost. */
    expect(dev, 2, 2, PIN, 0, false);
    vmapple_device_destroy(dev);
}

static void test_xhci_vector3_one_interrupter_msix8(void **state)
{
    vmapple_device *dev = make(1, COND);
    (void)state;

    /* (m=1, MSI-X 8 vectors, n=5) -> ring 0, vector 0 */
    set_mode(dev, MSIX, 8);
    expect(dev, 5, 0, MSIX, 0, true);
    vmapple_device_destroy(dev);
}

static void test_xhci_vector4_msix4_quirk_on(void **state)
{
    vmapple_device *dev = make(16, COND);
    (void)state;

    /* (m=16, MSI-X 4 vectors, quirk on, n=6) -> ring 6, vector 2 */
    set_mode(dev, MSIX, 4);
    expect(dev, 6, 6, MSIX, 2, true);
    vmapple_device_destroy(dev);
}

static void test_xhci_vector5_msi1_quirk_on(void **state)
{
    vmapple_device *dev = make(16, COND);
    (void)state;

    /* (m=16, MSI 1 vector, quirk on, n=3) -> ring 3, vector 0 */
    set_mode(dev, MSI, 1);
    expect(dev, 3, 3, MSI, 0, true);
    vmapple_device_destroy(dev);
}

/* Rule 1, and the reference's old defect: it asserted instead of wrapping. */
static void test_xhci_defect_rule1_vector_modulo_not_assert(void **state)
{
    static const uint32_t msi[] = { 1, 2, 4, 8, 16, 32 };
    (void)state;

    for (uint32_t mapping = 0; mapping < 2; mapping++) {
        vmapple_device *dev = make(64, mapping);
        for (size_t i = 0; i < sizeof(msi) / sizeof(msi[0]); i++) {
            set_mode(dev, MSI, msi[i]);
            for (uint32_t n = 0; n < 64; n++) {
                expect(dev, n, n, MSI, n % msi[i], true);
            }
        }
        for (uint32_t k = 1; k <= 70; k++) {
            set_mode(dev, MSIX, k);
            for (uint32_t n = 0; n < 64; n++) {
                expect(dev, n, n, MSIX, n % k, true);
            }
        }
        vmapple_device_destroy(dev);
    }
}

/* Rule 2: one interrupter, no mapping, in every mode and policy. */
static void test_xhci_rule2_single_interrupter(void **state)
{
    (void)state;

    for (uint32_t mapping = 0; mapping < 2; mapping++) {
        vmapple_device *dev = make(1, mapping);
        for (uint32_t n = 0; n < 1024; n += 7) {
            expect(dev, n, 0, PIN, 0, true);
        }
        set_mode(dev, MSI, 4);
        for (uint32_t n = 0; n < 1024; n += 7) {
            expect(dev, n, 0, MSI, 0, true);
        }
        set_mode(dev, MSIX, 16);
        for (uint32_t n = 0; n < 1024; n += 7) {
            expect(dev, n, 0, MSIX, 0, true);
        }
        expect(dev, UINT32_MAX, 0, MSIX, 0, true);
        vmapple_device_destroy(dev);
    }
}

/* Rule 3: conditional mapping follows MSI/MSI-X enable. */
static void test_xhci_rule3_conditional_mapping(void **state)
{
    vmapple_device *dev = make(16, COND);
    (void)state;

    /* Pin mode: everything to ring 0, which asserts the pin. */
    for (uint32_t n = 0; n < 16; n++) {
        expect(dev, n, 0, PIN, 0, true);
    }
    /* Beyond numintrs too: the quirk maps before the range check. */
    expect(dev, 100, 0, PIN, 0, true);
    /* MSI on: mapping honoured. */
    set_mode(dev, MSI, 2);
    for (uint32_t n = 0; n < 16; n++) {
        expect(dev, n, n, MSI, n % 2, true);
    }
    /* And off again. */
    set_mode(dev, PIN, 0);
    expect(dev, 2, 0, PIN, 0, true);
    vmapple_device_destroy(dev);

    /* Without the quirk pin mode keeps mapping, and only ring 0 signals. */
    dev = make(16, ALWS);
    for (uint32_t n = 0; n < 16; n++) {
        expect(dev, n, n, PIN, 0, n == 0);
    }
    vmapple_device_destroy(dev);
}

static void test_xhci_out_of_range_interrupter(void **state)
{
    vmapple_device *dev = make(4, COND);
    (void)state;

    set_mode(dev, MSIX, 8);
    expect(dev, 3, 3, MSIX, 3, true);
    expect_dropped(dev, 4);
    expect_dropped(dev, 1023);
    expect_dropped(dev, UINT32_MAX);
    assert_true(mock_log_contains(host, "interrupter 4 dropped: the controller has 4"));
    assert_int_equal(host->log_level[0], VMAPPLE_LOG_GUEST_ERROR);
    vmapple_device_destroy(dev);

    dev = make(4, ALWS);
    expect_dropped(dev, 4);
    vmapple_device_destroy(dev);
}

static void test_xhci_msi_and_msix_both_enabled(void **state)
{
    vmapple_device *dev = make(16, COND);
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT;
    (void)state;

    s.flags = VMAPPLE_XHCI_MSI_ENABLED | VMAPPLE_XHCI_MSIX_ENABLED;
    s.msi_vectors = 1;
    s.msix_vectors = 4;
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), 0);
    expect(dev, 7, 7, MSIX, 3, true);
    vmapple_device_destroy(dev);
}

static void test_xhci_irq_state_api(void **state)
{
    vmapple_device *dev = make(16, COND);
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT, g = VMAPPLE_XHCI_IRQ_STATE_INIT;
    struct bad {
        uint32_t flags, msi, msix;
        const char *why;
    };
    static const struct bad bad[] = {
        { 4, 0, 0, "unknown flags" },
        { VMAPPLE_XHCI_MSI_ENABLED, 0, 0, "power of two" },
        { VMAPPLE_XHCI_MSI_ENABLED, 3, 0, "power of two" },
        { VMAPPLE_XHCI_MSI_ENABLED, 64, 0, "power of two" },
        { VMAPPLE_XHCI_MSIX_ENABLED, 0, 0, "1 to 2048" },
        { VMAPPLE_XHCI_MSIX_ENABLED, 0, 2049, "1 to 2048" },
        { VMAPPLE_XHCI_MSIX_ENABLED | VMAPPLE_XHCI_MSI_ENABLED, 5, 8, "power of two" },
    };
    (void)state;

    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, &g), 0);
    assert_int_equal(g.flags, 0);
    assert_int_equal(g.msi_vectors + g.msix_vectors, 0);
    set_mode(dev, MSIX, 2048);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s.flags = bad[i].flags;
        s.msi_vectors = bad[i].msi;
        s.msix_vectors = bad[i].msix;
        assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), -EINVAL);
        if (!strstr(vmapple_device_last_error(dev), bad[i].why)) {
            fail_msg("'%s' lacks '%s'", vmapple_device_last_error(dev), bad[i].why);
        }
        /* Unchanged. */
        assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, &g), 0);
        assert_int_equal(g.flags, VMAPPLE_XHCI_MSIX_ENABLED);
        assert_int_equal(g.msix_vectors, 2048);
    }
    /* Vector counts of a disabled mechanism are ignored. */
    s.flags = VMAPPLE_XHCI_MSI_ENABLED;
    s.msi_vectors = 32;
    s.msix_vectors = 99999;
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), 0);
    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, &g), 0);
    assert_int_equal(g.flags, VMAPPLE_XHCI_MSI_ENABLED);
    assert_int_equal(g.msi_vectors, 32);
    assert_int_equal(g.msix_vectors, 0);
    /* An older caller's struct without msix_vectors. */
    s.size = offsetof(vmapple_xhci_irq_state, msix_vectors);
    s.flags = VMAPPLE_XHCI_MSI_ENABLED;
    s.msi_vectors = 8;
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), 0);
    struct {
        uint32_t size, flags, msi;
        uint32_t sentinel;
    } old = { offsetof(vmapple_xhci_irq_state, msix_vectors), 0, 0, 0xabcd };
    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, (vmapple_xhci_irq_state *)(void *)&old),
                     0);
    assert_int_equal(old.msi, 8);
    assert_int_equal(old.sentinel, 0xabcd);
    /* Host mistakes. */
    s.size = sizeof(s);
    assert_int_equal(vmapple_xhci_policy_set_irq_state(NULL, &s), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, NULL), -EINVAL);
    s.size = 2;
    assert_int_equal(vmapple_xhci_policy_set_irq_state(dev, &s), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_get_irq_state(NULL, &g), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, NULL), -EINVAL);
    g.size = 4;
    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, &g), -EINVAL);
    vmapple_device_destroy(dev);
}

static void test_xhci_route_api_errors(void **state)
{
    vmapple_device *dev = make(16, COND);
    vmapple_device *pv;
    vmapple_xhci_route_request req = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route r = VMAPPLE_XHCI_ROUTE_INIT;
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT;
    (void)state;

    assert_int_equal(vmapple_xhci_policy_route(NULL, &req, &r), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_route(dev, NULL, &r), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_route(dev, &req, NULL), -EINVAL);
    r.size = 4;
    assert_int_equal(vmapple_xhci_policy_route(dev, &req, &r), -EINVAL);
    r.size = sizeof(r);
    req.size = 4; /* does not reach the interrupter field */
    assert_int_equal(vmapple_xhci_policy_route(dev, &req, &r), -EINVAL);
    req.size = sizeof(req);
    /* A shorter answer struct gets only its fields. */
    struct {
        uint32_t size, flags, ring;
        uint32_t sentinel;
    } old = { offsetof(vmapple_xhci_route, irq_mode), 0, 0, 0x5555 };
    req.interrupter = 0;
    assert_int_equal(vmapple_xhci_policy_route(dev, &req, (vmapple_xhci_route *)(void *)&old), 0);
    assert_int_equal(old.flags, VMAPPLE_XHCI_ROUTE_DELIVER | VMAPPLE_XHCI_ROUTE_SIGNAL);
    assert_int_equal(old.sentinel, 0x5555);
    /* A newer request with a non-zero unknown field is refused. */
    struct {
        vmapple_xhci_route_request r;
        uint32_t future;
    } newer = { { sizeof(newer), 0 }, 1 };
    assert_int_equal(vmapple_xhci_policy_route(dev, &newer.r, &r), -EINVAL);
    newer.future = 0;
    assert_int_equal(vmapple_xhci_policy_route(dev, &newer.r, &r), 0);
    /* Another kind of device. */
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, NULL, &pv), 0);
    assert_int_equal(vmapple_xhci_policy_route(pv, &req, &r), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "not an xHCI policy"));
    assert_int_equal(vmapple_xhci_policy_set_irq_state(pv, &s), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_get_irq_state(pv, &s), -EINVAL);
    vmapple_device_destroy(pv);
    vmapple_device_destroy(dev);
}

static void test_xhci_identity_and_options(void **state)
{
    vmapple_xhci_policy_options o = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_device *dev = (vmapple_device *)0x1;
    uint64_t v;
    (void)state;

    /* Defaults: 16 interrupters, conditional mapping. */
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, NULL, &dev), 0);
    assert_int_equal(vmapple_device_get_type(dev), VMAPPLE_DEVICE_XHCI_POLICY);
    assert_string_equal(vmapple_device_get_name(dev), "xhci-policy");
    assert_int_equal(vmapple_device_count_regions(dev), 0);
    assert_int_equal(vmapple_device_count_irqs(dev), 0);
    assert_int_equal(vmapple_device_read(dev, 0, 0, 4, &v), -EINVAL);
    assert_int_equal(vmapple_device_write(dev, 0, 0, 4, 0), -EINVAL);
    expect(dev, 2, 0, PIN, 0, true);
    set_mode(dev, MSIX, 16);
    expect(dev, 15, 15, MSIX, 15, true);
    expect_dropped(dev, 16);
    vmapple_device_destroy(dev);

    o.numintrs = 1024;
    dev = make(1024, ALWS);
    expect(dev, 1023, 1023, PIN, 0, false);
    vmapple_device_destroy(dev);
    o.numintrs = 1025;
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_null(dev);
    assert_non_null(strstr(vmapple_last_error(), "option numintrs is 1025, the limit is 1024"));
    o.numintrs = 0;
    o.mapping = 2;
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "option mapping is 2"));
    o.mapping = 0;
    o.reserved0 = 1;
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), -EINVAL);
    o.reserved0 = 0;
    o.size = 1;
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, NULL, NULL), -EINVAL);
    /* An older caller that knows only numintrs. */
    o.size = offsetof(vmapple_xhci_policy_options, mapping);
    o.numintrs = 4;
    o.mapping = 77; /* beyond its size: ignored */
    assert_int_equal(vmapple_xhci_policy_create(NULL, NULL, &o, &dev), 0);
    expect(dev, 3, 0, PIN, 0, true);
    vmapple_device_destroy(dev);
}

static void test_xhci_reset_back_to_pin(void **state)
{
    vmapple_device *dev = make(16, COND);
    vmapple_xhci_irq_state g = VMAPPLE_XHCI_IRQ_STATE_INIT;
    (void)state;

    set_mode(dev, MSIX, 4);
    expect(dev, 6, 6, MSIX, 2, true);
    assert_int_equal(vmapple_device_reset(dev), 0);
    assert_int_equal(vmapple_xhci_policy_get_irq_state(dev, &g), 0);
    assert_int_equal(g.flags, 0);
    expect(dev, 6, 0, PIN, 0, true);
    vmapple_device_destroy(dev);
}

static uint8_t *save_blob(vmapple_device *dev, size_t *size)
{
    uint8_t *blob;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, size), -ENOSPC);
    blob = malloc(*size);
    assert_int_equal(vmapple_device_save(dev, blob, *size, size), 0);
    return blob;
}

static void test_xhci_save_load(void **state)
{
    vmapple_device *src = make(16, COND), *dst = make(16, COND), *other;
    uint8_t *blob, *bad;
    size_t size;
    (void)state;

    set_mode(src, MSI, 4);
    blob = save_blob(src, &size);
    assert_int_equal(vmapple_device_load(dst, blob, size), 0);
    for (uint32_t n = 0; n < 20; n++) {
        vmapple_xhci_route a = route(src, n), b = route(dst, n);
        assert_memory_equal(&a, &b, sizeof(a));
    }
    expect(dst, 5, 5, MSI, 1, true);

    other = make(8, COND);
    assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "option numintrs"));
    vmapple_device_destroy(other);
    other = make(16, ALWS);
    assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "option mapping"));
    vmapple_device_destroy(other);

    /* Tampered into impossible states, CRC fixed: refused, dst unchanged. */
    static const struct {
        uint32_t off, value;
    } tamper[] = {
        { 8 + 8, 8 },   /* unknown irq flag */
        { 8 + 12, 3 },  /* 3 MSI vectors */
        { 8 + 12, 0 },  /* MSI enabled, no vectors */
        { 8 + 12, 64 }, /* too many MSI vectors */
        { 8 + 16, 4 },  /* MSI-X vectors while MSI-X is off */
    };
    bad = malloc(size);
    set_mode(dst, MSIX, 3);
    for (size_t i = 0; i < sizeof(tamper) / sizeof(tamper[0]); i++) {
        memcpy(bad, blob, size);
        vm_st_le32(bad + 32 + tamper[i].off, tamper[i].value);
        vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
        assert_int_equal(vmapple_device_load(dst, bad, size), -EBADMSG);
    }
    expect(dst, 5, 5, MSIX, 2, true);
    assert_int_equal(vmapple_device_load(dst, blob, size - 4), -EBADMSG);
    vmapple_device *pv;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, NULL, &pv), 0);
    size_t psize;
    uint8_t *pblob = save_blob(pv, &psize);
    assert_int_equal(vmapple_device_load(dst, pblob, psize), -ENODEV);
    assert_int_equal(vmapple_device_load(pv, blob, size), -ENODEV);
    free(pblob);
    vmapple_device_destroy(pv);
    free(bad);
    free(blob);
    vmapple_device_destroy(src);
    vmapple_device_destroy(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_xhci_vector1_pin_quirk_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_vector2_pin_quirk_off_lost_interrupt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_xhci_vector3_one_interrupter_msix8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_vector4_msix4_quirk_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_vector5_msi1_quirk_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_defect_rule1_vector_modulo_not_assert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_xhci_rule2_single_interrupter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_rule3_conditional_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_out_of_range_interrupter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_msi_and_msix_both_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_irq_state_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_route_api_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_identity_and_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_reset_back_to_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xhci_save_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
