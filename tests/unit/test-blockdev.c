/* SPDX-License-Identifier: MIT */
/* Block backends: file (read-only, read-write, offset/length, locking) and
 * host callbacks; the internal scatter/gather, discard and zeroing paths. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "block.h"

#define FILE_SIZE (64 * 1024)

struct fixture {
    char path[64];
};

static uint8_t pattern(uint64_t off)
{
    return (uint8_t)(off * 7 + (off >> 9));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uint8_t *buf = malloc(FILE_SIZE);
    int fd;

    snprintf(f->path, sizeof(f->path), "/tmp/vmapple-bd-XXXXXX");
    fd = mkstemp(f->path);
    assert_true(fd >= 0);
    for (uint64_t i = 0; i < FILE_SIZE; i++) {
        buf[i] = pattern(i);
    }
    assert_int_equal(write(fd, buf, FILE_SIZE), FILE_SIZE);
    close(fd);
    free(buf);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    free(f);
    return 0;
}

static void file_bytes(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev *bd = NULL;
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;

    assert_int_equal(vmapple_blockdev_open_file(NULL, NULL, &bd), -EINVAL);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_blockdev_open_file("/nonexistent/x.img", NULL, &bd), -ENOENT);
    assert_non_null(strstr(vmapple_last_error(), "/nonexistent/x.img"));
    assert_int_equal(vmapple_blockdev_open_file("/tmp", NULL, &bd), -EISDIR);
    assert_int_equal(vmapple_blockdev_open_file("/dev/null", NULL, &bd), -EINVAL);

    o.offset = 100;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "offset 100 is not a multiple of 512"));
    o.offset = FILE_SIZE + 512;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "beyond the end"));
    o.offset = 512;
    o.length = FILE_SIZE;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "length"));
    o.offset = 0;
    o.length = 1000;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "not a multiple of 512"));
    o.length = 0;
    o.flags = 0x80;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "unknown flags 0x80"));
    o.flags = 0;
    o.size = 2;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), -EINVAL);
    assert_null(bd);

    /* A file whose size is not whole sectors. */
    assert_int_equal(truncate(f->path, FILE_SIZE - 1), 0);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "set option length"));

    /* NULL objects. */
    uint64_t cap;
    assert_int_equal(vmapple_blockdev_get_capacity(NULL, &cap), -EINVAL);
    assert_int_equal(vmapple_blockdev_get_features(NULL), -EINVAL);
    assert_int_equal(vmapple_blockdev_read(NULL, 0, &cap, 1), -EINVAL);
    assert_int_equal(vmapple_blockdev_write(NULL, 0, &cap, 1), -EINVAL);
    assert_int_equal(vmapple_blockdev_flush(NULL), -EINVAL);
    assert_non_null(vmapple_blockdev_last_error(NULL));
    vmapple_blockdev_release(NULL);
}

static void test_read_write_file(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev *bd;
    uint8_t buf[1024], check[1024];
    uint64_t cap;

    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_capacity(bd, &cap), 0);
    assert_int_equal(cap, FILE_SIZE);
    assert_int_equal(vmapple_blockdev_get_features(bd),
                     VMAPPLE_BLOCKDEV_CAN_WRITE | VMAPPLE_BLOCKDEV_CAN_FLUSH |
                         VMAPPLE_BLOCKDEV_CAN_DISCARD | VMAPPLE_BLOCKDEV_CAN_WRITE_ZEROES);
    assert_int_equal(vmapple_blockdev_read(bd, 4096, buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], pattern(4096 + i));
    }
    memset(buf, 0x5c, sizeof(buf));
    assert_int_equal(vmapple_blockdev_write(bd, 1000, buf, sizeof(buf)), 0);
    assert_int_equal(vmapple_blockdev_flush(bd), 0);
    file_bytes(f->path, 1000, check, sizeof(check));
    assert_memory_equal(buf, check, sizeof(buf));

    /* The last byte is in range, one past is not; nothing is transferred then. */
    assert_int_equal(vmapple_blockdev_read(bd, FILE_SIZE - 1, buf, 1), 0);
    assert_int_equal(vmapple_blockdev_read(bd, FILE_SIZE - 1, buf, 2), -ERANGE);
    assert_non_null(strstr(vmapple_blockdev_last_error(bd), "leave the volume"));
    assert_int_equal(vmapple_blockdev_write(bd, FILE_SIZE, buf, 1), -ERANGE);
    assert_int_equal(vmapple_blockdev_read(bd, UINT64_MAX, buf, 2), -ERANGE);
    assert_int_equal(vmapple_blockdev_read(bd, FILE_SIZE, buf, 0), 0);
    vmapple_blockdev_release(bd);
}

static void test_read_only_never_writes(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev *bd;
    uint8_t buf[512], check[512];
    struct iovec iov = { buf, sizeof(buf) };
    struct stat before, after;

    assert_int_equal(stat(f->path, &before), 0);
    o.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_features(bd), 0);
    assert_true(vm_blockdev_read_only(bd));
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(vmapple_blockdev_write(bd, 0, buf, sizeof(buf)), -EROFS);
    assert_int_equal(vm_blockdev_writev(bd, 0, &iov, 1), -EROFS);
    assert_int_equal(vm_blockdev_discard(bd, 0, 512), -EROFS);
    assert_int_equal(vm_blockdev_write_zeroes(bd, 0, 512, true), -EROFS);
    assert_int_equal(vmapple_blockdev_flush(bd), 0);
    vmapple_blockdev_release(bd);
    file_bytes(f->path, 0, check, sizeof(check));
    for (size_t i = 0; i < sizeof(check); i++) {
        assert_int_equal(check[i], pattern(i));
    }
    assert_int_equal(stat(f->path, &after), 0);
    assert_int_equal(before.st_mtime, after.st_mtime);
    assert_int_equal(before.st_size, after.st_size);
}

static void test_offset_and_length(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev *bd;
    uint8_t b;
    uint64_t cap;

    /* Like an untrimmed VZ aux image: the volume starts 16 KiB in. */
    o.offset = 0x4000;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_capacity(bd, &cap), 0);
    assert_int_equal(cap, FILE_SIZE - 0x4000);
    assert_int_equal(vmapple_blockdev_read(bd, 0, &b, 1), 0);
    assert_int_equal(b, pattern(0x4000));
    b = 0x99;
    assert_int_equal(vmapple_blockdev_write(bd, 1, &b, 1), 0);
    vmapple_blockdev_release(bd);
    file_bytes(f->path, 0x4001, &b, 1);
    assert_int_equal(b, 0x99);

    o.offset = 1024;
    o.length = 2048;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_capacity(bd, &cap), 0);
    assert_int_equal(cap, 2048);
    assert_int_equal(vmapple_blockdev_read(bd, 2047, &b, 1), 0);
    assert_int_equal(b, pattern(1024 + 2047));
    assert_int_equal(vmapple_blockdev_read(bd, 2048, &b, 1), -ERANGE);
    vmapple_blockdev_release(bd);
}

static void test_locking(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev_file_options ro = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev_file_options nolock = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev *a, *b, *c;

    ro.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    nolock.flags = VMAPPLE_BLOCKDEV_NO_LOCK;
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &a), 0);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &b), -EBUSY);
    assert_non_null(strstr(vmapple_last_error(), "in use"));
    assert_int_equal(vmapple_blockdev_open_file(f->path, &ro, &b), -EBUSY);
    assert_int_equal(vmapple_blockdev_open_file(f->path, &nolock, &c), 0);
    vmapple_blockdev_release(c);
    vmapple_blockdev_release(a);
    /* Readers share. */
    assert_int_equal(vmapple_blockdev_open_file(f->path, &ro, &a), 0);
    assert_int_equal(vmapple_blockdev_open_file(f->path, &ro, &b), 0);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &c), -EBUSY);
    vmapple_blockdev_release(a);
    vmapple_blockdev_release(b);
}

static void test_refcount_keeps_file_open(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev *bd, *again;
    uint8_t b;

    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &bd), 0);
    vm_blockdev_ref(bd); /* what a device does */
    vmapple_blockdev_release(bd);
    /* Still open, still locked. */
    assert_int_equal(vm_blockdev_read(bd, 0, &b, 1), 0);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &again), -EBUSY);
    vm_blockdev_unref(bd);
    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &again), 0);
    vmapple_blockdev_release(again);
}

static void test_vectors_discard_zeroes(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev *bd;
    uint8_t a[100], b[412], c[1024], out[1536];
    struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };

    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &bd), 0);
    memset(a, 1, sizeof(a));
    memset(b, 2, sizeof(b));
    memset(c, 3, sizeof(c));
    assert_int_equal(vm_blockdev_writev(bd, 8192, iov, 3), 0);
    assert_int_equal(vm_blockdev_read(bd, 8192, out, sizeof(out)), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[99], 1);
    assert_int_equal(out[100], 2);
    assert_int_equal(out[511], 2);
    assert_int_equal(out[512], 3);
    assert_int_equal(out[1535], 3);
    memset(a, 0, sizeof(a));
    assert_int_equal(vm_blockdev_readv(bd, 8192 + 1436, iov, 1), 0);
    assert_int_equal(a[0], 3);
    assert_int_equal(vm_blockdev_readv(bd, FILE_SIZE - 1000, iov, 3), -ERANGE);
    assert_int_equal(vm_blockdev_readv(bd, 0, iov, VM_BLOCK_MAX_IOV + 1), -EINVAL);

    assert_int_equal(vm_blockdev_write_zeroes(bd, 8192, 1024, false), 0);
    assert_int_equal(vm_blockdev_read(bd, 8192, out, 1536), 0);
    for (int i = 0; i < 1024; i++) {
        assert_int_equal(out[i], 0);
    }
    assert_int_equal(out[1024], 3);
    assert_int_equal(vm_blockdev_write_zeroes(bd, 16384, 4096, true), 0);
    assert_int_equal(vm_blockdev_read(bd, 16384, out, 1536), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1535], 0);
    assert_int_equal(vm_blockdev_discard(bd, 0, 4096), 0);
    assert_int_equal(vm_blockdev_discard(bd, FILE_SIZE, 1), -ERANGE);
    assert_int_equal(vm_blockdev_write_zeroes(bd, FILE_SIZE - 512, 1024, false), -ERANGE);
    assert_int_equal(vm_blockdev_fd(bd, NULL) >= 0, 1);
    vmapple_blockdev_release(bd);
}

static void test_shrunk_file_is_an_error(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev *bd;
    uint8_t buf[1024];

    assert_int_equal(vmapple_blockdev_open_file(f->path, NULL, &bd), 0);
    assert_int_equal(truncate(f->path, 4096), 0);
    /* Past the new end: never invent zeros for the guest. */
    assert_int_equal(vmapple_blockdev_read(bd, 4096, buf, 512), -EIO);
    assert_int_equal(vmapple_blockdev_read(bd, 3584, buf, 1024), -EIO);
    vmapple_blockdev_release(bd);
}

/* Host callbacks. */
struct hostdisk {
    uint8_t data[8192];
    int reads, writes, flushes, discards, zeroes, closes;
    int fail;
};

static int hd_read(void *opaque, uint64_t off, void *buf, uint64_t len)
{
    struct hostdisk *d = opaque;
    d->reads++;
    if (d->fail) {
        return d->fail;
    }
    memcpy(buf, d->data + off, len);
    return 0;
}

static int hd_write(void *opaque, uint64_t off, const void *buf, uint64_t len)
{
    struct hostdisk *d = opaque;
    d->writes++;
    memcpy(d->data + off, buf, len);
    return d->fail;
}

static int hd_flush(void *opaque)
{
    ((struct hostdisk *)opaque)->flushes++;
    return 0;
}

static int hd_discard(void *opaque, uint64_t off, uint64_t len)
{
    (void)off;
    (void)len;
    ((struct hostdisk *)opaque)->discards++;
    return 0;
}

static int hd_zeroes(void *opaque, uint64_t off, uint64_t len, int may_unmap)
{
    struct hostdisk *d = opaque;
    (void)may_unmap;
    d->zeroes++;
    memset(d->data + off, 0, len);
    return 0;
}

static void hd_close(void *opaque)
{
    ((struct hostdisk *)opaque)->closes++;
}

static void test_host_backend(void **state)
{
    struct hostdisk d = { 0 };
    vmapple_blockdev_ops ops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options o = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_blockdev *bd;
    uint8_t buf[600];
    (void)state;

    ops.read = hd_read;
    ops.write = hd_write;
    ops.flush = hd_flush;
    ops.discard = hd_discard;
    ops.write_zeroes = hd_zeroes;
    ops.close = hd_close;
    o.capacity = sizeof(d.data);
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_features(bd), 0xf);
    memset(buf, 0x42, sizeof(buf));
    assert_int_equal(vmapple_blockdev_write(bd, 100, buf, sizeof(buf)), 0);
    assert_int_equal(d.data[100], 0x42);
    assert_int_equal(d.data[699], 0x42);
    assert_int_equal(vmapple_blockdev_read(bd, 8000, buf, 192), 0);
    assert_int_equal(vmapple_blockdev_read(bd, 8000, buf, 193), -ERANGE);
    assert_int_equal(d.reads, 1); /* the out-of-range read never reached the host */
    assert_int_equal(vmapple_blockdev_flush(bd), 0);
    assert_int_equal(d.flushes, 1);
    assert_int_equal(vm_blockdev_discard(bd, 0, 512), 0);
    assert_int_equal(vm_blockdev_write_zeroes(bd, 0, 1024, false), 0);
    assert_int_equal(d.data[100], 0);
    d.fail = -EIO;
    assert_int_equal(vmapple_blockdev_read(bd, 0, buf, 1), -EIO);
    d.fail = 5; /* a positive return is a host bug: still an error */
    assert_int_equal(vmapple_blockdev_read(bd, 0, buf, 1), -EIO);
    vm_blockdev_ref(bd);
    vmapple_blockdev_release(bd);
    assert_int_equal(d.closes, 0);
    vm_blockdev_unref(bd);
    assert_int_equal(d.closes, 1);
}

static void test_host_backend_minimal(void **state)
{
    struct hostdisk d = { 0 };
    vmapple_blockdev_ops ops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options o = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_blockdev *bd;
    uint8_t b = 1;
    (void)state;

    o.capacity = 4096;
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "read is required"));
    ops.read = hd_read;
    o.capacity = 4000;
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), -EINVAL);
    o.capacity = 4096;
    o.flags = 0x100;
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), -EINVAL);
    o.flags = 0;
    /* No write callback: a read-only volume; no discard or zeroes. */
    assert_int_equal(vmapple_blockdev_create(&ops, &d, NULL, &bd), 0);
    assert_int_equal(vmapple_blockdev_get_features(bd), 0);
    vmapple_blockdev_release(bd);
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_write(bd, 0, &b, 1), -EROFS);
    assert_int_equal(d.writes, 0);
    vmapple_blockdev_release(bd);

    /* Write but READ_ONLY flag: still never written. */
    ops.write = hd_write;
    o.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), 0);
    assert_int_equal(vmapple_blockdev_write(bd, 0, &b, 1), -EROFS);
    assert_int_equal(d.writes, 0);
    vmapple_blockdev_release(bd);

    /* Write without discard/zeroes: those say ENOTSUP. */
    o.flags = 0;
    assert_int_equal(vmapple_blockdev_create(&ops, &d, &o, &bd), 0);
    assert_int_equal(vm_blockdev_discard(bd, 0, 512), -ENOTSUP);
    assert_int_equal(vm_blockdev_write_zeroes(bd, 0, 512, false), -ENOTSUP);
    assert_int_equal(vmapple_blockdev_flush(bd), 0);
    assert_int_equal(vm_blockdev_fd(bd, NULL), -1);
    vmapple_blockdev_release(bd);
}

/* RWF_NOWAIT transfers: done from the page cache, or -EAGAIN; never a partial success. */
static void test_nowait(void **state)
{
    struct fixture *f = *state;
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev_ops hops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options ho = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    struct hostdisk d = { 0 };
    vmapple_blockdev *bd;
    uint8_t buf[2048], chk[2048];
    struct iovec iov[2] = { { buf, 1024 }, { buf + 1024, 1024 } };
    int ret;

    o.offset = 4096;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), 0);
    /* The file was just written: its pages are cached. */
    assert_int_equal(vm_blockdev_readv_nowait(bd, 512, iov, 2), 0);
    for (int i = 0; i < 2048; i++) {
        assert_int_equal(buf[i], pattern(4096 + 512 + (uint64_t)i));
    }
    memset(buf, 0x3e, sizeof(buf));
    ret = vm_blockdev_writev_nowait(bd, 1024, iov, 2);
    /* Some kernels and file systems cannot write without waiting: then -EAGAIN, nothing else. */
    assert_true(ret == 0 || ret == -EAGAIN);
    if (ret == 0) {
        file_bytes(f->path, 4096 + 1024, chk, sizeof(chk));
        assert_memory_equal(chk, buf, sizeof(chk));
    }
    assert_int_equal(vm_blockdev_readv_nowait(bd, FILE_SIZE - 4096 - 1024, iov, 2), -ERANGE);
    assert_int_equal(vm_blockdev_readv_nowait(bd, 0, iov, 0), -EAGAIN);
    vmapple_blockdev_release(bd);

    o.flags = VMAPPLE_BLOCKDEV_READ_ONLY;
    assert_int_equal(vmapple_blockdev_open_file(f->path, &o, &bd), 0);
    assert_int_equal(vm_blockdev_writev_nowait(bd, 0, iov, 2), -EROFS);
    vmapple_blockdev_release(bd);

    /* Host backends cannot promise not to block: always -EAGAIN. */
    hops.read = hd_read;
    hops.write = hd_write;
    ho.capacity = 4096;
    assert_int_equal(vmapple_blockdev_create(&hops, &d, &ho, &bd), 0);
    assert_int_equal(vm_blockdev_readv_nowait(bd, 0, iov, 2), -EAGAIN);
    assert_int_equal(vm_blockdev_writev_nowait(bd, 0, iov, 2), -EAGAIN);
    assert_int_equal(d.writes, 0);
    vmapple_blockdev_release(bd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_never_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_and_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcount_keeps_file_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vectors_discard_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shrunk_file_is_an_error, setup, teardown),
        cmocka_unit_test(test_host_backend),
        cmocka_unit_test(test_host_backend_minimal),
        cmocka_unit_test_setup_teardown(test_nowait, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
