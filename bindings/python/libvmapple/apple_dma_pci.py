# SPDX-License-Identifier: MIT
"""apple-dma-pci: the DMA-mapping companion of PCI passthrough on Apple
hosts (apple-dma-pci.h; protocol in spec/apple-dma-pci.md), and a
guest-side driver for harnesses."""

from __future__ import annotations

import ctypes
import enum
import struct
from dataclasses import dataclass

from . import _native, pci
from .device import DeviceType, build_options, enum_option, handle_option
from .dma import DmaBackend
from .host import Host
from .memory import GuestMemory
from .pci import PciFunction

VERSION = 2
DEFAULT_ENTRIES = 4096
MAX_ENTRIES = 65536
DEFAULT_MAPPINGS = 65536
MAX_MAPPINGS = 1 << 22

# BAR0 registers.
REG_VERSION = 0x00
REG_MANAGED_BDF = 0x04
REG_MAX_ENTRIES = 0x08
REG_STATUS = 0x0C
REG_CMD_GPA_LO = 0x10
REG_CMD_GPA_HI = 0x14
REG_DOORBELL = 0x18

TYPE_MAP = 1
TYPE_UNMAP = 2

STATUS_OK = 0
STATUS_IOERR = 1
STATUS_INVAL = 3


class Layout(enum.IntEnum):
    PUBLISHED = 0  #: 16/24-byte MAP entries (the QEMU RFC series; default)
    MODULE = 1  #: 20/28-byte MAP entries (the guest module beside it)


class AppleDmaPciOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("layout", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("max_mappings", ctypes.c_uint32),
        ("managed_bdf", ctypes.c_uint16),
        ("host_bus", ctypes.c_uint8),
        ("host_device", ctypes.c_uint8),
        ("host_function", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 11),
        ("dma", ctypes.c_void_p),
    ]


class AppleDmaPciInfoC(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("layout", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("max_mappings", ctypes.c_uint32),
        ("live_mappings", ctypes.c_uint32),
        ("managed_bdf", ctypes.c_uint16),
        ("host_bus", ctypes.c_uint8),
        ("host_device", ctypes.c_uint8),
        ("host_function", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 7),
        ("doorbells", ctypes.c_uint64),
    ]


_create = _native.optional(
    "vmapple_apple_dma_pci_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(AppleDmaPciOptions),
     ctypes.POINTER(ctypes.c_void_p)])
_get_info = _native.optional(
    "vmapple_apple_dma_pci_get_info", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(AppleDmaPciInfoC)])


@dataclass(frozen=True)
class AppleDmaPciInfo:
    layout: Layout
    max_entries: int
    max_mappings: int
    live_mappings: int
    managed_bdf: int
    host_bus: int
    host_device: int
    host_function: int
    doorbells: int


class AppleDmaPci(PciFunction):
    """The apple-dma-pci function (1b36:0015): region "bar0" (BAR0, 4 KiB),
    no interrupt.

    Options: layout ("published" default, "module"), max_entries,
    max_mappings, managed_bdf, host_bus, host_device, host_function, dma
    (a DmaBackend; None: a new identity backend; kept alive by the device).
    """

    TYPE = DeviceType.APPLE_DMA_PCI
    _create_name = "vmapple_apple_dma_pci_create"

    def __init__(self, host: Host | None = None, **options):
        opts, backends = self.build(options)
        self._create(host, _create, opts, keepalive=backends, name="apple-dma-pci")

    @staticmethod
    def build(options: dict, what: str = "AppleDmaPci", always: bool = False
              ) -> tuple[AppleDmaPciOptions | None, tuple]:
        """The options struct for @options and the objects it points to."""
        backends: list[DmaBackend] = []
        converters = {"layout": enum_option("layout", Layout, what),
                      "dma": handle_option("dma", DmaBackend, what, backends)}
        opts = build_options(AppleDmaPciOptions, what, options, converters=converters,
                             always=always)
        return opts, tuple(backends)

    def info(self) -> AppleDmaPciInfo:
        c = AppleDmaPciInfoC()
        c.size = ctypes.sizeof(c)
        self._check(_get_info(self.handle, ctypes.byref(c)), "vmapple_apple_dma_pci_get_info")
        return AppleDmaPciInfo(Layout(c.layout), c.max_entries, c.max_mappings,
                               c.live_mappings, c.managed_bdf, c.host_bus, c.host_device,
                               c.host_function, c.doorbells)


@dataclass(frozen=True)
class MapResult:
    """One MAP response entry."""

    id: int
    dma_addr: int
    dma_len: int
    status: int


class AppleDmaDriver:
    """The guest module's side of the protocol, for harnesses: batches of
    MAP and UNMAP entries through a command page in guest memory.

    Args:
        dev: the AppleDmaPci function (bus mastering is switched on).
        mem: guest memory; @scratch is where command pages and arrays go
            (default: 64 KiB below the end of the first range).
        layout: the entry layout the guest uses (must match the device's
            for a meaningful answer; a mismatch is a test of its own).
    """

    def __init__(self, dev: AppleDmaPci, mem: GuestMemory, *, scratch: int | None = None,
                 layout: Layout | int = Layout.PUBLISHED):
        self.dev = dev
        self.mem = mem
        self.layout = Layout(layout)
        if scratch is None:
            r = mem.ranges[0]
            scratch = r.end - (1 << 16)
        self.scratch = scratch
        dev.command = dev.command | pci.COMMAND_MASTER

    @property
    def status(self) -> int:
        return self.dev.read(0, REG_STATUS)

    def ring(self, type_: int, count: int, requests: bytes, response_size: int,
             page: int | None = None) -> tuple[int, int]:
        """Write a command page and the request array, ring the doorbell;
        returns (page status, STATUS register). The response array follows
        the requests in guest memory at self.responses."""
        page = self.scratch if page is None else page
        req = page + 64
        resp = req + ((len(requests) + 63) & ~63)
        self.mem.write(req, requests)
        self.mem.fill(resp, max(response_size, 1), 0xEE)
        self.mem.write(page, struct.pack("<IIIIQQ", type_, count, 0xFFFFFFFF, 0, req, resp))
        self.responses = resp
        self.dev.write(0, REG_CMD_GPA_LO, page & 0xFFFFFFFF)
        self.dev.write(0, REG_CMD_GPA_HI, page >> 32)
        self.dev.write(0, REG_DOORBELL, 1)
        return self.mem.read_u32(page + 8), self.status

    def map(self, entries: list[tuple[int, int]], flags: int = 0) -> tuple[int, list[MapResult]]:
        """MAP (gpa, length) entries; returns (batch status, responses)."""
        if self.layout == Layout.PUBLISHED:
            reqs = b"".join(struct.pack("<QII", g, n, flags) for g, n in entries)
            rsize, rfmt = 24, "<QQII"
        else:
            reqs = b"".join(struct.pack("<QQI", g, n, flags) for g, n in entries)
            rsize, rfmt = 28, "<QQQI"
        status, _ = self.ring(TYPE_MAP, len(entries), reqs, rsize * len(entries))
        out = []
        for i in range(len(entries)):
            out.append(MapResult(*struct.unpack(rfmt, self.mem.read(self.responses + rsize * i,
                                                                     rsize))))
        return status, out

    def unmap(self, entries: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """UNMAP (id, size) entries; returns (batch status, [(id, status)])."""
        reqs = b"".join(struct.pack("<QQ", i, n) for i, n in entries)
        status, _ = self.ring(TYPE_UNMAP, len(entries), reqs, 16 * len(entries))
        out = []
        for i in range(len(entries)):
            ident, st, _ = struct.unpack("<QII", self.mem.read(self.responses + 16 * i, 16))
            out.append((ident, st))
        return status, out
