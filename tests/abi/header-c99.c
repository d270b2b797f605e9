/* SPDX-License-Identifier: MIT */
/*
 * The public header compiles as strict C99 and its initialisers work.
 * One CHECK per line, so that each device adds lines of its own.
 */
#include <libvmapple/libvmapple.h>

#include <stdio.h>
#include <string.h>

static const vmapple_host_ops static_ops = VMAPPLE_HOST_OPS_INIT;
static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "header-c99: %s\n", #cond);                                            \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

int main(void)
{
    /* Core. */
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_bus_range range = VMAPPLE_BUS_RANGE_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev_ops bo = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options bopt = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_pci_host_bridge_options hb = VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT;
    CHECK(ops.size == sizeof(ops) && ops.mem_read == NULL);
    CHECK(static_ops.size == sizeof(ops));
    CHECK(range.size == sizeof(range));
    CHECK(fo.size == sizeof(fo) && fo.flags == 0);
    CHECK(bo.size == sizeof(bo) && bo.read == NULL);
    CHECK(bopt.size == sizeof(bopt));
    CHECK(hb.size == sizeof(hb) && hb.vendor_id == 0);

    /* AES. */
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;
    CHECK(aes.size == sizeof(aes) && aes.cbc_chain_iv == 0 && aes.builtin_keys[6].length == 0);

    /* bdif, cfg, pvpanic, xHCI policy. */
    vmapple_bdif_options bdif = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_cfg_options cfg = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_pvpanic_options pvp = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_pvpanic_counts pvc = VMAPPLE_PVPANIC_COUNTS_INIT;
    vmapple_xhci_policy_options xo = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_xhci_irq_state xs = VMAPPLE_XHCI_IRQ_STATE_INIT;
    vmapple_xhci_route_request xq = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route xr = VMAPPLE_XHCI_ROUTE_INIT;
    CHECK(bdif.size == sizeof(bdif) && bdif.root == NULL);
    CHECK(cfg.size == sizeof(cfg) && cfg.serial == NULL);
    CHECK(pvp.size == sizeof(pvp) && pvp.event == NULL);
    CHECK(pvc.size == sizeof(pvc));
    CHECK(xo.size == sizeof(xo));
    CHECK(xs.size == sizeof(xs));
    CHECK(xq.size == sizeof(xq));
    CHECK(xr.size == sizeof(xr));

    /* apple-dma-pci, DMA backends, vfio-apple. */
    vmapple_apple_dma_pci_options adp = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_vfio_backend_ops vbo = VMAPPLE_VFIO_BACKEND_OPS_INIT;
    vmapple_vfio_apple_options vao = VMAPPLE_VFIO_APPLE_OPTIONS_INIT;
    vmapple_dma_ops dops = VMAPPLE_DMA_OPS_INIT;
    CHECK(adp.size == sizeof(adp) && adp.dma == NULL);
    CHECK(vbo.size == sizeof(vbo));
    CHECK(vao.size == sizeof(vao) && vao.backend == NULL);
    CHECK(dops.size == sizeof(dops));
    CHECK(VMAPPLE_VFIO_HOST_FN(0x12, 3, 4) == 0x120304u);

    /* virtio-blk. */
    vmapple_virtio_blk_options vb = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    vmapple_virtio_blk_stats vbs = VMAPPLE_VIRTIO_BLK_STATS_INIT;
    CHECK(vb.size == sizeof(vb) && vb.blockdev == NULL && vb.variant == 0);
    CHECK(vbs.size == sizeof(vbs));

    /* vhost-user-blk. */
    vmapple_vhost_user_blk_options vub = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    CHECK(vub.size == sizeof(vub) && vub.blockdev == NULL && vub.num_queues == 0);
    CHECK(VMAPPLE_VHOST_USER_BLK_MAX_QUEUES == 16u);

    /* The library we run with is the one these headers describe. */
    CHECK(vmapple_version() == VMAPPLE_VERSION_NUMBER);
    CHECK(strcmp(vmapple_version_string(), VMAPPLE_VERSION_STRING) == 0);
    return failures ? 1 : 0;
}
