/* SPDX-License-Identifier: MIT */
/*
 * The u64 -> u32 hash map behind apple-dma-pci's mapping table (guest gpa ->
 * slot), checked against a plain array model: growth, get_or_insert's two
 * answers, backward-shift deletion in clusters that wrap the table's end,
 * and the load limit that keeps every probe short.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vfio-apple/u64map.h"

enum { MODEL_KEYS = 3000 };

/* Key i of the model and whether it is present. */
struct model {
    uint64_t key[MODEL_KEYS];
    uint32_t val[MODEL_KEYS];
    bool in[MODEL_KEYS];
};

static uint64_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 17;
}

/* Every model key answers as the model says, and the count matches. */
static void check_model(const struct vm_u64map *m, const struct model *md)
{
    uint32_t n = 0;

    for (int i = 0; i < MODEL_KEYS; i++) {
        uint32_t v = UINT32_MAX;
        assert_int_equal(vm_u64map_get(m, md->key[i], &v), md->in[i]);
        if (md->in[i]) {
            assert_int_equal(v, md->val[i]);
            n++;
        }
    }
    assert_int_equal(m->count, n);
}

/* The longest run of used slots, cyclically. */
static uint32_t longest_cluster(const struct vm_u64map *m)
{
    uint32_t best = 0, run = 0;

    for (uint32_t i = 0; i < 2 * m->cap; i++) {
        run = m->slots[i & (m->cap - 1)].used ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best < m->cap ? best : m->cap;
}

static void test_empty(void **state)
{
    struct vm_u64map m;
    uint32_t v = 7;

    (void)state;
    vm_u64map_init(&m);
    assert_false(vm_u64map_get(&m, 0, &v));
    assert_false(vm_u64map_remove(&m, 0));
    assert_int_equal(v, 7);
    /* The first get_or_insert grows the empty map. */
    assert_int_equal(vm_u64map_get_or_insert(&m, 0, &v), 0);
    v = 9;
    assert_int_equal(vm_u64map_get_or_insert(&m, 0, &v), 1);
    assert_int_equal(v, 7);
    vm_u64map_clear(&m);
    assert_false(vm_u64map_get(&m, 0, &v));
    assert_int_equal(m.count, 0);
    vm_u64map_free(&m);
    vm_u64map_free(&m); /* twice is harmless */
}

/*
 * Random inserts (through both entry points), lookups and removals against
 * the model, with keys shaped like guest buffers: strided, clustered and
 * random, so clusters form and wrap around the table's end.
 */
static void test_against_model(void **state)
{
    static struct model md;
    struct vm_u64map m;
    uint64_t seed = 0xfeedull;

    (void)state;
    for (int round = 0; round < 3; round++) {
        vm_u64map_init(&m);
        memset(&md, 0, sizeof(md));
        for (int i = 0; i < MODEL_KEYS; i++) {
            switch (round) {
            case 0:
                md.key[i] = 0x70000000ull + (uint64_t)i * 0x1000 + (i % 64) * 8;
                break;
            case 1:
                md.key[i] = (uint64_t)i; /* dense small keys */
                break;
            default:
                md.key[i] = next_rand(&seed) << 12 | (uint64_t)i; /* distinct */
                break;
            }
        }
        for (int step = 0; step < 60000; step++) {
            int i = (int)(next_rand(&seed) % MODEL_KEYS);
            uint32_t v = (uint32_t)next_rand(&seed);
            switch (next_rand(&seed) % 4) {
            case 0:
            case 1:
                if (md.in[i]) {
                    uint32_t got = v;
                    /* Present: answers the stored value, changes nothing. */
                    assert_int_equal(vm_u64map_get_or_insert(&m, md.key[i], &got), 1);
                    assert_int_equal(got, md.val[i]);
                } else if (step % 2) {
                    assert_int_equal(vm_u64map_get_or_insert(&m, md.key[i], &v), 0);
                    md.in[i] = true;
                    md.val[i] = v;
                } else {
                    assert_int_equal(vm_u64map_insert(&m, md.key[i], v), 0);
                    md.in[i] = true;
                    md.val[i] = v;
                }
                break;
            case 2:
                assert_int_equal(vm_u64map_remove(&m, md.key[i]), md.in[i]);
                md.in[i] = false;
                break;
            default: {
                uint32_t got = 0;
                assert_int_equal(vm_u64map_get(&m, md.key[i], &got), md.in[i]);
                if (md.in[i]) {
                    assert_int_equal(got, md.val[i]);
                }
                break;
            }
            }
            if (step % 5000 == 0) {
                check_model(&m, &md);
            }
        }
        check_model(&m, &md);
        /* The load limit: at most a quarter of the slots in use. */
        assert_true((uint64_t)m.count * 4 <= m.cap);
        vm_u64map_free(&m);
    }
}

/* Removing every key, in an order unrelated to insertion, empties every slot. */
static void test_remove_all(void **state)
{
    struct vm_u64map m;
    uint64_t seed = 99;

    (void)state;
    vm_u64map_init(&m);
    for (uint32_t i = 0; i < 4096; i++) {
        assert_int_equal(vm_u64map_insert(&m, 0x80000000ull + i * 0x4000ull, i), 0);
    }
    assert_true(longest_cluster(&m) < m.cap);
    /* The load limit itself: the check above holds whenever one slot is free. */
    assert_true((uint64_t)m.count * 4 <= m.cap);
    for (uint32_t k = 0; k < 4096; k++) {
        /* 1237 is odd, so i visits every value below 4096 once. */
        uint32_t i = (uint32_t)((k * 1237u + seed) % 4096u);
        uint32_t v;
        assert_true(vm_u64map_remove(&m, 0x80000000ull + i * 0x4000ull));
        assert_false(vm_u64map_get(&m, 0x80000000ull + i * 0x4000ull, &v));
    }
    assert_int_equal(m.count, 0);
    for (uint32_t i = 0; i < m.cap; i++) {
        assert_int_equal(m.slots[i].used, 0);
    }
    vm_u64map_free(&m);
}

/*
 * Removal across the table's end, made certain with fixed secrets: three keys
 * homed on the last slot fill it and wrap to slots 0 and 1.
 */
static void test_remove_wraps(void **state)
{
    struct vm_u64map m, probe;
    uint64_t keys[3];
    uint32_t found = 0, v;

    (void)state;
    vm_u64map_init(&m);
    m.mul = 0x9e3779b97f4a7c15ull;
    m.salt = 0;
    /* Homes at the first capacity, 16 slots (shift 60), before any insert. */
    probe = m;
    probe.shift = 60;
    for (uint64_t k = 1; found < 3; k++) {
        if (vm_u64map_home(&probe, k) == 15) {
            keys[found++] = k;
        }
    }
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(vm_u64map_insert(&m, keys[i], 100 + i), 0);
    }
    assert_int_equal(m.cap, 16);
    assert_true(m.slots[0].used && m.slots[1].used && m.slots[15].used);
    assert_true(vm_u64map_remove(&m, keys[0]));
    assert_false(vm_u64map_get(&m, keys[0], &v));
    for (uint32_t i = 1; i < 3; i++) {
        assert_true(vm_u64map_get(&m, keys[i], &v));
        assert_int_equal(v, 100 + i);
    }
    assert_int_equal(m.count, 2);
    vm_u64map_free(&m);
}

/* Two maps hash differently (per-map secrets), yet answer the same. */
static void test_secrets(void **state)
{
    struct vm_u64map a, b;
    uint32_t v;

    (void)state;
    vm_u64map_init(&a);
    vm_u64map_init(&b);
    assert_true(a.mul & 1);
    assert_true(a.mul != b.mul || a.salt != b.salt);
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(vm_u64map_insert(&a, i, i), 0);
        assert_int_equal(vm_u64map_insert(&b, i, i), 0);
    }
    for (uint32_t i = 0; i < 100; i++) {
        assert_true(vm_u64map_get(&a, i, &v) && v == i);
        assert_true(vm_u64map_get(&b, i, &v) && v == i);
    }
    vm_u64map_free(&a);
    vm_u64map_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),      cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_remove_all), cmocka_unit_test(test_remove_wraps),
        cmocka_unit_test(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
