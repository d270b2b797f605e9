/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes pvpanic: the supported set from the input, then writes and reads
 * of every size and offset, checked against a model of the counts and the
 * host callback; state blobs from the input. Findings: sanitizer reports,
 * counts or callbacks that differ from the model, reads that do not return
 * the supported set.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "mockhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t cb_calls, cb_bits[3];

static void on_event(void *opaque, uint32_t events)
{
    (void)opaque;
    if (events == 0 || (events & ~7u)) {
        FUZZ_FINDING("callback with events 0x%x", events);
    }
    cb_calls++;
    for (int b = 0; b < 3; b++) {
        cb_bits[b] += (events >> b) & 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(0, 16);
    vmapple_pvpanic_options o = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_pvpanic_counts c = VMAPPLE_PVPANIC_COUNTS_INIT;
    vmapple_device *dev;
    uint64_t want[3] = { 0 }, calls = 0, unsupported = 0, v;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };

    o.events = (uint32_t)fuzz_take(&in, 1) % 8;
    o.event = on_event;
    cb_calls = 0;
    memset(cb_bits, 0, sizeof(cb_bits));
    if (vmapple_pvpanic_create(mock_host_ops(), h, &o, &dev) != 0) {
        FUZZ_FINDING("create failed");
    }
    uint32_t supported = o.events ? o.events : 3;

    for (unsigned steps = 0; fuzz_left(&in) && steps < 4096; steps++) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint32_t sz = sizes[(op >> 2) & 3];
        uint64_t off = (op >> 4) & 3;
        bool fits = off + sz <= 2;
        int ret;
        switch (op & 3) {
        case 0:
        case 1: {
            uint64_t val = fuzz_take(&in, sz);
            ret = vmapple_device_write(dev, 0, off, sz, val);
            if (ret != (fits ? 0 : -EINVAL)) {
                FUZZ_FINDING("write returned %d", ret);
            }
            if (fits) {
                calls += (val & supported) != 0;
                unsupported += (val & ~(uint64_t)supported) != 0;
                for (int b = 0; b < 3; b++) {
                    want[b] += ((val & supported) >> b) & 1;
                }
            }
            break;
        }
        case 2:
            ret = vmapple_device_read(dev, 0, off, sz, &v);
            if (ret != (fits ? 0 : -EINVAL) || (fits && v != supported)) {
                FUZZ_FINDING("read returned %d value 0x%llx", ret, (unsigned long long)v);
            }
            break;
        default: {
            /* An input blob: only a valid one may change the counts. */
            size_t len = (size_t)fuzz_take(&in, 1);
            if (len > size - in.pos) {
                len = size - in.pos;
            }
            if (vmapple_device_load(dev, data + in.pos, len) == 0) {
                vmapple_pvpanic_get_counts(dev, &c);
                want[0] = c.panicked;
                want[1] = c.crash_loaded;
                want[2] = c.shutdown;
                unsupported = c.unsupported_writes;
            }
            in.pos += len;
            break;
        }
        }
    }
    vmapple_pvpanic_get_counts(dev, &c);
    if (c.panicked != want[0] || c.crash_loaded != want[1] || c.shutdown != want[2] ||
        c.unsupported_writes != unsupported || c.supported != supported) {
        FUZZ_FINDING("counts differ from the model");
    }
    if (cb_calls != calls) {
        FUZZ_FINDING("%llu callbacks, model %llu", (unsigned long long)cb_calls,
                     (unsigned long long)calls);
    }
    if (h->nr_log > 10 + 64) {
        FUZZ_FINDING("%u log lines", h->nr_log);
    }
    vmapple_device_destroy(dev);
    mock_host_free(h);
    return 0;
}
