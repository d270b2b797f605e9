/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes bdif: the input chooses the configuration (writes, flush, mapping,
 * which volumes), then writes guest memory, builds requests (structured, so
 * that transfers really happen, or raw), executes them, accesses registers,
 * injects volume and host failures, saves/loads and resets.
 *
 * Volumes: root is an in-memory volume made fresh for every input; aux is
 * either another one or a small read-only file-backed volume (one file for
 * the whole run). Findings: sanitizer reports, a write outside guest RAM,
 * an access that wraps the address space, a leaked mapping, big
 * allocations (libFuzzer's -malloc_limit_mb), a device that no longer reads
 * correctly.
 */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "fuzz.h"
#include "memvol.h"
#include "mockhost.h"

#define RAM_BASE  0x70000000ull
#define RAM_SIZE  0x40000ull /* 256 KiB */
#define ROOT_SIZE 0x10000ull /* 64 KiB */
#define FILE_SIZE 0x8000ull  /* 32 KiB */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vmapple_blockdev *file_volume(void)
{
    static vmapple_blockdev *bd;
    static bool tried;
    char path[] = "/tmp/vmapple-fuzz-bdif-XXXXXX";
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    uint8_t buf[FILE_SIZE];
    int fd;

    if (tried) {
        return bd;
    }
    tried = true;
    fd = mkstemp(path);
    if (fd < 0) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = memvol_pattern(i);
    }
    if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
        close(fd);
        unlink(path);
        return NULL;
    }
    close(fd);
    o.flags = VMAPPLE_BLOCKDEV_READ_ONLY | VMAPPLE_BLOCKDEV_NO_LOCK;
    if (vmapple_blockdev_open_file(path, &o, &bd) != 0) {
        bd = NULL;
    }
    /* The open descriptor keeps the data; the name can go now. */
    unlink(path);
    return bd;
}

static uint64_t ram_addr(struct fuzz_input *in)
{
    return RAM_BASE + fuzz_take(in, 3) % RAM_SIZE;
}

/* An address for a descriptor: mostly inside RAM, sometimes anything. */
static uint64_t desc_addr(struct fuzz_input *in)
{
    uint8_t how = (uint8_t)fuzz_take(in, 1);

    switch (how % 8) {
    case 0:
        return fuzz_take(in, 8);
    case 1:
        return RAM_BASE + RAM_SIZE - (fuzz_take(in, 1) % 64);
    default:
        return ram_addr(in);
    }
}

static void put_desc(struct mock_host *h, uint64_t gpa, uint64_t addr, uint32_t len, uint32_t flags)
{
    uint8_t d[16];

    for (int i = 0; i < 8; i++) {
        d[i] = (uint8_t)(addr >> (8 * i));
    }
    for (int i = 0; i < 4; i++) {
        d[8 + i] = (uint8_t)(len >> (8 * i));
        d[12 + i] = (uint8_t)(flags >> (8 * i));
    }
    uint8_t *p = mock_ram(h, gpa, 16);
    if (p) {
        memcpy(p, d, 16);
    }
}

/* A request the input shapes field by field; returns its address. */
static uint64_t structured_request(struct mock_host *h, struct fuzz_input *in)
{
    static const uint32_t flags[] = { 0x00030001, 0x00010001, 0x00030000, 0 };
    uint64_t req = RAM_BASE + fuzz_take(in, 2) % (RAM_SIZE - 48);
    uint64_t secb = RAM_BASE + fuzz_take(in, 2) % (RAM_SIZE - 16);
    uint8_t shape = (uint8_t)fuzz_take(in, 1);
    uint32_t sector = (uint32_t)fuzz_take(in, shape & 0x80 ? 4 : 1);
    uint32_t len = (uint32_t)fuzz_take(in, shape & 0x40 ? 4 : 2);
    uint32_t fl = shape & 0x20 ? (uint32_t)fuzz_take(in, 4) : flags[shape & 3];
    uint8_t *s = mock_ram(h, secb, 16);

    put_desc(h, req, shape & 0x10 ? desc_addr(in) : secb, shape & 0x08 ? 16 : 8 + (shape & 15), 0);
    put_desc(h, req + 16, desc_addr(in), len, fl);
    put_desc(h, req + 32, desc_addr(in), 1, 0);
    for (int i = 0; i < 4; i++) {
        s[8 + i] = (uint8_t)(sector >> (8 * i));
    }
    return req;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct memvol *root = memvol_new(ROOT_SIZE, true);
    struct memvol *aux = memvol_new(ROOT_SIZE / 2, true);
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_blockdev *rb = memvol_open(root, 0), *ab = NULL;
    vmapple_device *dev;
    uint8_t cfg = (uint8_t)fuzz_take(&in, 1);
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    uint64_t v;

    if (cfg & 1) {
        o.flags |= VMAPPLE_BDIF_ALLOW_WRITES;
        if (cfg & 2) {
            o.flags |= VMAPPLE_BDIF_FLUSH_WRITES;
        }
    }
    switch ((cfg >> 2) & 3) {
    case 0:
        ab = memvol_open(aux, 0);
        break;
    case 1:
        ab = memvol_open(aux, VMAPPLE_BLOCKDEV_READ_ONLY);
        break;
    case 2:
        ab = file_volume(); /* the harness keeps its reference for the whole run */
        break;
    default:
        break;
    }
    o.root = (cfg & 0x10) ? NULL : rb;
    o.aux = ab;
    if (vmapple_bdif_create(mock_host_ops(), h, &o, &dev) != 0) {
        FUZZ_FINDING("create failed: %s", vmapple_last_error());
    }
    vmapple_blockdev_release(rb);
    if (((cfg >> 2) & 3) < 2) {
        vmapple_blockdev_release(ab);
    }
    h->allow_map = cfg & 0x20;
    h->map_chunk = (cfg & 0x40) ? 4096 : 0;
    h->guard_writes = true;
    h->guard_lo = RAM_BASE;
    h->guard_hi = RAM_BASE + RAM_SIZE;

    for (unsigned steps = 0; fuzz_left(&in) && steps < 256; steps++) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        switch (op % 8) {
        case 0: { /* guest memory */
            uint64_t gpa = ram_addr(&in);
            uint32_t n = (uint32_t)fuzz_take(&in, 1);
            uint8_t *p = mock_ram(h, gpa, n);
            for (uint32_t i = 0; i < n; i++) {
                uint8_t b = (uint8_t)fuzz_take(&in, 1);
                if (p) {
                    p[i] = b;
                }
            }
            break;
        }
        case 1:
        case 2: { /* structured request, executed */
            uint64_t req = structured_request(h, &in);
            uint32_t unit = (op & 0x10) ? (uint32_t)fuzz_take(&in, 1) % 32 : (op >> 5) & 1;
            vmapple_device_write(dev, 0, ((uint64_t)unit << 16) | 0x408, 8, req);
            break;
        }
        case 3: { /* raw CMD value of any size */
            uint32_t unit = (uint32_t)fuzz_take(&in, 1) % 32;
            uint32_t sz = sizes[(op >> 3) & 3];
            uint64_t val = (op & 0x20) ? fuzz_take(&in, 8) : desc_addr(&in);
            vmapple_device_write(dev, 0, ((uint64_t)unit << 16) | 0x408, sz, val);
            break;
        }
        case 4: { /* any register */
            uint64_t off = fuzz_take(&in, 3) % 0x200000;
            uint32_t sz = sizes[(op >> 3) & 3];
            if (op & 0x20) {
                vmapple_device_write(dev, 0, off, sz, fuzz_take(&in, 8));
            } else {
                vmapple_device_read(dev, 0, off, sz, &v);
            }
            break;
        }
        case 5: /* failures */
            root->fail_reads = (op >> 3) & 1;
            root->fail_writes = (op >> 4) & 1;
            root->fail_flushes = (op >> 5) & 1;
            h->fail_reads = (op >> 6) & 1;
            h->fail_writes = (op >> 7) & 1;
            break;
        case 6: { /* save, load back */
            size_t n = 0;
            if (vmapple_device_save(dev, NULL, 0, &n) != -ENOSPC || n > 4096) {
                FUZZ_FINDING("save size %zu", n);
            }
            uint8_t blob[4096];
            if (vmapple_device_save(dev, blob, sizeof(blob), &n) != 0 ||
                vmapple_device_load(dev, blob, n) != 0) {
                FUZZ_FINDING("save/load round trip failed: %s", vmapple_device_last_error(dev));
            }
            break;
        }
        default:
            vmapple_device_reset(dev);
            break;
        }
        if (h->maps_live) {
            FUZZ_FINDING("%u mappings leaked", h->maps_live);
        }
    }
    if (h->stray_writes || h->wrapping_accesses) {
        FUZZ_FINDING("stray writes %u, wrapping accesses %u", h->stray_writes,
                     h->wrapping_accesses);
    }

    /* Still usable: read 1 KiB at sector 3 of root. */
    if (o.root) {
        uint64_t req = RAM_BASE, secb = RAM_BASE + 0x40, stat = RAM_BASE + 0x80;
        uint64_t buf = RAM_BASE + 0x1000;
        uint8_t *s = mock_ram(h, secb, 16);
        root->fail_reads = 0;
        h->fail_reads = h->fail_writes = 0;
        put_desc(h, req, secb, 16, 0);
        put_desc(h, req + 16, buf, 1024, 0x00030001);
        put_desc(h, req + 32, stat, 1, 0);
        memset(s, 0, 16);
        s[8] = 3;
        *(uint8_t *)mock_ram(h, stat, 1) = 0xaa;
        vmapple_device_write(dev, 0, 0x408, 8, req);
        if (*(uint8_t *)mock_ram(h, stat, 1) != 0 ||
            memcmp(mock_ram(h, buf, 1024), root->data + 3 * 512, 1024) != 0) {
            FUZZ_FINDING("device stopped working");
        }
    }
    vmapple_device_destroy(dev);
    memvol_free(root);
    memvol_free(aux);
    mock_host_free(h);
    return 0;
}
