/* SPDX-License-Identifier: MIT */
/*
 * The AES engine (spec/aes.md): NIST SP 800-38A vectors through the command
 * FIFO with the engine's own DMA (ECB and CBC, 128/192/256-bit keys, both
 * directions, in place), IV contexts and STORE_IV, a built-in key, the
 * FLAG and INVALID_CMD interrupts as the GIC sees them, and reset.
 */
#include "fw.h"

#define AES_STATUS     0x00c
#define AES_IRQ_STATUS 0x018
#define AES_IRQ_ENABLE 0x01c
#define AES_FLAG_INFO  0x030
#define AES_FIFO       0x200

#define IRQ_INVALID_CMD (1u << 2)
#define IRQ_FLAG        (1u << 5)

#define OP_KEY      0x1u
#define OP_IV       0x2u
#define OP_DSB      0x3u
#define OP_DATA     0x5u
#define OP_STORE_IV 0x6u
#define OP_FLAG     0x8u

#define MODE_ECB 0u
#define MODE_CBC 1u

/* NIST SP 800-38A, appendix F: the plaintext of every example and their keys. */
static const char nist_pt[] = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                              "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
static const char nist_iv[] = "000102030405060708090a0b0c0d0e0f";
static const char key128[] = "2b7e151628aed2a6abf7158809cf4f3c";
static const char key192[] = "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b";
static const char key256[] = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";

struct vector {
    const char *name;
    const char *key;
    unsigned mode;
    const char *ct; /* ciphertext of nist_pt */
};

static const struct vector vectors[] = {
    { "ecb-128", key128, MODE_ECB, /* F.1.1 */
      "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf"
      "43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4" },
    { "ecb-192", key192, MODE_ECB, /* F.1.3 */
      "bd334f1d6e45f25ff712a214571fa5cc974104846d0ad3ad7734ecb3ecee4eef"
      "ef7afd2270e2e60adce0ba2face6444e9a4b41ba738d6c72fb16691603c18e0e" },
    { "ecb-256", key256, MODE_ECB, /* F.1.5 */
      "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870"
      "b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7" },
    { "cbc-128", key128, MODE_CBC, /* F.2.1 */
      "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
      "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7" },
    { "cbc-256", key256, MODE_CBC, /* F.2.5 */
      "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
      "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b" },
};

/*
 * Built-in key 1 is a device secret; the library's default is the
 * reference's placeholder (32 bytes: 01 00 .. 00). This is the first
 * NIST plaintext block under it (AES-256-ECB, computed with OpenSSL).
 */
static const char builtin1_ct[] = "b7540d3378677159590d6fbed81ed85b";

static uint8_t *pt, *buf, *expect, *ivbuf;

static unsigned unhex(uint8_t *out, const char *hex)
{
    unsigned n = 0;

    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v = 0;
        for (int i = 0; i < 2; i++) {
            char c = hex[i];
            v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c - '0');
        }
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void fifo(uint32_t word)
{
    mmio_write32(FW_AES1_BASE + AES_FIFO, word);
}

static uint32_t reg(uint32_t off)
{
    return mmio_read32(FW_AES1_BASE + off);
}

static void key_cmd(unsigned ctx, const uint8_t *key, unsigned len, bool encrypt, unsigned mode)
{
    unsigned lcode = len == 16 ? 0 : len == 24 ? 1 : 2;

    fifo(OP_KEY << 28 | ctx << 27 | lcode << 22 | (encrypt ? 1u : 0u) << 20 | mode << 16);
    for (unsigned i = 0; i < len / 4; i++) {
        fifo(ld_le32(key + 4 * i)); /* key bytes in memory order */
    }
}

static void builtin_key_cmd(unsigned ctx, unsigned select, bool encrypt, unsigned mode)
{
    fifo(OP_KEY << 28 | ctx << 27 | select << 24 | 2u << 22 | (encrypt ? 1u : 0u) << 20 |
         mode << 16);
}

static void iv_cmd(unsigned ctx, const uint8_t *iv)
{
    fifo(OP_IV << 28 | ctx << 26);
    for (unsigned i = 0; i < 4; i++) {
        fifo(ld_le32(iv + 4 * i));
    }
}

static void data_cmd(unsigned keyctx, unsigned ivctx, const void *src, void *dst, uint32_t len)
{
    uint64_t s = fw_gpa(src), d = fw_gpa(dst);

    fifo(OP_DATA << 28 | keyctx << 27 | ivctx << 25 | (len & 0xffffff));
    fifo((uint32_t)((s >> 32) & 0xffff) << 16 | (uint32_t)((d >> 32) & 0xffff));
    fifo((uint32_t)s);
    fifo((uint32_t)d);
}

static void store_iv_cmd(unsigned ctx, void *dst)
{
    uint64_t d = fw_gpa(dst);
    fifo(OP_STORE_IV << 28 | ctx << 26 | (uint32_t)((d >> 32) & 0xff));
    fifo((uint32_t)d);
}

static void clear_irqs(void)
{
    mmio_write32(FW_AES1_BASE + AES_IRQ_STATUS, 0xffffffffu);
}

static bool compare(const char *check, const uint8_t *got, const uint8_t *want, unsigned len,
                    const char *what)
{
    char g[40], w[40];

    for (unsigned i = 0; i < len; i++) {
        if (got[i] != want[i]) {
            fw_hex(g, sizeof(g), got + (i & ~15u), 16);
            fw_hex(w, sizeof(w), want + (i & ~15u), 16);
            return fw_check(check, false, "%s: block %u is %s, NIST says %s", what, i / 16, g, w);
        }
    }
    return fw_check(check, true, "%s: %u bytes match", what, len);
}

static void run_vector(const struct vector *v)
{
    uint8_t key[32], iv[16];
    unsigned klen = unhex(key, v->key);
    char name[32];

    unhex(expect, v->ct);
    unhex(iv, nist_iv);

    /* Encrypt into another buffer. */
    memset(buf, 0xee, 64);
    key_cmd(0, key, klen, true, v->mode);
    if (v->mode == MODE_CBC) {
        iv_cmd(3, iv); /* IV context 3: bits 27:26 (reference defect 1) */
    }
    data_cmd(0, v->mode == MODE_CBC ? 3 : 0, pt, buf, 64);
    fw_snprintf(name, sizeof(name), "%s-encrypt", v->name);
    compare(name, buf, expect, 64, "4 blocks");

    /* Decrypt in place, with key context 1. */
    key_cmd(1, key, klen, false, v->mode);
    if (v->mode == MODE_CBC) {
        iv_cmd(1, iv);
    }
    data_cmd(1, v->mode == MODE_CBC ? 1 : 0, buf, buf, 64);
    fw_snprintf(name, sizeof(name), "%s-decrypt", v->name);
    compare(name, buf, pt, 64, "in place");
}

void check_aes(void)
{
    uint8_t iv[16], key[16];
    uint32_t engine, status, info;
    bool pending, cleared;

    pt = fw_alloc(64, 64);
    buf = fw_alloc(64, 64);
    expect = fw_alloc(64, 64);
    ivbuf = fw_alloc(64, 64);
    if (!pt || !buf || !expect || !ivbuf) {
        fw_check("buffers", false, "out of RAM for DMA buffers");
        return;
    }
    unhex(pt, nist_pt);

    engine = reg(AES_STATUS);
    status = reg(AES_IRQ_STATUS);
    fw_check("status", engine == 0x3f80 && status == 0,
             "STATUS 0x%x (reset value 0x3f80), IRQ_STATUS 0x%x", engine, status);
    fw_check("window2", mmio_read32(FW_AES2_BASE) == 0, "window 2 offset 0 reads 0");

    for (unsigned i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        run_vector(&vectors[i]);
    }

    /* IV contexts: store what IV put into context 2 (only 0 and 2 work with defect 1). */
    unhex(iv, "f0e1d2c3b4a5968778695a4b3c2d1e0f");
    iv_cmd(1, iv);
    unhex(expect, nist_iv);
    iv_cmd(2, expect);
    memset(ivbuf, 0, 32);
    store_iv_cmd(1, ivbuf);
    store_iv_cmd(2, ivbuf + 16);
    fw_check("iv-store", !memcmp(ivbuf, iv, 16) && !memcmp(ivbuf + 16, expect, 16),
             "STORE_IV returns what IV loaded into contexts 1 and 2");

    /* The built-in key the host configured (default: the reference's placeholder). */
    unhex(expect, builtin1_ct);
    memset(buf, 0, 16);
    builtin_key_cmd(0, 1, true, MODE_ECB);
    data_cmd(0, 0, pt, buf, 16);
    {
        char g[40];
        fw_hex(g, sizeof(g), buf, 16);
        fw_check("builtin-key-1", !memcmp(buf, expect, 16) && reg(AES_IRQ_STATUS) == 0,
                 "built-in key 1 encrypts the first NIST block to %s (default key: %s)", g,
                 builtin1_ct);
    }

    /* FLAG raises the engine's interrupt; the GIC sees SPI 0x12; W1C lowers it. */
    clear_irqs();
    mmio_write32(FW_AES1_BASE + AES_IRQ_ENABLE, IRQ_FLAG | IRQ_INVALID_CMD);
    fw_check("quiet", !fw_spi_pending(FW_SPI_AES), "SPI 0x%x low before any FLAG", FW_SPI_AES);
    fifo(OP_FLAG << 28 | 1u << 27 | 0x5a);
    status = reg(AES_IRQ_STATUS);
    info = reg(AES_FLAG_INFO);
    pending = fw_spi_pending(FW_SPI_AES);
    mmio_write32(FW_AES1_BASE + AES_IRQ_STATUS, IRQ_FLAG);
    cleared = !fw_spi_pending(FW_SPI_AES);
    fw_check("interrupt", (status & IRQ_FLAG) && info == 0x5a && pending && cleared,
             "FLAG: IRQ_STATUS 0x%x, FLAG_INFO 0x%x, SPI 0x%x %s, %s after W1C", status, info,
             FW_SPI_AES, pending ? "pending" : "NOT pending", cleared ? "low" : "STILL pending");

    /* A command the engine cannot run: INVALID_CMD, and the engine carries on. */
    fifo(OP_DSB << 28);
    status = reg(AES_IRQ_STATUS);
    pending = fw_spi_pending(FW_SPI_AES);
    clear_irqs();
    unhex(expect, vectors[0].ct);
    key_cmd(0, key, unhex(key, key128), true, MODE_ECB);
    memset(buf, 0, 16);
    data_cmd(0, 0, pt, buf, 16);
    fw_check("invalid-command",
             (status & IRQ_INVALID_CMD) && pending && !memcmp(buf, expect, 16) &&
                 !fw_spi_pending(FW_SPI_AES),
             "DSB sets INVALID_CMD (IRQ_STATUS 0x%x, SPI %s) and the next command still works",
             status, pending ? "pending" : "NOT pending");
    mmio_write32(FW_AES1_BASE + AES_IRQ_ENABLE, 0);
}

/*
 * Before the machine reset: leave state the reset must clear, and see the
 * interrupt is really up, or the check after the reset proves nothing.
 */
void check_aes_before_reset(void)
{
    uint8_t iv[16];
    uint32_t status, info;
    bool pending;

    memset(iv, 0xa5, sizeof(iv));
    iv_cmd(1, iv);
    mmio_write32(FW_AES1_BASE + AES_IRQ_ENABLE, IRQ_FLAG);
    fifo(OP_FLAG << 28 | 1u << 27 | 0x11);
    status = reg(AES_IRQ_STATUS);
    info = reg(AES_FLAG_INFO);
    pending = fw_spi_pending(FW_SPI_AES);
    fw_check("pre-reset", (status & IRQ_FLAG) && info == 0x11 && pending,
             "before SYSTEM_RESET: FLAG: IRQ_STATUS 0x%x, FLAG_INFO 0x%x, SPI 0x%x %s", status,
             info, FW_SPI_AES, pending ? "pending" : "NOT pending");
    fifo(OP_KEY << 28 | 2u << 22); /* half a command in the FIFO */
}

void check_aes_after_reset(void)
{
    uint8_t *p = fw_alloc(16, 16);
    uint8_t zero[16];
    bool ok;

    memset(zero, 0, sizeof(zero));
    memset(p, 0xff, 16);
    ok = reg(AES_IRQ_ENABLE) == 0 && reg(AES_IRQ_STATUS) == 0 && reg(AES_FLAG_INFO) == 0 &&
         !fw_spi_pending(FW_SPI_AES);
    store_iv_cmd(1, p); /* a partial KEY left in the FIFO would swallow this */
    fw_check("reset", ok && !memcmp(p, zero, 16) && reg(AES_IRQ_STATUS) == 0,
             "after SYSTEM_RESET: interrupt registers clear, SPI low, FIFO empty, IVs zero");
}
