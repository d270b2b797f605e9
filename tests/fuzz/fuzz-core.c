/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the core: state blobs into vmapple_device_load(), then accesses
 * through the bus, all driven by the input. Findings: crashes, sanitizer
 * reports, DMA outside guest RAM, a device that stops working.
 */
#include <errno.h>

#include "fuzz.h"
#include "mockhost.h"
#include "testdev.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x10000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_device *dev;
    vmapple_bus *bus;
    uint64_t v;
    size_t blob_len;

    if (testdev_create(mock_host_ops(), h, NULL, &dev) != 0 || vmapple_bus_create(&bus) != 0) {
        FUZZ_FINDING("setup failed");
    }
    vmapple_bus_map_device(bus, dev);
    h->guard_writes = true;
    h->guard_lo = RAM_BASE;
    h->guard_hi = RAM_BASE + RAM_SIZE;

    /* First byte: how much of the input is a state blob. */
    blob_len = (size_t)fuzz_take(&in, 2);
    if (blob_len > size - in.pos) {
        blob_len = size - in.pos;
    }
    vmapple_device_load(dev, data + in.pos, blob_len);
    in.pos += blob_len;

    while (fuzz_left(&in)) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint64_t addr = TESTDEV_BASE + fuzz_take(&in, 2) % 0x120;
        uint32_t sz = 1u << (op & 3);
        if (op & 0x80) {
            vmapple_bus_write(bus, addr, sz, fuzz_take(&in, 8));
        } else {
            vmapple_bus_read(bus, addr, sz, &v);
        }
    }
    if (h->stray_writes || h->wrapping_accesses || h->maps_live) {
        FUZZ_FINDING("stray %u wrapping %u live maps %u", h->stray_writes, h->wrapping_accesses,
                     h->maps_live);
    }
    if (vmapple_device_write(dev, 0, 0, 8, 42) != 0 || vmapple_device_read(dev, 0, 0, 8, &v) != 0 ||
        v != 42) {
        FUZZ_FINDING("device stopped working");
    }
    vmapple_bus_destroy(bus);
    vmapple_device_destroy(dev);
    mock_host_free(h);
    return 0;
}
