/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes apple-dma-pci's command-page processing: the input writes guest
 * RAM (command pages, request arrays, arbitrary bytes), points the device at
 * pages, rings doorbells, pokes registers and config space, resets, and
 * round-trips state, in either layout, with or without mem_map, over the
 * identity backend or a small simulated DART.
 *
 * Findings: sanitizer reports; a doorbell that writes guest memory outside
 * the response array and the command page's status field (or writes
 * responses for an INVAL batch, or anything with bus mastering off); STATUS
 * not a status code, or differing from the page's; the device's and the
 * backend's mapping counts disagreeing; a host mapping left open; an access
 * range that wraps; the device's own state not loading back; the backend
 * still holding mappings after the device is destroyed.
 *
 * Input: byte 0 picks the variant (bit 0 layout, bit 1 mem_map, bit 2
 * simulated DART, bit 3 mem_map in 24-byte pieces); then operations, each
 * an opcode byte and its operands (reads past the end give zeros).
 */
#include <errno.h>

#include "adp-guest.h"
#include "fuzz.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x4000ull
#define RAM_END  (RAM_BASE + RAM_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
    struct mock_host *h;
    struct adp_guest g;
    vmapple_dma_backend *dma;
    uint8_t before[RAM_SIZE];
    uint64_t cmd; /* what CMD_GPA holds, as the harness wrote it */
    bool master;
};

static bool in_ram(uint64_t gpa, uint64_t len)
{
    return gpa >= RAM_BASE && gpa <= RAM_END && len <= RAM_END - gpa;
}

/* An address from the input: mostly inside RAM, sometimes at the edges of everything. */
static uint64_t take_addr(struct fuzz_input *in)
{
    uint8_t kind = (uint8_t)fuzz_take(in, 1);
    uint64_t rel = fuzz_take(in, 2);

    switch (kind % 8) {
    case 0:
        return 0;
    case 1:
        return RAM_END - (rel % 512);
    case 2:
        return UINT64_MAX - (rel % 512);
    case 3:
        return fuzz_take(in, 8);
    default:
        return RAM_BASE + rel % RAM_SIZE;
    }
}

static void check_invariants(struct state *s)
{
    vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;
    uint32_t status = (uint32_t)adp_reg_read(&s->g, ADP_REG_STATUS);

    if (status != ADP_OK && status != ADP_IOERR && status != ADP_INVAL) {
        FUZZ_FINDING("STATUS is %u", status);
    }
    vmapple_apple_dma_pci_get_info(s->g.dev, &info);
    vmapple_dma_backend_get_occupancy(s->dma, &occ);
    if (info.live_mappings != occ.mappings) {
        FUZZ_FINDING("device has %u mappings, backend %u", info.live_mappings, occ.mappings);
    }
    if (s->h->maps_live != 0) {
        FUZZ_FINDING("%u host mappings left open", s->h->maps_live);
    }
    if (s->h->wrapping_accesses != 0) {
        FUZZ_FINDING("a guest-memory access wrapped the address space");
    }
}

static void doorbell(struct state *s, uint64_t value)
{
    bool page_ok = in_ram(s->cmd, 32);
    uint32_t type = 0, count = 0, resp_size, status;
    uint64_t resp = 0;

    if (page_ok) {
        const uint8_t *p = mock_ram(s->h, s->cmd, 32);
        type = (uint32_t)adp_ld(p, 4);
        count = (uint32_t)adp_ld(p + 4, 4);
        resp = adp_ld(p + 24, 8);
    }
    resp_size = type == ADP_MAP ? adp_map_resp_size(&s->g) : 16;
    memcpy(s->before, s->h->ram, RAM_SIZE);
    adp_reg_write(&s->g, ADP_REG_DOORBELL, value);
    status = (uint32_t)adp_reg_read(&s->g, ADP_REG_STATUS);
    for (uint64_t i = 0; i < RAM_SIZE; i++) {
        uint64_t gpa = RAM_BASE + i;
        bool allowed =
            page_ok && s->master &&
            ((gpa >= s->cmd + 8 && gpa < s->cmd + 12) ||
             (status != ADP_INVAL && gpa >= resp && gpa - resp < (uint64_t)count * resp_size));
        if (!allowed && s->h->ram[i] != s->before[i]) {
            FUZZ_FINDING("doorbell wrote 0x%llx (page 0x%llx type %u count %u resp 0x%llx status "
                         "%u master %d)",
                         (unsigned long long)gpa, (unsigned long long)s->cmd, type, count,
                         (unsigned long long)resp, status, s->master);
        }
    }
    if (page_ok && s->master) {
        uint32_t page_status = (uint32_t)adp_ld(mock_ram(s->h, s->cmd + 8, 4), 4);
        if (page_status != status) {
            FUZZ_FINDING("page status %u, STATUS %u", page_status, status);
        }
    }
    if (!s->master && status != ADP_INVAL) {
        FUZZ_FINDING("a batch ran with bus mastering off");
    }
    check_invariants(s);
}

static void write_page(struct state *s, struct fuzz_input *in)
{
    uint64_t at = RAM_BASE + (fuzz_take(in, 2) % (RAM_SIZE / 8)) * 8;
    uint32_t type = (uint32_t)fuzz_take(in, 1);
    uint32_t count = (uint32_t)fuzz_take(in, 2);
    uint64_t req, resp;

    type = type < 0xf0 ? 1 + type % 2 : type; /* mostly MAP and UNMAP */
    count = count >= 0xff00 ? 0xffffffffu - (count & 0xff) : count % 80;
    req = take_addr(in);
    resp = take_addr(in);
    if (!in_ram(at, 32)) {
        return;
    }
    s->g.cmd = at;
    adp_put_page(&s->g, type, count, req, resp, (uint32_t)fuzz_take(in, 4));
}

/* Structured entries: MAP or UNMAP requests aimed at RAM (and its edges). */
static void write_entries(struct state *s, struct fuzz_input *in)
{
    uint64_t at = RAM_BASE + fuzz_take(in, 2) % RAM_SIZE;
    uint32_t n = (uint32_t)fuzz_take(in, 1) % 16;
    bool map = fuzz_take(in, 1) & 1;
    uint32_t esz = map ? adp_map_req_size(&s->g) : 16;

    s->g.req = at;
    for (uint32_t i = 0; i < n && in_ram(at + (uint64_t)i * esz, esz); i++) {
        uint64_t gpa = take_addr(in);
        uint64_t len = fuzz_take(in, 2);
        if (len >= 0xfff0) {
            len = fuzz_take(in, 8);
        }
        if (map) {
            adp_put_map(&s->g, i, gpa, len, (uint32_t)fuzz_take(in, 1));
        } else {
            adp_put_unmap(&s->g, i, gpa, len);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_sim_dart_options d = VMAPPLE_SIM_DART_OPTIONS_INIT;
    vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;
    static struct state st;
    struct state *s = &st;
    uint8_t variant = (uint8_t)fuzz_take(&in, 1);
    unsigned ops = 0;

    memset(s, 0, sizeof(*s));
    s->h = mock_host_new(RAM_BASE, RAM_SIZE);
    s->h->allow_map = variant & 2;
    s->h->map_chunk = (variant & 8) ? 24 : 0;
    if (variant & 4) {
        d.max_mappings = 12;
        d.max_bytes = 0x3000;
        if (vmapple_dma_backend_create_sim_dart(&d, &s->dma) != 0) {
            FUZZ_FINDING("sim-dart create failed");
        }
    } else if (vmapple_dma_backend_create_identity(NULL, &s->dma) != 0) {
        FUZZ_FINDING("identity create failed");
    }
    o.layout = variant & 1;
    o.max_entries = 64;
    o.max_mappings = 16;
    o.dma = s->dma;
    if (vmapple_apple_dma_pci_create(mock_host_ops(), s->h, &o, &s->g.dev) != 0) {
        FUZZ_FINDING("create failed: %s", vmapple_last_error());
    }
    s->g.h = s->h;
    s->g.layout = o.layout;
    adp_enable(&s->g);
    s->master = true;

    while (fuzz_left(&in) && ops++ < 256) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        switch ((op & 0x0f) % 10) { /* the low nibble: what; the high: how */
        case 0:
        case 1: {
            uint64_t at = fuzz_take(&in, 2) % RAM_SIZE;
            uint32_t n = (uint32_t)fuzz_take(&in, 1) % 64;
            for (uint32_t i = 0; i < n && at + i < RAM_SIZE; i++) {
                s->h->ram[at + i] = (uint8_t)fuzz_take(&in, 1);
            }
            break;
        }
        case 2:
            write_page(s, &in);
            break;
        case 3:
            write_entries(s, &in);
            break;
        case 4:
        case 5: {
            /* Point at the page last written, or anywhere. */
            s->cmd = (op & 0x10) ? take_addr(&in) : s->g.cmd;
            adp_reg_write(&s->g, ADP_REG_CMD_GPA_LO, (uint32_t)s->cmd);
            adp_reg_write(&s->g, ADP_REG_CMD_GPA_HI, (uint32_t)(s->cmd >> 32));
            doorbell(s, fuzz_take(&in, 4));
            break;
        }
        case 6: {
            static const uint32_t sizes[] = { 1, 2, 4, 8 };
            uint32_t sz = sizes[(op >> 4) & 3];
            uint64_t off = fuzz_take(&in, 2) % 0x1000, v;
            if (off >= ADP_REG_CMD_GPA_LO && off < ADP_REG_DOORBELL + 4) {
                off += 0x20; /* those go through the paths above, which track them */
            }
            off &= ~(uint64_t)(sz - 1);
            if (op & 0x40) {
                vmapple_device_write(s->g.dev, 0, off, sz, fuzz_take(&in, 8));
            } else {
                vmapple_device_read(s->g.dev, 0, off, sz, &v);
            }
            check_invariants(s);
            break;
        }
        case 7: {
            uint32_t off = (uint32_t)fuzz_take(&in, 1) % 0x40, cmd = 0;
            vmapple_device_pci_config_write(s->g.dev, off, 4, (uint32_t)fuzz_take(&in, 4));
            vmapple_device_pci_config_read(s->g.dev, 0x04, 2, &cmd);
            s->master = cmd & 0x4;
            break;
        }
        case 8:
            vmapple_device_reset(s->g.dev);
            s->cmd = 0;
            s->master = false;
            if (op & 0x10) {
                adp_enable(&s->g);
                s->master = true;
            }
            check_invariants(s);
            break;
        default: {
            static uint8_t blob[1 << 16];
            size_t n = 0;
            if (vmapple_device_save(s->g.dev, blob, sizeof(blob), &n) != 0) {
                FUZZ_FINDING("save failed: %s", vmapple_device_last_error(s->g.dev));
            }
            if (vmapple_device_load(s->g.dev, blob, n) != 0) {
                FUZZ_FINDING("own state does not load back: %s",
                             vmapple_device_last_error(s->g.dev));
            }
            check_invariants(s);
            break;
        }
        }
    }
    vmapple_device_destroy(s->g.dev);
    vmapple_dma_backend_get_occupancy(s->dma, &occ);
    if (occ.mappings != 0 || occ.bytes != 0) {
        FUZZ_FINDING("backend holds %u mappings after destroy", occ.mappings);
    }
    vmapple_dma_backend_release(s->dma);
    mock_host_free(s->h);
    return 0;
}
