# SPDX-License-Identifier: MIT
"""The shared library, its C types and function prototypes (internal).

Everything here mirrors include/libvmapple/*.h. The rest of the package
uses only this module to reach the library.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

SONAME = "libvmapple.so.1"

#: The environment variable that names the library (a file, or a directory
#: holding libvmapple.so.1).
ENV_PATH = "LIBVMAPPLE_PATH"


def _candidates() -> list[str]:
    """Where to look for the library, in order."""
    found: list[str] = []
    env = os.environ.get(ENV_PATH)
    if env:
        p = pathlib.Path(env)
        found.append(str(p / SONAME) if p.is_dir() else str(p))
        # An explicit choice that does not exist is an error, not a fallback.
        return found
    # A source checkout: bindings/python/libvmapple -> <source>/build/lib.
    source_root = pathlib.Path(__file__).resolve().parents[3]
    in_tree = source_root / "build" / "lib" / SONAME
    if in_tree.exists():
        found.append(str(in_tree))
    # Installed: the dynamic linker's search path.
    found.append(SONAME)
    return found


def _load() -> tuple[ctypes.CDLL, str]:
    errors = []
    for cand in _candidates():
        try:
            # CDLL releases the GIL around every call, so library worker
            # threads can run Python callbacks while the caller waits in C.
            return ctypes.CDLL(cand), cand
        except OSError as e:
            errors.append(f"{cand}: {e}")
    hint = (
        f"set {ENV_PATH} to the library (or its directory), build the source tree "
        f"(./dev test makes build/lib/{SONAME}), or install libvmapple"
    )
    raise ImportError("libvmapple: cannot load the shared library (" + "; ".join(errors) +
                      "); " + hint)


lib, LIBRARY_PATH = _load()

# -- common.h ---------------------------------------------------------------

VMAPPLE_NO_BASE = 2**64 - 1
VMAPPLE_NO_IRQ = 2**32 - 1
VMAPPLE_PLATFORM_NO_SPI = 2**32 - 1

# -- host.h -----------------------------------------------------------------

MEM_READ_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p, c_uint64)
MEM_WRITE_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p, c_uint64)
MEM_MAP_FN = CFUNCTYPE(c_void_p, c_void_p, c_uint64, c_uint64, c_int, POINTER(c_uint64))
MEM_UNMAP_FN = CFUNCTYPE(None, c_void_p, c_void_p, c_uint64, c_int)
IRQ_SET_FN = CFUNCTYPE(None, c_void_p, c_uint32, c_int)
MSI_SEND_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_uint32)
LOG_FN = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
PCI_BAR_UPDATE_FN = CFUNCTYPE(None, c_void_p, c_uint32, c_uint64, c_uint64, c_int)
ASYNC_NOTIFY_FN = CFUNCTYPE(None, c_void_p)


class HostOps(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("mem_read", MEM_READ_FN),
        ("mem_write", MEM_WRITE_FN),
        ("mem_map", MEM_MAP_FN),
        ("mem_unmap", MEM_UNMAP_FN),
        ("irq_set", IRQ_SET_FN),
        ("msi_send", MSI_SEND_FN),
        ("log", LOG_FN),
        ("pci_bar_update", PCI_BAR_UPDATE_FN),
        ("async_notify", ASYNC_NOTIFY_FN),
    ]


# -- device.h ---------------------------------------------------------------


class RegionInfo(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("size", c_uint64),
        ("base", c_uint64),
        ("flags", c_uint32),
        ("pci_bar", c_uint32),
    ]


class IrqInfo(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("spi", c_uint32),
        ("flags", c_uint32),
    ]


# -- platform.h -------------------------------------------------------------


class PlatformRegionInfo(Structure):
    _fields_ = [
        ("id", c_uint32),
        ("flags", c_uint32),
        ("name", c_char_p),
        ("description", c_char_p),
        ("base", c_uint64),
        ("size", c_uint64),
        ("spi", c_uint32),
        ("spi_count", c_uint32),
    ]


# -- bus.h ------------------------------------------------------------------

BUS_READ_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint32, POINTER(c_uint64))
BUS_WRITE_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint32, c_uint64)


class BusRange(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("region", c_uint32),
        ("base", c_uint64),
        ("length", c_uint64),
        ("name", c_char_p),
        ("device", c_void_p),
    ]


# -- blockdev.h -------------------------------------------------------------

BD_READ_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p, c_uint64)
BD_WRITE_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_void_p, c_uint64)
BD_FLUSH_FN = CFUNCTYPE(c_int, c_void_p)
BD_DISCARD_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint64)
BD_WRITE_ZEROES_FN = CFUNCTYPE(c_int, c_void_p, c_uint64, c_uint64, c_int)
BD_CLOSE_FN = CFUNCTYPE(None, c_void_p)


class BlockdevFileOptions(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("offset", c_uint64),
        ("length", c_uint64),
    ]


class BlockdevOps(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("read", BD_READ_FN),
        ("write", BD_WRITE_FN),
        ("flush", BD_FLUSH_FN),
        ("discard", BD_DISCARD_FN),
        ("write_zeroes", BD_WRITE_ZEROES_FN),
        ("close", BD_CLOSE_FN),
    ]


class BlockdevOptions(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("capacity", c_uint64),
    ]


# -- pci.h ------------------------------------------------------------------


class PciHostBridgeOptions(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("vendor_id", c_uint16),
        ("device_id", c_uint16),
        ("class_code", c_uint32),
        ("subsystem_vendor_id", c_uint16),
        ("subsystem_id", c_uint16),
        ("revision", c_uint8),
    ]


# -- prototypes -------------------------------------------------------------

_dev = c_void_p
_u32p = POINTER(c_uint32)
_u64p = POINTER(c_uint64)

# name: (restype, argtypes). Functions of devices that this library build may
# not have are looked up lazily through optional().
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "vmapple_version": (c_uint32, []),
    "vmapple_version_string": (c_char_p, []),
    "vmapple_strerror": (c_char_p, [c_int]),
    "vmapple_last_error": (c_char_p, []),
    "vmapple_log_level_name": (c_char_p, [c_int]),
    "vmapple_device_destroy": (None, [_dev]),
    "vmapple_device_get_type": (c_int, [_dev]),
    "vmapple_device_get_name": (c_char_p, [_dev]),
    "vmapple_device_set_name": (c_int, [_dev, c_char_p]),
    "vmapple_device_last_error": (c_char_p, [_dev]),
    "vmapple_device_count_regions": (c_int, [_dev]),
    "vmapple_device_get_region": (c_int, [_dev, c_uint32, POINTER(POINTER(RegionInfo))]),
    "vmapple_device_find_region": (c_int, [_dev, c_char_p]),
    "vmapple_device_get_region_memory": (c_int, [_dev, c_uint32, POINTER(c_void_p), _u64p]),
    "vmapple_device_count_irqs": (c_int, [_dev]),
    "vmapple_device_get_irq": (c_int, [_dev, c_uint32, POINTER(POINTER(IrqInfo))]),
    "vmapple_device_read": (c_int, [_dev, c_uint32, c_uint64, c_uint32, _u64p]),
    "vmapple_device_write": (c_int, [_dev, c_uint32, c_uint64, c_uint32, c_uint64]),
    "vmapple_device_reset": (c_int, [_dev]),
    "vmapple_device_save": (c_int, [_dev, c_void_p, c_size_t, POINTER(c_size_t)]),
    "vmapple_device_load": (c_int, [_dev, c_void_p, c_size_t]),
    "vmapple_device_poll_fd": (c_int, [_dev]),
    "vmapple_device_process": (c_int, [_dev]),
    "vmapple_device_pci_config_read": (c_int, [_dev, c_uint32, c_uint32, _u32p]),
    "vmapple_device_pci_config_write": (c_int, [_dev, c_uint32, c_uint32, c_uint32]),
    "vmapple_platform_count_regions": (c_int, []),
    "vmapple_platform_get_region": (c_int, [c_uint32, POINTER(POINTER(PlatformRegionInfo))]),
    "vmapple_platform_find_region": (c_int, [c_uint32, POINTER(POINTER(PlatformRegionInfo))]),
    "vmapple_platform_get_intx_spi": (c_uint32, [c_uint32, c_uint32]),
    "vmapple_bus_create": (c_int, [POINTER(c_void_p)]),
    "vmapple_bus_destroy": (None, [c_void_p]),
    "vmapple_bus_last_error": (c_char_p, [c_void_p]),
    "vmapple_bus_map_region": (c_int, [c_void_p, _dev, c_uint32, c_uint64]),
    "vmapple_bus_map_device": (c_int, [c_void_p, _dev]),
    "vmapple_bus_map_handler": (
        c_int,
        [c_void_p, c_char_p, c_uint64, c_uint64, BUS_READ_FN, BUS_WRITE_FN, c_void_p],
    ),
    "vmapple_bus_unmap": (c_int, [c_void_p, c_uint64]),
    "vmapple_bus_unmap_device": (c_int, [c_void_p, _dev]),
    "vmapple_bus_read": (c_int, [c_void_p, c_uint64, c_uint32, _u64p]),
    "vmapple_bus_write": (c_int, [c_void_p, c_uint64, c_uint32, c_uint64]),
    "vmapple_bus_lookup": (c_int, [c_void_p, c_uint64, POINTER(BusRange)]),
    "vmapple_bus_count_ranges": (c_int, [c_void_p]),
    "vmapple_bus_get_range": (c_int, [c_void_p, c_uint32, POINTER(BusRange)]),
    "vmapple_bus_get_unmapped_counts": (c_int, [c_void_p, _u64p, _u64p]),
    "vmapple_blockdev_open_file": (
        c_int,
        [c_char_p, POINTER(BlockdevFileOptions), POINTER(c_void_p)],
    ),
    "vmapple_blockdev_create": (
        c_int,
        [POINTER(BlockdevOps), c_void_p, POINTER(BlockdevOptions), POINTER(c_void_p)],
    ),
    "vmapple_blockdev_release": (None, [c_void_p]),
    "vmapple_blockdev_get_capacity": (c_int, [c_void_p, _u64p]),
    "vmapple_blockdev_get_features": (c_int, [c_void_p]),
    "vmapple_blockdev_read": (c_int, [c_void_p, c_uint64, c_void_p, c_uint64]),
    "vmapple_blockdev_write": (c_int, [c_void_p, c_uint64, c_void_p, c_uint64]),
    "vmapple_blockdev_flush": (c_int, [c_void_p]),
    "vmapple_blockdev_last_error": (c_char_p, [c_void_p]),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


def optional(name: str, restype: object, argtypes: list[object]):
    """A library function that this build of the library may lack (a device
    added in a later version), or None."""
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return None
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


# Device constructors: a library without the device lacks the symbol, and
# only that device's class fails (VmappleError ENOSYS when instantiated).
pci_host_bridge_create = optional(
    "vmapple_pci_host_bridge_create", c_int,
    [POINTER(HostOps), c_void_p, POINTER(PciHostBridgeOptions), POINTER(c_void_p)])


def text(value: bytes | None) -> str:
    """A C string from the library as str ("" for NULL)."""
    return value.decode("utf-8", "replace") if value else ""


def buffer_at(address: int, length: int, owner: object = None) -> memoryview:
    """The @length bytes at @address as a writable memoryview of unsigned
    bytes, without a copy: a buffer the library hands a callback (valid
    during the call only) or memory it owns. The view and its slices keep
    @owner alive, when given: what keeps that memory valid."""
    arr = (ctypes.c_char * length).from_address(address)
    if owner is not None:
        arr._owner = owner
    return memoryview(arr).cast("B")


def last_error() -> str:
    """The calling thread's last error message."""
    return text(lib.vmapple_last_error())


def strerror(err: int) -> str:
    return text(lib.vmapple_strerror(err))
