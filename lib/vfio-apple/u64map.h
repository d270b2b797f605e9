/* SPDX-License-Identifier: MIT */
/*
 * An open-addressing hash map from u64 keys to u32 values (linear probing,
 * backward-shift deletion, at most half full, one 16-byte slot per entry).
 * Keys come from the guest (guest-physical addresses), so the hash is
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
/*
 * One probe for both: when `key` is present, returns 1 and sets *val to its
 * value; otherwise inserts it with `val` and returns 0; -ENOMEM when it
 * could not grow.
 */
VM_HIDDEN int vm_u64map_get_or_insert(struct vm_u64map *m, uint64_t key, uint32_t *val);
/* Remove `key`; returns whether it was present. */
VM_HIDDEN bool vm_u64map_remove(struct vm_u64map *m, uint64_t key);

/* Random 64 bits for hash secrets (getrandom, else a clock-based mix). */
VM_HIDDEN uint64_t vm_random_u64(void);

#endif /* VMAPPLE_U64MAP_H */
