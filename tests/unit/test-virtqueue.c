/* SPDX-License-Identifier: MIT */
/*
 * The split virtqueue (lib/virtqueue.c) on its own: chains, indirect tables,
 * event index, used ring publication, every hostile chain, memory ordering
 * under a concurrent driver thread. Each test runs twice: with the host's
 * mem_map (rings and tables mapped) and without (bounded copies).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mockhost.h"
#include "testdev.h"
#include "virtqueue.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x200000ull
#define DESC     (RAM_BASE + 0x1000)
#define AVAIL    (RAM_BASE + 0x3000)
#define USED     (RAM_BASE + 0x4000)
#define IND      (RAM_BASE + 0x8000)
#define BUF      (RAM_BASE + 0x10000)
#define QSIZE    8

struct t {
    struct mock_host *h;
    vmapple_device *dev;
    struct vm_vq vq;
    uint16_t aidx;
    struct vm_vq_seg segs[64];
    struct vm_vq_chain chain;
};

static int setup_common(void **state, bool map)
{
    struct t *t = calloc(1, sizeof(*t));

    t->h = mock_host_new(RAM_BASE, RAM_SIZE);
    t->h->allow_map = map;
    assert_int_equal(testdev_create(mock_host_ops(), t->h, NULL, &t->dev), 0);
    vm_vq_init(&t->vq, t->dev);
    assert_int_equal(vm_vq_setup(&t->vq, QSIZE, DESC, AVAIL, USED), 0);
    t->chain.segs = t->segs;
    t->chain.cap = 64;
    *state = t;
    return 0;
}

static int setup_map(void **state)
{
    return setup_common(state, true);
}

static int setup_copy(void **state)
{
    return setup_common(state, false);
}

static int teardown(void **state)
{
    struct t *t = *state;

    vm_vq_reset(&t->vq);
    assert_int_equal(t->h->maps_live, 0);
    vmapple_device_destroy(t->dev);
    mock_host_free(t->h);
    free(t);
    return 0;
}

static void put16(struct t *t, uint64_t gpa, uint16_t v)
{
    uint8_t *p = mock_ram(t->h, gpa, 2);
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(struct t *t, uint64_t gpa)
{
    uint8_t *p = mock_ram(t->h, gpa, 2);
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(struct t *t, uint64_t gpa)
{
    uint8_t *p = mock_ram(t->h, gpa, 4);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set_desc_at(struct t *t, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
    uint8_t *p = mock_ram(t->h, table + 16ull * i, 16);
    for (int k = 0; k < 8; k++) {
        p[k] = (uint8_t)(addr >> (8 * k));
    }
    for (int k = 0; k < 4; k++) {
        p[8 + k] = (uint8_t)(len >> (8 * k));
    }
    p[12] = (uint8_t)flags;
    p[13] = (uint8_t)(flags >> 8);
    p[14] = (uint8_t)next;
    p[15] = (uint8_t)(next >> 8);
}

static void set_desc(struct t *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    set_desc_at(t, DESC, i, addr, len, flags, next);
}

static void make_avail(struct t *t, uint16_t head)
{
    put16(t, AVAIL + 4 + 2ull * (t->aidx % QSIZE), head);
    t->aidx++;
    put16(t, AVAIL + 2, t->aidx);
}

static int pop(struct t *t)
{
    int ret;

    vm_vq_begin(&t->vq);
    ret = vm_vq_pop(&t->vq, &t->chain);
    vm_vq_end(&t->vq);
    return ret;
}

static void assert_broken(struct t *t, const char *why)
{
    mock_log_clear(t->h);
    assert_int_equal(pop(t), -EIO);
    assert_true(t->vq.broken);
    assert_true(mock_log_contains(t->h, why));
    /* Stays broken: nothing more is read or written. */
    assert_int_equal(pop(t), -EIO);
    assert_int_equal(vm_vq_push(&t->vq, 0, 0), -EIO);
    assert_false(vm_vq_publish(&t->vq));
}

static void test_simple_chain(void **state)
{
    struct t *t = *state;

    assert_int_equal(pop(t), 0);
    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 3);
    set_desc(t, 3, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT, 5);
    set_desc(t, 5, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_int_equal(vm_vq_pending(&t->vq), 1);
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.head, 0);
    assert_int_equal(t->chain.nr_segs, 3);
    assert_int_equal(t->chain.nr_out, 2);
    assert_int_equal(t->chain.out_len, 528);
    assert_int_equal(t->chain.in_len, 1);
    assert_int_equal(t->segs[1].addr, BUF + 0x100);
    assert_true(t->segs[2].write);
    assert_int_equal(pop(t), 0);

    vm_vq_begin(&t->vq);
    assert_int_equal(vm_vq_push(&t->vq, 0, 1), 0);
    /* Not visible before publish. */
    assert_int_equal(get16(t, USED + 2), 0);
    assert_true(vm_vq_publish(&t->vq));
    vm_vq_end(&t->vq);
    assert_int_equal(get16(t, USED + 2), 1);
    assert_int_equal(get32(t, USED + 4), 0);
    assert_int_equal(get32(t, USED + 8), 1);
    /* Nothing new: no second interrupt. */
    assert_false(vm_vq_publish(&t->vq));
}

static void test_ring_wraps(void **state)
{
    struct t *t = *state;

    set_desc(t, 1, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    for (int i = 0; i < 3 * QSIZE + 3; i++) {
        make_avail(t, 1);
        assert_int_equal(pop(t), 1);
        assert_int_equal(vm_vq_push(&t->vq, 1, (uint32_t)i), 0);
        vm_vq_publish(&t->vq);
        assert_int_equal(get32(t, USED + 4 + 8ull * (i % QSIZE) + 4), (uint32_t)i);
    }
    assert_int_equal(get16(t, USED + 2), 3 * QSIZE + 3);
}

static void test_empty_descriptors_dropped(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 0, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(t, 2, BUF + 64, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
    set_desc(t, 3, BUF + 64, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.nr_segs, 2);
    assert_int_equal(t->chain.nr_out, 1);
}

static void test_head_out_of_range(void **state)
{
    struct t *t = *state;

    make_avail(t, QSIZE);
    assert_broken(t, "head index out of range");
}

static void test_next_out_of_range(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 200);
    make_avail(t, 0);
    assert_broken(t, "next descriptor index out of range");
}

static void test_loop(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(t, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
    make_avail(t, 0);
    assert_broken(t, "loops or is longer than the queue");
}

static void test_self_loop(void **state)
{
    struct t *t = *state;

    set_desc(t, 4, BUF, 16, VIRTQ_DESC_F_NEXT, 4);
    make_avail(t, 4);
    assert_broken(t, "loops or is longer than the queue");
}

static void test_indirect_longer_than_queue(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    for (unsigned i = 0; i < QSIZE + 1; i++) {
        set_desc_at(t, IND, i, BUF + 16 * i, 16, i < QSIZE ? VIRTQ_DESC_F_NEXT : 0,
                    (uint16_t)(i + 1));
    }
    set_desc(t, 0, IND, 16 * (QSIZE + 1), VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "loops or is longer than the queue");
}

static void test_indirect_loop(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc_at(t, IND, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
    set_desc(t, 0, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "loops or is longer than the queue");
}

static void test_write_before_read(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF + 64, 16, 0, 0);
    make_avail(t, 0);
    assert_broken(t, "device-readable buffer after a device-writable one");
}

static void test_indirect(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc_at(t, IND, 2, BUF + 0x100, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc_at(t, IND, 1, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    /* The WRITE flag of the descriptor naming the table is ignored. */
    set_desc(t, 6, IND, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 6);
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.head, 6);
    assert_int_equal(t->chain.nr_segs, 3);
    assert_int_equal(t->chain.nr_out, 1);
    assert_int_equal(t->chain.in_len, 4097);
    assert_int_equal(t->segs[2].addr, BUF + 0x2000);
}

static void test_direct_then_indirect(void **state)
{
    struct t *t = *state;

    /* Spec 2.7.5.3.2: zero or more direct descriptors, then one indirect. */
    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT, 1);
    set_desc_at(t, IND, 1, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
    set_desc(t, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 3);
    set_desc(t, 3, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 2);
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.nr_segs, 3);
    assert_int_equal(t->chain.out_len, 528);
}

static void test_indirect_without_feature(void **state)
{
    struct t *t = *state;

    set_desc_at(t, IND, 0, BUF, 16, 0, 0);
    set_desc(t, 0, IND, 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "without VIRTIO_F_INDIRECT_DESC");
}

static void test_nested_indirect(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, IND + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
    set_desc(t, 0, IND, 16, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "indirect descriptor inside an indirect table");
}

static void test_indirect_bad_length(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc(t, 0, IND, 24, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "indirect table length or address is invalid");
}

static void test_indirect_zero_length(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc(t, 0, IND, 0, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "indirect table length or address is invalid");
}

static void test_indirect_with_next(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, BUF, 16, 0, 0);
    set_desc(t, 0, IND, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    make_avail(t, 0);
    assert_broken(t, "indirect descriptor with NEXT set");
}

static void test_indirect_not_ram(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc(t, 0, 0x1000, 32, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "descriptor table is not guest memory");
}

static void test_indirect_next_out_of_range(void **state)
{
    struct t *t = *state;

    vm_vq_set_features(&t->vq, true, false);
    set_desc_at(t, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(t, 0, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    make_avail(t, 0);
    assert_broken(t, "next descriptor index out of range");
}

static void test_buffer_wraps(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, UINT64_MAX - 8, 16, 0, 0);
    make_avail(t, 0);
    assert_broken(t, "buffer wraps the address space");
}

static void test_buffer_not_ram_is_not_checked_here(void **state)
{
    struct t *t = *state;

    /* The device learns that when it touches the buffer (request status). */
    set_desc(t, 0, 0x1000, 16, 0, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    assert_false(t->vq.broken);
}

static void test_chain_over_4g(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 0xffffffffu, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF, 2, 0, 0);
    make_avail(t, 0);
    assert_broken(t, "longer than 4 GiB");
}

static void test_avail_idx_jump(void **state)
{
    struct t *t = *state;

    put16(t, AVAIL + 2, QSIZE + 1);
    mock_log_clear(t->h);
    assert_int_equal(vm_vq_pending(&t->vq), -EIO);
    assert_true(t->vq.broken);
    assert_true(mock_log_contains(t->h, "available idx moved too far"));
}

/*
 * The avail idx is read once per burst: entries published by that read are
 * consumed without looking at the idx again (a driver cannot take them
 * back), and it is read again once they are used up.
 */
static void test_avail_idx_read_once(void **state)
{
    struct t *t = *state;

    for (uint16_t i = 0; i < 4; i++) {
        set_desc(t, i, BUF + 0x100ull * i, 16, VIRTQ_DESC_F_WRITE, 0);
        make_avail(t, i);
    }
    assert_int_equal(vm_vq_pending(&t->vq), 4);
    /* A hostile driver moves its idx back: the four published entries still go. */
    put16(t, AVAIL + 2, 2);
    for (uint16_t i = 0; i < 4; i++) {
        assert_int_equal(pop(t), 1);
        assert_int_equal(t->chain.head, i);
    }
    /* Used up: the next look reads idx 2, behind the four consumed. */
    mock_log_clear(t->h);
    assert_int_equal(vm_vq_pending(&t->vq), -EIO);
    assert_true(mock_log_contains(t->h, "available idx moved too far"));
}

/* Resuming at a slot (state load, vhost-user SET_VRING_BASE) forgets the idx read before. */
static void test_set_last_avail(void **state)
{
    struct t *t = *state;

    for (uint16_t i = 0; i < 3; i++) {
        make_avail(t, 0);
    }
    assert_int_equal(vm_vq_pending(&t->vq), 3);
    for (uint16_t i = 0; i < 4; i++) {
        make_avail(t, 0);
    }
    vm_vq_set_last_avail(&t->vq, 5);
    assert_int_equal(vm_vq_pending(&t->vq), 2);
    vm_vq_set_last_avail(&t->vq, 7);
    assert_int_equal(vm_vq_pending(&t->vq), 0);
}

static void test_rings_not_ram(void **state)
{
    struct t *t = *state;

    vm_vq_reset(&t->vq);
    assert_int_equal(vm_vq_setup(&t->vq, QSIZE, DESC, 0x1000, USED), 0);
    assert_int_equal(vm_vq_pending(&t->vq), -EIO);
    assert_true(t->vq.broken);

    vm_vq_reset(&t->vq);
    assert_int_equal(vm_vq_setup(&t->vq, QSIZE, 0x2000, AVAIL, USED), 0);
    t->aidx = 0;
    make_avail(t, 0);
    assert_broken(t, "descriptor table is not guest memory");

    vm_vq_reset(&t->vq);
    assert_int_equal(vm_vq_setup(&t->vq, QSIZE, DESC, AVAIL, 0x1000), 0);
    assert_int_equal(vm_vq_push(&t->vq, 0, 0), -EIO);
    assert_true(t->vq.broken);
}

static void test_chain_capacity(void **state)
{
    struct t *t = *state;

    t->chain.cap = 2;
    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(t, 2, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), -ENOSPC);
    assert_false(t->vq.broken);
    /* Not consumed: a caller with more room gets it. */
    t->chain.cap = 64;
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.nr_segs, 3);
}

static void test_layout_checks(void **state)
{
    const char *why;

    (void)state;
    assert_int_equal(vm_vq_check_layout(8, DESC, AVAIL, USED, &why), 0);
    assert_int_equal(vm_vq_check_layout(0, DESC, AVAIL, USED, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(6, DESC, AVAIL, USED, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(8, DESC + 8, AVAIL, USED, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(8, DESC, AVAIL + 1, USED, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(8, DESC, AVAIL, USED + 2, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(8, UINT64_MAX - 15, AVAIL, USED, &why), -EINVAL);
    assert_int_equal(vm_vq_check_layout(8, DESC, AVAIL, UINT64_MAX - 3, &why), -EINVAL);
}

static void test_no_interrupt_flag(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    put16(t, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    vm_vq_push(&t->vq, 0, 1);
    assert_false(vm_vq_publish(&t->vq));
    assert_int_equal(get16(t, USED + 2), 1);
    put16(t, AVAIL, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    vm_vq_push(&t->vq, 0, 1);
    assert_true(vm_vq_publish(&t->vq));
}

static void test_event_idx(void **state)
{
    struct t *t = *state;
    const uint64_t used_event = AVAIL + 4 + 2 * QSIZE;
    const uint64_t avail_event = USED + 4 + 8 * QSIZE;

    vm_vq_set_features(&t->vq, false, true);
    set_desc(t, 0, BUF, 1, VIRTQ_DESC_F_WRITE, 0);
    /* The flags field is ignored with event index. */
    put16(t, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    /* The driver wants an interrupt when used idx passes 2 (used_event = 2). */
    put16(t, used_event, 2);
    for (int i = 0; i < 4; i++) {
        make_avail(t, 0);
        assert_int_equal(pop(t), 1);
        vm_vq_push(&t->vq, 0, 1);
        /* The first publish always interrupts; then only when crossing used_event. */
        assert_int_equal(vm_vq_publish(&t->vq), i == 0 || i == 2);
    }
    /* Batched: idx goes 4 -> 6 crossing used_event 4. */
    put16(t, used_event, 4);
    make_avail(t, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    assert_int_equal(pop(t), 1);
    vm_vq_push(&t->vq, 0, 1);
    vm_vq_push(&t->vq, 0, 1);
    assert_true(vm_vq_publish(&t->vq));

    /* arm: avail_event names the next slot; reports chains that raced in. */
    assert_false(vm_vq_arm(&t->vq));
    assert_int_equal(get16(t, avail_event), 6);
    make_avail(t, 0);
    assert_true(vm_vq_arm(&t->vq));
}

static void test_arm_without_event_idx(void **state)
{
    struct t *t = *state;

    assert_false(vm_vq_arm(&t->vq));
    /* No avail_event write without the feature. */
    assert_int_equal(get16(t, USED + 4 + 8 * QSIZE), 0);
    set_desc(t, 0, BUF, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_true(vm_vq_arm(&t->vq));
}

static void test_partial_ring_mapping(void **state)
{
    struct t *t = *state;

    /* A host whose mappings stop short: the queue falls back to copies. */
    t->h->map_chunk = 8;
    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF + 64, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, 0);
    assert_int_equal(pop(t), 1);
    assert_int_equal(t->chain.nr_segs, 2);
    vm_vq_push(&t->vq, 0, 1);
    assert_true(vm_vq_publish(&t->vq));
    assert_int_equal(get16(t, USED + 2), 1);
    assert_int_equal(t->h->maps_live, 0);
}

static void test_no_stray_writes(void **state)
{
    struct t *t = *state;

    /* The queue only ever writes the used ring. */
    t->h->guard_writes = true;
    t->h->guard_lo = USED;
    t->h->guard_hi = USED + vm_vq_used_bytes(QSIZE);
    vm_vq_set_features(&t->vq, true, true);
    set_desc(t, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(t, 1, BUF + 64, 1, VIRTQ_DESC_F_WRITE, 0);
    for (int i = 0; i < 20; i++) {
        make_avail(t, 0);
        vm_vq_begin(&t->vq);
        assert_int_equal(vm_vq_pop(&t->vq, &t->chain), 1);
        vm_vq_push(&t->vq, 0, 1);
        vm_vq_publish(&t->vq);
        vm_vq_arm(&t->vq);
        vm_vq_end(&t->vq);
    }
    assert_int_equal(t->h->stray_writes, 0);
}

static void test_reset(void **state)
{
    struct t *t = *state;

    set_desc(t, 0, BUF, 1, VIRTQ_DESC_F_WRITE, 0);
    make_avail(t, QSIZE);
    make_avail(t, 0);
    vm_vq_begin(&t->vq);
    assert_int_equal(vm_vq_pop(&t->vq, &t->chain), -EIO);
    vm_vq_reset(&t->vq);
    vm_vq_end(&t->vq);
    assert_false(t->vq.ready);
    assert_false(t->vq.broken);
    assert_int_equal(vm_vq_pending(&t->vq), 0);
    assert_int_equal(t->h->maps_live, 0);
}

/* Memory ordering: a driver thread races the device thread on both rings. */

#define RACE_ROUNDS 200000u

struct race {
    struct t *t;
    volatile int failed;
    volatile int stop; /* the device side gave up: do not wait for it */
};

static void *race_driver(void *arg)
{
    struct race *r = arg;
    struct t *t = r->t;
    uint8_t *ram = mock_ram(t->h, RAM_BASE, RAM_SIZE);
    uint16_t *avail_idx = (uint16_t *)(void *)(ram + (AVAIL + 2 - RAM_BASE));
    uint16_t *ring = (uint16_t *)(void *)(ram + (AVAIL + 4 - RAM_BASE));
    uint16_t *used_idx = (uint16_t *)(void *)(ram + (USED + 2 - RAM_BASE));
    uint16_t idx = 0, seen_used = 0;

    for (uint32_t n = 0; n < RACE_ROUNDS; n++) {
        uint16_t slot = (uint16_t)(n % QSIZE);
        /* Room: at most QSIZE chains not yet consumed from the used ring. */
        while ((uint16_t)(idx - seen_used) >= QSIZE && !r->stop) {
            /* Elements below the used idx we saw are complete (acquire). */
            while (seen_used != __atomic_load_n(used_idx, __ATOMIC_ACQUIRE)) {
                uint32_t len = get32(t, USED + 4 + 8ull * (seen_used % QSIZE) + 4);
                if (len != seen_used) {
                    r->failed = 1;
                }
                seen_used++;
            }
        }
        if (r->stop) {
            break;
        }
        /* Descriptor contents encode n; written before the idx (release). */
        set_desc(t, slot, BUF + n, 1 + (n & 0xff), VIRTQ_DESC_F_WRITE, 0);
        ring[idx % QSIZE] = slot;
        idx++;
        __atomic_store_n(avail_idx, idx, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void test_ordering_race(void **state)
{
    struct t *t = *state;
    struct race r = { t, 0, 0 };
    pthread_t th;
    uint32_t n = 0;

    assert_int_equal(pthread_create(&th, NULL, race_driver, &r), 0);
    vm_vq_begin(&t->vq);
    while (n < RACE_ROUNDS) {
        int ret = vm_vq_pop(&t->vq, &t->chain);
        if (ret < 0) {
            r.failed = 2;
            r.stop = 1;
            break;
        }
        if (ret == 0) {
            continue;
        }
        /* The descriptor we read must be the one written before the idx we saw. */
        if (t->segs[0].addr != BUF + n || t->segs[0].len != 1 + (n & 0xff)) {
            r.failed = 1;
        }
        vm_vq_push(&t->vq, t->chain.head, (uint32_t)(uint16_t)n);
        vm_vq_publish(&t->vq);
        n++;
    }
    vm_vq_end(&t->vq);
    pthread_join(th, NULL);
    assert_int_equal(r.failed, 0);
}

#define BOTH(fn)                                              \
    cmocka_unit_test_setup_teardown(fn, setup_map, teardown), \
        cmocka_unit_test_setup_teardown(fn, setup_copy, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_simple_chain),
        BOTH(test_ring_wraps),
        BOTH(test_empty_descriptors_dropped),
        BOTH(test_head_out_of_range),
        BOTH(test_next_out_of_range),
        BOTH(test_loop),
        BOTH(test_self_loop),
        BOTH(test_indirect_longer_than_queue),
        BOTH(test_indirect_loop),
        BOTH(test_write_before_read),
        BOTH(test_indirect),
        BOTH(test_direct_then_indirect),
        BOTH(test_indirect_without_feature),
        BOTH(test_nested_indirect),
        BOTH(test_indirect_bad_length),
        BOTH(test_indirect_zero_length),
        BOTH(test_indirect_with_next),
        BOTH(test_indirect_not_ram),
        BOTH(test_indirect_next_out_of_range),
        BOTH(test_buffer_wraps),
        BOTH(test_buffer_not_ram_is_not_checked_here),
        BOTH(test_chain_over_4g),
        BOTH(test_avail_idx_jump),
        BOTH(test_avail_idx_read_once),
        BOTH(test_set_last_avail),
        BOTH(test_rings_not_ram),
        BOTH(test_chain_capacity),
        cmocka_unit_test(test_layout_checks),
        BOTH(test_no_interrupt_flag),
        BOTH(test_event_idx),
        BOTH(test_arm_without_event_idx),
        cmocka_unit_test_setup_teardown(test_partial_ring_mapping, setup_map, teardown),
        BOTH(test_no_stray_writes),
        BOTH(test_reset),
        BOTH(test_ordering_race),
    };

    return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
