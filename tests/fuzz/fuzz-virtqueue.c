/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the split virtqueue with guest memory as the input.
 *
 * Input: u8 log2(queue size) (mod 8), u8 features (bit 0 indirect, bit 1
 * event idx), u8 host (bit 0 mem_map, bit 1 short mappings), then the first
 * 3 KiB of guest RAM (descriptor table at 0x0, avail ring at 0x800; the used
 * ring is at 0xc00; buffers and indirect tables anywhere in the 8 KiB), then
 * pokes: u16 RAM offset, u16 value, each followed by another pass.
 *
 * Findings: sanitizer reports; a popped chain that breaks the invariants
 * (readable after writable, a range that wraps, more buffers than the queue,
 * over 4 GiB); any write outside the used ring; an access that wraps.
 */
#include <errno.h>

#include "fuzz.h"
#include "mockhost.h"
#include "testdev.h"
#include "virtqueue.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x2000ull
#define IMAGE    0xc00ull
#define DESC     RAM_BASE
#define AVAIL    (RAM_BASE + 0x800)
#define USED     (RAM_BASE + 0xc00)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_chain(const struct vm_vq *vq, const struct vm_vq_chain *c)
{
    uint64_t out = 0, in = 0;

    if (c->nr_segs > vq->size || c->nr_out > c->nr_segs || c->head >= vq->size) {
        FUZZ_FINDING("chain of %u buffers (%u readable), head %u, queue %u", c->nr_segs, c->nr_out,
                     c->head, vq->size);
    }
    for (uint32_t i = 0; i < c->nr_segs; i++) {
        const struct vm_vq_seg *s = &c->segs[i];
        if (s->len == 0 || !vm_range_ok(s->addr, s->len)) {
            FUZZ_FINDING("buffer %u: %u bytes at 0x%llx", i, s->len, (unsigned long long)s->addr);
        }
        if (s->write != (i >= c->nr_out)) {
            FUZZ_FINDING("buffer %u out of order", i);
        }
        *(s->write ? &in : &out) += s->len;
    }
    if (out != c->out_len || in != c->in_len || out + in > UINT32_MAX) {
        FUZZ_FINDING("chain lengths %llu/%llu", (unsigned long long)out, (unsigned long long)in);
    }
}

static void run_queue(struct vm_vq *vq, struct vm_vq_chain *c)
{
    vm_vq_begin(vq);
    for (int n = 0; n < 300; n++) {
        int ret = vm_vq_pop(vq, c);
        if (ret <= 0) {
            if (ret == -ENOSPC) {
                FUZZ_FINDING("chain capacity %u too small for queue %u", c->cap, vq->size);
            }
            if (ret == 0 && vm_vq_arm(vq)) {
                continue;
            }
            break;
        }
        check_chain(vq, c);
        vm_vq_push(vq, c->head, (uint32_t)c->in_len);
        if (n % 3 == 2) {
            vm_vq_publish(vq);
        }
    }
    vm_vq_publish(vq);
    vm_vq_end(vq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct vm_vq_seg segs[128];
    struct vm_vq_chain c = { segs, 128, 0, 0, 0, 0, 0 };
    struct vm_vq vq;
    vmapple_device *dev;
    uint16_t qsize = (uint16_t)(1u << (fuzz_take(&in, 1) % 8));
    uint8_t features = (uint8_t)fuzz_take(&in, 1);
    uint8_t host = (uint8_t)fuzz_take(&in, 1);
    size_t image = VM_MIN((size_t)IMAGE, size - VM_MIN(size, in.pos));

    h->allow_map = host & 1;
    h->map_chunk = (host & 2) ? 24 : 0;
    memcpy(h->ram, data + in.pos, image);
    in.pos += image;
    h->guard_writes = true;
    h->guard_lo = USED;
    h->guard_hi = USED + vm_vq_used_bytes(qsize);
    if (testdev_create(mock_host_ops(), h, NULL, &dev) != 0) {
        FUZZ_FINDING("testdev");
    }
    vm_vq_init(&vq, dev);
    if (vm_vq_setup(&vq, qsize, DESC, AVAIL, USED) != 0) {
        FUZZ_FINDING("setup");
    }
    vm_vq_set_features(&vq, features & 1, features & 2);
    run_queue(&vq, &c);
    while (fuzz_left(&in)) {
        uint16_t off = (uint16_t)(fuzz_take(&in, 2) % (RAM_SIZE - 1));
        uint16_t v = (uint16_t)fuzz_take(&in, 2);
        h->ram[off] = (uint8_t)v;
        h->ram[off + 1] = (uint8_t)(v >> 8);
        run_queue(&vq, &c);
    }
    if (h->stray_writes || h->wrapping_accesses) {
        FUZZ_FINDING("%u writes outside the used ring, %u wrapping accesses", h->stray_writes,
                     h->wrapping_accesses);
    }
    vm_vq_reset(&vq);
    if (h->maps_live) {
        FUZZ_FINDING("%u mappings leaked", h->maps_live);
    }
    vmapple_device_destroy(dev);
    mock_host_free(h);
    return 0;
}
