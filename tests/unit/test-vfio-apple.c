/* SPDX-License-Identifier: MIT */
/*
 * The vfio-apple policy object against the simulated host mechanism: config
 * reads, the config write filter byte by byte around COMMAND, STATUS and
 * the BARs, BAR accesses, region and interrupt information, interrupt
 * delivery in each mode, reset, the connection registry (sharing and
 * refusal), the apple-dma-pci companion (find, create, destroy), and host
 * backends' callbacks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adp-guest.h"
#include "mockhost.h"
#include "testpci.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x100000ull

#define FN_A      VMAPPLE_VFIO_HOST_FN(0x01, 0, 0)
#define FN_B      VMAPPLE_VFIO_HOST_FN(0x02, 3, 1)
#define FN_SMALL  VMAPPLE_VFIO_HOST_FN(0x03, 0, 0) /* conventional: 256 bytes of config */
#define GUEST_BDF 0x0010                           /* 00:02.0 */

#define MSIX_CAP 0x50

struct delivered {
    unsigned n;
    uint32_t type[64];
    uint32_t vector[64];
};

struct fixture {
    struct mock_host *h;
    vmapple_vfio_sim *sim;
    vmapple_vfio_backend *backend;
    vmapple_dma_backend *dart;
    vmapple_vfio_apple *pt;
    struct delivered irqs;
    unsigned notifies;
    uint32_t notified_fn;
};

static struct fixture *current;

static void deliver(void *opaque, uint32_t type, uint32_t vector)
{
    struct fixture *f = current;

    (void)opaque;
    if (f->irqs.n < 64) {
        f->irqs.type[f->irqs.n] = type;
        f->irqs.vector[f->irqs.n] = vector;
    }
    f->irqs.n++;
}

static void notify(void *opaque, uint32_t host_fn)
{
    struct fixture *f = opaque;

    f->notifies++;
    f->notified_fn = host_fn;
}

/* A PCIe-like function: ids, class, capability list with MSI-X (17 entries). */
static void make_config(uint8_t *cfg)
{
    memset(cfg, 0, 256);
    adp_st(cfg + 0x00, 2, 0x106b);
    adp_st(cfg + 0x02, 2, 0x2002);
    adp_st(cfg + 0x06, 2, 0x0010); /* capability list */
    cfg[0x08] = 0x03;              /* revision */
    adp_st(cfg + 0x09, 3, 0x010802);
    adp_st(cfg + 0x2c, 2, 0x1234);
    adp_st(cfg + 0x2e, 2, 0x5678);
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x09; /* vendor capability */
    cfg[0x41] = MSIX_CAP;
    cfg[MSIX_CAP] = 0x11;
    cfg[MSIX_CAP + 1] = 0x00;
    adp_st(cfg + MSIX_CAP + 2, 2, 16); /* table size - 1 */
}

static void add_functions(struct fixture *f)
{
    vmapple_vfio_sim_function fn = VMAPPLE_VFIO_SIM_FUNCTION_INIT;
    uint8_t cfg[256];

    make_config(cfg);
    fn.bus = 0x01;
    fn.config = cfg;
    fn.config_bytes = sizeof(cfg);
    fn.msi_vectors = 8;
    fn.bar_size[0] = 0x1000;
    fn.bar_size[2] = 0x10000;
    fn.bar_flags[2] = VMAPPLE_VFIO_BAR_64 | VMAPPLE_VFIO_BAR_PREFETCH;
    fn.bar_size[4] = 0x100;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), 0);

    fn.bus = 0x02;
    fn.device = 3;
    fn.function = 1;
    fn.msi_vectors = 1;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), 0);

    memset(&fn, 0, sizeof(fn));
    fn.size = sizeof(fn);
    fn.bus = 0x03;
    fn.config_len = 256;
    cfg[0x06] = 0; /* no capabilities */
    fn.config = cfg;
    fn.config_bytes = 64;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), 0);
}

static vmapple_vfio_apple_options pt_options(struct fixture *f, uint32_t key)
{
    vmapple_vfio_apple_options o = VMAPPLE_VFIO_APPLE_OPTIONS_INIT;

    o.backend = f->backend;
    o.host_bus = (uint8_t)(key >> 16);
    o.host_device = (uint8_t)((key >> 8) & 0x1f);
    o.host_function = (uint8_t)(key & 7);
    o.guest_bdf = GUEST_BDF;
    o.irq_deliver = deliver;
    return o;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    vmapple_vfio_sim_options so = VMAPPLE_VFIO_SIM_OPTIONS_INIT;
    vmapple_vfio_apple_options o;

    current = f;
    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &f->dart), 0);
    so.dma = f->dart;
    so.notify = notify;
    so.notify_opaque = f;
    assert_int_equal(vmapple_vfio_sim_create(&so, &f->sim), 0);
    f->backend = vmapple_vfio_sim_get_backend(f->sim);
    add_functions(f);
    o = pt_options(f, FN_A);
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &f->pt), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    vmapple_vfio_apple_destroy(f->pt);
    vmapple_vfio_sim_destroy(f->sim);
    vmapple_dma_backend_release(f->dart);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static vmapple_vfio_sim_state sim_state(struct fixture *f, uint32_t key)
{
    vmapple_vfio_sim_state st = VMAPPLE_VFIO_SIM_STATE_INIT;
    assert_int_equal(vmapple_vfio_sim_get_state(f->sim, key, &st), 0);
    return st;
}

static vmapple_vfio_region_info region(struct fixture *f, uint32_t index)
{
    vmapple_vfio_region_info r = VMAPPLE_VFIO_REGION_INFO_INIT;
    assert_int_equal(vmapple_vfio_apple_get_region_info(f->pt, index, &r), 0);
    return r;
}

/* ---- creation, regions, interrupt counts ---- */

static void test_create_and_info(void **state)
{
    struct fixture *f = *state;
    const uint32_t rwm =
        VMAPPLE_VFIO_REGION_READ | VMAPPLE_VFIO_REGION_WRITE | VMAPPLE_VFIO_REGION_MMAP;
    vmapple_vfio_region_info r = VMAPPLE_VFIO_REGION_INFO_INIT;
    vmapple_vfio_sim_state st = sim_state(f, FN_A);

    assert_int_equal(st.connected, 1);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.irq_setups, 1);
    assert_int_equal(st.arms, 1);
    assert_int_equal(st.armed, 1);
    assert_int_equal(st.bars_mapped, 3);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(st.mask[i], 0);
    }
    assert_int_equal(region(f, 0).region_size, 0x1000);
    assert_int_equal(region(f, 0).flags, rwm);
    assert_int_equal(region(f, 1).region_size, 0);
    assert_int_equal(region(f, 1).flags, 0);
    assert_int_equal(region(f, 2).region_size, 0x10000);
    assert_int_equal(region(f, 2).flags, rwm);
    assert_int_equal(region(f, 3).region_size, 0); /* upper half of BAR2 */
    assert_int_equal(region(f, 4).region_size, 0x100);
    assert_int_equal(region(f, 5).region_size, 0);
    assert_int_equal(region(f, VMAPPLE_VFIO_REGION_ROM).region_size, 0);
    assert_int_equal(region(f, VMAPPLE_VFIO_REGION_CONFIG).region_size, 4096);
    assert_int_equal(region(f, VMAPPLE_VFIO_REGION_CONFIG).flags,
                     VMAPPLE_VFIO_REGION_READ | VMAPPLE_VFIO_REGION_WRITE);
    assert_int_equal(region(f, VMAPPLE_VFIO_REGION_VGA).region_size, 0);
    assert_int_equal(vmapple_vfio_apple_get_region_info(f->pt, 9, &r), -EINVAL);
    r.size = 4;
    assert_int_equal(vmapple_vfio_apple_get_region_info(f->pt, 0, &r), -EINVAL);

    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_INTX), 1);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_MSI), 8);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_MSIX), 17);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_ERR), 0);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_REQ), 0);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, VMAPPLE_VFIO_IRQ_NONE), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(f->pt, 6), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(NULL, 1), -EINVAL);

    vmapple_vfio_apple_destroy(f->pt);
    f->pt = NULL;
    st = sim_state(f, FN_A);
    assert_int_equal(st.connected, 0);
    assert_int_equal(st.bars_mapped, 0);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 0);
}

static void test_no_msix(void **state)
{
    struct fixture *f = *state;
    vmapple_vfio_apple_options o = pt_options(f, FN_SMALL);
    vmapple_vfio_apple *pt;

    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), 0);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSIX), 0);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSI), 0);
    vmapple_vfio_apple_destroy(pt);
}

/* ---- config reads ---- */

static void test_config_read(void **state)
{
    struct fixture *f = *state;
    vmapple_vfio_apple_options o = pt_options(f, FN_SMALL);
    vmapple_vfio_apple *small;
    uint8_t buf[4096];
    uint32_t v;

    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0, 4, &v), 0);
    assert_int_equal(v, 0x2002106b);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 2, 2, &v), 0);
    assert_int_equal(v, 0x2002);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 9, 1, &v), 0);
    assert_int_equal(v, 0x02);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0x0a, 2, &v), 0);
    assert_int_equal(v, 0x0108);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0xffc, 4, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0xfff, 1, &v), 0);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0xffd, 4, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0x1000, 1, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0, 3, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0, 8, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0, 4, NULL), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read_block(f->pt, 0, buf, 4096), 0);
    assert_int_equal(buf[MSIX_CAP], 0x11);
    assert_int_equal(vmapple_vfio_apple_config_read_block(f->pt, 1, buf, 4096), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_config_read_block(f->pt, 0, buf, 0), -EINVAL);

    /* A conventional function: 256 bytes; the rest of the 4 KiB reads 0. */
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &small), 0);
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(vmapple_vfio_apple_config_read_block(small, 0xf0, buf, 0x20), 0);
    for (int i = 0; i < 0x20; i++) {
        assert_int_equal(buf[i], 0);
    }
    assert_int_equal(vmapple_vfio_apple_config_read(small, 0xfe, 4, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_vfio_apple_config_read(small, 0x100, 4, &v), 0);
    assert_int_equal(v, 0);
    /* The backend's own view agrees: 256 bytes exist. */
    assert_int_equal(vmapple_vfio_backend_read_config(f->backend, FN_SMALL, 0, buf, 4096), 256);
    vmapple_vfio_apple_destroy(small);
}

/* ---- the config write filter ---- */

struct fwd {
    uint32_t offset, size, value;
};

/* The writes that reached the simulated function since index `from`. */
static unsigned forwarded(struct fixture *f, uint32_t from, struct fwd *out, unsigned max)
{
    vmapple_vfio_sim_state st = sim_state(f, FN_A);
    unsigned n = 0;

    for (uint32_t i = from; i < st.config_writes && n < max; i++, n++) {
        assert_int_equal(vmapple_vfio_sim_get_config_write(f->sim, FN_A, i, &out[n].offset,
                                                           &out[n].size, &out[n].value),
                         0);
    }
    return st.config_writes - from;
}

static uint32_t writes_so_far(struct fixture *f)
{
    return sim_state(f, FN_A).config_writes;
}

static void expect_write(struct fixture *f, uint32_t off, uint32_t size, uint32_t value,
                         const struct fwd *want, unsigned n_want)
{
    struct fwd got[8];
    uint32_t from = writes_so_far(f);
    unsigned n;

    assert_int_equal(vmapple_vfio_apple_config_write(f->pt, off, size, value), 0);
    n = forwarded(f, from, got, 8);
    if (n != n_want) {
        fail_msg("write of %u bytes at 0x%x: %u writes forwarded, expected %u", size, off, n,
                 n_want);
    }
    for (unsigned i = 0; i < n; i++) {
        if (got[i].offset != want[i].offset || got[i].size != want[i].size ||
            got[i].value != want[i].value) {
            fail_msg("write of %u bytes at 0x%x: forwarded #%u is %u@0x%x=0x%x, expected "
                     "%u@0x%x=0x%x",
                     size, off, i, got[i].size, got[i].offset, got[i].value, want[i].size,
                     want[i].offset, want[i].value);
        }
    }
}

#define EXPECT(off, size, value, ...)                                                     \
    do {                                                                                  \
        const struct fwd want_[] = { __VA_ARGS__ };                                       \
        expect_write(f, (off), (size), (value), want_, sizeof(want_) / sizeof(want_[0])); \
    } while (0)
#define EXPECT_DROPPED(off, size, value) expect_write(f, (off), (size), (value), NULL, 0)

static void test_write_filter_cases(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    /* COMMAND: forwarded one byte at a time. */
    EXPECT(0x04, 2, 0x0406, { 0x04, 1, 0x06 }, { 0x05, 1, 0x04 });
    EXPECT(0x04, 1, 0x06, { 0x04, 1, 0x06 });
    EXPECT(0x05, 1, 0x04, { 0x05, 1, 0x04 });
    /* COMMAND + STATUS in one dword: COMMAND goes through, STATUS is dropped. */
    EXPECT(0x04, 4, 0xf9000546, { 0x04, 1, 0x46 }, { 0x05, 1, 0x05 });
    EXPECT(0x03, 4, 0x00070600, { 0x04, 1, 0x06 }, { 0x05, 1, 0x07 });
    EXPECT(0x05, 2, 0xff01, { 0x05, 1, 0x01 });
    /* COMMAND with other bytes (no STATUS, no BAR): every byte, one at a time. */
    EXPECT(0x02, 4, 0x04062002, { 0x02, 1, 0x02 }, { 0x03, 1, 0x20 }, { 0x04, 1, 0x06 },
           { 0x05, 1, 0x04 });
    EXPECT(0x03, 2, 0x0620, { 0x03, 1, 0x20 }, { 0x04, 1, 0x06 });
    /* STATUS alone: dropped, reported done. */
    EXPECT_DROPPED(0x06, 2, 0xffff);
    EXPECT_DROPPED(0x06, 1, 0xff);
    EXPECT_DROPPED(0x07, 1, 0xff);
    EXPECT_DROPPED(0x06, 4, 0x12345678); /* STATUS + revision + class */
    EXPECT_DROPPED(0x07, 2, 0x0300);
    /* Neither: forwarded as it is. */
    EXPECT(0x00, 4, 0xffffffff, { 0x00, 4, 0xffffffff });
    EXPECT(0x08, 4, 0x01080203, { 0x08, 4, 0x01080203 });
    EXPECT(0x0c, 4, 0x00000010, { 0x0c, 4, 0x00000010 });
    EXPECT(0x0f, 1, 0x40, { 0x0f, 1, 0x40 });
    /* BARs 0x10 .. 0x27, including writes that only brush them. */
    EXPECT_DROPPED(0x10, 4, 0xffffffff);
    EXPECT_DROPPED(0x0d, 4, 0xffffffff);
    EXPECT_DROPPED(0x0f, 2, 0xffff);
    EXPECT_DROPPED(0x14, 2, 0xffff);
    EXPECT_DROPPED(0x24, 4, 0xffffffff);
    EXPECT_DROPPED(0x27, 1, 0xff);
    EXPECT_DROPPED(0x26, 4, 0xffffffff);
    EXPECT(0x28, 4, 0xabcd, { 0x28, 4, 0xabcd });
    EXPECT(0x2c, 2, 0x1111, { 0x2c, 2, 0x1111 });
    /* The expansion ROM BAR 0x30 .. 0x33 decodes host addresses too: dropped. */
    EXPECT(0x2c, 4, 0x22221111, { 0x2c, 4, 0x22221111 });
    EXPECT(0x2f, 1, 0x33, { 0x2f, 1, 0x33 });
    EXPECT_DROPPED(0x30, 4, 0xfffff801);
    EXPECT_DROPPED(0x2e, 4, 0xffffffff);
    EXPECT_DROPPED(0x33, 1, 0xff);
    EXPECT_DROPPED(0x32, 4, 0x12345678);
    EXPECT(0x34, 1, 0x40, { 0x34, 1, 0x40 });
    /* Capabilities, MSI-X, PCIe: forwarded. */
    EXPECT(0x3c, 1, 0x2a, { 0x3c, 1, 0x2a });
    EXPECT(MSIX_CAP + 2, 2, 0x8010, { MSIX_CAP + 2, 2, 0x8010 });
    EXPECT(0x100, 4, 0xdeadbeef, { 0x100, 4, 0xdeadbeef });
    EXPECT(0xffc, 4, 0x1, { 0xffc, 4, 0x1 });
    EXPECT(0xfff, 1, 0x1, { 0xfff, 1, 0x1 });

    /* Sizes other than 1, 2, 4 and writes leaving the 4 KiB: refused, nothing sent. */
    {
        uint32_t from = writes_so_far(f);
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0x40, 3, 0), -EINVAL);
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0x40, 8, 0), -EINVAL);
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0x40, 0, 0), -EINVAL);
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0xffd, 4, 0), -EINVAL);
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0x1000, 1, 0), -EINVAL);
        assert_int_equal(vmapple_vfio_apple_config_write(NULL, 0x40, 4, 0), -EINVAL);
        assert_int_equal(writes_so_far(f), from);
    }
    /* What was forwarded reached the device's bytes; what was dropped did not. */
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0x04, 2, &v), 0);
    assert_int_equal(v, 0x0406); /* the last COMMAND bytes forwarded */
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0x10, 4, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_vfio_apple_config_read(f->pt, 0x06, 2, &v), 0);
    assert_int_equal(v, 0x0010);
}

/*
 * Every offset of the header and every size, against the rule stated per
 * byte: COMMAND bytes always pass one at a time; a write touching STATUS or
 * a BAR sends nothing else; a write touching neither passes whole; a write
 * touching COMMAND and other bytes only passes byte by byte.
 */
static void test_write_filter_sweep(void **state)
{
    struct fixture *f = *state;
    static const uint32_t sizes[] = { 1, 2, 4 };

    for (uint32_t off = 0; off < 0x40; off++) {
        for (unsigned s = 0; s < 3; s++) {
            uint32_t size = sizes[s], value = 0x44332211u & (uint32_t)((1ull << (8 * size)) - 1);
            struct fwd want[4];
            unsigned n = 0;
            bool cmd = false, owned = false;
            for (uint32_t i = 0; i < size; i++) {
                uint32_t b = off + i;
                cmd |= b == 4 || b == 5;
                owned |= b == 6 || b == 7 || (b >= 0x10 && b < 0x28) || (b >= 0x30 && b < 0x34);
            }
            if (!cmd && !owned) {
                want[n++] = (struct fwd){ off, size, value };
            } else {
                for (uint32_t i = 0; i < size; i++) {
                    uint32_t b = off + i;
                    if (b == 4 || b == 5 || !owned) {
                        want[n++] = (struct fwd){ b, 1, (value >> (8 * i)) & 0xff };
                    }
                }
            }
            expect_write(f, off, size, value, want, n);
        }
    }
}

/* A host mechanism that cannot write config: forwarded writes fail, dropped ones succeed. */
struct mini {
    int connect_answer;
    unsigned connects, disconnects;
    int config_answer;
};

static int mini_connect(void *opaque, uint32_t key, void **conn)
{
    struct mini *m = opaque;

    (void)key;
    m->connects++;
    *conn = m;
    return m->connect_answer;
}

static void mini_disconnect(void *opaque, void *conn)
{
    (void)conn;
    ((struct mini *)opaque)->disconnects++;
}

static int mini_config_read(void *opaque, void *conn, uint32_t offset, void *buf, uint32_t len)
{
    struct mini *m = opaque;

    (void)conn;
    (void)offset;
    memset(buf, 0x5a, len);
    return m->config_answer ? m->config_answer : (int)len;
}

static void test_host_backend(void **state)
{
    struct fixture *f = *state;
    struct mini m = { 0 };
    vmapple_vfio_backend_ops ops = VMAPPLE_VFIO_BACKEND_OPS_INIT;
    vmapple_vfio_function_info info = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    vmapple_vfio_apple_options o = pt_options(f, FN_A);
    vmapple_vfio_backend *b;
    vmapple_vfio_apple *pt;
    uint64_t v64;
    uint32_t v;
    uint8_t buf[16];

    ops.connect = mini_connect;
    ops.disconnect = mini_disconnect;
    assert_int_equal(vmapple_vfio_backend_create(&ops, &m, &b), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "config_read"));
    ops.config_read = mini_config_read;
    assert_int_equal(vmapple_vfio_backend_create(&ops, &m, &b), 0);
    assert_int_equal(vmapple_vfio_backend_get_function(b, 0, &info), -ENOTSUP);

    m.connect_answer = -ENODEV;
    o.backend = b;
    assert_int_equal(vmapple_vfio_apple_create(NULL, NULL, &o, &pt), -ENODEV);
    assert_non_null(strstr(vmapple_last_error(), "01:00.0"));
    assert_int_equal(vmapple_vfio_backend_get_refs(b, FN_A), 0);
    m.connect_answer = 0;
    assert_int_equal(vmapple_vfio_apple_create(NULL, NULL, &o, &pt), 0);
    /* No config_write: forwarded writes fail, policy drops still succeed. */
    assert_int_equal(vmapple_vfio_apple_config_write(pt, 0x40, 4, 1), -ENOTSUP);
    assert_int_equal(vmapple_vfio_apple_config_write(pt, 0x04, 2, 6), -ENOTSUP);
    assert_int_equal(vmapple_vfio_apple_config_write(pt, 0x10, 4, 1), 0);
    /* No bar_info, reset or interrupts. */
    assert_int_equal(vmapple_vfio_apple_bar_read(pt, 0, 0, 4, &v64), -ENXIO);
    assert_int_equal(vmapple_vfio_apple_reset(pt), -ENOTSUP);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSI), 0);
    assert_int_equal(vmapple_vfio_apple_get_irq_count(pt, VMAPPLE_VFIO_IRQ_MSIX), 0);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(pt), 0);
    /* Reads come from the backend; a failing or overlong answer is an error. */
    assert_int_equal(vmapple_vfio_apple_config_read(pt, 0, 4, &v), 0);
    assert_int_equal(v, 0x5a5a5a5a);
    m.config_answer = -EIO;
    assert_int_equal(vmapple_vfio_apple_config_read(pt, 0, 4, &v), -EIO);
    m.config_answer = 5;
    assert_int_equal(vmapple_vfio_apple_config_read(pt, 0, 4, &v), -EIO);
    assert_int_equal(vmapple_vfio_backend_read_config(b, FN_A, 0, buf, 4), -EIO);
    m.config_answer = 0;
    /* Attaching a companion needs host memory callbacks. */
    {
        vmapple_device *c;
        assert_int_equal(vmapple_vfio_apple_attach_companion(pt, NULL, 0, &c), -EINVAL);
        assert_non_null(strstr(vmapple_vfio_apple_last_error(pt), "mem_read"));
    }
    vmapple_vfio_apple_destroy(pt);
    assert_int_equal(m.connects, 2);
    assert_int_equal(m.disconnects, 1);
    vmapple_vfio_backend_release(b);
}

/* ---- BARs ---- */

static void test_bar_access(void **state)
{
    struct fixture *f = *state;
    void *mem, *pmem;
    uint64_t len, plen, v;
    uint8_t *bar;

    assert_int_equal(vmapple_vfio_sim_get_bar_memory(f->sim, FN_A, 0, &mem, &len), 0);
    assert_int_equal(len, 0x1000);
    assert_int_equal(vmapple_vfio_apple_get_bar_memory(f->pt, 0, &pmem, &plen), 0);
    assert_ptr_equal(pmem, mem);
    assert_int_equal(plen, 0x1000);
    bar = mem;
    memset(bar, 0xcc, 0x1000);

    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0x10, 8, 0x0807060504030201ull), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(bar[0x10 + i], i + 1); /* little-endian */
    }
    assert_int_equal(bar[0x0f], 0xcc);
    assert_int_equal(bar[0x18], 0xcc);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0x20, 4, 0xffffffffaabbccddull), 0);
    assert_int_equal(adp_ld(bar + 0x20, 4), 0xaabbccdd);
    assert_int_equal(bar[0x24], 0xcc); /* the value is cut to the access size */
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0x22, 2, 0x1234), 0);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0x21, 1, 0x99), 0);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x20, 4, &v), 0);
    assert_int_equal(v, 0x123499dd);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x22, 2, &v), 0);
    assert_int_equal(v, 0x1234);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x23, 1, &v), 0);
    assert_int_equal(v, 0x12);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x10, 8, &v), 0);
    assert_int_equal(v, 0x0807060504030201ull);
    /* The last bytes of each BAR; then one past. */
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0xff8, 8, 1), 0);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 2, 0xfff8, 8, &v), 0);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 4, 0xff, 1, &v), 0);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 4, 0x100, 1, &v), -ERANGE);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x1000, 4, &v), -ERANGE);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0xffc, 8, 0), -ERANGE);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, UINT64_MAX - 3, 4, 0), -ERANGE);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 2, 0x10000, 1, 0), -ERANGE);
    /* Unaligned, bad sizes, absent BARs. */
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x22, 4, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_bar_write(f->pt, 0, 0x21, 2, 0), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x20, 3, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0x20, 16, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 1, 0, 4, &v), -ENXIO);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 3, 0, 4, &v), -ENXIO);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 6, 0, 4, &v), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_get_bar_memory(f->pt, 5, &pmem, &plen), -ENXIO);
    assert_int_equal(vmapple_vfio_apple_bar_read(f->pt, 0, 0, 4, NULL), -EINVAL);
    /* Nothing outside the accesses changed. */
    for (int i = 0x28; i < 0xff8; i++) {
        assert_int_equal(bar[i], 0xcc);
    }
}

/* ---- interrupts ---- */

static void raise_all(struct fixture *f, const uint32_t *vectors, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, vectors[i]), 0);
    }
}

static void test_irq_msi(void **state)
{
    struct fixture *f = *state;
    const uint64_t in_use[4] = { (1u << 0) | (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5), 0, 0,
                                 1ull << 8 };
    static const uint32_t raised[] = { 5, 4, 3, 2, 200, 1, 0 };
    vmapple_vfio_sim_state st;
    unsigned arms;

    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSI, 9, in_use), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSI, 4, in_use), 0);
    st = sim_state(f, FN_A);
    /* The mask is the in-use set below `enabled`: 4, 5 and 200 are never delivered. */
    assert_int_equal(st.mask[0], (1u << 0) | (1u << 1) | (1u << 3));
    assert_int_equal(st.mask[1] | st.mask[2] | st.mask[3], 0);
    arms = st.arms;

    raise_all(f, raised, 7);
    assert_int_equal(f->notifies, 1); /* armed at creation: one notification */
    assert_int_equal(f->notified_fn, FN_A);
    /* 0, 1, 3: in use and below 4; 2 is not in use; 4 and 5 are in use but not enabled. */
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 3);
    assert_int_equal(f->irqs.n, 3);
    assert_int_equal(f->irqs.vector[0], 0);
    assert_int_equal(f->irqs.vector[1], 1);
    assert_int_equal(f->irqs.vector[2], 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->irqs.type[i], VMAPPLE_VFIO_IRQ_MSI);
    }
    st = sim_state(f, FN_A);
    assert_int_equal(st.pending[0] | st.pending[3], 0); /* read and cleared */
    assert_int_equal(st.arms, arms + 1);                /* re-armed */
    assert_int_equal(st.armed, 1);
    /* Nothing pending: nothing delivered, re-armed again; the next raise notifies. */
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 0);
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 1), 0);
    assert_int_equal(f->notifies, 2);
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 3), 0);
    assert_int_equal(f->notifies, 2); /* once per arm */
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 2);
    /* A vector above 64 that is in use and enabled (set up all 8: 200 is still out). */
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSI, 8, NULL), 0);
    st = sim_state(f, FN_A);
    assert_int_equal(st.mask[0] | st.mask[3], 0); /* nothing in use */
    raise_all(f, raised, 7);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 0);
}

static void test_irq_msix(void **state)
{
    struct fixture *f = *state;
    const uint64_t in_use[4] = { 1ull << 16 | 1ull << 2, 1ull << 0, 0, 0 };
    static const uint32_t raised[] = { 64, 16, 2, 17 };

    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSIX, 18, in_use),
                     -EINVAL);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSIX, 17, in_use), 0);
    /* Unmasked: 2 and 16; 64 is in use but not enabled. */
    assert_int_equal(sim_state(f, FN_A).mask[0], 1ull << 16 | 1ull << 2);
    assert_int_equal(sim_state(f, FN_A).mask[1], 0);
    raise_all(f, raised, 4);
    /* 2 and 16: in use, below 17. 64 is in use but not enabled; 17 is not in use. */
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 2);
    assert_int_equal(f->irqs.vector[0], 2);
    assert_int_equal(f->irqs.vector[1], 16);
    assert_int_equal(f->irqs.type[0], VMAPPLE_VFIO_IRQ_MSIX);
    assert_int_equal(f->irqs.type[1], VMAPPLE_VFIO_IRQ_MSIX);
}

static void test_irq_intx(void **state)
{
    struct fixture *f = *state;
    const uint64_t junk[4] = { ~0ull, ~0ull, ~0ull, ~0ull };
    static const uint32_t raised[] = { 1, 0, 7 };
    vmapple_vfio_sim_state st;

    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_INTX, 0, NULL), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_INTX, 2, NULL), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_INTX, 1, junk), 0);
    st = sim_state(f, FN_A);
    assert_int_equal(st.mask[0], 1); /* bit 0 only, whatever in_use says */
    assert_int_equal(st.mask[1] | st.mask[2] | st.mask[3], 0);
    raise_all(f, raised, 3);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 1);
    assert_int_equal(f->irqs.n, 1);
    assert_int_equal(f->irqs.type[0], VMAPPLE_VFIO_IRQ_INTX);
    assert_int_equal(f->irqs.vector[0], 0);
    /* Other bits are not the line. */
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 1), 0);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 0);
    assert_int_equal(f->irqs.n, 1);
}

static void test_irq_none_and_reset(void **state)
{
    struct fixture *f = *state;
    const uint64_t in_use[4] = { 0xff, 0, 0, 0 };
    vmapple_vfio_sim_state st;

    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_NONE, 1, NULL), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, 7, 0, NULL), -EINVAL);
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 0), 0);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 0); /* mode NONE */
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_MSI, 8, in_use), 0);
    assert_int_equal(vmapple_vfio_apple_reset(f->pt), 0);
    st = sim_state(f, FN_A);
    assert_int_equal(st.resets, 1);
    assert_int_equal(st.mask[0], 0);
    /* After reset the mode is NONE: nothing is delivered. */
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 0), 0);
    assert_int_equal(vmapple_vfio_apple_process_interrupts(f->pt), 0);
    assert_int_equal(f->irqs.n, 0);
    assert_int_equal(vmapple_vfio_apple_set_irqs(f->pt, VMAPPLE_VFIO_IRQ_NONE, 0, NULL), 0);
    assert_int_equal(vmapple_vfio_apple_reset(NULL), -EINVAL);
}

/* ---- the registry ---- */

static void test_registry(void **state)
{
    struct fixture *f = *state;
    vmapple_vfio_apple_options o = pt_options(f, FN_A);
    vmapple_vfio_apple *second, *third;
    vmapple_dma_backend *dma;
    uint8_t buf[4];

    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 1);
    assert_int_equal(vmapple_vfio_backend_is_owned(f->backend, FN_A), 1);
    /* A second owner is refused; nothing changes. */
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &second), -EBUSY);
    assert_non_null(strstr(vmapple_last_error(), "owner"));
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 1);
    /* Non-owners share the one connection. */
    assert_int_equal(vmapple_vfio_backend_get_dma(f->backend, FN_A, NULL, &dma), 0);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 2);
    assert_int_equal(vmapple_vfio_backend_read_config(f->backend, FN_A, 0, buf, 4), 4);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 2);
    assert_int_equal(sim_state(f, FN_A).connects, 1);
    /* The owner leaves: the connection stays for the DMA backend. */
    vmapple_vfio_apple_destroy(f->pt);
    f->pt = NULL;
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 1);
    assert_int_equal(vmapple_vfio_backend_is_owned(f->backend, FN_A), 0);
    assert_int_equal(sim_state(f, FN_A).connected, 1);
    /* A new owner joins it. */
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &third), 0);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 2);
    assert_int_equal(sim_state(f, FN_A).connects, 1);
    /* Another function has its own connection. */
    o = pt_options(f, FN_B);
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &second), 0);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_B), 1);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 2);
    vmapple_vfio_apple_destroy(second);
    assert_int_equal(sim_state(f, FN_B).connected, 0);
    /* The last release disconnects. */
    vmapple_dma_backend_release(dma);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 1);
    vmapple_vfio_apple_destroy(third);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_A), 0);
    assert_int_equal(sim_state(f, FN_A).connected, 0);
    assert_int_equal(sim_state(f, FN_A).connects, 1);
    /* A transient read connects and disconnects. */
    assert_int_equal(vmapple_vfio_backend_read_config(f->backend, FN_A, 0, buf, 4), 4);
    assert_int_equal(sim_state(f, FN_A).connects, 2);
    assert_int_equal(sim_state(f, FN_A).connected, 0);
    /* Functions that do not exist. */
    o = pt_options(f, VMAPPLE_VFIO_HOST_FN(5, 0, 0));
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &second), -ENODEV);
    assert_int_equal(
        vmapple_vfio_backend_read_config(f->backend, VMAPPLE_VFIO_HOST_FN(5, 0, 0), 0, buf, 4),
        -ENODEV);
    assert_int_equal(vmapple_vfio_backend_read_config(f->backend, 0x1000000, 0, buf, 4), -EINVAL);
    assert_int_equal(
        vmapple_vfio_backend_get_dma(f->backend, VMAPPLE_VFIO_HOST_FN(5, 0, 0), NULL, &dma),
        -ENODEV);
}

/* ---- the companion ---- */

static vmapple_device *make_adp(struct fixture *f, uint16_t bdf, uint32_t key)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_device *dev;

    o.managed_bdf = bdf;
    o.host_bus = (uint8_t)(key >> 16);
    o.host_device = (uint8_t)((key >> 8) & 0x1f);
    o.host_function = (uint8_t)(key & 7);
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), f->h, &o, &dev), 0);
    return dev;
}

static void test_companion_found(void **state)
{
    struct fixture *f = *state;
    vmapple_device *other_pci, *other_adp, *mine, *got = NULL;
    vmapple_device *candidates[4];

    assert_int_equal(testpci_create(mock_host_ops(), f->h, 0, &other_pci), 0);
    other_adp = make_adp(f, GUEST_BDF + 8, FN_B);
    mine = make_adp(f, GUEST_BDF, FN_A);
    candidates[0] = other_pci;
    candidates[1] = NULL;
    candidates[2] = other_adp;
    candidates[3] = mine;
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, candidates, 4, &got), 0);
    assert_ptr_equal(got, mine);
    /* Found, not created: it survives the function. */
    vmapple_vfio_apple_destroy(f->pt);
    f->pt = NULL;
    assert_int_equal(vmapple_device_get_type(mine), VMAPPLE_DEVICE_APPLE_DMA_PCI);
    vmapple_device_destroy(mine);
    vmapple_device_destroy(other_adp);
    vmapple_device_destroy(other_pci);
}

static void test_companion_conflicts(void **state)
{
    struct fixture *f = *state;
    vmapple_device *got = NULL, *c[2];

    /* This guest BDF, another host function. */
    c[0] = make_adp(f, GUEST_BDF, FN_B);
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, c, 1, &got), -EEXIST);
    assert_non_null(strstr(vmapple_vfio_apple_last_error(f->pt), "0x0010"));
    vmapple_device_destroy(c[0]);
    /* This host function, another guest BDF. */
    c[0] = make_adp(f, GUEST_BDF + 1, FN_A);
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, c, 1, &got), -EEXIST);
    vmapple_device_destroy(c[0]);
    /* Two companions. */
    c[0] = make_adp(f, GUEST_BDF, FN_A);
    c[1] = make_adp(f, GUEST_BDF, FN_A);
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, c, 2, &got), -EEXIST);
    assert_non_null(strstr(vmapple_vfio_apple_last_error(f->pt), "two companions"));
    vmapple_device_destroy(c[1]);
    /* The same one twice is still one. */
    c[1] = c[0];
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, c, 2, &got), 0);
    assert_ptr_equal(got, c[0]);
    vmapple_device_destroy(c[0]);
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, NULL, 1, &got), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_attach_companion(f->pt, NULL, 0, NULL), -EINVAL);
}

static void test_companion_created(void **state)
{
    struct fixture *f = *state;
    vmapple_apple_dma_pci_options tmpl = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    vmapple_vfio_apple_options o = pt_options(f, FN_B);
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;
    vmapple_vfio_apple *pt;
    vmapple_device *c = NULL, *again;
    struct adp_guest g;
    struct adp_map_resp r;

    tmpl.layout = VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE;
    tmpl.max_entries = 64;
    tmpl.managed_bdf = 0x7777; /* replaced by the function's */
    o.companion = &tmpl;
    o.guest_bdf = 0x0118;
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), 0);
    assert_int_equal(vmapple_vfio_apple_attach_companion(pt, NULL, 0, &c), 1);
    assert_non_null(c);
    assert_int_equal(vmapple_apple_dma_pci_get_info(c, &info), 0);
    assert_int_equal(info.managed_bdf, 0x0118);
    assert_int_equal(info.host_bus, 0x02);
    assert_int_equal(info.host_device, 3);
    assert_int_equal(info.host_function, 1);
    assert_int_equal(info.layout, VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE);
    assert_int_equal(info.max_entries, 64);
    /* The companion shares the function's connection. */
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_B), 2);
    assert_int_equal(vmapple_vfio_apple_attach_companion(pt, NULL, 0, &again), -EBUSY);

    /* Its MAPs go through the host function to the simulated DART. */
    g.h = f->h;
    g.dev = c;
    g.layout = info.layout;
    g.cmd = RAM_BASE + 0x1000;
    g.req = RAM_BASE + 0x2000;
    g.resp = RAM_BASE + 0x3000;
    adp_enable(&g);
    adp_put_map(&g, 0, RAM_BASE + 0x10000, 0x2000, 0);
    assert_int_equal(adp_ring(&g, ADP_MAP, 1), ADP_OK);
    r = adp_get_map(&g, 0);
    assert_true(r.dma_addr >= VMAPPLE_SIM_DART_BUS_BASE);
    assert_int_equal(r.dma_addr & 0x4000, 0x4000);
    assert_int_equal(vmapple_dma_backend_get_occupancy(f->dart, &occ), 0);
    assert_int_equal(occ.mappings, 1);

    /* Destroyed with the function: the mapping is unregistered, the connection closed. */
    vmapple_vfio_apple_destroy(pt);
    assert_int_equal(vmapple_dma_backend_get_occupancy(f->dart, &occ), 0);
    assert_int_equal(occ.mappings, 0);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_B), 0);
    assert_int_equal(sim_state(f, FN_B).connected, 0);
}

/* ---- options and the simulation's own API ---- */

static void test_options(void **state)
{
    struct fixture *f = *state;
    vmapple_vfio_apple_options o = pt_options(f, FN_B);
    vmapple_vfio_apple *pt;
    vmapple_host_ops bad = VMAPPLE_HOST_OPS_INIT;

    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, NULL, &pt), -EINVAL);
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, NULL), -EINVAL);
    o.backend = NULL;
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "backend"));
    o = pt_options(f, FN_B);
    o.irq_deliver = NULL;
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "irq_deliver"));
    o = pt_options(f, FN_B);
    o.host_device = 32;
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "host_device"));
    o = pt_options(f, FN_B);
    o.reserved[0] = 1;
    assert_int_equal(vmapple_vfio_apple_create(mock_host_ops(), f->h, &o, &pt), -EINVAL);
    o = pt_options(f, FN_B);
    bad.size = 2;
    assert_int_equal(vmapple_vfio_apple_create(&bad, f->h, &o, &pt), -EINVAL);
    assert_int_equal(vmapple_vfio_backend_get_refs(f->backend, FN_B), 0);
    vmapple_vfio_apple_destroy(NULL);
    assert_string_equal(vmapple_vfio_apple_last_error(NULL), "NULL vfio-apple function");
}

static void test_sim_api(void **state)
{
    struct fixture *f = *state;
    vmapple_vfio_sim_function fn = VMAPPLE_VFIO_SIM_FUNCTION_INIT;
    vmapple_vfio_function_info info = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    vmapple_vfio_bar_info bar = VMAPPLE_VFIO_BAR_INFO_INIT;
    uint32_t off, size, value;
    void *mem;
    uint64_t len;

    /* Enumeration, in the order of addition, with identity from config space. */
    assert_int_equal(vmapple_vfio_backend_get_function(f->backend, 0, &info), 0);
    assert_int_equal(info.bus, 1);
    assert_int_equal(info.vendor_id, 0x106b);
    assert_int_equal(info.device_id, 0x2002);
    assert_int_equal(info.class_code, 0x010802);
    assert_int_equal(info.revision, 3);
    assert_int_equal(info.subsystem_vendor_id, 0x1234);
    assert_int_equal(info.subsystem_id, 0x5678);
    assert_int_equal(vmapple_vfio_backend_get_function(f->backend, 1, &info), 0);
    assert_int_equal(info.bus, 2);
    assert_int_equal(info.device, 3);
    assert_int_equal(info.function, 1);
    assert_int_equal(vmapple_vfio_backend_get_function(f->backend, 3, &info), -ENOENT);
    assert_int_equal(vmapple_vfio_backend_get_bar_info(f->backend, FN_A, 2, &bar), 0);
    assert_int_equal(bar.bar_size, 0x10000);
    assert_int_equal(bar.flags,
                     VMAPPLE_VFIO_BAR_MEM | VMAPPLE_VFIO_BAR_64 | VMAPPLE_VFIO_BAR_PREFETCH);
    assert_int_equal(vmapple_vfio_backend_get_bar_info(f->backend, FN_A, 6, &bar), -EINVAL);

    /* Bad functions. */
    fn.bus = 1;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EEXIST);
    fn.bus = 9;
    fn.config_len = 300;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.config_len = 256;
    fn.config_bytes = 257;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.config_bytes = 0;
    fn.bar_size[1] = 0x3000;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.bar_size[1] = 0;
    fn.bar_size[5] = 0x1000;
    fn.bar_flags[5] = VMAPPLE_VFIO_BAR_64;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.bar_flags[5] = 0;
    fn.msi_vectors = 257;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.msi_vectors = 0;
    fn.device = 32;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), -EINVAL);
    fn.device = 0;
    assert_int_equal(vmapple_vfio_sim_add_function(f->sim, &fn), 0);

    assert_int_equal(vmapple_vfio_sim_raise(f->sim, FN_A, 256), -EINVAL);
    assert_int_equal(vmapple_vfio_sim_raise(f->sim, 0x070000, 1), -ENODEV);
    assert_int_equal(vmapple_vfio_sim_get_bar_memory(f->sim, FN_A, 1, &mem, &len), -ENXIO);
    /* The write log keeps the last 256. */
    for (uint32_t i = 0; i < 300; i++) {
        assert_int_equal(vmapple_vfio_apple_config_write(f->pt, 0x40 + (i % 4) * 4, 4, i), 0);
    }
    assert_int_equal(vmapple_vfio_sim_get_config_write(f->sim, FN_A, 43, &off, &size, &value),
                     -ENOENT);
    assert_int_equal(vmapple_vfio_sim_get_config_write(f->sim, FN_A, 44, &off, &size, &value), 0);
    assert_int_equal(value, 44);
    assert_int_equal(off, 0x40);
    assert_int_equal(vmapple_vfio_sim_get_config_write(f->sim, FN_A, 299, &off, &size, &value), 0);
    assert_int_equal(value, 299);
    assert_int_equal(vmapple_vfio_sim_get_config_write(f->sim, FN_A, 300, &off, &size, &value),
                     -ENOENT);
    assert_null(vmapple_vfio_sim_get_backend(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_filter_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_filter_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_msi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_none_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_companion_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_companion_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_companion_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sim_api, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
