/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz harnesses. */
#ifndef VMAPPLE_TEST_FUZZ_H
#define VMAPPLE_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consumes the fuzz input front to back; reads past the end give zeros. */
struct fuzz_input {
    const uint8_t *data;
    size_t size;
    size_t pos;
};

static inline int fuzz_left(const struct fuzz_input *in)
{
    return in->pos < in->size;
}

static inline uint64_t fuzz_take(struct fuzz_input *in, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes; i++) {
        uint8_t b = in->pos < in->size ? in->data[in->pos] : 0;
        in->pos += in->pos < in->size;
        v |= (uint64_t)b << (8 * i);
    }
    return v;
}

/* A finding: print it and crash so libFuzzer saves the input. */
#define FUZZ_FINDING(...)                                                                          \
    do {                                                                                           \
        fprintf(stderr, "fuzz finding: " __VA_ARGS__);                                             \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

#endif
