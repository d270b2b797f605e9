/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "membd.h"

static void log_op(struct membd *m, char op)
{
    size_t n = strlen(m->log);

    if (n + 1 < sizeof(m->log)) {
        m->log[n] = op;
        m->log[n + 1] = '\0';
    }
}

static int enter(struct membd *m, char op, bool holdable)
{
    pthread_mutex_lock(&m->lock);
    /* Logged when the call starts, so the log shows the order of starts. */
    log_op(m, op);
    if (holdable) {
        m->held++;
        pthread_cond_broadcast(&m->cond);
        while (m->hold) {
            pthread_cond_wait(&m->cond, &m->lock);
        }
        m->held--;
    }
    if (m->fail_errno > 0) {
        int e = m->fail_errno;
        pthread_mutex_unlock(&m->lock);
        return -e;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mb_read(void *opaque, uint64_t off, void *buf, uint64_t len)
{
    struct membd *m = opaque;
    int ret = enter(m, 'R', true);

    if (ret == 0) {
        memcpy(buf, m->data + off, len);
        pthread_mutex_lock(&m->lock);
        m->reads++;
        m->last_off = off;
        m->last_len = len;
        pthread_mutex_unlock(&m->lock);
    }
    return ret;
}

static int mb_write(void *opaque, uint64_t off, const void *buf, uint64_t len)
{
    struct membd *m = opaque;
    int ret = enter(m, 'W', true);

    if (ret == 0) {
        memcpy(m->data + off, buf, len);
        pthread_mutex_lock(&m->lock);
        m->writes++;
        m->last_off = off;
        m->last_len = len;
        pthread_mutex_unlock(&m->lock);
    }
    return ret;
}

static int mb_flush(void *opaque)
{
    struct membd *m = opaque;
    int ret = enter(m, 'F', false);

    if (ret == 0) {
        pthread_mutex_lock(&m->lock);
        m->flushes++;
        pthread_mutex_unlock(&m->lock);
    }
    return ret;
}

static int mb_discard(void *opaque, uint64_t off, uint64_t len)
{
    struct membd *m = opaque;
    int ret = enter(m, 'D', false);

    if (ret == 0) {
        pthread_mutex_lock(&m->lock);
        memset(m->data + off, 0xdd, len);
        m->discards++;
        m->last_off = off;
        m->last_len = len;
        pthread_mutex_unlock(&m->lock);
    }
    return ret;
}

static int mb_write_zeroes(void *opaque, uint64_t off, uint64_t len, int may_unmap)
{
    struct membd *m = opaque;
    int ret = enter(m, 'Z', false);

    if (ret == 0) {
        pthread_mutex_lock(&m->lock);
        memset(m->data + off, 0, len);
        m->write_zeroes++;
        m->last_off = off;
        m->last_len = len;
        m->last_unmap = may_unmap;
        pthread_mutex_unlock(&m->lock);
    }
    return ret;
}

vmapple_blockdev *membd_open(struct membd *m, uint64_t size, uint32_t flags, bool no_discard)
{
    vmapple_blockdev_ops ops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options o = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_blockdev *bd = NULL;

    memset(m, 0, sizeof(*m));
    m->data = calloc(1, size);
    m->size = size;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    ops.read = mb_read;
    ops.write = mb_write;
    ops.flush = mb_flush;
    if (!no_discard) {
        ops.discard = mb_discard;
        ops.write_zeroes = mb_write_zeroes;
    }
    o.capacity = size;
    o.flags = flags | VMAPPLE_BLOCKDEV_THREAD_SAFE;
    if (!m->data || vmapple_blockdev_create(&ops, m, &o, &bd) != 0) {
        abort();
    }
    return bd;
}

void membd_free(struct membd *m)
{
    free(m->data);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
}

void membd_hold(struct membd *m, bool hold)
{
    pthread_mutex_lock(&m->lock);
    m->hold = hold;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

bool membd_wait_held(struct membd *m, unsigned n)
{
    struct timespec ts;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&m->lock);
    while (m->held < n && ok) {
        ok = pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0;
    }
    ok = m->held >= n;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

void membd_log(struct membd *m, char *out, size_t len)
{
    pthread_mutex_lock(&m->lock);
    strncpy(out, m->log, len - 1);
    out[len - 1] = '\0';
    pthread_mutex_unlock(&m->lock);
}
