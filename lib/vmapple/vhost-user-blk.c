/* SPDX-License-Identifier: MIT */
/*
 * Apple's virtio-blk variant as a vhost-user back end: the protocol layer
 * (lib/vhost-user.c) in front of one request engine (virtio-blk-core.c) per
 * queue. The engines live as long as the back end, across connections; each
 * runs on its ring's thread while the ring is started.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vhost-user-blk-internal.h"
#include "virtio-blk-core.h"

#define VHOST_BLK_NAME           "vhost-user-blk"
#define VHOST_BLK_DEF_QUEUE_SIZE 1024u
/* QEMU's vhost-user-blk-pci uses 128-entry vrings unless told otherwise. */
#define VHOST_BLK_DEF_SEG_MAX 126u

struct vhost_blk_queue {
    vmapple_vhost_user_blk *be;
    uint16_t index;
    struct vm_blkq *engine;
    /* What get_stats reads from other threads, refreshed by the ring thread. */
    pthread_mutex_t stats_lock;
    vmapple_virtio_blk_stats stats;
};

struct vmapple_vhost_user_blk {
    struct vm_blk_params params;
    uint8_t config[VM_BLK_CONFIG_LEN];
    struct vm_vhu *vhu;
    uint16_t num_queues;
    struct vhost_blk_queue queues[VMAPPLE_VHOST_USER_BLK_MAX_QUEUES];
    char last_error[VM_ERROR_LEN];
};

static void snapshot(struct vhost_blk_queue *q)
{
    vmapple_virtio_blk_stats s;

    vm_blkq_get_stats(q->engine, &s);
    pthread_mutex_lock(&q->stats_lock);
    q->stats = s;
    pthread_mutex_unlock(&q->stats_lock);
}

/* Ring hooks (the ring's thread). */

static void ring_kick(void *opaque, uint16_t q)
{
    struct vhost_blk_queue *bq = &((vmapple_vhost_user_blk *)opaque)->queues[q];

    vm_blkq_notify(bq->engine);
    snapshot(bq);
}

static int ring_poll_fd(void *opaque, uint16_t q)
{
    return vm_blkq_poll_fd(((vmapple_vhost_user_blk *)opaque)->queues[q].engine);
}

static void ring_process(void *opaque, uint16_t q)
{
    struct vhost_blk_queue *bq = &((vmapple_vhost_user_blk *)opaque)->queues[q];

    vm_blkq_process(bq->engine);
    snapshot(bq);
}

static void ring_stop(void *opaque, uint16_t q, bool keep)
{
    struct vhost_blk_queue *bq = &((vmapple_vhost_user_blk *)opaque)->queues[q];

    vm_blkq_quiesce(bq->engine, keep);
    snapshot(bq);
}

static const struct vm_vhu_ring_ops vhost_blk_ring_ops = {
    .kick = ring_kick,
    .poll_fd = ring_poll_fd,
    .process = ring_process,
    .stop = ring_stop,
};

/* What the engine asks of the transport. */

static bool engine_live(void *opaque)
{
    struct vhost_blk_queue *bq = opaque;

    return vm_vhu_ring_live(bq->be->vhu, bq->index);
}

static bool engine_has_feature(void *opaque, unsigned bit)
{
    return vm_vhu_has_feature(((struct vhost_blk_queue *)opaque)->be->vhu, bit);
}

static void engine_notify(void *opaque)
{
    struct vhost_blk_queue *bq = opaque;

    vm_vhu_ring_notify(bq->be->vhu, bq->index);
}

static void engine_needs_reset(void *opaque)
{
    struct vhost_blk_queue *bq = opaque;

    vm_vhu_ring_broken(bq->be->vhu, bq->index);
}

static const struct vm_blkq_ops vhost_blk_engine_ops = {
    .live = engine_live,
    .has_feature = engine_has_feature,
    .notify = engine_notify,
    .needs_reset = engine_needs_reset,
};

/* Creation. */

#define opt_error(...) vm_error_named(VHOST_BLK_NAME, NULL, -EINVAL, __VA_ARGS__)

static int to_blk_options(const vmapple_vhost_user_blk_options *v, bool sync,
                          vmapple_virtio_blk_options *o)
{
    uint32_t qs = v->max_queue_size ? v->max_queue_size : VHOST_BLK_DEF_QUEUE_SIZE;

    if (v->num_queues > VMAPPLE_VHOST_USER_BLK_MAX_QUEUES) {
        return opt_error("option num_queues is %u: 1 to %u", v->num_queues,
                         VMAPPLE_VHOST_USER_BLK_MAX_QUEUES);
    }
    if (qs < VM_BLK_MIN_QUEUE_SIZE || qs > VM_BLK_MAX_QUEUE_SIZE || !vm_is_pow2(qs)) {
        return opt_error("option max_queue_size is %u: a power of two from %u to %u", qs,
                         VM_BLK_MIN_QUEUE_SIZE, VM_BLK_MAX_QUEUE_SIZE);
    }
    if (v->seg_max > qs - 2) {
        return opt_error("option seg_max is %u: 1 to max_queue_size - 2 (%u)", v->seg_max, qs - 2);
    }
    o->variant = v->variant;
    o->blockdev = v->blockdev;
    o->flags = v->flags;
    o->io_mode = sync ? VMAPPLE_VIRTIO_BLK_IO_SYNC : VMAPPLE_VIRTIO_BLK_IO_ASYNC;
    o->io_threads = v->io_threads;
    o->io_engine = v->io_engine;
    o->barrier_mode = v->barrier_mode;
    o->queue_size = qs;
    o->seg_max = v->seg_max ? v->seg_max : VM_MIN(VHOST_BLK_DEF_SEG_MAX, qs - 2);
    o->size_max = v->size_max;
    o->blk_size = v->blk_size;
    o->serial = v->serial;
    o->max_bounce_bytes = v->max_bounce_bytes;
    o->worker_poll_us = v->worker_poll_us;
    /* The ring's thread handles kicks and completions alike: page-cache hits finish in the kick. */
    o->complete_in_notify = 1;
    if (!o->max_bounce_bytes) {
        /* At least one request of the largest size (the engine's 16 MiB otherwise). */
        uint64_t largest = (uint64_t)o->seg_max * (o->size_max ? o->size_max : 64u << 10);
        o->max_bounce_bytes = VM_MAX(largest, 16ull << 20);
    }
    return 0;
}

int vm_vhost_user_blk_create_ex(const vmapple_host_ops *ops, void *opaque,
                                const vmapple_vhost_user_blk_options *user_opts, bool inline_sync,
                                vmapple_vhost_user_blk **out)
{
    vmapple_vhost_user_blk_options vo = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct vm_vhu_setup setup = { 0 };
    vmapple_vhost_user_blk *be;
    int ret;

    if (!out || !user_opts) {
        return opt_error("create: NULL %s (variant and blockdev have no defaults)",
                         out ? "options" : "out");
    }
    if (vm_sized_splits_field(user_opts, offsetof(vmapple_vhost_user_blk_options, blockdev),
                              sizeof(void *)) ||
        vm_sized_splits_field(user_opts, offsetof(vmapple_vhost_user_blk_options, serial),
                              sizeof(void *))) {
        return opt_error("options: size field ends inside a pointer");
    }
    ret = vm_copy_sized(&vo, sizeof(vo), user_opts, "vhost-user-blk options");
    if (ret < 0 || (ret = to_blk_options(&vo, inline_sync, &o)) < 0) {
        return ret;
    }
    be = calloc(1, sizeof(*be));
    if (!be) {
        return vm_error_named(VHOST_BLK_NAME, NULL, -ENOMEM, "out of memory");
    }
    ret = vm_blk_params_init(&be->params, &o, VHOST_BLK_NAME);
    if (ret < 0) {
        free(be);
        return ret;
    }
    vm_blockdev_ref(be->params.bd);
    be->num_queues = (uint16_t)(vo.num_queues ? vo.num_queues : 1);
    vm_blk_fill_config(&be->params, be->num_queues, be->config);

    setup.name = VHOST_BLK_NAME;
    /* MQ always: the front end takes it only when it uses several queues. */
    setup.features = vm_blk_device_features(&be->params) | (1ull << VIRTIO_BLK_F_MQ);
    setup.protocol_features = (1ull << VHU_PF_MQ) | (1ull << VHU_PF_REPLY_ACK) |
                              (1ull << VHU_PF_CONFIG) | (1ull << VHU_PF_RESET_DEVICE);
    setup.num_queues = be->num_queues;
    setup.max_queue_size = (uint16_t)be->params.opts.queue_size;
    setup.config = be->config;
    setup.config_len = VM_BLK_CONFIG_LEN;
    setup.ops = &vhost_blk_ring_ops;
    setup.opaque = be;
    setup.inline_rings = inline_sync;
    ret = vm_vhu_create(&setup, ops, opaque, &be->vhu);
    if (ret < 0) {
        vm_blockdev_unref(be->params.bd);
        free(be);
        return ret;
    }
    for (uint16_t i = 0; i < be->num_queues; i++) {
        struct vhost_blk_queue *q = &be->queues[i];
        q->be = be;
        q->index = i;
        pthread_mutex_init(&q->stats_lock, NULL);
        ret = vm_blkq_create(vm_vhu_ring_device(be->vhu, i), &be->params,
                             vm_vhu_ring_vq(be->vhu, i), &vhost_blk_engine_ops, q, &q->engine);
        if (ret < 0) {
            vmapple_vhost_user_blk_destroy(be);
            return ret;
        }
        snapshot(q);
    }
    *out = be;
    return 0;
}

VMAPPLE_API int vmapple_vhost_user_blk_create(const vmapple_host_ops *ops, void *opaque,
                                              const vmapple_vhost_user_blk_options *opts,
                                              vmapple_vhost_user_blk **out)
{
    return vm_vhost_user_blk_create_ex(ops, opaque, opts, false, out);
}

struct vm_vhu *vm_vhost_user_blk_protocol(vmapple_vhost_user_blk *be)
{
    return be->vhu;
}

VMAPPLE_API void vmapple_vhost_user_blk_destroy(vmapple_vhost_user_blk *be)
{
    if (!be) {
        return;
    }
    /* Rings stop (their threads end) before the engines they drive go away. */
    vm_vhu_destroy(be->vhu);
    for (uint16_t i = 0; i < be->num_queues; i++) {
        struct vhost_blk_queue *q = &be->queues[i];
        if (q->be) {
            vm_blkq_destroy(q->engine);
            pthread_mutex_destroy(&q->stats_lock);
        }
    }
    vm_blockdev_unref(be->params.bd);
    free(be);
}

VMAPPLE_API int vmapple_vhost_user_blk_serve(vmapple_vhost_user_blk *be, int fd)
{
    int ret;

    if (!be || fd < 0) {
        return vm_error_named(VHOST_BLK_NAME, be ? be->last_error : NULL, -EINVAL, "serve: %s",
                              be ? "negative descriptor" : "NULL back end");
    }
    ret = vm_vhu_serve(be->vhu, fd);
    if (ret == -EPROTO) {
        vm_error_named(VHOST_BLK_NAME, be->last_error, ret, "%s", vm_vhu_last_error(be->vhu));
    } else if (ret == -EBUSY) {
        vm_error_named(VHOST_BLK_NAME, be->last_error, ret,
                       "serve: another thread is serving a front end");
    }
    return ret;
}

VMAPPLE_API int vmapple_vhost_user_blk_stop(vmapple_vhost_user_blk *be)
{
    if (!be) {
        return -EINVAL;
    }
    vm_vhu_stop(be->vhu);
    return 0;
}

VMAPPLE_API int vmapple_vhost_user_blk_get_stats(vmapple_vhost_user_blk *be,
                                                 vmapple_virtio_blk_stats *stats)
{
    vmapple_virtio_blk_stats sum;
    uint32_t given;

    if (!be || !stats) {
        return vm_error_named(VHOST_BLK_NAME, be ? be->last_error : NULL, -EINVAL,
                              "get_stats: NULL %s", be ? "stats" : "back end");
    }
    given = stats->size;
    if (given < 2 * sizeof(uint32_t)) {
        return vm_error_named(VHOST_BLK_NAME, be->last_error, -EINVAL,
                              "get_stats: size field is %u; use VMAPPLE_VIRTIO_BLK_STATS_INIT",
                              given);
    }
    memset(&sum, 0, sizeof(sum));
    for (uint16_t i = 0; i < be->num_queues; i++) {
        struct vhost_blk_queue *q = &be->queues[i];
        vmapple_virtio_blk_stats s;
        pthread_mutex_lock(&q->stats_lock);
        s = q->stats;
        pthread_mutex_unlock(&q->stats_lock);
        sum.in_flight += s.in_flight;
        sum.requests += s.requests;
        sum.read_bytes += s.read_bytes;
        sum.write_bytes += s.write_bytes;
        sum.flushes += s.flushes;
        sum.barriers += s.barriers;
        sum.io_errors += s.io_errors;
        sum.unsupported += s.unsupported;
        sum.bounce_bytes += s.bounce_bytes;
        sum.bounce_peak = VM_MAX(sum.bounce_peak, s.bounce_peak);
        sum.bounced += s.bounced;
        sum.worker_polled += s.worker_polled;
        sum.inline_requests += s.inline_requests;
    }
    sum.size = (uint32_t)sizeof(sum);
    vm_fill_sized(stats, &sum, sizeof(sum));
    return 0;
}

VMAPPLE_API const char *vmapple_vhost_user_blk_last_error(const vmapple_vhost_user_blk *be)
{
    return be ? be->last_error : "NULL back end";
}
