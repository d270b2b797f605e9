/* SPDX-License-Identifier: MIT */
/*
 * The robustness tests' random numbers: xorshift64*, deterministic per seed
 * so that a failing case can be replayed from its loop index.
 */
#ifndef VMAPPLE_TEST_RNG_H
#define VMAPPLE_TEST_RNG_H

#include <stdint.h>

static uint64_t rng_state = 1;

static inline uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static inline void seed(uint64_t s)
{
    rng_state = s ? s : 1;
}

#endif
