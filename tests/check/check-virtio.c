/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of virtio-blk: random descriptor tables,
 * indirect tables and avail rings; random register sequences on BAR0, the
 * MSI-X BAR and config space (including the PCI config window); mutated state
 * blobs. Each runs in synchronous and asynchronous mode, with and without
 * mem_map. Afterwards the device must not have written the driver's own
 * structures, and after a reset it must work again.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "membd.h"
#include "mockhost.h"
#include "virtio-driver.h"
#include "rng.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (4ull << 20)
#define HEAP     (RAM_BASE + 0x100000)
#define HEAP_LEN (2ull << 20)
#define ZONE     (RAM_BASE + 0x300000) /* where random buffers point */
#define ZONE_LEN 0x100000ull
#define VOL_SIZE (1ull << 20)

#define VIRTQ_NEXT     1
#define VIRTQ_WRITE    2
#define VIRTQ_INDIRECT 4

struct env {
    struct mock_host *h;
    struct membd mb;
    vmapple_blockdev *bd;
    vmapple_device *dev;
    struct vdrv d;
    bool async;
};

static void env_open(struct env *e, int variant, uint32_t msix)
{
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct vdrv_config c = { 0 };

    memset(e, 0, sizeof(*e));
    e->h = mock_host_new(RAM_BASE, RAM_SIZE);
    e->h->allow_map = variant & 1;
    e->async = variant & 2;
    e->bd = membd_open(&e->mb, VOL_SIZE, 0, false);
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_AUX;
    o.blockdev = e->bd;
    o.io_mode = e->async ? VMAPPLE_VIRTIO_BLK_IO_ASYNC : VMAPPLE_VIRTIO_BLK_IO_SYNC;
    o.queue_size = 16;
    o.msix_vectors = msix;
    ck_assert_int_eq(vmapple_virtio_blk_create(mock_host_ops(), e->h, &o, &e->dev), 0);
    c.want_features = UINT64_MAX;
    c.async = e->async;
    ck_assert_int_eq(vdrv_init(&e->d, e->h, e->dev, HEAP, HEAP_LEN, &c), 0);
}

static void env_close(struct env *e)
{
    vdrv_fini(&e->d);
    vmapple_device_destroy(e->dev);
    ck_assert_int_eq(e->h->maps_live, 0);
    vmapple_blockdev_release(e->bd);
    membd_free(&e->mb);
    mock_host_free(e->h);
}

/* After the abuse: reset, set up again, and do real I/O. */
static void assert_recovers(struct env *e)
{
    struct vdrv_config c = { 0 };
    uint8_t *data;

    ck_assert_int_eq(vmapple_device_reset(e->dev), 0);
    vdrv_fini(&e->d);
    c.want_features = UINT64_MAX;
    c.async = e->async;
    ck_assert_int_eq(vdrv_init(&e->d, e->h, e->dev, HEAP, HEAP_LEN, &c), 0);
    memset(e->mb.data + 4096, 0x5c, 512);
    ck_assert_int_eq(vdrv_blk_do(&e->d, VDRV_BLK_T_IN, 8, ZONE, 512, NULL), 0);
    data = mock_ram(e->h, ZONE, 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_int_eq(data[i], 0x5c);
    }
}

static uint64_t random_addr(void)
{
    switch (rnd() % 8) {
    case 0:
        return rnd();
    case 1:
        return RAM_BASE + RAM_SIZE - (rnd() % 64);
    case 2:
        return UINT64_MAX - (rnd() % 4096);
    default:
        return ZONE + rnd() % ZONE_LEN;
    }
}

static uint32_t random_len(void)
{
    switch (rnd() % 8) {
    case 0:
        return (uint32_t)rnd();
    case 1:
        return 0;
    case 2:
        return 16;
    case 3:
        return 1;
    default:
        return (uint32_t)(rnd() % 0x4000);
    }
}

static void random_desc(uint8_t *p, uint16_t qsize, uint16_t entries)
{
    uint64_t addr = random_addr();
    uint32_t len = random_len();
    uint16_t flags = (uint16_t)(rnd() % 8);
    uint16_t next = (uint16_t)(rnd() % 4 ? rnd() % (entries ? entries : qsize) : rnd());

    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/*
 * A mostly plausible request chain at descriptors [first, first + n) of
 * `table`: a header in the zone (a valid or random type, a sector near the
 * volume), data buffers, a status byte; then a few random corruptions.
 */
static void plausible_chain(struct env *e, uint8_t *table, unsigned first, unsigned n,
                            unsigned entries)
{
    static const uint32_t types[] = { 0, 1, 4, 8, 11, 13, 0x10000, 2, 0xffffffff };
    uint64_t hdr = ZONE + (rnd() % (ZONE_LEN / 32)) * 16;
    uint32_t type = types[rnd() % 9];
    uint64_t sector = rnd() % 4 ? rnd() % (VOL_SIZE / 512 + 8) : rnd();
    bool in = type == 0 || type == 8;
    uint8_t *h = mock_ram(e->h, hdr, 16);

    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = first + i;
        uint64_t addr = ZONE + (rnd() % (ZONE_LEN / 512)) * 512;
        uint32_t len = rnd() % 4 ? (uint32_t)(512 * (1 + rnd() % 8)) : (uint32_t)(rnd() % 600);
        uint16_t flags = (uint16_t)(i + 1 < n ? VIRTQ_NEXT : 0);
        if (i == 0) {
            addr = hdr;
            len = rnd() % 8 ? 16 : (uint32_t)(rnd() % 20);
        } else if (i + 1 == n) {
            len = rnd() % 8 ? 1 : 0;
            flags |= VIRTQ_WRITE;
        } else if (in) {
            flags |= VIRTQ_WRITE;
        }
        put_desc(table + 16 * idx, addr, len, flags, (uint16_t)((idx + 1) % entries));
    }
    for (unsigned k = rnd() % 3; k > 0; k--) {
        uint8_t *p = table + 16 * (first + rnd() % n);
        if (rnd() % 2) {
            uint64_t a = random_addr();
            memcpy(p, &a, 8);
        } else {
            p[8 + rnd() % 8] ^= (uint8_t)(1u << (rnd() % 8));
        }
    }
}

START_TEST(hostile_descriptor_tables)
{
    struct env e;
    uint64_t ind = ZONE + ZONE_LEN - 0x1000; /* an indirect table inside the zone */
    vmapple_virtio_blk_stats st = VMAPPLE_VIRTIO_BLK_STATS_INIT;

    rng_state = 0x5eed0000 + (uint64_t)_i;
    env_open(&e, _i % 4, 0);
    for (int round = 0; round < 300; round++) {
        uint8_t *desc = mock_ram(e.h, e.d.desc, 16ull * e.d.qsize);
        uint8_t *avail = mock_ram(e.h, e.d.avail, 6 + 2ull * e.d.qsize);
        uint8_t desc_copy[16 * 16], avail_copy[6 + 2 * 16];
        unsigned chains = 1 + (unsigned)(rnd() % 4), next = 0;
        uint16_t idx;

        memcpy(&idx, avail + 2, 2);
        for (unsigned c = 0; c < chains; c++) {
            uint16_t head = (uint16_t)next;
            unsigned n = 2 + (unsigned)(rnd() % 3);
            if (rnd() % 6 == 0) {
                /* Pure garbage. */
                for (unsigned i = 0; i < n; i++) {
                    random_desc(desc + 16 * (next + i), e.d.qsize, 0);
                }
            } else if (rnd() % 4 == 0) {
                /* An indirect table holding a plausible chain. */
                plausible_chain(&e, mock_ram(e.h, ind, 16 * 8), 0, n, 8);
                put_desc(desc + 16 * next, ind, (uint32_t)(rnd() % 8 ? 16 * n : 16 * n + 8),
                         VIRTQ_INDIRECT, 0);
                n = 1;
            } else {
                plausible_chain(&e, desc, next, n, e.d.qsize);
            }
            if (rnd() % 10 == 0) {
                head = (uint16_t)rnd();
            }
            memcpy(avail + 4 + 2 * ((uint16_t)(idx + c) % e.d.qsize), &head, 2);
            next += n;
        }
        /* Usually the right number of new entries; sometimes a wild jump. */
        idx = (uint16_t)(rnd() % 16 ? idx + chains : rnd());
        memcpy(avail + 2, &idx, 2);
        memcpy(desc_copy, desc, sizeof(desc_copy));
        memcpy(avail_copy, avail, sizeof(avail_copy));
        vmapple_device_write(e.dev, e.d.bar0, e.d.notify_off, 2, 0);
        for (int k = 0; k < 3; k++) {
            vmapple_device_process(e.dev);
        }
        /* The device never writes the driver's descriptor table or avail ring. */
        ck_assert(memcmp(desc, desc_copy, sizeof(desc_copy)) == 0);
        ck_assert(memcmp(avail, avail_copy, sizeof(avail_copy)) == 0);
        ck_assert_int_eq(e.h->wrapping_accesses, 0);
        if (vdrv_status(&e.d) & 0x40 || rnd() % 8 == 0) {
            /* Broken queue (or just now and then): reset and start over. */
            assert_recovers(&e);
        }
    }
    vmapple_virtio_blk_get_stats(e.dev, &st);
    /* The abuse did reach the request handling, not only the ring checks. */
    ck_assert_uint_gt(st.requests, 350);
    ck_assert_uint_gt(st.io_errors, 20);
    ck_assert_uint_gt(st.unsupported, 10);
    assert_recovers(&e);
    env_close(&e);
}
END_TEST

START_TEST(hostile_register_sequences)
{
    struct env e;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    rng_state = 0xa11ce000 + (uint64_t)_i;
    env_open(&e, _i % 4, _i >= 4 ? 4 : 0);
    for (int k = 0; k < 20000; k++) {
        uint64_t r = rnd();
        uint32_t size = sizes[r % 4];
        uint64_t v = rnd() % 4 ? rnd() % 64 : rnd();
        uint64_t off, val;
        switch ((r >> 4) % 10) {
        case 0:
        case 1:
        case 2:
            /* Common configuration, aligned to the access size. */
            off = ((r >> 8) % 0x40) & ~(uint64_t)(size - 1);
            vmapple_device_write(e.dev, e.d.bar0, off, size, v);
            break;
        case 3:
            vmapple_device_read(e.dev, e.d.bar0, (r >> 8) % 0x4000 & ~(uint64_t)(size - 1), size,
                                &val);
            break;
        case 4:
            /* Notifications (queue index in the address). */
            vmapple_device_write(e.dev, e.d.bar0, 0x3000 + ((r >> 8) % 16), 2, v);
            break;
        case 5:
            vmapple_device_write(e.dev, e.d.bar0, (r >> 8) % 0x4000 & ~(uint64_t)(size - 1), size,
                                 v);
            break;
        case 6:
            if (size <= 4) {
                vmapple_device_pci_config_write(e.dev, (uint32_t)((r >> 8) % 0x100), size,
                                                (uint32_t)v);
            }
            break;
        case 7:
            if (size <= 4) {
                uint32_t v32;
                vmapple_device_pci_config_read(e.dev, (uint32_t)((r >> 8) % 0x100), size, &v32);
            }
            break;
        case 8:
            if (vmapple_device_count_regions(e.dev) > 1) {
                vmapple_device_write(e.dev, 1, (r >> 8) % 0x1000 & ~(uint64_t)(size - 1), size, v);
            }
            vmapple_device_process(e.dev);
            break;
        default:
            if (r % 97 == 0) {
                /* A proper set-up now and then, so the queue really runs. */
                struct vdrv_config c = { 0 };
                vdrv_fini(&e.d);
                c.want_features = rnd();
                c.async = e.async;
                vdrv_init(&e.d, e.h, e.dev, HEAP, HEAP_LEN, &c);
                if (e.d.next_free && e.d.num_free >= 3) {
                    vdrv_blk_submit(&e.d, (uint32_t)(rnd() % 16), rnd() % 4096, ZONE, 512,
                                    rnd() % 2);
                    vdrv_kick(&e.d);
                }
            }
            break;
        }
    }
    ck_assert_int_eq(e.h->wrapping_accesses, 0);
    assert_recovers(&e);
    env_close(&e);
}
END_TEST

START_TEST(mutated_state_blobs)
{
    struct env e;
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    vmapple_device *dev2;
    size_t need = 0;
    uint8_t *blob, *copy;

    rng_state = 0xb10b0000 + (uint64_t)_i;
    env_open(&e, _i % 4, 0);
    ck_assert_int_eq(vdrv_blk_do(&e.d, VDRV_BLK_T_IN, 1, ZONE, 4096, NULL), 0);
    vmapple_device_save(e.dev, NULL, 0, &need);
    blob = malloc(need);
    copy = malloc(need);
    ck_assert_int_eq(vmapple_device_save(e.dev, blob, need, &need), 0);
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_AUX;
    o.blockdev = e.bd;
    o.queue_size = 16;
    o.io_mode = e.async ? VMAPPLE_VIRTIO_BLK_IO_ASYNC : 0;
    ck_assert_int_eq(vmapple_virtio_blk_create(mock_host_ops(), e.h, &o, &dev2), 0);
    for (int k = 0; k < 3000; k++) {
        memcpy(copy, blob, need);
        for (int m = 0; m < 1 + (int)(rnd() % 4); m++) {
            copy[rnd() % need] ^= (uint8_t)(1u << (rnd() % 8));
        }
        vmapple_device_load(dev2, copy, k % 2 ? need : rnd() % need);
    }
    /* Whatever happened, the real blob still loads and the device runs. */
    ck_assert_int_eq(vmapple_device_load(dev2, blob, need), 0);
    vmapple_device_destroy(e.dev);
    e.dev = dev2;
    e.d.dev = dev2;
    ck_assert_int_eq(vdrv_blk_do(&e.d, VDRV_BLK_T_IN, 2, ZONE, 512, NULL), 0);
    free(blob);
    free(copy);
    env_close(&e);
}
END_TEST

START_TEST(random_options)
{
    struct mock_host *h = mock_host_new(RAM_BASE, 0x10000);
    struct membd mb;
    vmapple_blockdev *bd = membd_open(&mb, VOL_SIZE, 0, false);

    rng_state = 0x0970 + (uint64_t)_i;
    for (int k = 0; k < 300; k++) {
        vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
        uint32_t *words = (uint32_t *)(void *)&o;
        vmapple_device *dev = NULL;
        int ret;
        for (size_t i = 1; i < sizeof(o) / 4; i++) {
            if (rnd() % 3 == 0) {
                words[i] = (uint32_t)(rnd() % 8 ? rnd() % 300 : rnd());
            }
        }
        o.blockdev = rnd() % 4 ? bd : NULL;
        o.serial = rnd() % 2 ? NULL : "x";
        ret = vmapple_virtio_blk_create(mock_host_ops(), h, &o, &dev);
        if (ret == 0) {
            ck_assert_ptr_nonnull(dev);
            vmapple_device_destroy(dev);
        } else {
            ck_assert(vmapple_last_error()[0] != '\0');
        }
    }
    vmapple_blockdev_release(bd);
    membd_free(&mb);
    mock_host_free(h);
}
END_TEST

static Suite *virtio_suite(void)
{
    Suite *s = suite_create("virtio-robustness");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, hostile_descriptor_tables, 0, 8);
    tcase_add_loop_test(tc, hostile_register_sequences, 0, 8);
    tcase_add_loop_test(tc, mutated_state_blobs, 0, 4);
    tcase_add_loop_test(tc, random_options, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(virtio_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
