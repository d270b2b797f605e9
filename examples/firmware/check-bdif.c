/* SPDX-License-Identifier: MIT */
/*
 * bdif (spec/bdif.md): the registers of the root, aux and an absent unit,
 * and the aux and root volumes read through it, every byte of their
 * pattern checked against what the host wrote into the images (selftest.h);
 * the end of a volume (a read ending there works, one crossing it fails and
 * leaves the buffer alone), and a write refused (the machine does not
 * enable bdif writes).
 */
#include "fw.h"

#define BDIF_UNIT_ROOT 0x00000u
#define BDIF_UNIT_AUX  0x10000u
#define BDIF_UNIT_USB  0x100000u

#define BDIF_STATUS      0x000
#define BDIF_CFG         0x004
#define BDIF_UNK8        0x008
#define BDIF_BUSY        0x010
#define BDIF_CMD         0x408
#define BDIF_NEXT_DEVICE 0x420

#define FLAGS_READ  0x00030001u
#define FLAGS_WRITE 0x00010001u

#define CHUNK (1u << 20)

struct bdif_request {
    uint8_t bytes[48];
};

static struct bdif_request *req;
static uint8_t *sector_block, *status, *data;

static bool bdif_buffers(void)
{
    if (!req) {
        req = fw_alloc(sizeof(*req), 64);
        sector_block = fw_alloc(16, 16);
        status = fw_alloc(16, 16);
        data = fw_alloc(CHUNK, 4096);
    }
    return req && sector_block && status && data;
}

/* Run one request; returns the status byte (0xee: the device wrote none). */
static uint8_t bdif_rw(uint32_t unit, uint64_t sector, void *buf, uint32_t len, uint32_t flags)
{
    memset(sector_block, 0, 16);
    st_le32(sector_block + 8, (uint32_t)sector);
    st_le64(req->bytes + 0, fw_gpa(sector_block));
    st_le32(req->bytes + 8, 16);
    st_le32(req->bytes + 12, 0);
    st_le64(req->bytes + 16, fw_gpa(buf));
    st_le32(req->bytes + 24, len);
    st_le32(req->bytes + 28, flags);
    st_le64(req->bytes + 32, fw_gpa(status));
    st_le32(req->bytes + 40, 1);
    st_le32(req->bytes + 44, 0);
    *status = 0xee;
    fw_barrier();
    mmio_write64(FW_BDIF_BASE + unit + BDIF_CMD, fw_gpa(req));
    fw_barrier();
    return *status;
}

static uint32_t reg32(uint32_t unit, uint32_t off)
{
    return mmio_read32(FW_BDIF_BASE + unit + off);
}

static void check_registers(void)
{
    bool ok = true;
    static const uint32_t units[] = { BDIF_UNIT_ROOT, BDIF_UNIT_AUX, BDIF_UNIT_USB };

    for (unsigned i = 0; i < 3; i++) {
        uint32_t u = units[i];
        ok = ok && reg32(u, BDIF_STATUS) == 1 && reg32(u, BDIF_CFG) == 2 &&
             reg32(u, BDIF_UNK8) == 0x420 && reg32(u, BDIF_BUSY) == 1 && reg32(u, 0x400) == 1 &&
             reg32(u, 0x434) == 0 && reg32(u, 0x100) == 0xffffffffu &&
             mmio_read16(FW_BDIF_BASE + u + 0x200) == 0xffff;
    }
    fw_check("registers", ok,
             "STATUS 1, CFG 2, BUSY 1 and all ones elsewhere on the root, aux and usb units");
    fw_check("next-device",
             reg32(BDIF_UNIT_ROOT, BDIF_NEXT_DEVICE) == 0x08000000u &&
                 reg32(BDIF_UNIT_AUX, BDIF_NEXT_DEVICE) == 0x00010000u &&
                 reg32(BDIF_UNIT_USB, BDIF_NEXT_DEVICE) == 0xffffffffu,
             "NEXT_DEVICE: root 0x%x, aux 0x%x, usb 0x%x", reg32(BDIF_UNIT_ROOT, BDIF_NEXT_DEVICE),
             reg32(BDIF_UNIT_AUX, BDIF_NEXT_DEVICE), reg32(BDIF_UNIT_USB, BDIF_NEXT_DEVICE));
}

/* The volume behind a unit: header, every pattern byte, its end. */
static void check_volume(const char *name, uint32_t unit, uint32_t kind)
{
    struct selftest_image_header h;
    char check[32];
    uint64_t sector, bytes, first_bad = UINT64_MAX, got = 0, want = 0;
    uint8_t st;
    bool header_ok;

    st = bdif_rw(unit, 0, data, SELFTEST_SECTOR, FLAGS_READ);
    memcpy(&h, data, sizeof(h));
    header_ok = st == 0 && h.magic == SELFTEST_IMAGE_MAGIC && h.kind == kind &&
                h.version == SELFTEST_VERSION && h.check == selftest_header_check(&h) &&
                h.pattern_sectors >= 2 && h.pattern_sectors <= h.sectors;
    fw_snprintf(check, sizeof(check), "%s-header", name);
    if (!fw_check(check, header_ok,
                  "sector 0: status %u, %s self-test image header (kind %u, %lu sectors)", st,
                  header_ok ? "a valid" : "NOT a valid", h.kind, h.sectors)) {
        return;
    }

    /* The pattern, a MiB at a time. */
    bytes = h.pattern_sectors * SELFTEST_SECTOR;
    st = 0;
    for (uint64_t off = SELFTEST_SECTOR; off < bytes && first_bad == UINT64_MAX && !st;
         off += CHUNK) {
        uint32_t len = bytes - off < CHUNK ? (uint32_t)(bytes - off) : CHUNK;
        st = bdif_rw(unit, off / SELFTEST_SECTOR, data, len, FLAGS_READ);
        for (uint32_t i = 0; i < len && !st; i += 8) {
            uint64_t w = ld_le64(data + i), e = selftest_pattern_word(h.seed, (off + i) / 8);
            if (w != e) {
                unsigned byte = (unsigned)__builtin_ctzll(w ^ e) / 8;
                first_bad = off + i + byte;
                got = (w >> (8 * byte)) & 0xff;
                want = (e >> (8 * byte)) & 0xff;
                break;
            }
        }
    }
    fw_snprintf(check, sizeof(check), "%s-data", name);
    if (st) {
        fw_check(check, false, "a read of the pattern failed with status %u", st);
    } else if (first_bad != UINT64_MAX) {
        fw_check(check, false, "sector %lu byte %lu is 0x%02lx, the image was written with 0x%02lx",
                 first_bad / SELFTEST_SECTOR, first_bad % SELFTEST_SECTOR, got, want);
    } else {
        fw_check(check, true, "%lu sectors (%lu KiB) read in 1 MiB requests match the pattern",
                 h.pattern_sectors - 1, (bytes - SELFTEST_SECTOR) >> 10);
    }

    /* The end of the volume. */
    sector = h.sectors - 1;
    memset(data, 0xaa, 2 * SELFTEST_SECTOR);
    st = bdif_rw(unit, sector, data, SELFTEST_SECTOR, FLAGS_READ);
    {
        uint8_t st2;
        bool untouched = true;

        memset(data, 0xaa, 2 * SELFTEST_SECTOR);
        st2 = bdif_rw(unit, sector, data, 2 * SELFTEST_SECTOR, FLAGS_READ);
        for (unsigned i = 0; i < 2 * SELFTEST_SECTOR; i++) {
            untouched = untouched && data[i] == 0xaa;
        }
        fw_snprintf(check, sizeof(check), "%s-end", name);
        fw_check(check, st == 0 && st2 == 1 && untouched,
                 "last sector: status %u; a read crossing the end: status %u, buffer %s", st, st2,
                 untouched ? "untouched" : "WRITTEN");
    }
}

void check_bdif(void)
{
    uint8_t st;

    if (!bdif_buffers()) {
        fw_check("buffers", false, "out of RAM for bdif buffers");
        return;
    }
    check_registers();
    /* iBoot reads aux first, then root. */
    check_volume("aux", BDIF_UNIT_AUX, SELFTEST_KIND_AUX);
    check_volume("root", BDIF_UNIT_ROOT, SELFTEST_KIND_ROOT);

    /* Writes are off in this machine: refused, and the sector keeps its bytes. */
    bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_READ);
    memcpy(data + SELFTEST_SECTOR, data, SELFTEST_SECTOR);
    memset(data, 0x5a, SELFTEST_SECTOR);
    st = bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_WRITE);
    bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_READ);
    fw_check("write-refused", st == 1 && !memcmp(data, data + SELFTEST_SECTOR, SELFTEST_SECTOR),
             "a write request gets status %u and sector 1 keeps its bytes", st);

    /* Bad requests: a request outside RAM gets no status; an absent unit runs nothing. */
    *status = 0xee;
    mmio_write64(FW_BDIF_BASE + BDIF_UNIT_ROOT + BDIF_CMD, 0x10000000ull); /* the GIC */
    st = *status;
    {
        uint8_t st_usb;
        /* Prepare a valid request, then send it to the usb unit. */
        bdif_rw(BDIF_UNIT_ROOT, 0, data, SELFTEST_SECTOR, FLAGS_READ);
        *status = 0xee;
        mmio_write64(FW_BDIF_BASE + BDIF_UNIT_USB + BDIF_CMD, fw_gpa(req));
        st_usb = *status;
        fw_check("bad-requests", st == 0xee && st_usb == 0xee,
                 "a request outside RAM and one sent to the usb unit write no status");
    }
}
