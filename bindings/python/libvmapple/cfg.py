# SPDX-License-Identifier: MIT
"""The configuration region (cfg.h)."""

from __future__ import annotations

import ctypes
import enum
import struct

from . import _native
from .device import Device, DeviceType, build_options, enum_option, string_option
from .host import Host

BASE = 0x00400000
SIZE = 0x00010000
MAX_STRING = 31
COMPILED_MAX_CPUS = 128
COMMENTED_MAX_CPUS = 32


class Layout(enum.IntEnum):
    COMPILED = 0  #: the reference's real layout (default)
    COMMENTED = 1  #: the layout its comments describe


class CfgOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("layout", ctypes.c_uint32),
        ("ecid", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("nr_cpus", ctypes.c_uint32),
        ("rnd", ctypes.c_uint32),
        ("mac_en0", ctypes.c_uint8 * 6),
        ("mac_en1", ctypes.c_uint8 * 6),
        ("mac_wifi0", ctypes.c_uint8 * 6),
        ("mac_bt0", ctypes.c_uint8 * 6),
        ("serial", ctypes.c_char_p),
        ("model", ctypes.c_char_p),
        ("soc_name", ctypes.c_char_p),
        ("run_installer", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
    ]


_create = _native.optional(
    "vmapple_cfg_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(CfgOptions),
     ctypes.POINTER(ctypes.c_void_p)])

# Offsets in the image, by layout: (serial, "D/A", model, u32 1, soc_name).
STRING_OFFSETS = {
    Layout.COMPILED: {"serial": 0x500, "model": 0x540, "soc_name": 0x584},
    Layout.COMMENTED: {"serial": 0x380, "model": 0x3C0, "soc_name": 0x404},
}


def mac_bytes(mac: bytes | str) -> bytes:
    """A MAC address from 6 bytes or "aa:bb:cc:dd:ee:ff"."""
    if isinstance(mac, str):
        mac = bytes(int(part, 16) for part in mac.replace("-", ":").split(":"))
    mac = bytes(mac)
    if len(mac) != 6:
        raise ValueError(f"a MAC address is 6 bytes, not {len(mac)}")
    return mac


def _mac(field: str):
    def convert(opts: CfgOptions, value) -> None:
        try:
            ctypes.memmove(getattr(opts, field), mac_bytes(value), 6)
        except ValueError as e:
            raise ValueError(f"Cfg: option {field}: {e}") from None
    return convert


class Cfg(Device):
    """The configuration region the firmware reads: region "cfg" (64 KiB of
    RAM-like memory at 0x0040_0000, flagged RAM so region_memory() works),
    no interrupt.

    Options: layout ("compiled" default, "commented", or Layout), ecid,
    ram_size, nr_cpus (default 1), rnd, mac_en0/mac_en1/mac_wifi0/mac_bt0
    (6 bytes or "aa:bb:..."), serial, model, soc_name (str, at most 31
    characters; None keeps the library's default), run_installer (bool).
    """

    TYPE = DeviceType.CFG
    _create_name = "vmapple_cfg_create"
    # A NULL options pointer means 1 CPU; a filled struct must say so.
    DEFAULTS = {"nr_cpus": 1}

    def __init__(self, host: Host | None = None, **options):
        converters = {"layout": enum_option("layout", Layout, "Cfg")}
        for f in ("mac_en0", "mac_en1", "mac_wifi0", "mac_bt0"):
            converters[f] = _mac(f)
        for f in ("serial", "model", "soc_name"):
            converters[f] = string_option(f, "Cfg")
        opts = build_options(CfgOptions, "Cfg", options, self.DEFAULTS, converters)
        self._create(host, _create, opts, name="cfg")

    def image(self) -> bytes:
        """A copy of the whole 64 KiB image as the guest sees it."""
        return bytes(self.region_memory(0))

    def read_string(self, offset: int) -> str:
        """The NUL-terminated string at @offset of the image."""
        raw = bytes(self.region_memory(0)[offset:offset + 32])
        return raw.split(b"\0", 1)[0].decode()

    def read_u32(self, offset: int) -> int:
        return struct.unpack_from("<I", self.region_memory(0), offset)[0]

    def read_u64(self, offset: int) -> int:
        return struct.unpack_from("<Q", self.region_memory(0), offset)[0]
