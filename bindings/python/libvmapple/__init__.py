# SPDX-License-Identifier: MIT
"""Python bindings of libvmapple for unit-test harnesses.

Create a vmapple device in a few lines, give it guest memory, poke its
registers, and assert on interrupts, DMA and log lines:

    import libvmapple as vm

    mem = vm.GuestMemory(1 << 20)               # 1 MiB of RAM at vm.RAM_BASE
    host = vm.Host(mem)
    with vm.PciHostBridge(host) as bridge:
        assert bridge.vendor_id == 0x106B

The bindings use ctypes over the shared library (libvmapple.so.1), found
through $LIBVMAPPLE_PATH, then a build tree next to this package
(<source>/build/lib), then the dynamic linker's search path.
"""

from . import (_native, aes, apple_dma_pci, bdif, cfg, dma, pci, platform, pvpanic, vfio,
               vhost_user_blk, virtio, virtio_blk, xhci)
from ._native import LIBRARY_PATH
from .aes import Aes
from .apple_dma_pci import AppleDmaPci
from .bdif import Bdif
from .cfg import Cfg
from .dma import DmaBackend
from .pvpanic import Pvpanic
from .vfio import VfioBackend, VfioPassthrough, VfioSim
from .vhost_user_blk import VhostUserBlk
from .virtio_blk import VirtioBlk
from .xhci import XhciPolicy
from .blockdev import (
    Blockdev,
    BlockdevFeatures,
    BlockdevFlags,
    CallbackVolume,
    FileVolume,
    MemoryBackend,
    MemoryVolume,
    VolumeBackend,
)
from .bus import Bus, BusRange
from .device import Device, DeviceType, Irq, IrqFlags, Region, RegionFlags
from .errors import CallbackError, CallbackFailure, Fault, VmappleError
from .host import (
    BarUpdate,
    DmaAccess,
    Host,
    IrqEvent,
    LogLevel,
    LogRecord,
    MsiEvent,
)
from .memory import GuestMemory, MemoryRange
from .pci import PciFunction, PciHostBridge
from .platform import (
    FIRMWARE_BASE,
    FIRMWARE_SIZE,
    GIC_SPI_BASE,
    MAX_CPUS,
    PCI_INTX_LINES,
    PCI_INTX_SPI_BASE,
    RAM_BASE,
    RESET_PC,
    VTIMER_PPI,
    MapId,
    PlatformFlags,
    PlatformRegion,
)


def version() -> tuple[int, int, int]:
    """The version of the library in use, (major, minor, patch)."""
    v = _native.lib.vmapple_version()
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def version_string() -> str:
    return _native.text(_native.lib.vmapple_version_string())


def strerror(err: int) -> str:
    """The library's name for an errno value (negative or positive)."""
    return _native.strerror(err)


def last_error() -> str:
    """The calling thread's most recent library error message."""
    return _native.last_error()


def log_level_name(level: int) -> str:
    return _native.text(_native.lib.vmapple_log_level_name(level))


__all__ = [
    "LIBRARY_PATH", "version", "version_string", "strerror", "last_error", "log_level_name",
    "aes", "apple_dma_pci", "bdif", "cfg", "dma", "pci", "platform", "pvpanic", "vfio",
    "vhost_user_blk", "virtio", "virtio_blk", "xhci",
    "Aes", "AppleDmaPci", "Bdif", "Cfg", "DmaBackend", "Pvpanic", "VfioBackend",
    "VfioPassthrough", "VfioSim", "VhostUserBlk", "VirtioBlk", "XhciPolicy", "Blockdev", "BlockdevFeatures",
    "BlockdevFlags", "CallbackVolume", "FileVolume",
    "MemoryBackend", "MemoryVolume", "VolumeBackend", "Bus", "BusRange", "Device", "DeviceType",
    "Irq", "IrqFlags", "Region", "RegionFlags", "CallbackError", "CallbackFailure", "Fault",
    "VmappleError", "BarUpdate", "DmaAccess", "Host", "IrqEvent", "LogLevel", "LogRecord",
    "MsiEvent", "GuestMemory", "MemoryRange", "PciFunction", "PciHostBridge", "FIRMWARE_BASE",
    "FIRMWARE_SIZE", "GIC_SPI_BASE", "MAX_CPUS", "PCI_INTX_LINES", "PCI_INTX_SPI_BASE",
    "RAM_BASE", "RESET_PC", "VTIMER_PPI", "MapId", "PlatformFlags", "PlatformRegion",
]
