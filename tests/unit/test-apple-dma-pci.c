/* SPDX-License-Identifier: MIT */
/*
 * apple-dma-pci: PCI identity, every register, both entry layouts, MAP and
 * UNMAP batches, every status code, duplicate gpa, unknown ids, batches
 * whose arrays straddle the end of guest RAM, writes confined to the
 * response array and status field, limits of the backends seen through the
 * device, reset, save/load and options.
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
#include "state.h"
#include "testpci.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x100000ull
#define RAM_END  (RAM_BASE + RAM_SIZE)
#define CMD      (RAM_BASE + 0x1000)
#define REQ      (RAM_BASE + 0x2000)
#define RESP     (RAM_BASE + 0x20000)
#define BUF      (RAM_BASE + 0x40000)

struct fixture {
    struct mock_host *h;
    struct adp_guest g;
    vmapple_dma_backend *dma; /* the device's backend (the fixture's reference) */
    uint8_t *before;          /* RAM before the last checked doorbell */
};

static struct fixture *fixture_new(const vmapple_apple_dma_pci_options *user, bool map)
{
    struct fixture *f = calloc(1, sizeof(*f));
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;

    if (user) {
        o = *user;
    }
    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    f->h->allow_map = map;
    if (!o.dma) {
        assert_int_equal(vmapple_dma_backend_create_identity(NULL, &f->dma), 0);
        o.dma = f->dma;
    } else {
        f->dma = o.dma;
    }
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), f->h, &o, &f->g.dev), 0);
    f->g.h = f->h;
    f->g.layout = o.layout;
    f->g.cmd = CMD;
    f->g.req = REQ;
    f->g.resp = RESP;
    f->before = malloc(RAM_SIZE);
    adp_enable(&f->g);
    return f;
}

static void fixture_free(struct fixture *f)
{
    vmapple_device_destroy(f->g.dev);
    vmapple_dma_backend_release(f->dma);
    mock_host_free(f->h);
    free(f->before);
    free(f);
}

static int setup(void **state)
{
    *state = fixture_new(NULL, false);
    return 0;
}

static int setup_map(void **state)
{
    *state = fixture_new(NULL, true);
    return 0;
}

static int setup_module(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    o.layout = VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE;
    *state = fixture_new(&o, false);
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

static uint32_t live(struct fixture *f)
{
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    assert_int_equal(vmapple_apple_dma_pci_get_info(f->g.dev, &info), 0);
    return info.live_mappings;
}

static vmapple_dma_occupancy occupancy(vmapple_dma_backend *dma)
{
    vmapple_dma_occupancy o = VMAPPLE_DMA_OCCUPANCY_INIT;
    assert_int_equal(vmapple_dma_backend_get_occupancy(dma, &o), 0);
    return o;
}

/* Snapshot RAM, to prove later that only allowed bytes changed. */
static void snap(struct fixture *f)
{
    memcpy(f->before, f->h->ram, RAM_SIZE);
}

/* Every byte outside [a0, a0 + n0) and [a1, a1 + n1) is as snap() saw it. */
static void assert_only_changed(struct fixture *f, uint64_t a0, uint64_t n0, uint64_t a1,
                                uint64_t n1)
{
    for (uint64_t i = 0; i < RAM_SIZE; i++) {
        uint64_t gpa = RAM_BASE + i;
        bool allowed = (gpa >= a0 && gpa - a0 < n0) || (gpa >= a1 && gpa - a1 < n1);
        if (!allowed && f->h->ram[i] != f->before[i]) {
            fail_msg("byte at 0x%llx changed outside the response array and status field",
                     (unsigned long long)gpa);
        }
    }
}

/* ---- PCI identity and registers ---- */

static void test_pci_identity(void **state)
{
    struct fixture *f = *state;
    const vmapple_region_info *r;
    uint32_t v;

    assert_int_equal(vmapple_device_get_type(f->g.dev), VMAPPLE_DEVICE_APPLE_DMA_PCI);
    assert_string_equal(vmapple_device_get_name(f->g.dev), "apple-dma-pci");
    assert_int_equal(vmapple_device_pci_config_read(f->g.dev, 0, 4, &v), 0);
    assert_int_equal(v, 0x00151b36);
    assert_int_equal(vmapple_device_pci_config_read(f->g.dev, 8, 4, &v), 0);
    assert_int_equal(v, 0x08800000); /* class 0x08, subclass 0x80, prog-if 0, revision 0 */
    assert_int_equal(vmapple_device_pci_config_read(f->g.dev, 0x3d, 1, &v), 0);
    assert_int_equal(v, 0); /* no interrupt pin */
    assert_int_equal(vmapple_device_count_irqs(f->g.dev), 0);
    assert_int_equal(vmapple_device_count_regions(f->g.dev), 1);
    assert_int_equal(vmapple_device_get_region(f->g.dev, 0, &r), 0);
    assert_int_equal(r->size, 4096);
    assert_int_equal(r->pci_bar, 0);
    assert_true(r->flags & VMAPPLE_REGION_PCI_BAR);
    /* BAR0: 4 KiB, 32-bit memory. */
    assert_int_equal(vmapple_device_pci_config_write(f->g.dev, 0x10, 4, 0xffffffff), 0);
    assert_int_equal(vmapple_device_pci_config_read(f->g.dev, 0x10, 4, &v), 0);
    assert_int_equal(v, 0xfffff000);
    assert_int_equal(vmapple_device_pci_config_read(f->g.dev, 0x14, 4, &v), 0);
    assert_int_equal(v, 0);
}

static void test_registers(void **state)
{
    struct fixture *f = *state;
    uint64_t v;

    assert_int_equal(adp_reg_read(&f->g, ADP_REG_VERSION), 2);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_MANAGED_BDF), 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_MAX_ENTRIES), 4096);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_OK);
    /* CMD_GPA_* and DOORBELL are write-only: they read 0. */
    adp_reg_write(&f->g, ADP_REG_CMD_GPA_LO, 0x12345678);
    adp_reg_write(&f->g, ADP_REG_CMD_GPA_HI, 0x9abcdef0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_CMD_GPA_LO), 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_CMD_GPA_HI), 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_DOORBELL), 0);
    /* Read-only registers ignore writes. */
    adp_reg_write(&f->g, ADP_REG_VERSION, 7);
    adp_reg_write(&f->g, ADP_REG_MAX_ENTRIES, 1);
    adp_reg_write(&f->g, ADP_REG_STATUS, 3);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_VERSION), 2);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_MAX_ENTRIES), 4096);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_OK);
    /* Other offsets read 0 and ignore writes. */
    assert_true(mock_log_contains(f->h, "read-only register"));
    adp_reg_write(&f->g, 0x1c, 0xffffffff);
    assert_int_equal(adp_reg_read(&f->g, 0x1c), 0);
    adp_reg_write(&f->g, 0xffc, 0xffffffff);
    assert_int_equal(adp_reg_read(&f->g, 0xffc), 0);
    /* Non-32-bit and unaligned accesses read 0 and are ignored (logs are rate-limited). */
    mock_log_clear(f->h);
    assert_int_equal(vmapple_device_read(f->g.dev, 0, ADP_REG_VERSION, 2, &v), 0);
    assert_int_equal(v, 0);
    assert_true(mock_log_contains(f->h, "registers are 32-bit"));
    assert_int_equal(vmapple_device_read(f->g.dev, 0, ADP_REG_VERSION, 2, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_read(f->g.dev, 0, ADP_REG_VERSION, 8, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_read(f->g.dev, 0, 0x02, 4, &v), 0);
    assert_int_equal(v, 0);
    /* An 8-byte write of the command page address is ignored as a whole. */
    assert_int_equal(vmapple_device_write(f->g.dev, 0, ADP_REG_CMD_GPA_LO, 8, CMD), 0);
    adp_reg_write(&f->g, ADP_REG_DOORBELL, 1);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_INVAL);
}

static void test_register_options(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    struct fixture *f;

    (void)state;
    o.managed_bdf = 0x0238;
    o.max_entries = 17;
    o.host_bus = 0x12;
    o.host_device = 31;
    o.host_function = 7;
    f = fixture_new(&o, false);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_MANAGED_BDF), 0x0238);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_MAX_ENTRIES), 17);
    assert_int_equal(vmapple_apple_dma_pci_get_info(f->g.dev, &info), 0);
    assert_int_equal(info.managed_bdf, 0x0238);
    assert_int_equal(info.max_entries, 17);
    assert_int_equal(info.max_mappings, VMAPPLE_APPLE_DMA_PCI_DEFAULT_MAPPINGS);
    assert_int_equal(info.host_bus, 0x12);
    assert_int_equal(info.host_device, 31);
    assert_int_equal(info.host_function, 7);
    assert_int_equal(info.layout, VMAPPLE_APPLE_DMA_PCI_LAYOUT_PUBLISHED);
    fixture_free(f);
}

/* The command page address is 64-bit and both halves are independent. */
static void test_cmd_gpa_halves(void **state)
{
    struct fixture *f = *state;

    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    adp_put_page(&f->g, ADP_MAP, 1, REQ, RESP, 0x55); /* not ADP_OK: the device writes it */
    adp_reg_write(&f->g, ADP_REG_CMD_GPA_HI, 1);      /* 0x1_7000_1000: not RAM */
    adp_reg_write(&f->g, ADP_REG_CMD_GPA_LO, (uint32_t)CMD);
    adp_reg_write(&f->g, ADP_REG_DOORBELL, 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_INVAL);
    assert_int_equal(live(f), 0);
    adp_reg_write(&f->g, ADP_REG_CMD_GPA_HI, 0);
    adp_reg_write(&f->g, ADP_REG_DOORBELL, 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_OK);
    assert_int_equal(adp_page_status(&f->g), ADP_OK);
    assert_int_equal(live(f), 1);
}

/* ---- MAP and UNMAP ---- */

static void map_unmap_roundtrip(struct fixture *f)
{
    struct adp_map_resp r;
    uint64_t id;
    uint32_t reserved;

    for (uint32_t i = 0; i < 3; i++) {
        adp_put_map(&f->g, i, BUF + 0x11 + i * 0x1000 + 8 * i, 0x100 + i, 0xa0 + i);
    }
    adp_put_page(&f->g, ADP_MAP, 3, REQ, RESP, 0x55);
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
    assert_int_equal(adp_page_status(&f->g), ADP_OK);
    assert_only_changed(f, RESP, 3ull * adp_map_resp_size(&f->g), CMD + 8, 4);
    for (uint32_t i = 0; i < 3; i++) {
        r = adp_get_map(&f->g, i);
        assert_int_equal(r.id, BUF + 0x11 + i * 0x1000 + 8 * i);
        assert_int_equal(r.dma_addr, BUF + 0x11 + i * 0x1000 + 8 * i); /* identity */
        assert_int_equal(r.dma_len, 0x100 + i);
        assert_int_equal(r.status, ADP_OK);
    }
    assert_int_equal(live(f), 3);
    assert_int_equal(occupancy(f->dma).mappings, 3);
    assert_int_equal(occupancy(f->dma).bytes, 0x303);

    for (uint32_t i = 0; i < 3; i++) {
        adp_put_unmap(&f->g, i, BUF + 0x11 + i * 0x1000 + 8 * i, 0x100 + i);
    }
    memset(adp_ram(&f->g, RESP, 48), 0xee, 48);
    adp_put_page(&f->g, ADP_UNMAP, 3, REQ, RESP, 0x55);
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
    assert_only_changed(f, RESP, 48, CMD + 8, 4);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(adp_get_unmap(&f->g, i, &id, &reserved), ADP_OK);
        assert_int_equal(id, BUF + 0x11 + i * 0x1000 + 8 * i);
        assert_int_equal(reserved, 0);
    }
    assert_int_equal(live(f), 0);
    assert_int_equal(occupancy(f->dma).mappings, 0);
    assert_int_equal(occupancy(f->dma).bytes, 0);
}

static void test_map_unmap_published(void **state)
{
    map_unmap_roundtrip(*state);
}

static void test_map_unmap_module(void **state)
{
    map_unmap_roundtrip(*state);
}

/* The same bytes mean different requests in the two layouts. */
static void test_layouts_differ(void **state)
{
    struct fixture *pub = fixture_new(NULL, false);
    struct fixture *mod = *state;
    uint8_t req[20];
    struct adp_map_resp r;

    /* gpa BUF; then u32 0x80, u32 0 (published: len 0x80, flags 0; module: len 0x80). */
    adp_st(req, 8, BUF);
    adp_st(req + 8, 4, 0x80);
    adp_st(req + 12, 4, 0);
    adp_st(req + 16, 4, 0x5);
    memcpy(adp_ram(&pub->g, REQ, 20), req, 20);
    memcpy(adp_ram(&mod->g, REQ, 20), req, 20);
    assert_int_equal(adp_ring(&pub->g, ADP_MAP, 1), ADP_OK);
    assert_int_equal(adp_ring(&mod->g, ADP_MAP, 1), ADP_OK);
    r = adp_get_map(&pub->g, 0);
    assert_int_equal(r.dma_len, 0x80);
    r = adp_get_map(&mod->g, 0);
    assert_int_equal(r.dma_len, 0x80);
    /* The module layout reads a 64-bit length: high bits make it another range. */
    adp_st(req + 12, 4, 1);
    adp_st(req, 8, BUF + 0x1000);
    memcpy(adp_ram(&pub->g, REQ, 20), req, 20);
    memcpy(adp_ram(&mod->g, REQ, 20), req, 20);
    assert_int_equal(adp_ring(&pub->g, ADP_MAP, 1), ADP_OK);    /* flags 1 */
    assert_int_equal(adp_ring(&mod->g, ADP_MAP, 1), ADP_IOERR); /* len 0x1_0000_0080 */
    assert_int_equal(adp_get_map(&mod->g, 0).status, ADP_IOERR);
    assert_int_equal(adp_get_map(&mod->g, 0).id, BUF + 0x1000);
    /* A second entry sits at 16 or 20 bytes. */
    adp_put_map(&mod->g, 0, BUF + 0x2000, 0x10, 0);
    adp_put_map(&mod->g, 1, BUF + 0x3000, 0x20, 0);
    assert_int_equal(adp_ring(&mod->g, ADP_MAP, 2), ADP_OK);
    assert_int_equal(adp_get_map(&mod->g, 1).id, BUF + 0x3000);
    assert_int_equal(adp_get_map(&mod->g, 1).dma_len, 0x20);
    fixture_free(pub);
}

static void test_wide_length(void **state)
{
    struct fixture *f = *state;
    vmapple_dma_backend *dart;
    struct fixture *g;
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct adp_map_resp r;

    (void)f;
    /* A 64-bit length above 4 GiB: checked against guest RAM like any other. */
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &dart), 0);
    o.layout = VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE;
    o.dma = dart;
    g = fixture_new(&o, false);
    adp_put_map(&g->g, 0, BUF, 0x100000000ull, 0);
    assert_int_equal(adp_ring(&g->g, ADP_MAP, 1), ADP_IOERR);
    adp_put_map(&g->g, 0, BUF + 0x123, 0x4000, 0);
    assert_int_equal(adp_ring(&g->g, ADP_MAP, 1), ADP_OK);
    r = adp_get_map(&g->g, 0);
    assert_int_equal(r.dma_len, 0x4000);
    assert_int_equal(r.dma_addr & 0x3fff, 0x123);
    fixture_free(g);
}

static void test_unmap_unknown_id(void **state)
{
    struct fixture *f = *state;
    uint64_t id;

    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    /* Entries are independent: the unknown one fails, the others proceed. */
    adp_put_unmap(&f->g, 0, BUF + 0x10, 0x100);
    adp_put_unmap(&f->g, 1, BUF, 0x100);
    adp_put_unmap(&f->g, 2, BUF, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 3), ADP_IOERR);
    assert_int_equal(adp_page_status(&f->g), ADP_IOERR);
    assert_int_equal(adp_get_unmap(&f->g, 0, &id, NULL), ADP_IOERR);
    assert_int_equal(id, BUF + 0x10);
    assert_int_equal(adp_get_unmap(&f->g, 1, &id, NULL), ADP_OK);
    assert_int_equal(adp_get_unmap(&f->g, 2, &id, NULL), ADP_IOERR); /* gone by then */
    assert_int_equal(live(f), 0);
    assert_true(mock_log_contains(f->h, "unknown id"));
}

static void test_unmap_wrong_size(void **state)
{
    struct fixture *f = *state;
    uint64_t id;

    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    adp_put_unmap(&f->g, 0, BUF, 0x80);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_IOERR);
    assert_int_equal(adp_get_unmap(&f->g, 0, &id, NULL), ADP_IOERR);
    assert_int_equal(live(f), 1);
    assert_int_equal(occupancy(f->dma).mappings, 1);
    adp_put_unmap(&f->g, 0, BUF, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(live(f), 0);
}

/* Defined answer: an identical second MAP takes a reference; anything else is IOERR. */
static void test_duplicate_gpa(void **state)
{
    struct fixture *f = *state;
    uint64_t id;

    adp_put_map(&f->g, 0, BUF, 0x100, 3);
    adp_put_map(&f->g, 1, BUF, 0x100, 3);     /* identical: shares */
    adp_put_map(&f->g, 2, BUF, 0x200, 3);     /* other length: refused */
    adp_put_map(&f->g, 3, BUF, 0x100, 4);     /* other flags: refused */
    adp_put_map(&f->g, 4, BUF + 1, 0x100, 3); /* another gpa: its own */
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 5), ADP_IOERR);
    assert_int_equal(adp_get_map(&f->g, 0).status, ADP_OK);
    assert_int_equal(adp_get_map(&f->g, 1).status, ADP_OK);
    assert_int_equal(adp_get_map(&f->g, 1).id, BUF);
    assert_int_equal(adp_get_map(&f->g, 1).dma_addr, adp_get_map(&f->g, 0).dma_addr);
    assert_int_equal(adp_get_map(&f->g, 2).status, ADP_IOERR);
    assert_int_equal(adp_get_map(&f->g, 2).dma_addr, 0);
    assert_int_equal(adp_get_map(&f->g, 2).dma_len, 0);
    assert_int_equal(adp_get_map(&f->g, 3).status, ADP_IOERR);
    assert_int_equal(adp_get_map(&f->g, 4).status, ADP_OK);
    assert_int_equal(live(f), 2);
    assert_int_equal(occupancy(f->dma).mappings, 2); /* the shared one registered once */

    /* The first UNMAP drops a reference; the second unregisters; a third is unknown. */
    adp_put_unmap(&f->g, 0, BUF, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(live(f), 2);
    assert_int_equal(occupancy(f->dma).mappings, 2);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(live(f), 1);
    assert_int_equal(occupancy(f->dma).mappings, 1);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_IOERR);
    assert_int_equal(adp_get_unmap(&f->g, 0, &id, NULL), ADP_IOERR);
}

static void test_entry_ioerr(void **state)
{
    struct fixture *f = *state;

    adp_put_map(&f->g, 0, BUF, 0, 0);                   /* length 0 */
    adp_put_map(&f->g, 1, UINT64_MAX - 0x10, 0x100, 0); /* wraps */
    adp_put_map(&f->g, 2, RAM_END, 0x100, 0);           /* beyond RAM */
    adp_put_map(&f->g, 3, RAM_END - 0x80, 0x100, 0);    /* straddles the end of RAM */
    adp_put_map(&f->g, 4, RAM_BASE - 0x80, 0x100, 0);   /* starts before RAM */
    adp_put_map(&f->g, 5, RAM_END - 0x100, 0x100, 0);   /* exactly the last bytes: fine */
    adp_put_page(&f->g, ADP_MAP, 6, REQ, RESP, 0x55);
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_IOERR);
    assert_only_changed(f, RESP, 6 * 24, CMD + 8, 4);
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(adp_get_map(&f->g, i).status, ADP_IOERR);
    }
    assert_int_equal(adp_get_map(&f->g, 5).status, ADP_OK);
    assert_int_equal(live(f), 1);
    assert_true(mock_log_contains(f->h, "5 entries failed"));
}

static void test_entry_ioerr_mapped(void **state)
{
    test_entry_ioerr(state);
}

/* ---- batch status INVAL ---- */

static void expect_inval(struct fixture *f, bool page_written)
{
    unsigned reads = f->h->mem_reads;

    (void)reads;
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_INVAL);
    if (page_written) {
        assert_int_equal(adp_page_status(&f->g), ADP_INVAL);
        assert_only_changed(f, CMD + 8, 4, 0, 0);
    } else {
        assert_only_changed(f, 0, 0, 0, 0);
    }
    assert_int_equal(live(f), 0);
    assert_int_equal(occupancy(f->dma).mappings, 0);
}

static void test_batch_inval(void **state)
{
    struct fixture *f = *state;
    uint32_t max = 4096;

    for (uint32_t i = 0; i < max + 1; i++) {
        adp_put_map(&f->g, i, BUF + i * 16, 16, 0);
    }
    /* No command page yet (address 0 after reset). */
    adp_reg_write(&f->g, ADP_REG_DOORBELL, 1);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_INVAL);
    assert_true(mock_log_contains(f->h, "no command page"));

    adp_put_page(&f->g, 0, 1, REQ, RESP, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "unknown type"));
    adp_put_page(&f->g, 3, 1, REQ, RESP, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 0, REQ, RESP, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "count 0"));
    adp_put_page(&f->g, ADP_MAP, max + 1, REQ, RESP, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "count above MAX_ENTRIES"));
    adp_put_page(&f->g, ADP_MAP, UINT32_MAX, REQ, RESP, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 1, 0, RESP, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_UNMAP, 1, REQ, 0, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "zero array address"));
    /* Arrays wholly outside RAM. */
    adp_put_page(&f->g, ADP_MAP, 1, RAM_END + 0x1000, RESP, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 1, REQ, RAM_END, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 1, UINT64_MAX - 7, RESP, 0x55);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 1, REQ, UINT64_MAX - 7, 0x55);
    expect_inval(f, true);
    /* The command page itself not in RAM: only STATUS tells. */
    f->g.cmd = RAM_END - 16;
    expect_inval(f, false);
    f->g.cmd = UINT64_MAX - 15;
    expect_inval(f, false);
    f->g.cmd = CMD;
    /* count == MAX_ENTRIES is fine. */
    adp_put_page(&f->g, ADP_MAP, max, REQ, RESP, 0x55);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
    assert_int_equal(live(f), max);
}

/* Arrays that straddle the end of guest RAM: INVAL before any entry is processed. */
static void straddle(struct fixture *f)
{
    uint32_t n = 8;
    uint64_t req = RAM_END - 4 * 16, resp = RAM_END - 4 * 24;

    /* Requests that would succeed, in the part of each array that is RAM. */
    f->g.req = req;
    for (uint32_t i = 0; i < 4; i++) {
        adp_put_map(&f->g, i, BUF + i * 0x100, 0x10, 0);
    }
    adp_put_page(&f->g, ADP_MAP, n, req, RESP, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "request array is not guest RAM"));

    f->g.req = REQ;
    for (uint32_t i = 0; i < n; i++) {
        adp_put_map(&f->g, i, BUF + i * 0x100, 0x10, 0);
    }
    adp_put_page(&f->g, ADP_MAP, n, REQ, resp, 0x55);
    expect_inval(f, true);
    assert_true(mock_log_contains(f->h, "response array is not guest RAM"));
    /* Nothing was registered, nothing leaked. */
    assert_int_equal(occupancy(f->dma).failed_maps, 0);
    assert_int_equal(f->h->maps_live, 0);
    /* One entry fewer fits exactly: OK. */
    adp_put_page(&f->g, ADP_MAP, 4, REQ, resp, 0x55);
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
    assert_only_changed(f, resp, 4 * 24, CMD + 8, 4);
    assert_int_equal(live(f), 4);
    /* UNMAP with a straddling request array: nothing unmapped. */
    f->g.req = RAM_END - 16 * 2;
    for (uint32_t i = 0; i < 2; i++) {
        adp_put_unmap(&f->g, i, BUF + i * 0x100, 0x10);
    }
    adp_put_page(&f->g, ADP_UNMAP, 4, f->g.req, RESP, 0x55);
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_INVAL);
    assert_int_equal(live(f), 4);
    f->g.req = REQ;
}

static void test_straddle_end_of_ram(void **state)
{
    straddle(*state);
}

static void test_straddle_end_of_ram_mapped(void **state)
{
    struct fixture *f = *state;

    f->h->map_chunk = 40; /* the host maps in small pieces */
    straddle(f);
}

static void test_bus_master_off(void **state)
{
    struct fixture *f = *state;
    unsigned reads;

    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    adp_put_page(&f->g, ADP_MAP, 1, REQ, RESP, 0x55);
    vmapple_device_pci_config_write(f->g.dev, 0x04, 2, 0x0002);
    reads = f->h->mem_reads;
    snap(f);
    assert_int_equal(adp_ring_page(&f->g), ADP_INVAL);
    assert_int_equal(f->h->mem_reads, reads); /* no DMA at all */
    assert_only_changed(f, 0, 0, 0, 0);
    assert_true(mock_log_contains(f->h, "bus mastering is off"));
    adp_enable(&f->g);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
}

static void test_max_entries_option(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *f;

    (void)state;
    o.max_entries = 3;
    f = fixture_new(&o, false);
    for (uint32_t i = 0; i < 4; i++) {
        adp_put_map(&f->g, i, BUF + i * 0x100, 0x10, 0);
    }
    adp_put_page(&f->g, ADP_MAP, 4, REQ, RESP, 0);
    expect_inval(f, true);
    adp_put_page(&f->g, ADP_MAP, 3, REQ, RESP, 0);
    assert_int_equal(adp_ring_page(&f->g), ADP_OK);
    assert_int_equal(live(f), 3);
    fixture_free(f);
}

static void test_max_mappings_option(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *f;

    (void)state;
    o.max_mappings = 2;
    f = fixture_new(&o, false);
    adp_put_map(&f->g, 0, BUF, 0x10, 0);
    adp_put_map(&f->g, 1, BUF + 0x100, 0x10, 0);
    adp_put_map(&f->g, 2, BUF + 0x200, 0x10, 0); /* one past */
    adp_put_map(&f->g, 3, BUF, 0x10, 0);         /* a reference on a live one: fine */
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 4), ADP_IOERR);
    assert_int_equal(adp_get_map(&f->g, 0).status, ADP_OK);
    assert_int_equal(adp_get_map(&f->g, 1).status, ADP_OK);
    assert_int_equal(adp_get_map(&f->g, 2).status, ADP_IOERR);
    assert_int_equal(adp_get_map(&f->g, 3).status, ADP_OK);
    assert_int_equal(live(f), 2);
    assert_true(mock_log_contains(f->h, "max_mappings"));
    fixture_free(f);
}

/* The simulated DART's limits, exactly at and one past, through the device. */
static void test_sim_dart_limits(void **state)
{
    vmapple_sim_dart_options d = VMAPPLE_SIM_DART_OPTIONS_INIT;
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_dma_occupancy occ;
    struct fixture *f;

    (void)state;
    d.max_mappings = 4;
    d.max_bytes = 0x10000;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(&d, &o.dma), 0);
    f = fixture_new(&o, true);
    /* Four mappings of 0x4000 bytes: exactly both limits. */
    for (uint32_t i = 0; i < 4; i++) {
        adp_put_map(&f->g, i, BUF + i * 0x8000 + 0x10, 0x4000, 0);
    }
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 4), ADP_OK);
    occ = occupancy(f->dma);
    assert_int_equal(occ.mappings, 4);
    assert_int_equal(occ.max_mappings, 4);
    assert_int_equal(occ.bytes, 0x10000);
    assert_int_equal(occ.max_bytes, 0x10000);
    for (uint32_t i = 0; i < 4; i++) {
        struct adp_map_resp r = adp_get_map(&f->g, i);
        assert_int_equal(r.dma_len, 0x4000);
        assert_int_equal(r.dma_addr & 0x3fff, 0x10);  /* offset in the 16 KiB page */
        assert_int_not_equal(r.dma_addr & 0x4000, 0); /* odd page: not 32 KiB aligned */
        assert_int_not_equal(r.dma_addr, BUF + i * 0x8000 + 0x10);
    }
    /* One past the mapping limit. */
    adp_put_map(&f->g, 0, BUF + 0x80000, 1, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_IOERR);
    assert_true(mock_log_contains(f->h, "max_mappings"));
    /* Free one (0x4000 bytes); one byte past the byte limit fails, exactly it works. */
    adp_put_unmap(&f->g, 0, BUF + 0x10, 0x4000);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    adp_put_map(&f->g, 0, BUF + 0x80000, 0x4001, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_IOERR);
    assert_true(mock_log_contains(f->h, "max_bytes"));
    adp_put_map(&f->g, 0, BUF + 0x80000, 0x4000, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    occ = occupancy(f->dma);
    assert_int_equal(occ.mappings, 4);
    assert_int_equal(occ.bytes, 0x10000);
    assert_int_equal(occ.failed_maps, 2);
    assert_int_equal(f->h->maps_live, 0);
    fixture_free(f);
}

/* ---- the host pointer handed to a host backend ---- */

struct rec_backend {
    unsigned maps, unmaps, closes;
    void *last_host;
    uint64_t last_gpa, last_len;
    uint32_t last_flags;
    struct mock_host *h; /* when set: maps_live at the last map call */
    unsigned live_at_map;
    int fail_map;   /* errno to answer */
    int fail_unmap; /* errno to answer */
    uint64_t bogus_len;
    unsigned wrong_host; /* maps whose host pointer was not the guest's RAM at gpa */
};

static int rec_map(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                   uint64_t *bus_addr, uint64_t *bus_len)
{
    struct rec_backend *r = opaque;

    r->maps++;
    r->last_host = host;
    r->last_gpa = gpa;
    r->last_len = len;
    r->last_flags = flags;
    r->live_at_map = r->h ? r->h->maps_live : 0;
    if (r->h && host != mock_ram(r->h, gpa, len)) {
        r->wrong_host++;
    }
    if (r->fail_map) {
        return r->fail_map;
    }
    *bus_addr = 0x900000000ull + gpa;
    *bus_len = r->bogus_len ? r->bogus_len : len;
    return 0;
}

static int rec_unmap(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr, uint64_t bus_len)
{
    struct rec_backend *r = opaque;

    (void)gpa;
    (void)len;
    (void)bus_addr;
    (void)bus_len;
    r->unmaps++;
    return r->fail_unmap;
}

static void rec_close(void *opaque)
{
    ((struct rec_backend *)opaque)->closes++;
}

static vmapple_dma_backend *rec_new(struct rec_backend *r)
{
    vmapple_dma_ops ops = VMAPPLE_DMA_OPS_INIT;
    vmapple_dma_backend *dma;

    ops.map = rec_map;
    ops.unmap = rec_unmap;
    ops.close = rec_close;
    assert_int_equal(vmapple_dma_backend_create(&ops, r, NULL, &dma), 0);
    return dma;
}

static void test_host_backend(void **state)
{
    struct rec_backend r = { 0 };
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *f;
    uint64_t id;

    (void)state;
    o.dma = rec_new(&r);
    f = fixture_new(&o, true);
    /* One host mapping covers the range: the backend gets the host pointer. */
    adp_put_map(&f->g, 0, BUF + 0x40, 0x100, 0x77);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    assert_ptr_equal(r.last_host, mock_ram(f->h, BUF + 0x40, 0x100));
    assert_int_equal(r.last_gpa, BUF + 0x40);
    assert_int_equal(r.last_len, 0x100);
    assert_int_equal(r.last_flags, 0x77);
    assert_int_equal(adp_get_map(&f->g, 0).dma_addr, 0x900000000ull + BUF + 0x40);
    /* Several pieces (or no mem_map): NULL, the backend translates the gpa. */
    f->h->map_chunk = 0x40;
    adp_put_map(&f->g, 0, BUF + 0x1000, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    assert_null(r.last_host);
    f->h->allow_map = false;
    adp_put_map(&f->g, 0, BUF + 0x2000, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    assert_null(r.last_host);
    assert_int_equal(f->h->maps_live, 0);
    /* The backend's refusal is the entry's IOERR. */
    r.fail_map = -ENOSPC;
    adp_put_map(&f->g, 0, BUF + 0x3000, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_IOERR);
    r.fail_map = 0;
    /* A nonsensical answer (bus_len > len) is refused and unregistered. */
    r.bogus_len = 0x200;
    r.unmaps = 0;
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_IOERR);
    assert_int_equal(r.unmaps, 1);
    r.bogus_len = 0;
    /* A failing unmap keeps the mapping live (IOERR), a later one succeeds. */
    r.fail_unmap = -EIO;
    adp_put_unmap(&f->g, 0, BUF + 0x40, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_IOERR);
    assert_int_equal(adp_get_unmap(&f->g, 0, &id, NULL), ADP_IOERR);
    assert_int_equal(live(f), 3);
    r.fail_unmap = 0;
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(live(f), 2);
    /* Destroy unregisters what is left and drops the device's reference. */
    r.unmaps = 0;
    vmapple_device_destroy(f->g.dev);
    f->g.dev = NULL;
    assert_int_equal(r.unmaps, 2);
    assert_int_equal(r.closes, 0); /* the fixture still holds a reference */
    fixture_free(f);
    assert_int_equal(r.closes, 1);
}

/* A device over a recording backend and `ram` bytes of mappable guest RAM. */
struct rec_rig {
    struct rec_backend r;
    vmapple_apple_dma_pci_options o;
    struct adp_guest g;
    struct mock_host *h;
};

static void rec_rig_init(struct rec_rig *x, uint64_t ram)
{
    memset(x, 0, sizeof(*x));
    x->o = (vmapple_apple_dma_pci_options)VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    x->h = mock_host_new(RAM_BASE, ram);
    x->h->allow_map = true;
    x->r.h = x->h;
    x->o.dma = rec_new(&x->r);
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), x->h, &x->o, &x->g.dev), 0);
    x->g.h = x->h;
    x->g.cmd = CMD;
    x->g.req = REQ;
    x->g.resp = RESP;
    adp_enable(&x->g);
}

static void rec_rig_free(struct rec_rig *x)
{
    vmapple_device_destroy(x->g.dev);
    vmapple_dma_backend_release(x->o.dma);
    mock_host_free(x->h);
}

/* A MAP longer than a window: the host pointer the backend gets is still mapped. */
static void test_host_backend_long_map(void **state)
{
    struct rec_rig x;
    const uint64_t len = 3ull << 20, gpa = RAM_BASE + (4ull << 20);

    (void)state;
    rec_rig_init(&x, 8ull << 20);
    adp_put_map(&x.g, 0, gpa, len, 0);
    assert_int_equal(adp_ring(&x.g, ADP_MAP, 1), ADP_OK);
    assert_ptr_equal(x.r.last_host, mock_ram(x.h, gpa, len));
    assert_true(x.r.live_at_map > 0);
    assert_int_equal(x.h->maps_live, 0); /* released when the doorbell returns */
    rec_rig_free(&x);
}

/*
 * One batch whose buffers hop between more areas than the device keeps
 * windows open for, out of order: every entry's host pointer is still the
 * guest's RAM at its gpa, and every window is released with the doorbell.
 */
static void test_host_backend_window_hops(void **state)
{
    enum { AREAS = 7, N = 300 };
    struct rec_rig x;

    (void)state;
    rec_rig_init(&x, 32ull << 20);
    for (uint32_t i = 0; i < N; i++) {
        /* Areas 4 MiB apart, visited in a scrambled order. */
        uint32_t area = (i * 5 + i / 7) % AREAS;
        uint64_t gpa = RAM_BASE + (4ull << 20) + area * (4ull << 20) + (i % 97) * 0x1000 + i % 61;
        adp_put_map(&x.g, i, gpa, 0x800 + i, 0);
    }
    assert_int_equal(adp_ring(&x.g, ADP_MAP, N), ADP_OK);
    assert_int_equal(x.r.maps, N);
    assert_int_equal(x.r.wrong_host, 0);
    assert_int_equal(x.h->maps_live, 0);
    rec_rig_free(&x);
}

/* ---- reset, state ---- */

static void test_reset(void **state)
{
    struct fixture *f = *state;

    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    adp_put_map(&f->g, 1, BUF + 0x100, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 2), ADP_OK);
    adp_put_map(&f->g, 0, BUF, 0, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_IOERR);
    assert_int_equal(vmapple_device_reset(f->g.dev), 0);
    assert_int_equal(live(f), 0);
    assert_int_equal(occupancy(f->dma).mappings, 0);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_OK);
    /* Reset clears the command page address and bus mastering. */
    adp_enable(&f->g);
    adp_reg_write(&f->g, ADP_REG_DOORBELL, 1);
    assert_int_equal(adp_reg_read(&f->g, ADP_REG_STATUS), ADP_INVAL);
}

static size_t save(vmapple_device *dev, uint8_t **blob)
{
    size_t n = 0;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, &n), -ENOSPC);
    *blob = malloc(n);
    assert_int_equal(vmapple_device_save(dev, *blob, n, &n), 0);
    return n;
}

/* Rewrite the blob's CRC after tampering with its payload. */
static void fix_crc(uint8_t *blob, size_t n)
{
    uint32_t crc = vm_crc32(blob + VM_STATE_HEADER_LEN, n - VM_STATE_HEADER_LEN);
    blob[24] = (uint8_t)crc;
    blob[25] = (uint8_t)(crc >> 8);
    blob[26] = (uint8_t)(crc >> 16);
    blob[27] = (uint8_t)(crc >> 24);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    struct fixture *g = fixture_new(NULL, false);
    uint8_t *blob;
    size_t n;

    adp_put_map(&f->g, 0, BUF, 0x100, 9);
    adp_put_map(&f->g, 1, BUF, 0x100, 9);
    adp_put_map(&f->g, 2, BUF + 0x1000, 0x20, 1);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 3), ADP_OK);
    n = save(f->g.dev, &blob);
    assert_int_equal(vmapple_device_load(g->g.dev, blob, n), 0);
    assert_int_equal(live(g), 2);
    assert_int_equal(occupancy(g->dma).mappings, 2);
    assert_int_equal(adp_reg_read(&g->g, ADP_REG_STATUS), ADP_OK);
    /* The loaded device has the reference counts and the command page address. */
    adp_put_unmap(&g->g, 0, BUF, 0x100);
    adp_put_unmap(&g->g, 1, BUF, 0x100);
    adp_put_unmap(&g->g, 2, BUF + 0x1000, 0x20);
    adp_put_page(&g->g, ADP_UNMAP, 3, REQ, RESP, 0x55);
    adp_reg_write(&g->g, ADP_REG_DOORBELL, 1); /* no CMD_GPA writes */
    assert_int_equal(adp_reg_read(&g->g, ADP_REG_STATUS), ADP_OK);
    assert_int_equal(adp_page_status(&g->g), ADP_OK);
    assert_int_equal(live(g), 0);
    adp_put_unmap(&g->g, 0, BUF, 0x100);
    assert_int_equal(adp_ring(&g->g, ADP_UNMAP, 1), ADP_IOERR); /* both references gone */
    /* The source is untouched. */
    assert_int_equal(live(f), 2);

    /* A tampered mapping (refs 0) is refused, nothing changes. */
    blob[n - 1] = 0;
    blob[n - 2] = 0;
    blob[n - 3] = 0;
    blob[n - 4] = 0;
    fix_crc(blob, n);
    assert_int_equal(vmapple_device_load(g->g.dev, blob, n), -EBADMSG);
    assert_int_equal(live(g), 0);
    assert_int_equal(occupancy(g->dma).mappings, 0);
    free(blob);
    fixture_free(g);
}

static void test_load_option_mismatch(void **state)
{
    struct fixture *f = *state;
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *g;
    uint8_t *blob;
    size_t n = save(f->g.dev, &blob);

    o.layout = VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE;
    g = fixture_new(&o, false);
    assert_int_equal(vmapple_device_load(g->g.dev, blob, n), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(g->g.dev), "layout"));
    fixture_free(g);
    o.layout = 0;
    o.max_entries = 100;
    g = fixture_new(&o, false);
    assert_int_equal(vmapple_device_load(g->g.dev, blob, n), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(g->g.dev), "max_entries"));
    fixture_free(g);
    o.max_entries = 0;
    o.managed_bdf = 0x100;
    g = fixture_new(&o, false);
    assert_int_equal(vmapple_device_load(g->g.dev, blob, n), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(g->g.dev), "managed_bdf"));
    fixture_free(g);
    free(blob);
}

/* A backend that cannot give the saved bus address: the load fails cleanly. */
static void test_load_remap_mismatch(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *src, *dst;
    uint8_t *blob;
    size_t n;

    (void)state;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &o.dma), 0);
    src = fixture_new(&o, false);
    adp_put_map(&src->g, 0, BUF, 0x100, 0);
    assert_int_equal(adp_ring(&src->g, ADP_MAP, 1), ADP_OK);
    n = save(src->g.dev, &blob);

    /* A fresh DART hands out the same first address: the load works. */
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &o.dma), 0);
    dst = fixture_new(&o, false);
    assert_int_equal(vmapple_device_load(dst->g.dev, blob, n), 0);
    assert_int_equal(live(dst), 1);
    fixture_free(dst);

    /* A DART that already handed that address out cannot: nothing changes. */
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &o.dma), 0);
    dst = fixture_new(&o, false);
    adp_put_map(&dst->g, 0, BUF + 0x8000, 0x100, 0);
    assert_int_equal(adp_ring(&dst->g, ADP_MAP, 1), ADP_OK);
    assert_int_equal(vmapple_device_load(dst->g.dev, blob, n), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(dst->g.dev), "bus address"));
    assert_int_equal(live(dst), 1);
    assert_int_equal(occupancy(dst->dma).mappings, 1);
    fixture_free(dst);
    fixture_free(src);
    free(blob);
}

/* A device loads its own state over a DART: identical live mappings are kept. */
static void test_load_own_state(void **state)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct fixture *f;
    uint8_t *blob;
    size_t n;
    uint64_t bus0;

    (void)state;
    assert_int_equal(vmapple_dma_backend_create_sim_dart(NULL, &o.dma), 0);
    f = fixture_new(&o, true);
    adp_put_map(&f->g, 0, BUF, 0x100, 0);
    adp_put_map(&f->g, 1, BUF + 0x4000, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 2), ADP_OK);
    bus0 = adp_get_map(&f->g, 0).dma_addr;
    n = save(f->g.dev, &blob);
    assert_int_equal(vmapple_device_load(f->g.dev, blob, n), 0);
    assert_int_equal(live(f), 2);
    assert_int_equal(occupancy(f->dma).mappings, 2);
    /* A mapping made after the save is dropped by loading it; the others stay. */
    adp_put_map(&f->g, 0, BUF + 0x8000, 0x100, 0);
    assert_int_equal(adp_ring(&f->g, ADP_MAP, 1), ADP_OK);
    assert_int_equal(occupancy(f->dma).mappings, 3);
    assert_int_equal(vmapple_device_load(f->g.dev, blob, n), 0);
    assert_int_equal(live(f), 2);
    assert_int_equal(occupancy(f->dma).mappings, 2);
    adp_put_unmap(&f->g, 0, BUF + 0x8000, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_IOERR);
    /* One unmapped since: the DART does not hand its address out again, the load fails. */
    adp_put_unmap(&f->g, 0, BUF + 0x4000, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(vmapple_device_load(f->g.dev, blob, n), -EINVAL);
    assert_int_equal(live(f), 1);
    assert_int_equal(occupancy(f->dma).mappings, 1);
    adp_put_unmap(&f->g, 0, BUF, 0x100);
    assert_int_equal(adp_ring(&f->g, ADP_UNMAP, 1), ADP_OK);
    assert_int_equal(adp_get_map(&f->g, 0).id, BUF);
    assert_int_equal(occupancy(f->dma).mappings, 0);
    assert_int_not_equal(bus0, BUF);
    free(blob);
    fixture_free(f);
}

static void test_options(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, 0x1000);
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    vmapple_host_ops ops = *mock_host_ops();
    vmapple_device *dev = NULL;

    (void)state;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, NULL, NULL), -EINVAL);
    o.layout = 2;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "layout"));
    o.layout = 0;
    o.max_entries = 65537;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "max_entries"));
    assert_non_null(strstr(vmapple_last_error(), "65536"));
    o.max_entries = 65536;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), 0);
    vmapple_device_destroy(dev);
    o.max_entries = 0;
    o.max_mappings = VMAPPLE_APPLE_DMA_PCI_MAX_MAPPINGS + 1;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "max_mappings"));
    o.max_mappings = 0;
    o.host_device = 32;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "host_device"));
    o.host_device = 0;
    o.host_function = 8;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "host_function"));
    o.host_function = 0;
    o.reserved[3] = 1;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), -EINVAL);
    o.reserved[3] = 0;
    ops.mem_write = NULL;
    assert_int_equal(vmapple_apple_dma_pci_create(&ops, h, &o, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "mem_write"));
    assert_int_equal(vmapple_apple_dma_pci_create(NULL, h, &o, &dev), -EINVAL);
    /* An older caller's smaller struct gets defaults for the rest. */
    o.size = offsetof(vmapple_apple_dma_pci_options, max_entries);
    o.layout = VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE;
    assert_int_equal(vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &dev), 0);
    assert_int_equal(vmapple_apple_dma_pci_get_info(dev, &info), 0);
    assert_int_equal(info.layout, VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE);
    assert_int_equal(info.max_entries, 4096);
    vmapple_device_destroy(dev);
    /* get_info: wrong device type, bad size. */
    assert_int_equal(testpci_create(mock_host_ops(), h, 0, &dev), 0);
    assert_int_equal(vmapple_apple_dma_pci_get_info(dev, &info), -ENODEV);
    info.size = 4;
    assert_int_equal(vmapple_apple_dma_pci_get_info(dev, &info), -EINVAL);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pci_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
        cmocka_unit_test(test_register_options),
        cmocka_unit_test_setup_teardown(test_cmd_gpa_halves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_unmap_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_unmap_published, setup_map, teardown),
        cmocka_unit_test_setup_teardown(test_map_unmap_module, setup_module, teardown),
        cmocka_unit_test_setup_teardown(test_layouts_differ, setup_module, teardown),
        cmocka_unit_test_setup_teardown(test_wide_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_unknown_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_wrong_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_gpa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_ioerr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_ioerr_mapped, setup_map, teardown),
        cmocka_unit_test_setup_teardown(test_batch_inval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_straddle_end_of_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_straddle_end_of_ram_mapped, setup_map, teardown),
        cmocka_unit_test_setup_teardown(test_bus_master_off, setup, teardown),
        cmocka_unit_test(test_max_entries_option),
        cmocka_unit_test(test_max_mappings_option),
        cmocka_unit_test(test_sim_dart_limits),
        cmocka_unit_test(test_host_backend),
        cmocka_unit_test(test_host_backend_long_map),
        cmocka_unit_test(test_host_backend_window_hops),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_option_mismatch, setup, teardown),
        cmocka_unit_test(test_load_remap_mismatch),
        cmocka_unit_test(test_load_own_state),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
