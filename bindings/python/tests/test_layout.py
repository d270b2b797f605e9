# SPDX-License-Identifier: MIT
"""The ctypes structs match the C headers: sizes and every field's offset,
as a C program built from the public headers reports them. A struct the
bindings mirror wrongly would pass wrong options silently."""

from __future__ import annotations

import ctypes
import os
import subprocess

import pytest

from libvmapple import _native, aes, apple_dma_pci, bdif, cfg, dma, pvpanic, vfio, vhost_user_blk, virtio_blk, xhci

MIRRORS: dict[str, type[ctypes.Structure]] = {
    "vmapple_host_ops": _native.HostOps,
    "vmapple_region_info": _native.RegionInfo,
    "vmapple_irq_info": _native.IrqInfo,
    "vmapple_platform_region": _native.PlatformRegionInfo,
    "vmapple_bus_range": _native.BusRange,
    "vmapple_blockdev_file_options": _native.BlockdevFileOptions,
    "vmapple_blockdev_ops": _native.BlockdevOps,
    "vmapple_blockdev_options": _native.BlockdevOptions,
    "vmapple_pci_host_bridge_options": _native.PciHostBridgeOptions,
    "vmapple_aes_builtin_key": aes.BuiltinKey,
    "vmapple_aes_options": aes.AesOptions,
    "vmapple_cfg_options": cfg.CfgOptions,
    "vmapple_bdif_options": bdif.BdifOptions,
    "vmapple_pvpanic_options": pvpanic.PvpanicOptions,
    "vmapple_pvpanic_counts": pvpanic.PvpanicCountsC,
    "vmapple_xhci_policy_options": xhci.XhciPolicyOptions,
    "vmapple_xhci_irq_state": xhci.IrqStateC,
    "vmapple_xhci_route_request": xhci.RouteRequestC,
    "vmapple_xhci_route": xhci.RouteC,
    "vmapple_virtio_blk_options": virtio_blk.VirtioBlkOptions,
    "vmapple_virtio_blk_stats": virtio_blk.VirtioBlkStatsC,
    "vmapple_vhost_user_blk_options": vhost_user_blk.VhostUserBlkOptions,
    "vmapple_dma_ops": dma.DmaOps,
    "vmapple_dma_backend_options": dma.DmaBackendOptions,
    "vmapple_sim_dart_options": dma.SimDartOptions,
    "vmapple_dma_occupancy": dma.OccupancyC,
    "vmapple_apple_dma_pci_options": apple_dma_pci.AppleDmaPciOptions,
    "vmapple_apple_dma_pci_info": apple_dma_pci.AppleDmaPciInfoC,
    "vmapple_vfio_bar_info": vfio.BarInfoC,
    "vmapple_vfio_function_info": vfio.FunctionInfoC,
    "vmapple_vfio_backend_ops": vfio.VfioBackendOps,
    "vmapple_vfio_pciaccess_options": vfio.PciaccessOptions,
    "vmapple_vfio_region_info": vfio.RegionInfoC,
    "vmapple_vfio_apple_options": vfio.VfioAppleOptions,
    "vmapple_vfio_sim_options": vfio.SimOptions,
    "vmapple_vfio_sim_function": vfio.SimFunctionC,
    "vmapple_vfio_sim_state": vfio.SimStateC,
}


def c_layout() -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    prog = os.environ.get("LIBVMAPPLE_STRUCT_LAYOUT")
    if not prog:
        pytest.skip("LIBVMAPPLE_STRUCT_LAYOUT is not set (run through meson test)")
    out = subprocess.run([prog], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    fields: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        name, value = line.split()
        if "." in name:
            struct, field = name.split(".")
            fields.setdefault(struct, {})[field] = int(value)
        else:
            sizes[name] = int(value)
    return sizes, fields


def test_every_mirrored_struct_matches_the_header():
    sizes, fields = c_layout()
    assert set(sizes) == set(MIRRORS)
    for name, cls in MIRRORS.items():
        assert ctypes.sizeof(cls) == sizes[name], name
        # The leading size field of versioned structs is not listed.
        mine = {f: getattr(cls, f).offset for f, _ in cls._fields_
                if not (f == "size" and getattr(cls, f).offset == 0)}
        assert mine == fields[name], name
