/* SPDX-License-Identifier: MIT */
/* The generic device object: creation plumbing, the public entry points,
 * guest-memory and interrupt helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

int vm_copy_sized(void *dst, size_t known, const void *src, const char *what)
{
    uint32_t given;
    const uint8_t *extra;

    if (!src) {
        return 0;
    }
    memcpy(&given, src, sizeof(given));
    if (given < sizeof(uint32_t)) {
        return vm_error(NULL, -EINVAL, "%s: size field is %u; set it with the _INIT macro", what,
                        given);
    }
    if (given > known) {
        /* A newer caller: harmless only if it left every newer field zero. */
        extra = (const uint8_t *)src + known;
        for (size_t i = 0; i < given - known; i++) {
            if (extra[i] != 0) {
                return vm_error(NULL, -EINVAL,
                                "%s: struct is %u bytes and sets fields beyond the %zu bytes this "
                                "library (%s) knows",
                                what, given, known, VMAPPLE_VERSION_STRING);
            }
        }
        given = (uint32_t)known;
    }
    /* Keep the library's idea of the size so later reads see the defaults. */
    memcpy((uint8_t *)dst + sizeof(uint32_t), (const uint8_t *)src + sizeof(uint32_t),
           given - sizeof(uint32_t));
    return 0;
}

void vm_fill_sized(void *out, const void *full, size_t full_size)
{
    uint32_t room;

    memcpy(&room, out, sizeof(room));
    memcpy((uint8_t *)out + sizeof(uint32_t), (const uint8_t *)full + sizeof(uint32_t),
           VM_MIN((size_t)room, full_size) - sizeof(uint32_t));
}

int vm_copy_ops(void *dst, size_t known, const void *src, uint32_t *given)
{
    memcpy(given, src, sizeof(*given));
    if (*given < sizeof(uint32_t)) {
        return -EINVAL;
    }
    /* Callbacks a newer caller knows and we do not are harmless to ignore. */
    memcpy((uint8_t *)dst + sizeof(uint32_t), (const uint8_t *)src + sizeof(uint32_t),
           VM_MIN(*given, (uint32_t)known) - sizeof(uint32_t));
    return 0;
}

int vm_copy_host_ops(vmapple_host_ops *dst, const vmapple_host_ops *src, const char *devname)
{
    uint32_t given;

    *dst = (vmapple_host_ops)VMAPPLE_HOST_OPS_INIT;
    if (src && vm_copy_ops(dst, sizeof(*dst), src, &given) < 0) {
        return vm_error_named(devname, NULL, -EINVAL,
                              "host ops: size field is %u; set it with VMAPPLE_HOST_OPS_INIT",
                              given);
    }
    return 0;
}

int vm_require_op(const char *devname, const void *fn, const char *opname)
{
    if (fn) {
        return 0;
    }
    return vm_error_named(devname, NULL, -EINVAL, "host ops: %s is required by this device",
                          opname);
}

int vm_device_init(vmapple_device *dev, const struct vmapple_device_class *cls,
                   const vmapple_host_ops *ops, void *opaque, const vmapple_region_info *regions,
                   uint32_t nr_regions, const vmapple_irq_info *irqs, uint32_t nr_irqs)
{
    vmapple_host_ops copy;
    int ret = vm_copy_host_ops(&copy, ops, cls->name);

    if (ret < 0) {
        return ret;
    }
    if (nr_irqs > VM_MAX_IRQ_LINES) {
        return vm_error_named(cls->name, NULL, -EINVAL, "internal: %u interrupt lines", nr_irqs);
    }
    dev->cls = cls;
    dev->ops = copy;
    dev->opaque = opaque;
    dev->regions = regions;
    dev->nr_regions = nr_regions;
    dev->irqs = irqs;
    dev->nr_irqs = nr_irqs;
    dev->irq_levels = 0;
    dev->dma_enabled = true;
    snprintf(dev->name, sizeof(dev->name), "%s", cls->name);
    dev->last_error[0] = '\0';
    return 0;
}

VMAPPLE_API void vmapple_device_destroy(vmapple_device *dev)
{
    if (dev) {
        dev->cls->destroy(dev);
    }
}

VMAPPLE_API int vmapple_device_get_type(const vmapple_device *dev)
{
    return dev ? (int)dev->cls->type : -EINVAL;
}

VMAPPLE_API const char *vmapple_device_get_name(const vmapple_device *dev)
{
    return dev ? dev->name : "(null)";
}

VMAPPLE_API int vmapple_device_set_name(vmapple_device *dev, const char *name)
{
    size_t len;

    if (!dev || !name) {
        return vm_error(dev, -EINVAL, "set_name: NULL %s", dev ? "name" : "device");
    }
    len = vm_strnlen(name, VM_NAME_LEN);
    if (len == 0 || len >= VM_NAME_LEN) {
        return vm_error(dev, -EINVAL, "set_name: a name is 1 to %d bytes", VM_NAME_LEN - 1);
    }
    memcpy(dev->name, name, len + 1);
    return 0;
}

VMAPPLE_API const char *vmapple_device_last_error(const vmapple_device *dev)
{
    return dev ? dev->last_error : "NULL device";
}

VMAPPLE_API int vmapple_device_count_regions(const vmapple_device *dev)
{
    return dev ? (int)dev->nr_regions : -EINVAL;
}

VMAPPLE_API int vmapple_device_get_region(const vmapple_device *dev, uint32_t index,
                                          const vmapple_region_info **info)
{
    if (!dev || !info) {
        return -EINVAL;
    }
    if (index >= dev->nr_regions) {
        return -ENOENT;
    }
    *info = &dev->regions[index];
    return 0;
}

VMAPPLE_API int vmapple_device_find_region(const vmapple_device *dev, const char *name)
{
    if (!dev || !name) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < dev->nr_regions; i++) {
        if (strcmp(dev->regions[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -ENOENT;
}

VMAPPLE_API int vmapple_device_get_region_memory(vmapple_device *dev, uint32_t index, void **host,
                                                 uint64_t *size)
{
    if (!dev || !host || !size) {
        return vm_error(dev, -EINVAL, "region_memory: NULL argument");
    }
    if (index >= dev->nr_regions) {
        return vm_error(dev, -ENOENT, "region_memory: no region %u (the device has %u)", index,
                        dev->nr_regions);
    }
    if (!(dev->regions[index].flags & VMAPPLE_REGION_RAM) || !dev->cls->region_memory) {
        return vm_error(dev, -ENOTSUP, "region_memory: region %s is not memory",
                        dev->regions[index].name);
    }
    return dev->cls->region_memory(dev, index, host, size);
}

VMAPPLE_API int vmapple_device_count_irqs(const vmapple_device *dev)
{
    return dev ? (int)dev->nr_irqs : -EINVAL;
}

VMAPPLE_API int vmapple_device_get_irq(const vmapple_device *dev, uint32_t index,
                                       const vmapple_irq_info **info)
{
    if (!dev || !info) {
        return -EINVAL;
    }
    if (index >= dev->nr_irqs) {
        return -ENOENT;
    }
    *info = &dev->irqs[index];
    return 0;
}

static int access_error(vmapple_device *dev, const char *op, uint32_t region, uint64_t offset,
                        uint32_t size)
{
    if (!vm_access_size_ok(size)) {
        return vm_error(dev, -EINVAL, "%s: access size %u (1, 2, 4 or 8)", op, size);
    }
    if (region >= dev->nr_regions) {
        return vm_error(dev, -EINVAL, "%s: no region %u (the device has %u)", op, region,
                        dev->nr_regions);
    }
    return vm_error(dev, -EINVAL, "%s: %u bytes at 0x%llx do not fit region %s (0x%llx bytes)", op,
                    size, (unsigned long long)offset, dev->regions[region].name,
                    (unsigned long long)dev->regions[region].size);
}

static inline bool access_ok(const vmapple_device *dev, uint32_t region, uint64_t offset,
                             uint32_t size)
{
    return region < dev->nr_regions && vm_access_size_ok(size) &&
           offset < dev->regions[region].size && size <= dev->regions[region].size - offset;
}

int vm_device_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                   uint64_t *value)
{
    if (vm_unlikely(!access_ok(dev, region, offset, size))) {
        *value = 0;
        return access_error(dev, "read", region, offset, size);
    }
    return dev->cls->read(dev, region, offset, size, value);
}

int vm_device_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                    uint64_t value)
{
    if (vm_unlikely(!access_ok(dev, region, offset, size))) {
        return access_error(dev, "write", region, offset, size);
    }
    return dev->cls->write(dev, region, offset, size, value & vm_size_mask(size));
}

VMAPPLE_API int vmapple_device_read(vmapple_device *dev, uint32_t region, uint64_t offset,
                                    uint32_t size, uint64_t *value)
{
    if (vm_unlikely(!dev || !value)) {
        return vm_error(dev, -EINVAL, "read: NULL %s", dev ? "value" : "device");
    }
    return vm_device_read(dev, region, offset, size, value);
}

VMAPPLE_API int vmapple_device_write(vmapple_device *dev, uint32_t region, uint64_t offset,
                                     uint32_t size, uint64_t value)
{
    if (vm_unlikely(!dev)) {
        return vm_error(NULL, -EINVAL, "write: NULL device");
    }
    return vm_device_write(dev, region, offset, size, value);
}

VMAPPLE_API int vmapple_device_reset(vmapple_device *dev)
{
    if (!dev) {
        return vm_error(NULL, -EINVAL, "reset: NULL device");
    }
    dev->cls->reset(dev);
    for (uint32_t i = 0; i < dev->nr_irqs; i++) {
        vm_irq_set(dev, i, false);
    }
    return 0;
}

VMAPPLE_API int vmapple_device_poll_fd(vmapple_device *dev)
{
    if (!dev) {
        return vm_error(NULL, -EINVAL, "poll_fd: NULL device");
    }
    if (!dev->cls->poll_fd) {
        return vm_error(dev, -ENOTSUP, "poll_fd: %s has no asynchronous work", dev->cls->name);
    }
    return dev->cls->poll_fd(dev);
}

VMAPPLE_API int vmapple_device_process(vmapple_device *dev)
{
    if (!dev) {
        return vm_error(NULL, -EINVAL, "process: NULL device");
    }
    return dev->cls->process ? dev->cls->process(dev) : 0;
}

static int config_check(vmapple_device *dev, const char *op, uint32_t offset, uint32_t size,
                        const void *fn)
{
    if (!fn) {
        return vm_error(dev, -ENOTSUP, "%s: %s is not a PCI function", op, dev->cls->name);
    }
    if (size != 1 && size != 2 && size != 4) {
        return vm_error(dev, -EINVAL, "%s: access size %u (1, 2 or 4)", op, size);
    }
    if (offset >= 4096 || size > 4096 - offset) {
        return vm_error(dev, -EINVAL, "%s: %u bytes at 0x%x leave the 4 KiB config space", op, size,
                        offset);
    }
    return 0;
}

VMAPPLE_API int vmapple_device_pci_config_read(vmapple_device *dev, uint32_t offset, uint32_t size,
                                               uint32_t *value)
{
    int ret;

    if (!dev || !value) {
        return vm_error(dev, -EINVAL, "config_read: NULL %s", dev ? "value" : "device");
    }
    ret = config_check(dev, "config_read", offset, size, (const void *)dev->cls->config_read);
    if (ret < 0) {
        *value = 0;
        return ret;
    }
    return dev->cls->config_read(dev, offset, size, value);
}

VMAPPLE_API int vmapple_device_pci_config_write(vmapple_device *dev, uint32_t offset, uint32_t size,
                                                uint32_t value)
{
    int ret;

    if (!dev) {
        return vm_error(NULL, -EINVAL, "config_write: NULL device");
    }
    ret = config_check(dev, "config_write", offset, size, (const void *)dev->cls->config_write);
    if (ret < 0) {
        return ret;
    }
    return dev->cls->config_write(dev, offset, size, value & (uint32_t)vm_size_mask(size));
}

/* Guest memory. */

static int dma_check(vmapple_device *dev, uint64_t gpa, uint64_t len)
{
    if (vm_unlikely(!dev->dma_enabled)) {
        return -EPERM;
    }
    if (vm_unlikely(!vm_range_ok(gpa, len))) {
        return -EFAULT;
    }
    return 0;
}

int vm_dma_read(vmapple_device *dev, uint64_t gpa, void *buf, uint64_t len)
{
    int ret = dma_check(dev, gpa, len);

    if (ret < 0 || len == 0) {
        return ret;
    }
    if (!dev->ops.mem_read) {
        return -ENOTSUP;
    }
    ret = dev->ops.mem_read(dev->opaque, gpa, buf, len);
    return ret > 0 ? -EIO : ret;
}

int vm_dma_write(vmapple_device *dev, uint64_t gpa, const void *buf, uint64_t len)
{
    int ret = dma_check(dev, gpa, len);

    if (ret < 0 || len == 0) {
        return ret;
    }
    if (!dev->ops.mem_write) {
        return -ENOTSUP;
    }
    ret = dev->ops.mem_write(dev->opaque, gpa, buf, len);
    return ret > 0 ? -EIO : ret;
}

void *vm_dma_map(vmapple_device *dev, uint64_t gpa, uint64_t len, bool writable, uint64_t *mapped)
{
    void *host;
    uint64_t got = 0;

    *mapped = 0;
    if (!dev->ops.mem_map || len == 0 || dma_check(dev, gpa, len) < 0) {
        return NULL;
    }
    host = dev->ops.mem_map(dev->opaque, gpa, len, writable ? 1 : 0, &got);
    if (!host) {
        return NULL;
    }
    if (got == 0 || got > len) {
        /* A host bug; never trust a length we did not ask for. */
        if (dev->ops.mem_unmap) {
            dev->ops.mem_unmap(dev->opaque, host, got, 0);
        }
        vm_log_ratelimited(dev, VMAPPLE_LOG_ERROR,
                           "host mem_map returned %llu bytes for a request of %llu",
                           (unsigned long long)got, (unsigned long long)len);
        return NULL;
    }
    *mapped = got;
    return host;
}

void vm_dma_unmap(vmapple_device *dev, void *host, uint64_t len, bool written)
{
    if (host && dev->ops.mem_unmap) {
        dev->ops.mem_unmap(dev->opaque, host, len, written ? 1 : 0);
    }
}

void vm_irq_set(vmapple_device *dev, uint32_t line, bool level)
{
    uint64_t bit;

    if (line >= dev->nr_irqs) {
        return;
    }
    bit = 1ull << line;
    if (((dev->irq_levels & bit) != 0) == level) {
        return;
    }
    dev->irq_levels ^= bit;
    if (dev->ops.irq_set) {
        dev->ops.irq_set(dev->opaque, line, level ? 1 : 0);
    }
}
