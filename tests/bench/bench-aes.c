/* SPDX-License-Identifier: MIT */
/*
 * AES engine benchmarks (output format: bench.h).
 *
 * 1. DATA throughput, ECB and CBC, encrypt and decrypt, 4 KiB / 64 KiB /
 *    1 MiB, AES-256: DATA commands through the FIFO (public ABI) on guest
 *    memory the host maps (mem_map), against raw OpenSSL EVP on the same
 *    buffers in the same run (a prepared context; CBC re-sets its IV per
 *    buffer, as the device must).
 * 2. Register access: vmapple_device_read() and vmapple_bus_read() of AES
 *    IRQ_STATUS, against a bare indirect call to a trivial function.
 *
 * Each figure is the best of several rounds, the library and its limit
 * measured alternately so that both see the same machine.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define MAX_LEN  (1u << 20)
#define RAM_SIZE (2ull * MAX_LEN + 0x10000)
#define SRC      (RAM_BASE)
#define DST      (RAM_BASE + MAX_LEN + 0x1000)
#define ROUNDS   5

static const uint8_t key[32] = { 0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae,
                                 0xf0, 0x85, 0x7d, 0x77, 0x81, 0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61,
                                 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4 };
static const uint8_t iv[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void fifo(vmapple_device *dev, uint32_t w)
{
    vmapple_device_write(dev, 0, 0x200, 4, w);
}

static void setup_engine(vmapple_device *dev, unsigned mode, bool encrypt)
{
    fifo(dev, 1u << 28 | 2u << 22 | (encrypt ? 1u << 20 : 0) | mode << 16);
    for (unsigned i = 0; i < 32; i += 4) {
        fifo(dev, (uint32_t)key[i] | (uint32_t)key[i + 1] << 8 | (uint32_t)key[i + 2] << 16 |
                      (uint32_t)key[i + 3] << 24);
    }
    fifo(dev, 2u << 28);
    for (unsigned i = 0; i < 16; i += 4) {
        fifo(dev, (uint32_t)iv[i] | (uint32_t)iv[i + 1] << 8 | (uint32_t)iv[i + 2] << 16 |
                      (uint32_t)iv[i + 3] << 24);
    }
}

/* Seconds for `iters` DATA commands of `len` bytes through the FIFO. */
static double time_device(vmapple_device *dev, uint32_t len, unsigned iters)
{
    uint64_t t0 = bench_now_ns();

    for (unsigned i = 0; i < iters; i++) {
        fifo(dev, 5u << 28 | len);
        fifo(dev, 0);
        fifo(dev, (uint32_t)SRC);
        fifo(dev, (uint32_t)DST);
    }
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* Seconds for the same work done by EVP directly on the same host buffers. */
static double time_openssl(EVP_CIPHER_CTX *c, bool cbc, uint8_t *in, uint8_t *out, uint32_t len,
                           unsigned iters)
{
    uint64_t t0 = bench_now_ns();
    int outl;

    for (unsigned i = 0; i < iters; i++) {
        if (cbc) {
            EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1);
        }
        EVP_CipherUpdate(c, out, &outl, in, (int)len);
    }
    bench_keep(outl);
    return (double)(bench_now_ns() - t0) / 1e9;
}

static void bench_data(void)
{
    static const uint32_t sizes[] = { 4096, 65536, MAX_LEN };
    static const char *const size_names[] = { "4k", "64k", "1m" };
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev;
    uint8_t *in = mock_ram(h, SRC, MAX_LEN), *out = mock_ram(h, DST, MAX_LEN);

    h->allow_map = true;
    if (vmapple_aes_create(mock_host_ops(), h, NULL, &dev) != 0) {
        fprintf(stderr, "bench-aes: create failed: %s\n", vmapple_last_error());
        exit(1);
    }
    for (uint32_t i = 0; i < MAX_LEN; i++) {
        in[i] = (uint8_t)(i * 131u + 7u);
    }
    for (unsigned mode = 0; mode < 2; mode++) {
        for (int enc = 1; enc >= 0; enc--) {
            EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
            EVP_CipherInit_ex(c, mode ? EVP_aes_256_cbc() : EVP_aes_256_ecb(), NULL, key, iv, enc);
            EVP_CIPHER_CTX_set_padding(c, 0);
            setup_engine(dev, mode, enc);
            for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
                uint32_t len = sizes[s];
                unsigned iters = (unsigned)((256u << 20) / len);
                double best_dev = 1e30, best_ssl = 1e30;
                char name[64];

                time_device(dev, len, iters / 16 + 1); /* warm up */
                time_openssl(c, mode, in, out, len, iters / 16 + 1);
                for (int r = 0; r < ROUNDS; r++) {
                    double td = time_device(dev, len, iters);
                    double ts = time_openssl(c, mode, in, out, len, iters);
                    best_dev = td < best_dev ? td : best_dev;
                    best_ssl = ts < best_ssl ? ts : best_ssl;
                }
                snprintf(name, sizeof(name), "aes-data-%s-%s-%s", mode ? "cbc" : "ecb",
                         enc ? "enc" : "dec", size_names[s]);
                bench_report(name, (double)len * iters / best_dev / 1e6, "MB/s",
                             (double)len * iters / best_ssl / 1e6);
            }
            EVP_CIPHER_CTX_free(c);
        }
    }
    {
        uint64_t v = 0;
        vmapple_device_read(dev, 0, 0x18, 4, &v);
        if (v != 0) {
            fprintf(stderr, "bench-aes: a DATA command failed (IRQ_STATUS 0x%llx)\n",
                    (unsigned long long)v);
            exit(1);
        }
    }
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* The physical limit of a register access: one indirect call. */
__attribute__((noinline)) static int trivial_read(void *opaque, uint64_t offset, uint32_t size,
                                                  uint64_t *value)
{
    (void)opaque;
    (void)size;
    *value = offset;
    return 0;
}

static int (*volatile indirect)(void *, uint64_t, uint32_t, uint64_t *) = trivial_read;

static void bench_registers(void)
{
    const unsigned iters = 20000000;
    struct mock_host *h = mock_host_new(RAM_BASE, 0x1000);
    vmapple_device *dev;
    vmapple_bus *bus;
    double best_call = 1e30, best_dev = 1e30, best_bus = 1e30;
    uint64_t v = 0, sum = 0;

    if (vmapple_aes_create(mock_host_ops(), h, NULL, &dev) != 0 || vmapple_bus_create(&bus) != 0 ||
        vmapple_bus_map_device(bus, dev) != 0) {
        fprintf(stderr, "bench-aes: setup failed: %s\n", vmapple_last_error());
        exit(1);
    }
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = bench_now_ns();
        int (*fn)(void *, uint64_t, uint32_t, uint64_t *);
        for (unsigned i = 0; i < iters; i++) {
            fn = indirect;
            fn(dev, 0x18, 4, &v);
            sum += v;
        }
        uint64_t t1 = bench_now_ns();
        for (unsigned i = 0; i < iters; i++) {
            vmapple_device_read(dev, 0, 0x18, 4, &v);
            sum += v;
        }
        uint64_t t2 = bench_now_ns();
        for (unsigned i = 0; i < iters; i++) {
            vmapple_bus_read(bus, 0x30220018, 4, &v);
            sum += v;
        }
        uint64_t t3 = bench_now_ns();
        double c = (double)(t1 - t0) / iters, d = (double)(t2 - t1) / iters,
               b = (double)(t3 - t2) / iters;
        best_call = c < best_call ? c : best_call;
        best_dev = d < best_dev ? d : best_dev;
        best_bus = b < best_bus ? b : best_bus;
    }
    bench_keep(sum);
    bench_report("aes-reg-read-device-irq-status", best_dev, "ns/access", best_call);
    bench_report("aes-reg-read-bus-irq-status", best_bus, "ns/access", best_call);
    vmapple_bus_destroy(bus);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

int main(void)
{
    bench_registers();
    bench_data();
    return 0;
}
