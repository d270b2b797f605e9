/* SPDX-License-Identifier: MIT */
/* Core of the ABI: version, errors, host ops, options, the device object,
 * DMA and interrupt helpers, save/load, log rate limiting. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"
#include "state.h"
#include "mockhost.h"
#include "testdev.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x100000ull

struct fixture {
    struct mock_host *h;
    vmapple_device *dev;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    assert_int_equal(testdev_create(mock_host_ops(), f->h, NULL, &f->dev), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vmapple_device_destroy(f->dev);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static uint64_t rd(vmapple_device *dev, uint64_t off)
{
    uint64_t v = 0xdeadbeef;
    assert_int_equal(vmapple_device_read(dev, 0, off, 8, &v), 0);
    return v;
}

static void wr(vmapple_device *dev, uint64_t off, uint64_t v)
{
    assert_int_equal(vmapple_device_write(dev, 0, off, 8, v), 0);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(vmapple_version(), VMAPPLE_VERSION_NUMBER);
    assert_string_equal(vmapple_version_string(), VMAPPLE_VERSION_STRING);
    assert_int_equal(VMAPPLE_VERSION_NUMBER >> 16, VMAPPLE_VERSION_MAJOR);
    assert_int_equal(VMAPPLE_VERSION_MAJOR, 1);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(vmapple_strerror(0), "success");
    assert_string_equal(vmapple_strerror(-EINVAL), "invalid argument");
    assert_string_equal(vmapple_strerror(EINVAL), "invalid argument");
    assert_string_equal(vmapple_strerror(-EBADMSG), "malformed or corrupt data");
    assert_string_equal(vmapple_strerror(-EEXIST), "already exists or overlaps");
    assert_string_equal(vmapple_strerror(-9999), "unknown error 9999");
    assert_non_null(vmapple_strerror(INT_MIN));
    assert_string_equal(vmapple_log_level_name(VMAPPLE_LOG_GUEST_ERROR), "guest-error");
    assert_string_equal(vmapple_log_level_name(99), "unknown");
}

static void *other_thread(void *arg)
{
    (void)arg;
    /* A fresh thread has no error, whatever the main thread did. */
    return (void *)(uintptr_t)(vmapple_last_error()[0] == '\0');
}

static void test_last_error_is_per_thread(void **state)
{
    struct fixture *f = *state;
    pthread_t t;
    void *fresh;

    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 3, &(uint64_t){ 0 }), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "access size 3"));
    assert_non_null(strstr(vmapple_device_last_error(f->dev), "testdev: read: access size 3"));
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &fresh), 0);
    assert_true((uintptr_t)fresh);
}

static void test_null_objects(void **state)
{
    uint64_t v;
    uint32_t v32;
    size_t sz;
    const vmapple_region_info *ri;
    const vmapple_irq_info *ii;
    void *p;
    (void)state;

    vmapple_device_destroy(NULL);
    assert_int_equal(vmapple_device_get_type(NULL), -EINVAL);
    assert_string_equal(vmapple_device_get_name(NULL), "(null)");
    assert_non_null(vmapple_device_last_error(NULL));
    assert_int_equal(vmapple_device_set_name(NULL, "x"), -EINVAL);
    assert_int_equal(vmapple_device_count_regions(NULL), -EINVAL);
    assert_int_equal(vmapple_device_get_region(NULL, 0, &ri), -EINVAL);
    assert_int_equal(vmapple_device_find_region(NULL, "regs"), -EINVAL);
    assert_int_equal(vmapple_device_get_region_memory(NULL, 0, &p, &v), -EINVAL);
    assert_int_equal(vmapple_device_count_irqs(NULL), -EINVAL);
    assert_int_equal(vmapple_device_get_irq(NULL, 0, &ii), -EINVAL);
    assert_int_equal(vmapple_device_read(NULL, 0, 0, 4, &v), -EINVAL);
    assert_int_equal(vmapple_device_write(NULL, 0, 0, 4, 0), -EINVAL);
    assert_int_equal(vmapple_device_reset(NULL), -EINVAL);
    assert_int_equal(vmapple_device_save(NULL, NULL, 0, &sz), -EINVAL);
    assert_int_equal(vmapple_device_load(NULL, "x", 1), -EINVAL);
    assert_int_equal(vmapple_device_poll_fd(NULL), -EINVAL);
    assert_int_equal(vmapple_device_process(NULL), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_read(NULL, 0, 4, &v32), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_write(NULL, 0, 4, 0), -EINVAL);
    assert_int_equal(testdev_create(mock_host_ops(), NULL, NULL, NULL), -EINVAL);
}

static void test_null_arguments(void **state)
{
    struct fixture *f = *state;
    void *p;
    uint64_t v;

    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 8, NULL), -EINVAL);
    assert_int_equal(vmapple_device_get_region(f->dev, 0, NULL), -EINVAL);
    assert_int_equal(vmapple_device_get_irq(f->dev, 0, NULL), -EINVAL);
    assert_int_equal(vmapple_device_find_region(f->dev, NULL), -EINVAL);
    assert_int_equal(vmapple_device_get_region_memory(f->dev, 1, NULL, &v), -EINVAL);
    assert_int_equal(vmapple_device_get_region_memory(f->dev, 1, &p, NULL), -EINVAL);
    assert_int_equal(vmapple_device_save(f->dev, NULL, 0, NULL), -EINVAL);
    assert_int_equal(vmapple_device_load(f->dev, NULL, 10), -EINVAL);
    assert_int_equal(vmapple_device_set_name(f->dev, NULL), -EINVAL);
}

/* A caller built against an older header: its host ops end before `log`. */
static int old_log_calls;
static void counting_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    (void)msg;
    old_log_calls++;
}

static void test_host_ops_older_caller(void **state)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_device *dev;
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    (void)state;

    ops = *mock_host_ops();
    ops.log = counting_log;
    ops.size = offsetof(vmapple_host_ops, log);
    assert_int_equal(testdev_create(&ops, h, NULL, &dev), 0);
    old_log_calls = 0;
    /* An unknown register logs a guest error, but this caller has no log field. */
    wr(dev, 0x80, 1);
    assert_int_equal(old_log_calls, 0);
    /* Fields it did have still work. */
    wr(dev, 0x08, 1);
    assert_int_equal(h->irq_level[0], 1);
    vmapple_device_destroy(dev);

    ops.size = sizeof(ops);
    assert_int_equal(testdev_create(&ops, h, NULL, &dev), 0);
    wr(dev, 0x80, 1);
    assert_int_equal(old_log_calls, 1);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

static void test_host_ops_bad_and_newer_sizes(void **state)
{
    struct {
        vmapple_host_ops ops;
        void *future_callback;
    } newer;
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_device *dev = NULL;
    (void)state;

    ops.size = 0;
    assert_int_equal(testdev_create(&ops, NULL, NULL, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "VMAPPLE_HOST_OPS_INIT"));
    assert_null(dev);

    /* A newer caller's callbacks that we do not know are ignored, not refused. */
    memset(&newer, 0, sizeof(newer));
    newer.ops = *mock_host_ops();
    newer.ops.size = sizeof(newer);
    newer.future_callback = (void *)&newer;
    assert_int_equal(testdev_create(&newer.ops, NULL, NULL, &dev), 0);
    vmapple_device_destroy(dev);

    /* No host ops at all is allowed for a device that needs none. */
    assert_int_equal(testdev_create(NULL, NULL, NULL, &dev), 0);
    wr(dev, 0x08, 1); /* no irq_set: nothing to call, no crash */
    vmapple_device_destroy(dev);
}

static void test_options_sizes(void **state)
{
    struct {
        struct testdev_options o;
        uint64_t future_option;
    } big;
    struct testdev_options o = { sizeof(o), 0, 0x1234 };
    vmapple_device *dev;
    (void)state;

    /* NULL: defaults. */
    assert_int_equal(testdev_create(NULL, NULL, NULL, &dev), 0);
    assert_int_equal(rd(dev, 0), 0x5a5a);
    vmapple_device_destroy(dev);

    assert_int_equal(testdev_create(NULL, NULL, &o, &dev), 0);
    assert_int_equal(rd(dev, 0), 0x1234);
    vmapple_device_destroy(dev);

    /* An older caller whose struct ends before scratch_reset: default used. */
    o.size = offsetof(struct testdev_options, scratch_reset);
    assert_int_equal(testdev_create(NULL, NULL, &o, &dev), 0);
    assert_int_equal(rd(dev, 0), 0x5a5a);
    vmapple_device_destroy(dev);

    /* A newer caller that leaves its new fields zero: accepted. */
    memset(&big, 0, sizeof(big));
    big.o.size = sizeof(big);
    big.o.scratch_reset = 77;
    assert_int_equal(testdev_create(NULL, NULL, &big.o, &dev), 0);
    assert_int_equal(rd(dev, 0), 77);
    vmapple_device_destroy(dev);

    /* A newer caller that asks for an option we lack: refused, and said why. */
    big.future_option = 1;
    dev = NULL;
    assert_int_equal(testdev_create(NULL, NULL, &big.o, &dev), -EINVAL);
    assert_null(dev);
    assert_non_null(strstr(vmapple_last_error(), "testdev options"));
    assert_non_null(strstr(vmapple_last_error(), "beyond the 16 bytes"));

    o.size = 0;
    assert_int_equal(testdev_create(NULL, NULL, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "size field is 0"));
}

static void test_regions_and_irqs(void **state)
{
    struct fixture *f = *state;
    const vmapple_region_info *ri;
    const vmapple_irq_info *ii;
    void *mem;
    uint64_t size, v;

    assert_int_equal(vmapple_device_get_type(f->dev), TESTDEV_TYPE);
    assert_string_equal(vmapple_device_get_name(f->dev), "testdev");
    assert_int_equal(vmapple_device_count_regions(f->dev), 2);
    assert_int_equal(vmapple_device_get_region(f->dev, 0, &ri), 0);
    assert_string_equal(ri->name, "regs");
    assert_int_equal(ri->size, 0x100);
    assert_int_equal(ri->base, TESTDEV_BASE);
    assert_int_equal(ri->flags, VMAPPLE_REGION_MMIO);
    assert_int_equal(vmapple_device_get_region(f->dev, 2, &ri), -ENOENT);
    assert_int_equal(vmapple_device_find_region(f->dev, "mem"), 1);
    assert_int_equal(vmapple_device_find_region(f->dev, "nope"), -ENOENT);

    assert_int_equal(vmapple_device_get_region_memory(f->dev, 0, &mem, &size), -ENOTSUP);
    assert_int_equal(vmapple_device_get_region_memory(f->dev, 5, &mem, &size), -ENOENT);
    assert_int_equal(vmapple_device_get_region_memory(f->dev, 1, &mem, &size), 0);
    assert_int_equal(size, 0x1000);
    /* The exposed bytes are the region: a host store is a guest load. */
    ((uint8_t *)mem)[0x10] = 0xab;
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x10, 1, &v), 0);
    assert_int_equal(v, 0xab);

    assert_int_equal(vmapple_device_count_irqs(f->dev), 2);
    assert_int_equal(vmapple_device_get_irq(f->dev, 1, &ii), 0);
    assert_string_equal(ii->name, "line1");
    assert_int_equal(ii->spi, 0x31);
    assert_int_equal(vmapple_device_get_irq(f->dev, 2, &ii), -ENOENT);
}

static void test_set_name(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(vmapple_device_set_name(f->dev, "testdev-root"), 0);
    assert_string_equal(vmapple_device_get_name(f->dev), "testdev-root");
    wr(f->dev, 0x80, 0);
    assert_true(mock_log_contains(f->h, "testdev-root: write of unknown register 0x80"));
    assert_int_equal(vmapple_device_set_name(f->dev, ""), -EINVAL);
    assert_int_equal(vmapple_device_set_name(f->dev, "0123456789012345678901234567890123"),
                     -EINVAL);
    assert_string_equal(vmapple_device_get_name(f->dev), "testdev-root");
}

static void test_access_checks(void **state)
{
    struct fixture *f = *state;
    uint64_t v = 1;

    for (uint32_t size = 0; size <= 9; size++) {
        int want = (size == 1 || size == 2 || size == 4 || size == 8) ? 0 : -EINVAL;
        assert_int_equal(vmapple_device_read(f->dev, 0, 0, size, &v), want);
        assert_int_equal(vmapple_device_write(f->dev, 1, 0, size, 0), want);
    }
    assert_int_equal(vmapple_device_read(f->dev, 2, 0, 4, &v), -EINVAL);
    assert_int_equal(v, 0);
    assert_non_null(strstr(vmapple_device_last_error(f->dev), "no region 2"));
    /* The last bytes of a region are fine, one past is a host bus error. */
    assert_int_equal(vmapple_device_read(f->dev, 0, 0xf8, 8, &v), 0);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0xfc, 8, &v), -EINVAL);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0x100, 1, &v), -EINVAL);
    assert_int_equal(vmapple_device_read(f->dev, 0, UINT64_MAX, 1, &v), -EINVAL);
    assert_int_equal(vmapple_device_write(f->dev, 0, UINT64_MAX - 3, 8, 0), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(f->dev), "do not fit region regs"));
    /* Narrow reads see the low bytes; writes are masked to their size. */
    wr(f->dev, 0, 0x1122334455667788ull);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0, 2, &v), 0);
    assert_int_equal(v, 0x7788);
    assert_int_equal(vmapple_device_read(f->dev, 0, 4, 4, &v), 0);
    assert_int_equal(v, 0x11223344);
    assert_int_equal(vmapple_device_write(f->dev, 1, 0, 1, 0x1ff), 0);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0, 2, &v), 0);
    assert_int_equal(v, 0xff);
}

static void test_irq_changes_only(void **state)
{
    struct fixture *f = *state;

    wr(f->dev, 0x08, 1);
    wr(f->dev, 0x08, 1);
    wr(f->dev, 0x08, 3);
    assert_int_equal(f->h->irq_level[0], 1);
    assert_int_equal(f->h->irq_changes[0], 1);
    assert_int_equal(f->h->irq_level[1], 1);
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(f->h->irq_level[1], 0);
    assert_int_equal(f->h->irq_changes[0], 2);
    /* Reset of an idle device does not toggle lines. */
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(f->h->irq_changes[0], 2);
}

static void test_dma(void **state)
{
    struct fixture *f = *state;
    uint8_t *src = mock_ram(f->h, RAM_BASE + 0x100, 64);
    uint8_t *dst = mock_ram(f->h, RAM_BASE + 0x1000, 64);

    for (int i = 0; i < 64; i++) {
        src[i] = (uint8_t)i;
    }
    wr(f->dev, 0x10, RAM_BASE + 0x100);
    wr(f->dev, 0x18, RAM_BASE + 0x1000);
    wr(f->dev, 0x20, 64);
    wr(f->dev, 0x28, 1);
    assert_int_equal(rd(f->dev, 0x30), 0);
    assert_memory_equal(src, dst, 64);

    /* Outside guest RAM: the host says -EFAULT, the device reports it. */
    wr(f->dev, 0x10, RAM_BASE + RAM_SIZE - 8);
    wr(f->dev, 0x28, 1);
    assert_int_equal((int64_t)rd(f->dev, 0x30), -EFAULT);

    /* A range that wraps the address space never reaches the host. */
    unsigned reads = f->h->mem_reads;
    wr(f->dev, 0x10, UINT64_MAX - 8);
    wr(f->dev, 0x28, 1);
    assert_int_equal((int64_t)rd(f->dev, 0x30), -EFAULT);
    assert_int_equal(f->h->mem_reads, reads);

    /* DMA disabled (bus mastering off): nothing reaches the host. */
    wr(f->dev, 0x10, RAM_BASE + 0x100);
    wr(f->dev, 0x38, 0);
    wr(f->dev, 0x28, 1);
    assert_int_equal((int64_t)rd(f->dev, 0x30), -EPERM);
    assert_int_equal(f->h->mem_reads, reads);
}

static void test_dma_map_helper(void **state)
{
    struct fixture *f = *state;
    uint64_t got = 99;
    void *p;

    /* The host does not offer mapping: NULL, caller falls back. */
    f->h->allow_map = false;
    assert_null(vm_dma_map(f->dev, RAM_BASE, 4096, true, &got));
    assert_int_equal(got, 0);
    f->h->allow_map = true;
    f->h->map_chunk = 1000;
    p = vm_dma_map(f->dev, RAM_BASE, 4096, true, &got);
    assert_ptr_equal(p, f->h->ram);
    assert_int_equal(got, 1000);
    assert_int_equal(f->h->maps_live, 1);
    vm_dma_unmap(f->dev, p, got, true);
    assert_int_equal(f->h->maps_live, 0);
    /* Not RAM. */
    assert_null(vm_dma_map(f->dev, 0x1000, 16, false, &got));
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static void test_log_ratelimit(void **state)
{
    struct fixture *f = *state;

    vm_clock_hook = fake_clock;
    fake_now = 1000;
    mock_log_clear(f->h);
    /* A burst passes, then a hostile guest is silenced. */
    for (int i = 0; i < 1000; i++) {
        wr(f->dev, 0x80, 0);
    }
    assert_int_equal(f->h->nr_log, VM_RATELIMIT_BURST);
    assert_int_equal(f->h->log_level[0], VMAPPLE_LOG_GUEST_ERROR);
    /* A second later one more line passes and says how many were dropped. */
    fake_now += VM_RATELIMIT_INTERVAL_NS;
    wr(f->dev, 0x80, 0);
    assert_int_equal(f->h->nr_log, VM_RATELIMIT_BURST + 1);
    assert_true(mock_log_contains(f->h, "(990 similar messages suppressed)"));
    wr(f->dev, 0x80, 0);
    assert_int_equal(f->h->nr_log, VM_RATELIMIT_BURST + 1);
    /* After a long quiet spell the burst is back, no more. */
    fake_now += 1000 * VM_RATELIMIT_INTERVAL_NS;
    for (int i = 0; i < 100; i++) {
        wr(f->dev, 0x80, 0);
    }
    assert_int_equal(f->h->nr_log, 2 * VM_RATELIMIT_BURST + 1);
    vm_clock_hook = NULL;
}

static void test_save_load_roundtrip(void **state)
{
    struct fixture *f = *state;
    vmapple_device *copy;
    uint8_t *blob;
    size_t size = 0, used = 0;
    struct mock_host *h2 = mock_host_new(RAM_BASE, RAM_SIZE);

    wr(f->dev, 0x00, 0xfeedface);
    wr(f->dev, 0x10, RAM_BASE + 8);
    wr(f->dev, 0x08, 2);
    assert_int_equal(vmapple_device_write(f->dev, 1, 0x20, 4, 0xcafe), 0);

    assert_int_equal(vmapple_device_save(f->dev, NULL, 0, &size), -ENOSPC);
    assert_true(size > 32);
    blob = malloc(size);
    assert_int_equal(vmapple_device_save(f->dev, blob, size - 1, &used), -ENOSPC);
    assert_int_equal(used, size);
    assert_int_equal(vmapple_device_save(f->dev, blob, size, &used), 0);
    assert_int_equal(used, size);

    assert_int_equal(testdev_create(mock_host_ops(), h2, NULL, &copy), 0);
    assert_int_equal(vmapple_device_load(copy, blob, size), 0);
    assert_int_equal(rd(copy, 0x00), 0xfeedface);
    assert_int_equal(rd(copy, 0x10), RAM_BASE + 8);
    uint64_t v;
    assert_int_equal(vmapple_device_read(copy, 1, 0x20, 4, &v), 0);
    assert_int_equal(v, 0xcafe);
    /* The loaded device tells its host the line levels. */
    assert_int_equal(h2->irq_level[1], 1);
    assert_int_equal(h2->irq_level[0], 0);
    assert_int_equal(h2->irq_changes[0], 1);
    /* And behaves like the original: dropping line 1 is a change. */
    wr(copy, 0x08, 0);
    assert_int_equal(h2->irq_level[1], 0);

    vmapple_device_destroy(copy);
    mock_host_free(h2);
    free(blob);
}

static void test_load_refuses_bad_blobs(void **state)
{
    struct fixture *f = *state;
    vmapple_device *copy;
    uint8_t *blob, *bad;
    size_t size = 0;

    wr(f->dev, 0x00, 0x1111);
    vmapple_device_save(f->dev, NULL, 0, &size);
    blob = malloc(size);
    bad = malloc(size);
    assert_int_equal(vmapple_device_save(f->dev, blob, size, &size), 0);
    assert_int_equal(testdev_create(NULL, NULL, NULL, &copy), 0);
    wr(copy, 0x00, 0x2222);

    /* Every truncation is refused and leaves the device as it was. */
    for (size_t n = 0; n < size; n++) {
        int ret = vmapple_device_load(copy, blob, n);
        assert_true(ret == -EBADMSG);
    }
    assert_int_equal(rd(copy, 0x00), 0x2222);

    /* A flipped payload byte fails the checksum. */
    memcpy(bad, blob, size);
    bad[40] ^= 1;
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);
    assert_non_null(strstr(vmapple_device_last_error(copy), "checksum"));

    /* Another device's blob. */
    memcpy(bad, blob, size);
    vm_st_le32(bad + 12, VMAPPLE_DEVICE_AES);
    assert_int_equal(vmapple_device_load(copy, bad, size), -ENODEV);

    /* A newer state version, a newer format. */
    memcpy(bad, blob, size);
    vm_st_le32(bad + 16, 3);
    assert_int_equal(vmapple_device_load(copy, bad, size), -EPROTONOSUPPORT);
    memcpy(bad, blob, size);
    vm_st_le32(bad + 8, 2);
    assert_int_equal(vmapple_device_load(copy, bad, size), -EPROTONOSUPPORT);

    /* Not a blob at all. */
    memset(bad, 0x41, size);
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);

    /* A trailing byte: the payload length no longer matches. */
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, blob, size);
    longer[size] = 0;
    assert_int_equal(vmapple_device_load(copy, longer, size + 1), -EBADMSG);
    free(longer);

    /* Interrupt levels for a line the device does not have. */
    memcpy(bad, blob, size);
    vm_st_le64(bad + 32, 4);
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);

    /* A bool that is neither 0 nor 1 (the device rejects it). */
    memcpy(bad, blob, size);
    bad[32 + 8 + 40] = 7;
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);

    assert_int_equal(rd(copy, 0x00), 0x2222);
    assert_int_equal(vmapple_device_load(copy, blob, size), 0);
    assert_int_equal(rd(copy, 0x00), 0x1111);
    vmapple_device_destroy(copy);
    free(blob);
    free(bad);
}

static void test_not_pci_not_async(void **state)
{
    struct fixture *f = *state;
    uint32_t v = 5;

    assert_int_equal(vmapple_device_pci_config_read(f->dev, 0, 4, &v), -ENOTSUP);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_pci_config_write(f->dev, 0, 4, 0), -ENOTSUP);
    assert_int_equal(vmapple_device_poll_fd(f->dev), -ENOTSUP);
    assert_int_equal(vmapple_device_process(f->dev), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test_setup_teardown(test_last_error_is_per_thread, setup, teardown),
        cmocka_unit_test(test_null_objects),
        cmocka_unit_test_setup_teardown(test_null_arguments, setup, teardown),
        cmocka_unit_test(test_host_ops_older_caller),
        cmocka_unit_test(test_host_ops_bad_and_newer_sizes),
        cmocka_unit_test(test_options_sizes),
        cmocka_unit_test_setup_teardown(test_regions_and_irqs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_changes_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_map_helper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_ratelimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_pci_not_async, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
