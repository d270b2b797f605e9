/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user-blk back end through its public API, driven by a test
 * front end (tests/common/vhost-front.c) over a socketpair: negotiation,
 * device configuration, I/O on several queues (one blocked queue never holds
 * another up), read-only volumes, REPLY_ACK, GET_VRING_BASE waiting for the
 * requests in flight, a memory table of several regions (a buffer across two
 * of them, rings in the second), a memory table replaced while rings run,
 * reset, polling rings, disconnection with requests in flight and
 * reconnection without losing acknowledged writes, and a table of malformed
 * messages, each of which must close the connection with a log line naming
 * it while the back end stays ready for the next front end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <libvmapple/libvmapple.h>

#include "vhost-front.h"

#define RAM_SIZE (4ull << 20)
#define VOL_SIZE (1ull << 20)
#define S_OK     0
#define S_IOERR  1

/* Device config offsets. */
#define CFG_CAPACITY   0
#define CFG_SEG_MAX    12
#define CFG_BLK_SIZE   20
#define CFG_NUM_QUEUES 34
#define CFG_TYPE       60

/*
 * A volume in memory whose I/O at one sector can be held (a request "in
 * flight" for as long as the test wants), thread-safe so that one held
 * call does not hold the others up.
 */
struct gatevol {
    uint8_t data[VOL_SIZE];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool gated;
    uint64_t gate_off; /* byte offset whose I/O waits while gated */
    unsigned waiting;
    unsigned writes, reads, flushes;
};

static bool touches_gate(struct gatevol *g, uint64_t off, uint64_t len)
{
    return g->gated && g->gate_off >= off && g->gate_off < off + len;
}

static void gate_wait(struct gatevol *g, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&g->lock);
    if (touches_gate(g, off, len)) {
        g->waiting++;
        pthread_cond_broadcast(&g->cond);
        while (touches_gate(g, off, len)) {
            pthread_cond_wait(&g->cond, &g->lock);
        }
        g->waiting--;
    }
    pthread_mutex_unlock(&g->lock);
}

static int gv_read(void *opaque, uint64_t off, void *buf, uint64_t len)
{
    struct gatevol *g = opaque;

    gate_wait(g, off, len);
    pthread_mutex_lock(&g->lock);
    memcpy(buf, g->data + off, len);
    g->reads++;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static int gv_write(void *opaque, uint64_t off, const void *buf, uint64_t len)
{
    struct gatevol *g = opaque;

    gate_wait(g, off, len);
    pthread_mutex_lock(&g->lock);
    memcpy(g->data + off, buf, len);
    g->writes++;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static int gv_flush(void *opaque)
{
    struct gatevol *g = opaque;

    pthread_mutex_lock(&g->lock);
    g->flushes++;
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static void gate_set(struct gatevol *g, uint64_t off)
{
    pthread_mutex_lock(&g->lock);
    g->gated = true;
    g->gate_off = off;
    pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gatevol *g)
{
    pthread_mutex_lock(&g->lock);
    g->gated = false;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Wait until `n` calls wait at the gate (false after 5 s). */
static bool gate_wait_held(struct gatevol *g, unsigned n)
{
    struct timespec ts;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&g->lock);
    while (g->waiting < n && ok) {
        ok = pthread_cond_timedwait(&g->cond, &g->lock, &ts) == 0;
    }
    ok = g->waiting >= n;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

struct fx {
    struct gatevol *vol;
    vmapple_blockdev *bd;
    vmapple_vhost_user_blk *be;
    pthread_t server;
    bool serving;
    int server_fd; /* the back end's end of the socketpair */
    int serve_result;
    struct vfront f;
    pthread_mutex_t log_lock;
    char log[16384];
};

static void log_cb(void *opaque, int level, const char *message)
{
    struct fx *x = opaque;
    size_t len;

    (void)level;
    pthread_mutex_lock(&x->log_lock);
    len = strlen(x->log);
    if (len + strlen(message) + 2 >= sizeof(x->log)) {
        len = 0; /* keep the newest lines */
    }
    snprintf(x->log + len, sizeof(x->log) - len, "%s\n", message);
    pthread_mutex_unlock(&x->log_lock);
}

static bool log_has(struct fx *x, const char *needle)
{
    bool found;

    pthread_mutex_lock(&x->log_lock);
    found = strstr(x->log, needle) != NULL;
    pthread_mutex_unlock(&x->log_lock);
    return found;
}

static void *serve_main(void *arg)
{
    struct fx *x = arg;

    x->serve_result = vmapple_vhost_user_blk_serve(x->be, x->server_fd);
    return NULL;
}

/* Connect a fresh front end (new socketpair, new guest RAM). */
static void connect_front(struct fx *x)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    vfront_init(&x->f, sv[0], RAM_SIZE);
    x->server_fd = sv[1];
    assert_int_equal(pthread_create(&x->server, NULL, serve_main, x), 0);
    x->serving = true;
}

/* Close our end and collect what serve() returned. */
static int disconnect_front(struct fx *x)
{
    vfront_fini(&x->f);
    if (x->serving) {
        pthread_join(x->server, NULL);
        x->serving = false;
    }
    return x->serve_result;
}

/* After the back end closed on us: its result, and our end closed too. */
static int collect_close(struct fx *x)
{
    assert_true(vfront_closed(&x->f, 5000));
    pthread_join(x->server, NULL);
    x->serving = false;
    vfront_fini(&x->f);
    return x->serve_result;
}

static vmapple_vhost_user_blk_options base_opts(struct fx *x)
{
    vmapple_vhost_user_blk_options o = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;

    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
    o.blockdev = x->bd;
    o.num_queues = 2;
    o.serial = "VHOST-TEST";
    return o;
}

static void make_backend(struct fx *x, const vmapple_vhost_user_blk_options *o)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;

    ops.log = log_cb;
    if (x->be) {
        vmapple_vhost_user_blk_destroy(x->be);
    }
    assert_int_equal(vmapple_vhost_user_blk_create(&ops, x, o, &x->be), 0);
}

static void open_volume(struct fx *x, uint32_t flags)
{
    vmapple_blockdev_ops bops = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options bo = VMAPPLE_BLOCKDEV_OPTIONS_INIT;

    bops.read = gv_read;
    bops.write = gv_write;
    bops.flush = gv_flush;
    bo.capacity = VOL_SIZE;
    bo.flags = VMAPPLE_BLOCKDEV_THREAD_SAFE | flags;
    if (x->bd) {
        vmapple_blockdev_release(x->bd);
    }
    assert_int_equal(vmapple_blockdev_create(&bops, x->vol, &bo, &x->bd), 0);
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof(*x));
    vmapple_vhost_user_blk_options o;

    x->vol = calloc(1, sizeof(*x->vol));
    pthread_mutex_init(&x->vol->lock, NULL);
    pthread_cond_init(&x->vol->cond, NULL);
    for (uint64_t i = 0; i < VOL_SIZE; i++) {
        x->vol->data[i] = (uint8_t)(i * 7 + (i >> 9));
    }
    pthread_mutex_init(&x->log_lock, NULL);
    x->f.sock = -1;
    open_volume(x, 0);
    o = base_opts(x);
    make_backend(x, &o);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;

    gate_open(x->vol);
    if (x->serving) {
        disconnect_front(x);
    }
    vmapple_vhost_user_blk_destroy(x->be);
    vmapple_blockdev_release(x->bd);
    pthread_mutex_destroy(&x->vol->lock);
    pthread_cond_destroy(&x->vol->cond);
    free(x->vol);
    free(x);
    return 0;
}

#define ALL_FEATURES  UINT64_MAX
#define ALL_PROTOCOL  UINT64_MAX
#define NO_REPLY_ACK  (UINT64_MAX & ~VF_PF_REPLY_ACK)
#define LINUX_QSIZE   128
#define DATA_AREA_OFF (2ull << 20)

/* Connect, negotiate, set up `rings` rings of LINUX_QSIZE. */
static void bring_up(struct fx *x, unsigned rings)
{
    connect_front(x);
    assert_int_equal(vfront_handshake(&x->f, ALL_FEATURES, ALL_PROTOCOL), 0);
    for (unsigned q = 0; q < rings; q++) {
        assert_int_equal(vfront_ring_setup(&x->f, (uint16_t)q, LINUX_QSIZE), 0);
    }
    assert_int_equal(vfront_sync(&x->f), 0);
}

static uint64_t data_gpa(uint64_t off)
{
    return VFRONT_GPA + DATA_AREA_OFF + off;
}

static uint8_t *data_ptr(struct fx *x, uint64_t off)
{
    return vfront_ptr(&x->f, data_gpa(off));
}

/* Negotiation and configuration. */

static void test_features(void **state)
{
    struct fx *x = *state;
    uint64_t f, pf, nq;

    connect_front(x);
    assert_int_equal(vfront_get_u64(&x->f, VF_GET_FEATURES, &f), 0);
    assert_true(f & VF_F_VERSION_1);
    assert_true(f & VF_F_PROTOCOL_FEATURES);
    assert_true(f & VF_F_INDIRECT_DESC);
    assert_true(f & VF_F_EVENT_IDX);
    assert_true(f & (1ull << 1));   /* SIZE_MAX */
    assert_true(f & (1ull << 2));   /* SEG_MAX */
    assert_true(f & (1ull << 6));   /* BLK_SIZE */
    assert_true(f & (1ull << 9));   /* FLUSH */
    assert_true(f & (1ull << 12));  /* MQ */
    assert_false(f & (1ull << 5));  /* not RO */
    assert_false(f & (1ull << 26)); /* no dirty log: no live migration */
    assert_int_equal(vfront_get_u64(&x->f, VF_GET_PROTOCOL_FEATURES, &pf), 0);
    assert_int_equal(pf, VF_PF_MQ | VF_PF_REPLY_ACK | VF_PF_CONFIG | VF_PF_RESET_DEVICE);
    assert_int_equal(vfront_get_u64(&x->f, VF_GET_QUEUE_NUM, &nq), 0);
    assert_int_equal(nq, 2);
    assert_int_equal(disconnect_front(x), 0);
}

static void test_config(void **state)
{
    struct fx *x = *state;
    vmapple_vhost_user_blk_options o = base_opts(x);
    uint8_t cfg[256];
    uint64_t cap;
    uint32_t v32;
    uint16_t v16;

    for (int variant = 1; variant <= 2; variant++) {
        o.variant = (uint32_t)variant;
        o.num_queues = (uint32_t)(variant * 3);
        make_backend(x, &o);
        connect_front(x);
        memset(cfg, 0xaa, sizeof(cfg));
        assert_int_equal(vfront_get_config(&x->f, 0, 96, cfg), 0);
        memcpy(&cap, cfg + CFG_CAPACITY, 8);
        assert_int_equal(cap, VOL_SIZE / 512);
        memcpy(&v32, cfg + CFG_SEG_MAX, 4);
        assert_int_equal(v32, 126);
        memcpy(&v32, cfg + CFG_BLK_SIZE, 4);
        assert_int_equal(v32, 512);
        memcpy(&v16, cfg + CFG_NUM_QUEUES, 2);
        assert_int_equal(v16, variant * 3);
        memcpy(&v32, cfg + CFG_TYPE, 4);
        assert_int_equal(v32, variant);
        for (int i = 64; i < 96; i++) {
            assert_int_equal(cfg[i], 0);
        }
        /* Partial reads, and bytes past the 96 read as zero (QEMU asks for its struct's size). */
        assert_int_equal(vfront_get_config(&x->f, CFG_TYPE, 4, &v32), 0);
        assert_int_equal(v32, variant);
        assert_int_equal(vfront_get_config(&x->f, 90, 100, cfg), 0);
        for (int i = 0; i < 100; i++) {
            assert_int_equal(cfg[i], 0);
        }
        assert_int_equal(disconnect_front(x), 0);
    }
}

static void test_read_only_features(void **state)
{
    struct fx *x = *state;
    vmapple_vhost_user_blk_options o = base_opts(x);
    uint64_t f;

    o.flags = VMAPPLE_VIRTIO_BLK_READ_ONLY;
    make_backend(x, &o);
    connect_front(x);
    assert_int_equal(vfront_get_u64(&x->f, VF_GET_FEATURES, &f), 0);
    assert_true(f & (1ull << 5));
    assert_int_equal(disconnect_front(x), 0);
}

/* I/O. */

static void test_io_round_trip(void **state)
{
    struct fx *x = *state;
    vmapple_virtio_blk_stats st = VMAPPLE_VIRTIO_BLK_STATS_INIT;
    uint8_t id[20];

    bring_up(x, 2);
    for (int q = 0; q < 2; q++) {
        memset(data_ptr(x, 0), 0x30 + q, 8192);
        assert_int_equal(vfront_blk_do(&x->f, (uint16_t)q, VF_BLK_T_OUT, 8 + 32 * (uint64_t)q,
                                       data_gpa(0), 8192),
                         S_OK);
        memset(data_ptr(x, 0x10000), 0, 8192);
        assert_int_equal(vfront_blk_do(&x->f, (uint16_t)q, VF_BLK_T_IN, 8 + 32 * (uint64_t)q,
                                       data_gpa(0x10000), 8192),
                         S_OK);
        assert_memory_equal(data_ptr(x, 0x10000), data_ptr(x, 0), 8192);
        /* And in the volume itself, at the right place. */
        assert_int_equal(x->vol->data[(8 + 32 * q) * 512], 0x30 + q);
        assert_int_equal(x->vol->data[(8 + 32 * q) * 512 + 8191], 0x30 + q);
        assert_int_equal(x->vol->data[(8 + 32 * q) * 512 - 1],
                         (uint8_t)(((8 + 32 * q) * 512 - 1) * 7 + ((8 + 32 * q) * 512 - 1) / 512));
        assert_int_equal(vfront_blk_do(&x->f, (uint16_t)q, VF_BLK_T_FLUSH, 0, 0, 0), S_OK);
    }
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_GET_ID, 0, data_gpa(0x20000), 20), S_OK);
    memcpy(id, data_ptr(x, 0x20000), 20);
    assert_memory_equal(id, "VHOST-TEST\0\0\0\0\0\0\0\0\0\0", 20);
    assert_int_equal(vfront_blk_do(&x->f, 1, VF_BLK_T_BARRIER, 0, 0, 0), S_OK);
    /* Out of range: IOERR, the connection stays. */
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, VOL_SIZE / 512, data_gpa(0), 512),
                     S_IOERR);
    /* The counters follow the used ring on the ring's thread: give them a moment. */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(vmapple_vhost_user_blk_get_stats(x->be, &st), 0);
        if (st.requests == 9) {
            break;
        }
        usleep(1000);
    }
    assert_int_equal(st.requests, 9);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.write_bytes, 2 * 8192);
    assert_int_equal(st.read_bytes, 2 * 8192);
    assert_int_equal(st.flushes, 3); /* two FLUSH and the flushing barrier */
    assert_int_equal(st.barriers, 1);
    assert_int_equal(st.io_errors, 1);
    assert_int_equal(disconnect_front(x), 0);
}

static void test_read_only_volume(void **state)
{
    struct fx *x = *state;
    vmapple_vhost_user_blk_options o;
    uint8_t before[4096];

    open_volume(x, VMAPPLE_BLOCKDEV_READ_ONLY);
    o = base_opts(x);
    make_backend(x, &o);
    bring_up(x, 1);
    memcpy(before, x->vol->data, sizeof(before));
    memset(data_ptr(x, 0), 0xee, 4096);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_OUT, 0, data_gpa(0), 4096), S_IOERR);
    assert_memory_equal(x->vol->data, before, sizeof(before));
    assert_int_equal(x->vol->writes, 0);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 4096), S_OK);
    assert_memory_equal(data_ptr(x, 0), before, sizeof(before));
    assert_int_equal(disconnect_front(x), 0);
}

/* One queue's request held in the volume must not hold up another queue. */
static void test_queues_independent(void **state)
{
    struct fx *x = *state;
    uint16_t head;
    uint32_t len;
    int h;

    bring_up(x, 2);
    gate_set(x->vol, 1000 * 512);
    h = vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, 1000, data_gpa(0), 4096);
    assert_true(h >= 0);
    vfront_kick(&x->f, 0);
    assert_true(gate_wait_held(x->vol, 1));
    for (int i = 0; i < 32; i++) {
        assert_int_equal(
            vfront_blk_do(&x->f, 1, VF_BLK_T_IN, (uint64_t)i * 8, data_gpa(0x10000), 4096), S_OK);
    }
    assert_int_equal(vfront_get_used(&x->f, 0, &head, &len), 0);
    gate_open(x->vol);
    assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 5000), 1);
    assert_int_equal(head, h);
    assert_int_equal(vfront_blk_status(&x->f, 0, head), S_OK);
    assert_int_equal(disconnect_front(x), 0);
}

/* Many requests in flight on every queue at once. */
static void test_queue_depth(void **state)
{
    struct fx *x = *state;
    vmapple_vhost_user_blk_options o = base_opts(x);
    unsigned done[4] = { 0 };

    o.num_queues = 4;
    make_backend(x, &o);
    bring_up(x, 4);
    for (uint16_t q = 0; q < 4; q++) {
        for (int i = 0; i < 32; i++) {
            uint64_t off = ((uint64_t)q * 32 + (uint64_t)i) * 4096;
            memset(data_ptr(x, off), q * 32 + i, 4096);
            assert_true(vfront_blk_submit(&x->f, q, VF_BLK_T_OUT, off / 512, data_gpa(off), 4096) >=
                        0);
        }
        vfront_kick(&x->f, q);
    }
    for (uint16_t q = 0; q < 4; q++) {
        while (done[q] < 32) {
            uint16_t head;
            uint32_t len;
            assert_int_equal(vfront_wait_used(&x->f, q, &head, &len, 5000), 1);
            assert_int_equal(vfront_blk_status(&x->f, q, head), S_OK);
            done[q]++;
        }
    }
    for (int i = 0; i < 128; i++) {
        assert_int_equal(x->vol->data[(uint64_t)i * 4096], i);
        assert_int_equal(x->vol->data[(uint64_t)i * 4096 + 4095], i);
    }
    assert_int_equal(disconnect_front(x), 0);
}

static void test_reply_ack(void **state)
{
    struct fx *x = *state;
    uint32_t s[2] = { 0, 64 };
    uint8_t cfg[12 + 4] = { 0 };
    uint32_t off = 60, size = 4;
    uint64_t ack = 99;

    bring_up(x, 1);
    assert_int_equal(vfront_acked(&x->f, VF_SET_VRING_NUM, s, 8, &ack), 0);
    assert_int_equal(ack, 0);
    /* The driver writing the (read-only) config is refused, not fatal. */
    memcpy(cfg, &off, 4);
    memcpy(cfg + 4, &size, 4);
    assert_int_equal(vfront_acked(&x->f, VF_SET_CONFIG, cfg, sizeof(cfg), &ack), 0);
    assert_int_equal(ack, 1);
    assert_true(log_has(x, "SET_CONFIG of 4 bytes at 60 refused"));
    assert_int_equal(vfront_get_config(&x->f, 60, 4, &off), 0);
    assert_int_equal(off, 1);
    assert_int_equal(disconnect_front(x), 0);
}

/* GET_VRING_BASE answers only once the requests taken from the ring are complete. */
static void test_get_vring_base_waits(void **state)
{
    struct fx *x = *state;
    uint32_t s[2] = { 0, 0 }, req, flags, reply[2];
    uint16_t head;
    uint32_t len;

    bring_up(x, 1);
    gate_set(x->vol, 0);
    memset(data_ptr(x, 0), 0x5c, 4096);
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_OUT, 0, data_gpa(0), 4096) >= 0);
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, 64, data_gpa(0x10000), 4096) >= 0);
    vfront_kick(&x->f, 0);
    assert_true(gate_wait_held(x->vol, 1));
    assert_int_equal(vfront_send(&x->f, VF_GET_VRING_BASE, VF_FLAG_VERSION, s, 8, NULL, 0), 0);
    assert_int_equal(vfront_recv(&x->f, &req, &flags, reply, sizeof(reply), 200), -ETIMEDOUT);
    gate_open(x->vol);
    assert_int_equal(vfront_recv(&x->f, &req, &flags, reply, sizeof(reply), 5000), 8);
    assert_int_equal(req, VF_GET_VRING_BASE);
    assert_int_equal(reply[0], 0);
    assert_int_equal(reply[1], 2);
    /* Both were completed into the used ring before the reply. */
    assert_int_equal(vfront_used_idx(&x->f, 0), 2);
    assert_int_equal(vfront_get_used(&x->f, 0, &head, &len), 1);
    assert_int_equal(vfront_get_used(&x->f, 0, &head, &len), 1);
    assert_int_equal(x->vol->data[0], 0x5c);
    /* The ring is stopped: a new request waits until the front end starts it again. */
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0x10000), 512) >= 0);
    vfront_kick(&x->f, 0);
    usleep(50000);
    assert_int_equal(vfront_used_idx(&x->f, 0), 2);
    assert_int_equal(vfront_ring_restart(&x->f, 0, 2), 0);
    assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 5000), 1);
    assert_int_equal(vfront_blk_status(&x->f, 0, head), S_OK);
    assert_int_equal(disconnect_front(x), 0);
}

/*
 * The front end goes away with requests in flight: the back end finishes
 * them (nothing acknowledged is lost), writes nothing to the old guest
 * memory afterwards, and serves the next front end.
 */
static void test_disconnect_reconnect(void **state)
{
    struct fx *x = *state;
    uint8_t *old_ram;
    int old_memfd;
    uint16_t used_at_close, idx;
    uint64_t used_off;

    bring_up(x, 2);
    for (int i = 0; i < 16; i++) {
        memset(data_ptr(x, 0), 0x80 + i, 4096);
        assert_int_equal(vfront_blk_do(&x->f, (uint16_t)(i & 1), VF_BLK_T_OUT, (uint64_t)i * 8,
                                       data_gpa(0), 4096),
                         S_OK);
    }
    /* Two writes held in the volume, then the front end disappears. */
    gate_set(x->vol, 200 * 512);
    memset(data_ptr(x, 0x10000), 0x11, 4096);
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_OUT, 200, data_gpa(0x10000), 4096) >= 0);
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_OUT, 200, data_gpa(0x10000), 4096) >= 0);
    vfront_kick(&x->f, 0);
    assert_true(gate_wait_held(x->vol, 1));
    /* Keep the old guest RAM to look at it afterwards. */
    old_memfd = dup(x->f.memfd);
    old_ram = mmap(NULL, RAM_SIZE, PROT_READ, MAP_SHARED, old_memfd, 0);
    assert_true(old_ram != MAP_FAILED);
    used_at_close = vfront_used_idx(&x->f, 0);
    used_off = x->f.rings[0].used - VFRONT_GPA;
    close(x->f.sock);
    x->f.sock = -1;
    usleep(20000);
    gate_open(x->vol);
    pthread_join(x->server, NULL);
    x->serving = false;
    assert_int_equal(x->serve_result, 0);
    vfront_fini(&x->f);
    /* The held writes ran, but the departed front end's used ring was not touched. */
    assert_int_equal(x->vol->data[200 * 512], 0x11);
    memcpy(&idx, old_ram + used_off + 2, 2);
    assert_int_equal(idx, used_at_close);
    munmap(old_ram, RAM_SIZE);
    close(old_memfd);
    /* Every acknowledged write is there for the next front end. */
    bring_up(x, 2);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(vfront_blk_do(&x->f, (uint16_t)(i & 1), VF_BLK_T_IN, (uint64_t)i * 8,
                                       data_gpa(0x20000), 4096),
                         S_OK);
        assert_int_equal(data_ptr(x, 0x20000)[0], 0x80 + i);
        assert_int_equal(data_ptr(x, 0x20000)[4095], 0x80 + i);
    }
    assert_int_equal(disconnect_front(x), 0);
}

/* Several regions: rings in the second, a buffer across the boundary, a gap between. */
static void test_memory_regions(void **state)
{
    struct fx *x = *state;
    uint8_t p[8 + 3 * 32] = { 0 };
    uint32_t n = 3;
    int fds[3];
    const uint64_t half = RAM_SIZE / 2;
    /* Region 0: RAM [0, half) at VFRONT_GPA; region 1: [half, RAM) right after it in guest
     * space but at another user address and file offset; region 2: a second memfd far away. */
    uint64_t r0[4] = { VFRONT_GPA, half, VFRONT_UVA, 0 };
    uint64_t r1[4] = { VFRONT_GPA + half, half, VFRONT_UVA + 0x40000000, half };
    uint64_t r2[4] = { 0x4000000000ull, 0x10000, 0x7f2000000000ull, 0 };
    int extra = memfd_create("extra", MFD_CLOEXEC);
    uint16_t head;
    uint32_t len;
    uint8_t *desc;

    assert_true(extra >= 0);
    assert_int_equal(ftruncate(extra, 0x10000), 0);
    connect_front(x);
    x->f.heap = half + 0x1000; /* rings and areas in region 1 */
    assert_int_equal(vfront_handshake(&x->f, ALL_FEATURES, ALL_PROTOCOL), 0);
    memcpy(p, &n, 4);
    memcpy(p + 8, r0, 32);
    memcpy(p + 40, r1, 32);
    memcpy(p + 72, r2, 32);
    fds[0] = fds[1] = x->f.memfd;
    fds[2] = extra;
    assert_int_equal(vfront_send(&x->f, VF_SET_MEM_TABLE, VF_FLAG_VERSION, p, sizeof(p), fds, 3),
                     0);
    /* The ring addresses the front end sends are user addresses of region 1. */
    {
        struct vfront_ring *r = &x->f.rings[0];
        uint8_t a[40] = { 0 };
        uint32_t idx = 0;
        uint64_t d, u, av;
        int kick, call;
        r->size = 64;
        r->desc = vfront_alloc(&x->f, 16 * 64, 4096);
        r->avail = vfront_alloc(&x->f, 6 + 2 * 64, 4096);
        r->used = vfront_alloc(&x->f, 6 + 8 * 64, 4096);
        r->blk_area = vfront_alloc(&x->f, 32 * 64, 4096);
        for (uint16_t i = 0; i < 64; i++) {
            r->next_free[i] = (uint16_t)(i + 1);
        }
        r->num_free = 64;
        d = r->desc - (VFRONT_GPA + half) + r1[2];
        u = r->used - (VFRONT_GPA + half) + r1[2];
        av = r->avail - (VFRONT_GPA + half) + r1[2];
        memcpy(a + 8, &d, 8);
        memcpy(a + 16, &u, 8);
        memcpy(a + 24, &av, 8);
        assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 0, 64), 0);
        assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_BASE, 0, 0), 0);
        assert_int_equal(vfront_send(&x->f, VF_SET_VRING_ADDR, VF_FLAG_VERSION, a, 40, NULL, 0), 0);
        (void)idx;
        kick = r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        call = r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        {
            uint64_t q0 = 0;
            assert_int_equal(
                vfront_send(&x->f, VF_SET_VRING_CALL, VF_FLAG_VERSION, &q0, 8, &call, 1), 0);
            assert_int_equal(
                vfront_send(&x->f, VF_SET_VRING_KICK, VF_FLAG_VERSION, &q0, 8, &kick, 1), 0);
        }
        assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_ENABLE, 0, 1), 0);
    }
    /* 8 KiB written from the last 4 KiB of region 0 and the first 4 KiB of region 1. */
    memset(x->f.ram + half - 4096, 0x61, 4096);
    memset(x->f.ram + half, 0x62, 4096);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_OUT, 32, VFRONT_GPA + half - 4096, 8192),
                     S_OK);
    assert_int_equal(x->vol->data[32 * 512], 0x61);
    assert_int_equal(x->vol->data[32 * 512 + 4096], 0x62);
    /* A read into region 2. */
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 32, 0x4000000000ull + 0x1000, 8192),
                     S_OK);
    {
        uint8_t *e = mmap(NULL, 0x10000, PROT_READ, MAP_SHARED, extra, 0);
        assert_true(e != MAP_FAILED);
        assert_int_equal(e[0x1000], 0x61);
        assert_int_equal(e[0x1000 + 8191], 0x62);
        munmap(e, 0x10000);
    }
    /* A buffer in the gap between regions is IOERR, and the ring goes on. */
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, 0x3000000000ull, 512), S_IOERR);
    /* A descriptor pointing past the end of region 2 as well. */
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, 0x4000000000ull + 0xf000, 8192),
                     S_IOERR);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, VFRONT_GPA, 512), S_OK);
    /* A descriptor index out of range breaks the ring (err eventfd), not the back end. */
    desc = vfront_ptr(&x->f, x->f.rings[0].desc);
    head = (uint16_t)vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, 0, VFRONT_GPA, 512);
    {
        uint16_t bad = 999, flags = 1;
        memcpy(desc + 16 * head + 12, &flags, 2);
        memcpy(desc + 16 * head + 14, &bad, 2);
    }
    vfront_kick(&x->f, 0);
    assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 300), -ETIMEDOUT);
    assert_true(log_has(x, "next descriptor index out of range"));
    close(extra);
    assert_int_equal(disconnect_front(x), 0);
}

/* A new memory table while the rings run (memory hot-plug): I/O goes on. */
static void test_mem_table_while_running(void **state)
{
    struct fx *x = *state;

    bring_up(x, 2);
    assert_int_equal(vfront_blk_do(&x->f, 1, VF_BLK_T_IN, 0, data_gpa(0), 4096), S_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vfront_set_mem_table(&x->f), 0);
        assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 8, data_gpa(0), 4096), S_OK);
        assert_int_equal(vfront_blk_do(&x->f, 1, VF_BLK_T_IN, 16, data_gpa(0), 4096), S_OK);
    }
    assert_int_equal(disconnect_front(x), 0);
}

static void test_reset_device(void **state)
{
    struct fx *x = *state;

    bring_up(x, 1);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 4096), S_OK);
    assert_int_equal(vfront_send(&x->f, VF_RESET_DEVICE, VF_FLAG_VERSION, NULL, 0, NULL, 0), 0);
    assert_int_equal(vfront_sync(&x->f), 0);
    /* Everything about the rings is forgotten: set them up from scratch. */
    assert_int_equal(vfront_set_u64(&x->f, VF_SET_FEATURES, x->f.features), 0);
    assert_int_equal(vfront_ring_setup(&x->f, 0, 64), 0);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 4096), S_OK);
    assert_int_equal(disconnect_front(x), 0);
}

/* A kick "descriptor" with the no-fd flag: the back end polls the ring. */
static void test_polling_ring(void **state)
{
    struct fx *x = *state;
    uint64_t v = 0x100; /* ring 0, no descriptor */
    uint16_t head;
    uint32_t len;

    bring_up(x, 1);
    assert_int_equal(vfront_send(&x->f, VF_SET_VRING_KICK, VF_FLAG_VERSION, &v, 8, NULL, 0), 0);
    assert_int_equal(vfront_sync(&x->f), 0);
    for (int i = 0; i < 8; i++) {
        int h = vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, (uint64_t)i, data_gpa(0), 512);
        uint16_t *avail_idx = vfront_ptr(&x->f, x->f.rings[0].avail + 2);
        assert_true(h >= 0);
        /* Publish without kicking. */
        __atomic_store_n(avail_idx, x->f.rings[0].avail_idx, __ATOMIC_RELEASE);
        assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 5000), 1);
        assert_int_equal(head, h);
    }
    assert_int_equal(disconnect_front(x), 0);
}

/* Without protocol features every ring is enabled as soon as it is set up. */
static void test_without_protocol_features(void **state)
{
    struct fx *x = *state;
    uint64_t offered;

    connect_front(x);
    assert_int_equal(vfront_get_u64(&x->f, VF_GET_FEATURES, &offered), 0);
    x->f.features = offered & ~VF_F_PROTOCOL_FEATURES & ~VF_F_EVENT_IDX;
    assert_int_equal(vfront_set_u64(&x->f, VF_SET_FEATURES, x->f.features), 0);
    assert_int_equal(vfront_set_mem_table(&x->f), 0);
    assert_int_equal(vfront_ring_setup(&x->f, 0, 32), 0); /* its ENABLE is a no-op here */
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 4096), S_OK);
    assert_int_equal(disconnect_front(x), 0);
}

static void test_disabled_ring_waits(void **state)
{
    struct fx *x = *state;
    uint16_t head;
    uint32_t len;

    bring_up(x, 1);
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_ENABLE, 0, 0), 0);
    assert_int_equal(vfront_sync(&x->f), 0);
    assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 512) >= 0);
    vfront_kick(&x->f, 0);
    assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 100), -ETIMEDOUT);
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_ENABLE, 0, 1), 0);
    assert_int_equal(vfront_wait_used(&x->f, 0, &head, &len, 5000), 1);
    assert_int_equal(disconnect_front(x), 0);
}

static void test_stop(void **state)
{
    struct fx *x = *state;

    bring_up(x, 1);
    assert_int_equal(vmapple_vhost_user_blk_stop(x->be), 0);
    pthread_join(x->server, NULL);
    x->serving = false;
    assert_int_equal(x->serve_result, -ECANCELED);
    assert_true(vfront_closed(&x->f, 1000));
    vfront_fini(&x->f);
    /* Stopped for good: the next serve returns at once. */
    connect_front(x);
    pthread_join(x->server, NULL);
    x->serving = false;
    assert_int_equal(x->serve_result, -ECANCELED);
    vfront_fini(&x->f);
}

static void test_second_serve_busy(void **state)
{
    struct fx *x = *state;
    int sv[2];

    bring_up(x, 1);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(vmapple_vhost_user_blk_serve(x->be, sv[1]), -EBUSY);
    close(sv[0]);
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_IN, 0, data_gpa(0), 512), S_OK);
    assert_int_equal(disconnect_front(x), 0);
}

static void test_create_errors(void **state)
{
    struct fx *x = *state;
    vmapple_vhost_user_blk_options o = base_opts(x);
    vmapple_vhost_user_blk *be;
    static const struct {
        size_t off;
        uint32_t value;
        const char *needle;
    } bad[] = {
        { offsetof(vmapple_vhost_user_blk_options, variant), 0, "option variant" },
        { offsetof(vmapple_vhost_user_blk_options, variant), 3, "option variant" },
        { offsetof(vmapple_vhost_user_blk_options, num_queues), 17, "option num_queues" },
        { offsetof(vmapple_vhost_user_blk_options, max_queue_size), 1000, "option max_queue_size" },
        { offsetof(vmapple_vhost_user_blk_options, max_queue_size), 4, "option max_queue_size" },
        { offsetof(vmapple_vhost_user_blk_options, seg_max), 1023, "option seg_max" },
        { offsetof(vmapple_vhost_user_blk_options, size_max), 100, "option size_max" },
        { offsetof(vmapple_vhost_user_blk_options, blk_size), 600, "option blk_size" },
        { offsetof(vmapple_vhost_user_blk_options, barrier_mode), 3, "option barrier_mode" },
        { offsetof(vmapple_vhost_user_blk_options, flags), 0x100, "option flags" },
        { offsetof(vmapple_vhost_user_blk_options, worker_poll_us), 10001,
          "option worker_poll_us" },
    };

    assert_int_equal(vmapple_vhost_user_blk_create(NULL, NULL, NULL, &be), -EINVAL);
    assert_int_equal(vmapple_vhost_user_blk_create(NULL, NULL, &o, NULL), -EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vmapple_vhost_user_blk_options b = o;
        memcpy((uint8_t *)&b + bad[i].off, &bad[i].value, 4);
        assert_int_equal(vmapple_vhost_user_blk_create(NULL, NULL, &b, &be), -EINVAL);
        assert_non_null(strstr(vmapple_last_error(), bad[i].needle));
        assert_non_null(strstr(vmapple_last_error(), "vhost-user-blk"));
    }
    o.blockdev = NULL;
    assert_int_equal(vmapple_vhost_user_blk_create(NULL, NULL, &o, &be), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "option blockdev"));
    /* io_uring needs a file volume. */
    o = base_opts(x);
    o.io_engine = VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING;
    assert_int_equal(vmapple_vhost_user_blk_create(NULL, NULL, &o, &be), -ENOTSUP);
    /* A caller that knows a newer, bigger struct with zeroes beyond ours is fine. */
    {
        uint8_t big[sizeof(o) + 16] = { 0 };
        uint32_t size = sizeof(big);
        o = base_opts(x);
        memcpy(big, &o, sizeof(o));
        memcpy(big, &size, 4);
        assert_int_equal(vmapple_vhost_user_blk_create(
                             NULL, NULL, (vmapple_vhost_user_blk_options *)(void *)big, &be),
                         0);
        vmapple_vhost_user_blk_destroy(be);
        big[sizeof(o) + 3] = 1;
        assert_int_equal(vmapple_vhost_user_blk_create(
                             NULL, NULL, (vmapple_vhost_user_blk_options *)(void *)big, &be),
                         -EINVAL);
    }
    assert_int_equal(vmapple_vhost_user_blk_serve(NULL, 0), -EINVAL);
    assert_int_equal(vmapple_vhost_user_blk_serve(x->be, -1), -EINVAL);
    assert_int_equal(vmapple_vhost_user_blk_stop(NULL), -EINVAL);
    assert_int_equal(vmapple_vhost_user_blk_get_stats(x->be, NULL), -EINVAL);
    vmapple_vhost_user_blk_destroy(NULL);
}

/*
 * A file volume (io_uring when available), through the page cache and with
 * direct I/O: the same I/O, checked in the file; with direct I/O some
 * buffers are not aligned for it and bounce.
 */
static void file_volume_one(struct fx *x, uint32_t flags)
{
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_vhost_user_blk_options o;
    vmapple_virtio_blk_stats st = VMAPPLE_VIRTIO_BLK_STATS_INIT;
    char path[256];
    uint8_t block[4096];
    int fd, ret;

    snprintf(path, sizeof(path), "%s/vhost-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, VOL_SIZE), 0);
    vmapple_blockdev_release(x->bd);
    fo.flags = flags;
    ret = vmapple_blockdev_open_file(path, &fo, &x->bd);
    if (ret == -EINVAL && (flags & VMAPPLE_BLOCKDEV_DIRECT)) {
        /* The file system refuses O_DIRECT; any other failure is one. */
        print_message("direct I/O not available here: %s\n", vmapple_last_error());
        x->bd = NULL;
        open_volume(x, 0);
        close(fd);
        unlink(path);
        skip();
    }
    assert_int_equal(ret, 0);
    o = base_opts(x);
    make_backend(x, &o);
    bring_up(x, 2);
    for (int i = 0; i < 64; i++) {
        /* Every eighth buffer 8 bytes off a page: direct I/O bounces it. */
        uint64_t off = (uint64_t)i * 8192 + (i % 8 == 7 ? 8 : 0);
        memset(data_ptr(x, off), i + 1, 4096);
        assert_int_equal(vfront_blk_submit(&x->f, (uint16_t)(i & 1), VF_BLK_T_OUT, (uint64_t)i * 8,
                                           data_gpa(off), 4096) >= 0,
                         1);
    }
    vfront_kick(&x->f, 0);
    vfront_kick(&x->f, 1);
    for (int i = 0; i < 64; i++) {
        uint16_t head;
        uint32_t len;
        assert_int_equal(vfront_wait_used(&x->f, (uint16_t)(i & 1), &head, &len, 5000), 1);
        assert_int_equal(vfront_blk_status(&x->f, (uint16_t)(i & 1), head), S_OK);
    }
    assert_int_equal(vfront_blk_do(&x->f, 0, VF_BLK_T_FLUSH, 0, 0, 0), S_OK);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(pread(fd, block, 4096, (off_t)i * 4096), 4096);
        assert_int_equal(block[0], i + 1);
        assert_int_equal(block[4095], i + 1);
    }
    /* And back through the device, into unaligned memory too. */
    assert_int_equal(vfront_blk_do(&x->f, 1, VF_BLK_T_IN, 8 * 9, data_gpa(0x100008), 4096), S_OK);
    assert_int_equal(*data_ptr(x, 0x100008), 10);
    assert_int_equal(*data_ptr(x, 0x100008 + 4095), 10);
    close(fd);
    unlink(path);
    assert_int_equal(disconnect_front(x), 0);
    assert_int_equal(vmapple_vhost_user_blk_get_stats(x->be, &st), 0);
    assert_int_equal(st.io_errors, 0);
    if (flags & VMAPPLE_BLOCKDEV_DIRECT) {
        assert_true(st.bounced >= 9);
    } else {
        assert_int_equal(st.bounced, 0);
    }
}

static void test_file_volume(void **state)
{
    file_volume_one(*state, 0);
    file_volume_one(*state, VMAPPLE_BLOCKDEV_DIRECT);
}

/* Malformed messages: each closes the connection with a line naming it. */

struct bad_case {
    const char *name;
    void (*send)(struct fx *x);
    const char *expect; /* in the last error and the log */
    bool before_handshake;
};

static void send_raw(struct fx *x, uint32_t req, uint32_t flags, const void *p, uint32_t size,
                     const int *fds, unsigned nfds)
{
    assert_int_equal(vfront_send(&x->f, req, flags, p, size, fds, nfds), 0);
}

static void bad_version(struct fx *x)
{
    send_raw(x, VF_GET_FEATURES, 0x2, NULL, 0, NULL, 0);
}

static void bad_reply_flag(struct fx *x)
{
    send_raw(x, VF_GET_FEATURES, VF_FLAG_VERSION | VF_FLAG_REPLY, NULL, 0, NULL, 0);
}

static void bad_flag_bits(struct fx *x)
{
    send_raw(x, VF_GET_FEATURES, VF_FLAG_VERSION | 0x100, NULL, 0, NULL, 0);
}

static void bad_huge_payload(struct fx *x)
{
    send_raw(x, VF_SET_FEATURES, VF_FLAG_VERSION, NULL, 4097, NULL, 0);
}

static void bad_unknown_request(struct fx *x)
{
    send_raw(x, 99, VF_FLAG_VERSION, NULL, 0, NULL, 0);
}

static void bad_request_zero(struct fx *x)
{
    send_raw(x, 0, VF_FLAG_VERSION, NULL, 0, NULL, 0);
}

static void bad_log_base(struct fx *x)
{
    uint64_t v[2] = { 4096, 0 };
    send_raw(x, VF_SET_LOG_BASE, VF_FLAG_VERSION, v, 16, NULL, 0);
}

static void bad_features_size(struct fx *x)
{
    send_raw(x, VF_SET_FEATURES, VF_FLAG_VERSION, NULL, 4, NULL, 0);
}

static void bad_features_unoffered(struct fx *x)
{
    uint64_t v = (1ull << 32) | (1ull << 26); /* VHOST_F_LOG_ALL */
    send_raw(x, VF_SET_FEATURES, VF_FLAG_VERSION, &v, 8, NULL, 0);
}

static void bad_protocol_unoffered(struct fx *x)
{
    uint64_t v = 1ull << 1; /* LOG_SHMFD */
    send_raw(x, VF_SET_PROTOCOL_FEATURES, VF_FLAG_VERSION, &v, 8, NULL, 0);
}

static void bad_get_features_with_payload(struct fx *x)
{
    uint64_t v = 0;
    send_raw(x, VF_GET_FEATURES, VF_FLAG_VERSION, &v, 8, NULL, 0);
}

static void bad_fd_on_owner(struct fx *x)
{
    int fd = eventfd(0, EFD_CLOEXEC);
    send_raw(x, VF_SET_OWNER, VF_FLAG_VERSION, NULL, 0, &fd, 1);
    close(fd);
}

static void bad_num_index(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 2, 64), 0);
}

static void bad_num_index_huge(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 0xffffffffu, 64), 0);
}

static void bad_num_not_pow2(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 0, 100), 0);
}

static void bad_num_zero(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 0, 0), 0);
}

static void bad_num_too_big(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_NUM, 0, 2048), 0);
}

static void bad_base(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_BASE, 0, 0x10000), 0);
}

static void bad_state_size(struct fx *x)
{
    uint32_t s = 0;
    send_raw(x, VF_SET_VRING_BASE, VF_FLAG_VERSION, &s, 4, NULL, 0);
}

static void bad_enable_value(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_SET_VRING_ENABLE, 0, 2), 0);
}

static void bad_get_base_index(struct fx *x)
{
    assert_int_equal(vfront_vring_state(&x->f, VF_GET_VRING_BASE, 7, 0), 0);
}

static void addr_msg(struct fx *x, uint32_t index, uint32_t flags, uint64_t desc, uint64_t used,
                     uint64_t avail)
{
    uint8_t a[40] = { 0 };

    memcpy(a, &index, 4);
    memcpy(a + 4, &flags, 4);
    memcpy(a + 8, &desc, 8);
    memcpy(a + 16, &used, 8);
    memcpy(a + 24, &avail, 8);
    send_raw(x, VF_SET_VRING_ADDR, VF_FLAG_VERSION, a, 40, NULL, 0);
}

static void bad_addr_flags(struct fx *x)
{
    addr_msg(x, 0, 1, VFRONT_UVA, VFRONT_UVA + 0x2000, VFRONT_UVA + 0x1000);
}

static void bad_addr_outside(struct fx *x)
{
    addr_msg(x, 0, 0, VFRONT_UVA, VFRONT_UVA + RAM_SIZE - 16, VFRONT_UVA + 0x1000);
}

static void bad_addr_unmapped(struct fx *x)
{
    addr_msg(x, 0, 0, 0x1000, 0x3000, 0x2000);
}

static void bad_addr_misaligned(struct fx *x)
{
    addr_msg(x, 0, 0, VFRONT_UVA + 0x8008, VFRONT_UVA + 0x9000, VFRONT_UVA + 0xa000);
}

static void bad_addr_wrap(struct fx *x)
{
    addr_msg(x, 0, 0, UINT64_MAX - 15, VFRONT_UVA + 0x9000, VFRONT_UVA + 0xa000);
}

static void bad_addr_size(struct fx *x)
{
    uint8_t a[32] = { 0 };
    send_raw(x, VF_SET_VRING_ADDR, VF_FLAG_VERSION, a, 32, NULL, 0);
}

static void bad_kick_bits(struct fx *x)
{
    uint64_t v = 0x200;
    int fd = eventfd(0, EFD_CLOEXEC);
    send_raw(x, VF_SET_VRING_KICK, VF_FLAG_VERSION, &v, 8, &fd, 1);
    close(fd);
}

static void bad_kick_no_fd(struct fx *x)
{
    uint64_t v = 0;
    send_raw(x, VF_SET_VRING_KICK, VF_FLAG_VERSION, &v, 8, NULL, 0);
}

static void bad_kick_nofd_with_fd(struct fx *x)
{
    uint64_t v = 0x100;
    int fd = eventfd(0, EFD_CLOEXEC);
    send_raw(x, VF_SET_VRING_CALL, VF_FLAG_VERSION, &v, 8, &fd, 1);
    close(fd);
}

static void bad_kick_two_fds(struct fx *x)
{
    uint64_t v = 0;
    int fds[2] = { eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC) };
    send_raw(x, VF_SET_VRING_ERR, VF_FLAG_VERSION, &v, 8, fds, 2);
    close(fds[0]);
    close(fds[1]);
}

static void bad_kick_regular_file(struct fx *x)
{
    uint64_t v = 1;
    int fd = memfd_create("notanevent", MFD_CLOEXEC);
    send_raw(x, VF_SET_VRING_CALL, VF_FLAG_VERSION, &v, 8, &fd, 1);
    close(fd);
}

static void bad_kick_index(struct fx *x)
{
    uint64_t v = 5;
    int fd = eventfd(0, EFD_CLOEXEC);
    send_raw(x, VF_SET_VRING_KICK, VF_FLAG_VERSION, &v, 8, &fd, 1);
    close(fd);
}

static void mem_msg(struct fx *x, uint32_t n, const uint64_t (*r)[4], uint32_t size, const int *fds,
                    unsigned nfds)
{
    uint8_t p[8 + 9 * 32] = { 0 };

    memcpy(p, &n, 4);
    for (uint32_t i = 0; i < n && i < 9; i++) {
        memcpy(p + 8 + 32 * i, r[i], 32);
    }
    send_raw(x, VF_SET_MEM_TABLE, VF_FLAG_VERSION, p, size, fds, nfds);
}

static void bad_mem_zero_regions(struct fx *x)
{
    mem_msg(x, 0, NULL, 8, NULL, 0);
}

static void bad_mem_nine_regions(struct fx *x)
{
    uint64_t r[9][4];
    int fds[9];
    for (int i = 0; i < 9; i++) {
        r[i][0] = VFRONT_GPA + (uint64_t)i * 0x1000;
        r[i][1] = 0x1000;
        r[i][2] = VFRONT_UVA + (uint64_t)i * 0x1000;
        r[i][3] = (uint64_t)i * 0x1000;
        fds[i] = x->f.memfd;
    }
    mem_msg(x, 9, (const uint64_t(*)[4])r, 8 + 9 * 32, fds, 8);
}

static void bad_mem_fd_count(struct fx *x)
{
    uint64_t r[2][4] = { { VFRONT_GPA, 0x1000, VFRONT_UVA, 0 },
                         { VFRONT_GPA + 0x1000, 0x1000, VFRONT_UVA + 0x1000, 0x1000 } };
    mem_msg(x, 2, (const uint64_t(*)[4])r, 8 + 64, &x->f.memfd, 1);
}

static void bad_mem_size(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, 0x1000, VFRONT_UVA, 0 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 64, &x->f.memfd, 1);
}

static void bad_mem_past_file(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, RAM_SIZE + 0x1000, VFRONT_UVA, 0 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void bad_mem_offset_past_file(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, 0x1000, VFRONT_UVA, RAM_SIZE } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void bad_mem_offset_overflow(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, 0x1000, VFRONT_UVA, UINT64_MAX - 0x800 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void bad_mem_gpa_wrap(struct fx *x)
{
    uint64_t r[1][4] = { { UINT64_MAX - 0xfff, 0x2000, VFRONT_UVA, 0 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void bad_mem_empty_region(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, 0, VFRONT_UVA, 0 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void bad_mem_overlap_gpa(struct fx *x)
{
    uint64_t r[2][4] = { { VFRONT_GPA, 0x2000, VFRONT_UVA, 0 },
                         { VFRONT_GPA + 0x1000, 0x1000, VFRONT_UVA + 0x10000, 0x1000 } };
    int fds[2] = { x->f.memfd, x->f.memfd };
    mem_msg(x, 2, (const uint64_t(*)[4])r, 8 + 64, fds, 2);
}

static void bad_mem_overlap_uva(struct fx *x)
{
    uint64_t r[2][4] = { { VFRONT_GPA, 0x2000, VFRONT_UVA, 0 },
                         { VFRONT_GPA + 0x10000, 0x1000, VFRONT_UVA + 0x1000, 0x1000 } };
    int fds[2] = { x->f.memfd, x->f.memfd };
    mem_msg(x, 2, (const uint64_t(*)[4])r, 8 + 64, fds, 2);
}

static void bad_mem_eventfd(struct fx *x)
{
    uint64_t r[1][4] = { { VFRONT_GPA, 0x1000, VFRONT_UVA, 0 } };
    int fd = eventfd(0, EFD_CLOEXEC);
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &fd, 1);
    close(fd);
}

static void bad_mem_short(struct fx *x)
{
    send_raw(x, VF_SET_MEM_TABLE, VF_FLAG_VERSION, NULL, 4, NULL, 0);
}

static void bad_mem_rings_left_out(struct fx *x)
{
    /* A new table without the memory the running rings are in. */
    uint64_t r[1][4] = { { VFRONT_GPA + RAM_SIZE - 0x1000, 0x1000, VFRONT_UVA + RAM_SIZE - 0x1000,
                           RAM_SIZE - 0x1000 } };
    mem_msg(x, 1, (const uint64_t(*)[4])r, 8 + 32, &x->f.memfd, 1);
}

static void config_msg(struct fx *x, uint32_t req, uint32_t off, uint32_t size, uint32_t flags,
                       uint32_t payload)
{
    uint8_t p[12 + 512] = { 0 };

    memcpy(p, &off, 4);
    memcpy(p + 4, &size, 4);
    memcpy(p + 8, &flags, 4);
    send_raw(x, req, VF_FLAG_VERSION, p, payload, NULL, 0);
}

static void bad_config_too_big(struct fx *x)
{
    config_msg(x, VF_GET_CONFIG, 0, 300, 0, 12 + 300);
}

static void bad_config_offset(struct fx *x)
{
    config_msg(x, VF_GET_CONFIG, 200, 96, 0, 12 + 96);
}

static void bad_config_payload(struct fx *x)
{
    config_msg(x, VF_GET_CONFIG, 0, 96, 0, 12 + 8);
}

static void bad_config_short(struct fx *x)
{
    config_msg(x, VF_GET_CONFIG, 0, 0, 0, 8);
}

static void bad_config_offset_wrap(struct fx *x)
{
    config_msg(x, VF_SET_CONFIG, 0xfffffff0u, 32, 0, 12 + 32);
}

static void bad_config_flags(struct fx *x)
{
    config_msg(x, VF_SET_CONFIG, 0, 4, 7, 12 + 4);
}

static void bad_reset_device_unacked(struct fx *x)
{
    uint64_t none = 0;
    assert_int_equal(vfront_set_u64(&x->f, VF_SET_PROTOCOL_FEATURES, none), 0);
    send_raw(x, VF_RESET_DEVICE, VF_FLAG_VERSION, NULL, 0, NULL, 0);
}

static void bad_truncated_header(struct fx *x)
{
    uint8_t h[6] = { 1, 0, 0, 0, 1, 0 };
    assert_int_equal(send(x->f.sock, h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
    shutdown(x->f.sock, SHUT_WR);
}

static void bad_truncated_payload(struct fx *x)
{
    uint8_t h[12 + 4] = { 0 };
    uint32_t req = VF_SET_FEATURES, flags = VF_FLAG_VERSION, size = 8;
    memcpy(h, &req, 4);
    memcpy(h + 4, &flags, 4);
    memcpy(h + 8, &size, 4);
    assert_int_equal(send(x->f.sock, h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
    shutdown(x->f.sock, SHUT_WR);
}

static void bad_too_many_fds(struct fx *x)
{
    int fds[12];
    for (int i = 0; i < 12; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    send_raw(x, VF_SET_OWNER, VF_FLAG_VERSION, NULL, 0, fds, 12);
    for (int i = 0; i < 12; i++) {
        close(fds[i]);
    }
}

static const struct bad_case bad_cases[] = {
    { "version", bad_version, "header flags 0x2", true },
    { "reply flag", bad_reply_flag, "header flags 0x5", true },
    { "unknown flag", bad_flag_bits, "header flags 0x101", true },
    { "huge payload", bad_huge_payload, "payload of 4097 bytes, the limit is 4096", true },
    { "unknown request", bad_unknown_request, "unknown request (99)", true },
    { "request 0", bad_request_zero, "unknown request (0)", true },
    { "log base", bad_log_base, "SET_LOG_BASE (6): not supported", false },
    { "features size", bad_features_size, "SET_FEATURES (2): payload of 4 bytes, expected 8",
      true },
    { "features unoffered", bad_features_unoffered, "features 0x4000000 were not offered", true },
    { "protocol unoffered", bad_protocol_unoffered, "protocol features 0x2 were not offered",
      true },
    { "get with payload", bad_get_features_with_payload, "GET_FEATURES (1): payload of 8 bytes",
      true },
    { "fd on owner", bad_fd_on_owner, "SET_OWNER (3): 1 file descriptors attached, expected 0",
      true },
    { "num index", bad_num_index, "SET_VRING_NUM (8): ring index 2, the device has 2", false },
    { "num index huge", bad_num_index_huge, "ring index 4294967295", false },
    { "num pow2", bad_num_not_pow2, "size 100 is not a power of two up to 1024", false },
    { "num zero", bad_num_zero, "size 0 is not a power of two", false },
    { "num big", bad_num_too_big, "size 2048 is not a power of two up to 1024", false },
    { "base", bad_base, "base 65536 does not fit", false },
    { "state size", bad_state_size, "SET_VRING_BASE (10): payload of 4 bytes, expected 8", false },
    { "enable value", bad_enable_value, "enable is 2, 0 or 1", false },
    { "get base index", bad_get_base_index, "GET_VRING_BASE (11): ring index 7", false },
    { "addr flags", bad_addr_flags, "flags 0x1 (dirty logging was not offered)", false },
    { "addr outside", bad_addr_outside, "ring 0 of 128 entries is not inside the memory table",
      false },
    { "addr unmapped", bad_addr_unmapped, "is not inside the memory table", false },
    { "addr misaligned", bad_addr_misaligned, "misaligned", false },
    { "addr wrap", bad_addr_wrap, "is not inside the memory table", false },
    { "addr size", bad_addr_size, "SET_VRING_ADDR (9): payload of 32 bytes, expected 40", false },
    { "kick bits", bad_kick_bits, "value 0x200 has bits beyond the index", false },
    { "kick no fd", bad_kick_no_fd, "SET_VRING_KICK (12): 0 file descriptors attached, expected 1",
      false },
    { "nofd with fd", bad_kick_nofd_with_fd,
      "SET_VRING_CALL (13): 1 file descriptors attached, expected 0", false },
    { "two fds", bad_kick_two_fds, "SET_VRING_ERR (14): 2 file descriptors attached", false },
    { "regular file", bad_kick_regular_file, "ring 1: the descriptor is not an eventfd or pipe",
      false },
    { "kick index", bad_kick_index, "SET_VRING_KICK (12): ring index 5", false },
    { "mem zero", bad_mem_zero_regions, "0 regions, 1 to 8 allowed", false },
    { "mem nine", bad_mem_nine_regions, "9 regions, 1 to 8 allowed", false },
    { "mem fds", bad_mem_fd_count, "1 file descriptors attached, expected 2", false },
    { "mem size", bad_mem_size, "payload of 72 bytes, expected 40", false },
    { "mem past file", bad_mem_past_file, "region 0: 0x401000 bytes at offset 0x0 do not fit",
      false },
    { "mem offset", bad_mem_offset_past_file, "at offset 0x400000 do not fit", false },
    { "mem offset overflow", bad_mem_offset_overflow, "wraps the address space", false },
    { "mem gpa wrap", bad_mem_gpa_wrap, "wraps the address space", false },
    { "mem empty", bad_mem_empty_region, "region 0 is empty", false },
    { "mem overlap gpa", bad_mem_overlap_gpa, "regions 0 and 1 overlap", false },
    { "mem overlap uva", bad_mem_overlap_uva, "regions 0 and 1 overlap", false },
    { "mem eventfd", bad_mem_eventfd, "region 0: the descriptor is not a shared-memory file",
      false },
    { "mem short", bad_mem_short, "payload of 4 bytes, at least 8 expected", false },
    { "mem rings left out", bad_mem_rings_left_out, "is not inside the memory table", false },
    { "config big", bad_config_too_big, "300 bytes at offset 0", false },
    { "config offset", bad_config_offset, "96 bytes at offset 200", false },
    { "config payload", bad_config_payload, "in a payload of 20 bytes", false },
    { "config short", bad_config_short, "GET_CONFIG (24): payload of 8 bytes", false },
    { "config wrap", bad_config_offset_wrap, "32 bytes at offset 4294967280", false },
    { "config flags", bad_config_flags, "flags 7, 0 (driver write) or 1 (migration)", false },
    { "reset unacked", bad_reset_device_unacked, "RESET_DEVICE without the protocol feature",
      false },
    { "truncated header", bad_truncated_header, "inside a message header", false },
    { "truncated payload", bad_truncated_payload, "inside the payload", false },
    { "too many fds", bad_too_many_fds, "more than 8 file descriptors", false },
};

static void test_malformed(void **state)
{
    struct fx *x = *state;

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        int ret;
        if (c->before_handshake) {
            connect_front(x);
        } else {
            bring_up(x, 2);
            /* Something in flight on ring 0 while the bad message arrives. */
            gate_set(x->vol, 300 * 512);
            memset(data_ptr(x, 0), 0x77, 512);
            assert_true(vfront_blk_submit(&x->f, 0, VF_BLK_T_OUT, 300, data_gpa(0), 512) >= 0);
            vfront_kick(&x->f, 0);
            assert_true(gate_wait_held(x->vol, 1));
            gate_open(x->vol);
        }
        c->send(x);
        ret = collect_close(x);
        if (ret != -EPROTO || !strstr(vmapple_vhost_user_blk_last_error(x->be), c->expect) ||
            !log_has(x, c->expect)) {
            fail_msg("case '%s': serve returned %d, last error '%s' (expected '%s')", c->name, ret,
                     vmapple_vhost_user_blk_last_error(x->be), c->expect);
        }
        assert_true(log_has(x, "closing the connection to the front end"));
        /* The back end is ready for the next front end, and I/O works. */
        bring_up(x, 2);
        assert_int_equal(vfront_blk_do(&x->f, 1, VF_BLK_T_IN, 0, data_gpa(0x10000), 4096), S_OK);
        assert_int_equal(disconnect_front(x), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_vring_base_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_regions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_table_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polling_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_protocol_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_ring_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_serve_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
