/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vhost-front.h"

#define VF_MIN(a, b) ((a) < (b) ? (a) : (b))

#define DESC_F_NEXT  1
#define DESC_F_WRITE 2

void vfront_init(struct vfront *f, int sock, uint64_t ram_size)
{
    memset(f, 0, sizeof(*f));
    f->sock = sock;
    f->ram_size = ram_size;
    f->memfd = memfd_create("vfront-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (f->memfd < 0 || ftruncate(f->memfd, (off_t)ram_size) < 0 ||
        fcntl(f->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
        abort();
    }
    f->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    if (f->ram == MAP_FAILED) {
        abort();
    }
    f->heap = 0x1000;
    for (int i = 0; i < VFRONT_MAX_RINGS; i++) {
        f->rings[i].kick = f->rings[i].call = f->rings[i].err = -1;
    }
}

void vfront_fini(struct vfront *f)
{
    if (f->sock >= 0) {
        close(f->sock);
    }
    for (int i = 0; i < VFRONT_MAX_RINGS; i++) {
        struct vfront_ring *r = &f->rings[i];
        if (r->kick >= 0) {
            close(r->kick);
        }
        if (r->call >= 0) {
            close(r->call);
        }
        if (r->err >= 0) {
            close(r->err);
        }
    }
    munmap(f->ram, f->ram_size);
    close(f->memfd);
    memset(f, 0, sizeof(*f));
    f->sock = f->memfd = -1;
}

uint64_t vfront_alloc(struct vfront *f, uint64_t len, uint64_t align)
{
    uint64_t p = (f->heap + align - 1) & ~(align - 1);

    if (p + len > f->ram_size) {
        abort();
    }
    f->heap = p + len;
    memset(f->ram + p, 0, len);
    return VFRONT_GPA + p;
}

void *vfront_ptr(struct vfront *f, uint64_t gpa)
{
    if (gpa < VFRONT_GPA || gpa - VFRONT_GPA >= f->ram_size) {
        abort();
    }
    return f->ram + (gpa - VFRONT_GPA);
}

/* Messages. */

int vfront_send(struct vfront *f, uint32_t request, uint32_t flags, const void *payload,
                uint32_t size, const int *fds, unsigned nfds)
{
    uint8_t buf[12 + 4096];
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int) * 16)];
    } ctl;
    struct iovec iov;
    struct msghdr mh = { 0 };
    size_t len = 12 + (size <= 4096 ? size : 4096);
    ssize_t n;

    memcpy(buf, &request, 4);
    memcpy(buf + 4, &flags, 4);
    memcpy(buf + 8, &size, 4);
    if (payload) {
        memcpy(buf + 12, payload, len - 12);
    } else {
        memset(buf + 12, 0, len - 12);
    }
    iov.iov_base = buf;
    iov.iov_len = len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds) {
        struct cmsghdr *c;
        if (nfds > 16) {
            return -EINVAL;
        }
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    n = sendmsg(f->sock, &mh, MSG_NOSIGNAL);
    if (n < 0) {
        return -errno;
    }
    return (size_t)n == len ? 0 : -EIO;
}

static int recv_all(struct vfront *f, void *buf, size_t len, int timeout_ms)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = { f->sock, POLLIN, 0 };
        ssize_t n;
        if (poll(&p, 1, timeout_ms) == 0) {
            return -ETIMEDOUT;
        }
        n = recv(f->sock, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
        if (n == 0) {
            return -ECONNRESET;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return errno == ECONNRESET ? -ECONNRESET : -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

int vfront_recv(struct vfront *f, uint32_t *request, uint32_t *flags, void *payload, uint32_t cap,
                int timeout_ms)
{
    uint8_t hdr[12], scratch[256];
    uint32_t size, left;
    int ret = recv_all(f, hdr, sizeof(hdr), timeout_ms);

    if (ret < 0) {
        return ret;
    }
    memcpy(request, hdr, 4);
    memcpy(flags, hdr + 4, 4);
    memcpy(&size, hdr + 8, 4);
    ret = recv_all(f, payload, VF_MIN(size, cap), timeout_ms);
    for (left = size > cap ? size - cap : 0; ret == 0 && left > 0;) {
        uint32_t n = left < sizeof(scratch) ? left : (uint32_t)sizeof(scratch);
        ret = recv_all(f, scratch, n, timeout_ms);
        left -= n;
    }
    return ret < 0 ? ret : (int)size;
}

bool vfront_closed(struct vfront *f, int timeout_ms)
{
    struct pollfd p = { f->sock, POLLIN, 0 };
    uint8_t b;

    if (poll(&p, 1, timeout_ms) <= 0) {
        return false;
    }
    /* Replies that were already on their way are not a close: look past them. */
    for (;;) {
        ssize_t n = recv(f->sock, &b, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return true;
        }
        if (n < 0) {
            if (poll(&p, 1, timeout_ms) <= 0) {
                return false;
            }
        }
    }
}

static int expect_reply(struct vfront *f, uint32_t request, void *payload, uint32_t size)
{
    uint32_t req, flags;
    int n = vfront_recv(f, &req, &flags, payload, size, 10000);

    if (n < 0) {
        return n;
    }
    if (req != request || (flags & 0x3) != VF_FLAG_VERSION || !(flags & VF_FLAG_REPLY) ||
        (uint32_t)n != size) {
        return -EPROTO;
    }
    return 0;
}

int vfront_get_u64(struct vfront *f, uint32_t request, uint64_t *value)
{
    int ret = vfront_send(f, request, VF_FLAG_VERSION, NULL, 0, NULL, 0);

    return ret < 0 ? ret : expect_reply(f, request, value, 8);
}

int vfront_set_u64(struct vfront *f, uint32_t request, uint64_t value)
{
    return vfront_send(f, request, VF_FLAG_VERSION, &value, 8, NULL, 0);
}

int vfront_vring_state(struct vfront *f, uint32_t request, uint32_t index, uint32_t num)
{
    uint32_t s[2] = { index, num };

    return vfront_send(f, request, VF_FLAG_VERSION, s, 8, NULL, 0);
}

int vfront_acked(struct vfront *f, uint32_t request, const void *payload, uint32_t size,
                 uint64_t *ack)
{
    int ret = vfront_send(f, request, VF_FLAG_VERSION | VF_FLAG_NEED_REPLY, payload, size, NULL, 0);

    return ret < 0 ? ret : expect_reply(f, request, ack, 8);
}

int vfront_get_config(struct vfront *f, uint32_t offset, uint32_t size, void *out)
{
    uint8_t buf[12 + 256] = { 0 };
    uint32_t zero = 0;
    int ret;

    if (size > 256) {
        return -EINVAL;
    }
    memcpy(buf, &offset, 4);
    memcpy(buf + 4, &size, 4);
    memcpy(buf + 8, &zero, 4);
    ret = vfront_send(f, VF_GET_CONFIG, VF_FLAG_VERSION, buf, 12 + size, NULL, 0);
    if (ret == 0) {
        ret = expect_reply(f, VF_GET_CONFIG, buf, 12 + size);
    }
    if (ret == 0) {
        memcpy(out, buf + 12, size);
    }
    return ret;
}

int vfront_sync(struct vfront *f)
{
    uint64_t n;

    return vfront_get_u64(f, VF_GET_QUEUE_NUM, &n);
}

int vfront_set_mem_table(struct vfront *f)
{
    uint8_t p[8 + 32] = { 0 };
    uint32_t one = 1;
    uint64_t gpa = VFRONT_GPA, uva = VFRONT_UVA, off = 0;

    memcpy(p, &one, 4);
    memcpy(p + 8, &gpa, 8);
    memcpy(p + 16, &f->ram_size, 8);
    memcpy(p + 24, &uva, 8);
    memcpy(p + 32, &off, 8);
    return vfront_send(f, VF_SET_MEM_TABLE, VF_FLAG_VERSION, p, sizeof(p), &f->memfd, 1);
}

int vfront_handshake(struct vfront *f, uint64_t want_features, uint64_t want_protocol)
{
    uint64_t offered, pf;
    int ret;

    if ((ret = vfront_get_u64(f, VF_GET_FEATURES, &offered)) < 0 ||
        (ret = vfront_get_u64(f, VF_GET_PROTOCOL_FEATURES, &pf)) < 0) {
        return ret;
    }
    f->protocol = pf & want_protocol;
    f->features = (offered & want_features) | VF_F_PROTOCOL_FEATURES;
    if ((ret = vfront_set_u64(f, VF_SET_PROTOCOL_FEATURES, f->protocol)) < 0 ||
        (ret = vfront_send(f, VF_SET_OWNER, VF_FLAG_VERSION, NULL, 0, NULL, 0)) < 0 ||
        (ret = vfront_set_u64(f, VF_SET_FEATURES, f->features)) < 0) {
        return ret;
    }
    return vfront_set_mem_table(f);
}

static uint64_t uva_of(uint64_t gpa)
{
    return VFRONT_UVA + (gpa - VFRONT_GPA);
}

static int send_fd(struct vfront *f, uint32_t request, uint16_t q, int fd)
{
    uint64_t v = q;

    return vfront_send(f, request, VF_FLAG_VERSION, &v, 8, &fd, 1);
}

static int send_addr(struct vfront *f, uint16_t q)
{
    struct vfront_ring *r = &f->rings[q];
    uint8_t a[40] = { 0 };
    uint32_t idx = q;
    uint64_t d = uva_of(r->desc), u = uva_of(r->used), av = uva_of(r->avail);

    memcpy(a, &idx, 4);
    memcpy(a + 8, &d, 8);
    memcpy(a + 16, &u, 8);
    memcpy(a + 24, &av, 8);
    return vfront_send(f, VF_SET_VRING_ADDR, VF_FLAG_VERSION, a, sizeof(a), NULL, 0);
}

int vfront_ring_setup(struct vfront *f, uint16_t q, uint16_t size)
{
    struct vfront_ring *r = &f->rings[q];
    int ret;

    if (size > 1024) {
        return -EINVAL;
    }
    r->size = size;
    r->desc = vfront_alloc(f, 16ull * size, 4096);
    r->avail = vfront_alloc(f, 6 + 2ull * size, 4096);
    r->used = vfront_alloc(f, 6 + 8ull * size, 4096);
    r->blk_area = vfront_alloc(f, 32ull * size, 4096);
    for (uint16_t i = 0; i < size; i++) {
        r->next_free[i] = (uint16_t)(i + 1);
    }
    r->free_head = 0;
    r->num_free = size;
    r->avail_idx = r->last_used = r->kicked_idx = 0;
    if (r->kick < 0) {
        r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        r->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    r->set_up = true;
    if ((ret = vfront_vring_state(f, VF_SET_VRING_NUM, q, size)) < 0 ||
        (ret = vfront_vring_state(f, VF_SET_VRING_BASE, q, 0)) < 0 || (ret = send_addr(f, q)) < 0 ||
        (ret = send_fd(f, VF_SET_VRING_CALL, q, r->call)) < 0 ||
        (ret = send_fd(f, VF_SET_VRING_ERR, q, r->err)) < 0 ||
        (ret = send_fd(f, VF_SET_VRING_KICK, q, r->kick)) < 0) {
        return ret;
    }
    return vfront_vring_state(f, VF_SET_VRING_ENABLE, q, 1);
}

int vfront_ring_restart(struct vfront *f, uint16_t q, uint16_t base)
{
    struct vfront_ring *r = &f->rings[q];
    int ret;

    if ((ret = vfront_vring_state(f, VF_SET_VRING_NUM, q, r->size)) < 0 ||
        (ret = vfront_vring_state(f, VF_SET_VRING_BASE, q, base)) < 0 ||
        (ret = send_addr(f, q)) < 0 || (ret = send_fd(f, VF_SET_VRING_KICK, q, r->kick)) < 0) {
        return ret;
    }
    return vfront_vring_state(f, VF_SET_VRING_ENABLE, q, 1);
}

/* The driver. */

static void put_desc(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

int vfront_add(struct vfront *f, uint16_t q, const struct vfront_seg *segs, unsigned n)
{
    struct vfront_ring *r = &f->rings[q];
    uint8_t *table = vfront_ptr(f, r->desc);
    uint16_t *ring = vfront_ptr(f, r->avail + 4);
    uint16_t head, cur, prev = 0;

    if (n == 0 || r->num_free < n) {
        return -ENOSPC;
    }
    head = r->free_head;
    for (unsigned i = 0; i < n; i++) {
        cur = r->free_head;
        r->free_head = r->next_free[cur];
        r->num_free--;
        if (i > 0) {
            uint16_t flags;
            memcpy(&flags, table + 16 * prev + 12, 2);
            flags |= DESC_F_NEXT;
            memcpy(table + 16 * prev + 12, &flags, 2);
            memcpy(table + 16 * prev + 14, &cur, 2);
        }
        put_desc(table + 16 * cur, segs[i].gpa, segs[i].len, segs[i].write ? DESC_F_WRITE : 0, 0);
        prev = cur;
    }
    r->chain_len[head] = (uint16_t)n;
    ring[r->avail_idx % r->size] = head;
    r->avail_idx++;
    return head;
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vfront_kick(struct vfront *f, uint16_t q)
{
    struct vfront_ring *r = &f->rings[q];
    uint16_t *avail_idx = vfront_ptr(f, r->avail + 2);
    uint64_t one = 1;
    bool notify;
    ssize_t n;

    __atomic_store_n(avail_idx, r->avail_idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (f->features & VF_F_EVENT_IDX) {
        uint16_t *avail_event = vfront_ptr(f, r->used + 4 + 8ull * r->size);
        notify =
            need_event(__atomic_load_n(avail_event, __ATOMIC_RELAXED), r->avail_idx, r->kicked_idx);
    } else {
        uint16_t *flags = vfront_ptr(f, r->used);
        notify = !(__atomic_load_n(flags, __ATOMIC_RELAXED) & 1);
    }
    r->kicked_idx = r->avail_idx;
    if (notify) {
        n = write(r->kick, &one, 8);
        (void)n;
    }
}

uint16_t vfront_used_idx(struct vfront *f, uint16_t q)
{
    return __atomic_load_n((uint16_t *)vfront_ptr(f, f->rings[q].used + 2), __ATOMIC_ACQUIRE);
}

int vfront_get_used(struct vfront *f, uint16_t q, uint16_t *head, uint32_t *len)
{
    struct vfront_ring *r = &f->rings[q];
    uint8_t *elem;
    uint32_t id;

    if (vfront_used_idx(f, q) == r->last_used) {
        return 0;
    }
    elem = vfront_ptr(f, r->used + 4 + 8ull * (r->last_used % r->size));
    memcpy(&id, elem, 4);
    memcpy(len, elem + 4, 4);
    r->last_used++;
    if (f->features & VF_F_EVENT_IDX) {
        uint16_t *used_event = vfront_ptr(f, r->avail + 4 + 2ull * r->size);
        __atomic_store_n(used_event, r->last_used, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    *head = (uint16_t)id;
    if (id < r->size) {
        uint16_t i = (uint16_t)id;
        uint8_t *table = vfront_ptr(f, r->desc);
        for (uint16_t k = 0; k < r->chain_len[id]; k++) {
            uint16_t next;
            memcpy(&next, table + 16 * i + 14, 2);
            r->next_free[i] = r->free_head;
            r->free_head = i;
            r->num_free++;
            i = next;
        }
    }
    return 1;
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

int vfront_wait_used(struct vfront *f, uint16_t q, uint16_t *head, uint32_t *len, int timeout_ms)
{
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p = { f->rings[q].call, POLLIN, 0 };
        uint64_t v;
        ssize_t n;
        long left;
        if (vfront_get_used(f, q, head, len)) {
            return 1;
        }
        left = timeout_ms - elapsed_ms(&start);
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        /* The call eventfd, with a short period so a suppressed notification cannot hang us. */
        poll(&p, 1, left < 50 ? (int)left : 50);
        n = read(f->rings[q].call, &v, 8);
        (void)n;
    }
}

int vfront_blk_submit(struct vfront *f, uint16_t q, uint32_t type, uint64_t sector,
                      uint64_t data_gpa, uint32_t data_len)
{
    struct vfront_ring *r = &f->rings[q];
    struct vfront_seg segs[3];
    unsigned n = 0;
    uint64_t area;
    uint8_t *hdr;

    if (r->num_free < 3) {
        return -ENOSPC;
    }
    area = r->blk_area + 32ull * r->free_head;
    hdr = vfront_ptr(f, area);
    memset(hdr, 0, 17);
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    hdr[16] = 0xff;
    segs[n++] = (struct vfront_seg){ area, 16, false };
    if (data_len) {
        segs[n++] = (struct vfront_seg){ data_gpa, data_len, type != VF_BLK_T_OUT };
    }
    segs[n++] = (struct vfront_seg){ area + 16, 1, true };
    return vfront_add(f, q, segs, n);
}

uint8_t vfront_blk_status(struct vfront *f, uint16_t q, uint16_t head)
{
    return *(uint8_t *)vfront_ptr(f, f->rings[q].blk_area + 32ull * head + 16);
}

int vfront_blk_do(struct vfront *f, uint16_t q, uint32_t type, uint64_t sector, uint64_t data_gpa,
                  uint32_t data_len)
{
    uint16_t head;
    uint32_t len;
    int h = vfront_blk_submit(f, q, type, sector, data_gpa, data_len);
    int ret;

    if (h < 0) {
        return h;
    }
    vfront_kick(f, q);
    ret = vfront_wait_used(f, q, &head, &len, 10000);
    if (ret < 0) {
        return ret;
    }
    if (head != h) {
        return -EPROTO;
    }
    return vfront_blk_status(f, q, head);
}
