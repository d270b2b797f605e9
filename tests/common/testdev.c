/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "state.h"
#include "testdev.h"

struct testdev {
    vmapple_device dev;
    struct testdev_options opts;
    uint64_t scratch, src, dst, len, status;
    uint8_t mem[0x1000];
};

static const vmapple_region_info testdev_regions[] = {
    { "regs", 0x100, TESTDEV_BASE, VMAPPLE_REGION_MMIO, UINT32_MAX },
    { "mem", 0x1000, VMAPPLE_NO_BASE, VMAPPLE_REGION_RAM, UINT32_MAX },
};

static const vmapple_irq_info testdev_irqs[] = {
    { "line0", 0x30, VMAPPLE_IRQ_LEVEL },
    { "line1", 0x31, VMAPPLE_IRQ_LEVEL },
};

static struct testdev *to_testdev(vmapple_device *dev)
{
    return vm_container_of(dev, struct testdev, dev);
}

static int testdev_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                        uint64_t *value)
{
    struct testdev *t = to_testdev(dev);
    uint64_t v;

    if (region == 1) {
        *value = vm_ld_le(t->mem + offset, size);
        return 0;
    }
    switch (offset & ~7ull) {
    case 0x00:
        v = t->scratch;
        break;
    case 0x10:
        v = t->src;
        break;
    case 0x18:
        v = t->dst;
        break;
    case 0x20:
        v = t->len;
        break;
    case 0x30:
        v = t->status;
        break;
    default:
        vm_guest_error(dev, "read of unknown register 0x%llx", (unsigned long long)offset);
        v = 0;
        break;
    }
    *value = (v >> ((offset & 7) * 8)) & vm_size_mask(size);
    return 0;
}

static void testdev_go(struct testdev *t)
{
    uint8_t *buf;
    int ret;

    if (t->len > 0x10000) {
        t->status = (uint64_t)-EINVAL;
        vm_guest_error(&t->dev, "DMA length %llu over the limit", (unsigned long long)t->len);
        return;
    }
    buf = malloc(t->len ? t->len : 1);
    if (!buf) {
        t->status = (uint64_t)-ENOMEM;
        return;
    }
    ret = vm_dma_read(&t->dev, t->src, buf, t->len);
    if (ret == 0) {
        ret = vm_dma_write(&t->dev, t->dst, buf, t->len);
    }
    t->status = (uint64_t)(int64_t)ret;
    free(buf);
}

static int testdev_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                         uint64_t value)
{
    struct testdev *t = to_testdev(dev);

    if (region == 1) {
        vm_st_le(t->mem + offset, size, value);
        return 0;
    }
    if (size != 8 || (offset & 7)) {
        vm_guest_error(dev, "%u-byte write at 0x%llx", size, (unsigned long long)offset);
        return 0;
    }
    switch (offset) {
    case 0x00:
        t->scratch = value;
        break;
    case 0x08:
        vm_irq_set(dev, 0, value & 1);
        vm_irq_set(dev, 1, value & 2);
        break;
    case 0x10:
        t->src = value;
        break;
    case 0x18:
        t->dst = value;
        break;
    case 0x20:
        t->len = value;
        break;
    case 0x28:
        testdev_go(t);
        break;
    case 0x38:
        dev->dma_enabled = value != 0;
        break;
    default:
        vm_guest_error(dev, "write of unknown register 0x%llx", (unsigned long long)offset);
        break;
    }
    return 0;
}

static void testdev_reset(vmapple_device *dev)
{
    struct testdev *t = to_testdev(dev);

    t->scratch = t->opts.scratch_reset;
    t->src = t->dst = t->len = t->status = 0;
    memset(t->mem, 0, sizeof(t->mem));
    dev->dma_enabled = true;
}

static int testdev_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct testdev *t = to_testdev(dev);

    vm_st_put_u64(w, t->scratch);
    vm_st_put_u64(w, t->src);
    vm_st_put_u64(w, t->dst);
    vm_st_put_u64(w, t->len);
    vm_st_put_u64(w, t->status);
    vm_st_put_bool(w, dev->dma_enabled);
    vm_st_put_bytes(w, t->mem, sizeof(t->mem));
    return 0;
}

static int testdev_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct testdev *t = to_testdev(dev);
    uint64_t scratch, src, dst, len, status;
    bool dma;
    uint8_t mem[0x1000];

    (void)version;
    scratch = vm_st_get_u64(r);
    src = vm_st_get_u64(r);
    dst = vm_st_get_u64(r);
    len = vm_st_get_u64(r);
    status = vm_st_get_u64(r);
    dma = vm_st_get_bool(r);
    vm_st_get_bytes(r, mem, sizeof(mem));
    if (!vm_st_complete(r)) {
        return vm_error(dev, -EBADMSG, "load: truncated or oversized state");
    }
    t->scratch = scratch;
    t->src = src;
    t->dst = dst;
    t->len = len;
    t->status = status;
    dev->dma_enabled = dma;
    memcpy(t->mem, mem, sizeof(mem));
    return 0;
}

static void testdev_destroy(vmapple_device *dev)
{
    free(to_testdev(dev));
}

static int testdev_region_memory(vmapple_device *dev, uint32_t region, void **host, uint64_t *size)
{
    struct testdev *t = to_testdev(dev);

    (void)region;
    *host = t->mem;
    *size = sizeof(t->mem);
    return 0;
}

static const struct vmapple_device_class testdev_class = {
    .type = TESTDEV_TYPE,
    .name = "testdev",
    .state_version = 2,
    .read = testdev_read,
    .write = testdev_write,
    .reset = testdev_reset,
    .save = testdev_save,
    .load = testdev_load,
    .destroy = testdev_destroy,
    .region_memory = testdev_region_memory,
};

int testdev_create(const vmapple_host_ops *ops, void *opaque, const struct testdev_options *opts,
                   vmapple_device **out)
{
    struct testdev *t;
    int ret;

    if (!out) {
        return vm_error(NULL, -EINVAL, "testdev: NULL out");
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        return -ENOMEM;
    }
    t->opts.size = sizeof(t->opts);
    t->opts.scratch_reset = 0x5a5a;
    ret = vm_copy_sized(&t->opts, sizeof(t->opts), opts, "testdev options");
    if (ret == 0) {
        ret = vm_device_init(&t->dev, &testdev_class, ops, opaque, testdev_regions,
                             VM_ARRAY_SIZE(testdev_regions), testdev_irqs,
                             VM_ARRAY_SIZE(testdev_irqs));
    }
    if (ret < 0) {
        free(t);
        return ret;
    }
    testdev_reset(&t->dev);
    *out = &t->dev;
    return 0;
}
