/* SPDX-License-Identifier: MIT */
/* The PCI host bridge at 00:00.0: configuration space only. */
#include <errno.h>
#include <stdlib.h>

#include "pci.h"

#define HOST_BRIDGE_STATE_VERSION 1

struct pci_host_bridge {
    vmapple_device dev;
    struct vm_pci_function pci;
};

static struct pci_host_bridge *to_bridge(vmapple_device *dev)
{
    return vm_container_of(dev, struct pci_host_bridge, dev);
}

static int bridge_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                       uint64_t *value)
{
    (void)dev;
    (void)region;
    (void)offset;
    (void)size;
    *value = 0; /* no regions: the core never calls this */
    return 0;
}

static int bridge_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                        uint64_t value)
{
    (void)dev;
    (void)region;
    (void)offset;
    (void)size;
    (void)value;
    return 0;
}

static void bridge_reset(vmapple_device *dev)
{
    vm_pci_reset(&to_bridge(dev)->pci);
}

static int bridge_save(vmapple_device *dev, struct vm_state_writer *w)
{
    vm_pci_save(&to_bridge(dev)->pci, w);
    return 0;
}

static int bridge_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct pci_host_bridge *b = to_bridge(dev);
    struct vm_pci_snapshot *snap;
    int ret;

    (void)version;
    ret = vm_pci_load_parse(&b->pci, r, &snap);
    if (ret < 0) {
        return ret;
    }
    if (!vm_st_complete(r)) {
        vm_pci_snapshot_free(snap);
        return vm_error(dev, -EBADMSG, "load: truncated or oversized state");
    }
    vm_pci_load_commit(&b->pci, snap);
    return 0;
}

static void bridge_destroy(vmapple_device *dev)
{
    struct pci_host_bridge *b = to_bridge(dev);

    vm_pci_release(&b->pci);
    free(b);
}

static int bridge_config_read(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t *value)
{
    return vm_pci_config_read(&to_bridge(dev)->pci, offset, size, value);
}

static int bridge_config_write(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t value)
{
    return vm_pci_config_write(&to_bridge(dev)->pci, offset, size, value);
}

static const struct vmapple_device_class bridge_class = {
    .type = VMAPPLE_DEVICE_PCI_HOST_BRIDGE,
    .name = "pci-host-bridge",
    .state_version = HOST_BRIDGE_STATE_VERSION,
    .read = bridge_read,
    .write = bridge_write,
    .reset = bridge_reset,
    .save = bridge_save,
    .load = bridge_load,
    .destroy = bridge_destroy,
    .config_read = bridge_config_read,
    .config_write = bridge_config_write,
};

VMAPPLE_API int vmapple_pci_host_bridge_create(const vmapple_host_ops *ops, void *opaque,
                                               const vmapple_pci_host_bridge_options *user_opts,
                                               vmapple_device **out)
{
    vmapple_pci_host_bridge_options opts = VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT;
    struct vm_pci_ids ids = { 0 };
    struct pci_host_bridge *b;
    int ret;

    if (!out) {
        return vm_error_named("pci-host-bridge", NULL, -EINVAL, "create: NULL out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "pci-host-bridge options");
    if (ret < 0) {
        return ret;
    }
    /* 0 means "default", as in every options struct: vendor 0 is never valid. */
    opts.vendor_id = opts.vendor_id ? opts.vendor_id : 0x106b;
    opts.device_id = opts.device_id ? opts.device_id : 0x1a05;
    opts.class_code = opts.class_code ? opts.class_code : 0x060000;
    if (opts.class_code > 0xffffff) {
        return vm_error_named("pci-host-bridge", NULL, -EINVAL,
                              "option class_code 0x%x has more than 24 bits", opts.class_code);
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    ret = vm_device_init(&b->dev, &bridge_class, ops, opaque, NULL, 0, NULL, 0);
    if (ret < 0) {
        free(b);
        return ret;
    }
    ids.vendor_id = opts.vendor_id;
    ids.device_id = opts.device_id;
    ids.class_code = opts.class_code;
    ids.subsystem_vendor_id = opts.subsystem_vendor_id;
    ids.subsystem_id = opts.subsystem_id;
    ids.revision = opts.revision;
    vm_pci_init(&b->pci, &b->dev, &ids, 0);
    vm_pci_finalize(&b->pci);
    *out = &b->dev;
    return 0;
}
