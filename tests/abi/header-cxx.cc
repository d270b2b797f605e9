// SPDX-License-Identifier: MIT
// The public header compiles as C++ (extern "C", no C-only constructs) and
// its initialisers work there too.
#include <libvmapple/libvmapple.h>

#include <cstdio>

int main()
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_bus_range range = VMAPPLE_BUS_RANGE_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_cfg_options cfg = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_pvpanic_options pvp = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_xhci_route xr = VMAPPLE_XHCI_ROUTE_INIT;
    vmapple_bdif_options bdif = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_bus *bus = nullptr;

    if (ops.size != sizeof(ops) || ops.log != nullptr || range.size != sizeof(range) ||
        fo.size != sizeof(fo) || aes.size != sizeof(aes) || aes.builtin_keys[6].length != 0 ||
        cfg.size != sizeof(cfg) || cfg.nr_cpus != 0 || pvp.size != sizeof(pvp) ||
        pvp.event != nullptr || xr.size != sizeof(xr) || bdif.size != sizeof(bdif) ||
        bdif.aux != nullptr) {
        std::fprintf(stderr, "an _INIT macro is wrong in C++\n");
        return 1;
    }
    if (vmapple_bus_create(&bus) != 0) {
        return 1;
    }
    vmapple_bus_destroy(bus);
    return vmapple_version() == VMAPPLE_VERSION_NUMBER ? 0 : 1;
}
