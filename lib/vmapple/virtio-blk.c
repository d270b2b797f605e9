/* SPDX-License-Identifier: MIT */
/*
 * Apple's virtio-blk variant (spec/virtio-blk-vmapple.md) as a PCI function:
 * the virtio-pci modern transport (lib/virtio-pci.c) in front of the request
 * engine (virtio-blk-core.c), which serves its one queue.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio-blk-core.h"
#include "virtio-pci.h"

#define VBLK_STATE_VERSION 1

/* Identity. */
#define VBLK_VENDOR_ID 0x106b
#define VBLK_DEVICE_ID 0x1a00
#define VBLK_REVISION  1

enum { REGION_BAR0, REGION_MSIX };

static const vmapple_region_info vblk_regions[] = {
    { "bar0", VM_VIRTIO_BAR0_SIZE, VMAPPLE_NO_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR,
      0 },
    { "msix", VM_VIRTIO_MSIX_BAR_SIZE, VMAPPLE_NO_BASE,
      VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR, 1 },
};

static const vmapple_irq_info vblk_irqs[] = {
    { "intx", VMAPPLE_NO_IRQ, VMAPPLE_IRQ_LEVEL | VMAPPLE_IRQ_PCI_INTX },
};

struct vblk {
    vmapple_device dev;
    struct vm_virtio_pci vp;
    struct vm_blk_params params;
    uint8_t config[VM_BLK_CONFIG_LEN];
    struct vm_blkq *q;
};

static struct vblk *to_vblk(vmapple_device *dev)
{
    return vm_container_of(dev, struct vblk, dev);
}

static struct vblk *vp_to_vblk(struct vm_virtio_pci *vp)
{
    return vm_container_of(vp, struct vblk, vp);
}

/* What the engine asks of the transport. */

static bool blkq_live(void *opaque)
{
    return vm_virtio_pci_live(&((struct vblk *)opaque)->vp);
}

static bool blkq_has_feature(void *opaque, unsigned bit)
{
    return vm_virtio_pci_has_feature(&((struct vblk *)opaque)->vp, bit);
}

static void blkq_notify(void *opaque)
{
    vm_virtio_pci_notify_queue(&((struct vblk *)opaque)->vp, 0);
}

static void blkq_needs_reset(void *opaque)
{
    vm_virtio_pci_set_needs_reset(&((struct vblk *)opaque)->vp);
}

static const struct vm_blkq_ops vblk_blkq_ops = {
    .live = blkq_live,
    .has_feature = blkq_has_feature,
    .notify = blkq_notify,
    .needs_reset = blkq_needs_reset,
};

/* Transport hooks. */

static void vblk_vp_queue_notify(struct vm_virtio_pci *vp, uint16_t q)
{
    (void)q; /* one queue */
    vm_blkq_notify(vp_to_vblk(vp)->q);
}

static void vblk_vp_reset(struct vm_virtio_pci *vp)
{
    vm_blkq_quiesce(vp_to_vblk(vp)->q, false);
}

static const struct vm_virtio_pci_ops vblk_vp_ops = {
    .queue_notify = vblk_vp_queue_notify,
    .reset = vblk_vp_reset,
};

/* Class. */

static int vblk_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t *value)
{
    return vm_virtio_pci_read(&to_vblk(dev)->vp, region, offset, size, value);
}

static int vblk_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                      uint64_t value)
{
    return vm_virtio_pci_write(&to_vblk(dev)->vp, region, offset, size, value);
}

static void vblk_reset(vmapple_device *dev)
{
    vm_virtio_pci_reset(&to_vblk(dev)->vp);
}

static int vblk_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct vblk *b = to_vblk(dev);
    vmapple_virtio_blk_stats s;

    vm_blkq_quiesce(b->q, true);
    vm_blkq_get_stats(b->q, &s);
    vm_virtio_pci_save(&b->vp, w);
    vm_st_put_u32(w, b->params.opts.variant);
    vm_st_put_u64(w, b->params.capacity);
    vm_st_put_u64(w, s.requests);
    return 0;
}

static int vblk_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct vblk *b = to_vblk(dev);
    struct vm_virtio_pci_snapshot *snap;
    uint32_t variant;
    uint64_t capacity, requests;
    int ret;

    (void)version;
    ret = vm_virtio_pci_load_parse(&b->vp, r, &snap);
    if (ret < 0) {
        return ret;
    }
    variant = vm_st_get_u32(r);
    capacity = vm_st_get_u64(r);
    requests = vm_st_get_u64(r);
    if (!vm_st_complete(r)) {
        vm_virtio_pci_snapshot_free(snap);
        return vm_error(dev, -EBADMSG, "load: truncated or oversized state");
    }
    if (variant != b->params.opts.variant) {
        vm_virtio_pci_snapshot_free(snap);
        return vm_error(dev, -EINVAL,
                        "load: the blob is of variant %u, this device %u (option "
                        "variant differs)",
                        variant, b->params.opts.variant);
    }
    if (capacity != b->params.capacity) {
        vm_virtio_pci_snapshot_free(snap);
        return vm_error(dev, -EINVAL,
                        "load: the blob's volume has %llu bytes, this one %llu (option blockdev "
                        "differs)",
                        (unsigned long long)capacity, (unsigned long long)b->params.capacity);
    }
    /* Nothing may be in flight into the old queues once the new state is in. */
    vm_blkq_quiesce(b->q, false);
    vm_virtio_pci_load_commit(&b->vp, snap);
    vm_blkq_set_requests(b->q, requests);
    return 0;
}

static void vblk_destroy(vmapple_device *dev)
{
    struct vblk *b = to_vblk(dev);

    vm_blkq_destroy(b->q);
    vm_virtio_pci_release(&b->vp);
    vm_blockdev_unref(b->params.bd);
    free(b);
}

static int vblk_poll_fd(vmapple_device *dev)
{
    int fd = vm_blkq_poll_fd(to_vblk(dev)->q);

    if (fd < 0) {
        return vm_error(dev, -ENOTSUP, "poll_fd: the device is in synchronous mode");
    }
    return fd;
}

static int vblk_process(vmapple_device *dev)
{
    return vm_blkq_process(to_vblk(dev)->q);
}

static int vblk_config_read(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t *value)
{
    return vm_virtio_pci_config_read(&to_vblk(dev)->vp, offset, size, value);
}

static int vblk_config_write(vmapple_device *dev, uint32_t offset, uint32_t size, uint32_t value)
{
    return vm_virtio_pci_config_write(&to_vblk(dev)->vp, offset, size, value);
}

static const struct vmapple_device_class vblk_class = {
    .type = VMAPPLE_DEVICE_VIRTIO_BLK,
    .name = "virtio-blk",
    .state_version = VBLK_STATE_VERSION,
    .read = vblk_read,
    .write = vblk_write,
    .reset = vblk_reset,
    .save = vblk_save,
    .load = vblk_load,
    .destroy = vblk_destroy,
    .poll_fd = vblk_poll_fd,
    .process = vblk_process,
    .config_read = vblk_config_read,
    .config_write = vblk_config_write,
};

/* Creation. */

VMAPPLE_API int vmapple_virtio_blk_create(const vmapple_host_ops *ops, void *opaque,
                                          const vmapple_virtio_blk_options *user_opts,
                                          vmapple_device **out)
{
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct vm_virtio_pci_setup setup = { 0 };
    struct vblk *b;
    int ret;

    if (!out || !user_opts) {
        return vm_error_named("virtio-blk", NULL, -EINVAL,
                              "create: NULL %s (variant and blockdev have no defaults)",
                              out ? "options" : "out");
    }
    ret = vm_copy_sized(&o, sizeof(o), user_opts, "virtio-blk options");
    if (ret < 0) {
        return ret;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return vm_error_named("virtio-blk", NULL, -ENOMEM, "out of memory");
    }
    ret = vm_blk_params_init(&b->params, &o, "virtio-blk");
    if (ret == 0 &&
        (vm_require_op("virtio-blk", ops ? (const void *)ops->mem_read : NULL, "mem_read") < 0 ||
         vm_require_op("virtio-blk", ops ? (const void *)ops->mem_write : NULL, "mem_write") < 0)) {
        ret = -EINVAL;
    }
    if (ret == 0) {
        ret = vm_device_init(&b->dev, &vblk_class, ops, opaque, vblk_regions,
                             b->params.opts.msix_vectors ? 2 : 1, vblk_irqs, 1);
    }
    if (ret < 0) {
        free(b);
        return ret;
    }
    vm_blockdev_ref(b->params.bd);
    vm_blk_fill_config(&b->params, 1, b->config);

    setup.ids.vendor_id = VBLK_VENDOR_ID;
    setup.ids.device_id = VBLK_DEVICE_ID;
    setup.ids.subsystem_vendor_id = b->params.opts.subsystem_vendor_id;
    setup.ids.subsystem_id = b->params.opts.subsystem_id;
    setup.ids.class_code = b->params.opts.class_code;
    setup.ids.revision = VBLK_REVISION;
    setup.ids.irq_pin = 1;
    setup.features = vm_blk_device_features(&b->params);
    setup.num_queues = 1;
    setup.queue_max_size = (uint16_t)b->params.opts.queue_size;
    setup.devcfg = b->config;
    setup.devcfg_len = VM_BLK_CONFIG_LEN;
    setup.msix_vectors = (uint16_t)b->params.opts.msix_vectors;
    setup.bar0_region = REGION_BAR0;
    setup.msix_region = REGION_MSIX;
    ret = vm_virtio_pci_init(&b->vp, &b->dev, &vblk_vp_ops, &setup);
    if (ret < 0) {
        vm_error_named("virtio-blk", NULL, ret, "internal: transport set-up failed");
        goto fail;
    }
    ret = vm_blkq_create(&b->dev, &b->params, &b->vp.queues[0].vq, &vblk_blkq_ops, b, &b->q);
    if (ret < 0) {
        goto fail;
    }
    *out = &b->dev;
    return 0;
fail:
    vblk_destroy(&b->dev);
    return ret;
}

VMAPPLE_API int vmapple_virtio_blk_get_stats(vmapple_device *dev, vmapple_virtio_blk_stats *stats)
{
    vmapple_virtio_blk_stats s;
    uint32_t given;

    if (!dev || !stats) {
        return vm_error(dev, -EINVAL, "get_stats: NULL %s", dev ? "stats" : "device");
    }
    if (dev->cls != &vblk_class) {
        return vm_error(dev, -ENODEV, "get_stats: %s is not a virtio-blk device", dev->name);
    }
    given = stats->size;
    if (given < 2 * sizeof(uint32_t)) {
        return vm_error(dev, -EINVAL,
                        "get_stats: size field is %u; use "
                        "VMAPPLE_VIRTIO_BLK_STATS_INIT",
                        given);
    }
    vm_blkq_get_stats(to_vblk(dev)->q, &s);
    vm_fill_sized(stats, &s, sizeof(s));
    return 0;
}
