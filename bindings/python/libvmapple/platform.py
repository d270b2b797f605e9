# SPDX-License-Identifier: MIT
"""The vmapple machine as data: memory map, interrupt numbers, fixed facts
(platform.h)."""

from __future__ import annotations

import ctypes
import enum
import errno
from dataclasses import dataclass

from . import _native
from ._native import lib
from .errors import VmappleError, check

#: Fixed facts of the machine (platform.h macros).
FIRMWARE_BASE = 0x00100000
FIRMWARE_SIZE = 0x00100000
RAM_BASE = 0x70000000
RESET_PC = FIRMWARE_BASE
MAX_CPUS = 32
GIC_SPI_BASE = 32  #: SPI n is GIC interrupt ID n + 32
VTIMER_PPI = 27
PCI_INTX_SPI_BASE = 0x20
PCI_INTX_LINES = 16


class MapId(enum.IntEnum):
    """Identifiers of the rows of the memory map (vmapple_map_id)."""

    FIRMWARE = 1
    CFG = 2
    GIC_DIST = 3
    GIC_REDIST = 4
    UART = 5
    RTC = 6
    GPIO = 7
    PVPANIC = 8
    BDIF = 9
    GFX = 10
    GFX_IOSFC = 11
    AES1 = 12
    AES2 = 13
    PCIE_ECAM = 14
    PCIE_MMIO = 15
    RAM = 16


class PlatformFlags(enum.IntFlag):
    LIBRARY = 1 << 0  #: libvmapple has a device for this region
    HOST = 1 << 1  #: the host supplies it
    MEMORY = 1 << 2  #: memory rather than registers


@dataclass(frozen=True)
class PlatformRegion:
    """One row of the memory map."""

    id: int  #: a MapId value (an int for ids newer than these bindings)
    flags: PlatformFlags
    name: str
    description: str
    base: int
    size: int  #: 0 for RAM, whose size the host chooses
    spi: int | None  #: first GIC SPI, or None
    spi_count: int

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def by_library(self) -> bool:
        return bool(self.flags & PlatformFlags.LIBRARY)


def _convert(info: _native.PlatformRegionInfo) -> PlatformRegion:
    try:
        rid: int = MapId(info.id)
    except ValueError:
        rid = info.id
    return PlatformRegion(
        id=rid,
        flags=PlatformFlags(info.flags),
        name=_native.text(info.name),
        description=_native.text(info.description),
        base=info.base,
        size=info.size,
        spi=None if info.spi == _native.VMAPPLE_PLATFORM_NO_SPI else info.spi,
        spi_count=info.spi_count,
    )


def regions() -> list[PlatformRegion]:
    """Every row of the memory map, in ascending order of base address."""
    out = []
    for i in range(lib.vmapple_platform_count_regions()):
        p = ctypes.POINTER(_native.PlatformRegionInfo)()
        check(lib.vmapple_platform_get_region(i, ctypes.byref(p)), f"row {i}",
              "vmapple_platform_get_region")
        out.append(_convert(p.contents))
    return out


def find(key: int | str) -> PlatformRegion:
    """The row with a MapId (or int id) or a short name ("aes1", "ram").
    Raises VmappleError(ENOENT) when there is none."""
    if isinstance(key, str):
        for r in regions():
            if r.name == key:
                return r
        names = ", ".join(r.name for r in regions())
        raise VmappleError(-errno.ENOENT, f"no region named {key!r} (rows: {names})",
                           "vmapple_platform_find_region")
    p = ctypes.POINTER(_native.PlatformRegionInfo)()
    check(lib.vmapple_platform_find_region(int(key), ctypes.byref(p)),
          f"no region with id {int(key)}", "vmapple_platform_find_region")
    return _convert(p.contents)


def intx_spi(slot: int, pin: int = 1) -> int | None:
    """The GIC SPI that PCI slot @slot raises on INTx @pin (1 = INTA .. 4),
    or None for slot > 31 or a bad pin."""
    spi = lib.vmapple_platform_get_intx_spi(slot, pin)
    return None if spi == _native.VMAPPLE_PLATFORM_NO_SPI else spi
