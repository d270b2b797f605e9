/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of the vhost-user back end with its real
 * ring threads: random byte streams on the socket, valid set-up sequences
 * with one random mutation, the front end vanishing after every prefix of
 * the set-up with I/O in flight, random ring contents under kicks. After
 * each the back end must be ready for the next front end (a clean handshake
 * and a read that returns the volume's data) and must not have leaked a
 * single file descriptor or mapping of guest memory.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "membd.h"
#include "vhost-front.h"

#define RAM_SIZE (1ull << 20)
#define VOL_SIZE (256ull << 10)
#define DATA     (VFRONT_GPA + 0x80000)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

struct env {
    struct membd mb;
    vmapple_vhost_user_blk *be;
    pthread_t server;
    int server_fd;
    int result;
    struct vfront f;
};

static void *serve_main(void *arg)
{
    struct env *e = arg;

    e->result = vmapple_vhost_user_blk_serve(e->be, e->server_fd);
    return NULL;
}

static void env_connect(struct env *e)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    vfront_init(&e->f, sv[0], RAM_SIZE);
    e->server_fd = sv[1];
    ck_assert_int_eq(pthread_create(&e->server, NULL, serve_main, e), 0);
}

/* Close our end and wait for serve() to come back (it must, whatever happened). */
static int env_disconnect(struct env *e)
{
    vfront_fini(&e->f);
    pthread_join(e->server, NULL);
    return e->result;
}

static void env_open(struct env *e)
{
    vmapple_vhost_user_blk_options o = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    vmapple_blockdev *bd;

    memset(e, 0, sizeof(*e));
    bd = membd_open(&e->mb, VOL_SIZE, 0, false);
    for (uint64_t i = 0; i < VOL_SIZE; i++) {
        e->mb.data[i] = (uint8_t)(i * 13 + 7);
    }
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
    o.blockdev = bd;
    o.num_queues = 2;
    o.max_queue_size = 64;
    o.seg_max = 16;
    ck_assert_int_eq(vmapple_vhost_user_blk_create(NULL, NULL, &o, &e->be), 0);
    vmapple_blockdev_release(bd);
}

static void env_close(struct env *e)
{
    vmapple_vhost_user_blk_destroy(e->be);
    membd_free(&e->mb);
}

/* The back end serves a fresh front end: handshake, a ring, a read of known data. */
static void check_healthy(struct env *e)
{
    env_connect(e);
    ck_assert_int_eq(vfront_handshake(&e->f, UINT64_MAX, UINT64_MAX), 0);
    ck_assert_int_eq(vfront_ring_setup(&e->f, 1, 32), 0);
    ck_assert_int_eq(vfront_blk_do(&e->f, 1, VF_BLK_T_IN, 2, DATA, 1024), 0);
    for (int i = 0; i < 1024; i++) {
        ck_assert_int_eq(((uint8_t *)vfront_ptr(&e->f, DATA))[i], (uint8_t)((1024 + i) * 13 + 7));
    }
    ck_assert_int_eq(env_disconnect(e), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Mappings of memfds ("/memfd:vfront-ram (deleted)") the back end still holds. */
static int count_ram_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        n += strstr(line, "vfront-ram") != NULL;
    }
    fclose(f);
    return n;
}

/* Random bytes, sometimes with descriptors attached, until the back end hangs up. */
START_TEST(test_random_stream)
{
    struct env e;
    int fds0, maps0;

    env_open(&e);
    fds0 = count_fds();
    maps0 = count_ram_maps();
    rng_state = 0x9e3779b97f4a7c15ull ^ (uint64_t)_i * 7919;
    for (int round = 0; round < 20; round++) {
        env_connect(&e);
        for (int k = 0; k < 50 && !vfront_closed(&e.f, 0); k++) {
            uint8_t buf[64];
            uint32_t req = (uint32_t)(rnd() % 42), flags = (rnd() & 3) ? 1 : (uint32_t)rnd();
            uint32_t size = (uint32_t)(rnd() % 80);
            int fd = e.f.memfd;
            for (size_t i = 0; i < sizeof(buf); i++) {
                buf[i] = (uint8_t)rnd();
            }
            if (vfront_send(&e.f, req, flags, buf, size > 64 ? 64 : size, &fd,
                            (unsigned)(rnd() % 2)) < 0) {
                break;
            }
        }
        env_disconnect(&e);
    }
    check_healthy(&e);
    ck_assert_int_eq(count_fds(), fds0);
    ck_assert_int_eq(count_ram_maps(), maps0);
    env_close(&e);
}
END_TEST

/* A valid set-up and I/O with one field of one message changed at random. */
START_TEST(test_mutated_sequence)
{
    struct env e;
    int fds0;

    env_open(&e);
    fds0 = count_fds();
    rng_state = 0x1234567ull + (uint64_t)_i * 104729;
    for (int round = 0; round < 30; round++) {
        uint64_t offered, pf;
        unsigned target = (unsigned)(rnd() % 8), n = 0;
        uint8_t a[40] = { 0 };
        uint32_t s[2];
        uint64_t v;
        env_connect(&e);
#define MAYBE_MUTATE(buf, len)                                                                     \
    do {                                                                                           \
        if (n++ == target) {                                                                       \
            ((uint8_t *)(buf))[rnd() % (len)] ^= (uint8_t)(1u << (rnd() % 8));                     \
        }                                                                                          \
    } while (0)
        if (vfront_get_u64(&e.f, VF_GET_FEATURES, &offered) < 0 ||
            vfront_get_u64(&e.f, VF_GET_PROTOCOL_FEATURES, &pf) < 0) {
            env_disconnect(&e);
            continue;
        }
        v = pf;
        MAYBE_MUTATE(&v, 8);
        vfront_set_u64(&e.f, VF_SET_PROTOCOL_FEATURES, v);
        e.f.features = offered;
        v = offered;
        MAYBE_MUTATE(&v, 8);
        vfront_set_u64(&e.f, VF_SET_FEATURES, v);
        vfront_set_mem_table(&e.f);
        s[0] = 0;
        s[1] = 32;
        MAYBE_MUTATE(s, 8);
        vfront_send(&e.f, VF_SET_VRING_NUM, VF_FLAG_VERSION, s, 8, NULL, 0);
        /* Ring 0 at fixed places in RAM (size 32). */
        {
            uint64_t d = VFRONT_UVA + 0x1000, u = VFRONT_UVA + 0x3000, av = VFRONT_UVA + 0x2000;
            memcpy(a + 8, &d, 8);
            memcpy(a + 16, &u, 8);
            memcpy(a + 24, &av, 8);
        }
        MAYBE_MUTATE(a, 40);
        vfront_send(&e.f, VF_SET_VRING_ADDR, VF_FLAG_VERSION, a, 40, NULL, 0);
        vfront_ring_setup(&e.f, 0, 32); /* may be refused by now: fine */
        vfront_blk_submit(&e.f, 0, VF_BLK_T_IN, rnd() % 512, DATA, 4096);
        vfront_kick(&e.f, 0);
        s[0] = 0;
        s[1] = 0;
        MAYBE_MUTATE(s, 8);
        vfront_send(&e.f, VF_GET_VRING_BASE, VF_FLAG_VERSION, s, 8, NULL, 0);
#undef MAYBE_MUTATE
        env_disconnect(&e);
    }
    check_healthy(&e);
    ck_assert_int_eq(count_fds(), fds0);
    env_close(&e);
}
END_TEST

/*
 * The front end vanishes at each stage of the set-up: right after connecting,
 * after the handshake, after the ring set-up, and with requests in flight
 * (held in the volume, or not).
 */
START_TEST(test_vanish_everywhere)
{
    struct env e;
    int fds0, maps0;

    env_open(&e);
    fds0 = count_fds();
    maps0 = count_ram_maps();
    for (int k = 0; k < 8; k++) {
        int stage = k % 4;
        bool hold = k >= 4;
        env_connect(&e);
        if (stage >= 1) {
            ck_assert_int_eq(vfront_handshake(&e.f, UINT64_MAX, UINT64_MAX), 0);
        }
        if (stage >= 2) {
            ck_assert_int_eq(vfront_ring_setup(&e.f, 0, 32), 0);
        }
        if (stage >= 3) {
            membd_hold(&e.mb, hold);
            for (int i = 0; i < 8; i++) {
                vfront_blk_submit(&e.f, 0, i & 1 ? VF_BLK_T_OUT : VF_BLK_T_IN, (uint64_t)i * 8,
                                  DATA + (uint64_t)i * 4096, 4096);
            }
            vfront_kick(&e.f, 0);
            if (hold) {
                ck_assert(membd_wait_held(&e.mb, 1));
            }
        }
        /* Gone, possibly with calls held in the volume: serve() must come back anyway. */
        vfront_fini(&e.f);
        membd_hold(&e.mb, false);
        pthread_join(e.server, NULL);
        ck_assert_int_eq(e.result, 0);
    }
    check_healthy(&e);
    ck_assert_int_eq(count_fds(), fds0);
    ck_assert_int_eq(count_ram_maps(), maps0);
    env_close(&e);
}
END_TEST

/* Random descriptors and rings under kicks, on two rings, with their threads running. */
/* Close our socket only; serve() returns; guest RAM stays for a look. */
static int env_disconnect_keep_ram(struct env *e)
{
    close(e->f.sock);
    e->f.sock = -1;
    pthread_join(e->server, NULL);
    return e->result;
}

START_TEST(test_random_rings)
{
    static uint8_t shadow_desc[2][16 * 64], shadow_avail[2][4 + 2 * 64];
    struct env e;

    env_open(&e);
    rng_state = 0xfeedbeefull + (uint64_t)_i * 31337;
    env_connect(&e);
    ck_assert_int_eq(vfront_handshake(&e.f, UINT64_MAX, UINT64_MAX), 0);
    ck_assert_int_eq(vfront_ring_setup(&e.f, 0, 64), 0);
    ck_assert_int_eq(vfront_ring_setup(&e.f, 1, 16), 0);
    for (int round = 0; round < 300; round++) {
        uint16_t q = (uint16_t)(rnd() & 1);
        struct vfront_ring *r = &e.f.rings[q];
        uint8_t *desc = vfront_ptr(&e.f, r->desc);
        uint16_t *avail = vfront_ptr(&e.f, r->avail);
        uint64_t n = 1 + rnd() % 4;
        for (unsigned i = 0; i < r->size; i++) {
            uint64_t addr = (rnd() & 1) ? DATA + rnd() % 0x40000 : rnd();
            uint32_t len = (uint32_t)(rnd() % 9000);
            uint16_t flags = (uint16_t)(rnd() % 8), next = (uint16_t)(rnd() % (r->size + 2));
            memcpy(desc + 16 * i, &addr, 8);
            memcpy(desc + 16 * i + 8, &len, 4);
            memcpy(desc + 16 * i + 12, &flags, 2);
            memcpy(desc + 16 * i + 14, &next, 2);
        }
        for (uint64_t i = 0; i < n; i++) {
            avail[2 + (r->avail_idx + i) % r->size] = (uint16_t)(rnd() % (r->size + 1));
        }
        r->avail_idx = (uint16_t)(r->avail_idx + ((rnd() % 50) ? n : rnd()));
        vfront_kick(&e.f, q);
        memcpy(shadow_desc[q], desc, 16u * r->size);
        memcpy(shadow_avail[q], avail, 4u + 2u * r->size);
        if (round % 50 == 49) {
            /* Start both rings over (they may have stopped on a broken chain). */
            for (uint16_t k = 0; k < 2; k++) {
                uint32_t s[2] = { k, 0 }, reqt, fl, rep[2];
                vfront_send(&e.f, VF_GET_VRING_BASE, VF_FLAG_VERSION, s, 8, NULL, 0);
                ck_assert_int_eq(vfront_recv(&e.f, &reqt, &fl, rep, 8, 10000), 8);
                e.f.rings[k].avail_idx = (uint16_t)rep[1];
                ck_assert_int_eq(vfront_ring_restart(&e.f, k, (uint16_t)rep[1]), 0);
                /* The avail idx written last is the driver's; keep the shadow in step. */
                memcpy(shadow_avail[k], vfront_ptr(&e.f, e.f.rings[k].avail),
                       4u + 2u * e.f.rings[k].size);
            }
        }
    }
    ck_assert_int_eq(env_disconnect_keep_ram(&e), 0);
    /* The device never writes the driver's descriptor tables or available rings. */
    for (uint16_t k = 0; k < 2; k++) {
        struct vfront_ring *r = &e.f.rings[k];
        ck_assert_mem_eq(vfront_ptr(&e.f, r->desc), shadow_desc[k], 16u * r->size);
        ck_assert_mem_eq(vfront_ptr(&e.f, r->avail), shadow_avail[k], 4u + 2u * r->size);
    }
    vfront_fini(&e.f);
    check_healthy(&e);
    env_close(&e);
}
END_TEST

static Suite *vhost_suite(void)
{
    Suite *s = suite_create("vhost-user-robustness");
    TCase *tc = tcase_create("hostile-front-end");

    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_random_stream, 0, 4);
    tcase_add_loop_test(tc, test_mutated_sequence, 0, 4);
    tcase_add_test(tc, test_vanish_everywhere);
    tcase_add_loop_test(tc, test_random_rings, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vhost_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
