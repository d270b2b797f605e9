/* SPDX-License-Identifier: MIT */
/*
 * The AES engine (lib/vmapple/aes.c, spec/aes.md) through the public ABI and
 * a mock host: every register, every command, every option, NIST SP 800-38A
 * known answers, in-place and overlapping DMA, save/load, and one
 * regression test per defect of the reference listed in the spec.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core.h"
#include "state.h"
#include "mockhost.h"
#include "testdev.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (4ull << 20)

#define W1 0u /* region index of window 1 */
#define W2 1u

#define REG_STATUS     0x00c
#define REG_IRQ_STATUS 0x018
#define REG_IRQ_ENABLE 0x01c
#define REG_WATERMARK  0x020
#define REG_Q_STATUS   0x024
#define REG_FLAG_INFO  0x030
#define REG_FIFO       0x200

#define IRQ_INVALID_CMD 0x4u
#define IRQ_FLAG        0x20u

#define ECB 0u
#define CBC 1u

/* The device's bounce buffer, for tests that span several of its pieces. */
#define PIECE (64u * 1024u)

/* ---- NIST SP 800-38A, appendix F.1 (ECB) and F.2 (CBC) ---- */

static const uint8_t nist_pt[64] = {
    0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
    0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51,
    0x30, 0xc8, 0x1c, 0x46, 0xa3, 0x5c, 0xe4, 0x11, 0xe5, 0xfb, 0xc1, 0x19, 0x1a, 0x0a, 0x52, 0xef,
    0xf6, 0x9f, 0x24, 0x45, 0xdf, 0x4f, 0x9b, 0x17, 0xad, 0x2b, 0x41, 0x7b, 0xe6, 0x6c, 0x37, 0x10,
};

static const uint8_t nist_iv[16] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };

struct nist_vector {
    size_t key_len;
    uint8_t key[32];
    uint8_t ecb[64];
    uint8_t cbc[64];
};

static const struct nist_vector nist[3] = {
    { 16,
      { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f,
        0x3c },
      { 0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60, 0xa8, 0x9e, 0xca, 0xf3, 0x24,
        0x66, 0xef, 0x97, 0xf5, 0xd3, 0xd5, 0x85, 0x03, 0xb9, 0x69, 0x9d, 0xe7, 0x85,
        0x89, 0x5a, 0x96, 0xfd, 0xba, 0xaf, 0x43, 0xb1, 0xcd, 0x7f, 0x59, 0x8e, 0xce,
        0x23, 0x88, 0x1b, 0x00, 0xe3, 0xed, 0x03, 0x06, 0x88, 0x7b, 0x0c, 0x78, 0x5e,
        0x27, 0xe8, 0xad, 0x3f, 0x82, 0x23, 0x20, 0x71, 0x04, 0x72, 0x5d, 0xd4 },
      { 0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46, 0xce, 0xe9, 0x8e, 0x9b, 0x12,
        0xe9, 0x19, 0x7d, 0x50, 0x86, 0xcb, 0x9b, 0x50, 0x72, 0x19, 0xee, 0x95, 0xdb,
        0x11, 0x3a, 0x91, 0x76, 0x78, 0xb2, 0x73, 0xbe, 0xd6, 0xb8, 0xe3, 0xc1, 0x74,
        0x3b, 0x71, 0x16, 0xe6, 0x9e, 0x22, 0x22, 0x95, 0x16, 0x3f, 0xf1, 0xca, 0xa1,
        0x68, 0x1f, 0xac, 0x09, 0x12, 0x0e, 0xca, 0x30, 0x75, 0x86, 0xe1, 0xa7 } },
    { 24,
      { 0x8e, 0x73, 0xb0, 0xf7, 0xda, 0x0e, 0x64, 0x52, 0xc8, 0x10, 0xf3, 0x2b,
        0x80, 0x90, 0x79, 0xe5, 0x62, 0xf8, 0xea, 0xd2, 0x52, 0x2c, 0x6b, 0x7b },
      { 0xbd, 0x33, 0x4f, 0x1d, 0x6e, 0x45, 0xf2, 0x5f, 0xf7, 0x12, 0xa2, 0x14, 0x57,
        0x1f, 0xa5, 0xcc, 0x97, 0x41, 0x04, 0x84, 0x6d, 0x0a, 0xd3, 0xad, 0x77, 0x34,
        0xec, 0xb3, 0xec, 0xee, 0x4e, 0xef, 0xef, 0x7a, 0xfd, 0x22, 0x70, 0xe2, 0xe6,
        0x0a, 0xdc, 0xe0, 0xba, 0x2f, 0xac, 0xe6, 0x44, 0x4e, 0x9a, 0x4b, 0x41, 0xba,
        0x73, 0x8d, 0x6c, 0x72, 0xfb, 0x16, 0x69, 0x16, 0x03, 0xc1, 0x8e, 0x0e },
      { 0x4f, 0x02, 0x1d, 0xb2, 0x43, 0xbc, 0x63, 0x3d, 0x71, 0x78, 0x18, 0x3a, 0x9f,
        0xa0, 0x71, 0xe8, 0xb4, 0xd9, 0xad, 0xa9, 0xad, 0x7d, 0xed, 0xf4, 0xe5, 0xe7,
        0x38, 0x76, 0x3f, 0x69, 0x14, 0x5a, 0x57, 0x1b, 0x24, 0x20, 0x12, 0xfb, 0x7a,
        0xe0, 0x7f, 0xa9, 0xba, 0xac, 0x3d, 0xf1, 0x02, 0xe0, 0x08, 0xb0, 0xe2, 0x79,
        0x88, 0x59, 0x88, 0x81, 0xd9, 0x20, 0xa9, 0xe6, 0x4f, 0x56, 0x15, 0xcd } },
    { 32,
      { 0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
        0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
        0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4 },
      { 0xf3, 0xee, 0xd1, 0xbd, 0xb5, 0xd2, 0xa0, 0x3c, 0x06, 0x4b, 0x5a, 0x7e, 0x3d,
        0xb1, 0x81, 0xf8, 0x59, 0x1c, 0xcb, 0x10, 0xd4, 0x10, 0xed, 0x26, 0xdc, 0x5b,
        0xa7, 0x4a, 0x31, 0x36, 0x28, 0x70, 0xb6, 0xed, 0x21, 0xb9, 0x9c, 0xa6, 0xf4,
        0xf9, 0xf1, 0x53, 0xe7, 0xb1, 0xbe, 0xaf, 0xed, 0x1d, 0x23, 0x30, 0x4b, 0x7a,
        0x39, 0xf9, 0xf3, 0xff, 0x06, 0x7d, 0x8d, 0x8f, 0x9e, 0x24, 0xec, 0xc7 },
      { 0xf5, 0x8c, 0x4c, 0x04, 0xd6, 0xe5, 0xf1, 0xba, 0x77, 0x9e, 0xab, 0xfb, 0x5f,
        0x7b, 0xfb, 0xd6, 0x9c, 0xfc, 0x4e, 0x96, 0x7e, 0xdb, 0x80, 0x8d, 0x67, 0x9f,
        0x77, 0x7b, 0xc6, 0x70, 0x2c, 0x7d, 0x39, 0xf2, 0x33, 0x69, 0xa9, 0xd9, 0xba,
        0xcf, 0xa5, 0x30, 0xe2, 0x63, 0x04, 0x23, 0x14, 0x61, 0xb2, 0xeb, 0x05, 0xe2,
        0xc3, 0x9b, 0xe9, 0xfc, 0xda, 0x6c, 0x19, 0x07, 0x8c, 0x6a, 0x9d, 0x1b } },
};

/* ---- OpenSSL allocations, counted to prove DATA builds no cipher (defect 5) ---- */

static unsigned long ossl_allocs;
static int ossl_counting;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    ossl_allocs++;
    return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    ossl_allocs++;
    return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* ---- fixture and helpers ---- */

struct fixture {
    struct mock_host *h;
    vmapple_device *dev;
};

static vmapple_device *new_aes(struct mock_host *h, const vmapple_aes_options *opts)
{
    vmapple_device *dev = NULL;
    int ret = vmapple_aes_create(mock_host_ops(), h, opts, &dev);

    if (ret != 0) {
        fprintf(stderr, "create: %s\n", vmapple_last_error());
    }
    assert_int_equal(ret, 0);
    assert_non_null(dev);
    return dev;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    f->dev = new_aes(f->h, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(f->h->maps_live, 0);
    assert_int_equal(f->h->wrapping_accesses, 0);
    vmapple_device_destroy(f->dev);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static uint64_t rd(vmapple_device *dev, uint32_t region, uint64_t off, uint32_t size)
{
    uint64_t v = 0xdeadbeefdeadbeefull;

    assert_int_equal(vmapple_device_read(dev, region, off, size, &v), 0);
    return v;
}

static void wr(vmapple_device *dev, uint32_t region, uint64_t off, uint32_t size, uint64_t v)
{
    assert_int_equal(vmapple_device_write(dev, region, off, size, v), 0);
}

static uint32_t reg(vmapple_device *dev, uint64_t off)
{
    return (uint32_t)rd(dev, W1, off, 4);
}

static void fifo(vmapple_device *dev, uint32_t word)
{
    wr(dev, W1, REG_FIFO, 4, word);
}

static uint32_t cmd_key(unsigned kctx, unsigned select, unsigned lenf, bool encrypt, unsigned mode)
{
    return 1u << 28 | kctx << 27 | select << 24 | lenf << 22 | (encrypt ? 1u << 20 : 0) |
           mode << 16;
}

static unsigned key_lenf(size_t len)
{
    return len == 16 ? 0 : len == 24 ? 1 : 2;
}

static void load_key(vmapple_device *dev, unsigned kctx, const uint8_t *key, size_t len,
                     bool encrypt, unsigned mode)
{
    fifo(dev, cmd_key(kctx, 0, key_lenf(len), encrypt, mode));
    for (size_t i = 0; i < len; i += 4) {
        fifo(dev, vm_ld_le32(key + i));
    }
}

static void load_iv(vmapple_device *dev, unsigned ctx, const uint8_t *iv)
{
    fifo(dev, 2u << 28 | ctx << 26);
    for (unsigned i = 0; i < 16; i += 4) {
        fifo(dev, vm_ld_le32(iv + i));
    }
}

static void data_cmd(vmapple_device *dev, unsigned kctx, unsigned ivctx, uint32_t len, uint64_t src,
                     uint64_t dst)
{
    fifo(dev, 5u << 28 | kctx << 27 | ivctx << 25 | len);
    fifo(dev, (uint32_t)((src >> 32) & 0xffff) << 16 | (uint32_t)((dst >> 32) & 0xffff));
    fifo(dev, (uint32_t)src);
    fifo(dev, (uint32_t)dst);
}

static void store_iv(vmapple_device *dev, unsigned ctx, uint64_t addr)
{
    fifo(dev, 6u << 28 | ctx << 26 | (uint32_t)((addr >> 32) & 0xff));
    fifo(dev, (uint32_t)addr);
}

static void flag_cmd(vmapple_device *dev, bool raise, uint8_t info)
{
    fifo(dev, 8u << 28 | (raise ? 1u << 27 : 0) | info);
}

static uint8_t *ram(struct mock_host *h, uint64_t gpa, uint64_t len)
{
    uint8_t *p = mock_ram(h, gpa, len);
    assert_non_null(p);
    return p;
}

static uint32_t take_invalid(vmapple_device *dev)
{
    uint32_t st = reg(dev, REG_IRQ_STATUS) & IRQ_INVALID_CMD;
    wr(dev, W1, REG_IRQ_STATUS, 4, IRQ_INVALID_CMD);
    return st;
}

static void ref_crypt(unsigned mode, bool encrypt, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, const uint8_t *in, uint8_t *out, size_t len)
{
    static const char *const names[2][3] = {
        { "AES-128-ECB", "AES-192-ECB", "AES-256-ECB" },
        { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
    };
    const EVP_CIPHER *cipher = EVP_get_cipherbyname(names[mode][key_lenf(key_len)]);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;

    assert_non_null(cipher);
    assert_non_null(c);
    assert_true(EVP_CipherInit_ex(c, cipher, NULL, key, mode == CBC ? iv : NULL, encrypt));
    EVP_CIPHER_CTX_set_padding(c, 0);
    assert_true(EVP_CipherUpdate(c, out, &outl, in, (int)len));
    assert_int_equal((size_t)outl, len);
    EVP_CIPHER_CTX_free(c);
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* A known-answer DATA (NIST ECB-AES128) in key context 1: the engine works. */
static void assert_engine_works(struct mock_host *h, vmapple_device *dev)
{
    uint64_t src = RAM_BASE + 0x3000, dst = RAM_BASE + 0x3100;

    memcpy(ram(h, src, 64), nist_pt, 64);
    memset(ram(h, dst, 64), 0, 64);
    wr(dev, W1, REG_IRQ_STATUS, 4, IRQ_INVALID_CMD);
    load_key(dev, 1, nist[0].key, 16, true, ECB);
    data_cmd(dev, 1, 0, 64, src, dst);
    assert_int_equal(reg(dev, REG_IRQ_STATUS) & IRQ_INVALID_CMD, 0);
    assert_memory_equal(ram(h, dst, 64), nist[0].ecb, 64);
}

/* ---- device description ---- */

static void test_regions_and_irq(void **state)
{
    struct fixture *f = *state;
    const vmapple_region_info *ri;
    const vmapple_irq_info *ii;

    assert_int_equal(vmapple_device_get_type(f->dev), VMAPPLE_DEVICE_AES);
    assert_string_equal(vmapple_device_get_name(f->dev), "aes");
    assert_int_equal(vmapple_device_count_regions(f->dev), 2);
    assert_int_equal(vmapple_device_get_region(f->dev, 0, &ri), 0);
    assert_string_equal(ri->name, "aes-window1");
    assert_int_equal(ri->base, 0x30220000ull);
    assert_int_equal(ri->size, 0x4000);
    assert_int_equal(ri->flags, VMAPPLE_REGION_MMIO);
    assert_int_equal(vmapple_device_get_region(f->dev, 1, &ri), 0);
    assert_string_equal(ri->name, "aes-window2");
    assert_int_equal(ri->base, 0x30230000ull);
    assert_int_equal(ri->size, 0x4000);
    assert_int_equal(vmapple_device_find_region(f->dev, "aes-window2"), 1);
    assert_int_equal(vmapple_device_count_irqs(f->dev), 1);
    assert_int_equal(vmapple_device_get_irq(f->dev, 0, &ii), 0);
    assert_int_equal(ii->spi, 0x12);
    assert_int_equal(ii->flags, VMAPPLE_IRQ_LEVEL);
    assert_int_equal(vmapple_device_poll_fd(f->dev), -ENOTSUP);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 0, 4, &(uint32_t){ 0 }), -ENOTSUP);
}

static void test_bus_dispatch(void **state)
{
    struct fixture *f = *state;
    vmapple_bus *bus;
    uint64_t v;

    assert_int_equal(vmapple_bus_create(&bus), 0);
    assert_int_equal(vmapple_bus_map_device(bus, f->dev), 0);
    assert_int_equal(vmapple_bus_read(bus, 0x3022000c, 4, &v), 0);
    assert_int_equal(v, 0x3f80);
    assert_int_equal(vmapple_bus_write(bus, 0x3022001c, 4, 0x24), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0x24);
    assert_int_equal(vmapple_bus_write(bus, 0x30220200, 4, 0x80000042), 0); /* FLAG 0x42 */
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x42);
    assert_int_equal(vmapple_bus_read(bus, 0x30230000, 4, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_bus_read(bus, 0x30224000, 4, &v), -ENXIO);
    vmapple_bus_destroy(bus);
}

/* ---- registers ---- */

static void test_reset_values(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(reg(f->dev, REG_STATUS), 0x3f80);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0);
    assert_int_equal(reg(f->dev, REG_WATERMARK), 0);
    assert_int_equal(reg(f->dev, REG_Q_STATUS), 2);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0);
    assert_int_equal(rd(f->dev, W2, 0, 4), 0);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(f->h->nr_log, 0);
}

static void test_status_always_ready_value(void **state)
{
    struct fixture *f = *state;

    /* Whatever the engine did, STATUS reads 0x3f80 (the reference's constant). */
    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    memcpy(ram(f->h, RAM_BASE, 64), nist_pt, 64);
    data_cmd(f->dev, 0, 0, 64, RAM_BASE, RAM_BASE + 0x100);
    assert_int_equal(reg(f->dev, REG_STATUS), 0x3f80);
    fifo(f->dev, 0x30000000); /* DSB: fails */
    assert_int_equal(reg(f->dev, REG_STATUS), 0x3f80);
    fifo(f->dev, 2u << 28); /* IV header, partial */
    assert_int_equal(reg(f->dev, REG_STATUS), 0x3f80);
}

static void test_irq_enable_read_write(void **state)
{
    struct fixture *f = *state;

    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0xffffffff);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0xffffffff);
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0x12345678);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0x12345678);
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0);
}

static void test_irq_status_write_one_to_clear(void **state)
{
    struct fixture *f = *state;

    fifo(f->dev, 0); /* opcode 0: INVALID_CMD */
    flag_cmd(f->dev, true, 1);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_INVALID_CMD | IRQ_FLAG);
    wr(f->dev, W1, REG_IRQ_STATUS, 4, 0); /* writing 0 clears nothing */
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_INVALID_CMD | IRQ_FLAG);
    wr(f->dev, W1, REG_IRQ_STATUS, 4, IRQ_FLAG);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_INVALID_CMD);
    wr(f->dev, W1, REG_IRQ_STATUS, 4, 0xffffffff);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
}

static void test_read_only_registers_ignore_writes(void **state)
{
    struct fixture *f = *state;
    static const uint64_t ro[] = { REG_STATUS, REG_WATERMARK, REG_Q_STATUS, REG_FLAG_INFO };

    flag_cmd(f->dev, false, 0x77);
    for (size_t i = 0; i < VM_ARRAY_SIZE(ro); i++) {
        mock_log_clear(f->h);
        wr(f->dev, W1, ro[i], 4, 0xffffffff);
        assert_true(mock_log_contains(f->h, "read-only register"));
    }
    assert_int_equal(reg(f->dev, REG_STATUS), 0x3f80);
    assert_int_equal(reg(f->dev, REG_WATERMARK), 0);
    assert_int_equal(reg(f->dev, REG_Q_STATUS), 2);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x77);
}

static void test_unknown_offsets(void **state)
{
    struct fixture *f = *state;

    mock_log_clear(f->h);
    assert_int_equal(rd(f->dev, W1, 0x000, 4), 0);
    assert_true(mock_log_contains(f->h, "unknown register 0x000"));
    assert_int_equal(rd(f->dev, W1, 0x3ffc, 4), 0);
    wr(f->dev, W1, 0x100, 4, 0xffffffff);
    assert_true(mock_log_contains(f->h, "unknown register 0x100"));
    /* The FIFO is write-only. */
    mock_log_clear(f->h);
    assert_int_equal(rd(f->dev, W1, REG_FIFO, 4), 0);
    assert_true(mock_log_contains(f->h, "write-only FIFO"));
    /* Nothing changed. */
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0);
    assert_engine_works(f->h, f->dev);
}

static void test_access_sizes_and_alignment(void **state)
{
    struct fixture *f = *state;

    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0xa5a5a5a5);
    mock_log_clear(f->h);
    /* 1- and 2-byte accesses: reads 0, writes ignored, logged. */
    assert_int_equal(rd(f->dev, W1, REG_IRQ_ENABLE, 1), 0);
    assert_int_equal(rd(f->dev, W1, REG_IRQ_ENABLE, 2), 0);
    assert_true(mock_log_contains(f->h, "1-byte read"));
    wr(f->dev, W1, REG_IRQ_ENABLE, 1, 0);
    wr(f->dev, W1, REG_IRQ_ENABLE, 2, 0);
    assert_true(mock_log_contains(f->h, "2-byte write"));
    /* Unaligned 4- and 8-byte accesses likewise. */
    assert_int_equal(rd(f->dev, W1, REG_IRQ_ENABLE + 1, 4), 0);
    wr(f->dev, W1, REG_IRQ_ENABLE + 2, 4, 0);
    assert_int_equal(rd(f->dev, W1, REG_IRQ_ENABLE, 8), 0); /* 0x1c is not 8-aligned */
    wr(f->dev, W1, REG_IRQ_ENABLE, 8, 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0xa5a5a5a5);
    /* A 1-byte FIFO write pushes nothing. */
    wr(f->dev, W1, REG_FIFO, 1, 0x80);
    wr(f->dev, W1, REG_FIFO + 1, 4, 0x80000011);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0);
    assert_engine_works(f->h, f->dev);
    /* Window 2 follows the same rules. */
    mock_log_clear(f->h);
    assert_int_equal(rd(f->dev, W2, 0, 2), 0);
    assert_true(mock_log_contains(f->h, "window 2"));
    /* The core rejects accesses that leave the window (a host error). */
    assert_int_equal(vmapple_device_read(f->dev, W1, 0x4000, 4, &(uint64_t){ 0 }), -EINVAL);
    assert_int_equal(vmapple_device_write(f->dev, W2, 0x3ffc, 8, 0), -EINVAL);
    assert_int_equal(vmapple_device_read(f->dev, 2, 0, 4, &(uint64_t){ 0 }), -EINVAL);
}

static void test_8byte_access_is_two_halves_low_first(void **state)
{
    struct fixture *f = *state;

    /* Read: low half from the lower offset. */
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0x24);
    flag_cmd(f->dev, true, 0);
    assert_int_equal(rd(f->dev, W1, REG_IRQ_STATUS, 8), 0x24ull << 32 | IRQ_FLAG);
    assert_int_equal(rd(f->dev, W1, 0x008, 8), 0x3f80ull << 32);
    assert_int_equal(rd(f->dev, W1, REG_WATERMARK, 8), 2ull << 32);
    wr(f->dev, W1, REG_IRQ_STATUS, 4, IRQ_FLAG);
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0);

    /*
     * Write order: IRQ_STATUS = INVALID_CMD, IRQ_ENABLE = 0. One 8-byte write
     * clears INVALID_CMD (low half) and then enables it (high half): the line
     * never rises. High half first would raise and drop it.
     */
    fifo(f->dev, 0);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_INVALID_CMD);
    f->h->irq_changes[0] = 0;
    wr(f->dev, W1, REG_IRQ_STATUS, 8, (uint64_t)IRQ_INVALID_CMD << 32 | IRQ_INVALID_CMD);
    assert_int_equal(f->h->irq_changes[0], 0);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), IRQ_INVALID_CMD);

    /* An 8-byte FIFO write pushes its low word; the high half hits 0x204 (unknown). */
    mock_log_clear(f->h);
    wr(f->dev, W1, REG_FIFO, 8, 0x80000000ull << 32 | 0x80000055);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x55);
    assert_true(mock_log_contains(f->h, "unknown register 0x204"));
    assert_engine_works(f->h, f->dev);
}

static void test_window2(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(rd(f->dev, W2, 0, 4), 0);
    assert_int_equal(rd(f->dev, W2, 0, 8), 0);
    assert_int_equal(rd(f->dev, W2, 0x18, 4), 0);
    mock_log_clear(f->h);
    wr(f->dev, W2, 0, 4, 0xffffffff);
    wr(f->dev, W2, 0x200, 4, 0x80000042); /* not the FIFO */
    wr(f->dev, W2, 0x18, 8, ~0ull);
    assert_true(mock_log_contains(f->h, "window 2"));
    assert_int_equal(rd(f->dev, W2, 0, 4), 0);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
}

/* ---- interrupt ---- */

static void test_irq_level_follows_status_and_enable(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;

    flag_cmd(f->dev, true, 1);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_FLAG);
    assert_int_equal(h->irq_level[0], 0); /* not enabled */
    assert_int_equal(h->irq_changes[0], 0);
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_INVALID_CMD);
    assert_int_equal(h->irq_level[0], 0); /* other bit enabled */
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_FLAG);
    assert_int_equal(h->irq_level[0], 1);
    flag_cmd(f->dev, true, 2); /* still pending: no new edge */
    assert_int_equal(h->irq_changes[0], 1);
    wr(f->dev, W1, REG_IRQ_STATUS, 4, IRQ_FLAG);
    assert_int_equal(h->irq_level[0], 0);
    /* A failed command raises it when INVALID_CMD is enabled. */
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_FLAG | IRQ_INVALID_CMD);
    fifo(f->dev, 0xf0000000);
    assert_int_equal(h->irq_level[0], 1);
    /* Disabling drops the level, re-enabling raises it again (level, not edge). */
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, 0);
    assert_int_equal(h->irq_level[0], 0);
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_INVALID_CMD);
    assert_int_equal(h->irq_level[0], 1);
    /* Reset deasserts. */
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(h->irq_level[0], 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0);
}

static void test_flag_command(void **state)
{
    struct fixture *f = *state;

    /* Without the raise bit: FLAG_INFO only. */
    flag_cmd(f->dev, false, 0xab);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0xab);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
    /* Raise bit: IRQ_STATUS.FLAG. */
    flag_cmd(f->dev, true, 0xcd);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0xcd);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_FLAG);
    /* The stop bit (26) and the unused bits change nothing else. */
    fifo(f->dev, 0x84ffff12);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x12);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), IRQ_FLAG);
    assert_engine_works(f->h, f->dev);
}

/* ---- known answers through the FIFO ---- */

static void run_nist(struct fixture *f, unsigned mode, bool encrypt)
{
    static const struct {
        bool map;
        uint64_t chunk;
    } hosts[] = { { false, 0 }, { true, 0 }, { true, 32 }, { true, 24 } };
    uint64_t src = RAM_BASE + 0x10000, dst = RAM_BASE + 0x20000;

    for (size_t hi = 0; hi < VM_ARRAY_SIZE(hosts); hi++) {
        f->h->allow_map = hosts[hi].map;
        f->h->map_chunk = hosts[hi].chunk;
        for (size_t k = 0; k < 3; k++) {
            const struct nist_vector *v = &nist[k];
            const uint8_t *ct = mode == ECB ? v->ecb : v->cbc;
            const uint8_t *in = encrypt ? nist_pt : ct, *want = encrypt ? ct : nist_pt;

            memcpy(ram(f->h, src, 64), in, 64);
            memset(ram(f->h, dst, 64), 0, 64);
            load_key(f->dev, (unsigned)(k & 1), v->key, v->key_len, encrypt, mode);
            load_iv(f->dev, 3, nist_iv);
            data_cmd(f->dev, (unsigned)(k & 1), 3, 64, src, dst);
            assert_int_equal(take_invalid(f->dev), 0);
            assert_memory_equal(ram(f->h, dst, 64), want, 64);
            assert_memory_equal(ram(f->h, src, 64), in, 64);
        }
    }
}

static void test_nist_ecb_encrypt(void **state)
{
    run_nist(*state, ECB, true);
}

static void test_nist_ecb_decrypt(void **state)
{
    run_nist(*state, ECB, false);
}

static void test_nist_cbc_encrypt(void **state)
{
    run_nist(*state, CBC, true);
}

static void test_nist_cbc_decrypt(void **state)
{
    run_nist(*state, CBC, false);
}

static void test_key_contexts_are_independent(void **state)
{
    struct fixture *f = *state;
    uint64_t src = RAM_BASE, dst = RAM_BASE + 0x1000;

    memcpy(ram(f->h, src, 64), nist_pt, 64);
    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    load_key(f->dev, 1, nist[2].key, 32, true, ECB);
    data_cmd(f->dev, 0, 0, 64, src, dst);
    assert_memory_equal(ram(f->h, dst, 64), nist[0].ecb, 64);
    data_cmd(f->dev, 1, 0, 64, src, dst);
    assert_memory_equal(ram(f->h, dst, 64), nist[2].ecb, 64);
    /* Direction and mode are global: the latest KEY sets them for both contexts. */
    load_key(f->dev, 1, nist[2].key, 32, false, CBC);
    load_iv(f->dev, 0, nist_iv);
    memcpy(ram(f->h, src, 64), nist[0].cbc, 64);
    data_cmd(f->dev, 0, 0, 64, src, dst);
    assert_memory_equal(ram(f->h, dst, 64), nist_pt, 64);
    assert_int_equal(take_invalid(f->dev), 0);
}

static void test_data_addresses_use_bits_47_32(void **state)
{
    /* RAM across a 4 GiB boundary high in the 48-bit space. */
    const uint64_t base = 0xabccffff0000ull;
    struct mock_host *h = mock_host_new(base, 0x20000);
    vmapple_device *dev = new_aes(h, NULL);
    uint64_t src = 0xabccffff1000ull, dst = 0xabcd00001000ull;
    (void)state;

    memcpy(ram(h, src, 64), nist_pt, 64);
    load_key(dev, 0, nist[1].key, 24, true, ECB);
    data_cmd(dev, 0, 0, 64, src, dst);
    assert_int_equal(take_invalid(dev), 0);
    assert_memory_equal(ram(h, dst, 64), nist[1].ecb, 64);
    /* And the other way round. */
    memcpy(ram(h, dst, 64), nist_pt, 64);
    data_cmd(dev, 0, 0, 64, dst, src);
    assert_memory_equal(ram(h, src, 64), nist[1].ecb, 64);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* ---- IV contexts and STORE_IV ---- */

static void test_iv_contexts_0_to_3(void **state)
{
    struct fixture *f = *state;
    uint8_t iv[4][16], out[64], want[64];
    uint64_t src = RAM_BASE, dst = RAM_BASE + 0x1000;

    for (unsigned c = 0; c < 4; c++) {
        fill_pattern(iv[c], 16, 100 + c);
        load_iv(f->dev, c, iv[c]);
    }
    for (unsigned c = 0; c < 4; c++) {
        store_iv(f->dev, c, RAM_BASE + 0x800 + 16 * c);
    }
    assert_int_equal(take_invalid(f->dev), 0);
    for (unsigned c = 0; c < 4; c++) {
        assert_memory_equal(ram(f->h, RAM_BASE + 0x800 + 16 * c, 16), iv[c], 16);
    }
    memcpy(ram(f->h, src, 64), nist_pt, 64);
    load_key(f->dev, 0, nist[0].key, 16, true, CBC);
    for (unsigned c = 0; c < 4; c++) {
        data_cmd(f->dev, 0, c, 64, src, dst);
        memcpy(out, ram(f->h, dst, 64), 64);
        ref_crypt(CBC, true, nist[0].key, 16, iv[c], nist_pt, want, 64);
        assert_memory_equal(out, want, 64);
    }
}

static void test_store_iv_address_bits_39_32(void **state)
{
    const uint64_t base = 0xab00000000ull;
    struct mock_host *h = mock_host_new(base, 0x10000);
    vmapple_device *dev = new_aes(h, NULL);
    (void)state;

    load_iv(dev, 2, nist_iv);
    store_iv(dev, 2, base + 0x100);
    assert_int_equal(take_invalid(dev), 0);
    assert_memory_equal(ram(h, base + 0x100, 16), nist_iv, 16);
    /* Bits above 39 do not exist in the command: 0x1ab... is 0xab... */
    fifo(dev, 6u << 28 | 2u << 26 | 0xab);
    fifo(dev, 0x200);
    assert_memory_equal(ram(h, base + 0x200, 16), nist_iv, 16);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

static void test_store_iv_dma_error(void **state)
{
    struct fixture *f = *state;

    load_iv(f->dev, 1, nist_iv);
    mock_log_clear(f->h);
    store_iv(f->dev, 1, 0x1000); /* not RAM */
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_true(mock_log_contains(f->h, "STORE_IV: DMA write of 16 bytes at 0x1000"));
    f->h->guard_writes = true;
    f->h->guard_lo = RAM_BASE + RAM_SIZE - 8;
    f->h->guard_hi = RAM_BASE + RAM_SIZE;
    store_iv(f->dev, 1, RAM_BASE + RAM_SIZE - 8); /* straddles the end of RAM */
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_int_equal(f->h->stray_writes, 0);
    f->h->guard_writes = false;
    store_iv(f->dev, 1, RAM_BASE + 0x40);
    assert_int_equal(take_invalid(f->dev), 0);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x40, 16), nist_iv, 16);
}

/* ---- built-in keys ---- */

static void check_builtin(struct mock_host *h, vmapple_device *dev, unsigned select,
                          const uint8_t *key, size_t key_len, unsigned lenf)
{
    uint8_t want[64];
    uint64_t src = RAM_BASE, dst = RAM_BASE + 0x1000;

    memcpy(ram(h, src, 64), nist_pt, 64);
    memset(ram(h, dst, 64), 0, 64);
    /* Key select != 0: no payload, and the key-length field does not matter. */
    fifo(dev, cmd_key(1, select, lenf, true, ECB));
    data_cmd(dev, 1, 0, 64, src, dst);
    assert_int_equal(take_invalid(dev), 0);
    ref_crypt(ECB, true, key, key_len, NULL, nist_pt, want, 64);
    assert_memory_equal(ram(h, dst, 64), want, 64);
}

static void test_builtin_keys_default_placeholders(void **state)
{
    struct fixture *f = *state;
    uint8_t key[32] = { 0 };

    for (unsigned n = 1; n <= 3; n++) {
        key[0] = (uint8_t)n;
        check_builtin(f->h, f->dev, n, key, 32, n - 1);
    }
    for (unsigned n = 4; n <= 7; n++) {
        mock_log_clear(f->h);
        fifo(f->dev, cmd_key(0, n, 2, true, ECB));
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        assert_true(mock_log_contains(f->h, "has no value"));
    }
    assert_engine_works(f->h, f->dev);
}

static void test_builtin_keys_host_supplied(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_device *dev;
    uint8_t k1[32], k5[16], k7[32], placeholder[32] = { 2 };
    (void)state;

    fill_pattern(k1, sizeof(k1), 1);
    fill_pattern(k5, sizeof(k5), 5);
    fill_pattern(k7, sizeof(k7), 7);
    opts.builtin_keys[0].length = 24;         /* select 1: overrides the placeholder */
    memcpy(opts.builtin_keys[0].key, k1, 32); /* bytes beyond 24 are ignored */
    opts.builtin_keys[4].length = 16;         /* select 5 */
    memcpy(opts.builtin_keys[4].key, k5, 16);
    opts.builtin_keys[6].length = 32; /* select 7 */
    memcpy(opts.builtin_keys[6].key, k7, 32);
    dev = new_aes(h, &opts);
    check_builtin(h, dev, 1, k1, 24, 0);
    check_builtin(h, dev, 2, placeholder, 32, 0); /* untouched default */
    check_builtin(h, dev, 5, k5, 16, 2);
    check_builtin(h, dev, 7, k7, 32, 1);
    fifo(dev, cmd_key(0, 4, 0, true, ECB)); /* still undefined */
    assert_int_equal(take_invalid(dev), IRQ_INVALID_CMD);
    fifo(dev, cmd_key(0, 6, 0, true, ECB));
    assert_int_equal(take_invalid(dev), IRQ_INVALID_CMD);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* ---- options and creation ---- */

static void test_create_options_validation(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, 0x1000);
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_host_ops ops = *mock_host_ops();
    vmapple_device *dev = (vmapple_device *)&opts;
    struct {
        vmapple_aes_options o;
        uint32_t future;
    } newer;
    (void)state;

    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, NULL, NULL), -EINVAL);
    assert_int_equal(vmapple_aes_create(NULL, h, NULL, &dev), -EINVAL);
    assert_null(dev);

    opts.builtin_keys[3].length = 20;
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "builtin_keys[3].length is 20"));
    assert_non_null(strstr(vmapple_last_error(), "16, 24 or 32"));
    opts.builtin_keys[3].length = 64;
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), -EINVAL);
    opts.builtin_keys[3].length = 0;

    opts.cbc_chain_iv = 2;
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "cbc_chain_iv is 2"));
    opts.cbc_chain_iv = 0;

    opts.size = 2;
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "aes options"));

    /* An older caller that knew only cbc_chain_iv. */
    opts.size = offsetof(vmapple_aes_options, builtin_keys);
    opts.cbc_chain_iv = 1;
    opts.builtin_keys[0].length = 99; /* beyond its size: not read */
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), 0);
    vmapple_device_destroy(dev);

    /* A newer caller: accepted with zero extras, refused otherwise. */
    memset(&newer, 0, sizeof(newer));
    newer.o.size = sizeof(newer);
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &newer.o, &dev), 0);
    vmapple_device_destroy(dev);
    newer.future = 1;
    assert_int_equal(vmapple_aes_create(mock_host_ops(), h, &newer.o, &dev), -EINVAL);

    /* DMA callbacks are required. */
    ops.mem_read = NULL;
    assert_int_equal(vmapple_aes_create(&ops, h, NULL, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "mem_read"));
    ops = *mock_host_ops();
    ops.mem_write = NULL;
    assert_int_equal(vmapple_aes_create(&ops, h, NULL, &dev), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "mem_write"));
    /* Optional ones are optional. */
    ops = *mock_host_ops();
    ops.mem_map = NULL;
    ops.mem_unmap = NULL;
    ops.irq_set = NULL;
    ops.log = NULL;
    assert_int_equal(vmapple_aes_create(&ops, h, NULL, &dev), 0);
    fifo(dev, 0);
    flag_cmd(dev, true, 3);
    wr(dev, W1, REG_IRQ_ENABLE, 4, IRQ_FLAG);
    assert_int_equal(reg(dev, REG_IRQ_STATUS), IRQ_FLAG | IRQ_INVALID_CMD);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* ---- CBC IV chaining option ---- */

static void test_cbc_chain_off_is_reference_behaviour(void **state)
{
    struct fixture *f = *state;
    uint64_t src = RAM_BASE, dst = RAM_BASE + 0x1000;
    uint8_t want[32];

    memcpy(ram(f->h, src, 64), nist_pt, 64);
    load_key(f->dev, 0, nist[0].key, 16, true, CBC);
    load_iv(f->dev, 1, nist_iv);
    data_cmd(f->dev, 0, 1, 32, src, dst);
    data_cmd(f->dev, 0, 1, 32, src + 32, dst + 32);
    /* Both halves started from the same IV. */
    assert_memory_equal(ram(f->h, dst, 32), nist[0].cbc, 32);
    ref_crypt(CBC, true, nist[0].key, 16, nist_iv, nist_pt + 32, want, 32);
    assert_memory_equal(ram(f->h, dst + 32, 32), want, 32);
    store_iv(f->dev, 1, RAM_BASE + 0x2000);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x2000, 16), nist_iv, 16);
}

static void run_chain_on(struct mock_host *h, vmapple_device *dev, bool encrypt, bool in_place)
{
    uint64_t src = RAM_BASE, dst = in_place ? RAM_BASE : RAM_BASE + 0x1000;
    const uint8_t *in = encrypt ? nist_pt : nist[2].cbc, *want = encrypt ? nist[2].cbc : nist_pt;

    memcpy(ram(h, src, 64), in, 64);
    load_key(dev, 1, nist[2].key, 32, encrypt, CBC);
    load_iv(dev, 2, nist_iv);
    /* Four DATA commands of one block each continue one chain. */
    for (unsigned b = 0; b < 4; b++) {
        data_cmd(dev, 1, 2, 16, src + 16 * b, dst + 16 * b);
        store_iv(dev, 2, RAM_BASE + 0x2000);
        /* The IV context now holds the last ciphertext block. */
        assert_memory_equal(ram(h, RAM_BASE + 0x2000, 16), nist[2].cbc + 16 * b, 16);
    }
    assert_int_equal(take_invalid(dev), 0);
    assert_memory_equal(ram(h, dst, 64), want, 64);
    /* Two commands of 32 bytes: the same. */
    memcpy(ram(h, src, 64), in, 64);
    load_iv(dev, 2, nist_iv);
    data_cmd(dev, 1, 2, 32, src, dst);
    data_cmd(dev, 1, 2, 32, src + 32, dst + 32);
    assert_memory_equal(ram(h, dst, 64), want, 64);
}

static void test_cbc_chain_on(void **state)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_device *dev;
    (void)state;

    opts.cbc_chain_iv = 1;
    dev = new_aes(h, &opts);
    for (int map = 0; map < 2; map++) {
        h->allow_map = map;
        run_chain_on(h, dev, true, false);
        run_chain_on(h, dev, false, false);
        run_chain_on(h, dev, true, true);
        run_chain_on(h, dev, false, true);
    }
    /* ECB leaves the IV contexts alone even with chaining on. */
    load_iv(dev, 0, nist_iv);
    load_key(dev, 0, nist[0].key, 16, true, ECB);
    data_cmd(dev, 0, 0, 64, RAM_BASE, RAM_BASE + 0x1000);
    store_iv(dev, 0, RAM_BASE + 0x2000);
    assert_memory_equal(ram(h, RAM_BASE + 0x2000, 16), nist_iv, 16);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* ---- DATA: lengths, errors, in place, overlap ---- */

static void test_data_length_rules(void **state)
{
    struct fixture *f = *state;

    memcpy(ram(f->h, RAM_BASE, 64), nist_pt, 64);
    memset(ram(f->h, RAM_BASE + 0x1000, 64), 0xee, 64);
    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    f->h->mem_reads = f->h->mem_writes = 0;
    mock_log_clear(f->h);
    data_cmd(f->dev, 0, 0, 40, RAM_BASE, RAM_BASE + 0x1000);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_true(mock_log_contains(f->h, "length 40 is not a multiple of 16"));
    /* Zero length: done, nothing touched. */
    data_cmd(f->dev, 0, 0, 0, RAM_BASE, RAM_BASE + 0x1000);
    assert_int_equal(take_invalid(f->dev), 0);
    assert_int_equal(f->h->mem_reads + f->h->mem_writes, 0);
    for (unsigned i = 0; i < 64; i++) {
        assert_int_equal(ram(f->h, RAM_BASE + 0x1000, 64)[i], 0xee);
    }
    data_cmd(f->dev, 0, 0, 16, RAM_BASE, RAM_BASE + 0x1000);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x1000, 16), nist[0].ecb, 16);
}

static void test_data_without_key(void **state)
{
    struct fixture *f = *state;

    mock_log_clear(f->h);
    data_cmd(f->dev, 1, 0, 16, RAM_BASE, RAM_BASE + 0x1000);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_true(mock_log_contains(f->h, "key context 1 holds no key"));
    load_key(f->dev, 0, nist[0].key, 16, true, ECB); /* context 0 only */
    data_cmd(f->dev, 1, 0, 16, RAM_BASE, RAM_BASE + 0x1000);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
}

static void test_data_dma_errors(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    uint64_t dst = RAM_BASE + 0x1000;
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_device *chained;

    for (int map = 0; map < 2; map++) {
        h->allow_map = map;
        load_key(f->dev, 0, nist[0].key, 16, true, ECB);
        memset(ram(h, dst, 64), 0xee, 64);
        /* Source not RAM. */
        data_cmd(f->dev, 0, 0, 64, 0x1000, dst);
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        /* Destination not RAM. */
        data_cmd(f->dev, 0, 0, 64, RAM_BASE, 0x1000);
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        /* The host fails a read or a write. */
        h->allow_map = false;
        h->fail_reads = 1;
        data_cmd(f->dev, 0, 0, 64, RAM_BASE, dst);
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        h->fail_writes = 1;
        data_cmd(f->dev, 0, 0, 64, RAM_BASE, dst);
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        for (unsigned i = 0; i < 64; i++) {
            assert_int_equal(ram(h, dst, 64)[i], 0xee);
        }
        h->allow_map = map;
        assert_engine_works(h, f->dev);
    }

    /* A failed CBC DATA leaves the IV context alone even with chaining on. */
    opts.cbc_chain_iv = 1;
    chained = new_aes(h, &opts);
    load_key(chained, 0, nist[0].key, 16, true, CBC);
    load_iv(chained, 1, nist_iv);
    h->allow_map = false;
    h->fail_writes = 1;
    data_cmd(chained, 0, 1, 64, RAM_BASE, dst);
    assert_int_equal(take_invalid(chained), IRQ_INVALID_CMD);
    store_iv(chained, 1, RAM_BASE + 0x2000);
    assert_memory_equal(ram(h, RAM_BASE + 0x2000, 16), nist_iv, 16);
    vmapple_device_destroy(chained);
}

/*
 * A transfer that fails part-way: the destination holds the correct output
 * for the blocks before the failure and nothing else was written.
 */
static void test_data_mid_transfer_failure(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    const uint32_t len = 3 * PIECE;
    uint64_t src = RAM_BASE + RAM_SIZE - 2 * PIECE; /* the last third is beyond RAM */
    uint64_t dst = RAM_BASE;
    uint8_t *want = malloc(len);

    for (int map = 0; map < 2; map++) {
        h->allow_map = map;
        fill_pattern(ram(h, src, 2 * PIECE), 2 * PIECE, 9);
        memset(ram(h, dst, len), 0xee, len);
        load_key(f->dev, 0, nist[0].key, 16, true, CBC);
        load_iv(f->dev, 0, nist_iv);
        h->guard_writes = true;
        h->guard_lo = dst;
        h->guard_hi = dst + len;
        data_cmd(f->dev, 0, 0, len, src, dst);
        h->guard_writes = false;
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        assert_int_equal(h->stray_writes, 0);
        ref_crypt(CBC, true, nist[0].key, 16, nist_iv, ram(h, src, 2 * PIECE), want, 2 * PIECE);
        assert_memory_equal(ram(h, dst, 2 * PIECE), want, 2 * PIECE);
        for (uint32_t i = 2 * PIECE; i < len; i++) {
            assert_int_equal(ram(h, dst, len)[i], 0xee);
        }
    }
    free(want);
}

struct overlap_host {
    bool map;
    uint64_t chunk;
};

static const struct overlap_host overlap_hosts[] = {
    { false, 0 },
    { true, 0 },
    { true, 4096 },
    { true, 100 },
};

/*
 * DATA of `len` bytes from `src` to `dst` (any overlap) must equal a
 * whole-buffer operation on the original source, leave every other byte
 * alone, and (chaining on) leave the last ciphertext block in the IV context.
 */
static void check_overlap(struct mock_host *h, vmapple_device *dev, unsigned mode, bool encrypt,
                          uint64_t src, uint64_t dst, uint32_t len, uint32_t seed)
{
    const uint64_t area = RAM_BASE, area_len = 3 * (uint64_t)len + 0x4000;
    uint8_t *before = malloc(area_len), *want = malloc(area_len), *out = malloc(len);
    uint8_t iv[16], key[32], last[16];

    fill_pattern(key, 32, seed);
    fill_pattern(iv, 16, seed + 1);
    fill_pattern(ram(h, area, area_len), area_len, seed + 2);
    memcpy(before, ram(h, area, area_len), area_len);
    ref_crypt(mode, encrypt, key, 32, iv, before + (src - area), out, len);
    memcpy(want, before, area_len);
    memcpy(want + (dst - area), out, len);
    memcpy(last, encrypt ? out + len - 16 : before + (src - area) + len - 16, 16);

    load_key(dev, 0, key, 32, encrypt, mode);
    load_iv(dev, 3, iv);
    h->guard_writes = true;
    h->guard_lo = dst;
    h->guard_hi = dst + len;
    data_cmd(dev, 0, 3, len, src, dst);
    h->guard_writes = false;
    assert_int_equal(h->stray_writes, 0);
    assert_int_equal(take_invalid(dev), 0);
    if (memcmp(ram(h, area, area_len), want, area_len) != 0) {
        fail_msg(
            "mode %u encrypt %d src +0x%llx dst +0x%llx len %u map %d chunk %llu: wrong output",
            mode, encrypt, (unsigned long long)(src - area), (unsigned long long)(dst - area), len,
            h->allow_map, (unsigned long long)h->map_chunk);
    }
    if (mode == CBC) {
        store_iv(dev, 3, area + area_len);
        assert_memory_equal(ram(h, area + area_len, 16), last, 16);
    }
    free(before);
    free(want);
    free(out);
}

static void run_overlap_matrix(bool forward_dst, const int64_t *distances, size_t nd, uint32_t len)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_device *dev;
    uint32_t seed = 1;

    opts.cbc_chain_iv = 1;
    dev = new_aes(h, &opts);
    for (size_t hi = 0; hi < VM_ARRAY_SIZE(overlap_hosts); hi++) {
        h->allow_map = overlap_hosts[hi].map;
        h->map_chunk = overlap_hosts[hi].chunk;
        for (unsigned mode = 0; mode < 2; mode++) {
            for (int enc = 0; enc < 2; enc++) {
                for (size_t d = 0; d < nd; d++) {
                    uint64_t lo = RAM_BASE + 0x1000, hi_addr = lo + (uint64_t)distances[d];
                    if (forward_dst) {
                        check_overlap(h, dev, mode, enc, lo, hi_addr, len, seed++);
                    } else {
                        check_overlap(h, dev, mode, enc, hi_addr, lo, len, seed++);
                    }
                }
            }
        }
    }
    assert_int_equal(h->maps_live, 0);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

static void test_data_in_place(void **state)
{
    static const int64_t zero[] = { 0 };
    (void)state;
    run_overlap_matrix(true, zero, 1, 64);
    run_overlap_matrix(true, zero, 1, 3 * PIECE + 48);
}

/* Destination above the source: processed back to front. */
static void test_data_overlap_destination_above(void **state)
{
    const uint32_t len = 3 * PIECE + 48;
    const int64_t d[] = { 4, 16, 100, 4096, PIECE - 16, PIECE, PIECE + 32, len - 16, len - 1 };
    (void)state;
    run_overlap_matrix(true, d, VM_ARRAY_SIZE(d), len);
    run_overlap_matrix(true, (const int64_t[]){ 16, 32 }, 2, 48);
}

/* Destination below the source: front to back through the bounce buffer. */
static void test_data_overlap_destination_below(void **state)
{
    const uint32_t len = 3 * PIECE + 48;
    const int64_t d[] = { 4, 16, 100, 4096, PIECE - 16, PIECE, PIECE + 32, len - 16, len - 1 };
    (void)state;
    run_overlap_matrix(false, d, VM_ARRAY_SIZE(d), len);
    run_overlap_matrix(false, (const int64_t[]){ 16, 32 }, 2, 48);
}

static void test_data_disjoint_buffers(void **state)
{
    const uint32_t len = 2 * PIECE + 32;
    const int64_t d[] = { len, len + 4, 2 * len };
    (void)state;
    run_overlap_matrix(true, d, VM_ARRAY_SIZE(d), len);
    run_overlap_matrix(false, d, VM_ARRAY_SIZE(d), len);
}

static void test_data_zero_copy_with_mem_map(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    const uint32_t len = 256 * 1024;

    fill_pattern(ram(h, RAM_BASE, len), len, 3);
    load_key(f->dev, 0, nist[2].key, 32, true, CBC);
    h->allow_map = true;
    h->mem_reads = h->mem_writes = h->maps_total = 0;
    data_cmd(f->dev, 0, 0, len, RAM_BASE, RAM_BASE + len);
    assert_int_equal(take_invalid(f->dev), 0);
    /* One mapping each way, no copies. */
    assert_int_equal(h->maps_total, 2);
    assert_int_equal(h->mem_reads + h->mem_writes, 0);
    /* In place: one writable mapping. */
    h->maps_total = 0;
    data_cmd(f->dev, 0, 0, len, RAM_BASE, RAM_BASE);
    assert_int_equal(h->maps_total, 1);
    assert_int_equal(h->mem_reads + h->mem_writes, 0);
    assert_int_equal(h->maps_live, 0);
}

/* ---- reset ---- */

static void test_reset_clears_everything(void **state)
{
    struct fixture *f = *state;
    uint8_t zero[16] = { 0 };

    load_key(f->dev, 0, nist[0].key, 16, true, CBC);
    load_key(f->dev, 1, nist[1].key, 24, true, CBC);
    for (unsigned c = 0; c < 4; c++) {
        load_iv(f->dev, c, nist_iv);
    }
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_FLAG);
    flag_cmd(f->dev, true, 0x99);
    assert_int_equal(f->h->irq_level[0], 1);
    fifo(f->dev, 2u << 28); /* a partial IV command */
    fifo(f->dev, 0x11111111);
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_ENABLE), 0);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0);
    /* The partial command is gone: this FLAG runs as a command. */
    flag_cmd(f->dev, false, 0x42);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x42);
    /* Keys are gone. */
    data_cmd(f->dev, 0, 0, 16, RAM_BASE, RAM_BASE + 0x100);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    data_cmd(f->dev, 1, 0, 16, RAM_BASE, RAM_BASE + 0x100);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    /* IVs are zero. */
    for (unsigned c = 0; c < 4; c++) {
        memset(ram(f->h, RAM_BASE + 0x800, 16), 0xee, 16);
        store_iv(f->dev, c, RAM_BASE + 0x800);
        assert_memory_equal(ram(f->h, RAM_BASE + 0x800, 16), zero, 16);
    }
    assert_engine_works(f->h, f->dev);
}

/* ---- save and load ---- */

static uint8_t *save_blob(vmapple_device *dev, size_t *len)
{
    uint8_t *blob;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, len), -ENOSPC);
    blob = malloc(*len);
    assert_int_equal(vmapple_device_save(dev, blob, *len, len), 0);
    return blob;
}

/* Change one byte of the device payload and fix the checksum. */
static void tamper(uint8_t *blob, size_t len, size_t payload_off, uint8_t value)
{
    blob[32 + payload_off] = value;
    vm_st_le32(blob + 24, vm_crc32(blob + 32, len - 32));
}

/* Payload offsets (after the core's 8-byte line levels). */
#define P_CHAIN  8
#define P_DIGEST 12
#define P_COUNT  44
#define P_OVFL   45
#define P_FIFO   46

static void test_save_load_mid_command(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    vmapple_device *copy;
    uint8_t *blob;
    size_t len;

    memcpy(ram(h, RAM_BASE, 64), nist_pt, 64);
    /* A 256-bit key half received. */
    fifo(f->dev, cmd_key(1, 0, 2, false, CBC));
    for (unsigned i = 0; i < 4; i++) {
        fifo(f->dev, vm_ld_le32(nist[2].key + 4 * i));
    }
    blob = save_blob(f->dev, &len);
    copy = new_aes(h, NULL);
    assert_int_equal(vmapple_device_load(copy, blob, len), 0);
    free(blob);
    /* The copy continues the command where the original stopped. */
    for (unsigned i = 4; i < 8; i++) {
        fifo(copy, vm_ld_le32(nist[2].key + 4 * i));
    }
    load_iv(copy, 1, nist_iv);
    memcpy(ram(h, RAM_BASE, 64), nist[2].cbc, 64);
    /* And a DATA command cut after two of its words. */
    fifo(copy, 5u << 28 | 1u << 27 | 1u << 25 | 64);
    fifo(copy, 0);
    blob = save_blob(copy, &len);
    vmapple_device_destroy(copy);
    copy = new_aes(h, NULL);
    assert_int_equal(vmapple_device_load(copy, blob, len), 0);
    free(blob);
    fifo(copy, (uint32_t)RAM_BASE);
    fifo(copy, (uint32_t)RAM_BASE + 0x1000);
    assert_int_equal(take_invalid(copy), 0);
    assert_memory_equal(ram(h, RAM_BASE + 0x1000, 64), nist_pt, 64);
    vmapple_device_destroy(copy);
}

static void test_save_load_complete_state(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    struct mock_host *h2 = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *copy;
    uint8_t ivs[4][16], *blob;
    size_t len;

    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    load_key(f->dev, 1, nist[1].key, 24, false, CBC); /* global: decrypt, CBC */
    for (unsigned c = 0; c < 4; c++) {
        fill_pattern(ivs[c], 16, 40 + c);
        load_iv(f->dev, c, ivs[c]);
    }
    wr(f->dev, W1, REG_IRQ_ENABLE, 4, IRQ_FLAG | 0xf000);
    flag_cmd(f->dev, true, 0x5e);
    fifo(f->dev, 0); /* INVALID_CMD too */
    assert_int_equal(h->irq_level[0], 1);
    blob = save_blob(f->dev, &len);

    copy = new_aes(h2, NULL);
    assert_int_equal(vmapple_device_load(copy, blob, len), 0);
    free(blob);
    assert_int_equal(h2->irq_level[0], 1); /* reported on load */
    assert_int_equal(reg(copy, REG_IRQ_STATUS), IRQ_FLAG | IRQ_INVALID_CMD);
    assert_int_equal(reg(copy, REG_IRQ_ENABLE), IRQ_FLAG | 0xf000);
    assert_int_equal(reg(copy, REG_FLAG_INFO), 0x5e);
    for (unsigned c = 0; c < 4; c++) {
        store_iv(copy, c, RAM_BASE + 0x800 + 16 * c);
        assert_memory_equal(ram(h2, RAM_BASE + 0x800 + 16 * c, 16), ivs[c], 16);
    }
    /* Keys, direction and mode: key 0 now decrypts CBC, as in the original. */
    memcpy(ram(h2, RAM_BASE, 64), nist[0].cbc, 64);
    load_iv(copy, 0, nist_iv);
    data_cmd(copy, 0, 0, 64, RAM_BASE, RAM_BASE + 0x1000);
    assert_memory_equal(ram(h2, RAM_BASE + 0x1000, 64), nist_pt, 64);
    memcpy(ram(h2, RAM_BASE, 64), nist[1].cbc, 64);
    data_cmd(copy, 1, 0, 64, RAM_BASE, RAM_BASE + 0x1000);
    assert_memory_equal(ram(h2, RAM_BASE + 0x1000, 64), nist_pt, 64);
    wr(copy, W1, REG_IRQ_STATUS, 4, ~0u);
    assert_int_equal(h2->irq_level[0], 0);
    vmapple_device_destroy(copy);
    mock_host_free(h2);
}

static void test_save_load_fifo_overflow_state(void **state)
{
    struct fixture *f = *state;
    vmapple_device *copy;
    uint8_t *blob;
    size_t len;

    /* A 512-bit KEY: 1 + 16 words; stop after 12 (3 past the FIFO). */
    fifo(f->dev, cmd_key(0, 0, 3, true, ECB));
    for (unsigned i = 0; i < 11; i++) {
        fifo(f->dev, 0x80000000 | i);
    }
    blob = save_blob(f->dev, &len);
    copy = new_aes(f->h, NULL);
    assert_int_equal(vmapple_device_load(copy, blob, len), 0);
    free(blob);
    assert_int_equal(take_invalid(copy), IRQ_INVALID_CMD);
    /* 5 more words end the command; the next word is a command again. */
    for (unsigned i = 0; i < 5; i++) {
        fifo(copy, 0x80000077);
    }
    assert_int_equal(reg(copy, REG_FLAG_INFO), 0);
    flag_cmd(copy, false, 0x78);
    assert_int_equal(reg(copy, REG_FLAG_INFO), 0x78);
    assert_int_equal(take_invalid(copy), 0);
    vmapple_device_destroy(copy);
}

static void test_load_refuses_bad_blobs(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h = f->h;
    vmapple_device *other, *copy;
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    uint8_t *blob, *bad, *tblob;
    size_t len, tlen;

    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    fifo(f->dev, 2u << 28 | 1u << 26); /* IV header: a pending command */
    fifo(f->dev, 0x01020304);
    blob = save_blob(f->dev, &len);
    bad = malloc(len + 1);
    copy = new_aes(h, NULL);

    /* Truncated, padded, corrupt, foreign. */
    assert_int_equal(vmapple_device_load(copy, blob, len - 1), -EBADMSG);
    memcpy(bad, blob, len);
    bad[len] = 0;
    assert_int_equal(vmapple_device_load(copy, bad, len + 1), -EBADMSG);
    memcpy(bad, blob, len);
    bad[40] ^= 1; /* checksum now wrong */
    assert_int_equal(vmapple_device_load(copy, bad, len), -EBADMSG);
    assert_int_equal(vmapple_device_load(copy, "garbage", 7), -EBADMSG);
    assert_int_equal(testdev_create(mock_host_ops(), h, NULL, &other), 0);
    tblob = save_blob(other, &tlen);
    assert_int_equal(vmapple_device_load(copy, tblob, tlen), -ENODEV);
    free(tblob);
    vmapple_device_destroy(other);
    /* A device payload one byte short or long, with a valid header. */
    memcpy(bad, blob, len);
    vm_st_le32(bad + 20, (uint32_t)(len - 33));
    vm_st_le32(bad + 24, vm_crc32(bad + 32, len - 33));
    assert_int_equal(vmapple_device_load(copy, bad, len - 1), -EBADMSG);
    memcpy(bad, blob, len);
    bad[len] = 0;
    vm_st_le32(bad + 20, (uint32_t)(len - 31));
    vm_st_le32(bad + 24, vm_crc32(bad + 32, len - 31));
    assert_int_equal(vmapple_device_load(copy, bad, len + 1), -EBADMSG);

    /* Impossible states. */
    struct {
        size_t off;
        uint8_t value;
        int err;
    } cases[] = {
        { P_COUNT, 10, -EBADMSG },      /* FIFO count above 9 */
        { P_COUNT, 0, -EBADMSG },       /* count 0 but a word follows: length mismatch */
        { P_OVFL, 1, -EBADMSG },        /* overflow without a full FIFO */
        { P_FIFO + 3, 0x00, -EBADMSG }, /* header opcode 0: would have been dropped */
        { P_FIFO + 3, 0x80, -EBADMSG }, /* FLAG header: would have run */
        { P_FIFO + 3, 0x50, 0 },        /* DATA header + 1 word: a possible pending command */
        { P_CHAIN, 1, -EINVAL },        /* option mismatch */
        { P_DIGEST, 0x55, -EINVAL },    /* built-in keys mismatch */
    };
    for (size_t i = 0; i < VM_ARRAY_SIZE(cases); i++) {
        memcpy(bad, blob, len);
        tamper(bad, len, cases[i].off, cases[i].value);
        if (cases[i].err == 0) {
            assert_int_equal(vmapple_device_load(copy, bad, len), 0);
            continue;
        }
        assert_int_equal(vmapple_device_load(copy, bad, len), cases[i].err);
    }
    {
        /* Offsets after the 2 FIFO words. */
        size_t keys = P_FIFO + 8, ivs = keys + 2 * 33, dir = ivs + 64, mode = dir + 1;
        size_t irq_status = mode + 1, flag_info = irq_status + 8;
        struct {
            size_t off;
            uint8_t value;
        } more[] = {
            { keys, 3 },          /* key length 3 bytes */
            { keys, 17 },         /* key length 17 */
            { keys, 64 },         /* key length 64 */
            { keys + 1 + 20, 1 }, /* byte beyond a 16-byte key */
            { keys + 33, 16 },    /* context 1: length 16 with zero bytes is fine... */
            { dir, 2 },           /* bool 2 */
            { mode, 2 },          /* block mode 2 */
            { irq_status, 0x01 }, /* IRQ_STATUS bit 0 */
            { irq_status + 1, 0x01 },
            { flag_info + 1, 1 }, /* FLAG_INFO 0x100 */
            { 0, 1 },             /* line asserted while IRQ_STATUS & IRQ_ENABLE == 0 */
        };
        for (size_t i = 0; i < VM_ARRAY_SIZE(more); i++) {
            memcpy(bad, blob, len);
            tamper(bad, len, more[i].off, more[i].value);
            assert_int_equal(vmapple_device_load(copy, bad, len), i == 4 ? 0 : -EBADMSG);
        }
    }
    /* After all refusals, the good blob still loads and the device works. */
    assert_int_equal(vmapple_device_load(copy, blob, len), 0);
    for (unsigned i = 0; i < 3; i++) {
        fifo(copy, 0x05060708);
    }
    store_iv(copy, 1, RAM_BASE + 0x800);
    assert_int_equal(vm_ld_le32(ram(h, RAM_BASE + 0x800, 4)), 0x01020304);
    assert_engine_works(h, copy);
    vmapple_device_destroy(copy);

    /* A blob from a device with other options. */
    opts.cbc_chain_iv = 1;
    other = new_aes(h, &opts);
    assert_int_equal(vmapple_device_load(other, blob, len), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "cbc_chain_iv"));
    vmapple_device_destroy(other);
    opts.cbc_chain_iv = 0;
    opts.builtin_keys[6].length = 16;
    other = new_aes(h, &opts);
    assert_int_equal(vmapple_device_load(other, blob, len), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "builtin_keys"));
    vmapple_device_destroy(other);
    free(bad);
    free(blob);
}

static void test_failed_load_changes_nothing(void **state)
{
    struct fixture *f = *state;
    uint8_t *blob;
    size_t len;

    blob = save_blob(f->dev, &len);
    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    flag_cmd(f->dev, false, 0x31);
    tamper(blob, len, P_COUNT, 10);
    assert_int_equal(vmapple_device_load(f->dev, blob, len), -EBADMSG);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x31);
    memcpy(ram(f->h, RAM_BASE, 16), nist_pt, 16);
    data_cmd(f->dev, 0, 0, 16, RAM_BASE, RAM_BASE + 0x100);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x100, 16), nist[0].ecb, 16);
    free(blob);
}

/* ---- regression tests, one per defect of the reference (spec/aes.md) ---- */

static void test_defect1_iv_context_bits_27_26(void **state)
{
    struct fixture *f = *state;
    uint8_t iv[4][16];

    for (unsigned c = 0; c < 4; c++) {
        memset(iv[c], 0x10 * (c + 1), 16);
        /* Context c in bits 27:26 and nothing else. */
        fifo(f->dev, 2u << 28 | c << 26);
        for (unsigned i = 0; i < 4; i++) {
            fifo(f->dev, vm_ld_le32(iv[c]));
        }
    }
    for (unsigned c = 0; c < 4; c++) {
        fifo(f->dev, 6u << 28 | c << 26);
        fifo(f->dev, (uint32_t)RAM_BASE + 0x100 * c);
    }
    assert_int_equal(take_invalid(f->dev), 0);
    for (unsigned c = 0; c < 4; c++) {
        assert_memory_equal(ram(f->h, RAM_BASE + 0x100 * c, 16), iv[c], 16);
    }
}

static void test_defect2_data_uses_its_iv_context(void **state)
{
    struct fixture *f = *state;
    uint8_t other[16];

    memset(other, 0x5a, sizeof(other));
    memcpy(ram(f->h, RAM_BASE, 64), nist_pt, 64);
    load_key(f->dev, 0, nist[0].key, 16, true, CBC);
    load_iv(f->dev, 0, other);
    load_iv(f->dev, 2, nist_iv);
    data_cmd(f->dev, 0, 2, 64, RAM_BASE, RAM_BASE + 0x1000);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x1000, 64), nist[0].cbc, 64);
}

static void test_defect3_failed_commands_are_dropped(void **state)
{
    struct fixture *f = *state;
    uint32_t key_words[8];

    for (unsigned i = 0; i < 8; i++) {
        key_words[i] = vm_ld_le32(nist[2].key + 4 * i);
    }
    /* Unknown opcodes and the unimplemented DSB, SKG, WRITE_REG. */
    for (uint32_t op = 0; op < 16; op++) {
        if (op == 1 || op == 2 || op == 5 || op == 6 || op == 8) {
            continue;
        }
        fifo(f->dev, op << 28 | 0x123);
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        flag_cmd(f->dev, false, (uint8_t)op); /* the next word is a command */
        assert_int_equal(reg(f->dev, REG_FLAG_INFO), op);
    }
    /* KEY with block mode 2 or 3: its payload is swallowed, then it is dropped. */
    for (unsigned mode = 2; mode < 4; mode++) {
        fifo(f->dev, cmd_key(0, 0, 2, true, mode));
        for (unsigned i = 0; i < 8; i++) {
            fifo(f->dev, key_words[i]);
        }
        assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
        assert_engine_works(f->h, f->dev);
    }
    /* KEY with key length 3 and a built-in key. */
    fifo(f->dev, cmd_key(0, 1, 3, true, ECB));
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
    /* A built-in key without a value. */
    fifo(f->dev, cmd_key(0, 6, 2, true, ECB));
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
    /* DATA length not a multiple of 16. */
    data_cmd(f->dev, 1, 0, 17, RAM_BASE, RAM_BASE + 0x100);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
    /* DMA errors: DATA and STORE_IV. */
    data_cmd(f->dev, 1, 0, 64, 0xdead0000ull, RAM_BASE);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
    store_iv(f->dev, 0, 0xff00000000ull);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_engine_works(f->h, f->dev);
    /* A failed KEY changes neither the key, the direction nor the mode. */
    load_key(f->dev, 1, nist[0].key, 16, true, ECB);
    fifo(f->dev, cmd_key(1, 0, 0, false, 3));
    for (unsigned i = 0; i < 4; i++) {
        fifo(f->dev, 0);
    }
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    memcpy(ram(f->h, RAM_BASE, 64), nist_pt, 64);
    data_cmd(f->dev, 1, 0, 64, RAM_BASE, RAM_BASE + 0x100);
    assert_memory_equal(ram(f->h, RAM_BASE + 0x100, 64), nist[0].ecb, 64);
}

static void test_defect3_reset_clears_fifo_keys_ivs(void **state)
{
    struct fixture *f = *state;
    uint8_t zero[16] = { 0 };

    /* A failed command and a partial one before reset. */
    fifo(f->dev, 0x30000000);
    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    load_iv(f->dev, 3, nist_iv);
    fifo(f->dev, 5u << 28 | 64); /* DATA header only */
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    store_iv(f->dev, 3, RAM_BASE + 0x500); /* runs: the FIFO is empty */
    assert_memory_equal(ram(f->h, RAM_BASE + 0x500, 16), zero, 16);
    data_cmd(f->dev, 0, 0, 16, RAM_BASE, RAM_BASE + 0x100);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD); /* no key */
    assert_engine_works(f->h, f->dev);
}

static void test_defect4_full_fifo_never_wedges(void **state)
{
    struct fixture *f = *state;

    /* KEY with a 512-bit key: 17 words, the FIFO holds 9. */
    fifo(f->dev, cmd_key(0, 0, 3, true, ECB));
    for (unsigned i = 0; i < 8; i++) {
        fifo(f->dev, 0x80000000 | i); /* FLAG-looking payload words */
    }
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0); /* FIFO full, not yet over */
    mock_log_clear(f->h);
    fifo(f->dev, 0x80000008); /* the first word that finds the FIFO full */
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    assert_true(mock_log_contains(f->h, "FIFO full"));
    for (unsigned i = 9; i < 16; i++) {
        fifo(f->dev, 0x80000000 | i);
    }
    /* All 17 words were taken as the KEY command: no FLAG ran. */
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0);
    assert_int_equal(reg(f->dev, REG_IRQ_STATUS), 0); /* flagged once */
    flag_cmd(f->dev, false, 0x44);
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x44);
    assert_engine_works(f->h, f->dev);
    /* A long stream of words of every kind never stops the engine. */
    for (uint32_t i = 0; i < 4096; i++) {
        fifo(f->dev, i * 0x9e3779b9u);
    }
    for (unsigned i = 0; i < 17; i++) {
        flag_cmd(f->dev, false, 0x45);
    }
    assert_int_equal(reg(f->dev, REG_FLAG_INFO), 0x45);
    assert_engine_works(f->h, f->dev);
}

/* Host ops that record the largest single mem_read/mem_write. */
static uint64_t largest_copy;

static int big_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    largest_copy = VM_MAX(largest_copy, len);
    return mock_host_ops()->mem_read(opaque, gpa, buf, len);
}

static int big_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    largest_copy = VM_MAX(largest_copy, len);
    return mock_host_ops()->mem_write(opaque, gpa, buf, len);
}

static void test_defect5_bounded_buffers_and_cached_keys(void **state)
{
    const uint32_t len = 0xfffff0; /* the longest DATA */
    struct mock_host *h = mock_host_new(RAM_BASE, 2ull * len + 0x10000);
    vmapple_host_ops ops = *mock_host_ops();
    vmapple_device *dev;
    uint8_t *want = malloc(len);
    unsigned long before;
    (void)state;

    ops.mem_read = big_read;
    ops.mem_write = big_write;
    assert_int_equal(vmapple_aes_create(&ops, h, NULL, &dev), 0);
    fill_pattern(ram(h, RAM_BASE, len), len, 77);
    load_key(dev, 0, nist[2].key, 32, true, CBC);
    load_iv(dev, 0, nist_iv);
    /* Without mem_map: copies of at most one bounce buffer each. */
    largest_copy = 0;
    data_cmd(dev, 0, 0, len, RAM_BASE, RAM_BASE + len);
    assert_int_equal(take_invalid(dev), 0);
    assert_true(largest_copy > 0 && largest_copy <= PIECE);
    ref_crypt(CBC, true, nist[2].key, 32, nist_iv, ram(h, RAM_BASE, len), want, len);
    assert_memory_equal(ram(h, RAM_BASE + len, len), want, len);
    /* Overlapping (backward) CBC encryption: bounded too. */
    largest_copy = 0;
    data_cmd(dev, 0, 0, len, RAM_BASE, RAM_BASE + 16);
    assert_true(largest_copy <= PIECE);
    assert_memory_equal(ram(h, RAM_BASE + 16, len), want, len);

    /* The expanded key is kept: DATA commands allocate nothing in OpenSSL. */
    assert_true(ossl_counting);
    h->allow_map = true;
    data_cmd(dev, 0, 0, 4096, RAM_BASE, RAM_BASE + len); /* warm: both contexts built */
    before = ossl_allocs;
    for (unsigned i = 0; i < 32; i++) {
        load_key(dev, 0, nist[2].key, 32, true, CBC); /* the same key again */
        data_cmd(dev, 0, i & 3, 4096, RAM_BASE, RAM_BASE + len);
    }
    assert_int_equal(ossl_allocs - before, 0);
    assert_int_equal(take_invalid(dev), 0);
    vmapple_device_destroy(dev);
    mock_host_free(h);
    free(want);
}

static void test_defect6_write_error_names_destination(void **state)
{
    struct fixture *f = *state;
    char needle[64];

    load_key(f->dev, 0, nist[0].key, 16, true, ECB);
    f->h->fail_writes = 1;
    mock_log_clear(f->h);
    data_cmd(f->dev, 0, 0, 64, RAM_BASE + 0x1230, RAM_BASE + 0x4560);
    assert_int_equal(take_invalid(f->dev), IRQ_INVALID_CMD);
    snprintf(needle, sizeof(needle), "DMA write of 64 bytes at 0x%llx",
             (unsigned long long)(RAM_BASE + 0x4560));
    assert_true(mock_log_contains(f->h, needle));
    snprintf(needle, sizeof(needle), "DMA write of 64 bytes at 0x%llx",
             (unsigned long long)(RAM_BASE + 0x1230));
    assert_false(mock_log_contains(f->h, needle));
    /* And a read error names the source. */
    f->h->fail_reads = 1;
    data_cmd(f->dev, 0, 0, 64, RAM_BASE + 0x1230, RAM_BASE + 0x4560);
    snprintf(needle, sizeof(needle), "DMA read of 64 bytes at 0x%llx",
             (unsigned long long)(RAM_BASE + 0x1230));
    assert_true(mock_log_contains(f->h, needle));
}

/* Two seconds pass between log lines: tests see every guest error. */
static uint64_t fake_ns;
static uint64_t slow_clock(void)
{
    return fake_ns += 2000000000ull;
}

int main(void)
{
    /* Before OpenSSL allocates anything. */
    ossl_counting = CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free);
    vm_clock_hook = slow_clock;

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_regions_and_irq),
        T(test_bus_dispatch),
        T(test_reset_values),
        T(test_status_always_ready_value),
        T(test_irq_enable_read_write),
        T(test_irq_status_write_one_to_clear),
        T(test_read_only_registers_ignore_writes),
        T(test_unknown_offsets),
        T(test_access_sizes_and_alignment),
        T(test_8byte_access_is_two_halves_low_first),
        T(test_window2),
        T(test_irq_level_follows_status_and_enable),
        T(test_flag_command),
        T(test_nist_ecb_encrypt),
        T(test_nist_ecb_decrypt),
        T(test_nist_cbc_encrypt),
        T(test_nist_cbc_decrypt),
        T(test_key_contexts_are_independent),
        T(test_data_addresses_use_bits_47_32),
        T(test_iv_contexts_0_to_3),
        T(test_store_iv_address_bits_39_32),
        T(test_store_iv_dma_error),
        T(test_builtin_keys_default_placeholders),
        T(test_builtin_keys_host_supplied),
        T(test_create_options_validation),
        T(test_cbc_chain_off_is_reference_behaviour),
        T(test_cbc_chain_on),
        T(test_data_length_rules),
        T(test_data_without_key),
        T(test_data_dma_errors),
        T(test_data_mid_transfer_failure),
        T(test_data_in_place),
        T(test_data_overlap_destination_above),
        T(test_data_overlap_destination_below),
        T(test_data_disjoint_buffers),
        T(test_data_zero_copy_with_mem_map),
        T(test_reset_clears_everything),
        T(test_save_load_mid_command),
        T(test_save_load_complete_state),
        T(test_save_load_fifo_overflow_state),
        T(test_load_refuses_bad_blobs),
        T(test_failed_load_changes_nothing),
        T(test_defect1_iv_context_bits_27_26),
        T(test_defect2_data_uses_its_iv_context),
        T(test_defect3_failed_commands_are_dropped),
        T(test_defect3_reset_clears_fifo_keys_ivs),
        T(test_defect4_full_fifo_never_wedges),
        T(test_defect5_bounded_buffers_and_cached_keys),
        T(test_defect6_write_error_names_destination),
    };
#undef T
    return cmocka_run_group_tests_name("aes", tests, NULL, NULL);
}
