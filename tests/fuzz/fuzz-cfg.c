/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes cfg: options from the input (layout, CPU count, strings of any
 * length up to 40, installer flag, raw numbers), then guest accesses of any
 * size and offset checked against a byte model, resets, and state blobs
 * (round trips and input-supplied blobs). Findings: sanitizer reports, a
 * creation that accepts an invalid option or refuses a valid one, an image
 * that differs from the model.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "mockhost.h"

#define IMAGE 0x10000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void take_string(struct fuzz_input *in, char *buf, const char **out, size_t *len)
{
    uint8_t n = (uint8_t)fuzz_take(in, 1);

    if (n == 0xff) {
        *out = NULL; /* default */
        *len = 0;
        return;
    }
    n %= 41;
    for (uint8_t i = 0; i < n; i++) {
        buf[i] = (char)(0x20 + fuzz_take(in, 1) % 0x5f);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    char serial[41], model[41], soc[41];
    size_t ls, lm, lc;
    vmapple_device *dev = NULL, *twin = NULL;
    uint8_t *model_img, *initial;
    void *mem;
    uint64_t msize, v;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    o.layout = (uint32_t)fuzz_take(&in, 1) % 3;
    o.nr_cpus = (uint32_t)fuzz_take(&in, 1);
    o.ecid = fuzz_take(&in, 8);
    o.ram_size = fuzz_take(&in, 8);
    o.rnd = (uint32_t)fuzz_take(&in, 4);
    o.run_installer = (uint32_t)fuzz_take(&in, 1) % 3;
    for (int i = 0; i < 6; i++) {
        o.mac_en0[i] = (uint8_t)fuzz_take(&in, 1);
        o.mac_bt0[i] = (uint8_t)fuzz_take(&in, 1);
    }
    take_string(&in, serial, &o.serial, &ls);
    take_string(&in, model, &o.model, &lm);
    take_string(&in, soc, &o.soc_name, &lc);

    bool valid = o.layout < 2 && o.nr_cpus >= 1 && o.nr_cpus <= (o.layout ? 32u : 128u) &&
                 o.run_installer < 2 && ls <= 31 && lm <= 31 && lc <= 31;
    int ret = vmapple_cfg_create(NULL, NULL, &o, &dev);
    if ((ret == 0) != valid) {
        FUZZ_FINDING("create returned %d for %s options: %s", ret, valid ? "valid" : "invalid",
                     vmapple_last_error());
    }
    if (ret != 0) {
        if (ret != -EINVAL || dev != NULL) {
            FUZZ_FINDING("create failed with %d", ret);
        }
        return 0;
    }
    if (vmapple_cfg_create(NULL, NULL, &o, &twin) != 0 ||
        vmapple_device_get_region_memory(dev, 0, &mem, &msize) != 0 || msize != IMAGE) {
        FUZZ_FINDING("setup failed");
    }
    model_img = malloc(IMAGE);
    initial = malloc(IMAGE);
    memcpy(model_img, mem, IMAGE);
    memcpy(initial, mem, IMAGE);

    for (unsigned steps = 0; fuzz_left(&in) && steps < 4096; steps++) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint32_t sz = sizes[(op >> 2) & 3];
        uint64_t off = fuzz_take(&in, 2);
        switch (op & 3) {
        case 0: {
            uint64_t val = fuzz_take(&in, 8);
            ret = vmapple_device_write(dev, 0, off, sz, val);
            if (ret != (off + sz <= IMAGE ? 0 : -EINVAL)) {
                FUZZ_FINDING("write at 0x%llx size %u returned %d", (unsigned long long)off, sz,
                             ret);
            }
            for (uint32_t b = 0; ret == 0 && b < sz; b++) {
                model_img[off + b] = (uint8_t)(val >> (8 * b));
            }
            break;
        }
        case 1:
            ret = vmapple_device_read(dev, 0, off, sz, &v);
            if (ret == 0) {
                uint64_t want = 0;
                for (uint32_t b = 0; b < sz; b++) {
                    want |= (uint64_t)model_img[off + b] << (8 * b);
                }
                if (v != want) {
                    FUZZ_FINDING("read at 0x%llx differs from the model", (unsigned long long)off);
                }
            }
            break;
        case 2: { /* round trip into the twin, or an input blob into the twin */
            size_t n = 0;
            uint8_t *blob;
            if (op & 0x80) {
                size_t len = (size_t)fuzz_take(&in, 2);
                if (len > size - in.pos) {
                    len = size - in.pos;
                }
                vmapple_device_load(twin, data + in.pos, len);
                in.pos += len;
                break;
            }
            vmapple_device_save(dev, NULL, 0, &n);
            blob = malloc(n);
            if (vmapple_device_save(dev, blob, n, &n) != 0 ||
                vmapple_device_load(twin, blob, n) != 0) {
                FUZZ_FINDING("round trip failed");
            }
            free(blob);
            void *tm;
            vmapple_device_get_region_memory(twin, 0, &tm, &msize);
            if (memcmp(tm, model_img, IMAGE) != 0) {
                FUZZ_FINDING("loaded image differs");
            }
            break;
        }
        default:
            vmapple_device_reset(dev);
            memcpy(model_img, initial, IMAGE);
            break;
        }
    }
    if (memcmp(mem, model_img, IMAGE) != 0) {
        FUZZ_FINDING("image differs from the model");
    }
    vmapple_device_reset(dev);
    if (memcmp(mem, initial, IMAGE) != 0) {
        FUZZ_FINDING("reset did not restore the initial image");
    }
    free(model_img);
    free(initial);
    vmapple_device_destroy(dev);
    vmapple_device_destroy(twin);
    return 0;
}
