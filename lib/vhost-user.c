/* SPDX-License-Identifier: MIT */
/*
 * vhost-user back end: messages, memory table, vrings, ring threads
 * (vhost-user.h). Facts from QEMU's docs/interop/vhost-user.rst.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost-user.h"

/* A ring the front end asked to be polled (kick without a descriptor) is looked at this often. */
#define VHU_POLL_MS 1

/* Payload sizes. */
#define VHU_U64_SIZE   8u
#define VHU_STATE_SIZE 8u  /* index, num */
#define VHU_ADDR_SIZE  40u /* index, flags, desc, used, avail, log */

/* Epoll tags of a ring thread. */
enum { TAG_CTL, TAG_KICK, TAG_DONE };

struct vhu_region {
    uint64_t gpa, size, uva;
    uint8_t *host; /* the byte behind gpa */
    void *map;     /* the whole mapping */
    size_t map_len;
};

struct vhu_ring {
    struct vm_vhu *v;
    uint16_t index;
    vmapple_device dev; /* host ops translate through v->regions */
    struct vm_vq vq;

    /* Set by the front end. */
    uint32_t num; /* 0: not set */
    bool addr_set;
    uint64_t desc_uva, avail_uva, used_uva;
    uint16_t base;
    int kick_fd, call_fd, err_fd;
    bool kick_set; /* SET_VRING_KICK seen since the last stop */
    bool polling;  /* ... without a descriptor: poll the ring */
    bool enabled;

    /* Running. */
    bool running;
    bool failed; /* the device gave up on it (needs reset) */
    bool stop_keep;
    int ctl_fd;
    int epfd;
    pthread_t thread;
};

struct vm_vhu {
    struct vm_vhu_setup s;
    vmapple_host_ops host;
    void *host_opaque;
    vmapple_device logdev; /* connection-level log lines */

    int conn_fd;
    int stop_fd;
    bool serving;
    uint64_t acked_features;
    uint64_t acked_protocol;
    uint32_t nregions;
    struct vhu_region regions[VHU_MAX_REGIONS];
    struct vhu_ring rings[VHU_MAX_RINGS];
    bool sealed_warned;
    char last_error[VM_ERROR_LEN];
};

struct vhu_msg {
    uint32_t request, flags, size;
    uint8_t payload[VHU_MAX_PAYLOAD];
    int fds[VHU_MAX_FDS];
    unsigned nfds;
};

static const char *const request_names[VHU_REQUEST_MAX] = {
    [VHU_GET_FEATURES] = "GET_FEATURES",
    [VHU_SET_FEATURES] = "SET_FEATURES",
    [VHU_SET_OWNER] = "SET_OWNER",
    [VHU_RESET_OWNER] = "RESET_OWNER",
    [VHU_SET_MEM_TABLE] = "SET_MEM_TABLE",
    [VHU_SET_LOG_BASE] = "SET_LOG_BASE",
    [VHU_SET_LOG_FD] = "SET_LOG_FD",
    [VHU_SET_VRING_NUM] = "SET_VRING_NUM",
    [VHU_SET_VRING_ADDR] = "SET_VRING_ADDR",
    [VHU_SET_VRING_BASE] = "SET_VRING_BASE",
    [VHU_GET_VRING_BASE] = "GET_VRING_BASE",
    [VHU_SET_VRING_KICK] = "SET_VRING_KICK",
    [VHU_SET_VRING_CALL] = "SET_VRING_CALL",
    [VHU_SET_VRING_ERR] = "SET_VRING_ERR",
    [VHU_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
    [VHU_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
    [VHU_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
    [VHU_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
    [19] = "SEND_RARP",
    [20] = "NET_SET_MTU",
    [21] = "SET_BACKEND_REQ_FD",
    [22] = "IOTLB_MSG",
    [23] = "SET_VRING_ENDIAN",
    [VHU_GET_CONFIG] = "GET_CONFIG",
    [VHU_SET_CONFIG] = "SET_CONFIG",
    [26] = "CREATE_CRYPTO_SESSION",
    [27] = "CLOSE_CRYPTO_SESSION",
    [28] = "POSTCOPY_ADVISE",
    [29] = "POSTCOPY_LISTEN",
    [30] = "POSTCOPY_END",
    [31] = "GET_INFLIGHT_FD",
    [32] = "SET_INFLIGHT_FD",
    [33] = "GPU_SET_SOCKET",
    [VHU_RESET_DEVICE] = "RESET_DEVICE",
    [35] = "VRING_KICK",
    [36] = "GET_MAX_MEM_SLOTS",
    [37] = "ADD_MEM_REG",
    [38] = "REM_MEM_REG",
    [39] = "SET_STATUS",
    [40] = "GET_STATUS",
};

/* What this layer implements; a device offers a subset. */
#define VHU_PF_IMPLEMENTED                                                        \
    ((1ull << VHU_PF_MQ) | (1ull << VHU_PF_REPLY_ACK) | (1ull << VHU_PF_CONFIG) | \
     (1ull << VHU_PF_RESET_DEVICE))

static const char *request_name(uint32_t request)
{
    return request < VHU_REQUEST_MAX && request_names[request] ? request_names[request]
                                                               : "unknown request";
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* The message was malformed: say why (one log line) and make the caller close. */
__attribute__((format(printf, 3, 4))) static int
proto_error(struct vm_vhu *v, const struct vhu_msg *m, const char *fmt, ...)
{
    char why[VM_ERROR_LEN - 64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (m) {
        snprintf(v->last_error, sizeof(v->last_error), "%s (%u): %s", request_name(m->request),
                 m->request, why);
    } else {
        snprintf(v->last_error, sizeof(v->last_error), "%s", why);
    }
    vm_log(&v->logdev, VMAPPLE_LOG_ERROR, "closing the connection to the front end: %s",
           v->last_error);
    return -EPROTO;
}

/* Guest memory through the memory table. */

static const struct vhu_region *find_gpa(const struct vm_vhu *v, uint64_t gpa)
{
    for (uint32_t i = 0; i < v->nregions; i++) {
        const struct vhu_region *r = &v->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            return r;
        }
    }
    return NULL;
}

/* Host pointer for [gpa, gpa + len) if one region holds all of it. */
static uint8_t *gpa_ptr(const struct vm_vhu *v, uint64_t gpa, uint64_t len)
{
    const struct vhu_region *r = find_gpa(v, gpa);

    if (!r || len > r->size - (gpa - r->gpa)) {
        return NULL;
    }
    return r->host + (gpa - r->gpa);
}

/* The guest address of front-end user address `uva` if one region holds [uva, uva + len). */
static bool uva_to_gpa(const struct vm_vhu *v, uint64_t uva, uint64_t len, uint64_t *gpa)
{
    for (uint32_t i = 0; i < v->nregions; i++) {
        const struct vhu_region *r = &v->regions[i];
        if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva)) {
            *gpa = r->gpa + (uva - r->uva);
            return true;
        }
    }
    return false;
}

/* Copy, with naturally aligned 2/4/8-byte accesses done as one load or store (host.h). */
static void copy_in(void *dst, const uint8_t *src, uint64_t len)
{
    if (len == 2 && !((uintptr_t)src & 1)) {
        uint16_t x = __atomic_load_n((const uint16_t *)(const void *)src, __ATOMIC_RELAXED);
        memcpy(dst, &x, 2);
    } else if (len == 4 && !((uintptr_t)src & 3)) {
        uint32_t x = __atomic_load_n((const uint32_t *)(const void *)src, __ATOMIC_RELAXED);
        memcpy(dst, &x, 4);
    } else if (len == 8 && !((uintptr_t)src & 7)) {
        uint64_t x = __atomic_load_n((const uint64_t *)(const void *)src, __ATOMIC_RELAXED);
        memcpy(dst, &x, 8);
    } else {
        memcpy(dst, src, len);
    }
}

static void copy_out(uint8_t *dst, const void *src, uint64_t len)
{
    if (len == 2 && !((uintptr_t)dst & 1)) {
        uint16_t x;
        memcpy(&x, src, 2);
        __atomic_store_n((uint16_t *)(void *)dst, x, __ATOMIC_RELAXED);
    } else if (len == 4 && !((uintptr_t)dst & 3)) {
        uint32_t x;
        memcpy(&x, src, 4);
        __atomic_store_n((uint32_t *)(void *)dst, x, __ATOMIC_RELAXED);
    } else if (len == 8 && !((uintptr_t)dst & 7)) {
        uint64_t x;
        memcpy(&x, src, 8);
        __atomic_store_n((uint64_t *)(void *)dst, x, __ATOMIC_RELAXED);
    } else {
        memcpy(dst, src, len);
    }
}

static int ring_mem_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    const struct vm_vhu *v = ((struct vhu_ring *)opaque)->v;
    uint8_t *p = buf;

    while (len > 0) {
        const struct vhu_region *r = find_gpa(v, gpa);
        uint64_t n;
        if (!r) {
            return -EFAULT;
        }
        n = VM_MIN(len, r->size - (gpa - r->gpa));
        copy_in(p, r->host + (gpa - r->gpa), n);
        p += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

static int ring_mem_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    const struct vm_vhu *v = ((struct vhu_ring *)opaque)->v;
    const uint8_t *p = buf;

    while (len > 0) {
        const struct vhu_region *r = find_gpa(v, gpa);
        uint64_t n;
        if (!r) {
            return -EFAULT;
        }
        n = VM_MIN(len, r->size - (gpa - r->gpa));
        copy_out(r->host + (gpa - r->gpa), p, n);
        p += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

static void *ring_mem_map(void *opaque, uint64_t gpa, uint64_t len, int writable,
                          uint64_t *mapped_len)
{
    const struct vm_vhu *v = ((struct vhu_ring *)opaque)->v;
    const struct vhu_region *r = find_gpa(v, gpa);

    (void)writable; /* every region is mapped read-write */
    if (!r) {
        return NULL;
    }
    *mapped_len = VM_MIN(len, r->size - (gpa - r->gpa));
    return r->host + (gpa - r->gpa);
}

static void forward_log(struct vm_vhu *v, int level, const char *message)
{
    if (v->host.log) {
        v->host.log(v->host_opaque, level, message);
    }
}

static void ring_log(void *opaque, int level, const char *message)
{
    forward_log(((struct vhu_ring *)opaque)->v, level, message);
}

static void conn_log(void *opaque, int level, const char *message)
{
    forward_log(opaque, level, message);
}

/* The ring and connection "devices" only carry host ops, names and rate limits. */
static const struct vmapple_device_class vhu_class = {
    .name = "vhost-user",
};

/* Rings. */

static void ring_forget(struct vhu_ring *r)
{
    r->num = 0;
    r->addr_set = false;
    r->desc_uva = r->avail_uva = r->used_uva = 0;
    r->base = 0;
    close_fd(&r->kick_fd);
    close_fd(&r->call_fd);
    close_fd(&r->err_fd);
    r->kick_set = r->polling = false;
    r->enabled = false;
    r->failed = false;
}

static bool ring_ready(const struct vm_vhu *v, const struct vhu_ring *r)
{
    return v->nregions > 0 && r->num && r->addr_set && r->kick_set && r->enabled;
}

static void *ring_main(void *arg)
{
    struct vhu_ring *r = arg;
    struct vm_vhu *v = r->v;
    const struct vm_vhu_ring_ops *ops = v->s.ops;

    ops->kick(v->s.opaque, r->index);
    for (;;) {
        struct epoll_event ev[3];
        bool stop = false, kicked = false;
        int n = epoll_wait(r->epfd, ev, 3, r->polling ? VHU_POLL_MS : -1);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            vm_log(&r->dev, VMAPPLE_LOG_ERROR, "epoll_wait: %s; the ring stops",
                   vmapple_strerror(-errno));
            break;
        }
        if (n == 0) {
            ops->kick(v->s.opaque, r->index);
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint8_t drain[64];
            ssize_t got;
            switch (ev[i].data.u32) {
            case TAG_CTL:
                stop = true;
                break;
            case TAG_KICK:
                /* Non-blocking; an eventfd is reset by one read, a pipe drained in steps. */
                got = read(r->kick_fd, drain, sizeof(drain));
                /* 0: a pipe whose writer closed; it would wake us forever. */
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    vm_log(&r->dev, VMAPPLE_LOG_ERROR, "kick descriptor: %s; now polling",
                           got == 0 ? "closed by the front end" : vmapple_strerror(-errno));
                    epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->kick_fd, NULL);
                    r->polling = true;
                }
                kicked = true;
                break;
            default:
                ops->process(v->s.opaque, r->index);
                break;
            }
        }
        if (stop) {
            break;
        }
        if (kicked) {
            ops->kick(v->s.opaque, r->index);
        }
    }
    ops->stop(v->s.opaque, r->index, r->stop_keep);
    return NULL;
}

static int epoll_add(int epfd, int fd, uint32_t tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int start_thread(struct vm_vhu *v, struct vhu_ring *r)
{
    int done_fd = v->s.ops->poll_fd(v->s.opaque, r->index);
    sigset_t all, old;
    int ret;

    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->ctl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->epfd < 0 || r->ctl_fd < 0) {
        ret = -errno;
        goto fail;
    }
    if ((ret = epoll_add(r->epfd, r->ctl_fd, TAG_CTL)) < 0 ||
        (done_fd >= 0 && (ret = epoll_add(r->epfd, done_fd, TAG_DONE)) < 0)) {
        goto fail;
    }
    if (r->kick_fd >= 0 && epoll_add(r->epfd, r->kick_fd, TAG_KICK) < 0) {
        /* Checked when it arrived; should it still fail, poll instead of refusing. */
        r->polling = true;
    }
    /* Signals stay with the host's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&r->thread, NULL, ring_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret == 0) {
        return 0;
    }
fail:
    close_fd(&r->epfd);
    close_fd(&r->ctl_fd);
    vm_log(&r->dev, VMAPPLE_LOG_ERROR, "cannot start the ring thread: %s", vmapple_strerror(ret));
    return ret;
}

/* Set up the virtqueue from what the front end sent and start serving it. */
static int ring_start(struct vm_vhu *v, struct vhu_ring *r, const struct vhu_msg *m)
{
    uint64_t desc, avail, used;
    const char *why;
    uint16_t idx;
    int ret;

    if (r->running || !ring_ready(v, r)) {
        return 0;
    }
    if (!uva_to_gpa(v, r->desc_uva, vm_vq_desc_bytes((uint16_t)r->num), &desc) ||
        !uva_to_gpa(v, r->avail_uva, vm_vq_avail_bytes((uint16_t)r->num), &avail) ||
        !uva_to_gpa(v, r->used_uva, vm_vq_used_bytes((uint16_t)r->num), &used)) {
        return proto_error(v, m, "ring %u of %u entries is not inside the memory table", r->index,
                           r->num);
    }
    if (vm_vq_check_layout((uint16_t)r->num, desc, avail, used, &why) < 0) {
        return proto_error(v, m, "ring %u: %s", r->index, why);
    }
    vm_vq_setup(&r->vq, (uint16_t)r->num, desc, avail, used);
    vm_vq_set_features(&r->vq, vm_vhu_has_feature(v, VIRTIO_F_INDIRECT_DESC),
                       vm_vhu_has_feature(v, VIRTIO_F_EVENT_IDX));
    /* Resume where the front end says the driver is, and where the used ring is. */
    vm_vq_set_last_avail(&r->vq, (uint16_t)r->base);
    /* copy_in: the front end's region offset may leave the index unaligned here. */
    copy_in(&idx, gpa_ptr(v, used + 2, 2), 2);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    r->vq.used_idx = r->vq.published_used = idx;
    if (r->vq.used_idx != r->base) {
        vm_log(&r->dev, VMAPPLE_LOG_INFO,
               "starting at available index %u with used index %u: %u requests of the "
               "previous owner were never completed",
               r->base, r->vq.used_idx, (uint16_t)(r->base - r->vq.used_idx));
    }
    r->failed = false;
    r->running = true;
    if (v->s.inline_rings) {
        return 0;
    }
    ret = start_thread(v, r);
    if (ret < 0) {
        r->running = false;
        vm_vq_reset(&r->vq);
        return proto_error(v, m, "ring %u cannot run: %s", r->index, vmapple_strerror(ret));
    }
    return 0;
}

/* Stop serving ring r (see vm_vhu_ring_ops.stop for `keep`); remember where it got to. */
static void ring_stop(struct vm_vhu *v, struct vhu_ring *r, bool keep)
{
    if (!r->running) {
        return;
    }
    r->stop_keep = keep;
    if (v->s.inline_rings) {
        v->s.ops->stop(v->s.opaque, r->index, keep);
    } else {
        uint64_t one = 1;
        ssize_t n = write(r->ctl_fd, &one, sizeof(one));
        (void)n;
        pthread_join(r->thread, NULL);
        close_fd(&r->epfd);
        close_fd(&r->ctl_fd);
    }
    r->base = r->vq.last_avail;
    vm_vq_reset(&r->vq);
    r->running = false;
}

static void stop_all(struct vm_vhu *v, bool keep)
{
    for (uint16_t i = 0; i < v->s.num_queues; i++) {
        ring_stop(v, &v->rings[i], keep);
    }
}

static int start_all(struct vm_vhu *v, const struct vhu_msg *m)
{
    for (uint16_t i = 0; i < v->s.num_queues; i++) {
        int ret = ring_start(v, &v->rings[i], m);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* Accessors for the device. */

vmapple_device *vm_vhu_ring_device(struct vm_vhu *v, uint16_t q)
{
    return &v->rings[q].dev;
}

struct vm_vq *vm_vhu_ring_vq(struct vm_vhu *v, uint16_t q)
{
    return &v->rings[q].vq;
}

bool vm_vhu_ring_live(struct vm_vhu *v, uint16_t q)
{
    const struct vhu_ring *r = &v->rings[q];

    return r->running && r->enabled && !r->failed;
}

bool vm_vhu_has_feature(struct vm_vhu *v, unsigned bit)
{
    return bit < 64 && ((v->acked_features >> bit) & 1);
}

static void signal_fd(int fd)
{
    uint64_t one = 1;

    /* Non-blocking: a front end that never reads cannot stall the ring. */
    if (fd >= 0) {
        ssize_t n = write(fd, &one, sizeof(one));
        (void)n;
    }
}

void vm_vhu_ring_notify(struct vm_vhu *v, uint16_t q)
{
    signal_fd(v->rings[q].call_fd);
}

void vm_vhu_ring_broken(struct vm_vhu *v, uint16_t q)
{
    struct vhu_ring *r = &v->rings[q];

    if (!r->failed) {
        r->failed = true;
        vm_log_ratelimited(&r->dev, VMAPPLE_LOG_GUEST_ERROR,
                           "the driver broke the rules of the ring; it stops until set up again");
        signal_fd(r->err_fd);
    }
}

/* Replies. */

static int send_all(struct vm_vhu *v, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(v->conn_fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                struct pollfd pfd = { v->conn_fd, POLLOUT, 0 };
                poll(&pfd, 1, 1000);
                continue;
            }
            return proto_error(v, NULL, "sending a reply: %s", vmapple_strerror(-errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int reply(struct vm_vhu *v, const struct vhu_msg *m, const void *payload, uint32_t size)
{
    uint8_t buf[VHU_HDR_SIZE + VHU_CONFIG_HDR_SIZE + VHU_MAX_CONFIG_SIZE];
    uint32_t flags = VHU_VERSION | VHU_FLAG_REPLY;

    if (size > sizeof(buf) - VHU_HDR_SIZE) {
        return proto_error(v, m, "internal: reply of %u bytes", size);
    }
    memcpy(buf, &m->request, 4);
    memcpy(buf + 4, &flags, 4);
    memcpy(buf + 8, &size, 4);
    memcpy(buf + VHU_HDR_SIZE, payload, size);
    return send_all(v, buf, VHU_HDR_SIZE + size);
}

static int reply_u64(struct vm_vhu *v, const struct vhu_msg *m, uint64_t value)
{
    return reply(v, m, &value, sizeof(value));
}

/* Message checks. */

static int expect(struct vm_vhu *v, const struct vhu_msg *m, uint32_t size, unsigned nfds)
{
    if (m->size != size) {
        return proto_error(v, m, "payload of %u bytes, expected %u", m->size, size);
    }
    if (m->nfds != nfds) {
        return proto_error(v, m, "%u file descriptors attached, expected %u", m->nfds, nfds);
    }
    return 0;
}

static uint32_t ld32(const struct vhu_msg *m, unsigned off)
{
    uint32_t x;
    memcpy(&x, m->payload + off, 4);
    return x;
}

static uint64_t ld64(const struct vhu_msg *m, unsigned off)
{
    uint64_t x;
    memcpy(&x, m->payload + off, 8);
    return x;
}

/* The ring index of a vring message, checked. */
static int ring_index(struct vm_vhu *v, const struct vhu_msg *m, uint64_t index,
                      struct vhu_ring **out)
{
    if (index >= v->s.num_queues) {
        return proto_error(v, m, "ring index %llu, the device has %u", (unsigned long long)index,
                           v->s.num_queues);
    }
    *out = &v->rings[index];
    return 0;
}

/* Handlers. */

static int on_set_features(struct vm_vhu *v, const struct vhu_msg *m)
{
    uint64_t offered = v->s.features | (1ull << VHU_F_PROTOCOL_FEATURES);
    uint64_t f = ld64(m, 0);

    if (f & ~offered) {
        return proto_error(v, m, "features 0x%llx were not offered (offered 0x%llx)",
                           (unsigned long long)(f & ~offered), (unsigned long long)offered);
    }
    stop_all(v, true);
    v->acked_features = f;
    if (!(f & (1ull << VHU_F_PROTOCOL_FEATURES))) {
        /* Without protocol features rings are enabled from the start. */
        for (uint16_t i = 0; i < v->s.num_queues; i++) {
            v->rings[i].enabled = true;
        }
    }
    return start_all(v, m);
}

static void unmap_regions(struct vhu_region *regions, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (regions[i].map) {
            munmap(regions[i].map, regions[i].map_len);
        }
        memset(&regions[i], 0, sizeof(regions[i]));
    }
}

static int map_region(struct vm_vhu *v, const struct vhu_msg *m, uint32_t i, int fd,
                      struct vhu_region *out)
{
    uint64_t gpa = ld64(m, 8 + i * VHU_REGION_DESC_SIZE);
    uint64_t size = ld64(m, 16 + i * VHU_REGION_DESC_SIZE);
    uint64_t uva = ld64(m, 24 + i * VHU_REGION_DESC_SIZE);
    uint64_t off = ld64(m, 32 + i * VHU_REGION_DESC_SIZE);
    uint64_t align, map_off;
    struct stat st;
    void *p;

    if (size == 0) {
        return proto_error(v, m, "region %u is empty", i);
    }
    if (!vm_range_ok(gpa, size) || !vm_range_ok(uva, size) || off > UINT64_MAX - size) {
        return proto_error(v, m,
                           "region %u (guest 0x%llx, user 0x%llx, offset 0x%llx, 0x%llx bytes) "
                           "wraps the address space",
                           i, (unsigned long long)gpa, (unsigned long long)uva,
                           (unsigned long long)off, (unsigned long long)size);
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        return proto_error(v, m, "region %u: the descriptor is not a shared-memory file", i);
    }
    if ((uint64_t)st.st_size < off + size) {
        return proto_error(
            v, m, "region %u: 0x%llx bytes at offset 0x%llx do not fit the file's 0x%llx", i,
            (unsigned long long)size, (unsigned long long)off, (unsigned long long)st.st_size);
    }
    /* hugetlbfs files report their page size here; mappings must start on one. */
    align = st.st_blksize > 0 && !(st.st_blksize & (st.st_blksize - 1)) ? (uint64_t)st.st_blksize
                                                                        : 4096;
    align = VM_MAX(align, (uint64_t)sysconf(_SC_PAGESIZE));
    map_off = off & ~(align - 1);
    if (size + (off - map_off) > SIZE_MAX) {
        return proto_error(v, m, "region %u of 0x%llx bytes cannot be mapped here", i,
                           (unsigned long long)size);
    }
    out->map_len = (size_t)(size + (off - map_off));
    p = mmap(NULL, out->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
             (off_t)map_off);
    if (p == MAP_FAILED) {
        out->map_len = 0;
        return proto_error(v, m, "region %u: mmap of 0x%llx bytes at 0x%llx: %s", i,
                           (unsigned long long)size, (unsigned long long)map_off,
                           vmapple_strerror(-errno));
    }
    out->map = p;
    out->host = (uint8_t *)p + (off - map_off);
    out->gpa = gpa;
    out->size = size;
    out->uva = uva;
#ifdef F_GET_SEALS
    {
        int seals = fcntl(fd, F_GET_SEALS);
        if ((seals < 0 || !(seals & F_SEAL_SHRINK)) && !v->sealed_warned) {
            /* We do not seal the front end's file for it; a truncation would raise SIGBUS here. */
            v->sealed_warned = true;
            vm_log(&v->logdev, VMAPPLE_LOG_WARNING,
                   "guest memory region %u is not sealed against shrinking (use a sealed "
                   "memfd, e.g. QEMU's memory-backend-memfd with seal=on): a front end that "
                   "truncates it can crash the back end",
                   i);
        }
    }
#endif
    return 0;
}

/* Lengths are non-zero; a range may end exactly at 2^64, so compare last bytes. */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a <= b + (blen - 1) && b <= a + (alen - 1);
}

static int on_set_mem_table(struct vm_vhu *v, struct vhu_msg *m)
{
    struct vhu_region fresh[VHU_MAX_REGIONS];
    uint32_t n;
    int ret = 0;

    memset(fresh, 0, sizeof(fresh));
    if (m->size < 8) {
        return proto_error(v, m, "payload of %u bytes, at least 8 expected", m->size);
    }
    n = ld32(m, 0);
    if (n == 0 || n > VHU_MAX_REGIONS) {
        return proto_error(v, m, "%u regions, 1 to %u allowed", n, VHU_MAX_REGIONS);
    }
    ret = expect(v, m, 8 + n * VHU_REGION_DESC_SIZE, n);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < n && ret == 0; i++) {
        ret = map_region(v, m, i, m->fds[i], &fresh[i]);
        for (uint32_t j = 0; j < i && ret == 0; j++) {
            if (overlaps(fresh[i].gpa, fresh[i].size, fresh[j].gpa, fresh[j].size) ||
                overlaps(fresh[i].uva, fresh[i].size, fresh[j].uva, fresh[j].size)) {
                ret = proto_error(v, m, "regions %u and %u overlap", j, i);
            }
        }
    }
    if (ret < 0) {
        unmap_regions(fresh, n);
        return ret;
    }
    /* Nothing in flight may point into the old mappings. */
    stop_all(v, true);
    unmap_regions(v->regions, v->nregions);
    memcpy(v->regions, fresh, sizeof(fresh));
    v->nregions = n;
    return start_all(v, m);
}

static int on_vring_state(struct vm_vhu *v, struct vhu_msg *m)
{
    struct vhu_ring *r = NULL;
    uint32_t num;
    int ret = expect(v, m, VHU_STATE_SIZE, 0);

    if (ret < 0 || (ret = ring_index(v, m, ld32(m, 0), &r)) < 0) {
        return ret;
    }
    num = ld32(m, 4);
    switch (m->request) {
    case VHU_SET_VRING_NUM:
        if (!vm_is_pow2(num) || num > v->s.max_queue_size) {
            return proto_error(v, m, "ring %u: size %u is not a power of two up to %u", r->index,
                               num, v->s.max_queue_size);
        }
        ring_stop(v, r, true);
        r->num = num;
        break;
    case VHU_SET_VRING_BASE:
        if (num > UINT16_MAX) {
            return proto_error(v, m, "ring %u: base %u does not fit a split ring's 16 bits",
                               r->index, num);
        }
        ring_stop(v, r, true);
        r->base = (uint16_t)num;
        break;
    case VHU_GET_VRING_BASE: {
        uint32_t state[2];
        /* Everything taken from the ring is completed before the front end hears where it is. */
        ring_stop(v, r, true);
        close_fd(&r->kick_fd);
        r->kick_set = r->polling = false;
        state[0] = r->index;
        state[1] = r->base;
        return reply(v, m, state, sizeof(state));
    }
    default: /* VHU_SET_VRING_ENABLE */
        if (num > 1) {
            return proto_error(v, m, "ring %u: enable is %u, 0 or 1", r->index, num);
        }
        if (!num) {
            ring_stop(v, r, true);
        }
        if (r->enabled != (num != 0)) {
            r->enabled = num != 0; /* never written while the ring runs */
        }
        break;
    }
    return ring_start(v, r, m);
}

static int on_vring_addr(struct vm_vhu *v, struct vhu_msg *m)
{
    struct vhu_ring *r = NULL;
    uint32_t flags;
    int ret = expect(v, m, VHU_ADDR_SIZE, 0);

    if (ret < 0 || (ret = ring_index(v, m, ld32(m, 0), &r)) < 0) {
        return ret;
    }
    flags = ld32(m, 4);
    if (flags) {
        /* Only VHOST_VRING_F_LOG exists, and logging was not offered. */
        return proto_error(v, m, "ring %u: flags 0x%x (dirty logging was not offered)", r->index,
                           flags);
    }
    ring_stop(v, r, true);
    r->desc_uva = ld64(m, 8);
    r->used_uva = ld64(m, 16);
    r->avail_uva = ld64(m, 24);
    r->addr_set = true;
    return ring_start(v, r, m);
}

static int on_vring_fd(struct vm_vhu *v, struct vhu_msg *m)
{
    struct vhu_ring *r = NULL;
    uint64_t x;
    bool nofd;
    int ret, *slot, fd = -1;

    if (m->size != VHU_U64_SIZE) {
        return proto_error(v, m, "payload of %u bytes, expected 8", m->size);
    }
    x = ld64(m, 0);
    if (x & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD)) {
        return proto_error(v, m, "value 0x%llx has bits beyond the index and the no-fd flag",
                           (unsigned long long)x);
    }
    nofd = x & VHU_VRING_NOFD;
    ret = expect(v, m, VHU_U64_SIZE, nofd ? 0 : 1);
    if (ret < 0 || (ret = ring_index(v, m, x & VHU_VRING_IDX_MASK, &r)) < 0) {
        return ret;
    }
    if (!nofd) {
        struct stat st;
        int fl;
        fd = m->fds[0];
        if (fstat(fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
            return proto_error(v, m, "ring %u: the descriptor is not an eventfd or pipe", r->index);
        }
        /* Never block on the front end's descriptor (its flags are the front end's too). */
        fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            return proto_error(v, m, "ring %u: cannot make the descriptor non-blocking", r->index);
        }
        if (m->request == VHU_SET_VRING_KICK) {
            struct epoll_event ev = { .events = EPOLLIN };
            int probe = epoll_create1(EPOLL_CLOEXEC);
            bool ok = probe >= 0 && epoll_ctl(probe, EPOLL_CTL_ADD, fd, &ev) == 0;
            if (probe >= 0) {
                close(probe);
            }
            if (!ok) {
                return proto_error(v, m, "ring %u: the kick descriptor cannot be polled", r->index);
            }
        }
        m->fds[0] = -1; /* ours now */
    }
    ring_stop(v, r, true);
    slot = m->request == VHU_SET_VRING_KICK   ? &r->kick_fd
           : m->request == VHU_SET_VRING_CALL ? &r->call_fd
                                              : &r->err_fd;
    close_fd(slot);
    *slot = fd;
    if (m->request == VHU_SET_VRING_KICK) {
        r->kick_set = true;
        r->polling = nofd;
    }
    return ring_start(v, r, m);
}

static int on_config(struct vm_vhu *v, struct vhu_msg *m, bool *refused)
{
    uint8_t out[VHU_CONFIG_HDR_SIZE + VHU_MAX_CONFIG_SIZE];
    uint32_t off, size, flags;

    if (m->nfds || m->size < VHU_CONFIG_HDR_SIZE) {
        return proto_error(v, m, "payload of %u bytes and %u descriptors", m->size, m->nfds);
    }
    off = ld32(m, 0);
    size = ld32(m, 4);
    flags = ld32(m, 8);
    if (size > VHU_MAX_CONFIG_SIZE || off > VHU_MAX_CONFIG_SIZE - size ||
        m->size != VHU_CONFIG_HDR_SIZE + size) {
        return proto_error(v, m,
                           "%u bytes at offset %u in a payload of %u bytes (the configuration "
                           "space is %u bytes)",
                           size, off, m->size, VHU_MAX_CONFIG_SIZE);
    }
    if (flags > 1) {
        return proto_error(v, m, "flags %u, 0 (driver write) or 1 (migration)", flags);
    }
    if (m->request == VHU_GET_CONFIG) {
        memcpy(out, m->payload, VHU_CONFIG_HDR_SIZE);
        memset(out + VHU_CONFIG_HDR_SIZE, 0, size);
        if (off < v->s.config_len) {
            memcpy(out + VHU_CONFIG_HDR_SIZE, v->s.config + off,
                   VM_MIN(size, v->s.config_len - off));
        }
        return reply(v, m, out, VHU_CONFIG_HDR_SIZE + size);
    }
    if (flags == 0) {
        /* No field of this device's configuration is writable by the driver. */
        vm_log_ratelimited(&v->logdev, VMAPPLE_LOG_GUEST_ERROR,
                           "SET_CONFIG of %u bytes at %u refused: the configuration is read-only",
                           size, off);
        *refused = true;
    }
    return 0;
}

static int on_reset(struct vm_vhu *v, bool device)
{
    /* Like a virtio reset: completions still in flight go nowhere. */
    stop_all(v, false);
    for (uint16_t i = 0; i < v->s.num_queues; i++) {
        if (device) {
            ring_forget(&v->rings[i]);
        } else {
            v->rings[i].enabled = false;
        }
    }
    if (device) {
        v->acked_features = 0;
    }
    return 0;
}

/* Dispatch one message. Returns 0 or -EPROTO (close the connection). */
static int handle(struct vm_vhu *v, struct vhu_msg *m)
{
    bool refused = false;
    int ret;

    switch (m->request) {
    case VHU_GET_FEATURES:
        ret = expect(v, m, 0, 0);
        return ret < 0 ? ret : reply_u64(v, m, v->s.features | (1ull << VHU_F_PROTOCOL_FEATURES));
    case VHU_SET_FEATURES:
        ret = expect(v, m, VHU_U64_SIZE, 0);
        ret = ret < 0 ? ret : on_set_features(v, m);
        break;
    case VHU_SET_OWNER:
        ret = expect(v, m, 0, 0);
        break;
    case VHU_RESET_OWNER:
        ret = expect(v, m, 0, 0);
        ret = ret < 0 ? ret : on_reset(v, false);
        break;
    case VHU_SET_MEM_TABLE:
        ret = on_set_mem_table(v, m);
        break;
    case VHU_SET_VRING_NUM:
    case VHU_SET_VRING_BASE:
    case VHU_SET_VRING_ENABLE:
        ret = on_vring_state(v, m);
        break;
    case VHU_GET_VRING_BASE:
        return on_vring_state(v, m);
    case VHU_SET_VRING_ADDR:
        ret = on_vring_addr(v, m);
        break;
    case VHU_SET_VRING_KICK:
    case VHU_SET_VRING_CALL:
    case VHU_SET_VRING_ERR:
        ret = on_vring_fd(v, m);
        break;
    case VHU_GET_PROTOCOL_FEATURES:
        ret = expect(v, m, 0, 0);
        return ret < 0 ? ret : reply_u64(v, m, v->s.protocol_features);
    case VHU_SET_PROTOCOL_FEATURES:
        ret = expect(v, m, VHU_U64_SIZE, 0);
        if (ret == 0 && (ld64(m, 0) & ~v->s.protocol_features)) {
            ret = proto_error(v, m, "protocol features 0x%llx were not offered (offered 0x%llx)",
                              (unsigned long long)(ld64(m, 0) & ~v->s.protocol_features),
                              (unsigned long long)v->s.protocol_features);
        }
        if (ret == 0) {
            v->acked_protocol = ld64(m, 0);
        }
        break;
    case VHU_GET_QUEUE_NUM:
        ret = expect(v, m, 0, 0);
        return ret < 0 ? ret : reply_u64(v, m, v->s.num_queues);
    case VHU_GET_CONFIG:
        return on_config(v, m, &refused);
    case VHU_SET_CONFIG:
        ret = on_config(v, m, &refused);
        break;
    case VHU_RESET_DEVICE:
        ret = expect(v, m, 0, 0);
        if (ret == 0 && !(v->acked_protocol & (1ull << VHU_PF_RESET_DEVICE))) {
            ret = proto_error(v, m, "RESET_DEVICE without the protocol feature");
        }
        ret = ret < 0 ? ret : on_reset(v, true);
        break;
    default:
        return proto_error(v, m, "not supported by this back end (nothing offered it)");
    }
    if (ret < 0) {
        return ret;
    }
    if ((m->flags & VHU_FLAG_NEED_REPLY) && (v->acked_protocol & (1ull << VHU_PF_REPLY_ACK))) {
        return reply_u64(v, m, refused ? 1 : 0);
    }
    return 0;
}

/* The connection. */

/* Wait until the socket is readable: 0, or -ECANCELED when stopped. */
static int wait_readable(struct vm_vhu *v)
{
    for (;;) {
        struct pollfd p[2] = { { v->conn_fd, POLLIN, 0 }, { v->stop_fd, POLLIN, 0 } };
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (p[1].revents) {
            return -ECANCELED;
        }
        return 0;
    }
}

/*
 * Receive exactly `len` bytes into `buf`, collecting descriptors. Returns
 * len, 0 for end of file before the first byte, or a negative errno
 * (-EPROTO for end of file in the middle, or too many descriptors).
 */
static int recv_exact(struct vm_vhu *v, struct vhu_msg *m, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
        } ctl;
        struct iovec iov = { buf + got, len - got };
        struct msghdr mh = { 0 };
        struct cmsghdr *c;
        ssize_t n;
        int ret = wait_readable(v);

        if (ret < 0) {
            return ret;
        }
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(v->conn_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return proto_error(v, NULL, "reading from the front end: %s", vmapple_strerror(-errno));
        }
        for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    if (m->nfds < VHU_MAX_FDS) {
                        m->fds[m->nfds++] = fd;
                    } else {
                        close(fd);
                        mh.msg_flags |= MSG_CTRUNC;
                    }
                }
            }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
            return proto_error(v, NULL, "more than %u file descriptors with one message",
                               VHU_MAX_FDS);
        }
        if (n == 0) {
            return got == 0 ? 0 : -ENODATA;
        }
        got += (size_t)n;
    }
    return (int)len;
}

static void close_msg_fds(struct vhu_msg *m)
{
    for (unsigned i = 0; i < m->nfds; i++) {
        close_fd(&m->fds[i]);
    }
    m->nfds = 0;
}

int vm_vhu_step(struct vm_vhu *v)
{
    struct vhu_msg *m;
    uint8_t hdr[VHU_HDR_SIZE];
    int ret;

    if (v->conn_fd < 0) {
        return -ENOTCONN;
    }
    m = malloc(sizeof(*m));
    if (!m) {
        return proto_error(v, NULL, "out of memory for a message");
    }
    m->nfds = 0;
    m->request = m->size = 0;
    ret = recv_exact(v, m, hdr, sizeof(hdr));
    if (ret == -ENODATA) {
        ret = proto_error(v, NULL, "the front end closed the connection inside a message header");
    }
    if (ret <= 0) {
        goto out; /* 0: a clean end of file between messages */
    }
    memcpy(&m->request, hdr, 4);
    memcpy(&m->flags, hdr + 4, 4);
    memcpy(&m->size, hdr + 8, 4);
    if ((m->flags & VHU_VERSION_MASK) != VHU_VERSION ||
        (m->flags & ~(VHU_VERSION_MASK | VHU_FLAG_NEED_REPLY))) {
        ret = proto_error(v, m, "header flags 0x%x (version 1, need_reply only)", m->flags);
        goto out;
    }
    if (m->size > VHU_MAX_PAYLOAD) {
        ret = proto_error(v, m, "payload of %u bytes, the limit is %u", m->size, VHU_MAX_PAYLOAD);
        goto out;
    }
    if (m->size > 0) {
        ret = recv_exact(v, m, m->payload, m->size);
        if (ret == 0 || ret == -ENODATA) {
            ret = proto_error(v, m, "the front end closed the connection inside the payload");
        }
        if (ret < 0) {
            goto out;
        }
    }
    vm_log(&v->logdev, VMAPPLE_LOG_DEBUG, "%s (%u): %u bytes, %u descriptors",
           request_name(m->request), m->request, m->size, m->nfds);
    ret = handle(v, m);
    ret = ret < 0 ? ret : 1;
out:
    close_msg_fds(m);
    free(m);
    if (ret == -EPROTO) {
        vm_vhu_detach(v);
    }
    return ret;
}

int vm_vhu_attach(struct vm_vhu *v, int fd)
{
    if (v->conn_fd >= 0) {
        return -EBUSY;
    }
    v->conn_fd = fd;
    v->last_error[0] = '\0';
    return 0;
}

void vm_vhu_detach(struct vm_vhu *v)
{
    /* The front end is gone: finish the I/O that runs, tell nobody. */
    stop_all(v, false);
    for (uint16_t i = 0; i < v->s.num_queues; i++) {
        ring_forget(&v->rings[i]);
    }
    unmap_regions(v->regions, v->nregions);
    v->nregions = 0;
    v->acked_features = 0;
    v->acked_protocol = 0;
    v->sealed_warned = false;
    close_fd(&v->conn_fd);
}

int vm_vhu_serve(struct vm_vhu *v, int fd)
{
    int ret;

    if (__atomic_exchange_n(&v->serving, true, __ATOMIC_ACQ_REL)) {
        close(fd);
        return -EBUSY;
    }
    if (vm_vhu_attach(v, fd) < 0) {
        __atomic_store_n(&v->serving, false, __ATOMIC_RELEASE);
        close(fd);
        return -EBUSY;
    }
    do {
        ret = vm_vhu_step(v);
    } while (ret > 0);
    if (ret == -ECANCELED) {
        vm_log(&v->logdev, VMAPPLE_LOG_INFO, "stopped: disconnecting the front end");
    } else if (ret == 0) {
        vm_log(&v->logdev, VMAPPLE_LOG_INFO, "the front end disconnected");
    }
    vm_vhu_detach(v);
    __atomic_store_n(&v->serving, false, __ATOMIC_RELEASE);
    return ret;
}

void vm_vhu_stop(struct vm_vhu *v)
{
    uint64_t one = 1;
    ssize_t n = write(v->stop_fd, &one, sizeof(one));
    (void)n;
}

void vm_vhu_run_inline(struct vm_vhu *v)
{
    for (uint16_t i = 0; i < v->s.num_queues; i++) {
        struct vhu_ring *r = &v->rings[i];
        uint8_t drain[64];
        if (!r->running) {
            continue;
        }
        if (r->kick_fd >= 0) {
            while (read(r->kick_fd, drain, sizeof(drain)) > 0) {
            }
        }
        v->s.ops->kick(v->s.opaque, r->index);
        if (v->s.ops->poll_fd(v->s.opaque, r->index) >= 0) {
            v->s.ops->process(v->s.opaque, r->index);
        }
    }
}

const char *vm_vhu_last_error(const struct vm_vhu *v)
{
    return v->last_error;
}

/* Life cycle. */

int vm_vhu_create(const struct vm_vhu_setup *setup, const vmapple_host_ops *host, void *host_opaque,
                  struct vm_vhu **out)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    struct vm_vhu *v;
    int ret;

    if (setup->num_queues == 0 || setup->num_queues > VHU_MAX_RINGS ||
        setup->config_len > VHU_MAX_CONFIG_SIZE ||
        (setup->protocol_features & ~VHU_PF_IMPLEMENTED) || !setup->ops) {
        return vm_error_named(setup->name, NULL, -EINVAL, "internal: bad vhost-user set-up");
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        return vm_error_named(setup->name, NULL, -ENOMEM, "out of memory");
    }
    v->s = *setup;
    v->conn_fd = -1;
    v->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (v->stop_fd < 0) {
        ret = -errno;
        free(v);
        return vm_error_named(setup->name, NULL, ret, "eventfd: %s", vmapple_strerror(ret));
    }
    ret = vm_copy_host_ops(&v->host, host, setup->name);
    if (ret < 0) {
        close(v->stop_fd);
        free(v);
        return ret;
    }
    v->host_opaque = host_opaque;
    ops.log = conn_log;
    vm_device_init(&v->logdev, &vhu_class, &ops, v, NULL, 0, NULL, 0);
    snprintf(v->logdev.name, sizeof(v->logdev.name), "%s", setup->name);

    ops.mem_read = ring_mem_read;
    ops.mem_write = ring_mem_write;
    ops.mem_map = ring_mem_map;
    ops.log = ring_log;
    for (uint16_t i = 0; i < setup->num_queues; i++) {
        struct vhu_ring *r = &v->rings[i];
        r->v = v;
        r->index = i;
        r->kick_fd = r->call_fd = r->err_fd = r->ctl_fd = r->epfd = -1;
        vm_device_init(&r->dev, &vhu_class, &ops, r, NULL, 0, NULL, 0);
        snprintf(r->dev.name, sizeof(r->dev.name), "%.20s.q%u", setup->name, i);
        vm_vq_init(&r->vq, &r->dev);
    }
    *out = v;
    return 0;
}

void vm_vhu_destroy(struct vm_vhu *v)
{
    if (!v) {
        return;
    }
    vm_vhu_detach(v);
    close(v->stop_fd);
    free(v);
}
