# SPDX-License-Identifier: MIT
"""The ctypes structs match the C headers: sizes and every field's offset
and size, as a C program built from the public headers reports them. A
struct the bindings mirror wrongly would pass wrong options silently."""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import os
import pkgutil
import subprocess
import xml.etree.ElementTree as ET

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


def c_layout() -> tuple[dict[str, int], dict[str, dict[str, tuple[int, int]]]]:
    """The C sizes of the structs, and (offset, size) of each of their fields."""
    prog = os.environ.get("LIBVMAPPLE_STRUCT_LAYOUT")
    if not prog:
        pytest.skip("LIBVMAPPLE_STRUCT_LAYOUT is not set (run through meson test)")
    out = subprocess.run([prog], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    fields: dict[str, dict[str, tuple[int, int]]] = {}
    for line in out.splitlines():
        name, *values = line.split()
        if "." in name:
            struct, field = name.split(".")
            offset, size = map(int, values)  # exactly two numbers
            assert field not in fields.get(struct, {}), line
            fields.setdefault(struct, {})[field] = (offset, size)
        else:
            (size,) = map(int, values)
            assert name not in sizes, line
            sizes[name] = size
    return sizes, fields


def test_every_mirrored_struct_matches_the_header():
    sizes, fields = c_layout()
    assert set(sizes) == set(MIRRORS)
    assert set(fields) == set(MIRRORS)
    for name, cls in MIRRORS.items():
        assert ctypes.sizeof(cls) == sizes[name], name
        # Every field, the leading size of versioned structs included: its
        # offset and its width (a field narrowed into padding, or a shorter
        # last array, keeps every offset and the struct's size).
        mine = {f: (getattr(cls, f).offset, getattr(cls, f).size) for f, *_ in cls._fields_}
        assert len(mine) == len(cls._fields_), name
        assert mine == fields[name], name


def abi_members() -> dict[str, list[tuple[str, int]]]:
    """(name, byte offset) of every member of every public struct, from the
    committed ABI baseline (abidw's reading of the headers; the abidiff test
    of the same run fails when it no longer matches the library). Where
    that test skips, meson passes why instead of the baseline's path."""
    path = os.environ.get("LIBVMAPPLE_ABI_BASELINE")
    if not path:
        reason = os.environ.get("LIBVMAPPLE_ABI_BASELINE_SKIP")
        if reason:
            pytest.skip(f"the ABI baseline is not checked against this build: {reason}")
        pytest.skip("LIBVMAPPLE_ABI_BASELINE is not set (run through meson test)")
    structs: dict[str, list[tuple[str, int]]] = {}
    for decl in ET.parse(path).iter("class-decl"):
        name = decl.get("name", "")
        if not name.startswith("vmapple_") or decl.get("is-declaration-only") == "yes":
            continue
        members = [(m.find("var-decl").get("name"), int(m.get("layout-offset-in-bits")) // 8)
                   for m in decl.findall("data-member")]
        assert structs.setdefault(name, members) == members, name
    return structs


def test_every_header_field_is_mirrored():
    # struct-layout.c lists fields by name, so a field added to a header and
    # to neither list would go unseen when it fits in the struct's padding.
    # The ABI baseline lists them all.
    structs = abi_members()
    assert len(structs) > 30  # the walk did find the public structs
    for name, cls in MIRRORS.items():
        assert name in structs, f"{name} is not in the ABI baseline"
        mine = [(f, getattr(cls, f).offset) for f, *_ in cls._fields_]
        assert mine == structs[name], name


def test_every_struct_of_the_package_is_mirrored():
    # A struct added to the bindings without a line in MIRRORS (and in
    # struct-layout.c) would never be checked.
    import libvmapple

    for mod in pkgutil.iter_modules(libvmapple.__path__):
        importlib.import_module("libvmapple." + mod.name)
    found: set[type] = set()
    todo: list[type] = [ctypes.Structure, ctypes.Union]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] == "libvmapple":
                found.add(sub)
    assert len(found) > 30  # the walk did find the package's structs
    assert found == set(MIRRORS.values())
    assert len(set(MIRRORS.values())) == len(MIRRORS)  # one C struct each


# Results the bindings build by position from a C struct: the dataclass'
# fields must come in the header's order (reserved fields left out), or a
# swapped pair of same-typed counters would go unnoticed.
RESULTS = [
    (virtio_blk.VirtioBlkStats, "vmapple_virtio_blk_stats", {}),
    (vfio.SimState, "vmapple_vfio_sim_state", {}),
    (vfio.FunctionInfo, "vmapple_vfio_function_info", {}),
    (vfio.BarInfo, "vmapple_vfio_bar_info", {"bar_size": "size"}),
    (vfio.RegionInfo, "vmapple_vfio_region_info", {"region_size": "size"}),
    (dma.Occupancy, "vmapple_dma_occupancy", {}),
    (pvpanic.PvpanicCounts, "vmapple_pvpanic_counts", {}),
    (apple_dma_pci.AppleDmaPciInfo, "vmapple_apple_dma_pci_info", {}),
]


@pytest.mark.parametrize("result,struct,renamed", RESULTS,
                         ids=[r[0].__name__ for r in RESULTS])
def test_result_fields_follow_the_header(result, struct, renamed):
    _, fields = c_layout()
    in_c = sorted(fields[struct], key=lambda f: fields[struct][f][0])
    expected = [renamed.get(f, f) for f in in_c
                if f != "size" and not f.startswith("reserved")]
    assert [f.name for f in dataclasses.fields(result)] == expected
