/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memvol.h"

struct memvol *memvol_new(uint64_t capacity, bool backed)
{
    struct memvol *v = calloc(1, sizeof(*v));

    if (!v) {
        abort();
    }
    v->capacity = capacity;
    if (backed) {
        v->data = malloc(capacity ? capacity : 1);
        if (!v->data) {
            abort();
        }
        for (uint64_t i = 0; i < capacity; i++) {
            v->data[i] = memvol_pattern(i);
        }
    }
    return v;
}

void memvol_free(struct memvol *v)
{
    if (v) {
        free(v->data);
        free(v);
    }
}

static int mv_read(void *opaque, uint64_t offset, void *buf, uint64_t len)
{
    struct memvol *v = opaque;

    v->reads++;
    if (len > v->max_read_len) {
        v->max_read_len = len;
    }
    if (v->fail_reads > 0) {
        v->fail_reads--;
        return -EIO;
    }
    if (v->data) {
        memcpy(buf, v->data + offset, len);
    } else {
        uint8_t *p = buf;
        for (uint64_t i = 0; i < len; i++) {
            p[i] = memvol_pattern(offset + i);
        }
    }
    v->bytes_read += len;
    return 0;
}

static int mv_write(void *opaque, uint64_t offset, const void *buf, uint64_t len)
{
    struct memvol *v = opaque;

    v->writes++;
    if (len > v->max_write_len) {
        v->max_write_len = len;
    }
    if (v->fail_writes > 0) {
        v->fail_writes--;
        return -EIO;
    }
    if (v->data) {
        memcpy(v->data + offset, buf, len);
    }
    v->bytes_written += len;
    return 0;
}

static int mv_flush(void *opaque)
{
    struct memvol *v = opaque;

    v->flushes++;
    if (v->on_flush) {
        v->on_flush(v->on_flush_ctx);
    }
    if (v->fail_flushes > 0) {
        v->fail_flushes--;
        return -EIO;
    }
    return 0;
}

static void mv_close(void *opaque)
{
    struct memvol *v = opaque;
    v->closes++;
}

vmapple_blockdev *memvol_open(struct memvol *v, uint32_t flags)
{
    vmapple_blockdev_ops ops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options o = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_blockdev *bd = NULL;

    ops.read = mv_read;
    ops.write = mv_write;
    ops.flush = mv_flush;
    ops.close = mv_close;
    o.flags = flags;
    o.capacity = v->capacity;
    if (vmapple_blockdev_create(&ops, v, &o, &bd) != 0) {
        abort();
    }
    return bd;
}
