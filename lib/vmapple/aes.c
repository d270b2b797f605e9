/* SPDX-License-Identifier: MIT */
/*
 * The vmapple AES engine (spec/aes.md): two MMIO windows, a 9-word command
 * FIFO, two key contexts, four IV contexts, ECB and CBC with 128/192/256-bit
 * keys, DMA to and from guest memory, one level interrupt.
 *
 * The cipher work goes through OpenSSL's EVP interface. Each key context
 * keeps one initialised EVP context per (mode, direction) until its key
 * changes, so a DATA command expands no key and only re-sets the IV for
 * CBC. DATA runs in place on guest memory the host maps (mem_map) and
 * otherwise through one fixed-size bounce buffer; overlapping source and
 * destination ranges give the same result as a whole-buffer operation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core.h"
#include "state.h"

/* Placement in the vmapple map (spec/README.md). */
#define AES_WINDOW1_BASE 0x30220000ull
#define AES_WINDOW2_BASE 0x30230000ull
#define AES_WINDOW_SIZE  0x4000ull
#define AES_IRQ_SPI      0x12u

enum { AES_REGION_WINDOW1 = 0, AES_REGION_WINDOW2 = 1 };

/* Window 1 registers. */
#define AES_REG_STATUS     0x00c
#define AES_REG_IRQ_STATUS 0x018
#define AES_REG_IRQ_ENABLE 0x01c
#define AES_REG_WATERMARK  0x020
#define AES_REG_Q_STATUS   0x024
#define AES_REG_FLAG_INFO  0x030
#define AES_REG_FIFO       0x200

/* STATUS always reads its reset value, as in the reference (firmware accepts it). */
#define AES_STATUS_VALUE   0x3f80u
#define AES_Q_STATUS_VALUE 2u

#define AES_IRQ_INVALID_CMD (1u << 2)
#define AES_IRQ_FLAG        (1u << 5)
#define AES_IRQ_ALL         (AES_IRQ_INVALID_CMD | AES_IRQ_FLAG)

/*
 * Command FIFO: 9 words, enough for the longest supported command (KEY with
 * a 256-bit key). KEY with a 512-bit (unsupported) key is 17 words.
 */
#define AES_FIFO_WORDS 9u

#define AES_OP_KEY       0x1u
#define AES_OP_IV        0x2u
#define AES_OP_DSB       0x3u
#define AES_OP_SKG       0x4u
#define AES_OP_DATA      0x5u
#define AES_OP_STORE_IV  0x6u
#define AES_OP_WRITE_REG 0x7u
#define AES_OP_FLAG      0x8u

#define AES_CMD_OPCODE(w)       ((w) >> 28)
#define AES_KEY_CTX(w)          (((w) >> 27) & 1u)
#define AES_KEY_SELECT(w)       (((w) >> 24) & 7u)
#define AES_KEY_LENGTH(w)       (((w) >> 22) & 3u)
#define AES_KEY_ENCRYPT         (1u << 20)
#define AES_KEY_MODE(w)         (((w) >> 16) & 3u)
#define AES_IV_CTX(w)           (((w) >> 26) & 3u)
#define AES_DATA_KEY_CTX(w)     (((w) >> 27) & 1u)
#define AES_DATA_IV_CTX(w)      (((w) >> 25) & 3u)
#define AES_DATA_LENGTH(w)      ((w)&0xffffffu)
#define AES_STORE_IV_ADDR_HI(w) ((w)&0xffu)
#define AES_FLAG_RAISE          (1u << 27)
#define AES_FLAG_INFO(w)        ((w)&0xffu)

#define AES_MODE_ECB 0u
#define AES_MODE_CBC 1u

#define AES_BLOCK          16u
#define AES_KEY_CTXS       2u
#define AES_IV_CTXS        4u
#define AES_MAX_KEY        32u
#define AES_KEY_LENGTH_512 3u /* the KEY key-length field value for 512 bits */
#define AES_DIGEST_LEN     32u

/*
 * DATA without mem_map (or with overlapping buffers) goes through this one
 * buffer, never a `length`-sized one (reference defect 5).
 */
#define AES_BOUNCE_SIZE (64u * 1024u)
#define AES_MAX_DATA    0xffffffu
#define AES_MAX_PIECES  ((AES_MAX_DATA + AES_BOUNCE_SIZE - 1) / AES_BOUNCE_SIZE)

struct aes_key {
    uint32_t len; /* bytes: 0 (no key), 16, 24 or 32 */
    uint8_t bytes[AES_MAX_KEY];
};

struct aes_engine {
    vmapple_device dev;
    vmapple_aes_options opts;
    struct aes_key builtin[VMAPPLE_AES_BUILTIN_KEYS + 1]; /* by key select; [0] unused */
    uint8_t builtin_digest[AES_DIGEST_LEN];               /* saved, checked on load */

    /* Guest-visible state (saved). */
    uint32_t fifo[AES_FIFO_WORDS];
    uint32_t fifo_count;
    uint32_t fifo_overflow; /* words of an over-long command that found the FIFO full */
    struct aes_key key[AES_KEY_CTXS];
    uint8_t iv[AES_IV_CTXS][AES_BLOCK];
    bool encrypt;  /* global, set by the latest KEY command */
    uint32_t mode; /* AES_MODE_*, likewise */
    uint32_t irq_status;
    uint32_t irq_enable;
    uint32_t flag_info;

    /* Host-side caches, rebuilt on demand. */
    const EVP_CIPHER *cipher[2][3]; /* [mode][key size 128/192/256] */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_CIPHER *fetched[2][3];
#endif
    EVP_CIPHER_CTX *evp[AES_KEY_CTXS][2][2]; /* [key ctx][mode][encrypt] */
    bool evp_ready[AES_KEY_CTXS][2][2];
    uint8_t *bounce;
    /* CBC encryption into a forward-overlapping destination: chain values. */
    uint8_t chain[AES_MAX_PIECES + 1][AES_BLOCK];
};

static const vmapple_region_info aes_regions[] = {
    { "aes-window1", AES_WINDOW_SIZE, AES_WINDOW1_BASE, VMAPPLE_REGION_MMIO, UINT32_MAX },
    { "aes-window2", AES_WINDOW_SIZE, AES_WINDOW2_BASE, VMAPPLE_REGION_MMIO, UINT32_MAX },
};

static const vmapple_irq_info aes_irqs[] = {
    { "aes", AES_IRQ_SPI, VMAPPLE_IRQ_LEVEL },
};

static const char *const aes_op_names[16] = {
    [AES_OP_KEY] = "KEY",
    [AES_OP_IV] = "IV",
    [AES_OP_DSB] = "DSB",
    [AES_OP_SKG] = "SKG",
    [AES_OP_DATA] = "DATA",
    [AES_OP_STORE_IV] = "STORE_IV",
    [AES_OP_WRITE_REG] = "WRITE_REG",
    [AES_OP_FLAG] = "FLAG",
};

static struct aes_engine *to_aes(vmapple_device *dev)
{
    return vm_container_of(dev, struct aes_engine, dev);
}

static unsigned aes_key_len_bytes(uint32_t field)
{
    static const unsigned bytes[4] = { 16, 24, 32, 64 };
    return bytes[field & 3u];
}

/* Words a command occupies, header included, as decoded from its header. */
static unsigned aes_cmd_words(uint32_t cmd)
{
    switch (AES_CMD_OPCODE(cmd)) {
    case AES_OP_KEY:
        return AES_KEY_SELECT(cmd) ? 1u : 1u + aes_key_len_bytes(AES_KEY_LENGTH(cmd)) / 4u;
    case AES_OP_IV:
        return 5;
    case AES_OP_DATA:
        return 4;
    case AES_OP_STORE_IV:
        return 2;
    default:
        /* FLAG; and opcodes whose payload is unknown fail on their header. */
        return 1;
    }
}

static void aes_update_irq(struct aes_engine *s)
{
    vm_irq_set(&s->dev, 0, (s->irq_status & s->irq_enable) != 0);
}

/* Expanded keys. */

static void aes_forget_key_schedules(struct aes_engine *s, unsigned kctx)
{
    for (unsigned m = 0; m < 2; m++) {
        for (unsigned e = 0; e < 2; e++) {
            if (s->evp_ready[kctx][m][e]) {
                /* Also wipes the key schedule. */
                EVP_CIPHER_CTX_reset(s->evp[kctx][m][e]);
                s->evp_ready[kctx][m][e] = false;
            }
        }
    }
}

static void aes_set_key(struct aes_engine *s, unsigned kctx, const struct aes_key *key)
{
    struct aes_key *cur = &s->key[kctx];

    /* Firmware reloads the same key before each use: keep its schedules then. */
    if (cur->len == key->len && CRYPTO_memcmp(cur->bytes, key->bytes, sizeof(cur->bytes)) == 0) {
        return;
    }
    aes_forget_key_schedules(s, kctx);
    *cur = *key;
}

static unsigned aes_key_size_index(uint32_t len)
{
    return len == 16 ? 0 : len == 24 ? 1 : 2;
}

/* The EVP context of key context `kctx` for the current mode and direction. */
static EVP_CIPHER_CTX *aes_cipher(struct aes_engine *s, unsigned kctx)
{
    unsigned m = s->mode, e = s->encrypt ? 1 : 0;
    const struct aes_key *key = &s->key[kctx];
    EVP_CIPHER_CTX *c = s->evp[kctx][m][e];

    if (vm_likely(s->evp_ready[kctx][m][e])) {
        return c;
    }
    if (!c) {
        c = EVP_CIPHER_CTX_new();
        if (!c) {
            vm_log(&s->dev, VMAPPLE_LOG_ERROR, "out of memory for a cipher context");
            return NULL;
        }
        s->evp[kctx][m][e] = c;
    }
    if (!EVP_CipherInit_ex(c, s->cipher[m][aes_key_size_index(key->len)], NULL, key->bytes, NULL,
                           (int)e) ||
        !EVP_CIPHER_CTX_set_padding(c, 0)) {
        EVP_CIPHER_CTX_reset(c);
        vm_log(&s->dev, VMAPPLE_LOG_ERROR, "OpenSSL refused a %u-bit key", key->len * 8);
        return NULL;
    }
    s->evp_ready[kctx][m][e] = true;
    return c;
}

/* DATA. */

struct aes_data_op {
    EVP_CIPHER_CTX *cipher;
    uint64_t src, dst, len;
    bool encrypt, cbc;
    uint8_t iv[AES_BLOCK];   /* CBC: where the chain starts */
    uint8_t last[AES_BLOCK]; /* CBC: the last ciphertext block, for chaining */
};

static int aes_set_iv(struct aes_engine *s, struct aes_data_op *op, const uint8_t *iv)
{
    /* No key argument: OpenSSL keeps the expanded key and only takes the IV. */
    if (!EVP_CipherInit_ex(op->cipher, NULL, NULL, NULL, iv, -1)) {
        vm_log(&s->dev, VMAPPLE_LOG_ERROR, "OpenSSL refused an IV");
        return -EIO;
    }
    return 0;
}

static int aes_crypt(struct aes_engine *s, struct aes_data_op *op, uint8_t *out, const uint8_t *in,
                     uint64_t n)
{
    int outl = 0;

    if (!EVP_CipherUpdate(op->cipher, out, &outl, in, (int)n) || (uint64_t)outl != n) {
        vm_log(&s->dev, VMAPPLE_LOG_ERROR, "OpenSSL failed on %llu bytes", (unsigned long long)n);
        return -EIO;
    }
    return 0;
}

static bool aes_ranges_overlap(uint64_t a, uint64_t b, uint64_t len)
{
    return len && a < b + len && b < a + len;
}

static bool aes_host_partial_overlap(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x != y && x < y + n && y < x + n;
}

static int aes_dma_in(struct aes_engine *s, struct aes_data_op *op, uint64_t gpa, void *buf,
                      uint64_t n)
{
    int ret = vm_dma_read(&s->dev, gpa, buf, n);

    if (ret < 0) {
        vm_guest_error(&s->dev,
                       "DATA 0x%llx -> 0x%llx (%llu bytes): DMA read of %llu bytes at 0x%llx "
                       "failed: %s",
                       (unsigned long long)op->src, (unsigned long long)op->dst,
                       (unsigned long long)op->len, (unsigned long long)n, (unsigned long long)gpa,
                       vmapple_strerror(ret));
    }
    return ret;
}

static int aes_dma_out(struct aes_engine *s, struct aes_data_op *op, uint64_t gpa, const void *buf,
                       uint64_t n)
{
    int ret = vm_dma_write(&s->dev, gpa, buf, n);

    if (ret < 0) {
        /* Reference defect 6: name the destination, not the source. */
        vm_guest_error(&s->dev,
                       "DATA 0x%llx -> 0x%llx (%llu bytes): DMA write of %llu bytes at 0x%llx "
                       "failed: %s",
                       (unsigned long long)op->src, (unsigned long long)op->dst,
                       (unsigned long long)op->len, (unsigned long long)n, (unsigned long long)gpa,
                       vmapple_strerror(ret));
    }
    return ret;
}

/*
 * Front to back: the destination does not overlap the source, is the
 * source (in place), or lies below it (each piece is read before the
 * output that overwrites it is stored, and the CBC chain lives in the
 * cipher context, not in guest memory). Zero-copy through mem_map where
 * the host maps both sides and the two mappings do not partially overlap;
 * otherwise through the bounce buffer.
 */
static int aes_data_forward(struct aes_engine *s, struct aes_data_op *op)
{
    vmapple_device *dev = &s->dev;
    bool in_place = op->src == op->dst;
    uint64_t off = 0;
    int ret = 0;

    if (op->cbc && (ret = aes_set_iv(s, op, op->iv)) < 0) {
        return ret;
    }
    while (off < op->len) {
        uint64_t rem = op->len - off, ms = 0, md = 0, n = rem;
        uint8_t *sp = NULL, *dp = NULL, *out;
        const uint8_t *in;

        dp = vm_dma_map(dev, op->dst + off, rem, true, &md);
        if (in_place) {
            sp = dp;
            ms = md;
        } else {
            sp = vm_dma_map(dev, op->src + off, rem, false, &ms);
        }
        n = VM_MIN(n, sp ? ms : 0);
        n = VM_MIN(n, dp ? md : 0);
        n &= ~(uint64_t)(AES_BLOCK - 1);
        if (n && !aes_host_partial_overlap(sp, dp, n)) {
            in = sp;
            out = dp;
        } else {
            /* A mapping ends inside a block, or the host aliased the two. */
            n = VM_MIN(rem, (uint64_t)AES_BOUNCE_SIZE);
            in = sp && ms >= n ? sp : s->bounce;
            out = dp && md >= n && !aes_host_partial_overlap(in, dp, n) ? dp : s->bounce;
        }
        if (in == s->bounce) {
            ret = aes_dma_in(s, op, op->src + off, s->bounce, n);
        }
        if (ret == 0) {
            bool last = off + n == op->len;
            if (last && op->cbc && !op->encrypt) {
                memcpy(op->last, in + n - AES_BLOCK, AES_BLOCK);
            }
            ret = aes_crypt(s, op, out, in, n);
            if (ret == 0 && last && op->cbc && op->encrypt) {
                memcpy(op->last, out + n - AES_BLOCK, AES_BLOCK);
            }
        }
        if (ret == 0 && out == s->bounce) {
            ret = aes_dma_out(s, op, op->dst + off, s->bounce, n);
        }
        if (dp) {
            vm_dma_unmap(dev, dp, md, out == dp);
        }
        if (sp && sp != dp) {
            vm_dma_unmap(dev, sp, ms, false);
        }
        if (ret < 0) {
            return ret;
        }
        off += n;
    }
    return 0;
}

/*
 * Back to front, for a destination that overlaps the source at a higher
 * address: storing a piece then only overwrites source bytes already
 * consumed. CBC decryption takes each piece's IV from the source block
 * before it (still intact); CBC encryption cannot run backwards, so a
 * first read-only pass records the chain value at every piece boundary.
 */
static int aes_data_backward(struct aes_engine *s, struct aes_data_op *op)
{
    uint64_t pieces = (op->len + AES_BOUNCE_SIZE - 1) / AES_BOUNCE_SIZE;
    uint8_t piece_iv[AES_BLOCK];
    int ret;

    if (op->cbc && op->encrypt) {
        if ((ret = aes_set_iv(s, op, op->iv)) < 0) {
            return ret;
        }
        memcpy(s->chain[0], op->iv, AES_BLOCK);
        for (uint64_t k = 0; k < pieces; k++) {
            uint64_t off = k * AES_BOUNCE_SIZE, n = VM_MIN(op->len - off, AES_BOUNCE_SIZE);
            if ((ret = aes_dma_in(s, op, op->src + off, s->bounce, n)) < 0 ||
                (ret = aes_crypt(s, op, s->bounce, s->bounce, n)) < 0) {
                return ret;
            }
            memcpy(s->chain[k + 1], s->bounce + n - AES_BLOCK, AES_BLOCK);
        }
        memcpy(op->last, s->chain[pieces], AES_BLOCK);
    }
    for (uint64_t k = pieces; k-- > 0;) {
        uint64_t off = k * AES_BOUNCE_SIZE, n = VM_MIN(op->len - off, AES_BOUNCE_SIZE);

        if ((ret = aes_dma_in(s, op, op->src + off, s->bounce, n)) < 0) {
            return ret;
        }
        if (op->cbc) {
            if (op->encrypt) {
                memcpy(piece_iv, s->chain[k], AES_BLOCK);
            } else if (k == 0) {
                memcpy(piece_iv, op->iv, AES_BLOCK);
            } else if ((ret = aes_dma_in(s, op, op->src + off - AES_BLOCK, piece_iv, AES_BLOCK)) <
                       0) {
                return ret;
            }
            if (!op->encrypt && k == pieces - 1) {
                memcpy(op->last, s->bounce + n - AES_BLOCK, AES_BLOCK);
            }
            if ((ret = aes_set_iv(s, op, piece_iv)) < 0) {
                return ret;
            }
        }
        if ((ret = aes_crypt(s, op, s->bounce, s->bounce, n)) < 0 ||
            (ret = aes_dma_out(s, op, op->dst + off, s->bounce, n)) < 0) {
            return ret;
        }
    }
    return 0;
}

static bool aes_cmd_data(struct aes_engine *s)
{
    uint32_t cmd = s->fifo[0];
    unsigned kctx = AES_DATA_KEY_CTX(cmd);
    /* Reference defect 2: DATA uses its own IV context, not always context 0. */
    unsigned ivctx = AES_DATA_IV_CTX(cmd);
    struct aes_data_op op = { 0 };
    int ret;

    op.len = AES_DATA_LENGTH(cmd);
    op.src = ((uint64_t)(s->fifo[1] >> 16) << 32) | s->fifo[2];
    op.dst = ((uint64_t)(s->fifo[1] & 0xffffu) << 32) | s->fifo[3];
    op.encrypt = s->encrypt;
    op.cbc = s->mode == AES_MODE_CBC;
    if (op.len % AES_BLOCK) {
        vm_guest_error(&s->dev, "DATA: length %llu is not a multiple of 16",
                       (unsigned long long)op.len);
        return false;
    }
    if (s->key[kctx].len == 0) {
        vm_guest_error(&s->dev, "DATA: key context %u holds no key", kctx);
        return false;
    }
    if (op.len == 0) {
        return true;
    }
    op.cipher = aes_cipher(s, kctx);
    if (!op.cipher) {
        return false;
    }
    memcpy(op.iv, s->iv[ivctx], AES_BLOCK);
    if (aes_ranges_overlap(op.src, op.dst, op.len) && op.dst > op.src) {
        ret = aes_data_backward(s, &op);
    } else {
        ret = aes_data_forward(s, &op);
    }
    if (ret < 0) {
        return false;
    }
    if (op.cbc && s->opts.cbc_chain_iv) {
        memcpy(s->iv[ivctx], op.last, AES_BLOCK);
    }
    return true;
}

/* The other commands. */

static bool aes_cmd_key(struct aes_engine *s)
{
    uint32_t cmd = s->fifo[0];
    unsigned select = AES_KEY_SELECT(cmd), mode = AES_KEY_MODE(cmd);
    struct aes_key key = { 0 };

    if (mode != AES_MODE_ECB && mode != AES_MODE_CBC) {
        vm_guest_error(&s->dev, "KEY: block mode %u is not ECB (0) or CBC (1)", mode);
        return false;
    }
    if (AES_KEY_LENGTH(cmd) == AES_KEY_LENGTH_512) {
        vm_guest_error(&s->dev, "KEY: 512-bit keys are not supported");
        return false;
    }
    if (select) {
        if (s->builtin[select].len == 0) {
            vm_guest_error(&s->dev, "KEY: built-in key %u has no value on this host", select);
            return false;
        }
        key = s->builtin[select];
    } else {
        key.len = aes_key_len_bytes(AES_KEY_LENGTH(cmd));
        for (unsigned i = 0; i < key.len / 4; i++) {
            vm_st_le32(key.bytes + 4 * i, s->fifo[1 + i]);
        }
    }
    aes_set_key(s, AES_KEY_CTX(cmd), &key);
    OPENSSL_cleanse(&key, sizeof(key));
    s->encrypt = (cmd & AES_KEY_ENCRYPT) != 0;
    s->mode = mode;
    return true;
}

static bool aes_cmd_iv(struct aes_engine *s)
{
    /* Reference defect 1: the IV context is bits 27:26. */
    unsigned ctx = AES_IV_CTX(s->fifo[0]);

    for (unsigned i = 0; i < 4; i++) {
        vm_st_le32(s->iv[ctx] + 4 * i, s->fifo[1 + i]);
    }
    return true;
}

static bool aes_cmd_store_iv(struct aes_engine *s)
{
    uint32_t cmd = s->fifo[0];
    unsigned ctx = AES_IV_CTX(cmd); /* reference defect 1, as for IV */
    uint64_t gpa = ((uint64_t)AES_STORE_IV_ADDR_HI(cmd) << 32) | s->fifo[1];
    int ret = vm_dma_write(&s->dev, gpa, s->iv[ctx], AES_BLOCK);

    if (ret < 0) {
        vm_guest_error(&s->dev, "STORE_IV: DMA write of 16 bytes at 0x%llx failed: %s",
                       (unsigned long long)gpa, vmapple_strerror(ret));
        return false;
    }
    return true;
}

static bool aes_cmd_flag(struct aes_engine *s)
{
    uint32_t cmd = s->fifo[0];

    /* Commands run as they arrive, so the flag is reached at once. */
    if (cmd & AES_FLAG_RAISE) {
        s->irq_status |= AES_IRQ_FLAG;
    }
    s->flag_info = AES_FLAG_INFO(cmd);
    return true;
}

static bool aes_execute(struct aes_engine *s)
{
    unsigned op = AES_CMD_OPCODE(s->fifo[0]);

    switch (op) {
    case AES_OP_KEY:
        return aes_cmd_key(s);
    case AES_OP_IV:
        return aes_cmd_iv(s);
    case AES_OP_DATA:
        return aes_cmd_data(s);
    case AES_OP_STORE_IV:
        return aes_cmd_store_iv(s);
    case AES_OP_FLAG:
        return aes_cmd_flag(s);
    case AES_OP_DSB:
    case AES_OP_SKG:
    case AES_OP_WRITE_REG:
        vm_guest_error(&s->dev, "command %s (0x%08x) is not implemented", aes_op_names[op],
                       s->fifo[0]);
        return false;
    default:
        vm_guest_error(&s->dev, "unknown command 0x%08x (opcode 0x%x)", s->fifo[0], op);
        return false;
    }
}

static void aes_fifo_clear(struct aes_engine *s)
{
    /* The FIFO may have held key words. */
    OPENSSL_cleanse(s->fifo, sizeof(s->fifo));
    s->fifo_count = 0;
    s->fifo_overflow = 0;
}

static void aes_fifo_push(struct aes_engine *s, uint32_t word)
{
    unsigned need = aes_cmd_words(s->fifo_count ? s->fifo[0] : word);

    if (s->fifo_count < AES_FIFO_WORDS) {
        s->fifo[s->fifo_count++] = word;
    } else {
        /*
         * Reference defect 4: only a 512-bit KEY (17 words) outgrows the
         * FIFO. Flag it now, swallow the rest of its words so the command
         * stream stays in step, and drop it when it is complete.
         */
        if (s->fifo_overflow == 0) {
            vm_guest_error(&s->dev, "FIFO full: command 0x%08x needs %u words, the FIFO holds %u",
                           s->fifo[0], need, AES_FIFO_WORDS);
            s->irq_status |= AES_IRQ_INVALID_CMD;
        }
        s->fifo_overflow++;
    }
    if (s->fifo_count + s->fifo_overflow < need) {
        return;
    }
    /* Reference defect 3: a failed command is dropped, never left at the head. */
    if (s->fifo_overflow == 0 && !aes_execute(s)) {
        s->irq_status |= AES_IRQ_INVALID_CMD;
    }
    aes_fifo_clear(s);
}

/* Registers. */

__attribute__((cold, noinline)) static uint32_t aes_reg_read_unknown(struct aes_engine *s,
                                                                     uint64_t offset)
{
    if (offset == AES_REG_FIFO) {
        vm_guest_error(&s->dev, "read of the write-only FIFO");
    } else {
        vm_guest_error(&s->dev, "read of unknown register 0x%03llx", (unsigned long long)offset);
    }
    return 0;
}

/* Inlined into aes_read(): guests poll IRQ_STATUS. */
static inline uint32_t aes_reg_read(struct aes_engine *s, uint64_t offset)
{
    switch (offset) {
    case AES_REG_STATUS:
        return AES_STATUS_VALUE;
    case AES_REG_IRQ_STATUS:
        return s->irq_status;
    case AES_REG_IRQ_ENABLE:
        return s->irq_enable;
    case AES_REG_WATERMARK:
        return 0;
    case AES_REG_Q_STATUS:
        return AES_Q_STATUS_VALUE;
    case AES_REG_FLAG_INFO:
        return s->flag_info;
    default:
        return aes_reg_read_unknown(s, offset);
    }
}

static void aes_reg_write(struct aes_engine *s, uint64_t offset, uint32_t value)
{
    switch (offset) {
    case AES_REG_IRQ_STATUS:
        s->irq_status &= ~value;
        break;
    case AES_REG_IRQ_ENABLE:
        s->irq_enable = value;
        break;
    case AES_REG_FIFO:
        aes_fifo_push(s, value);
        break;
    case AES_REG_STATUS:
    case AES_REG_WATERMARK:
    case AES_REG_Q_STATUS:
    case AES_REG_FLAG_INFO:
        vm_guest_error(&s->dev, "write of 0x%08x to read-only register 0x%03llx", value,
                       (unsigned long long)offset);
        return;
    default:
        vm_guest_error(&s->dev, "write of 0x%08x to unknown register 0x%03llx", value,
                       (unsigned long long)offset);
        return;
    }
    aes_update_irq(s);
}

static uint32_t aes_window2_read(struct aes_engine *s, uint64_t offset)
{
    if (offset != 0) {
        vm_guest_error(&s->dev, "read of unknown window 2 register 0x%04llx",
                       (unsigned long long)offset);
    }
    return 0;
}

static bool aes_access_ok(struct aes_engine *s, uint32_t region, uint64_t offset, uint32_t size,
                          const char *op)
{
    if (vm_likely((size == 4 || size == 8) && (offset & (size - 1)) == 0)) {
        return true;
    }
    vm_guest_error(&s->dev, "%u-byte %s at window %u offset 0x%04llx (4 or 8 bytes, aligned)", size,
                   op, region + 1, (unsigned long long)offset);
    return false;
}

__attribute__((noinline)) static int aes_read_other(struct aes_engine *s, uint32_t region,
                                                    uint64_t offset, uint32_t size, uint64_t *value)
{
    uint32_t (*half)(struct aes_engine *, uint64_t) =
        region == AES_REGION_WINDOW1 ? aes_reg_read : aes_window2_read;

    *value = 0;
    if (aes_access_ok(s, region, offset, size, "read")) {
        *value = half(s, offset);
        if (size == 8) {
            *value |= (uint64_t)half(s, offset + 4) << 32;
        }
    }
    return 0;
}

static int aes_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                    uint64_t *value)
{
    struct aes_engine *s = to_aes(dev);

    if (vm_likely(region == AES_REGION_WINDOW1 && size == 4 && (offset & 3) == 0)) {
        *value = aes_reg_read(s, offset);
        return 0;
    }
    /* 8-byte reads, window 2 and bad accesses. */
    return aes_read_other(s, region, offset, size, value);
}

static int aes_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t value)
{
    struct aes_engine *s = to_aes(dev);

    if (vm_unlikely(!aes_access_ok(s, region, offset, size, "write"))) {
        return 0;
    }
    if (region == AES_REGION_WINDOW2) {
        vm_guest_error(dev, "write of 0x%llx to window 2 offset 0x%04llx",
                       (unsigned long long)value, (unsigned long long)offset);
        return 0;
    }
    aes_reg_write(s, offset, (uint32_t)value);
    if (size == 8) {
        aes_reg_write(s, offset + 4, (uint32_t)(value >> 32));
    }
    return 0;
}

/* Reset, save, load. */

static void aes_reset(vmapple_device *dev)
{
    struct aes_engine *s = to_aes(dev);

    /* Reference defect 3: reset clears the FIFO, the keys and the IVs. */
    aes_fifo_clear(s);
    for (unsigned k = 0; k < AES_KEY_CTXS; k++) {
        aes_forget_key_schedules(s, k);
    }
    OPENSSL_cleanse(s->key, sizeof(s->key));
    OPENSSL_cleanse(s->iv, sizeof(s->iv));
    s->encrypt = false;
    s->mode = AES_MODE_ECB;
    s->irq_status = 0;
    s->irq_enable = 0;
    s->flag_info = 0;
}

static int aes_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct aes_engine *s = to_aes(dev);

    vm_st_put_u32(w, s->opts.cbc_chain_iv);
    vm_st_put_bytes(w, s->builtin_digest, sizeof(s->builtin_digest));
    vm_st_put_u8(w, (uint8_t)s->fifo_count);
    vm_st_put_u8(w, (uint8_t)s->fifo_overflow);
    for (uint32_t i = 0; i < s->fifo_count; i++) {
        vm_st_put_u32(w, s->fifo[i]);
    }
    for (unsigned k = 0; k < AES_KEY_CTXS; k++) {
        vm_st_put_u8(w, (uint8_t)s->key[k].len);
        vm_st_put_bytes(w, s->key[k].bytes, AES_MAX_KEY);
    }
    vm_st_put_bytes(w, s->iv, sizeof(s->iv));
    vm_st_put_bool(w, s->encrypt);
    vm_st_put_u8(w, (uint8_t)s->mode);
    vm_st_put_u32(w, s->irq_status);
    vm_st_put_u32(w, s->irq_enable);
    vm_st_put_u32(w, s->flag_info);
    return 0;
}

/* 0 (no key) or an AES key length in bytes. */
static bool aes_key_len_ok(uint32_t len)
{
    return len == 0 || len == 16 || len == 24 || len == 32;
}

static bool aes_key_valid(const struct aes_key *k)
{
    if (!aes_key_len_ok(k->len)) {
        return false;
    }
    for (unsigned i = k->len; i < AES_MAX_KEY; i++) {
        if (k->bytes[i]) {
            return false;
        }
    }
    return true;
}

/* Could the engine hold this partial command? (It runs complete ones at once.) */
static bool aes_fifo_valid(const uint32_t *fifo, uint32_t count, uint32_t overflow)
{
    unsigned need;

    if (count == 0) {
        return overflow == 0;
    }
    need = aes_cmd_words(fifo[0]);
    if (count > AES_FIFO_WORDS || count + overflow >= need) {
        return false;
    }
    return overflow == 0 || count == AES_FIFO_WORDS;
}

static int aes_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct aes_engine *s = to_aes(dev);
    uint8_t digest[AES_DIGEST_LEN];
    uint32_t fifo[AES_FIFO_WORDS] = { 0 };
    struct aes_key key[AES_KEY_CTXS];
    uint8_t iv[AES_IV_CTXS][AES_BLOCK];
    uint32_t chain, count, overflow, mode, irq_status, irq_enable, flag_info;
    uint64_t levels;
    bool encrypt, ok;
    int ret = 0;

    (void)version;
    chain = vm_st_get_u32(r);
    vm_st_get_bytes(r, digest, sizeof(digest));
    count = vm_st_get_u8(r);
    overflow = vm_st_get_u8(r);
    for (uint32_t i = 0; i < count && i < AES_FIFO_WORDS; i++) {
        fifo[i] = vm_st_get_u32(r);
    }
    for (unsigned k = 0; k < AES_KEY_CTXS; k++) {
        key[k].len = vm_st_get_u8(r);
        vm_st_get_bytes(r, key[k].bytes, AES_MAX_KEY);
    }
    vm_st_get_bytes(r, iv, sizeof(iv));
    encrypt = vm_st_get_bool(r);
    mode = vm_st_get_u8(r);
    irq_status = vm_st_get_u32(r);
    irq_enable = vm_st_get_u32(r);
    flag_info = vm_st_get_u32(r);
    levels = r->irq_levels;

    if (!vm_st_complete(r) || count > AES_FIFO_WORDS) {
        ret = vm_error(dev, -EBADMSG, "load: truncated or oversized state");
    } else if (chain != s->opts.cbc_chain_iv) {
        ret =
            vm_error(dev, -EINVAL, "load: option cbc_chain_iv is %u here, the saved device had %u",
                     s->opts.cbc_chain_iv, chain);
    } else if (CRYPTO_memcmp(digest, s->builtin_digest, sizeof(digest)) != 0) {
        ret = vm_error(dev, -EINVAL,
                       "load: option builtin_keys differs from the saved device's built-in keys");
    } else if (!aes_fifo_valid(fifo, count, overflow)) {
        ret = vm_error(dev, -EBADMSG,
                       "load: FIFO of %u words (+%u overflowed) is not a pending "
                       "command",
                       count, overflow);
    } else if (!aes_key_valid(&key[0]) || !aes_key_valid(&key[1])) {
        ret = vm_error(dev, -EBADMSG, "load: a key context holds an impossible key");
    } else if (mode != AES_MODE_ECB && mode != AES_MODE_CBC) {
        ret = vm_error(dev, -EBADMSG, "load: block mode %u", mode);
    } else if ((irq_status & ~AES_IRQ_ALL) || flag_info > 0xff) {
        ret = vm_error(dev, -EBADMSG, "load: IRQ_STATUS 0x%x or FLAG_INFO 0x%x out of range",
                       irq_status, flag_info);
    } else if (levels != ((irq_status & irq_enable) != 0 ? 1u : 0u)) {
        ret = vm_error(dev, -EBADMSG, "load: interrupt level contradicts IRQ_STATUS & IRQ_ENABLE");
    }
    ok = ret == 0;
    if (ok) {
        aes_fifo_clear(s);
        memcpy(s->fifo, fifo, sizeof(fifo));
        s->fifo_count = count;
        s->fifo_overflow = overflow;
        for (unsigned k = 0; k < AES_KEY_CTXS; k++) {
            aes_set_key(s, k, &key[k]);
        }
        memcpy(s->iv, iv, sizeof(iv));
        s->encrypt = encrypt;
        s->mode = mode;
        s->irq_status = irq_status;
        s->irq_enable = irq_enable;
        s->flag_info = flag_info;
    }
    OPENSSL_cleanse(fifo, sizeof(fifo));
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

static void aes_free(struct aes_engine *s)
{
    for (unsigned k = 0; k < AES_KEY_CTXS; k++) {
        for (unsigned m = 0; m < 2; m++) {
            for (unsigned e = 0; e < 2; e++) {
                EVP_CIPHER_CTX_free(s->evp[k][m][e]);
            }
        }
    }
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    for (unsigned m = 0; m < 2; m++) {
        for (unsigned i = 0; i < 3; i++) {
            EVP_CIPHER_free(s->fetched[m][i]);
        }
    }
#endif
    free(s->bounce);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static void aes_destroy(vmapple_device *dev)
{
    aes_free(to_aes(dev));
}

static const struct vmapple_device_class aes_class = {
    .type = VMAPPLE_DEVICE_AES,
    .name = "aes",
    .state_version = 1,
    .read = aes_read,
    .write = aes_write,
    .reset = aes_reset,
    .save = aes_save,
    .load = aes_load,
    .destroy = aes_destroy,
};

/* Creation. */

static int aes_get_ciphers(struct aes_engine *s)
{
    static const char *const names[2][3] = {
        { "AES-128-ECB", "AES-192-ECB", "AES-256-ECB" },
        { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" },
    };

    for (unsigned m = 0; m < 2; m++) {
        for (unsigned i = 0; i < 3; i++) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
            /* Fetched once: OpenSSL 3 would otherwise look it up on every init. */
            s->fetched[m][i] = EVP_CIPHER_fetch(NULL, names[m][i], NULL);
            s->cipher[m][i] = s->fetched[m][i];
#else
            s->cipher[m][i] = EVP_get_cipherbyname(names[m][i]);
#endif
            if (!s->cipher[m][i]) {
                return vm_error_named("aes", NULL, -ENOTSUP, "OpenSSL libcrypto provides no %s",
                                      names[m][i]);
            }
        }
    }
    return 0;
}

static int aes_setup_builtin_keys(struct aes_engine *s)
{
    uint8_t table[VMAPPLE_AES_BUILTIN_KEYS * (1 + AES_MAX_KEY)];
    unsigned int dlen = 0;
    int ok;

    for (unsigned n = 1; n <= VMAPPLE_AES_BUILTIN_KEYS; n++) {
        const vmapple_aes_builtin_key *given = &s->opts.builtin_keys[n - 1];
        struct aes_key *k = &s->builtin[n];

        if (!aes_key_len_ok(given->length)) {
            return vm_error_named("aes", NULL, -EINVAL,
                                  "option builtin_keys[%u].length is %u; it must be 0 (default), "
                                  "16, 24 or 32",
                                  n - 1, given->length);
        }
        memset(k, 0, sizeof(*k));
        if (given->length) {
            k->len = given->length;
            memcpy(k->bytes, given->key, given->length);
        } else if (n <= 3) {
            /* The reference's placeholders for the device-unique keys. */
            k->len = 32;
            k->bytes[0] = (uint8_t)n;
        }
        table[(n - 1) * (1 + AES_MAX_KEY)] = (uint8_t)k->len;
        memcpy(&table[(n - 1) * (1 + AES_MAX_KEY) + 1], k->bytes, AES_MAX_KEY);
    }
    /* Saved in place of the keys: a blob carries no host secret, and a
     * snapshot cannot move to a host whose built-in keys differ. */
    ok = EVP_Digest(table, sizeof(table), s->builtin_digest, &dlen, EVP_sha256(), NULL);
    OPENSSL_cleanse(table, sizeof(table));
    if (!ok || dlen != AES_DIGEST_LEN) {
        return vm_error_named("aes", NULL, -ENOTSUP, "OpenSSL libcrypto provides no SHA-256");
    }
    return 0;
}

VMAPPLE_API int vmapple_aes_create(const vmapple_host_ops *ops, void *opaque,
                                   const vmapple_aes_options *opts, vmapple_device **out)
{
    struct aes_engine *s;
    int ret;

    if (!out) {
        return vm_error_named("aes", NULL, -EINVAL, "create: NULL out");
    }
    *out = NULL;
    if (!ops) {
        return vm_error_named("aes", NULL, -EINVAL, "create: NULL host ops");
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return vm_error_named("aes", NULL, -ENOMEM, "create: out of memory");
    }
    s->opts.size = sizeof(s->opts);
    ret = vm_copy_sized(&s->opts, sizeof(s->opts), opts, "aes options");
    if (ret == 0 && s->opts.cbc_chain_iv > 1) {
        ret = vm_error_named("aes", NULL, -EINVAL, "option cbc_chain_iv is %u; it must be 0 or 1",
                             s->opts.cbc_chain_iv);
    }
    if (ret == 0) {
        ret = vm_device_init(&s->dev, &aes_class, ops, opaque, aes_regions,
                             VM_ARRAY_SIZE(aes_regions), aes_irqs, VM_ARRAY_SIZE(aes_irqs));
    }
    if (ret == 0) {
        ret = vm_require_op("aes", (const void *)s->dev.ops.mem_read, "mem_read");
    }
    if (ret == 0) {
        ret = vm_require_op("aes", (const void *)s->dev.ops.mem_write, "mem_write");
    }
    if (ret == 0) {
        ret = aes_setup_builtin_keys(s);
    }
    if (ret == 0) {
        ret = aes_get_ciphers(s);
    }
    if (ret == 0) {
        s->bounce = malloc(AES_BOUNCE_SIZE);
        if (!s->bounce) {
            ret = vm_error_named("aes", NULL, -ENOMEM, "create: out of memory");
        }
    }
    if (ret < 0) {
        aes_free(s);
        return ret;
    }
    aes_reset(&s->dev);
    *out = &s->dev;
    return 0;
}
