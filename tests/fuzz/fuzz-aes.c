/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the AES engine: FIFO words (raw and structured commands), register
 * accesses on both windows, guest memory contents, host behaviour (mem_map
 * on/off, short mappings, failing copies), reset and save/load, all from
 * the input. Findings: sanitizer reports; a write outside the destination
 * the completing command named (the harness follows the FIFO framing of
 * spec/aes.md to know which command a word completes); a mapping left
 * open; an interrupt line that disagrees with IRQ_STATUS & IRQ_ENABLE; and
 * a device that no longer runs a known-answer DATA afterwards.
 *
 * Guest RAM is 64 KiB: DATA lengths up to 16 MiB must fail without any
 * length-sized allocation (./dev fuzz caps malloc at 64 MiB).
 */
#include <errno.h>

#include "fuzz.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x10000ull

#define REG_IRQ_STATUS 0x018
#define REG_IRQ_ENABLE 0x01c
#define REG_FLAG_INFO  0x030
#define REG_FIFO       0x200

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness's own model of the command framing (from the spec). */
struct framing {
    uint32_t header;
    unsigned have; /* words of the current command received */
};

static unsigned cmd_words(uint32_t cmd)
{
    switch (cmd >> 28) {
    case 0x1: {
        static const unsigned key_words[4] = { 4, 6, 8, 16 };
        return (cmd >> 24 & 7) ? 1 : 1 + key_words[cmd >> 22 & 3];
    }
    case 0x2:
        return 5;
    case 0x5:
        return 4;
    case 0x6:
        return 2;
    default:
        return 1;
    }
}

struct ctx {
    struct mock_host *h;
    vmapple_device *dev;
    struct framing fr;
    uint32_t words[4]; /* the first words of the current command */
};

/*
 * Account for one FIFO word about to be written. If it completes a DATA or
 * STORE_IV command, only that command's destination may be written while
 * it runs; otherwise nothing may be.
 */
static void frame_word(struct ctx *c, uint32_t w)
{
    struct mock_host *h = c->h;

    if (c->fr.have == 0) {
        c->fr.header = w;
    }
    if (c->fr.have < 4) {
        c->words[c->fr.have] = w;
    }
    c->fr.have++;
    h->guard_writes = true;
    h->guard_lo = h->guard_hi = 0;
    if (c->fr.have == cmd_words(c->fr.header)) {
        uint32_t hdr = c->fr.header;
        if (hdr >> 28 == 0x5) {
            uint64_t dst = (uint64_t)(c->words[1] & 0xffff) << 32 | w;
            h->guard_lo = dst;
            h->guard_hi = dst + (hdr & 0xffffff);
        } else if (hdr >> 28 == 0x6) {
            uint64_t dst = (uint64_t)(hdr & 0xff) << 32 | w;
            h->guard_lo = dst;
            h->guard_hi = dst + 16;
        }
        c->fr.have = 0;
    }
}

static void after_write(struct ctx *c)
{
    c->h->guard_lo = c->h->guard_hi = 0;
    if (c->h->stray_writes) {
        FUZZ_FINDING("write outside the destination of command 0x%08x", c->fr.header);
    }
}

static void push(struct ctx *c, uint32_t w)
{
    frame_word(c, w);
    vmapple_device_write(c->dev, 0, REG_FIFO, 4, w);
    after_write(c);
}

static uint64_t take_addr(struct fuzz_input *in)
{
    uint8_t how = (uint8_t)fuzz_take(in, 1);

    if (how & 0x80) {
        return fuzz_take(in, 6); /* anywhere in 48 bits */
    }
    return RAM_BASE + fuzz_take(in, 2) + (how & 1 ? RAM_SIZE - 0x100 : 0); /* in or near RAM */
}

static uint32_t reg_read(vmapple_device *dev, uint64_t off)
{
    uint64_t v = 0;
    vmapple_device_read(dev, 0, off, 4, &v);
    return (uint32_t)v;
}

static void check_invariants(struct ctx *c)
{
    struct mock_host *h = c->h;
    int want = (reg_read(c->dev, REG_IRQ_STATUS) & reg_read(c->dev, REG_IRQ_ENABLE)) != 0;

    if (h->stray_writes || h->wrapping_accesses || h->maps_live) {
        FUZZ_FINDING("stray %u wrapping %u live maps %u", h->stray_writes, h->wrapping_accesses,
                     h->maps_live);
    }
    if (h->irq_level[0] != want) {
        FUZZ_FINDING("interrupt line %d, IRQ_STATUS & IRQ_ENABLE says %d", h->irq_level[0], want);
    }
}

static const uint8_t kat_key[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                     0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const uint8_t kat_pt[16] = { 0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
                                    0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a };
static const uint8_t kat_ct[16] = { 0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60,
                                    0xa8, 0x9e, 0xca, 0xf3, 0x24, 0x66, 0xef, 0x97 };

/* Resynchronise with FLAG commands, then NIST ECB-AES128 must come out. */
static void check_still_works(struct ctx *c)
{
    struct mock_host *h = c->h;
    uint8_t *src = mock_ram(h, RAM_BASE, 16), *dst = mock_ram(h, RAM_BASE + 16, 16);
    /* FLAG_INFO changes only when a FLAG runs: use values it does not hold now. */
    uint32_t base = reg_read(c->dev, REG_FLAG_INFO) + 1, n;

    h->fail_reads = h->fail_writes = 0;
    for (n = 0; n < 20; n++) {
        uint32_t info = (base + n) & 0xff;
        push(c, 0x80000000u | info);
        if (reg_read(c->dev, REG_FLAG_INFO) == info) {
            break;
        }
    }
    if (n == 20) {
        FUZZ_FINDING("the FIFO never ran a FLAG command");
    }
    memcpy(src, kat_pt, 16);
    memset(dst, 0, 16);
    push(c, 0x10100000); /* KEY ctx 0, 128-bit, encrypt, ECB */
    for (unsigned i = 0; i < 16; i += 4) {
        push(c, (uint32_t)kat_key[i] | (uint32_t)kat_key[i + 1] << 8 |
                    (uint32_t)kat_key[i + 2] << 16 | (uint32_t)kat_key[i + 3] << 24);
    }
    push(c, 0x50000010); /* DATA ctx 0, 16 bytes */
    push(c, 0);
    push(c, (uint32_t)RAM_BASE);
    push(c, (uint32_t)RAM_BASE + 16);
    if (memcmp(dst, kat_ct, 16) != 0) {
        FUZZ_FINDING("device stopped working: known-answer DATA failed");
    }
    check_invariants(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    struct ctx c = { 0 };
    uint8_t setup;
    uint64_t v;

    c.h = mock_host_new(RAM_BASE, RAM_SIZE);
    setup = (uint8_t)fuzz_take(&in, 1);
    opts.cbc_chain_iv = setup & 1;
    if (setup & 2) {
        opts.builtin_keys[4].length = 16; /* select 5 defined by the host */
        memset(opts.builtin_keys[4].key, 0x55, 16);
    }
    c.h->allow_map = (setup & 4) != 0;
    c.h->map_chunk = (setup & 8) ? 1 + (setup >> 4) * 37 : 0;
    if (vmapple_aes_create(mock_host_ops(), c.h, &opts, &c.dev) != 0) {
        FUZZ_FINDING("setup failed");
    }
    c.h->guard_writes = true; /* nothing may be written until a command names a destination */

    while (fuzz_left(&in)) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);

        switch (op & 7) {
        case 0: /* raw FIFO words */
            for (unsigned n = 0; n <= (op >> 3 & 3); n++) {
                push(&c, (uint32_t)fuzz_take(&in, 4));
            }
            break;
        case 1: { /* KEY header with its payload */
            uint32_t hdr = 0x10000000u | ((uint32_t)fuzz_take(&in, 4) & 0x0fffffff);
            unsigned words = cmd_words(hdr);
            push(&c, hdr);
            for (unsigned i = 1; i < words; i++) {
                push(&c, (uint32_t)fuzz_take(&in, 4));
            }
            break;
        }
        case 2: { /* DATA */
            uint32_t hdr = (uint32_t)fuzz_take(&in, 4);
            uint64_t src = take_addr(&in);
            uint64_t dst = op & 0x80 ? src + (int8_t)fuzz_take(&in, 1) * 3 : take_addr(&in);
            if (op & 0x40) {
                hdr &= 0xfe00fff0u; /* short and block-aligned */
            }
            push(&c, 0x50000000u | (hdr & 0x0fffffff));
            push(&c, (uint32_t)((src >> 32) & 0xffff) << 16 | (uint32_t)((dst >> 32) & 0xffff));
            push(&c, (uint32_t)src);
            push(&c, (uint32_t)dst);
            break;
        }
        case 3: { /* IV or STORE_IV */
            uint32_t hdr = (uint32_t)fuzz_take(&in, 4) & 0x0fffffff;
            if (op & 0x80) {
                push(&c, 0x60000000u | hdr);
                push(&c, (uint32_t)take_addr(&in));
            } else {
                push(&c, 0x20000000u | hdr);
                for (unsigned i = 0; i < 4; i++) {
                    push(&c, (uint32_t)fuzz_take(&in, 4));
                }
            }
            break;
        }
        case 4: { /* register write, any region/offset/size */
            uint32_t region = op >> 7;
            uint64_t off = fuzz_take(&in, 2) % 0x4010;
            uint32_t sz = 1u << (op >> 3 & 3);
            uint64_t val = fuzz_take(&in, 8);
            /* Only an aligned 4- or 8-byte access at 0x200 reaches the FIFO (low half). */
            if (region == 0 && off == REG_FIFO && (sz == 4 || sz == 8)) {
                frame_word(&c, (uint32_t)val);
            }
            vmapple_device_write(c.dev, region, off, sz, val);
            after_write(&c);
            break;
        }
        case 5: /* register read */
            vmapple_device_read(c.dev, op >> 7, fuzz_take(&in, 2) % 0x4010, 1u << (op >> 3 & 3),
                                &v);
            break;
        case 6: { /* guest memory contents */
            uint64_t off = fuzz_take(&in, 2) % RAM_SIZE;
            size_t n = (size_t)fuzz_take(&in, 1);
            for (size_t i = 0; i < n && off + i < RAM_SIZE; i++) {
                c.h->ram[off + i] = (uint8_t)fuzz_take(&in, 1);
            }
            break;
        }
        default: /* the host */
            switch (op >> 3 & 7) {
            case 0:
                c.h->allow_map = !c.h->allow_map;
                break;
            case 1:
                c.h->map_chunk = fuzz_take(&in, 2);
                break;
            case 2:
                c.h->fail_reads = 1;
                break;
            case 3:
                c.h->fail_writes = 1;
                break;
            case 4:
                vmapple_device_reset(c.dev);
                c.fr.have = 0;
                break;
            default: {
                /* Save and load back: the device continues exactly. */
                uint8_t blob[1024];
                size_t len = 0;
                if (vmapple_device_save(c.dev, blob, sizeof(blob), &len) != 0 ||
                    vmapple_device_load(c.dev, blob, len) != 0) {
                    FUZZ_FINDING("save/load round trip failed (%zu bytes)", len);
                }
                break;
            }
            }
            break;
        }
        check_invariants(&c);
    }
    check_still_works(&c);
    vmapple_device_destroy(c.dev);
    mock_host_free(c.h);
    return 0;
}
