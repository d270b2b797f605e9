/* SPDX-License-Identifier: MIT */
/*
 * Fork-isolated robustness tests of the AES engine: random and hostile
 * register and FIFO sequences, hostile DATA commands (lengths up to 16 MiB,
 * overlapping and out-of-RAM buffers, failing host callbacks), mutated state
 * blobs and random options. Each case runs in its own process (CK_FORK).
 * Afterwards the device must still work: a guest resynchronises the command
 * stream with FLAG commands and a known-answer DATA gives the NIST result.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core.h"
#include "state.h"
#include "mockhost.h"
#include "rng.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x100000ull

#define REG_IRQ_STATUS 0x018
#define REG_IRQ_ENABLE 0x01c
#define REG_FLAG_INFO  0x030
#define REG_FIFO       0x200

static const uint8_t key128[16] = { 0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                    0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c };
static const uint8_t pt[32] = { 0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e,
                                0x11, 0x73, 0x93, 0x17, 0x2a, 0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03,
                                0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51 };
static const uint8_t ecb128[32] = { 0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60,
                                    0xa8, 0x9e, 0xca, 0xf3, 0x24, 0x66, 0xef, 0x97,
                                    0xf5, 0xd3, 0xd5, 0x85, 0x03, 0xb9, 0x69, 0x9d,
                                    0xe7, 0x85, 0x89, 0x5a, 0x96, 0xfd, 0xba, 0xaf };
static const uint8_t iv0[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const uint8_t cbc128[32] = { 0x76, 0x49, 0xab, 0xac, 0x81, 0x19, 0xb2, 0x46,
                                    0xce, 0xe9, 0x8e, 0x9b, 0x12, 0xe9, 0x19, 0x7d,
                                    0x50, 0x86, 0xcb, 0x9b, 0x50, 0x72, 0x19, 0xee,
                                    0x95, 0xdb, 0x11, 0x3a, 0x91, 0x76, 0x78, 0xb2 };

static void fifo(vmapple_device *dev, uint32_t w)
{
    ck_assert_int_eq(vmapple_device_write(dev, 0, REG_FIFO, 4, w), 0);
}

static uint32_t reg(vmapple_device *dev, uint64_t off)
{
    uint64_t v = 0;
    ck_assert_int_eq(vmapple_device_read(dev, 0, off, 4, &v), 0);
    return (uint32_t)v;
}

static void data_cmd(vmapple_device *dev, unsigned kctx, unsigned ivctx, uint32_t len, uint64_t src,
                     uint64_t dst)
{
    fifo(dev, 5u << 28 | kctx << 27 | ivctx << 25 | (len & 0xffffff));
    fifo(dev, (uint32_t)((src >> 32) & 0xffff) << 16 | (uint32_t)((dst >> 32) & 0xffff));
    fifo(dev, (uint32_t)src);
    fifo(dev, (uint32_t)dst);
}

static void load_key128(vmapple_device *dev, unsigned kctx, bool encrypt, unsigned mode)
{
    fifo(dev, 1u << 28 | kctx << 27 | (encrypt ? 1u << 20 : 0) | mode << 16);
    for (unsigned i = 0; i < 16; i += 4) {
        fifo(dev, vm_ld_le32(key128 + i));
    }
}

static void load_iv(vmapple_device *dev, unsigned ctx, const uint8_t *iv)
{
    fifo(dev, 2u << 28 | ctx << 26);
    for (unsigned i = 0; i < 16; i += 4) {
        fifo(dev, vm_ld_le32(iv + i));
    }
}

/*
 * What a guest driver can do after losing track: FLAG commands until one
 * runs (a pending command takes at most 16 more words).
 */
static void resync(vmapple_device *dev)
{
    /* FLAG_INFO changes only when a FLAG runs: use values it does not hold now. */
    uint32_t base = reg(dev, REG_FLAG_INFO) + 1;

    for (uint32_t i = 0; i < 20; i++) {
        uint32_t info = (base + i) & 0xff;
        fifo(dev, 0x80000000u | info);
        if (reg(dev, REG_FLAG_INFO) == info) {
            return;
        }
    }
    ck_abort_msg("the FIFO never accepted a FLAG command");
}

/* Known answers (NIST SP 800-38A, AES-128) through the FIFO: the engine works. */
static void assert_usable(struct mock_host *h, vmapple_device *dev)
{
    uint8_t *src = mock_ram(h, RAM_BASE + 0x100, 32), *dst = mock_ram(h, RAM_BASE + 0x200, 32);

    h->fail_reads = h->fail_writes = 0;
    resync(dev);
    memcpy(src, pt, 32);
    memset(dst, 0, 32);
    ck_assert_int_eq(vmapple_device_write(dev, 0, REG_IRQ_STATUS, 4, ~0ull), 0);
    load_key128(dev, 1, true, 0);
    data_cmd(dev, 1, 0, 32, RAM_BASE + 0x100, RAM_BASE + 0x200);
    ck_assert_uint_eq(reg(dev, REG_IRQ_STATUS), 0);
    ck_assert(memcmp(dst, ecb128, 32) == 0);
    memcpy(src, cbc128, 32);
    load_key128(dev, 0, false, 1);
    load_iv(dev, 2, iv0);
    data_cmd(dev, 0, 2, 32, RAM_BASE + 0x100, RAM_BASE + 0x100); /* in place */
    ck_assert_uint_eq(reg(dev, REG_IRQ_STATUS), 0);
    ck_assert(memcmp(src, pt, 32) == 0);
    ck_assert_uint_eq(h->maps_live, 0);
}

/* A guest address: mostly in or near RAM, sometimes anywhere in 48 bits. */
static uint64_t rnd_addr(void)
{
    switch (rnd() % 4) {
    case 0:
        return rnd() & 0xffffffffffffull;
    case 1:
        return RAM_BASE + RAM_SIZE - (rnd() % 0x2000); /* across the end */
    default:
        return RAM_BASE + rnd() % RAM_SIZE;
    }
}

static uint32_t rnd_len(void)
{
    switch (rnd() % 4) {
    case 0:
        return (uint32_t)rnd() & 0xffffff; /* up to 16 MiB, often not a multiple of 16 */
    case 1:
        return (uint32_t)(rnd() % 0x40000) & ~15u;
    default:
        return (uint32_t)(rnd() % 0x2000) & ~15u;
    }
}

/* One random guest action: a command, a raw word, or a register access. */
static void random_action(struct mock_host *h, vmapple_device *dev)
{
    static const uint32_t sizes[] = { 0, 1, 2, 3, 4, 4, 8, 8, 16 };
    static const uint64_t offs[] = { 0x00c, 0x018, 0x01c, 0x020, 0x024, 0x030, 0x200, 0x204 };
    uint64_t v;
    uint64_t src, dst;

    switch (rnd() % 12) {
    case 0: /* KEY, any fields */
        fifo(dev, 1u << 28 | ((uint32_t)rnd() & 0x0fffffff));
        break;
    case 1: /* well-formed KEY with payload */
        fifo(dev, 1u << 28 | (uint32_t)(rnd() % 2) << 27 | (uint32_t)(rnd() % 3) << 22 |
                      (uint32_t)(rnd() % 2) << 20 | (uint32_t)(rnd() % 2) << 16);
        for (unsigned i = 0; i < rnd() % 10; i++) {
            fifo(dev, (uint32_t)rnd());
        }
        break;
    case 2:
        fifo(dev, 2u << 28 | ((uint32_t)rnd() & 0x0fffffff));
        break;
    case 3:
    case 4:
        src = rnd_addr();
        dst = rnd() % 3 ? rnd_addr() : src + (rnd() % 64) - 32; /* overlapping */
        data_cmd(dev, (unsigned)rnd() & 1, (unsigned)rnd() & 3, rnd_len(), src, dst);
        break;
    case 5:
        fifo(dev, 6u << 28 | ((uint32_t)rnd() & 0x0fffffff));
        fifo(dev, (uint32_t)rnd_addr());
        break;
    case 6:
        fifo(dev, (uint32_t)rnd()); /* any word */
        break;
    case 7:
        vmapple_device_write(dev, (uint32_t)(rnd() % 3), offs[rnd() % 8] + rnd() % 3,
                             sizes[rnd() % 9], rnd());
        break;
    case 8:
        vmapple_device_read(dev, (uint32_t)(rnd() % 3), rnd() % 0x4010, sizes[rnd() % 9], &v);
        break;
    case 9: /* the host changes its behaviour */
        h->allow_map = rnd() & 1;
        h->map_chunk = rnd() % 3 ? 0 : 1 + rnd() % 5000;
        h->fail_reads = rnd() % 8 == 0;
        h->fail_writes = rnd() % 8 == 0;
        break;
    case 10:
        if (rnd() % 16 == 0) {
            vmapple_device_reset(dev);
        }
        break;
    default: {
        /* Save and load back into the same device: always accepted. */
        size_t len = 0;
        uint8_t *blob;
        ck_assert_int_eq(vmapple_device_save(dev, NULL, 0, &len), -ENOSPC);
        blob = malloc(len);
        ck_assert_int_eq(vmapple_device_save(dev, blob, len, &len), 0);
        ck_assert_int_eq(vmapple_device_load(dev, blob, len), 0);
        free(blob);
        break;
    }
    }
}

START_TEST(hostile_guest_sequences)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev;

    seed(0xae5000 + (uint64_t)_i);
    ck_assert_int_eq(vmapple_aes_create(mock_host_ops(), h, NULL, &dev), 0);
    for (unsigned i = 0; i < RAM_SIZE; i++) {
        h->ram[i] = (uint8_t)rnd();
    }
    for (unsigned n = 0; n < 10000; n++) {
        random_action(h, dev);
        ck_assert_uint_eq(h->maps_live, 0);
        /* The line always follows IRQ_STATUS & IRQ_ENABLE. */
        ck_assert_int_eq(h->irq_level[0],
                         (reg(dev, REG_IRQ_STATUS) & reg(dev, REG_IRQ_ENABLE)) != 0);
    }
    ck_assert_uint_eq(h->wrapping_accesses, 0);
    assert_usable(h, dev);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}
END_TEST

static void ref_crypt(unsigned mode, bool encrypt, const uint8_t *key, const uint8_t *iv,
                      const uint8_t *in, uint8_t *out, size_t len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0;

    ck_assert_ptr_nonnull(c);
    ck_assert(
        EVP_CipherInit_ex(c, mode ? EVP_aes_128_cbc() : EVP_aes_128_ecb(), NULL, key, iv, encrypt));
    EVP_CIPHER_CTX_set_padding(c, 0);
    ck_assert(EVP_CipherUpdate(c, out, &outl, in, (int)len));
    EVP_CIPHER_CTX_free(c);
}

/*
 * Random DATA commands, checked against OpenSSL on a snapshot of RAM: a
 * command that succeeds wrote exactly the whole-buffer result, one that
 * fails wrote nothing outside its destination and only correct blocks inside.
 */
START_TEST(hostile_data_commands)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    uint8_t *before = malloc(RAM_SIZE), *want = malloc(RAM_SIZE);
    vmapple_aes_options opts = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_device *dev;
    uint8_t iv[16];

    seed(0xda7a00 + (uint64_t)_i);
    opts.cbc_chain_iv = _i & 1;
    ck_assert_int_eq(vmapple_aes_create(mock_host_ops(), h, &opts, &dev), 0);
    for (unsigned n = 0; n < 600; n++) {
        unsigned mode = rnd() & 1;
        bool encrypt = rnd() & 1;
        uint32_t len = rnd_len();
        uint64_t src = rnd_addr(), dst;
        bool in_ram, injected;

        switch (rnd() % 3) {
        case 0:
            dst = rnd_addr();
            break;
        case 1:
            dst = src + rnd() % 0x300;
            break;
        default:
            dst = src - rnd() % 0x300;
            break;
        }
        for (unsigned i = 0; i < 16; i++) {
            iv[i] = (uint8_t)rnd();
        }
        h->allow_map = rnd() & 1;
        h->map_chunk = rnd() % 2 ? 0 : 1 + rnd() % 70000;
        load_key128(dev, 1, encrypt, mode);
        load_iv(dev, 1, iv);
        ck_assert_int_eq(vmapple_device_write(dev, 0, REG_IRQ_STATUS, 4, ~0ull), 0);
        memcpy(before, h->ram, RAM_SIZE);
        in_ram = len % 16 == 0 && mock_ram(h, src, len) && mock_ram(h, dst, len);
        h->guard_writes = true;
        h->guard_lo = dst;
        h->guard_hi = dst + len;
        h->fail_reads = rnd() % 10 == 0;
        h->fail_writes = rnd() % 10 == 0;
        injected = h->fail_reads || h->fail_writes;
        data_cmd(dev, 1, 1, len, src, dst);
        h->guard_writes = false;
        ck_assert_uint_eq(h->stray_writes, 0);
        ck_assert_uint_eq(h->maps_live, 0);
        if (in_ram && !injected && len > 0) {
            ck_assert_msg(reg(dev, REG_IRQ_STATUS) == 0, "n %u: %s", n,
                          h->nr_log ? h->log[(h->nr_log - 1) % MOCK_LOG_KEEP] : "");
            memcpy(want, before, RAM_SIZE);
            ref_crypt(mode, encrypt, key128, iv, before + (src - RAM_BASE), want + (dst - RAM_BASE),
                      len);
            ck_assert_msg(memcmp(want, h->ram, RAM_SIZE) == 0,
                          "n %u mode %u enc %d src 0x%llx dst 0x%llx len %u map %d chunk %llu", n,
                          mode, encrypt, (unsigned long long)src, (unsigned long long)dst, len,
                          h->allow_map, (unsigned long long)h->map_chunk);
        } else if (!in_ram && len % 16 == 0 && len > 0) {
            ck_assert_uint_eq(reg(dev, REG_IRQ_STATUS), 4);
        }
        h->fail_reads = h->fail_writes = 0;
    }
    assert_usable(h, dev);
    vmapple_device_destroy(dev);
    mock_host_free(h);
    free(before);
    free(want);
}
END_TEST

START_TEST(mutated_state_blobs)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev, *fresh;
    uint8_t *blob, *bad;
    size_t len;

    seed(0xb10b00 + (uint64_t)_i);
    ck_assert_int_eq(vmapple_aes_create(mock_host_ops(), h, NULL, &dev), 0);
    for (unsigned n = 0; n < 400; n++) {
        /* Some state: keys, IVs, maybe a partial command. */
        for (unsigned k = 0; k < 1 + rnd() % 20; k++) {
            random_action(h, dev);
        }
        h->fail_reads = h->fail_writes = 0;
        ck_assert_int_eq(vmapple_device_save(dev, NULL, 0, &len), -ENOSPC);
        blob = malloc(len);
        bad = malloc(len);
        ck_assert_int_eq(vmapple_device_save(dev, blob, len, &len), 0);
        memcpy(bad, blob, len);
        for (unsigned k = 0; k < 1 + rnd() % 4; k++) {
            size_t at = 32 + rnd() % (len - 32);
            bad[at] = rnd() % 2 ? (uint8_t)rnd() : bad[at] ^ (uint8_t)(1u << (rnd() % 8));
        }
        if (rnd() % 8) {
            vm_st_le32(bad + 24, vm_crc32(bad + 32, len - 32)); /* a deliberate forgery */
        }
        ck_assert_int_eq(vmapple_aes_create(mock_host_ops(), h, NULL, &fresh), 0);
        if (vmapple_device_load(fresh, bad, len) == 0) {
            /* Accepted: the state is one the device could be in; it saves again. */
            size_t len2 = 0;
            ck_assert_int_eq(vmapple_device_save(fresh, NULL, 0, &len2), -ENOSPC);
            ck_assert_uint_eq(len2, len);
            ck_assert_int_eq(h->irq_level[0],
                             (reg(fresh, REG_IRQ_STATUS) & reg(fresh, REG_IRQ_ENABLE)) != 0);
        }
        assert_usable(h, fresh);
        vmapple_device_destroy(fresh);
        /* The original blob still loads. */
        ck_assert_int_eq(vmapple_device_load(dev, blob, len), 0);
        free(blob);
        free(bad);
    }
    assert_usable(h, dev);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}
END_TEST

START_TEST(random_option_structs)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    uint8_t raw[sizeof(vmapple_aes_options) + 16];

    seed(0x0b7000 + (uint64_t)_i);
    for (unsigned n = 0; n < 300; n++) {
        vmapple_aes_options *o = (vmapple_aes_options *)raw;
        vmapple_device *dev = NULL;
        uint32_t size;
        int ret;

        memset(raw, 0, sizeof(raw));
        for (unsigned k = 0; k < rnd() % 12; k++) {
            raw[rnd() % sizeof(raw)] = (uint8_t)rnd();
        }
        if (rnd() % 2) {
            o->builtin_keys[rnd() % 7].length = (uint32_t)(rnd() % 3) * 8 + 16;
        }
        size = rnd() % 4 ? (uint32_t)sizeof(*o) : (uint32_t)(rnd() % sizeof(raw));
        memcpy(raw, &size, sizeof(size));
        ret = vmapple_aes_create(mock_host_ops(), h, o, &dev);
        if (ret == 0) {
            ck_assert_ptr_nonnull(dev);
            assert_usable(h, dev);
            vmapple_device_destroy(dev);
        } else {
            ck_assert_int_eq(ret, -EINVAL);
            ck_assert_ptr_null(dev);
            ck_assert(vmapple_last_error()[0] != '\0');
        }
    }
    mock_host_free(h);
}
END_TEST

static Suite *aes_suite(void)
{
    Suite *s = suite_create("aes-robustness");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, hostile_guest_sequences, 0, 6);
    tcase_add_loop_test(tc, hostile_data_commands, 0, 4);
    tcase_add_loop_test(tc, mutated_state_blobs, 0, 3);
    tcase_add_loop_test(tc, random_option_structs, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

/* Two seconds pass between log lines: failure messages show the last guest error. */
static uint64_t fake_ns;
static uint64_t slow_clock(void)
{
    return fake_ns += 2000000000ull;
}

int main(void)
{
    SRunner *sr = srunner_create(aes_suite());
    int failed;

    vm_clock_hook = slow_clock;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
