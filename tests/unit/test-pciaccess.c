/* SPDX-License-Identifier: MIT */
/*
 * The libpciaccess backend on this machine's real PCI functions, read-only:
 * enumeration, identity, config bytes and BAR sizes compared with what
 * /sys/bus/pci/devices/ gives, and a passthrough object on a real function
 * that maps nothing. Nothing here writes to a device: the backend is
 * created without VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE and no config write is
 * issued. Skipped (exit 77) where the library has no libpciaccess, no PCI
 * function is visible, or none can be read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libvmapple/libvmapple.h>

#define SYSFS   "/sys/bus/pci/devices"
#define MAX_FNS 256

struct sysfs_fn {
    unsigned domain, bus, dev, fn;
    char path[300];
};

static struct sysfs_fn fns[MAX_FNS];
static unsigned nr_fns;
static vmapple_vfio_backend *backend;

static uint32_t key_of(const struct sysfs_fn *s)
{
    return VMAPPLE_VFIO_HOST_FN(s->bus, s->dev, s->fn);
}

/* The whole sysfs file, as the kernel gives it to this user; -1 if unreadable. */
static ssize_t read_file(const char *dir, const char *name, uint8_t *buf, size_t max)
{
    char path[400];
    size_t got = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (got < max) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

static unsigned long read_hex(const char *dir, const char *name)
{
    uint8_t buf[64];
    ssize_t n = read_file(dir, name, buf, sizeof(buf) - 1);

    if (n <= 0) {
        return ~0ul;
    }
    buf[n] = 0;
    return strtoul((const char *)buf, NULL, 16);
}

static void scan_sysfs(void)
{
    DIR *d = opendir(SYSFS);
    struct dirent *e;

    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL && nr_fns < MAX_FNS) {
        struct sysfs_fn *s = &fns[nr_fns];
        if (sscanf(e->d_name, "%x:%x:%x.%x", &s->domain, &s->bus, &s->dev, &s->fn) != 4 ||
            s->domain != 0) {
            continue; /* the backend's connect() reaches domain 0 by default */
        }
        snprintf(s->path, sizeof(s->path), "%s/%s", SYSFS, e->d_name);
        nr_fns++;
    }
    closedir(d);
}

/* Config bytes through the library equal the sysfs file, length included. */
static void test_config_equals_sysfs(void **state)
{
    static uint8_t want[4096], got[4096];
    unsigned compared = 0;

    (void)state;
    for (unsigned i = 0; i < nr_fns; i++) {
        const struct sysfs_fn *s = &fns[i];
        bool same = false;
        ssize_t n = 0;
        int m = 0;

        /* Live registers (status bits) may change between two reads: retry a little. */
        for (int attempt = 0; attempt < 3 && !same; attempt++) {
            n = read_file(s->path, "config", want, sizeof(want));
            if (n <= 0) {
                break;
            }
            m = vmapple_vfio_backend_read_config(backend, key_of(s), 0, got, sizeof(got));
            same = m == n && memcmp(want, got, (size_t)n) == 0;
        }
        if (n <= 0) {
            printf("# %s: config not readable here, not compared\n", s->path);
            continue;
        }
        if (!same) {
            fail_msg("%s: the library read %d bytes, sysfs gives %zd%s (%s)", s->path, m, n,
                     m == n ? ", and they differ" : "", vmapple_vfio_backend_last_error(backend));
        }
        printf("# %s: %zd config bytes equal\n", s->path, n);
        compared++;
    }
    if (compared == 0) {
        skip();
    }
    /* Offsets and short reads inside the space. */
    {
        ssize_t n = read_file(fns[0].path, "config", want, sizeof(want));
        if (n >= 64) {
            assert_int_equal(vmapple_vfio_backend_read_config(backend, key_of(&fns[0]), 8, got, 4),
                             4);
            assert_memory_equal(got, want + 8, 4);
            assert_int_equal(vmapple_vfio_backend_read_config(backend, key_of(&fns[0]),
                                                              (uint32_t)n - 2, got, 16),
                             2);
        }
    }
}

static void test_enumeration(void **state)
{
    vmapple_vfio_function_info info = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    unsigned seen = 0, total = 0;

    (void)state;
    for (uint32_t i = 0; vmapple_vfio_backend_get_function(backend, i, &info) == 0; i++) {
        total++;
        for (unsigned j = 0; j < nr_fns; j++) {
            const struct sysfs_fn *s = &fns[j];
            if (info.domain != s->domain || info.bus != s->bus || info.device != s->dev ||
                info.function != s->fn) {
                continue;
            }
            seen++;
            assert_int_equal(info.vendor_id, read_hex(s->path, "vendor"));
            assert_int_equal(info.device_id, read_hex(s->path, "device"));
            assert_int_equal(info.class_code, read_hex(s->path, "class"));
            assert_int_equal(info.subsystem_vendor_id, read_hex(s->path, "subsystem_vendor"));
            assert_int_equal(info.subsystem_id, read_hex(s->path, "subsystem_device"));
        }
    }
    printf("# %u functions enumerated, %u in domain 0 in sysfs\n", total, nr_fns);
    assert_int_equal(seen, nr_fns);
    assert_int_equal(vmapple_vfio_backend_get_function(backend, total, &info), -ENOENT);
}

static void test_bar_sizes(void **state)
{
    (void)state;
    for (unsigned i = 0; i < nr_fns; i++) {
        uint8_t text[2048];
        ssize_t n = read_file(fns[i].path, "resource", text, sizeof(text) - 1);
        char *p = (char *)text;

        if (n <= 0) {
            continue;
        }
        text[n] = 0;
        for (uint32_t bar = 0; bar < 6; bar++) {
            vmapple_vfio_bar_info info = VMAPPLE_VFIO_BAR_INFO_INIT;
            unsigned long long start = strtoull(p, &p, 16), end = strtoull(p, &p, 16);
            unsigned long long flags = strtoull(p, &p, 16);
            unsigned long long size = start ? end - start + 1 : 0;

            assert_int_equal(
                vmapple_vfio_backend_get_bar_info(backend, key_of(&fns[i]), bar, &info), 0);
            assert_int_equal(info.bar_size, size);
            if (size) {
                assert_int_equal(info.address, start);
                assert_int_equal(!!(info.flags & VMAPPLE_VFIO_BAR_IO), !!(flags & 1));
                assert_int_equal(!!(info.flags & VMAPPLE_VFIO_BAR_MEM), !(flags & 1));
            }
        }
    }
}

/* The MSI-X table size, parsed here independently of the library. */
static int msix_entries(const uint8_t *cfg, ssize_t n)
{
    unsigned ptr;

    if (n < 64 || !(cfg[6] & 0x10)) {
        return 0;
    }
    ptr = cfg[0x34] & 0xfc;
    for (int hops = 0; ptr >= 0x40 && ptr + 4 <= (unsigned)n && hops < 48; hops++) {
        if (cfg[ptr] == 0x11) {
            return ((cfg[ptr + 2] | cfg[ptr + 3] << 8) & 0x7ff) + 1;
        }
        ptr = cfg[ptr + 1] & 0xfc;
    }
    return n < 256 ? -1 : 0; /* -1: not knowable from what we may read */
}

static void deliver(void *opaque, uint32_t type, uint32_t vector)
{
    (void)opaque;
    (void)type;
    (void)vector;
    fail_msg("an interrupt was delivered from a read-only backend");
}

/* A passthrough object on each real function: reads work, nothing is mapped or written. */
static void test_policy_read_only(void **state)
{
    (void)state;
    for (unsigned i = 0; i < nr_fns; i++) {
        vmapple_vfio_apple_options o = VMAPPLE_VFIO_APPLE_OPTIONS_INIT;
        vmapple_vfio_region_info r = VMAPPLE_VFIO_REGION_INFO_INIT;
        vmapple_vfio_apple *pt;
        vmapple_dma_backend *dma;
        uint8_t cfg[4096], got[64];
        ssize_t n = read_file(fns[i].path, "config", cfg, sizeof(cfg));
        uint64_t v;
        uint32_t v32;
        int entries = msix_entries(cfg, n);

        o.backend = backend;
        o.host_bus = (uint8_t)fns[i].bus;
        o.host_device = (uint8_t)fns[i].dev;
        o.host_function = (uint8_t)fns[i].fn;
        o.irq_deliver = deliver;
        assert_int_equal(vmapple_vfio_apple_create(NULL, NULL, &o, &pt), 0);
        assert_int_equal(vmapple_vfio_backend_is_owned(backend, key_of(&fns[i])), 1);
        if (n >= 64) {
            assert_int_equal(vmapple_vfio_apple_config_read_block(pt, 0, got, 64), 0);
            assert_memory_equal(got, cfg, 16); /* identity and class: stable registers */
            assert_int_equal(vmapple_vfio_apple_config_read(pt, 0, 4, &v32), 0);
            assert_int_equal(v32, cfg[0] | cfg[1] << 8 | cfg[2] << 16 | (uint32_t)cfg[3] << 24);
        }
        if (entries >= 0) {
            assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSIX), entries);
        }
        assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSI), 0);
        for (uint32_t bar = 0; bar < 6; bar++) {
            assert_int_equal(vmapple_vfio_apple_get_region_info(pt, bar, &r), 0);
            assert_int_equal(r.flags & VMAPPLE_VFIO_REGION_MMAP, 0);
            if (r.region_size) {
                int ret = vmapple_vfio_apple_bar_read(pt, bar, 0, 4, &v);
                assert_true(ret == -EPERM || ret == -ENOTSUP);
            }
        }
        assert_int_equal(vmapple_vfio_apple_reset(pt), -ENOTSUP);
        assert_int_equal(vmapple_vfio_apple_process_interrupts(pt), 0);
        /* No IOMMU through libpciaccess. */
        assert_int_equal(vmapple_vfio_backend_get_dma(backend, key_of(&fns[i]), NULL, &dma), 0);
        assert_int_equal(vmapple_dma_backend_map(dma, 0x70000000, NULL, 0x1000, 0, &v, &v),
                         -ENOTSUP);
        vmapple_dma_backend_release(dma);
        vmapple_vfio_apple_destroy(pt);
        assert_int_equal(vmapple_vfio_backend_get_refs(backend, key_of(&fns[i])), 0);
    }
}

static void test_options(void **state)
{
    vmapple_vfio_pciaccess_options o = VMAPPLE_VFIO_PCIACCESS_OPTIONS_INIT;
    vmapple_vfio_backend *b;
    uint8_t buf[4];

    (void)state;
    o.flags = 2;
    assert_int_equal(vmapple_vfio_backend_create_pciaccess(&o, &b), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "flags"));
    assert_int_equal(vmapple_vfio_backend_create_pciaccess(NULL, NULL), -EINVAL);
    /* Another domain: the same functions are not reachable as domain-0 keys. */
    o.flags = 0;
    o.domain = 0x7fff;
    assert_int_equal(vmapple_vfio_backend_create_pciaccess(&o, &b), 0);
    assert_int_equal(vmapple_vfio_backend_read_config(b, key_of(&fns[0]), 0, buf, 4), -ENODEV);
    vmapple_vfio_backend_release(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_equals_sysfs),
        cmocka_unit_test(test_enumeration),
        cmocka_unit_test(test_bar_sizes),
        cmocka_unit_test(test_policy_read_only),
        cmocka_unit_test(test_options),
    };
    int ret = vmapple_vfio_backend_create_pciaccess(NULL, &backend);
    int failed;

    if (ret == -ENOTSUP) {
        printf("SKIP: %s\n", vmapple_last_error());
        return 77;
    }
    if (ret < 0) {
        printf("SKIP: libpciaccess cannot start here: %s (%s)\n", vmapple_strerror(ret),
               vmapple_last_error());
        return 77;
    }
    scan_sysfs();
    if (nr_fns == 0) {
        printf("SKIP: no PCI function visible in %s (domain 0)\n", SYSFS);
        vmapple_vfio_backend_release(backend);
        return 77;
    }
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    vmapple_vfio_backend_release(backend);
    return failed;
}
