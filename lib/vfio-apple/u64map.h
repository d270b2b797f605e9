/* SPDX-License-Identifier: MIT */
/*
 * An open-addressing hash map from u64 keys to u32 values (linear probing,
 * backward-shift deletion, at most half full). Keys come from the guest
 * (guest-physical addresses), so the hash is keyed with per-map random
 * secrets: a guest cannot pick keys that all collide.
 */
#ifndef VMAPPLE_U64MAP_H
#define VMAPPLE_U64MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"

struct vm_u64map {
    uint64_t *keys;
    uint32_t *vals;
    uint8_t *used;
    uint32_t cap; /* slots, a power of two (0 before the first insert) */
    uint32_t count;
    uint64_t k0, k1; /* hash secrets */
};

VM_HIDDEN void vm_u64map_init(struct vm_u64map *m);
VM_HIDDEN void vm_u64map_free(struct vm_u64map *m);
/* Forget every key, keep the storage. */
VM_HIDDEN void vm_u64map_clear(struct vm_u64map *m);
/* Returns true and sets *val when `key` is present. */
VM_HIDDEN bool vm_u64map_get(const struct vm_u64map *m, uint64_t key, uint32_t *val);
/* Insert a key that is not present. Returns 0 or -ENOMEM. */
VM_HIDDEN int vm_u64map_insert(struct vm_u64map *m, uint64_t key, uint32_t val);
/* Remove `key`; returns whether it was present. */
VM_HIDDEN bool vm_u64map_remove(struct vm_u64map *m, uint64_t key);

/* Random 64 bits for hash secrets (getrandom, else a clock-based mix). */
VM_HIDDEN uint64_t vm_random_u64(void);

#endif /* VMAPPLE_U64MAP_H */
