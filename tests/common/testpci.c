/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci.h"
#include "testpci.h"

struct testpci {
    vmapple_device dev;
    struct vm_pci_function pci;
    uint32_t scratch;
    uint64_t src, dst, len, result;
    int vendor_cap;
};

static const vmapple_region_info testpci_regions[] = {
    { "bar0", 0x1000, VMAPPLE_NO_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR, 0 },
    { "bar2", 0x4000, VMAPPLE_NO_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR, 2 },
};

static const vmapple_irq_info testpci_irqs[] = {
    { "intx", VMAPPLE_NO_IRQ, VMAPPLE_IRQ_LEVEL | VMAPPLE_IRQ_PCI_INTX },
};

static struct testpci *to_testpci(vmapple_device *dev)
{
    return vm_container_of(dev, struct testpci, dev);
}

static int testpci_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                        uint64_t *value)
{
    struct testpci *t = to_testpci(dev);

    if (region == 1) {
        vm_pci_msix_mmio_read(&t->pci, offset, size, value);
        return 0;
    }
    switch (offset) {
    case 0x00:
        *value = t->scratch;
        break;
    case 0x30:
        *value = t->result;
        break;
    default:
        *value = 0;
        break;
    }
    return 0;
}

static int testpci_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                         uint64_t value)
{
    struct testpci *t = to_testpci(dev);
    uint8_t buf[256];
    int ret;

    if (region == 1) {
        vm_pci_msix_mmio_write(&t->pci, offset, size, value);
        return 0;
    }
    switch (offset) {
    case 0x00:
        t->scratch = (uint32_t)value;
        break;
    case 0x04:
        vm_pci_set_intx(&t->pci, value != 0);
        break;
    case 0x08:
        vm_pci_msix_notify(&t->pci, (uint16_t)value);
        break;
    case 0x0c:
        vm_pci_set16(&t->pci, PCI_STATUS,
                     vm_pci_get16(&t->pci, PCI_STATUS) | ((uint16_t)value & PCI_STATUS_W1C));
        break;
    case 0x10:
        t->src = value;
        break;
    case 0x18:
        t->dst = value;
        break;
    case 0x20:
        t->len = value > sizeof(buf) ? sizeof(buf) : value;
        break;
    case 0x28:
        ret = vm_dma_read(dev, t->src, buf, t->len);
        if (ret == 0) {
            ret = vm_dma_write(dev, t->dst, buf, t->len);
        }
        t->result = (uint64_t)(int64_t)ret;
        break;
    default:
        break;
    }
    (void)size;
    return 0;
}

static void testpci_reset(vmapple_device *dev)
{
    struct testpci *t = to_testpci(dev);

    t->scratch = 0;
    t->src = t->dst = t->len = t->result = 0;
    vm_pci_reset(&t->pci);
}

static int testpci_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct testpci *t = to_testpci(dev);

    vm_pci_save(&t->pci, w);
    vm_st_put_u32(w, t->scratch);
    return 0;
}

static int testpci_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct testpci *t = to_testpci(dev);
    struct vm_pci_snapshot *snap;
    uint32_t scratch;
    int ret;

    (void)version;
    ret = vm_pci_load_parse(&t->pci, r, &snap);
    if (ret < 0) {
        return ret;
    }
    scratch = vm_st_get_u32(r);
    if (!vm_st_complete(r)) {
        vm_pci_snapshot_free(snap);
        return vm_error(dev, -EBADMSG, "load: truncated or oversized state");
    }
    vm_pci_load_commit(&t->pci, snap);
    t->scratch = scratch;
    return 0;
}

static void testpci_destroy(vmapple_device *dev)
{
    struct testpci *t = to_testpci(dev);

    vm_pci_release(&t->pci);
    free(t);
}

static int testpci_config_read(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t *value)
{
    return vm_pci_config_read(&to_testpci(dev)->pci, offset, size, value);
}

static int testpci_config_write(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t value)
{
    return vm_pci_config_write(&to_testpci(dev)->pci, offset, size, value);
}

static const struct vmapple_device_class testpci_class = {
    .type = TESTPCI_TYPE,
    .name = "testpci",
    .state_version = 1,
    .read = testpci_read,
    .write = testpci_write,
    .reset = testpci_reset,
    .save = testpci_save,
    .load = testpci_load,
    .destroy = testpci_destroy,
    .config_read = testpci_config_read,
    .config_write = testpci_config_write,
};

int testpci_create(const vmapple_host_ops *ops, void *opaque, uint16_t msix_vectors,
                   vmapple_device **out)
{
    struct vm_pci_ids ids = { 0x1234, 0x5678, 0xaaaa, 0xbbbb, 0x088000, 3, 1 };
    struct testpci *t = calloc(1, sizeof(*t));
    int ret;

    if (!t) {
        return -ENOMEM;
    }
    ret = vm_device_init(&t->dev, &testpci_class, ops, opaque, testpci_regions, 2, testpci_irqs, 1);
    if (ret < 0) {
        free(t);
        return ret;
    }
    vm_pci_init(&t->pci, &t->dev, &ids, 0);
    if (vm_pci_add_bar(&t->pci, 0, 0, 0x1000, 0) < 0 ||
        vm_pci_add_bar(&t->pci, 2, 1, 0x4000, VM_PCI_BAR_64 | VM_PCI_BAR_PREFETCH) < 0) {
        abort();
    }
    t->vendor_cap = vm_pci_add_capability(&t->pci, PCI_CAP_ID_VNDR, 16);
    vm_pci_set_wmask(&t->pci, (uint32_t)t->vendor_cap + 4, 4, 0xffffffff);
    if (msix_vectors && vm_pci_msix_init(&t->pci, msix_vectors, 2, 0x0, 0x800) < 0) {
        vm_pci_release(&t->pci);
        free(t);
        return -EINVAL;
    }
    vm_pci_finalize(&t->pci);
    *out = &t->dev;
    return 0;
}

int testpci_vendor_cap(vmapple_device *dev)
{
    return to_testpci(dev)->vendor_cap;
}
