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
    m->mul = vm_random_u64() | 1;
    m->salt = vm_random_u64();
}

void vm_u64map_free(struct vm_u64map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

void vm_u64map_clear(struct vm_u64map *m)
{
    if (m->slots) {
        memset(m->slots, 0, (size_t)m->cap * sizeof(*m->slots));
    }
    m->count = 0;
}

bool vm_u64map_get(const struct vm_u64map *m, uint64_t key, uint32_t *val)
{
    uint32_t mask = m->cap - 1;

    if (m->count == 0) {
        return false;
    }
    for (uint32_t i = vm_u64map_home(m, key);; i = (i + 1) & mask) {
        const struct vm_u64map_slot *s = &m->slots[i];
        if (!s->used) {
            return false;
        }
        if (s->key == key) {
            *val = s->val;
            return true;
        }
    }
}

static void place(struct vm_u64map *m, uint64_t key, uint32_t val)
{
    uint32_t i = vm_u64map_home(m, key);

    while (m->slots[i].used) {
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->slots[i].used = 1;
}

static int grow(struct vm_u64map *m)
{
    struct vm_u64map old = *m;
    uint32_t cap = m->cap ? m->cap * 2 : U64MAP_MIN_CAP;

    if (cap == 0 || cap > (1u << 30)) {
        return -ENOMEM;
    }
    m->slots = calloc(cap, sizeof(*m->slots));
    if (!m->slots) {
        m->slots = old.slots;
        return -ENOMEM;
    }
    m->cap = cap;
    m->shift = 64 - (uint32_t)__builtin_ctz(cap);
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.slots[i].used) {
            place(m, old.slots[i].key, old.slots[i].val);
        }
    }
    free(old.slots);
    return 0;
}

int vm_u64map_insert(struct vm_u64map *m, uint64_t key, uint32_t val)
{
    if (vm_u64map_full(m)) {
        int ret = grow(m);
        if (ret < 0) {
            return ret;
        }
    }
    place(m, key, val);
    m->count++;
    return 0;
}

int vm_u64map_get_or_insert_grow(struct vm_u64map *m, uint64_t key, uint32_t *val)
{
    if (vm_u64map_get(m, key, val)) {
        return 1;
    }
    return vm_u64map_insert(m, key, *val);
}

bool vm_u64map_remove(struct vm_u64map *m, uint64_t key)
{
    uint32_t mask = m->cap - 1;
    uint32_t i, j;

    if (m->count == 0) {
        return false;
    }
    for (i = vm_u64map_home(m, key);; i = (i + 1) & mask) {
        if (!m->slots[i].used) {
            return false;
        }
        if (m->slots[i].key == key) {
            break;
        }
    }
    /* Backward shift: pull later members of the cluster into the hole. */
    for (j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        uint32_t home = vm_u64map_home(m, m->slots[j].key);
        /* j stays unless its home lies cyclically outside (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].used = 0;
    m->count--;
    return true;
}
