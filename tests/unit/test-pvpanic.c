/* SPDX-License-Identifier: MIT */
/* pvpanic: reads at every offset and size, event delivery to the host's
 * callback and counters, unsupported bits, the supported-set option, reports
 * without a log callback, rate-limited logging, the counts query, reset and
 * save/load. */
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

#define MAX_EVENTS 256

/* The host's record of events; the opaque pointer is the mock host. */
static struct {
    void *opaque[MAX_EVENTS];
    uint32_t events[MAX_EVENTS];
    unsigned n;
} seen;

static void on_event(void *opaque, uint32_t events)
{
    if (seen.n < MAX_EVENTS) {
        seen.opaque[seen.n] = opaque;
        seen.events[seen.n] = events;
    }
    seen.n++;
}

struct fx {
    struct mock_host *h;
    vmapple_device *dev;
};

static vmapple_device *make(struct mock_host *h, uint32_t events, bool callback)
{
    vmapple_pvpanic_options o = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_device *dev = NULL;

    o.events = events;
    o.event = callback ? on_event : NULL;
    assert_int_equal(vmapple_pvpanic_create(mock_host_ops(), h, &o, &dev), 0);
    return dev;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    memset(&seen, 0, sizeof(seen));
    f->h = mock_host_new(0, 16);
    f->dev = make(f->h, 0, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    vmapple_device_destroy(f->dev);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static vmapple_pvpanic_counts counts_of(const vmapple_device *dev)
{
    vmapple_pvpanic_counts c = VMAPPLE_PVPANIC_COUNTS_INIT;
    assert_int_equal(vmapple_pvpanic_get_counts(dev, &c), 0);
    return c;
}

static void wr(vmapple_device *dev, uint64_t off, uint32_t size, uint64_t v)
{
    assert_int_equal(vmapple_device_write(dev, 0, off, size, v), 0);
}

static void test_pvpanic_identity_and_map(void **state)
{
    struct fx *f = *state;
    const vmapple_region_info *ri;
    const vmapple_platform_region *pr;

    assert_int_equal(vmapple_device_get_type(f->dev), VMAPPLE_DEVICE_PVPANIC);
    assert_string_equal(vmapple_device_get_name(f->dev), "pvpanic");
    assert_int_equal(vmapple_device_count_regions(f->dev), 1);
    assert_int_equal(vmapple_device_count_irqs(f->dev), 0);
    assert_int_equal(vmapple_device_get_region(f->dev, 0, &ri), 0);
    assert_string_equal(ri->name, "pvpanic");
    assert_int_equal(ri->base, 0x20070000);
    assert_int_equal(ri->size, 2);
    assert_int_equal(ri->flags, VMAPPLE_REGION_MMIO);
    assert_int_equal(vmapple_platform_find_region(VMAPPLE_MAP_PVPANIC, &pr), 0);
    assert_int_equal(ri->base, pr->base);
    assert_int_equal(ri->size, pr->size);
}

static void test_pvpanic_reads_supported_events(void **state)
{
    struct fx *f = *state;
    uint64_t v;
    vmapple_device *dev;

    /* Default: PANICKED | CRASH_LOADED, at both offsets; 2 bytes zero-extended. */
    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 1, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(vmapple_device_read(f->dev, 0, 1, 1, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 2, &v), 0);
    assert_int_equal(v, 3);
    /* Wider than the window: a bus error of the host, not a guest access. */
    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 4, &v), -EINVAL);
    assert_int_equal(vmapple_device_read(f->dev, 0, 1, 2, &v), -EINVAL);

    dev = make(f->h, VMAPPLE_PVPANIC_DEFAULT_EVENTS | VMAPPLE_PVPANIC_SHUTDOWN, true);
    assert_int_equal(vmapple_device_read(dev, 0, 1, 1, &v), 0);
    assert_int_equal(v, 7);
    vmapple_device_destroy(dev);
    dev = make(f->h, VMAPPLE_PVPANIC_PANICKED, true);
    assert_int_equal(vmapple_device_read(dev, 0, 0, 2, &v), 0);
    assert_int_equal(v, 1);
    vmapple_device_destroy(dev);
}

static void test_pvpanic_events_reach_host(void **state)
{
    struct fx *f = *state;
    vmapple_pvpanic_counts c;

    wr(f->dev, 0, 1, VMAPPLE_PVPANIC_PANICKED);
    wr(f->dev, 1, 1, VMAPPLE_PVPANIC_CRASH_LOADED);
    wr(f->dev, 0, 2, VMAPPLE_PVPANIC_PANICKED | VMAPPLE_PVPANIC_CRASH_LOADED);
    wr(f->dev, 0, 1, 0); /* no event: nothing */
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.events[0], VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(seen.events[1], VMAPPLE_PVPANIC_CRASH_LOADED);
    assert_int_equal(seen.events[2], VMAPPLE_PVPANIC_PANICKED | VMAPPLE_PVPANIC_CRASH_LOADED);
    assert_ptr_equal(seen.opaque[0], f->h);
    c = counts_of(f->dev);
    assert_int_equal(c.supported, 3);
    assert_int_equal(c.panicked, 2);
    assert_int_equal(c.crash_loaded, 2);
    assert_int_equal(c.shutdown, 0);
    assert_int_equal(c.unsupported_writes, 0);
    assert_true(mock_log_contains(f->h, "pvpanic: guest reported panicked"));
}

static void test_pvpanic_unsupported_bits_ignored_logged_once(void **state)
{
    struct fx *f = *state;
    vmapple_pvpanic_counts c;

    wr(f->dev, 0, 1, VMAPPLE_PVPANIC_SHUTDOWN); /* not supported by default */
    assert_int_equal(seen.n, 0);
    assert_true(mock_log_contains(f->h, "unsupported event bits 0x4 ignored"));
    unsigned lines = f->h->nr_log;
    wr(f->dev, 0, 1, 0xf8);
    wr(f->dev, 1, 1, VMAPPLE_PVPANIC_SHUTDOWN);
    assert_int_equal(f->h->nr_log, lines);
    /* Supported bits of a mixed write still count. */
    wr(f->dev, 0, 2, 0xff01);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.events[0], VMAPPLE_PVPANIC_PANICKED);
    c = counts_of(f->dev);
    assert_int_equal(c.panicked, 1);
    assert_int_equal(c.shutdown, 0);
    assert_int_equal(c.unsupported_writes, 4);
}

static void test_pvpanic_shutdown_option(void **state)
{
    struct fx *f = *state;
    vmapple_device *dev =
        make(f->h, VMAPPLE_PVPANIC_DEFAULT_EVENTS | VMAPPLE_PVPANIC_SHUTDOWN, true);
    vmapple_pvpanic_counts c;

    wr(dev, 0, 1, VMAPPLE_PVPANIC_SHUTDOWN);
    wr(dev, 0, 1, 7);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.events[0], VMAPPLE_PVPANIC_SHUTDOWN);
    assert_int_equal(seen.events[1], 7);
    c = counts_of(dev);
    assert_int_equal(c.supported, 7);
    assert_int_equal(c.shutdown, 2);
    assert_int_equal(c.panicked, 1);
    assert_int_equal(c.unsupported_writes, 0);
    assert_true(mock_log_contains(f->h, "shutdown"));
    vmapple_device_destroy(dev);

    /* A set without PANICKED: a panic write is ignored. */
    dev = make(f->h, VMAPPLE_PVPANIC_SHUTDOWN, true);
    seen.n = 0;
    wr(dev, 0, 1, VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(seen.n, 0);
    assert_int_equal(counts_of(dev).unsupported_writes, 1);
    vmapple_device_destroy(dev);
}

/* A panic report must not depend on the host's log callback. */
static void test_pvpanic_panic_reaches_host_without_log(void **state)
{
    struct mock_host *h = mock_host_new(0, 16);
    vmapple_host_ops ops = *mock_host_ops();
    vmapple_pvpanic_options o = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_device *dev;
    (void)state;

    memset(&seen, 0, sizeof(seen));
    ops.log = NULL;
    o.event = on_event;
    assert_int_equal(vmapple_pvpanic_create(&ops, h, &o, &dev), 0);
    wr(dev, 0, 1, VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.events[0], VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(counts_of(dev).panicked, 1);
    assert_int_equal(h->nr_log, 0);
    vmapple_device_destroy(dev);

    /* No host ops at all. */
    assert_int_equal(vmapple_pvpanic_create(NULL, h, &o, &dev), 0);
    wr(dev, 0, 1, VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(seen.n, 2);
    assert_ptr_equal(seen.opaque[1], h);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

static void test_pvpanic_without_callback(void **state)
{
    struct fx *f = *state;
    vmapple_device *dev = make(f->h, 0, false);

    wr(dev, 0, 1, VMAPPLE_PVPANIC_PANICKED);
    assert_int_equal(seen.n, 0);
    assert_int_equal(counts_of(dev).panicked, 1);
    assert_true(mock_log_contains(f->h, "panicked"));
    assert_int_equal(f->h->log_level[0], VMAPPLE_LOG_WARNING);
    vmapple_device_destroy(dev);
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static void test_pvpanic_flood_counts_all_logs_few(void **state)
{
    struct fx *f = *state;

    vm_clock_hook = fake_clock;
    fake_now = 5;
    for (int i = 0; i < 200; i++) {
        wr(f->dev, 0, 1, VMAPPLE_PVPANIC_CRASH_LOADED);
    }
    vm_clock_hook = NULL;
    /* Every event reaches the host; the log gets a burst. */
    assert_int_equal(seen.n, 200);
    assert_int_equal(counts_of(f->dev).crash_loaded, 200);
    assert_int_equal(f->h->nr_log, VM_RATELIMIT_BURST);
    assert_int_equal(f->h->log_level[0], VMAPPLE_LOG_INFO);
}

static void test_pvpanic_options(void **state)
{
    struct fx *f = *state;
    vmapple_pvpanic_options o = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_device *dev = (vmapple_device *)0x1;
    struct {
        vmapple_pvpanic_options o;
        uint64_t future;
    } newer;

    o.events = 8;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_null(dev);
    assert_non_null(strstr(vmapple_last_error(), "pvpanic: option events: unknown bits 0x8"));
    o.events = 0x80000001;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &o, &dev), -EINVAL);
    o.events = 0;
    o.size = 0;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, NULL, NULL), -EINVAL);
    /* Defaults. */
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, NULL, &dev), 0);
    assert_int_equal(counts_of(dev).supported, 3);
    vmapple_device_destroy(dev);
    /* A size ending inside the callback pointer. */
    o.size = offsetof(vmapple_pvpanic_options, event) + 4;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "ends inside the event pointer"));
    /* An older caller without the callback field. */
    o.size = offsetof(vmapple_pvpanic_options, event);
    o.events = 7;
    o.event = (vmapple_pvpanic_event_fn)0x1; /* beyond its size: never called */
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &o, &dev), 0);
    wr(dev, 0, 1, 1);
    assert_int_equal(counts_of(dev).supported, 7);
    vmapple_device_destroy(dev);
    /* A newer caller. */
    memset(&newer, 0, sizeof(newer));
    newer.o.size = sizeof(newer);
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &newer.o, &dev), 0);
    vmapple_device_destroy(dev);
    newer.future = 1;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, &newer.o, &dev), -EINVAL);
    (void)f;
}

static void test_pvpanic_get_counts_api(void **state)
{
    struct fx *f = *state;
    vmapple_pvpanic_counts c = VMAPPLE_PVPANIC_COUNTS_INIT;
    vmapple_device *cfg;
    struct {
        uint32_t size, supported;
        uint64_t panicked;
        uint64_t sentinel;
    } old;

    assert_int_equal(vmapple_pvpanic_get_counts(NULL, &c), -EINVAL);
    assert_int_equal(vmapple_pvpanic_get_counts(f->dev, NULL), -EINVAL);
    c.size = 4;
    assert_int_equal(vmapple_pvpanic_get_counts(f->dev, &c), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "VMAPPLE_PVPANIC_COUNTS_INIT"));
    assert_int_equal(vmapple_cfg_create(NULL, NULL, NULL, &cfg), 0);
    c.size = sizeof(c);
    assert_int_equal(vmapple_pvpanic_get_counts(cfg, &c), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "not a pvpanic"));
    vmapple_device_destroy(cfg);
    /* An older, shorter struct: filled up to its size, nothing beyond. */
    wr(f->dev, 0, 1, 1);
    memset(&old, 0xcc, sizeof(old));
    old.size = offsetof(vmapple_pvpanic_counts, crash_loaded);
    assert_int_equal(vmapple_pvpanic_get_counts(f->dev, (vmapple_pvpanic_counts *)(void *)&old), 0);
    assert_int_equal(old.supported, 3);
    assert_int_equal(old.panicked, 1);
    assert_int_equal(old.sentinel, 0xccccccccccccccccull);
}

static void test_pvpanic_reset_keeps_counts(void **state)
{
    struct fx *f = *state;
    uint64_t v;

    wr(f->dev, 0, 1, 1);
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(counts_of(f->dev).panicked, 1);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 1, &v), 0);
    assert_int_equal(v, 3);
    wr(f->dev, 0, 1, 1);
    assert_int_equal(counts_of(f->dev).panicked, 2);
}

static uint8_t *save_blob(vmapple_device *dev, size_t *size)
{
    uint8_t *blob;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, size), -ENOSPC);
    blob = malloc(*size);
    assert_int_equal(vmapple_device_save(dev, blob, *size, size), 0);
    return blob;
}

static void fix_crc(uint8_t *blob, size_t size)
{
    vm_st_le32(blob + 24, vm_crc32(blob + 32, size - 32));
}

static void test_pvpanic_save_load(void **state)
{
    struct fx *f = *state;
    vmapple_device *dst = make(f->h, 0, true);
    vmapple_device *sd = make(f->h, 7, true);
    vmapple_pvpanic_counts c;
    uint8_t *blob, *bad;
    size_t size;

    wr(f->dev, 0, 1, 1);
    wr(f->dev, 0, 1, 3);
    wr(f->dev, 0, 1, 4);
    blob = save_blob(f->dev, &size);
    assert_int_equal(vmapple_device_load(dst, blob, size), 0);
    c = counts_of(dst);
    assert_int_equal(c.panicked, 2);
    assert_int_equal(c.crash_loaded, 1);
    assert_int_equal(c.unsupported_writes, 1);
    /* It behaves the same: the unsupported-bits line was already logged. */
    unsigned lines = f->h->nr_log;
    wr(dst, 0, 1, 4);
    assert_int_equal(f->h->nr_log, lines);
    assert_int_equal(counts_of(dst).unsupported_writes, 2);

    /* Another supported set. */
    assert_int_equal(vmapple_device_load(sd, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(sd), "option events"));

    /* Tampered: shutdown counted on a device that does not support it. */
    bad = malloc(size);
    memcpy(bad, blob, size);
    vm_st_le64(bad + 32 + 8 + 4 + 16, 5);
    fix_crc(bad, size);
    assert_int_equal(vmapple_device_load(dst, bad, size), -EBADMSG);
    /* Tampered: "logged" without any unsupported write. */
    memcpy(bad, blob, size);
    vm_st_le64(bad + 32 + 8 + 4 + 24, 0);
    fix_crc(bad, size);
    assert_int_equal(vmapple_device_load(dst, bad, size), -EBADMSG);
    /* Truncated. */
    assert_int_equal(vmapple_device_load(dst, blob, size - 1), -EBADMSG);
    /* Failed loads changed nothing. */
    assert_int_equal(counts_of(dst).unsupported_writes, 2);
    free(bad);
    free(blob);
    vmapple_device_destroy(dst);
    vmapple_device_destroy(sd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pvpanic_identity_and_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_reads_supported_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_events_reach_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_unsupported_bits_ignored_logged_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_shutdown_option, setup, teardown),
        cmocka_unit_test(test_pvpanic_panic_reaches_host_without_log),
        cmocka_unit_test_setup_teardown(test_pvpanic_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_flood_counts_all_logs_few, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_get_counts_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_reset_keeps_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pvpanic_save_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
