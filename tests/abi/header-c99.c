/* SPDX-License-Identifier: MIT */
/* The public header compiles as strict C99 and its initialisers work. */
#include <libvmapple/libvmapple.h>

#include <stdio.h>
#include <string.h>

static const vmapple_host_ops static_ops = VMAPPLE_HOST_OPS_INIT;

int main(void)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_bus_range range = VMAPPLE_BUS_RANGE_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev_ops bo = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options bopt = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_bdif_options bdif = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_cfg_options cfg = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_pvpanic_options pvp = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_pvpanic_counts pvc = VMAPPLE_PVPANIC_COUNTS_INIT;
    vmapple_xhci_policy_options xo = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_xhci_irq_state xs = VMAPPLE_XHCI_IRQ_STATE_INIT;
    vmapple_xhci_route_request xq = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route xr = VMAPPLE_XHCI_ROUTE_INIT;

    if (ops.size != sizeof(ops) || static_ops.size != sizeof(ops) || ops.mem_read != NULL ||
        range.size != sizeof(range) || fo.size != sizeof(fo) || fo.flags != 0 ||
        bo.size != sizeof(bo) || bopt.size != sizeof(bopt) || aes.size != sizeof(aes) ||
        aes.cbc_chain_iv != 0 || aes.builtin_keys[6].length != 0 || bdif.size != sizeof(bdif) ||
        bdif.root != NULL || cfg.size != sizeof(cfg) || cfg.serial != NULL ||
        pvp.size != sizeof(pvp) || pvp.event != NULL || pvc.size != sizeof(pvc) ||
        xo.size != sizeof(xo) || xs.size != sizeof(xs) || xq.size != sizeof(xq) ||
        xr.size != sizeof(xr)) {
        fprintf(stderr, "an _INIT macro is wrong\n");
        return 1;
    }
    if (vmapple_version() != VMAPPLE_VERSION_NUMBER ||
        strcmp(vmapple_version_string(), VMAPPLE_VERSION_STRING) != 0) {
        fprintf(stderr, "header and library versions differ\n");
        return 1;
    }
    return 0;
}
