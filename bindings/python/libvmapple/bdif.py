# SPDX-License-Identifier: MIT
"""The boot "backdoor" block interface (bdif.h; register map in
spec/bdif.md)."""

from __future__ import annotations

import ctypes
import struct

from . import _native
from .blockdev import Blockdev
from .device import Device, DeviceType, build_options, handle_option
from .host import Host

BASE = 0x30000000
SIZE = 0x00200000
MAX_TRANSFER = 128 << 20

ALLOW_WRITES = 1 << 0
FLUSH_WRITES = 1 << 1

UNIT_ROOT = 0
UNIT_AUX = 1
UNIT_SHIFT = 16

# Registers (offset within a unit).
STATUS = 0x000
CFG = 0x004
BUSY = 0x010
CMD = 0x408
NEXT_DEVICE = 0x420

REQUEST_LEN = 48
SECTOR_SIZE = 512
DATA_READ = 0x00030001  #: data descriptor flags: volume -> guest memory
DATA_WRITE = 0x00010001  #: guest memory -> volume
STATUS_OK = 0
STATUS_FAILED = 1


class BdifOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("root", ctypes.c_void_p),
        ("aux", ctypes.c_void_p),
    ]


_create = _native.optional(
    "vmapple_bdif_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(BdifOptions),
     ctypes.POINTER(ctypes.c_void_p)])


def sector_block(sector: int) -> bytes:
    """The 16 bytes the sector descriptor points to (sector at byte 8)."""
    return struct.pack("<QII", 0, sector, 0)


def request(sector_addr: int, data_addr: int, length: int, status_addr: int, *,
            write: bool = False, data_flags: int | None = None, sector_len: int = 16) -> bytes:
    """The 48-byte request a CMD write points to: sector, data and status
    descriptors (u64 addr, u32 len, u32 flags each)."""
    flags = data_flags if data_flags is not None else (DATA_WRITE if write else DATA_READ)
    return struct.pack("<QII QII QII", sector_addr, sector_len, 0, data_addr, length, flags,
                       status_addr, 1, 0)


def offset(unit: int, register: int) -> int:
    """The window offset of @register of @unit."""
    return (unit << UNIT_SHIFT) | register


class Bdif(Device):
    """The bdif window: region "bdif" (2 MiB at 0x3000_0000), no interrupt.
    A CMD write runs its request synchronously (DMA and volume I/O).

    Options: root, aux (Blockdev volumes or None; the device keeps them
    alive), allow_writes, flush_writes (bools), or flags (the raw bits).
    """

    TYPE = DeviceType.BDIF
    _create_name = "vmapple_bdif_create"

    def __init__(self, host: Host | None = None, *, allow_writes: bool = False,
                 flush_writes: bool = False, **options):
        volumes: list[Blockdev] = []
        flags = options.get("flags", 0) | (ALLOW_WRITES if allow_writes else 0) | \
            (FLUSH_WRITES if flush_writes else 0)
        if flags:
            options["flags"] = flags
        converters = {unit: handle_option(unit, Blockdev, "Bdif", volumes)
                      for unit in ("root", "aux")}
        opts = build_options(BdifOptions, "Bdif", options, converters=converters)
        self._create(host, _create, opts, keepalive=tuple(volumes), name="bdif")

    def reg_read(self, unit: int, register: int, size: int = 4) -> int:
        return self.read(0, offset(unit, register), size)

    def submit(self, unit: int, request_addr: int) -> None:
        """Write a request's guest address to CMD of @unit (it runs now)."""
        self.write(0, offset(unit, CMD), request_addr, 8)

    def transfer(self, unit: int, scratch: int, sector: int, data_addr: int, length: int, *,
                 write: bool = False) -> int:
        """Build a request in guest memory at @scratch (65 bytes: request,
        sector block, status byte), run it, and return the status byte the
        device wrote (0 success, 1 failure; 0xff if it wrote none)."""
        mem = self.host.memory
        if mem is None:
            raise ValueError("Bdif.transfer needs a Host with guest memory")
        mem.write(scratch + 48, sector_block(sector))
        mem.write(scratch, request(scratch + 48, data_addr, length, scratch + 64, write=write))
        mem.write(scratch + 64, b"\xff")
        self.submit(unit, scratch)
        return mem.read(scratch + 64, 1)[0]
