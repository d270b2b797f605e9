# SPDX-License-Identifier: MIT
"""DMA backends: what makes guest memory visible to a passed-through device
(dma-backend.h)."""

from __future__ import annotations

import ctypes
import errno
import weakref
from dataclasses import dataclass
from typing import Callable

from . import _native
from ._handle import Closeable
from .device import build_options, fit_bits
from .errors import CallbackFailure, CallbackLog, VmappleError, check
from .host import raise_failures

SIM_DART_MAX_BYTES = 3 << 29
SIM_DART_MAX_MAPPINGS = 65536
SIM_DART_PAGE = 16384
SIM_DART_BUS_BASE = 0x400000000

_u64p = ctypes.POINTER(ctypes.c_uint64)
MAP_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
                          ctypes.c_uint64, ctypes.c_uint32, _u64p, _u64p)
UNMAP_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                            ctypes.c_uint64, ctypes.c_uint64)
CLOSE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DmaOps(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("map", MAP_FN), ("unmap", UNMAP_FN),
                ("close", CLOSE_FN)]


class DmaBackendOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("max_mappings", ctypes.c_uint32),
                ("max_bytes", ctypes.c_uint64)]


class SimDartOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("max_mappings", ctypes.c_uint32),
                ("max_bytes", ctypes.c_uint64), ("bus_base", ctypes.c_uint64)]


class OccupancyC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("mappings", ctypes.c_uint32),
                ("max_mappings", ctypes.c_uint32), ("reserved", ctypes.c_uint32),
                ("bytes", ctypes.c_uint64), ("max_bytes", ctypes.c_uint64),
                ("failed_maps", ctypes.c_uint64)]


_vp = ctypes.c_void_p
_create = _native.optional(
    "vmapple_dma_backend_create", ctypes.c_int,
    [ctypes.POINTER(DmaOps), _vp, ctypes.POINTER(DmaBackendOptions), ctypes.POINTER(_vp)])
_create_identity = _native.optional(
    "vmapple_dma_backend_create_identity", ctypes.c_int,
    [ctypes.POINTER(DmaBackendOptions), ctypes.POINTER(_vp)])
_create_sim_dart = _native.optional(
    "vmapple_dma_backend_create_sim_dart", ctypes.c_int,
    [ctypes.POINTER(SimDartOptions), ctypes.POINTER(_vp)])
_release = _native.optional("vmapple_dma_backend_release", None, [_vp])
_map = _native.optional(
    "vmapple_dma_backend_map", ctypes.c_int,
    [_vp, ctypes.c_uint64, _vp, ctypes.c_uint64, ctypes.c_uint32, _u64p, _u64p])
_unmap = _native.optional(
    "vmapple_dma_backend_unmap", ctypes.c_int,
    [_vp, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64])
_occupancy = _native.optional(
    "vmapple_dma_backend_get_occupancy", ctypes.c_int, [_vp, ctypes.POINTER(OccupancyC)])
_last_error = _native.optional("vmapple_dma_backend_last_error", ctypes.c_char_p, [_vp])


@dataclass(frozen=True)
class Occupancy:
    mappings: int
    max_mappings: int  #: 0 = no limit
    bytes: int
    max_bytes: int  #: 0 = no limit
    failed_maps: int


def _destroy(handle: int, keepalive: object) -> None:
    _release(handle)


def store_mapping(op: str, got, length: int, bus_addr, bus_len) -> None:
    """Store the answer of a Python map callback @op, (bus address, bus
    length), in @bus_addr[0] and @bus_len[0] for the library, refusing
    (ValueError: a callback failure) one that is not 1 .. @length bytes at
    a 64-bit bus address. Used by DMA backends and by host mechanisms'
    dma_map alike."""
    addr, n = got
    if not 0 < n <= length:
        raise ValueError(f"{op} answered {n} bytes for {length}")
    bus_addr[0], bus_len[0] = fit_bits(addr, 64, f"{op} bus address"), n


class _DmaCore(CallbackLog):
    """The C callbacks of a Python DMA backend (never holds the DmaBackend)."""

    def __init__(self, map_fn, unmap_fn, close_fn, label: str):
        super().__init__("dma.", label)
        self.map_fn, self.unmap_fn, self.close_fn = map_fn, unmap_fn, close_fn
        self.closed_by_library = False
        self.fns = (MAP_FN(self.c_map), UNMAP_FN(self.c_unmap), CLOSE_FN(self.c_close))

    def c_map(self, _opaque, gpa, host, length, flags, bus_addr, bus_len):
        def store(got) -> None:
            store_mapping("map", got, length, bus_addr, bus_len)

        return self.call("map", self.map_fn, gpa, host or None, length, flags, convert=store)[0]

    def c_unmap(self, _opaque, gpa, length, bus_addr, bus_len):
        return self.call("unmap", self.unmap_fn, gpa, length, bus_addr, bus_len)[0]

    def c_close(self, _opaque):
        self.closed_by_library = True
        try:
            if self.close_fn is not None:
                self.close_fn()
        except BaseException as e:  # noqa: B902 -- must not reach C
            self.fail("close", e)


def limit_options(struct_type: type[ctypes.Structure], what: str,
                  **limits: int) -> ctypes.Structure | None:
    """The options struct of a DMA backend's non-zero @limits; None when
    every one is 0 (the library's defaults)."""
    return build_options(struct_type, what, {k: v for k, v in limits.items() if v})


class DmaBackend(Closeable):
    """A reference-counted DMA backend. Make one with identity(),
    sim_dart() or from Python callbacks (the constructor); devices given it
    take their own reference, so it may be closed right after.

    Python callbacks: map(gpa, host, length, flags) -> (bus_addr, bus_len)
    where host is the host address of the range or None; unmap(gpa, length,
    bus_addr, bus_len); close(). Raise Fault(errno) to refuse.
    """

    def __init__(self, map: Callable[[int, int | None, int, int], tuple[int, int]],
                 unmap: Callable[[int, int, int, int], None],
                 close: Callable[[], None] | None = None, *, max_mappings: int = 0,
                 max_bytes: int = 0, name: str = "python-dma"):
        core = _DmaCore(map, unmap, close, name)
        ops = DmaOps()
        ops.size = ctypes.sizeof(ops)
        ops.map, ops.unmap, ops.close = core.fns
        opts = limit_options(DmaBackendOptions, "DmaBackend", max_mappings=max_mappings,
                             max_bytes=max_bytes)
        out = ctypes.c_void_p()
        self._check_fn(_create)
        ret = _create(ctypes.byref(ops), None, ctypes.byref(opts) if opts else None,
                      ctypes.byref(out))
        check(ret, function="vmapple_dma_backend_create")
        self._core: _DmaCore | None = core
        self._own(out.value, core)

    @staticmethod
    def _check_fn(fn) -> None:
        if fn is None:
            raise VmappleError(-errno.ENOSYS, "this libvmapple has no DMA backends",
                               "vmapple_dma_backend_create")

    def _own(self, handle: int, keepalive: object = None) -> None:
        self._handle: int | None = handle
        self._finalizer = weakref.finalize(self, _destroy, handle, keepalive)

    @classmethod
    def _adopt(cls, handle: int, keepalive: object = None) -> "DmaBackend":
        """Own a backend the library made without Python callbacks (its
        reference is released with this object); @keepalive lives as long."""
        self = cls.__new__(cls)
        self._core = None
        self._own(handle, keepalive)
        return self

    @classmethod
    def identity(cls, *, max_mappings: int = 0, max_bytes: int = 0) -> "DmaBackend":
        """bus address = guest-physical address; counts only."""
        cls._check_fn(_create_identity)
        opts = limit_options(DmaBackendOptions, "identity", max_mappings=max_mappings,
                             max_bytes=max_bytes)
        out = ctypes.c_void_p()
        ret = _create_identity(ctypes.byref(opts) if opts else None, ctypes.byref(out))
        check(ret, function="vmapple_dma_backend_create_identity")
        return cls._adopt(out.value)

    @classmethod
    def sim_dart(cls, *, max_mappings: int = 0, max_bytes: int = 0,
                 bus_base: int = 0) -> "DmaBackend":
        """A simulated DART with the platform's limits (by default) that
        hands out deliberately unaligned bus addresses."""
        cls._check_fn(_create_sim_dart)
        opts = limit_options(SimDartOptions, "sim_dart", max_mappings=max_mappings,
                             max_bytes=max_bytes, bus_base=bus_base)
        out = ctypes.c_void_p()
        ret = _create_sim_dart(ctypes.byref(opts) if opts else None, ctypes.byref(out))
        check(ret, function="vmapple_dma_backend_create_sim_dart")
        return cls._adopt(out.value)

    def close(self) -> None:
        """Drop this reference. Idempotent."""
        if self._handle is None:
            return
        self._handle = None
        self._finalizer()
        self._check(0, "")

    release = close

    def take_callback_failures(self) -> list[CallbackFailure]:
        return self._core.take_callback_failures() if self._core else []

    @property
    def callback_failures(self) -> list[CallbackFailure]:
        return list(self._core.failures) if self._core else []

    @property
    def closed_by_library(self) -> bool:
        return bool(self._core and self._core.closed_by_library)

    def _check(self, ret: int, function: str) -> int:
        raise_failures(self.take_callback_failures())
        if ret < 0:
            detail = _native.text(_last_error(self._handle)) if self._handle else ""
            raise VmappleError(ret, detail or _native.last_error(), function)
        return ret

    @property
    def last_error(self) -> str:
        return _native.text(_last_error(self.handle))

    def map(self, gpa: int, length: int, flags: int = 0, host: int | None = None
            ) -> tuple[int, int]:
        """Register [gpa, gpa + length): returns (bus address, bus length)."""
        addr, n = ctypes.c_uint64(), ctypes.c_uint64()
        self._check(_map(self.handle, gpa, host, length, flags, ctypes.byref(addr),
                         ctypes.byref(n)), "vmapple_dma_backend_map")
        return addr.value, n.value

    def unmap(self, gpa: int, length: int, bus_addr: int, bus_len: int) -> None:
        self._check(_unmap(self.handle, gpa, length, bus_addr, bus_len),
                    "vmapple_dma_backend_unmap")

    def occupancy(self) -> Occupancy:
        o = OccupancyC()
        o.size = ctypes.sizeof(o)
        self._check(_occupancy(self.handle, ctypes.byref(o)),
                    "vmapple_dma_backend_get_occupancy")
        return Occupancy(o.mappings, o.max_mappings, o.bytes, o.max_bytes, o.failed_maps)
