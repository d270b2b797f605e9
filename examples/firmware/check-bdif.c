/* SPDX-License-Identifier: MIT */
/*
 * bdif (spec/bdif.md): the registers of the root, aux and an absent unit,
 * and the aux and root volumes read through it, every byte of their
 * pattern checked against what the host wrote into the images (selftest.h);
 * the end of a volume (a read ending there works, one crossing it fails and
 * leaves the buffer alone), and a write refused (the machine does not
 * enable bdif writes).
 */
#include <libvmapple/bdif.h>

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
    mmio_write64(VMAPPLE_BDIF_BASE + unit + BDIF_CMD, fw_gpa(req));
    fw_barrier();
    return *status;
}

static uint32_t reg32(uint32_t unit, uint32_t off)
{
    return mmio_read32(VMAPPLE_BDIF_BASE + unit + off);
}

static void check_registers(void)
{
    uint32_t root, aux, usb;
    bool ok = true;
    static const uint32_t units[] = { BDIF_UNIT_ROOT, BDIF_UNIT_AUX, BDIF_UNIT_USB };

    for (unsigned i = 0; i < 3; i++) {
        uint32_t u = units[i];
        ok = ok && reg32(u, BDIF_STATUS) == 1 && reg32(u, BDIF_CFG) == 2 &&
             reg32(u, BDIF_UNK8) == 0x420 && reg32(u, BDIF_BUSY) == 1 && reg32(u, 0x400) == 1 &&
             reg32(u, 0x434) == 0 && reg32(u, 0x100) == 0xffffffffu &&
             mmio_read16(VMAPPLE_BDIF_BASE + u + 0x200) == 0xffff;
    }
    fw_check("registers", ok,
             "STATUS 1, CFG 2, BUSY 1 and all ones elsewhere on the root, aux and usb units");
    root = reg32(BDIF_UNIT_ROOT, BDIF_NEXT_DEVICE);
    aux = reg32(BDIF_UNIT_AUX, BDIF_NEXT_DEVICE);
    usb = reg32(BDIF_UNIT_USB, BDIF_NEXT_DEVICE);
    fw_check("next-device", root == 0x08000000u && aux == 0x00010000u && usb == 0xffffffffu,
             "NEXT_DEVICE: root 0x%x, aux 0x%x, usb 0x%x", root, aux, usb);
}

/* The volume behind a unit: header, every pattern byte, its end. */
static void check_volume(const char *name, uint32_t unit, uint32_t kind)
{
    struct selftest_image_header h;
    char check[32];
    uint64_t sector, bytes, first_bad = FW_PATTERN_OK;
    uint8_t st, got = 0, want = 0;
    bool header_ok;

    st = bdif_rw(unit, 0, data, SELFTEST_SECTOR, FLAGS_READ);
    memcpy(&h, data, sizeof(h));
    header_ok = st == 0 && selftest_header_valid(&h, kind);
    fw_snprintf(check, sizeof(check), "%s-header", name);
    if (!fw_check(check, header_ok,
                  "sector 0: status %u, %s self-test image header (kind %u, %lu sectors)", st,
                  header_ok ? "a valid" : "NOT a valid", h.kind, h.sectors)) {
        return;
    }

    /* The pattern, a MiB at a time. */
    bytes = h.pattern_sectors * SELFTEST_SECTOR;
    st = 0;
    for (uint64_t off = SELFTEST_SECTOR; off < bytes && first_bad == FW_PATTERN_OK && !st;
         off += CHUNK) {
        uint32_t len = bytes - off < CHUNK ? (uint32_t)(bytes - off) : CHUNK;
        st = bdif_rw(unit, off / SELFTEST_SECTOR, data, len, FLAGS_READ);
        if (!st) {
            first_bad = fw_pattern_mismatch(h.seed, off, data, len, &got, &want);
        }
    }
    fw_snprintf(check, sizeof(check), "%s-data", name);
    if (st) {
        fw_check(check, false, "a read of the pattern failed with status %u", st);
    } else if (first_bad != FW_PATTERN_OK) {
        fw_check(check, false, "sector %lu byte %lu is 0x%02x, the image was written with 0x%02x",
                 first_bad / SELFTEST_SECTOR, first_bad % SELFTEST_SECTOR, got, want);
    } else {
        fw_check(check, true, "%lu sectors (%lu KiB) read in 1 MiB requests match the pattern",
                 h.pattern_sectors - 1, (bytes - SELFTEST_SECTOR) >> 10);
    }

    /*
     * The end of the volume. The last sector is scratch, whose bytes a
     * previous run may have set: read it twice over different fills, and
     * only a read that wrote every byte makes the copies agree.
     */
    sector = h.sectors - 1;
    memset(data, 0xaa, SELFTEST_SECTOR);
    memset(data + SELFTEST_SECTOR, 0x55, SELFTEST_SECTOR);
    st = bdif_rw(unit, sector, data, SELFTEST_SECTOR, FLAGS_READ);
    {
        uint8_t st1, st2;
        bool written, untouched = true;

        st1 = bdif_rw(unit, sector, data + SELFTEST_SECTOR, SELFTEST_SECTOR, FLAGS_READ);
        written = !memcmp(data, data + SELFTEST_SECTOR, SELFTEST_SECTOR);
        memset(data, 0xaa, 2 * SELFTEST_SECTOR);
        st2 = bdif_rw(unit, sector, data, 2 * SELFTEST_SECTOR, FLAGS_READ);
        for (unsigned i = 0; i < 2 * SELFTEST_SECTOR; i++) {
            untouched = untouched && data[i] == 0xaa;
        }
        fw_snprintf(check, sizeof(check), "%s-end", name);
        fw_check(check, st == 0 && st1 == 0 && written && st2 == 1 && untouched,
                 "last sector: status %u and %u, %s; a read crossing the end: status %u, "
                 "buffer %s",
                 st, st1, written ? "every byte read" : "NOT every byte read", st2,
                 untouched ? "untouched" : "WRITTEN");
    }
}

void check_bdif(void)
{
    uint8_t st, st_before, st_after;

    if (!bdif_buffers()) {
        fw_check("buffers", false, "out of RAM for bdif buffers");
        return;
    }
    check_registers();
    /* iBoot reads aux first, then root. */
    check_volume("aux", BDIF_UNIT_AUX, SELFTEST_KIND_AUX);
    check_volume("root", BDIF_UNIT_ROOT, SELFTEST_KIND_ROOT);

    /* Writes are off in this machine: refused, and the sector keeps its bytes. */
    st_before = bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_READ);
    memcpy(data + SELFTEST_SECTOR, data, SELFTEST_SECTOR);
    memset(data, 0x5a, SELFTEST_SECTOR);
    st = bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_WRITE);
    st_after = bdif_rw(BDIF_UNIT_ROOT, 1, data, SELFTEST_SECTOR, FLAGS_READ);
    fw_check("write-refused",
             st_before == 0 && st == 1 && st_after == 0 &&
                 !memcmp(data, data + SELFTEST_SECTOR, SELFTEST_SECTOR),
             "a write request gets status %u and sector 1 keeps its bytes (reads before and "
             "after: status %u, %u)",
             st, st_before, st_after);

    /* Bad requests: a request outside RAM gets no status; an absent unit runs nothing. */
    *status = 0xee;
    mmio_write64(VMAPPLE_BDIF_BASE + BDIF_UNIT_ROOT + BDIF_CMD, 0x10000000ull); /* the GIC */
    st = *status;
    {
        uint8_t st_root, st_usb;
        /*
         * A valid request, which the root unit must still run after the bad
         * one; then the same request sent to the usb unit.
         */
        st_root = bdif_rw(BDIF_UNIT_ROOT, 0, data, SELFTEST_SECTOR, FLAGS_READ);
        *status = 0xee;
        mmio_write64(VMAPPLE_BDIF_BASE + BDIF_UNIT_USB + BDIF_CMD, fw_gpa(req));
        st_usb = *status;
        fw_check("bad-requests", st == 0xee && st_root == 0 && st_usb == 0xee,
                 "a request outside RAM and one sent to the usb unit write no status (0x%x, "
                 "0x%x; 0xee: none); the root unit runs a valid one in between (status %u)",
                 st, st_usb, st_root);
    }
}
