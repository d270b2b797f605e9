/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "u64map.h"

#define U64MAP_MIN_CAP 16u

uint64_t vm_random_u64(void)
{
    static uint64_t counter;
    struct timespec ts;
    uint64_t v;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v)) {
        return v;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
        __atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
    v ^= v >> 31;
    v *= 0xbf58476d1ce4e5b9ull;
    return v ^ (v >> 29);
}

void vm_u64map_init(struct vm_u64map *m)
{
    memset(m, 0, sizeof(*m));
    m->k0 = vm_random_u64();
    m->k1 = vm_random_u64() | 1;
}

void vm_u64map_free(struct vm_u64map *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    m->keys = NULL;
    m->vals = NULL;
    m->used = NULL;
    m->cap = m->count = 0;
}

void vm_u64map_clear(struct vm_u64map *m)
{
    if (m->used) {
        memset(m->used, 0, m->cap);
    }
    m->count = 0;
}

static inline uint32_t slot_of(const struct vm_u64map *m, uint64_t key)
{
    uint64_t h = (key ^ m->k0) * m->k1;

    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 29;
    return (uint32_t)h & (m->cap - 1);
}

bool vm_u64map_get(const struct vm_u64map *m, uint64_t key, uint32_t *val)
{
    if (m->count == 0) {
        return false;
    }
    for (uint32_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i]) {
            return false;
        }
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return true;
        }
    }
}

static void place(struct vm_u64map *m, uint64_t key, uint32_t val)
{
    uint32_t i = slot_of(m, key);

    while (m->used[i]) {
        i = (i + 1) & (m->cap - 1);
    }
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
}

static int grow(struct vm_u64map *m)
{
    struct vm_u64map old = *m;
    uint32_t cap = m->cap ? m->cap * 2 : U64MAP_MIN_CAP;

    if (cap == 0 || cap > (1u << 31)) {
        return -ENOMEM;
    }
    m->keys = malloc((size_t)cap * sizeof(*m->keys));
    m->vals = malloc((size_t)cap * sizeof(*m->vals));
    m->used = calloc(cap, 1);
    if (!m->keys || !m->vals || !m->used) {
        free(m->keys);
        free(m->vals);
        free(m->used);
        *m = old;
        return -ENOMEM;
    }
    m->cap = cap;
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.used[i]) {
            place(m, old.keys[i], old.vals[i]);
        }
    }
    free(old.keys);
    free(old.vals);
    free(old.used);
    return 0;
}

int vm_u64map_insert(struct vm_u64map *m, uint64_t key, uint32_t val)
{
    if ((uint64_t)(m->count + 1) * 2 > m->cap) {
        int ret = grow(m);
        if (ret < 0) {
            return ret;
        }
    }
    place(m, key, val);
    m->count++;
    return 0;
}

bool vm_u64map_remove(struct vm_u64map *m, uint64_t key)
{
    uint32_t mask = m->cap - 1;
    uint32_t i, j;

    if (m->count == 0) {
        return false;
    }
    for (i = slot_of(m, key);; i = (i + 1) & mask) {
        if (!m->used[i]) {
            return false;
        }
        if (m->keys[i] == key) {
            break;
        }
    }
    /* Backward shift: pull later members of the cluster into the hole. */
    for (j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        uint32_t home = slot_of(m, m->keys[j]);
        /* Move j to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->used[i] = 0;
    m->count--;
    return true;
}
