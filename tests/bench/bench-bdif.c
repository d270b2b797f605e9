/* SPDX-License-Identifier: MIT */
/*
 * bdif sequential read throughput: 1 MiB requests from a file-backed volume
 * through the device, guest memory mapped (zero-copy), against raw pread(2)
 * of the same file into the same buffer, measured in the same run.
 *
 * The file (1 GiB, or VMAPPLE_BENCH_MIB MiB) is created in $TMPDIR (or /tmp),
 * unlinked as soon as it is open, and read once before measuring so both
 * sides read from a warm page cache. Each side runs PASSES times,
 * interleaved; the best pass of each is reported. A second line reports
 * the same without mem_map (bounce buffer and mem_write), for reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (4ull << 20)
#define REQ      (RAM_BASE + 0x0)
#define SECB     (RAM_BASE + 0x100)
#define STAT     (RAM_BASE + 0x200)
#define DATA     (RAM_BASE + (1ull << 20))
#define CHUNK    (1u << 20)
#define PASSES   5

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static int make_file(const char *dir, uint64_t bytes, char *path, size_t path_len)
{
    uint8_t *buf = malloc(CHUNK);
    int fd;

    snprintf(path, path_len, "%s/vmapple-bench-bdif-XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0 || !buf) {
        perror("bench-bdif: mkstemp");
        free(buf);
        return -1;
    }
    for (uint64_t off = 0; off < bytes; off += CHUNK) {
        for (uint32_t i = 0; i < CHUNK; i += 8) {
            le64(buf + i, (off + i) * 0x9e3779b97f4a7c15ull);
        }
        if (pwrite(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK) {
            perror("bench-bdif: pwrite");
            close(fd);
            unlink(path);
            free(buf);
            return -1;
        }
    }
    free(buf);
    return fd;
}

static double raw_pass(int fd, uint64_t bytes, uint8_t *buf)
{
    uint64_t t0 = bench_now_ns();

    for (uint64_t off = 0; off < bytes; off += CHUNK) {
        if (pread(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK) {
            perror("bench-bdif: pread");
            exit(1);
        }
    }
    bench_keep(buf[CHUNK - 1]);
    return (double)(bench_now_ns() - t0) / 1e9;
}

static double device_pass(vmapple_device *dev, struct mock_host *h, uint64_t bytes)
{
    uint8_t *req = mock_ram(h, REQ, 48), *secb = mock_ram(h, SECB, 16);
    uint8_t *stat = mock_ram(h, STAT, 1);
    uint64_t t0;

    /* The guest's request: sector block, 1 MiB read into DATA, status. */
    le64(req, SECB);
    le32(req + 8, 16);
    le32(req + 12, 0);
    le64(req + 16, DATA);
    le32(req + 24, CHUNK);
    le32(req + 28, 0x00030001);
    le64(req + 32, STAT);
    le32(req + 40, 1);
    le32(req + 44, 0);
    memset(secb, 0, 16);
    t0 = bench_now_ns();
    for (uint64_t off = 0; off < bytes; off += CHUNK) {
        le32(secb + 8, (uint32_t)(off / 512));
        *stat = 0xff;
        if (vmapple_device_write(dev, 0, 0x408, 8, REQ) != 0 || *stat != 0) {
            fprintf(stderr, "bench-bdif: request at %llu failed (status %u)\n",
                    (unsigned long long)off, *stat);
            exit(1);
        }
    }
    return (double)(bench_now_ns() - t0) / 1e9;
}

int main(void)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    uint64_t mib =
        getenv("VMAPPLE_BENCH_MIB") ? strtoull(getenv("VMAPPLE_BENCH_MIB"), NULL, 0) : 1024;
    uint64_t bytes = mib << 20;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_bdif_options o = VMAPPLE_BDIF_OPTIONS_INIT;
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_blockdev *bd;
    vmapple_device *dev;
    double best_dev = 1e30, best_raw = 1e30;
    char path[512];
    int fd;

    if (mib == 0) {
        fprintf(stderr, "bench-bdif: VMAPPLE_BENCH_MIB must be at least 1\n");
        return 1;
    }
    fd = make_file(dir, bytes, path, sizeof(path));
    if (fd < 0) {
        return 1;
    }
    fo.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    if (vmapple_blockdev_open_file(path, &fo, &bd) != 0) {
        fprintf(stderr, "bench-bdif: %s\n", vmapple_last_error());
        unlink(path);
        return 1;
    }
    /* Both descriptors keep the data; the name goes now, whatever happens next. */
    unlink(path);
    o.root = bd;
    if (vmapple_bdif_create(mock_host_ops(), h, &o, &dev) != 0) {
        fprintf(stderr, "bench-bdif: %s\n", vmapple_last_error());
        return 1;
    }
    vmapple_blockdev_release(bd);
    h->allow_map = true;

    /* Same destination for both: the guest's data buffer. */
    uint8_t *buf = mock_ram(h, DATA, CHUNK);
    raw_pass(fd, bytes, buf); /* warm the page cache */
    for (int p = 0; p < PASSES; p++) {
        double d = device_pass(dev, h, bytes);
        double r = raw_pass(fd, bytes, buf);
        best_dev = d < best_dev ? d : best_dev;
        best_raw = r < best_raw ? r : best_raw;
    }
    if (h->maps_live != 0 || h->mem_writes != (unsigned)(PASSES * (bytes / CHUNK))) {
        fprintf(stderr, "bench-bdif: not zero-copy (%u status writes, %u live maps)\n",
                h->mem_writes, h->maps_live);
        return 1;
    }
    double gib = (double)bytes / (double)(1ull << 30);
    printf("bench-bdif: %llu MiB file, %d passes each, 1 MiB requests, best pass\n",
           (unsigned long long)mib, PASSES);
    bench_report("bdif-seq-read-1MiB-mapped", gib / best_dev, "GiB/s", gib / best_raw);

    /*
     * For hosts without mem_map: the bounded bounce buffer plus mem_write.
     * Informative; the extra copy is the price of not mapping guest memory.
     */
    h->allow_map = false;
    best_dev = best_raw = 1e30;
    for (int p = 0; p < PASSES; p++) {
        double d = device_pass(dev, h, bytes);
        double r = raw_pass(fd, bytes, buf);
        best_dev = d < best_dev ? d : best_dev;
        best_raw = r < best_raw ? r : best_raw;
    }
    bench_report("bdif-seq-read-1MiB-unmapped", gib / best_dev, "GiB/s", gib / best_raw);
    vmapple_device_destroy(dev);
    close(fd);
    mock_host_free(h);
    return 0;
}
