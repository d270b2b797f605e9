/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images.h"
#include "selftest.h"

#define CHUNK (1u << 20)

/* First sector of the scratch area, which runs to the end of the image. */
static uint64_t image_scratch_first(uint64_t sectors)
{
    uint64_t scratch = sectors / 8;

    if (scratch > (1u << 20) / SELFTEST_SECTOR) {
        scratch = (1u << 20) / SELFTEST_SECTOR;
    }
    return sectors - scratch;
}

static bool write_all(int fd, const void *buf, size_t len, uint64_t off, const char *path,
                      GError **error)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                        g_strerror(n < 0 ? errno : EIO));
            return false;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

bool image_create(const char *path, uint32_t kind, uint64_t bytes, uint64_t seed, bool vz_header,
                  GError **error)
{
    uint64_t sectors = bytes / SELFTEST_SECTOR, scratch_first, pattern_end;
    uint64_t base = vz_header ? IMAGE_VZ_HEADER_SIZE : 0;
    struct selftest_image_header h;
    uint8_t *buf;
    int fd;
    bool ok = false;

    if (bytes % SELFTEST_SECTOR || sectors < SELFTEST_MIN_IMAGE_SECTORS) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: an image is a multiple of 512 bytes and at least %u KiB", path,
                    SELFTEST_MIN_IMAGE_SECTORS * SELFTEST_SECTOR / 1024);
        return false;
    }
    scratch_first = image_scratch_first(sectors);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    buf = g_malloc0(CHUNK);
    if (ftruncate(fd, (off_t)(base + bytes)) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        goto out;
    }
    memset(&h, 0, sizeof(h));
    h.magic = SELFTEST_IMAGE_MAGIC;
    h.kind = kind;
    h.version = SELFTEST_VERSION;
    h.sectors = sectors;
    h.pattern_sectors = scratch_first;
    h.seed = seed;
    h.check = selftest_header_check(&h);

    /* Sector 0: the header; then the pattern, word by word, up to the scratch area. */
    pattern_end = scratch_first * SELFTEST_SECTOR;
    for (uint64_t off = 0; off < pattern_end; off += CHUNK) {
        uint64_t len = pattern_end - off < CHUNK ? pattern_end - off : CHUNK;
        for (uint64_t i = 0; i < len; i += 8) {
            uint64_t w = selftest_pattern_word(seed, (off + i) / 8);
            memcpy(buf + i, &w, 8); /* little-endian host assumed, as everywhere here */
        }
        if (off == 0) {
            memset(buf, 0, SELFTEST_SECTOR);
            memcpy(buf, &h, sizeof(h));
        }
        if (!write_all(fd, buf, len, base + off, path, error)) {
            goto out;
        }
    }
    if (fsync(fd) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        goto out;
    }
    ok = true;
out:
    g_free(buf);
    close(fd);
    return ok;
}

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
    return pread(fd, buf, len, (off_t)off) == (ssize_t)len;
}

bool image_has_vz_header(const char *path, const char **why)
{
    static const uint8_t ecid_record[7] = { 0x04, 'E', 'C', 'I', 'D', 0x02, 0x08 };
    uint8_t buf[8];
    uint64_t magic;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool found = false;

    if (fd < 0) {
        return false;
    }
    if (read_at(fd, &magic, 8, 0) && magic != SELFTEST_IMAGE_MAGIC &&
        read_at(fd, &magic, 8, IMAGE_VZ_HEADER_SIZE) && magic == SELFTEST_IMAGE_MAGIC) {
        *why = "a self-test image starts 16 KiB into the file";
        found = true;
    } else if (read_at(fd, buf, sizeof(ecid_record), 0x6c804) &&
               !memcmp(buf, ecid_record, sizeof(ecid_record))) {
        *why = "the aux volume's ECID record is at file offset 0x6c804, where untrimmed VZ aux "
               "files have it";
        found = true;
    }
    close(fd);
    return found;
}
