/* SPDX-License-Identifier: MIT */
/*
 * An open-addressing hash map from u64 keys to u32 values (linear probing,
 * backward-shift deletion, at most a quarter full, one 16-byte slot per
 * entry). Keys come from the guest (guest-physical addresses), so the hash is
 * multiply-shift with a per-map random odd multiplier (a universal family):
 * a guest that cannot see the multiplier cannot pick keys that collide.
 */
#ifndef VMAPPLE_U64MAP_H
#define VMAPPLE_U64MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

struct vm_u64map_slot {
    uint64_t key;
    uint32_t val;
    uint32_t used;
};

struct vm_u64map {
    struct vm_u64map_slot *slots;
    uint32_t cap;   /* slots, a power of two (0 before the first insert) */
    uint32_t shift; /* 64 - log2(cap) */
    uint32_t count;
    uint64_t mul, salt; /* hash secrets; mul is odd */
};

VM_HIDDEN void vm_u64map_init(struct vm_u64map *m);
VM_HIDDEN void vm_u64map_free(struct vm_u64map *m);
/* Forget every key, keep the storage. */
VM_HIDDEN void vm_u64map_clear(struct vm_u64map *m);
/* Returns true and sets *val when `key` is present. */
VM_HIDDEN bool vm_u64map_get(const struct vm_u64map *m, uint64_t key, uint32_t *val);
/* Insert a key that is not present. Returns 0 or -ENOMEM. */
VM_HIDDEN int vm_u64map_insert(struct vm_u64map *m, uint64_t key, uint32_t val);
/* The out-of-line part of vm_u64map_get_or_insert(): the map grows first. */
VM_HIDDEN int vm_u64map_get_or_insert_grow(struct vm_u64map *m, uint64_t key, uint32_t *val);

/*
 * Whether one more key must grow the map first: it stays at most a quarter
 * full. Half full measured 1 ns more per apple-dma-pci MAP entry, and a bad
 * draw of the multiplier hurt more (longer clusters, mispredicted probes).
 */
static inline bool vm_u64map_full(const struct vm_u64map *m)
{
    return (uint64_t)(m->count + 1) * 4 > m->cap;
}

/* Multiply-shift: the top bits of (key ^ salt) * mul. */
static inline uint32_t vm_u64map_home(const struct vm_u64map *m, uint64_t key)
{
    return (uint32_t)(((key ^ m->salt) * m->mul) >> m->shift);
}

/*
 * One probe for both: when `key` is present, returns 1 and sets *val to its
 * value; otherwise inserts it with `val` and returns 0; -ENOMEM when it
 * could not grow. Inline: apple-dma-pci calls it once per MAP entry.
 */
static inline int vm_u64map_get_or_insert(struct vm_u64map *m, uint64_t key, uint32_t *val)
{
    uint32_t mask = m->cap - 1, i;

    if (vm_u64map_full(m)) {
        return vm_u64map_get_or_insert_grow(m, key, val);
    }
    for (i = vm_u64map_home(m, key); m->slots[i].used; i = (i + 1) & mask) {
        if (m->slots[i].key == key) {
            *val = m->slots[i].val;
            return 1;
        }
    }
    m->slots[i].key = key;
    m->slots[i].val = *val;
    m->slots[i].used = 1;
    m->count++;
    return 0;
}
/* Remove `key`; returns whether it was present. */
VM_HIDDEN bool vm_u64map_remove(struct vm_u64map *m, uint64_t key);

/* Random 64 bits for hash secrets (getrandom, else a clock-based mix). */
VM_HIDDEN uint64_t vm_random_u64(void);

#endif /* VMAPPLE_U64MAP_H */
