// SPDX-License-Identifier: MIT
// The public header compiles as C++ (extern "C", no C-only constructs) and
// its initialisers work there too. One CHECK per line; each device adds its own.
#include <libvmapple/libvmapple.h>

#include <cstdio>

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "header-cxx: %s\n", #cond);                                       \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

int main()
{
    // Core.
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_bus_range range = VMAPPLE_BUS_RANGE_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_bus *bus = nullptr;
    CHECK(ops.size == sizeof(ops) && ops.log == nullptr);
    CHECK(range.size == sizeof(range));
    CHECK(fo.size == sizeof(fo));
    CHECK(vmapple_bus_create(&bus) == 0);
    vmapple_bus_destroy(bus);

    // AES.
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;
    CHECK(aes.size == sizeof(aes) && aes.builtin_keys[6].length == 0);

    // bdif, cfg, pvpanic, xHCI policy.
    vmapple_cfg_options cfg = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_pvpanic_options pvp = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_xhci_route xr = VMAPPLE_XHCI_ROUTE_INIT;
    vmapple_bdif_options bdif = VMAPPLE_BDIF_OPTIONS_INIT;
    CHECK(cfg.size == sizeof(cfg) && cfg.nr_cpus == 0);
    CHECK(pvp.size == sizeof(pvp) && pvp.event == nullptr);
    CHECK(xr.size == sizeof(xr));
    CHECK(bdif.size == sizeof(bdif) && bdif.aux == nullptr);

    // apple-dma-pci, DMA backends, vfio-apple.
    vmapple_vfio_apple_options vao = VMAPPLE_VFIO_APPLE_OPTIONS_INIT;
    vmapple_sim_dart_options sdo = VMAPPLE_SIM_DART_OPTIONS_INIT;
    CHECK(vao.size == sizeof(vao) && vao.irq_deliver == nullptr);
    CHECK(sdo.size == sizeof(sdo));
    CHECK(VMAPPLE_VFIO_HOST_FN(1, 2, 3) == 0x010203u);

    // virtio-blk.
    vmapple_virtio_blk_options vb = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    CHECK(vb.size == sizeof(vb) && vb.blockdev == nullptr);

    // vhost-user-blk.
    vmapple_vhost_user_blk_options vub = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    CHECK(vub.size == sizeof(vub) && vub.serial == nullptr);

    CHECK(vmapple_version() == VMAPPLE_VERSION_NUMBER);
    return failures ? 1 : 0;
}
