/* SPDX-License-Identifier: MIT */
/*
 * A host-callback block backend over a memory buffer for device tests: it
 * counts and logs calls, can fail them, and can hold reads and writes until
 * the test releases them (to keep requests in flight). Thread-safe.
 */
#ifndef VMAPPLE_TEST_MEMBD_H
#define VMAPPLE_TEST_MEMBD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libvmapple/libvmapple.h>

struct membd {
    uint8_t *data;
    uint64_t size;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned reads, writes, flushes, discards, write_zeroes;
    uint64_t last_off, last_len;
    int last_unmap;
    int fail_errno; /* > 0: every call fails with -fail_errno */
    bool hold;      /* reads and writes wait while set */
    unsigned held;  /* calls waiting now */
    char log[1024]; /* one letter per call: R W F D Z, in order */
};

/* flags: VMAPPLE_BLOCKDEV_READ_ONLY, and `no_discard` drops discard/write_zeroes. */
vmapple_blockdev *membd_open(struct membd *m, uint64_t size, uint32_t flags, bool no_discard);
void membd_free(struct membd *m);
void membd_hold(struct membd *m, bool hold);
/* Wait until `n` calls are held (returns false after ~5 s). */
bool membd_wait_held(struct membd *m, unsigned n);
void membd_log(struct membd *m, char *out, size_t len);

#endif
