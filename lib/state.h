/* SPDX-License-Identifier: MIT */
/*
 * State blobs: a bounds-checked writer and reader for device state.
 *
 * Blob layout (little-endian):
 *   0  u8[8] magic "VMAPLSTA"
 *   8  u32   blob format version (1)
 *  12  u32   device type
 *  16  u32   device state version
 *  20  u32   payload length
 *  24  u32   CRC-32 (IEEE) of the payload
 *  28  u32   reserved, 0
 *  32  payload: u64 interrupt levels, then the device's own fields
 */
#ifndef VMAPPLE_STATE_H
#define VMAPPLE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define VM_STATE_MAGIC      "VMAPLSTA"
#define VM_STATE_FORMAT     1u
#define VM_STATE_HEADER_LEN 32u
/* A blob larger than this is refused before anything else is looked at. */
#define VM_STATE_MAX_PAYLOAD (64u << 20)

struct vm_state_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool failed; /* out of memory or over VM_STATE_MAX_PAYLOAD */
};

struct vm_state_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool failed; /* read past the end, or a device-detected bad value */
    /*
     * The interrupt levels the blob claims (the core applies them after a
     * successful load). A device whose levels follow from its state checks
     * them against that state before committing, so a tampered blob cannot
     * leave a line asserted that the device's registers say is low.
     */
    uint64_t irq_levels;
};

VM_HIDDEN void vm_st_put_u8(struct vm_state_writer *w, uint8_t v);
VM_HIDDEN void vm_st_put_u16(struct vm_state_writer *w, uint16_t v);
VM_HIDDEN void vm_st_put_u32(struct vm_state_writer *w, uint32_t v);
VM_HIDDEN void vm_st_put_u64(struct vm_state_writer *w, uint64_t v);
VM_HIDDEN void vm_st_put_bool(struct vm_state_writer *w, bool v);
VM_HIDDEN void vm_st_put_bytes(struct vm_state_writer *w, const void *p, size_t n);

/* Readers return 0 and set r->failed once past the end; check r->failed. */
VM_HIDDEN uint8_t vm_st_get_u8(struct vm_state_reader *r);
VM_HIDDEN uint16_t vm_st_get_u16(struct vm_state_reader *r);
VM_HIDDEN uint32_t vm_st_get_u32(struct vm_state_reader *r);
VM_HIDDEN uint64_t vm_st_get_u64(struct vm_state_reader *r);
/* A bool must be stored as 0 or 1; anything else fails the reader. */
VM_HIDDEN bool vm_st_get_bool(struct vm_state_reader *r);
VM_HIDDEN void vm_st_get_bytes(struct vm_state_reader *r, void *p, size_t n);
/* Fail the reader when a device finds a value out of range. */
static inline void vm_st_fail(struct vm_state_reader *r)
{
    r->failed = true;
}

/*
 * The contract of a class's load(): parse the whole payload into locals,
 * then require vm_st_complete() (nothing missing, nothing left over) and
 * validate every value, and only then change the device.
 */
static inline bool vm_st_complete(const struct vm_state_reader *r)
{
    return !r->failed && r->pos == r->len;
}

VM_HIDDEN uint32_t vm_crc32(const void *buf, size_t len);

#endif /* VMAPPLE_STATE_H */
