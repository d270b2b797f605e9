/* SPDX-License-Identifier: MIT */
/*
 * Block backends: a file (or host block device) through pread/pwrite, and
 * host callbacks. Reference counted so several devices can share a volume.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "block.h"

#define SECTOR 512u
/* Zero-fill fallback chunk for write_zeroes. */
#define ZERO_CHUNK (1u << 20)

struct vmapple_blockdev {
    int refs; /* atomic */
    uint64_t capacity;
    uint32_t features;
    char last_error[VM_ERROR_LEN];

    /* File backend. */
    int fd;
    uint64_t file_offset;
    bool is_blockdev;
    uint32_t direct_align; /* O_DIRECT: the alignment transfers need; 0: page cache */

    /* Host backend. */
    vmapple_blockdev_ops hops;
    void *opaque;
    bool serialize;
    pthread_mutex_t lock;
};

#define bd_error(bd, err, ...) \
    vm_error_named("blockdev", (bd) ? (bd)->last_error : NULL, (err), __VA_ARGS__)

static bool is_file(const vmapple_blockdev *bd)
{
    return bd->fd >= 0;
}

static int open_error(int err, const char *path)
{
    return vm_error_named("blockdev", NULL, -err, "open %s: %s", path, vmapple_strerror(-err));
}

static int lock_file(int fd, bool read_only, const char *path)
{
    struct flock fl = { 0 };

    fl.l_type = read_only ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
        return 0;
    }
    if (errno == EAGAIN || errno == EACCES) {
        return vm_error_named("blockdev", NULL, -EBUSY,
                              "%s is in use: another user holds a %s lock (flag "
                              "VMAPPLE_BLOCKDEV_NO_LOCK skips locking)",
                              path, read_only ? "write" : "read or write");
    }
    /* File systems without OFD locks: proceed unlocked. */
    return 0;
}

/*
 * The smallest alignment (512 .. 4096) at which direct reads of the volume
 * work, found by trying: a read at offset `a` into memory `a` bytes past a
 * page boundary succeeds only if both meet the file's requirement. 0 when
 * none does (no direct I/O here).
 */
static uint32_t probe_direct_align(int fd, uint64_t file_offset, uint64_t length)
{
    uint8_t *buf;
    uint32_t found = 0;

    if (posix_memalign((void **)&buf, 4096, 3 * 4096) != 0) {
        return 0;
    }
    for (uint32_t a = 512; a <= 4096 && !found; a *= 2) {
        ssize_t n;
        if (length < 2ull * a || (file_offset % a)) {
            continue;
        }
        do {
            n = pread(fd, buf + a, a, (off_t)(file_offset + a));
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)a) {
            found = a;
        }
    }
    free(buf);
    return found;
}

VMAPPLE_API int vmapple_blockdev_open_file(const char *path,
                                           const vmapple_blockdev_file_options *user_opts,
                                           vmapple_blockdev **out)
{
    vmapple_blockdev_file_options opts = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    const uint32_t known_flags =
        VMAPPLE_BLOCKDEV_READ_ONLY | VMAPPLE_BLOCKDEV_NO_LOCK | VMAPPLE_BLOCKDEV_DIRECT;
    vmapple_blockdev *bd;
    struct stat st;
    uint64_t file_size, length;
    uint32_t direct_align = 0;
    bool ro;
    int fd, ret;

    if (!path || !out) {
        return vm_error_named("blockdev", NULL, -EINVAL, "open_file: NULL %s",
                              path ? "out" : "path");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "blockdev file options");
    if (ret < 0) {
        return ret;
    }
    if (opts.flags & ~known_flags) {
        return vm_error_named("blockdev", NULL, -EINVAL,
                              "file options: unknown flags 0x%x (known: 0x%x)",
                              opts.flags & ~known_flags, known_flags);
    }
    if (opts.offset % SECTOR) {
        return vm_error_named("blockdev", NULL, -EINVAL,
                              "file options: offset %llu is not a multiple of 512",
                              (unsigned long long)opts.offset);
    }
    ro = opts.flags & VMAPPLE_BLOCKDEV_READ_ONLY;
    fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        return open_error(errno, path);
    }
    if (fstat(fd, &st) < 0) {
        ret = open_error(errno, path);
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        file_size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &file_size) < 0) {
            ret = open_error(errno, path);
            goto fail;
        }
    } else {
        ret = vm_error_named("blockdev", NULL, S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL,
                             "%s is not a regular file or block device", path);
        goto fail;
    }
    if (opts.offset > file_size) {
        ret = vm_error_named("blockdev", NULL, -EINVAL,
                             "file options: offset %llu is beyond the end of %s (%llu bytes)",
                             (unsigned long long)opts.offset, path, (unsigned long long)file_size);
        goto fail;
    }
    length = opts.length ? opts.length : file_size - opts.offset;
    if (opts.length && opts.length > file_size - opts.offset) {
        ret = vm_error_named("blockdev", NULL, -EINVAL,
                             "file options: offset %llu + length %llu exceed %s (%llu bytes)",
                             (unsigned long long)opts.offset, (unsigned long long)opts.length, path,
                             (unsigned long long)file_size);
        goto fail;
    }
    if (length % SECTOR) {
        ret = vm_error_named("blockdev", NULL, -EINVAL,
                             "%s: the volume is %llu bytes, not a multiple of 512 (set option "
                             "length to use a prefix)",
                             path, (unsigned long long)length);
        goto fail;
    }
    if (opts.flags & VMAPPLE_BLOCKDEV_DIRECT) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
            ret = vm_error_named("blockdev", NULL, -EINVAL,
                                 "flag VMAPPLE_BLOCKDEV_DIRECT: %s does not allow direct I/O "
                                 "(O_DIRECT: %s)",
                                 path, vmapple_strerror(-errno));
            goto fail;
        }
        direct_align = probe_direct_align(fd, opts.offset, length);
        if (!direct_align) {
            ret = vm_error_named("blockdev", NULL, -EINVAL,
                                 "flag VMAPPLE_BLOCKDEV_DIRECT: direct reads of %s fail at every "
                                 "alignment from 512 to 4096 bytes (or option offset %llu is not "
                                 "aligned, or the volume is smaller than 8 KiB)",
                                 path, (unsigned long long)opts.offset);
            goto fail;
        }
    }
    if (!(opts.flags & VMAPPLE_BLOCKDEV_NO_LOCK)) {
        ret = lock_file(fd, ro, path);
        if (ret < 0) {
            goto fail;
        }
    }
    bd = calloc(1, sizeof(*bd));
    if (!bd) {
        ret = vm_error_named("blockdev", NULL, -ENOMEM, "out of memory");
        goto fail;
    }
    bd->refs = 1;
    bd->fd = fd;
    bd->file_offset = opts.offset;
    bd->capacity = length;
    bd->is_blockdev = S_ISBLK(st.st_mode);
    bd->direct_align = direct_align;
    bd->features = ro ? 0
                      : VMAPPLE_BLOCKDEV_CAN_WRITE | VMAPPLE_BLOCKDEV_CAN_FLUSH |
                            VMAPPLE_BLOCKDEV_CAN_DISCARD | VMAPPLE_BLOCKDEV_CAN_WRITE_ZEROES;
    *out = bd;
    return 0;
fail:
    close(fd);
    return ret;
}

VMAPPLE_API int vmapple_blockdev_create(const vmapple_blockdev_ops *ops, void *opaque,
                                        const vmapple_blockdev_options *user_opts,
                                        vmapple_blockdev **out)
{
    vmapple_blockdev_options opts = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    const uint32_t known_flags = VMAPPLE_BLOCKDEV_READ_ONLY | VMAPPLE_BLOCKDEV_THREAD_SAFE;
    vmapple_blockdev_ops hops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev *bd;
    uint32_t given;
    int ret;

    if (!ops || !out) {
        return vm_error_named("blockdev", NULL, -EINVAL, "create: NULL %s", ops ? "out" : "ops");
    }
    if (vm_copy_ops(&hops, sizeof(hops), ops, &given) < 0) {
        return vm_error_named("blockdev", NULL, -EINVAL,
                              "blockdev ops: size field is %u; use VMAPPLE_BLOCKDEV_OPS_INIT",
                              given);
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "blockdev options");
    if (ret < 0) {
        return ret;
    }
    if (!hops.read) {
        return vm_error_named("blockdev", NULL, -EINVAL, "blockdev ops: read is required");
    }
    if (opts.flags & ~known_flags) {
        return vm_error_named("blockdev", NULL, -EINVAL,
                              "blockdev options: unknown flags 0x%x (known: 0x%x)",
                              opts.flags & ~known_flags, known_flags);
    }
    if (opts.capacity % SECTOR) {
        return vm_error_named("blockdev", NULL, -EINVAL,
                              "blockdev options: capacity %llu is not a multiple of 512",
                              (unsigned long long)opts.capacity);
    }
    bd = calloc(1, sizeof(*bd));
    if (!bd) {
        return vm_error_named("blockdev", NULL, -ENOMEM, "out of memory");
    }
    bd->refs = 1;
    bd->fd = -1;
    bd->capacity = opts.capacity;
    bd->hops = hops;
    bd->opaque = opaque;
    bd->serialize = !(opts.flags & VMAPPLE_BLOCKDEV_THREAD_SAFE);
    pthread_mutex_init(&bd->lock, NULL);
    if (hops.write && !(opts.flags & VMAPPLE_BLOCKDEV_READ_ONLY)) {
        bd->features |= VMAPPLE_BLOCKDEV_CAN_WRITE;
        if (hops.flush) {
            bd->features |= VMAPPLE_BLOCKDEV_CAN_FLUSH;
        }
        if (hops.discard) {
            bd->features |= VMAPPLE_BLOCKDEV_CAN_DISCARD;
        }
        if (hops.write_zeroes) {
            bd->features |= VMAPPLE_BLOCKDEV_CAN_WRITE_ZEROES;
        }
    }
    *out = bd;
    return 0;
}

void vm_blockdev_ref(vmapple_blockdev *bd)
{
    __atomic_fetch_add(&bd->refs, 1, __ATOMIC_RELAXED);
}

void vm_blockdev_unref(vmapple_blockdev *bd)
{
    if (!bd || __atomic_sub_fetch(&bd->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    if (is_file(bd)) {
        close(bd->fd);
    } else {
        if (bd->hops.close) {
            bd->hops.close(bd->opaque);
        }
        pthread_mutex_destroy(&bd->lock);
    }
    free(bd);
}

VMAPPLE_API void vmapple_blockdev_release(vmapple_blockdev *bd)
{
    vm_blockdev_unref(bd);
}

uint64_t vm_blockdev_capacity(const vmapple_blockdev *bd)
{
    return bd->capacity;
}

uint32_t vm_blockdev_features(const vmapple_blockdev *bd)
{
    return bd->features;
}

bool vm_blockdev_range_ok(const vmapple_blockdev *bd, uint64_t off, uint64_t len)
{
    return off <= bd->capacity && len <= bd->capacity - off;
}

uint32_t vm_blockdev_direct_align(const vmapple_blockdev *bd)
{
    return bd->direct_align;
}

int vm_blockdev_fd(const vmapple_blockdev *bd, uint64_t *file_offset)
{
    if (file_offset) {
        *file_offset = bd->file_offset;
    }
    return bd->fd;
}

/* File I/O: loop over short transfers and EINTR; a read past EOF is an error. */

static int file_rw(vmapple_blockdev *bd, bool write, uint64_t off, struct iovec *iov, int iovcnt)
{
    off_t pos = (off_t)(bd->file_offset + off);

    while (iovcnt > 0) {
        ssize_t n = write ? pwritev(bd->fd, iov, iovcnt, pos) : preadv(bd->fd, iov, iovcnt, pos);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            /* The file shrank under us: never hand the guest made-up data. */
            return -EIO;
        }
        pos += n;
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/*
 * Direct I/O whose memory is not aligned: through an aligned bounce buffer
 * (the offset and length are, the caller checked).
 */
static int file_rw_bounced(vmapple_blockdev *bd, bool write, uint64_t off, const struct iovec *iov,
                           int iovcnt, uint64_t len)
{
    struct iovec one;
    uint8_t *buf;
    uint64_t pos = 0;
    int ret;

    if (len > SIZE_MAX || posix_memalign((void **)&buf, 4096, (size_t)len) != 0) {
        return -ENOMEM;
    }
    if (write) {
        for (int i = 0; i < iovcnt; i++) {
            memcpy(buf + pos, iov[i].iov_base, iov[i].iov_len);
            pos += iov[i].iov_len;
        }
    }
    one.iov_base = buf;
    one.iov_len = (size_t)len;
    ret = file_rw(bd, write, off, &one, 1);
    if (ret == 0 && !write) {
        for (int i = 0; i < iovcnt; i++) {
            memcpy(iov[i].iov_base, buf + pos, iov[i].iov_len);
            pos += iov[i].iov_len;
        }
    }
    free(buf);
    return ret;
}

static bool iov_aligned(const struct iovec *iov, int iovcnt, uint32_t align)
{
    for (int i = 0; i < iovcnt; i++) {
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (align - 1)) {
            return false;
        }
    }
    return true;
}

static int host_rw(vmapple_blockdev *bd, bool write, uint64_t off, const struct iovec *iov,
                   int iovcnt)
{
    int ret = 0;

    if (bd->serialize) {
        pthread_mutex_lock(&bd->lock);
    }
    for (int i = 0; i < iovcnt && ret == 0; i++) {
        if (iov[i].iov_len == 0) {
            continue;
        }
        ret = write ? bd->hops.write(bd->opaque, off, iov[i].iov_base, iov[i].iov_len)
                    : bd->hops.read(bd->opaque, off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    if (bd->serialize) {
        pthread_mutex_unlock(&bd->lock);
    }
    return ret > 0 ? -EIO : ret;
}

/* The checks every vectored read or write makes first; *len: the bytes it moves. */
static int blockdev_rw_check(vmapple_blockdev *bd, bool write, uint64_t off,
                             const struct iovec *iov, int iovcnt, uint64_t *len)
{
    uint64_t total = 0;

    *len = 0;
    if (iovcnt < 0 || iovcnt > VM_BLOCK_MAX_IOV) {
        return -EINVAL;
    }
    /* A local sum: *len may alias iov, so each store would force a reload. */
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > UINT64_MAX - total) {
            return -ERANGE;
        }
        total += iov[i].iov_len;
    }
    *len = total;
    if (!vm_blockdev_range_ok(bd, off, total)) {
        return -ERANGE;
    }
    if (write && !(bd->features & VMAPPLE_BLOCKDEV_CAN_WRITE)) {
        return -EROFS;
    }
    return 0;
}

static int blockdev_rwv(vmapple_blockdev *bd, bool write, uint64_t off, const struct iovec *iov,
                        int iovcnt)
{
    struct iovec local[VM_BLOCK_MAX_IOV];
    uint64_t len;
    int ret = blockdev_rw_check(bd, write, off, iov, iovcnt, &len);

    if (ret < 0) {
        return ret;
    }
    if (len == 0) {
        return 0;
    }
    if (!is_file(bd)) {
        return host_rw(bd, write, off, iov, iovcnt);
    }
    if (bd->direct_align) {
        /* Unaligned offsets would need read-modify-write of shared blocks: refuse them. */
        if ((off | len) & (bd->direct_align - 1)) {
            return -EINVAL;
        }
        if (!iov_aligned(iov, iovcnt, bd->direct_align)) {
            return file_rw_bounced(bd, write, off, iov, iovcnt, len);
        }
    }
    memcpy(local, iov, (size_t)iovcnt * sizeof(*iov));
    return file_rw(bd, write, off, local, iovcnt);
}

int vm_blockdev_readv(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return blockdev_rwv(bd, false, off, iov, iovcnt);
}

int vm_blockdev_writev(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return blockdev_rwv(bd, true, off, iov, iovcnt);
}

static int blockdev_rwv_nowait(vmapple_blockdev *bd, bool write, uint64_t off,
                               const struct iovec *iov, int iovcnt)
{
    uint64_t len;
    ssize_t n;
    int ret;

    /* Direct I/O always goes to the disk: never "without waiting". */
    if (!is_file(bd) || bd->direct_align || iovcnt <= 0) {
        return -EAGAIN;
    }
    ret = blockdev_rw_check(bd, write, off, iov, iovcnt, &len);
    if (ret < 0) {
        return ret;
    }
    n = write ? pwritev2(bd->fd, iov, iovcnt, (off_t)(bd->file_offset + off), RWF_NOWAIT)
              : preadv2(bd->fd, iov, iovcnt, (off_t)(bd->file_offset + off), RWF_NOWAIT);
    if (n < 0) {
        /* EOPNOTSUPP/EINVAL: the kernel or file system cannot do it without waiting. */
        return (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL || errno == EINTR)
                   ? -EAGAIN
                   : -errno;
    }
    return (uint64_t)n == len ? 0 : -EAGAIN;
}

int vm_blockdev_readv_nowait(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                             int iovcnt)
{
    return blockdev_rwv_nowait(bd, false, off, iov, iovcnt);
}

int vm_blockdev_writev_nowait(vmapple_blockdev *bd, uint64_t off, const struct iovec *iov,
                              int iovcnt)
{
    return blockdev_rwv_nowait(bd, true, off, iov, iovcnt);
}

int vm_blockdev_read(vmapple_blockdev *bd, uint64_t off, void *buf, uint64_t len)
{
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    return blockdev_rwv(bd, false, off, &iov, 1);
}

int vm_blockdev_write(vmapple_blockdev *bd, uint64_t off, const void *buf, uint64_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    return blockdev_rwv(bd, true, off, &iov, 1);
}

int vm_blockdev_flush(vmapple_blockdev *bd)
{
    int ret;

    if (!(bd->features & VMAPPLE_BLOCKDEV_CAN_WRITE)) {
        return 0; /* nothing was ever written */
    }
    if (is_file(bd)) {
        return fdatasync(bd->fd) < 0 ? -errno : 0;
    }
    if (!bd->hops.flush) {
        return 0;
    }
    if (bd->serialize) {
        pthread_mutex_lock(&bd->lock);
    }
    ret = bd->hops.flush(bd->opaque);
    if (bd->serialize) {
        pthread_mutex_unlock(&bd->lock);
    }
    return ret > 0 ? -EIO : ret;
}

static int zero_fill(vmapple_blockdev *bd, uint64_t off, uint64_t len)
{
    /* Aligned so that direct I/O volumes write it without a bounce buffer. */
    static const uint8_t zeros[ZERO_CHUNK] __attribute__((aligned(4096)));

    while (len > 0) {
        uint64_t n = VM_MIN(len, (uint64_t)ZERO_CHUNK);
        int ret = vm_blockdev_write(bd, off, zeros, n);
        if (ret < 0) {
            return ret;
        }
        off += n;
        len -= n;
    }
    return 0;
}

int vm_blockdev_discard(vmapple_blockdev *bd, uint64_t off, uint64_t len)
{
    int ret;

    if (!vm_blockdev_range_ok(bd, off, len)) {
        return -ERANGE;
    }
    if (!(bd->features & VMAPPLE_BLOCKDEV_CAN_DISCARD)) {
        return (bd->features & VMAPPLE_BLOCKDEV_CAN_WRITE) ? -ENOTSUP : -EROFS;
    }
    if (len == 0) {
        return 0;
    }
    if (is_file(bd)) {
        uint64_t range[2] = { bd->file_offset + off, len };
        if (bd->is_blockdev) {
            ret = ioctl(bd->fd, BLKDISCARD, range) < 0 ? -errno : 0;
        } else {
            ret = fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)range[0],
                            (off_t)len) < 0
                      ? -errno
                      : 0;
        }
        /* Discard is a hint: contents become unspecified, keeping them is allowed. */
        return (ret == -EOPNOTSUPP || ret == -ENOTTY) ? 0 : ret;
    }
    if (bd->serialize) {
        pthread_mutex_lock(&bd->lock);
    }
    ret = bd->hops.discard(bd->opaque, off, len);
    if (bd->serialize) {
        pthread_mutex_unlock(&bd->lock);
    }
    return ret > 0 ? -EIO : ret;
}

int vm_blockdev_write_zeroes(vmapple_blockdev *bd, uint64_t off, uint64_t len, bool may_unmap)
{
    int ret;

    if (!vm_blockdev_range_ok(bd, off, len)) {
        return -ERANGE;
    }
    if (!(bd->features & VMAPPLE_BLOCKDEV_CAN_WRITE_ZEROES)) {
        return (bd->features & VMAPPLE_BLOCKDEV_CAN_WRITE) ? -ENOTSUP : -EROFS;
    }
    if (len == 0) {
        return 0;
    }
    if (is_file(bd)) {
        uint64_t range[2] = { bd->file_offset + off, len };
        if (bd->is_blockdev) {
            ret = ioctl(bd->fd, BLKZEROOUT, range) < 0 ? -errno : 0;
        } else {
            int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                 : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
            ret = fallocate(bd->fd, mode, (off_t)range[0], (off_t)len) < 0 ? -errno : 0;
        }
        if (ret == -EOPNOTSUPP || ret == -ENOTTY || ret == -EINVAL) {
            ret = zero_fill(bd, off, len);
        }
        return ret;
    }
    if (bd->serialize) {
        pthread_mutex_lock(&bd->lock);
    }
    ret = bd->hops.write_zeroes(bd->opaque, off, len, may_unmap ? 1 : 0);
    if (bd->serialize) {
        pthread_mutex_unlock(&bd->lock);
    }
    return ret > 0 ? -EIO : ret;
}

/* Public wrappers. */

VMAPPLE_API int vmapple_blockdev_get_capacity(const vmapple_blockdev *bd, uint64_t *bytes)
{
    if (!bd || !bytes) {
        return -EINVAL;
    }
    *bytes = bd->capacity;
    return 0;
}

VMAPPLE_API int vmapple_blockdev_get_features(const vmapple_blockdev *bd)
{
    return bd ? (int)bd->features : -EINVAL;
}

static int public_result(vmapple_blockdev *bd, const char *op, uint64_t off, uint64_t len, int ret)
{
    if (ret == 0) {
        return 0;
    }
    if (ret == -ERANGE) {
        return bd_error(bd, ret, "%s: %llu bytes at %llu leave the volume (%llu bytes)", op,
                        (unsigned long long)len, (unsigned long long)off,
                        (unsigned long long)bd->capacity);
    }
    return bd_error(bd, ret, "%s: %llu bytes at %llu: %s", op, (unsigned long long)len,
                    (unsigned long long)off, vmapple_strerror(ret));
}

VMAPPLE_API int vmapple_blockdev_read(vmapple_blockdev *bd, uint64_t offset, void *buf,
                                      uint64_t len)
{
    if (!bd || (!buf && len)) {
        return bd_error(bd, -EINVAL, "read: NULL argument");
    }
    return public_result(bd, "read", offset, len, vm_blockdev_read(bd, offset, buf, len));
}

VMAPPLE_API int vmapple_blockdev_write(vmapple_blockdev *bd, uint64_t offset, const void *buf,
                                       uint64_t len)
{
    if (!bd || (!buf && len)) {
        return bd_error(bd, -EINVAL, "write: NULL argument");
    }
    return public_result(bd, "write", offset, len, vm_blockdev_write(bd, offset, buf, len));
}

VMAPPLE_API int vmapple_blockdev_flush(vmapple_blockdev *bd)
{
    if (!bd) {
        return bd_error(bd, -EINVAL, "flush: NULL blockdev");
    }
    return public_result(bd, "flush", 0, 0, vm_blockdev_flush(bd));
}

VMAPPLE_API const char *vmapple_blockdev_last_error(const vmapple_blockdev *bd)
{
    return bd ? bd->last_error : "NULL blockdev";
}
