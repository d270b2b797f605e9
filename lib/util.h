/* SPDX-License-Identifier: MIT */
/* Small internal helpers: byte order at the guest boundary, sizes, casts. */
#ifndef VMAPPLE_UTIL_H
#define VMAPPLE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VM_ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))
#define VM_MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define VM_MAX(a, b)                       ((a) > (b) ? (a) : (b))
#define vm_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define vm_likely(x)                       __builtin_expect(!!(x), 1)
#define vm_unlikely(x)                     __builtin_expect(!!(x), 0)

/* Guest data is little-endian; these convert at the boundary. */
static inline uint16_t vm_ld_le16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    return v;
}

static inline uint32_t vm_ld_le32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}

static inline uint64_t vm_ld_le64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void vm_st_le16(void *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, sizeof(v));
}

static inline void vm_st_le32(void *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, sizeof(v));
}

static inline void vm_st_le64(void *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof(v));
}

/* Load/store `size` (1, 2, 4 or 8) little-endian bytes. */
static inline uint64_t vm_ld_le(const void *p, unsigned size)
{
    switch (size) {
    case 1:
        return *(const uint8_t *)p;
    case 2:
        return vm_ld_le16(p);
    case 4:
        return vm_ld_le32(p);
    default:
        return vm_ld_le64(p);
    }
}

static inline void vm_st_le(void *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1:
        *(uint8_t *)p = (uint8_t)v;
        break;
    case 2:
        vm_st_le16(p, (uint16_t)v);
        break;
    case 4:
        vm_st_le32(p, (uint32_t)v);
        break;
    default:
        vm_st_le64(p, v);
        break;
    }
}

/* Mask of the low `size` bytes (size 1..8). */
static inline uint64_t vm_size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : ((1ull << (size * 8)) - 1);
}

/* A power of two (and not 0): ring sizes, BAR sizes, block sizes. */
static inline bool vm_is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

static inline int vm_access_size_ok(uint32_t size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

/* Bounded string length (no reliance on NUL within `max`). */
static inline size_t vm_strnlen(const char *s, size_t max)
{
    const char *nul = memchr(s, 0, max);
    return nul ? (size_t)(nul - s) : max;
}

#endif /* VMAPPLE_UTIL_H */
