/* SPDX-License-Identifier: MIT */
/* bdif: every register of every unit at every size, the request format, reads
 * and writes through mapped and unmapped guest memory, the end of the volume,
 * every error path, options, volume references, reset and save/load, and one
 * regression test per defect of the reference (spec/bdif.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core.h"
#include "state.h"
#include "memvol.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (8ull << 20)
#define REQ      (RAM_BASE + 0x1000)
#define SECB     (RAM_BASE + 0x2000)
#define STAT     (RAM_BASE + 0x3000)
#define DATA     (RAM_BASE + 0x100000)

#define ROOT_CAP (4ull << 20)
#define AUX_CAP  (1ull << 20)

#define FLAGS_READ  0x00030001u
#define FLAGS_WRITE 0x00010001u
#define UNIT_ROOT   0u
#define UNIT_AUX    1u
#define REG_CMD     0x408u
#define SENTINEL    0xaa

struct fx {
    struct mock_host *h;
    struct memvol *root, *aux;
    vmapple_device *dev;
};

static vmapple_device *make_bdif(struct mock_host *h, vmapple_blockdev *root, vmapple_blockdev *aux,
                                 uint32_t flags)
{
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_device *dev = NULL;

    o.flags = flags;
    o.root = root;
    o.aux = aux;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), 0);
    return dev;
}

/* A fixture with root and aux memory volumes and the given flags. */
static struct fx *fx_new(uint32_t flags)
{
    struct fx *f = calloc(1, sizeof(*f));
    vmapple_blockdev *r, *a;

    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    f->root = memvol_new(ROOT_CAP, true);
    f->aux = memvol_new(AUX_CAP, true);
    /* The aux volume's bytes differ from root's, so a mix-up shows. */
    for (uint64_t i = 0; i < AUX_CAP; i++) {
        f->aux->data[i] ^= 0xff;
    }
    r = memvol_open(f->root, 0);
    a = memvol_open(f->aux, 0);
    f->dev = make_bdif(f->h, r, a, flags);
    /* The device holds its own references. */
    vmapple_blockdev_release(r);
    vmapple_blockdev_release(a);
    return f;
}

static void fx_free(struct fx *f)
{
    vmapple_device_destroy(f->dev);
    assert_int_equal(f->h->maps_live, 0);
    mock_host_free(f->h);
    memvol_free(f->root);
    memvol_free(f->aux);
    free(f);
}

static int setup(void **state)
{
    *state = fx_new(0);
    return 0;
}

static int setup_writes(void **state)
{
    *state = fx_new(VMAPPLE_BDIF_ALLOW_WRITES);
    return 0;
}

static int teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint32_t flags)
{
    vm_st_le64(p, addr);
    vm_st_le32(p + 8, len);
    vm_st_le32(p + 12, flags);
}

/* Writes a request at REQ (sector block at SECB, status at STAT). */
static void put_request(struct mock_host *h, uint32_t sector_len, uint32_t sector, uint64_t data,
                        uint32_t len, uint32_t flags)
{
    uint8_t *r = mock_ram(h, REQ, 48);
    uint8_t *s = mock_ram(h, SECB, 16);

    put_desc(r, SECB, sector_len, 0);
    put_desc(r + 16, data, len, flags);
    put_desc(r + 32, STAT, 1, 0);
    memset(s, 0xee, 16); /* padding around the sector field must not matter */
    vm_st_le32(s + 8, sector);
    *(uint8_t *)mock_ram(h, STAT, 1) = SENTINEL;
}

static void cmd(vmapple_device *dev, uint32_t unit, uint64_t gpa)
{
    assert_int_equal(vmapple_device_write(dev, 0, ((uint64_t)unit << 16) | REG_CMD, 8, gpa), 0);
}

static uint8_t status_byte(struct mock_host *h)
{
    return *(uint8_t *)mock_ram(h, STAT, 1);
}

/* Runs a request against `unit` and returns the status byte. */
static uint8_t run(struct fx *f, uint32_t unit, uint32_t sector, uint64_t data, uint32_t len,
                   uint32_t flags)
{
    put_request(f->h, 16, sector, data, len, flags);
    cmd(f->dev, unit, REQ);
    return status_byte(f->h);
}

static void assert_volume_bytes(const uint8_t *guest, const struct memvol *v, uint64_t off,
                                uint64_t len)
{
    assert_memory_equal(guest, v->data + off, len);
}

static uint64_t rd(vmapple_device *dev, uint64_t off, uint32_t size)
{
    uint64_t v = 0x1234;
    assert_int_equal(vmapple_device_read(dev, 0, off, size, &v), 0);
    return v;
}

/* Identity and map. */

static void test_bdif_identity_and_map(void **state)
{
    struct fx *f = *state;
    const vmapple_region_info *ri;
    const vmapple_platform_region *pr;

    assert_int_equal(vmapple_device_get_type(f->dev), VMAPPLE_DEVICE_BDIF);
    assert_string_equal(vmapple_device_get_name(f->dev), "bdif");
    assert_int_equal(vmapple_device_count_regions(f->dev), 1);
    assert_int_equal(vmapple_device_count_irqs(f->dev), 0);
    assert_int_equal(vmapple_device_get_region(f->dev, 0, &ri), 0);
    assert_string_equal(ri->name, "bdif");
    assert_int_equal(ri->base, 0x30000000);
    assert_int_equal(ri->size, 0x200000);
    assert_int_equal(ri->flags, VMAPPLE_REGION_MMIO);
    assert_int_equal(vmapple_platform_find_region(VMAPPLE_MAP_BDIF, &pr), 0);
    assert_int_equal(ri->base, pr->base);
    assert_int_equal(ri->size, pr->size);
    void *p;
    uint64_t sz;
    assert_int_equal(vmapple_device_get_region_memory(f->dev, 0, &p, &sz), -ENOTSUP);
}

/* Registers. */

static uint64_t expected_reg(uint32_t unit, uint32_t reg)
{
    switch (reg) {
    case 0x000:
        return 1;
    case 0x004:
        return 2;
    case 0x008:
        return 0x420;
    case 0x010:
        return 1;
    case 0x400:
        return 1;
    case 0x434:
        return 0;
    case 0x420:
        return unit == 0 ? 0x08000000 : unit == 1 ? 0x00010000 : UINT64_MAX;
    default:
        return UINT64_MAX;
    }
}

static void test_bdif_registers_every_unit_every_size(void **state)
{
    struct fx *f = *state;
    static const uint32_t units[] = { 0, 1, 0x10, 2, 0x0f, 0x11, 0x1f };
    static const uint32_t regs[] = { 0x000, 0x004, 0x008, 0x010, 0x400, 0x408, 0x420,
                                     0x434, 0x001, 0x002, 0x00c, 0x014, 0x40c, 0x410,
                                     0x424, 0x430, 0x438, 0x800, 0xfff8 };
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        for (size_t r = 0; r < sizeof(regs) / sizeof(regs[0]); r++) {
            for (size_t s = 0; s < 4; s++) {
                uint64_t off = ((uint64_t)units[u] << 16) | regs[r];
                uint64_t want = expected_reg(units[u], regs[r]) & vm_size_mask(sizes[s]);
                uint64_t got = rd(f->dev, off, sizes[s]);
                if (got != want) {
                    fail_msg("unit 0x%x reg 0x%x size %u: got 0x%llx want 0x%llx", units[u],
                             regs[r], sizes[s], (unsigned long long)got, (unsigned long long)want);
                }
            }
        }
    }
    /* The last bytes of the window; beyond it the core refuses. */
    assert_int_equal(rd(f->dev, 0x1ffff8, 8), UINT64_MAX);
    uint64_t v;
    assert_int_equal(vmapple_device_read(f->dev, 0, 0x1ffffc, 8, &v), -EINVAL);
    assert_int_equal(f->h->mem_reads + f->h->mem_writes, 0);
}

static void test_bdif_register_writes_ignored(void **state)
{
    struct fx *f = *state;
    static const uint32_t regs[] = {
        0x000, 0x004, 0x008, 0x010, 0x400, 0x420, 0x434, 0x40c, 0x123
    };

    for (size_t r = 0; r < sizeof(regs) / sizeof(regs[0]); r++) {
        for (uint32_t unit = 0; unit < 3; unit++) {
            uint64_t off = ((uint64_t)unit << 16) | regs[r];
            assert_int_equal(vmapple_device_write(f->dev, 0, off, 8, REQ), 0);
            assert_int_equal(vmapple_device_write(f->dev, 0, off, 4, 0), 0);
            assert_int_equal(rd(f->dev, off, 8), expected_reg(unit, regs[r]));
        }
    }
    /* No register but CMD touches guest memory. */
    assert_int_equal(f->h->mem_reads + f->h->mem_writes, 0);
}

/* Reads. */

static void test_bdif_read_root_and_aux(void **state)
{
    struct fx *f = *state;
    uint8_t *g = mock_ram(f->h, DATA, 8192);

    assert_int_equal(run(f, UNIT_ROOT, 3, DATA, 4096, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 3 * 512, 4096);
    assert_int_equal(run(f, UNIT_AUX, 7, DATA, 1024, FLAGS_READ), 0);
    assert_volume_bytes(g, f->aux, 7 * 512, 1024);
    /* Bytes after the transfer are untouched (still root's data). */
    assert_volume_bytes(g + 1024, f->root, 3 * 512 + 1024, 3072);
    assert_int_equal(f->root->bytes_read, 4096);
    assert_int_equal(f->aux->bytes_read, 1024);
}

static void test_bdif_read_odd_lengths_and_zero(void **state)
{
    struct fx *f = *state;
    uint8_t *g = mock_ram(f->h, DATA + 1, 1000);

    /* Lengths need not be whole sectors; the buffer need not be aligned. */
    assert_int_equal(run(f, UNIT_ROOT, 1, DATA + 1, 777, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 512, 777);
    /* A zero-length read succeeds and writes only the status byte. */
    unsigned writes = f->h->mem_writes;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 0, FLAGS_READ), 0);
    assert_int_equal(f->h->mem_writes, writes + 1);
}

static void test_bdif_read_zero_copy(void **state)
{
    struct fx *f = *state;
    uint8_t *g = mock_ram(f->h, DATA, 1 << 20);

    f->h->allow_map = true;
    assert_int_equal(run(f, UNIT_ROOT, 8, DATA, 1 << 20, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 8 * 512, 1 << 20);
    /* Straight into the mapping: the only copy through mem_write is the status. */
    assert_int_equal(f->h->mem_writes, 1);
    assert_int_equal(f->h->maps_total, 1);
    assert_int_equal(f->h->maps_live, 0);
    assert_int_equal(f->root->reads, 1);
}

static void test_bdif_read_partial_mappings(void **state)
{
    struct fx *f = *state;
    uint8_t *g = mock_ram(f->h, DATA, 300000);

    /* The host maps at most 64 KiB at a time: the device loops over mappings. */
    f->h->allow_map = true;
    f->h->map_chunk = 65536;
    assert_int_equal(run(f, UNIT_ROOT, 2, DATA, 300000, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 1024, 300000);
    assert_int_equal(f->h->maps_total, 5);
    assert_int_equal(f->h->maps_live, 0);
    assert_int_equal(f->h->mem_writes, 1);
}

static void test_bdif_read_bounce_chunks(void **state)
{
    struct fx *f = *state;
    uint32_t len = (3u << 20) + 512;
    uint8_t *g = mock_ram(f->h, DATA, len);

    assert_int_equal(run(f, UNIT_ROOT, 1, DATA, len, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 512, len);
    /* Four chunks of at most 1 MiB, then the status byte. */
    assert_int_equal(f->h->mem_writes, 5);
    assert_int_equal(f->root->max_read_len, 1u << 20);
}

/* The 128 MiB cap: exactly 128 MiB works, one byte more is refused. */
static void test_bdif_max_transfer(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, (128ull << 20) + 0x10000);
    struct memvol *v = memvol_new(256ull << 20, false);
    vmapple_blockdev *bd = memvol_open(v, 0);
    vmapple_device *dev = make_bdif(h, bd, NULL, 0);
    uint64_t data = RAM_BASE + 0x10000;
    uint32_t max = 128u << 20;
    uint8_t *g = mock_ram(h, data, max);
    struct fx f = { .h = h, .dev = dev };
    (void)state;

    vmapple_blockdev_release(bd);
    h->allow_map = true;
    assert_int_equal(run(&f, UNIT_ROOT, 16, data, max, FLAGS_READ), 0);
    for (uint64_t i = 0; i < max; i += 4093) {
        assert_int_equal(g[i], memvol_pattern(16 * 512 + i));
    }
    assert_int_equal(g[max - 1], memvol_pattern(16 * 512 + max - 1));
    memset(g, 0, 4096);
    uint64_t before = v->bytes_read;
    assert_int_equal(run(&f, UNIT_ROOT, 16, data, max + 1, FLAGS_READ), 1);
    assert_int_equal(v->bytes_read, before);
    assert_int_equal(g[0], 0);
    assert_true(mock_log_contains(h, "limit"));
    vmapple_device_destroy(dev);
    assert_int_equal(v->closes, 1);
    memvol_free(v);
    mock_host_free(h);
}

/* Errors in the request. */

static void test_bdif_unknown_flags(void **state)
{
    struct fx *f = *state;
    static const uint32_t bad[] = { 0,          1,          0x00030000, 0x00020001,
                                    0x00030003, 0x00010003, 0xffffffff, 0x10030001 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, bad[i]), 1);
    }
    assert_int_equal(f->root->reads + f->root->writes, 0);
    assert_true(mock_log_contains(f->h, "unknown data flags"));
}

static void test_bdif_sector_descriptor_len(void **state)
{
    struct fx *f = *state;
    static const uint32_t bad[] = { 0, 8, 12, 15, 17, 32, 0xffffffff };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put_request(f->h, bad[i], 0, DATA, 512, FLAGS_READ);
        cmd(f->dev, UNIT_ROOT, REQ);
        assert_int_equal(status_byte(f->h), 1);
    }
    assert_int_equal(f->root->reads, 0);
    assert_true(mock_log_contains(f->h, "sector descriptor len"));
}

static void test_bdif_sector_block_unreadable(void **state)
{
    struct fx *f = *state;
    uint8_t *r = mock_ram(f->h, REQ, 48);

    put_request(f->h, 16, 0, DATA, 512, FLAGS_READ);
    vm_st_le64(r, 0x1000); /* not RAM */
    cmd(f->dev, UNIT_ROOT, REQ);
    assert_int_equal(status_byte(f->h), 1);
    vm_st_le64(r, RAM_BASE + RAM_SIZE - 8); /* straddles the end of RAM */
    *(uint8_t *)mock_ram(f->h, STAT, 1) = SENTINEL;
    cmd(f->dev, UNIT_ROOT, REQ);
    assert_int_equal(status_byte(f->h), 1);
    assert_int_equal(f->root->reads, 0);
}

static void test_bdif_data_buffer_faults(void **state)
{
    struct fx *f = *state;

    /* Outside RAM, straddling its end, wrapping the address space. */
    f->h->guard_writes = true;
    f->h->guard_lo = STAT;
    f->h->guard_hi = STAT + 1;
    assert_int_equal(run(f, UNIT_ROOT, 0, 0x1000, 512, FLAGS_READ), 1);
    assert_int_equal(run(f, UNIT_ROOT, 0, UINT64_MAX - 100, 512, FLAGS_READ), 1);
    assert_int_equal(f->h->wrapping_accesses, 0);
    assert_int_equal(f->h->stray_writes, 0);
    /*
     * Straddling the end of RAM: only the RAM part may be written. The guard
     * now covers that part only, so the two status bytes count as strays.
     */
    f->h->guard_lo = RAM_BASE + RAM_SIZE - 256;
    f->h->guard_hi = RAM_BASE + RAM_SIZE;
    assert_int_equal(run(f, UNIT_ROOT, 0, RAM_BASE + RAM_SIZE - 256, 512, FLAGS_READ), 1);
    assert_true(mock_log_contains(f->h, "guest memory"));
    /* The same with mapping: the host maps the part that is RAM, no more. */
    f->h->allow_map = true;
    assert_int_equal(run(f, UNIT_ROOT, 0, RAM_BASE + RAM_SIZE - 256, 512, FLAGS_READ), 1);
    assert_int_equal(f->h->maps_total, 1);
    assert_int_equal(f->h->stray_writes, 2);
    assert_int_equal(f->h->maps_live, 0);
    assert_int_equal(f->h->wrapping_accesses, 0);
}

static void test_bdif_status_unwritable(void **state)
{
    struct fx *f = *state;
    uint8_t *r = mock_ram(f->h, REQ, 48);

    put_request(f->h, 16, 0, DATA, 512, FLAGS_READ);
    vm_st_le64(r + 32, 0x1000);
    cmd(f->dev, UNIT_ROOT, REQ);
    assert_true(mock_log_contains(f->h, "status byte"));
    /* The read itself was done; the device is still fine. */
    assert_volume_bytes(mock_ram(f->h, DATA, 512), f->root, 0, 512);
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 0);
}

/* The status descriptor's len and flags are not checked, as in the reference. */
static void test_bdif_status_descriptor_len_ignored(void **state)
{
    struct fx *f = *state;
    uint8_t *r = mock_ram(f->h, REQ, 48);

    put_request(f->h, 16, 0, DATA, 512, FLAGS_READ);
    put_desc(r + 32, STAT, 0, 0xffffffff);
    cmd(f->dev, UNIT_ROOT, REQ);
    assert_int_equal(status_byte(f->h), 0);
}

static void test_bdif_cmd_access_sizes(void **state)
{
    struct fx *f = *state;
    uint64_t req4 = RAM_BASE + 0x400; /* fits in 32 bits */

    /* A 4-byte CMD write carries a 32-bit address. */
    put_request(f->h, 16, 2, DATA, 512, FLAGS_READ);
    memcpy(mock_ram(f->h, req4, 48), mock_ram(f->h, REQ, 48), 48);
    assert_int_equal(vmapple_device_write(f->dev, 0, REG_CMD, 4, req4), 0);
    assert_int_equal(status_byte(f->h), 0);
    assert_volume_bytes(mock_ram(f->h, DATA, 512), f->root, 1024, 512);
    /* A 1- or 2-byte write truncates the address: nothing is RAM there. */
    unsigned w = f->h->mem_writes;
    assert_int_equal(vmapple_device_write(f->dev, 0, REG_CMD, 1, req4), 0);
    assert_int_equal(vmapple_device_write(f->dev, 0, REG_CMD, 2, req4), 0);
    assert_int_equal(f->h->mem_writes, w);
}

/* End of the volume (reference defect 3). */

static void test_bdif_defect3_end_of_volume(void **state)
{
    struct fx *f = *state;
    uint32_t last = (uint32_t)(ROOT_CAP / 512) - 1;
    uint8_t *g = mock_ram(f->h, DATA, 2048);

    /* Ends exactly at the end: success. */
    assert_int_equal(run(f, UNIT_ROOT, last - 1, DATA, 1024, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, ROOT_CAP - 1024, 1024);

    /* Crosses it by one byte: failure, and the guest's buffer is untouched. */
    memset(g, 0x5c, 2048);
    f->h->guard_writes = true;
    f->h->guard_lo = STAT;
    f->h->guard_hi = STAT + 1;
    uint64_t before = f->root->bytes_read;
    assert_int_equal(run(f, UNIT_ROOT, last - 1, DATA, 1025, FLAGS_READ), 1);
    assert_int_equal(run(f, UNIT_ROOT, last, DATA, 2048, FLAGS_READ), 1);
    for (int i = 0; i < 2048; i++) {
        assert_int_equal(g[i], 0x5c);
    }
    assert_int_equal(f->root->bytes_read, before);
    assert_int_equal(f->h->stray_writes, 0);
    assert_true(mock_log_contains(f->h, "leaves the volume"));

    /* Starting at the end: only a zero-length transfer fits. */
    assert_int_equal(run(f, UNIT_ROOT, last + 1, DATA, 512, FLAGS_READ), 1);
    assert_int_equal(run(f, UNIT_ROOT, last + 1, DATA, 0, FLAGS_READ), 0);
    /* Far beyond: the largest sector number. */
    assert_int_equal(run(f, UNIT_ROOT, UINT32_MAX, DATA, 512, FLAGS_READ), 1);
    /* The same with the host mapping guest memory. */
    f->h->allow_map = true;
    assert_int_equal(run(f, UNIT_ROOT, last, DATA, 1024, FLAGS_READ), 1);
    assert_int_equal(f->h->maps_total, 0);
    assert_int_equal(g[0], 0x5c);
    assert_int_equal(f->h->stray_writes, 0);
    /* aux ends elsewhere. */
    f->h->guard_writes = false;
    assert_int_equal(run(f, UNIT_AUX, (uint32_t)(AUX_CAP / 512) - 1, DATA, 512, FLAGS_READ), 0);
    assert_int_equal(run(f, UNIT_AUX, (uint32_t)(AUX_CAP / 512), DATA, 512, FLAGS_READ), 1);
}

/* Reference defect 1: an unreadable request must not lead to any write. */
static void test_bdif_defect1_no_status_write_when_request_unreadable(void **state)
{
    struct fx *f = *state;
    static const uint64_t bad[] = { 0,
                                    0x1000,
                                    RAM_BASE - 16,
                                    RAM_BASE + RAM_SIZE - 47,
                                    RAM_BASE + RAM_SIZE,
                                    UINT64_MAX - 10,
                                    UINT64_MAX };

    /* Whatever is lying around in RAM must not be taken for a status address. */
    put_request(f->h, 16, 0, DATA, 512, FLAGS_READ);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cmd(f->dev, UNIT_ROOT, bad[i]);
        cmd(f->dev, UNIT_AUX, bad[i]);
    }
    f->h->allow_map = true;
    cmd(f->dev, UNIT_ROOT, RAM_BASE + RAM_SIZE - 47);
    /* A host read failure on a valid address is the same. */
    f->h->fail_reads = 1;
    cmd(f->dev, UNIT_ROOT, REQ);
    assert_int_equal(f->h->mem_writes, 0);
    assert_int_equal(f->h->maps_total, 0);
    assert_int_equal(status_byte(f->h), SENTINEL);
    assert_int_equal(f->root->reads + f->aux->reads, 0);
    assert_int_equal(f->h->wrapping_accesses, 0);
    assert_true(mock_log_contains(f->h, "no status written"));
}

/* Reference defect 2: no bounce buffer sized by the guest. */
static void test_bdif_defect2_bounded_chunks(void **state)
{
    struct fx *f = *state;
    uint32_t len = 4u << 20;
    uint8_t *g = mock_ram(f->h, DATA, len);

    /* Without mem_map every volume call and every guest copy is at most 1 MiB. */
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, len, FLAGS_READ), 0);
    assert_volume_bytes(g, f->root, 0, len);
    assert_true(f->root->max_read_len <= (1u << 20));
    assert_true(f->h->bytes_written <= (uint64_t)len + 1);
    assert_int_equal(f->h->mem_writes, 4 + 1);
    /* A guest asking for 128 MiB of unmapped memory costs one chunk, then fails. */
    unsigned reads = f->root->reads;
    assert_int_equal(run(f, UNIT_ROOT, 0, 0x1000, 2u << 20, FLAGS_READ), 1);
    assert_int_equal(f->root->reads, reads + 1);
}

/* Volumes. */

static void test_bdif_unit_without_volume(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *v = memvol_new(AUX_CAP, true);
    vmapple_blockdev *bd = memvol_open(v, 0);
    vmapple_device *dev = make_bdif(h, NULL, bd, 0);
    struct fx f = { .h = h, .dev = dev };
    (void)state;

    vmapple_blockdev_release(bd);
    /* root has no volume: registers as usual, requests fail with status 1. */
    assert_int_equal(rd(dev, 0x420, 4), 0x08000000);
    assert_int_equal(rd(dev, 0x000, 4), 1);
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 1);
    assert_true(mock_log_contains(h, "without a volume"));
    assert_int_equal(run(&f, UNIT_AUX, 0, DATA, 512, FLAGS_READ), 0);
    vmapple_device_destroy(dev);
    assert_int_equal(v->closes, 1);

    /* No volumes at all. */
    dev = make_bdif(h, NULL, NULL, 0);
    f.dev = dev;
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 1);
    assert_int_equal(run(&f, UNIT_AUX, 0, DATA, 512, FLAGS_READ), 1);
    vmapple_device_destroy(dev);
    memvol_free(v);
    mock_host_free(h);
}

static void test_bdif_absent_units_ignore_cmd(void **state)
{
    struct fx *f = *state;
    static const uint32_t units[] = { 2, 3, 0x0f, 0x10, 0x11, 0x1f };

    put_request(f->h, 16, 0, DATA, 512, FLAGS_READ);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        cmd(f->dev, units[i], REQ);
    }
    assert_int_equal(f->h->mem_reads + f->h->mem_writes, 0);
    assert_int_equal(status_byte(f->h), SENTINEL);
    assert_true(mock_log_contains(f->h, "absent unit"));
}

static void test_bdif_volume_references(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *v = memvol_new(AUX_CAP, true);
    vmapple_blockdev *bd = memvol_open(v, 0);
    vmapple_device *d1 = make_bdif(h, bd, bd, 0);
    vmapple_device *d2 = make_bdif(h, bd, NULL, 0);
    struct fx f = { .h = h, .dev = d1 };
    (void)state;

    /* One volume behind both units of one device and another device. */
    vmapple_blockdev_release(bd);
    assert_int_equal(v->closes, 0);
    assert_int_equal(run(&f, UNIT_AUX, 1, DATA, 512, FLAGS_READ), 0);
    vmapple_device_destroy(d1);
    assert_int_equal(v->closes, 0);
    f.dev = d2;
    assert_int_equal(run(&f, UNIT_ROOT, 1, DATA, 512, FLAGS_READ), 0);
    vmapple_device_destroy(d2);
    assert_int_equal(v->closes, 1);
    memvol_free(v);
    mock_host_free(h);
}

static void test_bdif_file_volume(void **state)
{
    char path[] = "/tmp/vmapple-bdif-XXXXXX";
    int fd = mkstemp(path);
    uint8_t buf[8192];
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev *bd;
    vmapple_device *dev;
    struct fx f = { .h = h };
    (void)state;

    assert_true(fd >= 0);
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = memvol_pattern(i);
    }
    assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
    close(fd);
    fo.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    assert_int_equal(vmapple_blockdev_open_file(path, &fo, &bd), 0);
    dev = make_bdif(h, bd, NULL, VMAPPLE_BDIF_ALLOW_WRITES);
    vmapple_blockdev_release(bd);
    f.dev = dev;
    assert_int_equal(run(&f, UNIT_ROOT, 14, DATA, 1024, FLAGS_READ), 0);
    assert_memory_equal(mock_ram(h, DATA, 1024), buf + 14 * 512, 1024);
    h->allow_map = true;
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 8192, FLAGS_READ), 0);
    assert_memory_equal(mock_ram(h, DATA, 8192), buf, 8192);
    assert_int_equal(run(&f, UNIT_ROOT, 15, DATA, 1024, FLAGS_READ), 1);
    /* Read-only file: writes refused even with writes allowed. */
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 512, FLAGS_WRITE), 1);
    assert_true(mock_log_contains(h, "read-only"));
    vmapple_device_destroy(dev);
    unlink(path);
    mock_host_free(h);
}

/* Writes. */

static void test_bdif_writes_off_by_default(void **state)
{
    struct fx *f = *state;
    uint8_t *g = mock_ram(f->h, DATA, 512);

    memset(g, 0x77, 512);
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_WRITE), 1);
    assert_int_equal(f->root->writes, 0);
    assert_int_equal(f->root->data[0], memvol_pattern(0));
    assert_true(mock_log_contains(f->h, "VMAPPLE_BDIF_ALLOW_WRITES"));
}

static void test_bdif_write(void **state)
{
    struct fx *f = *state;
    uint32_t len = (2u << 20) + 1536;
    uint8_t *g = mock_ram(f->h, DATA, len);

    for (uint32_t i = 0; i < len; i++) {
        g[i] = (uint8_t)(i * 13 + 1);
    }
    assert_int_equal(run(f, UNIT_ROOT, 5, DATA, len, FLAGS_WRITE), 0);
    assert_memory_equal(f->root->data + 5 * 512, g, len);
    assert_true(f->root->max_write_len <= (1u << 20));
    assert_int_equal(f->root->flushes, 0);
    /*
     * Zero-copy: straight from the mapping, which is read-only. The guard
     * allows writes to the status byte only: a writable mapping of the data
     * buffer would count as a stray write.
     */
    f->h->allow_map = true;
    memset(g, 0x42, 4096);
    f->h->guard_writes = true;
    f->h->guard_lo = STAT;
    f->h->guard_hi = STAT + 1;
    assert_int_equal(run(f, UNIT_AUX, 1, DATA, 4096, FLAGS_WRITE), 0);
    assert_memory_equal(f->aux->data + 512, g, 4096);
    assert_int_equal(f->aux->writes, 1);
    assert_int_equal(f->h->maps_live, 0);
    assert_int_equal(f->h->maps_total, 1);
    assert_int_equal(f->h->stray_writes, 0);
    f->h->guard_writes = false;
    /* Ends exactly at the end: fine; crosses it: nothing written. */
    assert_int_equal(run(f, UNIT_AUX, (uint32_t)(AUX_CAP / 512) - 8, DATA, 4096, FLAGS_WRITE), 0);
    unsigned writes = f->aux->writes;
    assert_int_equal(run(f, UNIT_AUX, (uint32_t)(AUX_CAP / 512) - 7, DATA, 4096, FLAGS_WRITE), 1);
    assert_int_equal(f->aux->writes, writes);
}

static void test_bdif_write_read_only_volume(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *v = memvol_new(AUX_CAP, true);
    vmapple_blockdev *bd = memvol_open(v, VMAPPLE_BLOCKDEV_READ_ONLY);
    vmapple_device *dev = make_bdif(h, bd, NULL, VMAPPLE_BDIF_ALLOW_WRITES);
    struct fx f = { .h = h, .dev = dev };
    (void)state;

    vmapple_blockdev_release(bd);
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 512, FLAGS_WRITE), 1);
    assert_int_equal(v->writes, 0);
    assert_true(mock_log_contains(h, "read-only"));
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 0);
    vmapple_device_destroy(dev);
    memvol_free(v);
    mock_host_free(h);
}

/* The status byte a flush saw: it must still be the sentinel. */
static int status_at_flush;
static void record_status(void *ctx)
{
    status_at_flush = *(uint8_t *)mock_ram(ctx, STAT, 1);
}

static void test_bdif_write_flush_before_status(void **state)
{
    struct fx *f = fx_new(VMAPPLE_BDIF_ALLOW_WRITES | VMAPPLE_BDIF_FLUSH_WRITES);
    (void)state;

    f->root->on_flush = record_status;
    f->root->on_flush_ctx = f->h;
    status_at_flush = -1;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 4096, FLAGS_WRITE), 0);
    assert_int_equal(f->root->flushes, 1);
    assert_int_equal(status_at_flush, SENTINEL);
    /* A failed flush fails the write. */
    f->root->fail_flushes = 1;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 4096, FLAGS_WRITE), 1);
    assert_true(mock_log_contains(f->h, "flush"));
    /* Reads never flush. */
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 4096, FLAGS_READ), 0);
    assert_int_equal(f->root->flushes, 2);
    fx_free(f);
}

static void test_bdif_write_errors(void **state)
{
    struct fx *f = *state;

    f->root->fail_writes = 1;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_WRITE), 1);
    assert_true(mock_log_contains(f->h, "write of 512 bytes at sector 0 failed"));
    /* Guest memory that is not RAM. */
    assert_int_equal(run(f, UNIT_ROOT, 0, 0x1000, 512, FLAGS_WRITE), 1);
    assert_int_equal(f->root->writes, 1);
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_WRITE), 0);
}

/* I/O errors. */

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static void test_bdif_read_io_error_rate_limited(void **state)
{
    struct fx *f = *state;

    vm_clock_hook = fake_clock;
    fake_now = 1;
    f->root->fail_reads = 1000;
    mock_log_clear(f->h);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 1);
    }
    assert_int_equal(f->h->nr_log, VM_RATELIMIT_BURST);
    assert_true(mock_log_contains(f->h, "read of 512 bytes at sector 0 failed"));
    assert_int_equal(f->h->log_level[0], VMAPPLE_LOG_ERROR);
    /* A second later one more line, with the count of the dropped ones. */
    fake_now += VM_RATELIMIT_INTERVAL_NS;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 1);
    assert_true(mock_log_contains(f->h, "90 similar messages suppressed"));
    vm_clock_hook = NULL;
    /* The device works afterwards. */
    f->root->fail_reads = 0;
    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 0);
}

/* A mid-transfer failure leaves at most a prefix of the buffer written. */
static int fail_after;
static int failing_read(void *opaque, uint64_t offset, void *buf, uint64_t len)
{
    (void)opaque;
    if (fail_after-- <= 0) {
        return -EIO;
    }
    for (uint64_t i = 0; i < len; i++) {
        ((uint8_t *)buf)[i] = memvol_pattern(offset + i);
    }
    return 0;
}

static void test_bdif_read_error_mid_transfer(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_blockdev_ops ops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options o = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_blockdev *bd;
    vmapple_device *dev;
    uint8_t *g = mock_ram(h, DATA, 4u << 20);
    struct fx f = { .h = h };
    (void)state;

    ops.read = failing_read;
    o.capacity = 8u << 20;
    assert_int_equal(vmapple_blockdev_create(&ops, NULL, &o, &bd), 0);
    dev = make_bdif(h, bd, NULL, 0);
    vmapple_blockdev_release(bd);
    f.dev = dev;
    memset(g, 0x11, 4u << 20);
    fail_after = 1;
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 3u << 20, FLAGS_READ), 1);
    /* The first chunk arrived, the rest is as it was, nothing beyond. */
    assert_int_equal(g[0], memvol_pattern(0));
    assert_int_equal(g[(1u << 20) - 1], memvol_pattern((1u << 20) - 1));
    assert_int_equal(g[1u << 20], 0x11);
    assert_int_equal(g[(3u << 20)], 0x11);
    fail_after = 1000;
    assert_int_equal(run(&f, UNIT_ROOT, 0, DATA, 3u << 20, FLAGS_READ), 0);
    assert_int_equal(g[(3u << 20) - 1], memvol_pattern((3u << 20) - 1));
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* Options and creation. */

static void test_bdif_options(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_host_ops ops = *mock_host_ops();
    vmapple_device *dev = NULL;
    struct {
        vmapple_bdif_options o;
        uint64_t future;
    } newer;
    (void)state;

    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, NULL, &dev), 0);
    vmapple_device_destroy(dev);

    o.flags = 0x100;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_null(dev);
    assert_non_null(strstr(vmapple_last_error(), "option flags: unknown bits 0x100"));
    o.flags = VMAPPLE_BDIF_FLUSH_WRITES;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "needs VMAPPLE_BDIF_ALLOW_WRITES"));
    o.flags = 0;
    o.size = 2;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), -EINVAL);

    /* A size that ends inside a pointer field would copy half a pointer. */
    o.size = offsetof(vmapple_bdif_options, aux) + 4;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "ends inside a volume pointer"));
    o.size = offsetof(vmapple_bdif_options, root) + 1;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), -EINVAL);

    /* An older caller: only size and flags. */
    o.size = offsetof(vmapple_bdif_options, root);
    o.flags = VMAPPLE_BDIF_ALLOW_WRITES;
    o.root = (vmapple_blockdev *)0x1; /* beyond its size: never read */
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &o, &dev), 0);
    vmapple_device_destroy(dev);

    /* A newer caller: fine while the fields we do not know are zero. */
    memset(&newer, 0, sizeof(newer));
    newer.o.size = sizeof(newer);
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &newer.o, &dev), 0);
    vmapple_device_destroy(dev);
    newer.future = 1;
    assert_int_equal(vmapple_bdif_create(mock_host_ops(), h, &newer.o, &dev), -EINVAL);

    /* Host callbacks it needs. */
    ops.mem_read = NULL;
    assert_int_equal(vmapple_bdif_create(&ops, h, NULL, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "mem_read"));
    ops = *mock_host_ops();
    ops.mem_write = NULL;
    assert_int_equal(vmapple_bdif_create(&ops, h, NULL, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "mem_write"));
    assert_int_equal(vmapple_bdif_create(NULL, h, NULL, &dev), -EINVAL);
    /* mem_map is optional. */
    ops = *mock_host_ops();
    ops.mem_map = NULL;
    ops.mem_unmap = NULL;
    assert_int_equal(vmapple_bdif_create(&ops, h, NULL, &dev), 0);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* Reset and state. */

static void test_bdif_reset(void **state)
{
    struct fx *f = *state;

    assert_int_equal(run(f, UNIT_ROOT, 0, DATA, 512, FLAGS_READ), 0);
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(rd(f->dev, 0x420, 4), 0x08000000);
    assert_int_equal(run(f, UNIT_ROOT, 1, DATA, 512, FLAGS_READ), 0);
    assert_volume_bytes(mock_ram(f->h, DATA, 512), f->root, 512, 512);
}

static uint8_t *save_blob(vmapple_device *dev, size_t *size)
{
    uint8_t *blob;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, size), -ENOSPC);
    blob = malloc(*size);
    assert_int_equal(vmapple_device_save(dev, blob, *size, size), 0);
    return blob;
}

/* Rewrites a payload byte and fixes the CRC, as a deliberate tamperer would. */
static void tamper(uint8_t *blob, size_t size, size_t payload_off, uint8_t value)
{
    blob[32 + payload_off] = value;
    vm_st_le32(blob + 24, vm_crc32(blob + 32, size - 32));
}

static void test_bdif_save_load(void **state)
{
    struct fx *f = *state;
    struct fx *g = fx_new(0);
    struct fx *w = fx_new(VMAPPLE_BDIF_ALLOW_WRITES);
    size_t size;
    uint8_t *blob = save_blob(f->dev, &size);
    vmapple_device *other;

    /* Same configuration: loads, and behaves the same. */
    assert_int_equal(vmapple_device_load(g->dev, blob, size), 0);
    assert_int_equal(run(g, UNIT_ROOT, 2, DATA, 1024, FLAGS_READ), 0);
    assert_volume_bytes(mock_ram(g->h, DATA, 1024), g->root, 1024, 1024);
    assert_int_equal(run(g, UNIT_ROOT, 2, DATA, 1024, FLAGS_WRITE), 1);

    /* Flags differ. */
    assert_int_equal(vmapple_device_load(w->dev, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(w->dev), "flags"));

    /* A device without root, or with a root of another size. */
    other = make_bdif(f->h, NULL, NULL, 0);
    assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "option root"));
    vmapple_device_destroy(other);
    struct memvol *small = memvol_new(ROOT_CAP / 2, true);
    vmapple_blockdev *sbd = memvol_open(small, 0);
    vmapple_blockdev *abd = memvol_open(f->aux, 0);
    other = make_bdif(f->h, sbd, abd, 0);
    assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "option root"));
    assert_non_null(strstr(vmapple_device_last_error(other), "4194304"));
    vmapple_device_destroy(other);
    vmapple_blockdev_release(sbd);
    vmapple_blockdev_release(abd);
    memvol_free(small);

    /* Truncated, padded, foreign. */
    assert_int_equal(vmapple_device_load(g->dev, blob, size - 1), -EBADMSG);
    assert_int_equal(vmapple_device_load(g->dev, blob, 10), -EBADMSG);
    vmapple_device *cfg;
    assert_int_equal(vmapple_cfg_create(NULL, NULL, NULL, &cfg), 0);
    size_t csize;
    uint8_t *cblob = save_blob(cfg, &csize);
    assert_int_equal(vmapple_device_load(g->dev, cblob, csize), -ENODEV);
    free(cblob);
    vmapple_device_destroy(cfg);

    /* Tampered: a bool that is not 0/1; a payload one byte short. */
    uint8_t *bad = malloc(size);
    memcpy(bad, blob, size);
    tamper(bad, size, 8 + 4, 2);
    assert_int_equal(vmapple_device_load(g->dev, bad, size), -EBADMSG);
    memcpy(bad, blob, size);
    vm_st_le32(bad + 20, (uint32_t)(size - 33));
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 33));
    assert_int_equal(vmapple_device_load(g->dev, bad, size - 1), -EBADMSG);
    free(bad);
    /* After all that, the device still works. */
    assert_int_equal(run(g, UNIT_AUX, 0, DATA, 512, FLAGS_READ), 0);
    free(blob);
    fx_free(g);
    fx_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bdif_identity_and_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_registers_every_unit_every_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_register_writes_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_root_and_aux, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_odd_lengths_and_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_zero_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_partial_mappings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_bounce_chunks, setup, teardown),
        cmocka_unit_test(test_bdif_max_transfer),
        cmocka_unit_test_setup_teardown(test_bdif_unknown_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_sector_descriptor_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_sector_block_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_data_buffer_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_status_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_status_descriptor_len_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_cmd_access_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_defect1_no_status_write_when_request_unreadable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_defect2_bounded_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_defect3_end_of_volume, setup, teardown),
        cmocka_unit_test(test_bdif_unit_without_volume),
        cmocka_unit_test_setup_teardown(test_bdif_absent_units_ignore_cmd, setup, teardown),
        cmocka_unit_test(test_bdif_volume_references),
        cmocka_unit_test(test_bdif_file_volume),
        cmocka_unit_test_setup_teardown(test_bdif_writes_off_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_write, setup_writes, teardown),
        cmocka_unit_test(test_bdif_write_read_only_volume),
        cmocka_unit_test(test_bdif_write_flush_before_status),
        cmocka_unit_test_setup_teardown(test_bdif_write_errors, setup_writes, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_read_io_error_rate_limited, setup, teardown),
        cmocka_unit_test(test_bdif_read_error_mid_transfer),
        cmocka_unit_test(test_bdif_options),
        cmocka_unit_test_setup_teardown(test_bdif_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bdif_save_load, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
