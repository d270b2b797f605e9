# SPDX-License-Identifier: MIT
"""Apple's virtio-blk PCI function (virtio-blk.h), and a guest-side driver
for harnesses."""

from __future__ import annotations

import ctypes
import enum
import struct
from dataclasses import dataclass

from . import _native
from .blockdev import Blockdev
from .device import DeviceType, build_options, enum_option, handle_option, string_option
from .host import Host
from .memory import GuestMemory
from .pci import PciFunction
from .virtio import SplitQueue, VirtioPciDriver

# Requests (virtio 1.2, 5.2.6) and Apple's barrier.
T_IN = 0
T_OUT = 1
T_FLUSH = 4
T_GET_ID = 8
T_DISCARD = 11
T_WRITE_ZEROES = 13
T_APPLE_BARRIER = 0x10000

S_OK = 0
S_IOERR = 1
S_UNSUPP = 2

F_SIZE_MAX = 1 << 1
F_SEG_MAX = 1 << 2
F_RO = 1 << 5
F_BLK_SIZE = 1 << 6
F_FLUSH = 1 << 9
F_DISCARD = 1 << 13
F_WRITE_ZEROES = 1 << 14

CLASS_VZ = 0x018000
CLASS_QEMU = 0x010000
SUBSYSTEM_VZ = 0x0042
SUBSYSTEM_QEMU = 0x1100
SERIAL_MAX = 20

READ_ONLY = 1 << 0
NO_DISCARD = 1 << 1
NO_WRITE_ZEROES = 1 << 2
NO_INDIRECT = 1 << 3
NO_EVENT_IDX = 1 << 4


class Variant(enum.IntEnum):
    UNSPECIFIED = 0
    ROOT = 1
    AUX = 2


class BarrierMode(enum.IntEnum):
    FLUSH = 0
    DRAIN = 1
    NONE = 2


class IoMode(enum.IntEnum):
    SYNC = 0
    ASYNC = 1


class IoEngine(enum.IntEnum):
    AUTO = 0
    THREADS = 1
    IO_URING = 2


class VirtioBlkOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("variant", ctypes.c_uint32),
        ("blockdev", ctypes.c_void_p),
        ("flags", ctypes.c_uint32),
        ("io_mode", ctypes.c_uint32),
        ("io_threads", ctypes.c_uint32),
        ("io_engine", ctypes.c_uint32),
        ("barrier_mode", ctypes.c_uint32),
        ("msix_vectors", ctypes.c_uint32),
        ("queue_size", ctypes.c_uint32),
        ("seg_max", ctypes.c_uint32),
        ("size_max", ctypes.c_uint32),
        ("blk_size", ctypes.c_uint32),
        ("class_code", ctypes.c_uint32),
        ("subsystem_vendor_id", ctypes.c_uint16),
        ("subsystem_id", ctypes.c_uint16),
        ("serial", ctypes.c_char_p),
        ("max_bounce_bytes", ctypes.c_uint64),
        ("worker_poll_us", ctypes.c_uint32),
        ("complete_in_notify", ctypes.c_uint32),
    ]


class VirtioBlkStatsC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("in_flight", ctypes.c_uint32)] + [
        (name, ctypes.c_uint64) for name in (
            "requests", "read_bytes", "write_bytes", "flushes", "barriers", "io_errors",
            "unsupported", "bounce_bytes", "bounce_peak", "bounced", "worker_polled",
            "inline_requests")]


@dataclass(frozen=True)
class VirtioBlkStats:
    """Counters of a virtio-blk device."""

    in_flight: int  #: requests taken from the queue, not yet completed
    requests: int  #: requests completed (any status)
    read_bytes: int
    write_bytes: int
    flushes: int  #: FLUSH requests and flushing barriers
    barriers: int
    io_errors: int
    unsupported: int
    bounce_bytes: int  #: bounce buffer bytes in use now
    bounce_peak: int
    bounced: int  #: requests whose data went through a bounce buffer
    worker_polled: int  #: times a polling worker found work without sleeping
    inline_requests: int  #: requests the notifying thread did itself (RWF_NOWAIT)


_get_stats = _native.optional(
    "vmapple_virtio_blk_get_stats", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(VirtioBlkStatsC)])

_create = _native.optional(
    "vmapple_virtio_blk_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(VirtioBlkOptions),
     ctypes.POINTER(ctypes.c_void_p)])


def blk_options(struct_type: type[ctypes.Structure], what: str, options: dict,
                bools: dict[str, bool], enums: dict[str, type[enum.IntEnum]],
                volumes: list, always: bool = False) -> ctypes.Structure | None:
    """The options struct of a virtio-blk front (the PCI function or the
    vhost-user back end) from keywords: the flag booleans of @bools,
    "blockdev" (a Blockdev, appended to @volumes), "serial" (str) and the
    enum fields of @enums (by name or value). None when nothing was given,
    unless @always."""

    bits = {"read_only": READ_ONLY, "no_discard": NO_DISCARD, "no_write_zeroes": NO_WRITE_ZEROES,
            "no_indirect": NO_INDIRECT, "no_event_idx": NO_EVENT_IDX}
    flags = options.get("flags", 0)
    for name, on in bools.items():
        flags |= bits[name] if on else 0
    if flags:
        options["flags"] = flags
    converters = {f: enum_option(f, e, what) for f, e in enums.items()}
    converters.update(blockdev=handle_option("blockdev", Blockdev, what, volumes),
                      serial=string_option("serial", what))
    return build_options(struct_type, what, options, always=always, converters=converters)


class VirtioBlk(PciFunction):
    """Apple's virtio-blk PCI function: region "bar0" (16 KiB, BAR0) and,
    with msix_vectors, "msix" (BAR1); interrupt line 0 is INTx pin A.

    Options (keywords named after vmapple_virtio_blk_options): variant
    ("root" or "aux", required), blockdev (a Blockdev, required; kept
    alive by the device), read_only, no_discard, no_write_zeroes,
    no_indirect, no_event_idx (bools) or flags, io_mode ("sync", "async"),
    io_threads, io_engine ("auto", "threads", "io_uring"), barrier_mode
    ("flush", "drain", "none"), msix_vectors, queue_size, seg_max,
    size_max, blk_size, class_code, subsystem_vendor_id, subsystem_id,
    serial (str), max_bounce_bytes, worker_poll_us, complete_in_notify
    (0 or 1). Zero means the default for every numeric option.
    """

    TYPE = DeviceType.VIRTIO_BLK
    _create_name = "vmapple_virtio_blk_create"

    def __init__(self, host: Host | None = None, *, read_only: bool = False,
                 no_discard: bool = False, no_write_zeroes: bool = False,
                 no_indirect: bool = False, no_event_idx: bool = False, **options):
        volumes: list = []
        opts = blk_options(
            VirtioBlkOptions, "VirtioBlk", options,
            dict(read_only=read_only, no_discard=no_discard, no_write_zeroes=no_write_zeroes,
                 no_indirect=no_indirect, no_event_idx=no_event_idx),
            dict(variant=Variant, io_mode=IoMode, io_engine=IoEngine, barrier_mode=BarrierMode),
            volumes)
        self._create(host, _create, opts, keepalive=tuple(volumes), name="virtio-blk")

    def stats(self) -> VirtioBlkStats:
        c = VirtioBlkStatsC()
        c.size = ctypes.sizeof(c)
        self._check(_get_stats(self.handle, ctypes.byref(c)), "vmapple_virtio_blk_get_stats")
        return VirtioBlkStats(*(getattr(c, f) for f, _ in VirtioBlkStatsC._fields_[1:]))


@dataclass
class Request:
    """One virtio-blk request in flight (see VirtioBlkDriver.submit)."""

    head: int
    type: int
    header: int  #: guest address of the 16-byte header
    data: int  #: guest address of the data buffer (0 if none)
    length: int
    status_addr: int
    done: bool = False
    written: int = 0  #: bytes the device reported written

    def status(self, mem: GuestMemory) -> int:
        return mem.read_u8(self.status_addr)


class VirtioBlkDriver(VirtioPciDriver):
    """A guest-side virtio-blk driver: negotiate, set up the request queue,
    and run requests (waiting for asynchronous completions with
    Device.process() when the device is asynchronous)."""

    def __init__(self, dev: VirtioBlk, mem: GuestMemory, *, features: int = ~0,
                 queue_size: int | None = None, **kwargs):
        super().__init__(dev, mem, **kwargs)
        self.negotiate(features)
        self.queue: SplitQueue = self.setup_queue(0, queue_size)
        self.driver_ok()
        self.inflight: dict[int, Request] = {}

    @property
    def capacity(self) -> int:
        """Capacity in 512-byte sectors (device config offset 0)."""
        return self.config_read(0, 4) | (self.config_read(4, 4) << 32)

    @property
    def apple_type(self) -> int:
        """The Apple volume type at device config offset 60 (1 root, 2 aux)."""
        return self.config_read(60, 4)

    def submit(self, type_: int, sector: int = 0, data: bytes | None = None,
               read_len: int = 0, kick: bool = True) -> Request:
        """Queue a request: @data is sent to the device (OUT, DISCARD, ...),
        @read_len bytes are received (IN, GET_ID)."""
        header = self.heap.alloc(16, data=struct.pack("<IIQ", type_, 0, sector))
        bufs = [(header, 16, False)]
        data_addr, length = 0, 0
        if data:
            data_addr, length = self.heap.alloc(len(data), data=data), len(data)
            bufs.append((data_addr, length, False))
        elif read_len:
            data_addr, length = self.heap.alloc(read_len), read_len
            bufs.append((data_addr, length, True))
        status = self.heap.alloc(1, 1, data=b"\xff")
        bufs.append((status, 1, True))
        head = self.queue.add(bufs)
        req = Request(head, type_, header, data_addr, length, status)
        self.inflight[head] = req
        if kick:
            self.queue.kick()
        return req

    def collect(self) -> list[Request]:
        """Requests completed since the last call (reads the used ring)."""
        done = []
        for head, written in self.queue.take_used():
            req = self.inflight.pop(head, None)
            if req is not None:
                req.done, req.written = True, written
                done.append(req)
        return done

    def wait(self, req: Request, timeout: float = 10.0) -> int:
        """Wait for @req (delivering asynchronous completions) and return
        its status byte."""
        import time

        deadline = time.monotonic() + timeout
        while not req.done:
            self.collect()
            if req.done:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"request {req.head} did not complete")
            if self.dev.process() == 0:
                self.dev.host.wait_async(0.05)
        return req.status(self.mem)

    def run(self, type_: int, sector: int = 0, data: bytes | None = None,
            read_len: int = 0) -> tuple[int, bytes]:
        """Submit one request, wait, and return (status, data read)."""
        req = self.submit(type_, sector, data, read_len)
        status = self.wait(req)
        got = self.mem.read(req.data, read_len) if read_len else b""
        return status, got

    def read(self, sector: int, length: int) -> tuple[int, bytes]:
        return self.run(T_IN, sector, read_len=length)

    def write(self, sector: int, data: bytes) -> int:
        return self.run(T_OUT, sector, data)[0]

    def flush(self) -> int:
        return self.run(T_FLUSH)[0]

    def barrier(self) -> int:
        return self.run(T_APPLE_BARRIER)[0]

    def get_id(self) -> tuple[int, bytes]:
        return self.run(T_GET_ID, read_len=SERIAL_MAX)

    def discard(self, sector: int, sectors: int, unmap: bool = False,
                type_: int = T_DISCARD) -> int:
        seg = struct.pack("<QII", sector, sectors, 1 if unmap else 0)
        return self.run(type_, 0, seg)[0]

    def write_zeroes(self, sector: int, sectors: int, unmap: bool = False) -> int:
        return self.discard(sector, sectors, unmap, T_WRITE_ZEROES)
