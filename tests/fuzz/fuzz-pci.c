/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the PCI plumbing: config writes of every size and offset, BAR and
 * MSI-X table accesses, INTx and MSI-X requests, save/load round trips.
 * Findings: sanitizer reports; read-only identity bytes changing; DMA or
 * MSI while bus mastering is off; a state blob that does not load back.
 */
#include <errno.h>

#include "fuzz.h"
#include "mockhost.h"
#include "testpci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_identity(vmapple_device *dev)
{
    uint32_t id = 0, cls = 0;

    vmapple_device_pci_config_read(dev, 0, 4, &id);
    vmapple_device_pci_config_read(dev, 8, 4, &cls);
    if (id != 0x56781234 || cls != 0x08800003) {
        FUZZ_FINDING("read-only identity changed: %08x %08x", id, cls);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    struct mock_host *h = mock_host_new(0x70000000, 0x1000);
    vmapple_device *dev;
    static const uint32_t sizes[] = { 1, 2, 4, 3 };

    if (testpci_create(mock_host_ops(), h, (uint16_t)(fuzz_take(&in, 1) % 9), &dev) != 0) {
        FUZZ_FINDING("create failed");
    }
    while (fuzz_left(&in)) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        uint32_t sz = sizes[(op >> 4) & 3];
        uint64_t v;
        uint32_t v32;
        unsigned msi_before = h->nr_msi;
        unsigned reads_before = h->mem_reads;
        uint32_t cmd = 0;
        vmapple_device_pci_config_read(dev, 4, 2, &cmd);
        switch (op & 7) {
        case 0:
        case 1:
            /* Mostly the header and capabilities, sometimes anywhere. */
            v32 = (uint32_t)fuzz_take(&in, 2) % ((op & 8) ? 4100 : 0x80);
            vmapple_device_pci_config_write(dev, v32, sz, (uint32_t)fuzz_take(&in, 4));
            break;
        case 2:
            vmapple_device_pci_config_read(dev, (uint32_t)fuzz_take(&in, 2) % 4100, sz, &v32);
            break;
        case 3:
            vmapple_device_write(dev, 1, fuzz_take(&in, 2) % 0x4010, 1u << (op >> 6),
                                 fuzz_take(&in, 8));
            break;
        case 4:
            vmapple_device_read(dev, 1, fuzz_take(&in, 2) % 0x4010, 1u << (op >> 6), &v);
            break;
        case 5: {
            uint64_t reg = (fuzz_take(&in, 1) % 8) * 8;
            vmapple_device_write(dev, 0, reg, 8, fuzz_take(&in, 8));
            if (!(cmd & 4) && (h->nr_msi != msi_before || h->mem_reads != reads_before)) {
                FUZZ_FINDING("MSI or DMA with bus mastering off");
            }
            break;
        }
        case 6:
            vmapple_device_reset(dev);
            break;
        default: {
            uint8_t blob[16384];
            size_t n = 0;
            vmapple_device *copy;
            if (vmapple_device_save(dev, blob, sizeof(blob), &n) != 0 ||
                testpci_create(NULL, NULL, 0, &copy) != 0) {
                FUZZ_FINDING("save failed");
            }
            vmapple_device_destroy(copy);
            if (vmapple_device_load(dev, blob, n) != 0) {
                FUZZ_FINDING("own state does not load back: %s", vmapple_device_last_error(dev));
            }
            break;
        }
        }
        check_identity(dev);
    }
    vmapple_device_destroy(dev);
    mock_host_free(h);
    return 0;
}
