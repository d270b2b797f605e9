/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes virtio-blk through its registers: BAR0 (common config, ISR, device
 * config, notifications), the MSI-X BAR, PCI config space (with the PCI
 * config access window), guest RAM pokes (rings, descriptors, requests),
 * resets and save/load round trips, in synchronous mode.
 *
 * Input: u8 set-up (bit 0 MSI-X, bit 1 read-only, bit 2 mem_map, bit 3 short
 * mappings, bit 4 no indirect/event idx), then operations:
 *   0 BAR0 write   u16 offset, u8 size code, u64 value
 *   1 BAR0 read    u16 offset, u8 size code
 *   2 config write u16 offset, u8 size code, u32 value
 *   3 config read  u16 offset, u8 size code
 *   4 RAM write    u16 offset, u8 length, bytes
 *   5 MSI-X write  u16 offset, u8 size code, u64 value
 *   6 reset        7 save, load into a fresh device, continue with it
 * Findings: sanitizer reports; the identity changing; a write to a read-only
 * volume; a wrapping access; DMA while bus mastering is off; a state blob that
 * does not load back.
 */
#include <errno.h>

#include "fuzz.h"
#include "membd.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x10000ull
#define VOL_SIZE 0x10000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vmapple_device *make(struct mock_host *h, vmapple_blockdev *bd, uint8_t setup)
{
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    vmapple_device *dev;

    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
    o.blockdev = bd;
    o.queue_size = 16;
    o.msix_vectors = (setup & 1) ? 4 : 0;
    o.flags = ((setup & 2) ? VMAPPLE_VIRTIO_BLK_READ_ONLY : 0) |
              ((setup & 16) ? VMAPPLE_VIRTIO_BLK_NO_INDIRECT | VMAPPLE_VIRTIO_BLK_NO_EVENT_IDX : 0);
    o.serial = "FUZZ";
    if (vmapple_virtio_blk_create(mock_host_ops(), h, &o, &dev) != 0) {
        FUZZ_FINDING("create: %s", vmapple_last_error());
    }
    return dev;
}

static void check_identity(vmapple_device *dev)
{
    uint32_t id = 0, cls = 0;

    vmapple_device_pci_config_read(dev, 0, 4, &id);
    vmapple_device_pci_config_read(dev, 8, 4, &cls);
    if (id != 0x1a00106b || cls != 0x01800001) {
        FUZZ_FINDING("identity changed: %08x %08x", id, cls);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct membd mb;
    vmapple_blockdev *bd = membd_open(&mb, VOL_SIZE, 0, false);
    uint8_t setup = (uint8_t)fuzz_take(&in, 1);
    vmapple_device *dev = make(h, bd, setup);

    h->allow_map = setup & 4;
    h->map_chunk = (setup & 8) ? 100 : 0;
    while (fuzz_left(&in)) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint32_t off = (uint32_t)fuzz_take(&in, 2);
        uint32_t sz = sizes[fuzz_take(&in, 1) % 4];
        unsigned reads = h->mem_reads, writes = h->mem_writes, maps = h->maps_total;
        uint32_t cmd = 0, v32;
        uint64_t v;

        vmapple_device_pci_config_read(dev, 4, 2, &cmd);
        switch (op % 8) {
        case 0:
            v = fuzz_take(&in, 8);
            vmapple_device_write(dev, 0, (off % 0x4000) & ~(sz - 1), sz, v);
            break;
        case 1:
            vmapple_device_read(dev, 0, (off % 0x4000) & ~(sz - 1), sz, &v);
            break;
        case 2:
            v32 = (uint32_t)fuzz_take(&in, 4);
            if (sz <= 4) {
                vmapple_device_pci_config_write(dev, off % 0x1000, sz, v32);
            }
            break;
        case 3:
            if (sz <= 4) {
                vmapple_device_pci_config_read(dev, off % 0x1000, sz, &v32);
            }
            break;
        case 4: {
            uint32_t len = sz * 4;
            for (uint32_t i = 0; i < len; i++) {
                h->ram[(off + i) % RAM_SIZE] = (uint8_t)fuzz_take(&in, 1);
            }
            break;
        }
        case 5:
            v = fuzz_take(&in, 8);
            if (vmapple_device_count_regions(dev) > 1) {
                vmapple_device_write(dev, 1, (off % 0x1000) & ~(sz - 1), sz, v);
            }
            break;
        case 6:
            vmapple_device_reset(dev);
            break;
        default: {
            uint8_t blob[32768];
            size_t n = 0;
            vmapple_device *copy;
            if (vmapple_device_save(dev, blob, sizeof(blob), &n) != 0) {
                FUZZ_FINDING("save: %s", vmapple_device_last_error(dev));
            }
            copy = make(h, bd, setup);
            if (vmapple_device_load(copy, blob, n) != 0) {
                FUZZ_FINDING("own state does not load back: %s", vmapple_device_last_error(copy));
            }
            vmapple_device_destroy(dev);
            dev = copy;
            break;
        }
        }
        if (!(cmd & 4) && op % 8 != 2 && op % 8 != 6 && op % 8 != 7 &&
            (h->mem_reads != reads || h->mem_writes != writes || h->maps_total != maps)) {
            FUZZ_FINDING("DMA with bus mastering off");
        }
        check_identity(dev);
    }
    if ((setup & 2) && (mb.writes || mb.discards || mb.write_zeroes)) {
        FUZZ_FINDING("a read-only volume was written");
    }
    if (h->wrapping_accesses) {
        FUZZ_FINDING("%u wrapping accesses", h->wrapping_accesses);
    }
    vmapple_device_destroy(dev);
    if (h->maps_live) {
        FUZZ_FINDING("%u mappings leaked", h->maps_live);
    }
    vmapple_blockdev_release(bd);
    membd_free(&mb);
    mock_host_free(h);
    return 0;
}
