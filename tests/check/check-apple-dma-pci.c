/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of apple-dma-pci's command-page
 * processing: hostile command pages (types, counts, array addresses near the
 * end of RAM, at the top of the address space, overlapping the page), random
 * entries, register noise, bus-master toggling, resets and state round trips,
 * in both layouts, with and without mem_map, over the identity backend and a
 * small simulated DART. After every doorbell: nothing but the response array
 * and the status field changed, STATUS is a status code (and equals the
 * page's when the page could be written), the device's and the backend's
 * counts agree, no host mapping leaked. Afterwards the device still works.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adp-guest.h"
#include "mockhost.h"
#include "rng.h"

#define RAM_BASE    0x70000000ull
#define RAM_SIZE    0x10000ull
#define RAM_END     (RAM_BASE + RAM_SIZE)
#define MAX_ENTRIES 64u
#define MIN(a, b)   ((a) < (b) ? (a) : (b))

struct rig {
    struct mock_host *h;
    struct adp_guest g;
    vmapple_dma_backend *dma;
    uint8_t *before;
    bool master;
};

/* Variant v: bit 0 layout, bit 1 mem_map, bit 2 simulated DART, bit 3 small map chunks. */
static void rig_init(struct rig *r, unsigned v)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_sim_dart_options d = VMAPPLE_SIM_DART_OPTIONS_INIT;

    memset(r, 0, sizeof(*r));
    r->h = mock_host_new(RAM_BASE, RAM_SIZE);
    r->h->allow_map = v & 2;
    r->h->map_chunk = (v & 8) ? 24 : 0;
    if (v & 4) {
        d.max_mappings = 40;
        d.max_bytes = 0x8000;
        ck_assert_int_eq(vmapple_dma_backend_create_sim_dart(&d, &r->dma), 0);
    } else {
        ck_assert_int_eq(vmapple_dma_backend_create_identity(NULL, &r->dma), 0);
    }
    o.layout = v & 1;
    o.max_entries = MAX_ENTRIES;
    o.max_mappings = 48;
    o.dma = r->dma;
    ck_assert_int_eq(vmapple_apple_dma_pci_create(mock_host_ops(), r->h, &o, &r->g.dev), 0);
    r->g.h = r->h;
    r->g.layout = o.layout;
    r->before = malloc(RAM_SIZE);
    adp_enable(&r->g);
    r->master = true;
}

static void rig_free(struct rig *r)
{
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;

    vmapple_device_destroy(r->g.dev);
    /* The device unregistered everything it held. */
    ck_assert_int_eq(vmapple_dma_backend_get_occupancy(r->dma, &occ), 0);
    ck_assert_uint_eq(occ.mappings, 0);
    ck_assert_uint_eq(occ.bytes, 0);
    vmapple_dma_backend_release(r->dma);
    mock_host_free(r->h);
    free(r->before);
}

/* An address for an array or page: mostly inside RAM, often near its edges. */
static uint64_t pick_addr(uint64_t span)
{
    uint64_t r = rnd();

    switch (r % 10) {
    case 0:
        return 0;
    case 1:
        return RAM_END - (r >> 8) % (span + 64); /* straddling or touching the end */
    case 2:
        return RAM_BASE - (r >> 8) % 64; /* starting before RAM */
    case 3:
        return UINT64_MAX - (r >> 8) % 256; /* the top of the address space */
    case 4:
        return rnd(); /* anywhere */
    default:
        return RAM_BASE + (r >> 8) % RAM_SIZE;
    }
}

static uint32_t pick_count(void)
{
    uint64_t r = rnd();

    switch (r % 8) {
    case 0:
        return 0;
    case 1:
        return MAX_ENTRIES;
    case 2:
        return MAX_ENTRIES + 1;
    case 3:
        return UINT32_MAX - (uint32_t)((r >> 8) % 4);
    case 4:
        return (uint32_t)rnd();
    default:
        return 1 + (uint32_t)((r >> 8) % MAX_ENTRIES);
    }
}

static bool in_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= RAM_BASE && gpa <= RAM_END && len <= RAM_END - gpa;
}

/* Fill a request array (where it is RAM) with entries worth trying. */
static void fill_entries(struct rig *r, uint64_t req, uint32_t type, uint32_t count)
{
    uint32_t sz = type == ADP_MAP ? (r->g.layout ? 20 : 16) : 16;

    for (uint32_t i = 0; i < MIN(count, MAX_ENTRIES + 1); i++) {
        uint64_t at = req + (uint64_t)i * sz;
        uint8_t *p;
        uint64_t gpa = RAM_BASE + (rnd() % 32) * 0x200 + (rnd() % 3) * 0x11;
        uint64_t len = 1 + rnd() % 0x1000;
        if (!in_ram(at, sz)) {
            break;
        }
        p = mock_ram(r->h, at, sz);
        switch (rnd() % 6) {
        case 0:
            for (uint32_t k = 0; k < sz; k++) {
                p[k] = (uint8_t)rnd();
            }
            continue;
        case 1:
            gpa = pick_addr(len);
            break;
        case 2:
            len = rnd() % 3 == 0 ? 0 : rnd();
            break;
        default:
            break;
        }
        r->g.req = req;
        if (type == ADP_MAP) {
            adp_put_map(&r->g, i, gpa, len, (uint32_t)(rnd() % 2));
        } else {
            adp_put_unmap(&r->g, i, gpa, len);
        }
    }
}

static void check_invariants(struct rig *r)
{
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;
    uint32_t status = (uint32_t)adp_reg_read(&r->g, ADP_REG_STATUS);

    ck_assert(status == ADP_OK || status == ADP_IOERR || status == ADP_INVAL);
    ck_assert_int_eq(vmapple_apple_dma_pci_get_info(r->g.dev, &info), 0);
    ck_assert_int_eq(vmapple_dma_backend_get_occupancy(r->dma, &occ), 0);
    ck_assert_uint_eq(info.live_mappings, occ.mappings);
    ck_assert_uint_le(info.live_mappings, 48);
    ck_assert_uint_eq(r->h->maps_live, 0);
    ck_assert_uint_eq(r->h->wrapping_accesses, 0);
}

/* One hostile batch, checked byte by byte. */
static void hostile_doorbell(struct rig *r)
{
    uint32_t type = (uint32_t)(rnd() % 5 == 0 ? rnd() % 4 : 1 + rnd() % 2);
    uint32_t count = pick_count();
    uint64_t cmd = rnd() % 6 == 0 ? pick_addr(32) : RAM_BASE + (rnd() % (RAM_SIZE / 32)) * 32;
    uint32_t esz_req = type == ADP_MAP ? (r->g.layout ? 20 : 16) : 16;
    uint32_t esz_resp = type == ADP_MAP ? (r->g.layout ? 28 : 24) : 16;
    uint64_t req = pick_addr((uint64_t)count * esz_req);
    uint64_t resp = pick_addr((uint64_t)count * esz_resp);
    bool page_ok = in_ram(cmd, 32);
    uint32_t status;

    if (rnd() % 4 == 0 && page_ok && cmd + 32 + 0x1000 <= RAM_END) {
        req = cmd + 32; /* arrays right after (or over) the page */
        resp = rnd() % 2 ? req : cmd;
    }
    if (page_ok) {
        r->g.cmd = cmd;
        adp_put_page(&r->g, type, count, req, resp, (uint32_t)rnd());
        fill_entries(r, req, type, count);
    }
    memcpy(r->before, r->h->ram, RAM_SIZE);
    adp_reg_write(&r->g, ADP_REG_CMD_GPA_LO, (uint32_t)cmd);
    adp_reg_write(&r->g, ADP_REG_CMD_GPA_HI, (uint32_t)(cmd >> 32));
    adp_reg_write(&r->g, ADP_REG_DOORBELL, rnd());
    status = (uint32_t)adp_reg_read(&r->g, ADP_REG_STATUS);

    for (uint64_t i = 0; i < RAM_SIZE; i++) {
        uint64_t gpa = RAM_BASE + i;
        bool allowed =
            page_ok && r->master &&
            ((gpa >= cmd + 8 && gpa < cmd + 12) ||
             (status != ADP_INVAL && gpa >= resp && gpa - resp < (uint64_t)count * esz_resp));
        if (!allowed && r->h->ram[i] != r->before[i]) {
            ck_abort_msg("doorbell wrote 0x%llx (type %u count %u cmd 0x%llx req 0x%llx resp "
                         "0x%llx status %u)",
                         (unsigned long long)gpa, type, count, (unsigned long long)cmd,
                         (unsigned long long)req, (unsigned long long)resp, status);
        }
    }
    if (page_ok && r->master) {
        ck_assert_uint_eq(adp_page_status(&r->g), status);
    }
    if (!r->master) {
        ck_assert_uint_eq(status, ADP_INVAL);
    }
    check_invariants(r);
}

static void other_action(struct rig *r)
{
    uint64_t x = rnd();
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    switch (x % 8) {
    case 0:
    case 1:
    case 2: {
        uint32_t size = sizes[(x >> 8) % 4];
        uint64_t off = ((x >> 16) % 0x1000) & ~(uint64_t)(size - 1);
        uint64_t v;
        /* Never the doorbell here: its batches are checked above. */
        if (off == ADP_REG_DOORBELL && size == 4) {
            off = 0x20;
        }
        if ((x >> 40) & 1) {
            vmapple_device_write(r->g.dev, 0, off, size, rnd());
        } else {
            vmapple_device_read(r->g.dev, 0, off, size, &v);
        }
        break;
    }
    case 3:
        r->master = (x >> 8) % 4 != 0;
        vmapple_device_pci_config_write(r->g.dev, 0x04, 2, r->master ? 0x6 : 0x2);
        break;
    case 4:
        vmapple_device_reset(r->g.dev);
        adp_enable(&r->g);
        r->master = true;
        ck_assert_uint_eq(adp_reg_read(&r->g, ADP_REG_STATUS), ADP_OK);
        break;
    case 5: {
        uint8_t blob[1 << 16];
        size_t n = 0;
        ck_assert_int_eq(vmapple_device_save(r->g.dev, blob, sizeof(blob), &n), 0);
        /* Loading its own state: the mappings are registered again at the same address. */
        if (vmapple_device_load(r->g.dev, blob, n) != 0) {
            ck_abort_msg("own state does not load back: %s", vmapple_device_last_error(r->g.dev));
        }
        break;
    }
    default:
        vmapple_device_pci_config_write(r->g.dev, (uint32_t)((x >> 8) % 0x40), 4, (uint32_t)rnd());
        adp_enable(&r->g);
        r->master = true;
        break;
    }
    check_invariants(r);
}

static void assert_still_works(struct rig *r)
{
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;

    vmapple_device_reset(r->g.dev);
    ck_assert_int_eq(vmapple_dma_backend_get_occupancy(r->dma, &occ), 0);
    ck_assert_uint_eq(occ.mappings, 0);
    ck_assert_uint_eq(occ.bytes, 0);
    adp_enable(&r->g);
    r->g.cmd = RAM_BASE;
    r->g.req = RAM_BASE + 0x100;
    r->g.resp = RAM_BASE + 0x400;
    adp_put_map(&r->g, 0, RAM_BASE + 0x2000, 0x100, 0);
    ck_assert_uint_eq(adp_ring(&r->g, ADP_MAP, 1), ADP_OK);
    ck_assert_uint_eq(adp_get_map(&r->g, 0).status, ADP_OK);
    adp_put_unmap(&r->g, 0, RAM_BASE + 0x2000, 0x100);
    ck_assert_uint_eq(adp_ring(&r->g, ADP_UNMAP, 1), ADP_OK);
}

START_TEST(hostile_command_pages)
{
    struct rig r;

    seed(0xadb0000 + (uint64_t)_i);
    rig_init(&r, (unsigned)_i % 16);
    for (int k = 0; k < 1500; k++) {
        if (rnd() % 3) {
            hostile_doorbell(&r);
        } else {
            other_action(&r);
        }
    }
    assert_still_works(&r);
    rig_free(&r);
}
END_TEST

/* Fill the device and the DART to their limits, then churn. */
START_TEST(limits_churn)
{
    struct rig r;
    uint64_t mapped[64];
    unsigned nr = 0;

    seed(0x11117 + (uint64_t)_i);
    rig_init(&r, 4 | ((unsigned)_i & 3));
    r.g.cmd = RAM_BASE;
    r.g.req = RAM_BASE + 0x100;
    r.g.resp = RAM_BASE + 0x800;
    for (int k = 0; k < 3000; k++) {
        if (rnd() % 2 && nr < 64) {
            uint64_t gpa = RAM_BASE + 0x2000 + (rnd() % 56) * 0x100;
            adp_put_map(&r.g, 0, gpa, 0x100, 0);
            if (adp_ring(&r.g, ADP_MAP, 1) == ADP_OK) {
                mapped[nr++] = gpa;
            }
        } else if (nr) {
            unsigned i = (unsigned)(rnd() % nr);
            adp_put_unmap(&r.g, 0, mapped[i], 0x100);
            ck_assert_uint_eq(adp_ring(&r.g, ADP_UNMAP, 1), ADP_OK);
            mapped[i] = mapped[--nr];
        }
        check_invariants(&r);
    }
    assert_still_works(&r);
    rig_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apple-dma-pci robustness");
    TCase *tc = tcase_create("command pages");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, hostile_command_pages, 0, 32);
    tcase_add_loop_test(tc, limits_churn, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
