/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the vhost-user back end (lib/vhost-user.c behind vhost-user-blk)
 * through its socket, as a hostile front end: arbitrary messages (request,
 * flags, size, payload, attached descriptors of several kinds), truncated
 * messages, pokes into the shared guest memory and ring kicks, with
 * reconnection whenever the back end closes the connection. The rings run
 * inline with synchronous engines, so every input replays exactly.
 *
 * Input: u8 set-up (bit 0 read-only volume, bit 1 no indirect/event idx,
 * bit 2 barrier none), then operations:
 *   0 message   u8 request, u8 flags (0: version 1, 1: + need_reply, else
 *               the byte itself), u16 size, u8 descriptors (bits 0-1 count,
 *               then 2 bits per kind: 0 guest memfd, 1 eventfd, 2 pipe,
 *               3 a memfd too small for anything), then min(size, 512)
 *               payload bytes (zeros after)
 *   1 memory    u16 offset, u8 length, bytes
 *   2 run       run every started ring once (kick)
 *   3 truncated u8 n: the first n % 12 bytes of a header, then end of file
 *   4 ring      u8 ring, u8 log2 size, u16 desc, u16 avail, u16 used offsets:
 *               the whole set-up sequence QEMU sends, with those addresses
 * Guest memory is one 64 KiB memfd; the set-up sequence maps it at guest
 * address 0 and user address VHOST_UVA. Findings: sanitizer reports; a
 * read-only volume written; a closed connection without a reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "membd.h"
#include "vmapple/vhost-user-blk-internal.h"

#define RAM_SIZE  0x10000u
#define VOL_SIZE  0x10000u
#define VHOST_UVA 0x7f0000000000ull
#define MAX_GEN   512u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct harness {
    struct vm_vhu *vhu;
    int sock; /* our end */
    int ram_fd;
    uint8_t *ram;
    int small_fd;
};

static void connect_back_end(struct harness *hs)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        FUZZ_FINDING("socketpair: %d", errno);
    }
    hs->sock = sv[0];
    if (vm_vhu_attach(hs->vhu, sv[1]) < 0) {
        FUZZ_FINDING("attach refused");
    }
}

static void drain_replies(struct harness *hs)
{
    uint8_t buf[4096];

    while (recv(hs->sock, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

/* Let the back end handle what was sent; reconnect if it closed. */
static void step(struct harness *hs)
{
    int ret = vm_vhu_step(hs->vhu);

    drain_replies(hs);
    if (ret <= 0) {
        if (ret == -EPROTO && vm_vhu_last_error(hs->vhu)[0] == '\0') {
            FUZZ_FINDING("connection closed without a reason");
        }
        vm_vhu_detach(hs->vhu);
        close(hs->sock);
        connect_back_end(hs);
    }
}

static int make_fd(struct harness *hs, unsigned kind, int *extra)
{
    int p[2];

    switch (kind) {
    case 0:
        return dup(hs->ram_fd);
    case 1:
        return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    case 2:
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
            return -1;
        }
        *extra = p[1];
        return p[0];
    default:
        return dup(hs->small_fd);
    }
}

static void send_msg(struct harness *hs, uint32_t request, uint32_t flags, const uint8_t *payload,
                     uint32_t size, unsigned fdspec)
{
    static uint8_t buf[12 + 4096];
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int) * 3)];
    } ctl;
    struct iovec iov;
    struct msghdr mh = { 0 };
    unsigned nfds = fdspec & 3;
    int fds[3], extra[3] = { -1, -1, -1 };
    uint32_t sent = size <= 4096 ? size : 4096;

    memcpy(buf, &request, 4);
    memcpy(buf + 4, &flags, 4);
    memcpy(buf + 8, &size, 4);
    memset(buf + 12, 0, sent);
    memcpy(buf + 12, payload, VM_MIN(sent, MAX_GEN));
    iov.iov_base = buf;
    iov.iov_len = 12 + sent;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    for (unsigned i = 0; i < nfds; i++) {
        fds[i] = make_fd(hs, (fdspec >> (2 + 2 * i)) & 3, &extra[i]);
        if (fds[i] < 0) {
            nfds = i;
            break;
        }
    }
    if (nfds) {
        struct cmsghdr *c;
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    if (sendmsg(hs->sock, &mh, MSG_NOSIGNAL) < 0) {
        FUZZ_FINDING("sendmsg: %d", errno);
    }
    for (unsigned i = 0; i < nfds; i++) {
        close(fds[i]);
        if (extra[i] >= 0) {
            close(extra[i]);
        }
    }
    step(hs);
}

static void send_u64(struct harness *hs, uint32_t request, uint64_t v, unsigned fdspec)
{
    uint8_t p[8];

    memcpy(p, &v, 8);
    send_msg(hs, request, 1, p, 8, fdspec);
}

static void send_state(struct harness *hs, uint32_t request, uint32_t index, uint32_t num)
{
    uint8_t p[8];

    memcpy(p, &index, 4);
    memcpy(p + 4, &num, 4);
    send_msg(hs, request, 1, p, 8, 0);
}

/* The sequence QEMU sends to start a ring, with fuzzed ring addresses. */
static void set_up_ring(struct harness *hs, struct fuzz_input *in)
{
    uint32_t q = (uint32_t)fuzz_take(in, 1) % 3; /* 2 rings: one index out of range */
    uint32_t num = 1u << (fuzz_take(in, 1) % 8);
    uint64_t desc = VHOST_UVA + fuzz_take(in, 2);
    uint64_t avail = VHOST_UVA + fuzz_take(in, 2);
    uint64_t used = VHOST_UVA + fuzz_take(in, 2);
    uint8_t mem[8 + 32] = { 0 }, addr[40] = { 0 };
    uint32_t one = 1;
    uint64_t region[4] = { 0, RAM_SIZE, VHOST_UVA, 0 };

    memcpy(mem, &one, 4);
    memcpy(mem + 8, region, 32);
    send_msg(hs, VHU_SET_MEM_TABLE, 1, mem, sizeof(mem), 1 | (0 << 2));
    send_state(hs, VHU_SET_VRING_NUM, q, num);
    send_state(hs, VHU_SET_VRING_BASE, q, 0);
    memcpy(addr, &q, 4);
    memcpy(addr + 8, &desc, 8);
    memcpy(addr + 16, &used, 8);
    memcpy(addr + 24, &avail, 8);
    send_msg(hs, VHU_SET_VRING_ADDR, 1, addr, sizeof(addr), 0);
    send_u64(hs, VHU_SET_VRING_CALL, q, 1 | (1 << 2));
    send_u64(hs, VHU_SET_VRING_KICK, q, 1 | (1 << 2));
    send_state(hs, VHU_SET_VRING_ENABLE, q, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t payload[MAX_GEN];
    struct fuzz_input in = { data, size, 0 };
    vmapple_vhost_user_blk_options o = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    vmapple_vhost_user_blk *be;
    struct harness hs;
    struct membd mb;
    uint8_t setup = (uint8_t)fuzz_take(&in, 1);
    vmapple_blockdev *bd =
        membd_open(&mb, VOL_SIZE, (setup & 1) ? VMAPPLE_BLOCKDEV_READ_ONLY : 0, false);

    memset(&hs, 0, sizeof(hs));
    hs.ram_fd = memfd_create("fuzz-ram", MFD_CLOEXEC);
    hs.small_fd = memfd_create("fuzz-small", MFD_CLOEXEC);
    if (hs.ram_fd < 0 || hs.small_fd < 0 || ftruncate(hs.ram_fd, RAM_SIZE) < 0 ||
        ftruncate(hs.small_fd, 100) < 0) {
        FUZZ_FINDING("memfd: %d", errno);
    }
    hs.ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, hs.ram_fd, 0);
    if (hs.ram == MAP_FAILED) {
        FUZZ_FINDING("mmap: %d", errno);
    }
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_AUX;
    o.blockdev = bd;
    o.num_queues = 2;
    o.max_queue_size = 64;
    o.seg_max = 8;
    o.flags = (setup & 2) ? VMAPPLE_VIRTIO_BLK_NO_INDIRECT | VMAPPLE_VIRTIO_BLK_NO_EVENT_IDX : 0;
    o.barrier_mode = (setup & 4) ? VMAPPLE_VIRTIO_BLK_BARRIER_NONE : 0;
    o.serial = "FUZZ";
    if (vm_vhost_user_blk_create_ex(NULL, NULL, &o, true, &be) != 0) {
        FUZZ_FINDING("create: %s", vmapple_last_error());
    }
    vmapple_blockdev_release(bd);
    hs.vhu = vm_vhost_user_blk_protocol(be);
    connect_back_end(&hs);

    while (fuzz_left(&in)) {
        switch (fuzz_take(&in, 1) % 5) {
        case 0: {
            uint32_t request = (uint32_t)fuzz_take(&in, 1);
            uint32_t f = (uint32_t)fuzz_take(&in, 1);
            uint32_t len = (uint32_t)fuzz_take(&in, 2);
            unsigned fdspec = (unsigned)fuzz_take(&in, 1);
            uint32_t flags = f == 0 ? VHU_VERSION : f == 1 ? VHU_VERSION | VHU_FLAG_NEED_REPLY : f;
            for (uint32_t i = 0; i < VM_MIN(len, MAX_GEN); i++) {
                payload[i] = (uint8_t)fuzz_take(&in, 1);
            }
            send_msg(&hs, request, flags, payload, len, fdspec);
            break;
        }
        case 1: {
            uint32_t off = (uint32_t)fuzz_take(&in, 2);
            uint32_t len = (uint32_t)fuzz_take(&in, 1);
            for (uint32_t i = 0; i < len; i++) {
                hs.ram[(off + i) % RAM_SIZE] = (uint8_t)fuzz_take(&in, 1);
            }
            break;
        }
        case 2:
            vm_vhu_run_inline(hs.vhu);
            break;
        case 3: {
            uint8_t hdr[12] = { 2, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0 };
            size_t n = (size_t)(fuzz_take(&in, 1) % 12);
            if (send(hs.sock, hdr, n, MSG_NOSIGNAL) < 0) {
                FUZZ_FINDING("send: %d", errno);
            }
            shutdown(hs.sock, SHUT_WR);
            step(&hs);
            break;
        }
        default:
            set_up_ring(&hs, &in);
            break;
        }
    }
    vm_vhu_run_inline(hs.vhu);
    if ((setup & 1) && (mb.writes || mb.discards || mb.write_zeroes)) {
        FUZZ_FINDING("a read-only volume was written");
    }
    vmapple_vhost_user_blk_destroy(be);
    close(hs.sock);
    munmap(hs.ram, RAM_SIZE);
    close(hs.ram_fd);
    close(hs.small_fd);
    membd_free(&mb);
    return 0;
}
