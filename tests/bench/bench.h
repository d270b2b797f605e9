/* SPDX-License-Identifier: MIT */
/*
 * Shared by the benchmark programs. Every figure is printed as one line
 *
 *   bench: <name> <value> <unit> limit <value> ratio <library/limit>
 *
 * where the limit is the physical limit measured in the same run (raw
 * OpenSSL on the same buffers, raw pread on the same file, a bare indirect
 * call). Benchmarks never assert a time; they report.
 */
#ifndef VMAPPLE_TEST_BENCH_H
#define VMAPPLE_TEST_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_report(const char *name, double value, const char *unit, double limit)
{
    printf("bench: %s %.3f %s limit %.3f ratio %.3f\n", name, value, unit, limit,
           limit > 0 ? value / limit : 0.0);
    fflush(stdout);
}

/* Keeps the compiler from discarding a computed value. */
#define bench_keep(x) __asm__ volatile("" : : "g"(x) : "memory")

#endif
