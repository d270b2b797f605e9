# SPDX-License-Identifier: MIT
"""The memory map table."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm
from libvmapple import platform


def test_rows_sorted_and_disjoint():
    rows = platform.regions()
    assert len(rows) == len(vm.MapId)
    bases = [r.base for r in rows]
    assert bases == sorted(bases)
    for a, b in zip(rows, rows[1:]):
        assert a.end <= b.base, (a.name, b.name)


def test_rows_match_the_spec():
    aes1 = platform.find(vm.MapId.AES1)
    assert (aes1.base, aes1.size, aes1.spi, aes1.name) == (0x30220000, 0x4000, 0x12, "aes1")
    assert aes1.by_library
    assert platform.find("aes2").base == 0x30230000
    ram = platform.find(vm.MapId.RAM)
    assert ram.base == vm.RAM_BASE and ram.size == 0
    assert ram.flags == vm.PlatformFlags.HOST | vm.PlatformFlags.MEMORY
    fw = platform.find("firmware")
    assert (fw.base, fw.size) == (vm.FIRMWARE_BASE, vm.FIRMWARE_SIZE) == (vm.RESET_PC, 0x100000)
    mmio = platform.find(vm.MapId.PCIE_MMIO)
    assert (mmio.spi, mmio.spi_count) == (vm.PCI_INTX_SPI_BASE, vm.PCI_INTX_LINES)
    assert platform.find("cfg").spi is None
    library_rows = {r.name for r in platform.regions() if r.by_library}
    assert library_rows == {"cfg", "pvpanic", "bdif", "aes1", "aes2"}


def test_unknown_rows():
    with pytest.raises(vm.VmappleError) as ei:
        platform.find(999)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(vm.VmappleError) as ei:
        platform.find("nvram")
    assert ei.value.errno == errno.ENOENT and "aes1" in ei.value.detail


def test_intx_routing():
    assert platform.intx_spi(1) == 0x21
    assert platform.intx_spi(9) == 0x29
    assert platform.intx_spi(17) == 0x21
    assert platform.intx_spi(1, 2) == 0x22
    assert platform.intx_spi(32) is None
    assert platform.intx_spi(1, 0) is None
    assert platform.intx_spi(1, 5) is None
