/* SPDX-License-Identifier: MIT */
/*
 * blkpattern: write or check a known pattern on a block device or file. Built
 * statically so it runs in the test guest's initramfs, and run on the host
 * on the image file to check what the guest wrote.
 *
 *   blkpattern write  DEV SEED [START LEN]   fill [START, START+LEN) (default all)
 *   blkpattern verify DEV SEED [START LEN]   read it back and compare
 *
 * Every 8-byte word depends on the seed and on its offset, so a block
 * written to the wrong place, a stale block or a torn one is caught. I/O is
 * O_DIRECT in 1 MiB chunks (the guest's page cache must not answer for the
 * device). Exit status 0 on success, 1 on a mismatch or an I/O error (with
 * one line saying where), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static uint64_t word_at(uint64_t seed, uint64_t offset)
{
    uint64_t z = seed + (offset / 8 + 1) * 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint64_t *buf, uint64_t seed, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len / 8; i++) {
        buf[i] = word_at(seed, off + 8 * i);
    }
}

int main(int argc, char **argv)
{
    uint64_t seed, size, start = 0, len, done = 0;
    struct stat st;
    uint64_t *buf, *want;
    int write_mode, fd;

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: blkpattern write|verify DEV SEED [START LEN]\n");
        return 2;
    }
    write_mode = strcmp(argv[1], "write") == 0;
    if (!write_mode && strcmp(argv[1], "verify") != 0) {
        fprintf(stderr, "blkpattern: unknown command %s\n", argv[1]);
        return 2;
    }
    seed = strtoull(argv[3], NULL, 0);
    fd = open(argv[2], (write_mode ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        /* A file system without O_DIRECT (tmpfs on the host). */
        fd = open(argv[2], write_mode ? O_RDWR : O_RDONLY);
    }
    if (fd < 0) {
        printf("blkpattern: open %s for %s: %s\n", argv[2], argv[1], strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) < 0) {
        printf("blkpattern: stat: %s\n", strerror(errno));
        return 1;
    }
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
            printf("blkpattern: BLKGETSIZE64: %s\n", strerror(errno));
            return 1;
        }
    } else {
        size = (uint64_t)st.st_size;
    }
    len = size;
    if (argc == 6) {
        start = strtoull(argv[4], NULL, 0);
        len = strtoull(argv[5], NULL, 0);
    }
    if (start % 4096 || len % 4096 || start > size || len > size - start) {
        printf("blkpattern: range %" PRIu64 "+%" PRIu64 " is not 4 KiB aligned inside %" PRIu64
               " bytes\n",
               start, len, size);
        return 2;
    }
    if (posix_memalign((void **)&buf, 4096, CHUNK) || posix_memalign((void **)&want, 4096, CHUNK)) {
        return 1;
    }
    while (done < len) {
        uint64_t off = start + done;
        size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
        ssize_t got;
        if (write_mode) {
            fill(buf, seed, off, n);
            got = pwrite(fd, buf, n, (off_t)off);
        } else {
            got = pread(fd, buf, n, (off_t)off);
        }
        if (got != (ssize_t)n) {
            printf("blkpattern: %s of %zu bytes at %" PRIu64 ": %s\n", write_mode ? "write" : "read",
                   n, off, got < 0 ? strerror(errno) : "short transfer");
            return 1;
        }
        if (!write_mode) {
            fill(want, seed, off, n);
            if (memcmp(buf, want, n) != 0) {
                for (size_t i = 0; i < n / 8; i++) {
                    if (buf[i] != want[i]) {
                        printf("blkpattern: mismatch at byte %" PRIu64 ": 0x%016" PRIx64
                               " instead of 0x%016" PRIx64 "\n",
                               off + 8 * i, buf[i], want[i]);
                        break;
                    }
                }
                return 1;
            }
        }
        done += n;
    }
    if (write_mode && fsync(fd) < 0) {
        printf("blkpattern: fsync: %s\n", strerror(errno));
        return 1;
    }
    printf("blkpattern: %s %" PRIu64 " bytes at %" PRIu64 ": ok\n",
           write_mode ? "wrote" : "verified", len, start);
    return 0;
}
