# SPDX-License-Identifier: MIT
"""vfio-apple: the VMM-side policy of PCI passthrough on Apple hosts
(vfio-apple.h): host mechanisms (backends), the passed-through function, and
the simulated host mechanism for tests."""

from __future__ import annotations

import ctypes
import enum
import errno
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from . import _native
from ._handle import Closeable
from .apple_dma_pci import AppleDmaPci, AppleDmaPciOptions
from .device import Device, fit_bits, fit_field, set_int_field
from .dma import DmaBackend, DmaBackendOptions, limit_options, store_mapping
from .errors import CallbackFailure, CallbackLog, VmappleError, check
from .host import Host, raise_failures, take_failures

CONFIG_SIZE = 4096
MAX_VECTORS = 256

BAR_MEM = 1 << 0
BAR_IO = 1 << 1
BAR_64 = 1 << 2
BAR_PREFETCH = 1 << 3

PCIACCESS_ALLOW_WRITE = 1 << 0

REGION_READ = 1 << 0
REGION_WRITE = 1 << 1
REGION_MMAP = 1 << 2


class IrqType(enum.IntEnum):
    NONE = 0
    INTX = 1
    MSI = 2
    MSIX = 3
    ERR = 4
    REQ = 5


class RegionIndex(enum.IntEnum):
    BAR0 = 0
    BAR1 = 1
    BAR2 = 2
    BAR3 = 3
    BAR4 = 4
    BAR5 = 5
    ROM = 6
    CONFIG = 7
    VGA = 8


def host_fn(bus: int, device: int, function: int = 0) -> int:
    """The registry key of host function bus:device.function."""
    return ((bus & 0xFF) << 16) | ((device & 0x1F) << 8) | (function & 0x7)


class BarInfoC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("bar_size", ctypes.c_uint64), ("address", ctypes.c_uint64)]


class FunctionInfoC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("domain", ctypes.c_uint16), ("bus", ctypes.c_uint8),
                ("device", ctypes.c_uint8), ("function", ctypes.c_uint8),
                ("revision", ctypes.c_uint8), ("vendor_id", ctypes.c_uint16),
                ("device_id", ctypes.c_uint16), ("subsystem_vendor_id", ctypes.c_uint16),
                ("subsystem_id", ctypes.c_uint16), ("reserved", ctypes.c_uint16),
                ("class_code", ctypes.c_uint32)]


class PciaccessOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("domain", ctypes.c_uint16)]


class RegionInfoC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("region_size", ctypes.c_uint64)]


IRQ_DELIVER_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)
SIM_NOTIFY_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32)

_c = ctypes
_CONNECT_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_uint32, _c.POINTER(_c.c_void_p))
_DISCONNECT_FN = _c.CFUNCTYPE(None, _c.c_void_p, _c.c_void_p)
_CONFIG_READ_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint32, _c.c_void_p,
                               _c.c_uint32)
_CONFIG_WRITE_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint32, _c.c_uint32,
                                _c.c_uint32)
_BAR_INFO_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint32,
                            _c.POINTER(BarInfoC))
_BAR_MAP_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint32,
                           _c.POINTER(_c.c_void_p), _c.POINTER(_c.c_uint64))
_BAR_UNMAP_FN = _c.CFUNCTYPE(None, _c.c_void_p, _c.c_void_p, _c.c_uint32, _c.c_void_p,
                             _c.c_uint64)
_DMA_MAP_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint64, _c.c_void_p,
                           _c.c_uint64, _c.c_uint32, _c.POINTER(_c.c_uint64),
                           _c.POINTER(_c.c_uint64))
_DMA_UNMAP_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.c_uint64, _c.c_uint64,
                             _c.c_uint64, _c.c_uint64)
_IRQ_SETUP_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.POINTER(_c.c_uint32))
_IRQ_BITMAP_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p, _c.POINTER(_c.c_uint64))
_CONN_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_void_p)
_GET_FUNCTION_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_uint32, _c.POINTER(FunctionInfoC))
_CLOSE_FN = _c.CFUNCTYPE(None, _c.c_void_p)


class VfioBackendOps(ctypes.Structure):
    _fields_ = [
        ("size", _c.c_uint32),
        ("connect", _CONNECT_FN),
        ("disconnect", _DISCONNECT_FN),
        ("config_read", _CONFIG_READ_FN),
        ("config_write", _CONFIG_WRITE_FN),
        ("bar_info", _BAR_INFO_FN),
        ("bar_map", _BAR_MAP_FN),
        ("bar_unmap", _BAR_UNMAP_FN),
        ("dma_map", _DMA_MAP_FN),
        ("dma_unmap", _DMA_UNMAP_FN),
        ("irq_setup", _IRQ_SETUP_FN),
        ("irq_read_and_clear", _IRQ_BITMAP_FN),
        ("irq_set_mask", _IRQ_BITMAP_FN),
        ("irq_arm", _CONN_FN),
        ("reset", _CONN_FN),
        ("get_function", _GET_FUNCTION_FN),
        ("close", _CLOSE_FN),
    ]


class VfioAppleOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("guest_bdf", ctypes.c_uint16),
                ("host_bus", ctypes.c_uint8), ("host_device", ctypes.c_uint8),
                ("host_function", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 7),
                ("backend", ctypes.c_void_p), ("companion", ctypes.POINTER(AppleDmaPciOptions)),
                ("irq_deliver", IRQ_DELIVER_FN)]


class SimOptions(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("reserved", ctypes.c_uint32),
                ("dma", ctypes.c_void_p), ("notify", SIM_NOTIFY_FN),
                ("notify_opaque", ctypes.c_void_p)]


class SimFunctionC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("bus", ctypes.c_uint8), ("device", ctypes.c_uint8),
                ("function", ctypes.c_uint8), ("reserved0", ctypes.c_uint8),
                ("config_len", ctypes.c_uint32), ("msi_vectors", ctypes.c_uint32),
                ("config", ctypes.c_void_p), ("config_bytes", ctypes.c_uint32),
                ("reserved1", ctypes.c_uint32), ("bar_size", ctypes.c_uint64 * 6),
                ("bar_flags", ctypes.c_uint32 * 6)]


class SimStateC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("connected", ctypes.c_uint32),
                ("connects", ctypes.c_uint32), ("resets", ctypes.c_uint32),
                ("config_writes", ctypes.c_uint32), ("irq_setups", ctypes.c_uint32),
                ("arms", ctypes.c_uint32), ("armed", ctypes.c_uint32),
                ("notifies", ctypes.c_uint32), ("bars_mapped", ctypes.c_uint32),
                ("pending", ctypes.c_uint64 * 4), ("mask", ctypes.c_uint64 * 4)]


_vp = ctypes.c_void_p
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_P = ctypes.POINTER
_PROTOS = {
    "vmapple_vfio_backend_create": (ctypes.c_int, [_P(VfioBackendOps), _vp, _P(_vp)]),
    "vmapple_vfio_backend_create_pciaccess": (ctypes.c_int, [_P(PciaccessOptions), _P(_vp)]),
    "vmapple_vfio_backend_release": (None, [_vp]),
    "vmapple_vfio_backend_get_function": (ctypes.c_int, [_vp, _u32, _P(FunctionInfoC)]),
    "vmapple_vfio_backend_read_config": (ctypes.c_int, [_vp, _u32, _u32, _vp, _u32]),
    "vmapple_vfio_backend_get_bar_info": (ctypes.c_int, [_vp, _u32, _u32, _P(BarInfoC)]),
    "vmapple_vfio_backend_get_refs": (ctypes.c_int, [_vp, _u32]),
    "vmapple_vfio_backend_is_owned": (ctypes.c_int, [_vp, _u32]),
    "vmapple_vfio_backend_get_dma": (ctypes.c_int,
                                     [_vp, _u32, _P(DmaBackendOptions), _P(_vp)]),
    "vmapple_vfio_backend_last_error": (ctypes.c_char_p, [_vp]),
    "vmapple_vfio_apple_create": (ctypes.c_int, [_P(_native.HostOps), _vp,
                                                 _P(VfioAppleOptions), _P(_vp)]),
    "vmapple_vfio_apple_destroy": (None, [_vp]),
    "vmapple_vfio_apple_last_error": (ctypes.c_char_p, [_vp]),
    "vmapple_vfio_apple_config_read": (ctypes.c_int, [_vp, _u32, _u32, _P(_u32)]),
    "vmapple_vfio_apple_config_read_block": (ctypes.c_int, [_vp, _u32, _vp, _u32]),
    "vmapple_vfio_apple_config_write": (ctypes.c_int, [_vp, _u32, _u32, _u32]),
    "vmapple_vfio_apple_bar_read": (ctypes.c_int, [_vp, _u32, _u64, _u32, _P(_u64)]),
    "vmapple_vfio_apple_bar_write": (ctypes.c_int, [_vp, _u32, _u64, _u32, _u64]),
    "vmapple_vfio_apple_get_bar_memory": (ctypes.c_int, [_vp, _u32, _P(_vp), _P(_u64)]),
    "vmapple_vfio_apple_get_region_info": (ctypes.c_int, [_vp, _u32, _P(RegionInfoC)]),
    "vmapple_vfio_apple_get_irq_count": (ctypes.c_int, [_vp, _u32]),
    "vmapple_vfio_apple_set_irqs": (ctypes.c_int, [_vp, _u32, _u32, _P(_u64)]),
    "vmapple_vfio_apple_process_interrupts": (ctypes.c_int, [_vp]),
    "vmapple_vfio_apple_reset": (ctypes.c_int, [_vp]),
    "vmapple_vfio_apple_attach_companion": (ctypes.c_int, [_vp, _P(_vp), _u32, _P(_vp)]),
    "vmapple_vfio_sim_create": (ctypes.c_int, [_P(SimOptions), _P(_vp)]),
    "vmapple_vfio_sim_destroy": (None, [_vp]),
    "vmapple_vfio_sim_add_function": (ctypes.c_int, [_vp, _P(SimFunctionC)]),
    "vmapple_vfio_sim_get_backend": (_vp, [_vp]),
    "vmapple_vfio_sim_raise": (ctypes.c_int, [_vp, _u32, _u32]),
    "vmapple_vfio_sim_get_state": (ctypes.c_int, [_vp, _u32, _P(SimStateC)]),
    "vmapple_vfio_sim_get_config_write": (ctypes.c_int, [_vp, _u32, _u32, _P(_u32), _P(_u32),
                                                         _P(_u32)]),
    "vmapple_vfio_sim_get_bar_memory": (ctypes.c_int, [_vp, _u32, _u32, _P(_vp), _P(_u64)]),
}


class _Lib:
    """The vfio-apple functions, or ENOSYS when this library lacks them."""

    def __getattr__(self, name: str):
        full = "vmapple_" + name
        res, args = _PROTOS[full]
        fn = _native.optional(full, res, args)
        if fn is None:
            raise VmappleError(-errno.ENOSYS, f"this libvmapple has no {full}", full)
        setattr(self, name, fn)
        return fn


_lib = _Lib()


@dataclass(frozen=True)
class FunctionInfo:
    domain: int
    bus: int
    device: int
    function: int
    revision: int
    vendor_id: int
    device_id: int
    subsystem_vendor_id: int
    subsystem_id: int
    class_code: int

    @property
    def host_fn(self) -> int:
        return host_fn(self.bus, self.device, self.function)


@dataclass(frozen=True)
class BarInfo:
    flags: int  #: BAR_MEM, BAR_IO, BAR_64, BAR_PREFETCH
    size: int  #: 0 when not implemented
    address: int


@dataclass(frozen=True)
class RegionInfo:
    flags: int  #: REGION_READ, REGION_WRITE, REGION_MMAP
    size: int


@dataclass(frozen=True)
class VfioIrqEvent:
    """A passed-through function's interrupt was delivered (irq_deliver);
    also in Host.events."""

    time_ns: int
    device: str
    type: IrqType
    vector: int


@dataclass(frozen=True)
class SimState:
    connected: bool
    connects: int
    resets: int
    config_writes: int
    irq_setups: int
    arms: int
    armed: bool
    notifies: int
    bars_mapped: int
    pending: int  #: 256-bit bitmap as an int
    mask: int


def _bits(words) -> int:
    return sum(int(w) << (64 * i) for i, w in enumerate(words))


class _VfioCore(CallbackLog):
    """The C callbacks of a Python host mechanism (never holds the
    VfioBackend). Connections are Python objects behind small integer ids.
    What the implementation answers is converted for the library inside the
    failure handling: a wrong answer is a callback failure, never an
    exception in ctypes."""

    OPTIONAL = ("config_write", "bar_info", "bar_map", "bar_unmap", "dma_map", "dma_unmap",
                "irq_setup", "irq_read_and_clear", "irq_set_mask", "irq_arm", "reset",
                "get_function", "close")

    def __init__(self, impl: object, label: str):
        super().__init__("vfio backend.", label)
        self.impl = impl
        self.conns: dict[int, object] = {}
        self.next_id = 1
        self.bars: dict[tuple[int, int], ctypes.Array] = {}
        self.closed_by_library = False

    def _call(self, op: str, *args, convert: Callable[[object], object] | None = None):
        """Run impl.op(*args), then @convert on its answer: (0, converted
        answer) or (-errno, None)."""
        return self.call(op, lambda: getattr(self.impl, op)(*args), convert=convert)

    def ops(self) -> VfioBackendOps:
        o = VfioBackendOps()
        o.size = ctypes.sizeof(o)
        fns = {"connect": _CONNECT_FN(self.connect), "disconnect": _DISCONNECT_FN(self.disconnect),
               "config_read": _CONFIG_READ_FN(self.config_read),
               "close": _CLOSE_FN(self.close)}
        table = {"config_write": (_CONFIG_WRITE_FN, self.config_write),
                 "bar_info": (_BAR_INFO_FN, self.bar_info),
                 "bar_map": (_BAR_MAP_FN, self.bar_map),
                 "bar_unmap": (_BAR_UNMAP_FN, self.bar_unmap),
                 "dma_map": (_DMA_MAP_FN, self.dma_map),
                 "dma_unmap": (_DMA_UNMAP_FN, self.dma_unmap),
                 "irq_setup": (_IRQ_SETUP_FN, self.irq_setup),
                 "irq_read_and_clear": (_IRQ_BITMAP_FN, self.irq_read_and_clear),
                 "irq_set_mask": (_IRQ_BITMAP_FN, self.irq_set_mask),
                 "irq_arm": (_CONN_FN, self.irq_arm),
                 "reset": (_CONN_FN, self.reset),
                 "get_function": (_GET_FUNCTION_FN, self.get_function)}
        for name, (ftype, fn) in table.items():
            if callable(getattr(self.impl, name, None)):
                fns[name] = ftype(fn)
        for name, fn in fns.items():
            setattr(o, name, fn)
        self.fns = fns
        return o

    def connect(self, _opaque, fn, conn_out):
        def register(conn) -> None:
            cid = self.next_id
            self.next_id += 1
            self.conns[cid] = conn
            conn_out[0] = cid

        return self._call("connect", fn, convert=register)[0]

    def disconnect(self, _opaque, cid):
        conn = self.conns.pop(cid or 0, None)
        self._call("disconnect", conn)

    def config_read(self, _opaque, cid, offset, buf, length):
        def copy(data) -> int:
            data = memoryview(data).cast("B")
            if data.nbytes > length:
                raise ValueError(f"config_read returned {data.nbytes} bytes for {length}")
            ctypes.memmove(buf, bytes(data), data.nbytes)
            return data.nbytes

        ret, n = self._call("config_read", self.conns.get(cid or 0), offset, length, convert=copy)
        return ret if ret < 0 else n

    def config_write(self, _opaque, cid, offset, size, value):
        return self._call("config_write", self.conns.get(cid or 0), offset, size, value)[0]

    def bar_info(self, _opaque, cid, bar, info):
        def store(got) -> None:
            got = got if got is not None else BarInfo(0, 0, 0)
            if not isinstance(got, BarInfo):
                got = BarInfo(*got)
            fit_field(info.contents, "flags", got.flags, "bar_info flags")
            fit_field(info.contents, "bar_size", got.size, "bar_info size")
            fit_field(info.contents, "address", got.address, "bar_info address")

        return self._call("bar_info", self.conns.get(cid or 0), bar, convert=store)[0]

    def bar_map(self, _opaque, cid, bar, host, length):
        def pin(buf) -> None:
            # Pinning the buffer keeps its address valid until bar_unmap.
            arr = (ctypes.c_char * memoryview(buf).nbytes).from_buffer(buf)
            self.bars[(cid, bar)] = arr
            host[0] = ctypes.addressof(arr)
            length[0] = len(arr)

        return self._call("bar_map", self.conns.get(cid or 0), bar, convert=pin)[0]

    def bar_unmap(self, _opaque, cid, bar, host, length):
        self._call("bar_unmap", self.conns.get(cid or 0), bar)
        self.bars.pop((cid, bar), None)

    def dma_map(self, _opaque, cid, gpa, host, length, flags, bus_addr, bus_len):
        def store(got) -> None:
            store_mapping("dma_map", got, length, bus_addr, bus_len)

        return self._call("dma_map", self.conns.get(cid or 0), gpa, host or None, length, flags,
                          convert=store)[0]

    def dma_unmap(self, _opaque, cid, gpa, length, bus_addr, bus_len):
        return self._call("dma_unmap", self.conns.get(cid or 0), gpa, length, bus_addr,
                          bus_len)[0]

    def irq_setup(self, _opaque, cid, vectors):
        def store(n) -> None:
            # Above 256 the library uses 256 (and logs it); what a uint32_t
            # cannot hold is refused here, not truncated.
            vectors[0] = fit_bits(int(n), 32, "irq_setup vectors")

        return self._call("irq_setup", self.conns.get(cid or 0), convert=store)[0]

    def irq_read_and_clear(self, _opaque, cid, pending):
        def store(bits) -> None:
            bits = fit_bits(int(bits), 64 * 4, "irq_read_and_clear bitmap")
            for i in range(4):
                pending[i] = (bits >> (64 * i)) & 0xFFFFFFFFFFFFFFFF

        return self._call("irq_read_and_clear", self.conns.get(cid or 0), convert=store)[0]

    def irq_set_mask(self, _opaque, cid, mask):
        return self._call("irq_set_mask", self.conns.get(cid or 0),
                          sum(mask[i] << (64 * i) for i in range(4)))[0]

    def irq_arm(self, _opaque, cid):
        return self._call("irq_arm", self.conns.get(cid or 0))[0]

    def reset(self, _opaque, cid):
        return self._call("reset", self.conns.get(cid or 0))[0]

    def get_function(self, _opaque, index, info):
        def store(f) -> int:
            if f is None:
                return -errno.ENOENT
            c = info.contents
            for name in ("domain", "bus", "device", "function", "revision", "vendor_id",
                         "device_id", "subsystem_vendor_id", "subsystem_id", "class_code"):
                fit_field(c, name, getattr(f, name), f"get_function {name}")
            return 0

        ret, got = self._call("get_function", index, convert=store)
        return ret or got

    def close(self, _opaque):
        self.closed_by_library = True
        if callable(getattr(self.impl, "close", None)):
            self._call("close")


def _release_backend(handle: int, keepalive: object) -> None:
    _lib.vfio_backend_release(handle)


class VfioBackend(Closeable):
    """A host mechanism for passthrough and its registry of connections.
    Get one from VfioSim.backend, or VfioBackend.pciaccess() (the host's
    real PCI functions, read-only unless allow_write)."""

    def _init(self, handle: int, *, owned: bool, owner: object = None,
              core: _VfioCore | None = None) -> None:
        self._handle: int | None = handle
        self._owner = owner  # a VfioSim whose backend this is (borrowed)
        self._core = core  # the callbacks of a Python host mechanism
        self._finalizer = weakref.finalize(self, _release_backend, handle, core) if owned \
            else None

    @classmethod
    def pciaccess(cls, *, allow_write: bool = False, domain: int = 0) -> "VfioBackend":
        """The libpciaccess backend (VmappleError ENOTSUP when the library
        was built without it)."""
        o = PciaccessOptions()
        o.size = ctypes.sizeof(o)
        o.flags = PCIACCESS_ALLOW_WRITE if allow_write else 0
        set_int_field(o, "domain", domain, "VfioBackend.pciaccess")
        out = ctypes.c_void_p()
        ret = _lib.vfio_backend_create_pciaccess(ctypes.byref(o), ctypes.byref(out))
        check(ret, function="vmapple_vfio_backend_create_pciaccess")
        self = cls.__new__(cls)
        self._init(out.value, owned=True)
        return self

    @classmethod
    def from_python(cls, impl: object, name: str = "python-vfio") -> "VfioBackend":
        """A host mechanism implemented in Python. @impl has the methods
        connect(host_fn) -> conn (any object; raise Fault(ENODEV) for no
        such function), disconnect(conn), config_read(conn, offset, length)
        -> bytes, and optionally config_write(conn, offset, size, value),
        bar_info(conn, bar) -> BarInfo or (flags, size, address),
        bar_map(conn, bar) -> a writable buffer (bytearray, mmap) that is
        the BAR, bar_unmap(conn, bar), dma_map(conn, gpa, host, length,
        flags) -> (bus_addr, bus_len), dma_unmap(conn, gpa, length,
        bus_addr, bus_len), irq_setup(conn) -> vectors,
        irq_read_and_clear(conn) -> int bitmap, irq_set_mask(conn, int
        bitmap), irq_arm(conn), reset(conn), get_function(index) ->
        FunctionInfo or None past the end, close(). Raise Fault(errno) to
        fail; other exceptions, and answers that are not what is described
        here, become -EIO and a CallbackError."""
        core = _VfioCore(impl, name)
        ops = core.ops()
        out = ctypes.c_void_p()
        ret = _lib.vfio_backend_create(ctypes.byref(ops), None, ctypes.byref(out))
        check(ret, function="vmapple_vfio_backend_create")
        self = cls.__new__(cls)
        self._init(out.value, owned=True, core=core)
        return self

    def take_callback_failures(self) -> list[CallbackFailure]:
        return self._core.take_callback_failures() if self._core is not None else []

    @property
    def callback_failures(self) -> list[CallbackFailure]:
        return list(self._core.failures) if self._core is not None else []

    @property
    def handle(self) -> int:
        handle = super().handle
        if self._owner is not None and self._owner.closed:
            # Borrowed from a simulation that has been closed: the library
            # may have freed it.
            raise ValueError("the VfioSim of this backend is closed")
        return handle

    @property
    def closed(self) -> bool:
        return super().closed or (self._owner is not None and self._owner.closed)

    def close(self) -> None:
        """Drop this reference (a backend borrowed from a VfioSim lives on
        with it). Idempotent."""
        if self._handle is None:
            return
        self._handle = None
        if self._finalizer is not None:
            self._finalizer()
        self._check(0, "")

    def _check(self, ret: int, function: str) -> int:
        raise_failures(self.take_callback_failures())
        if ret < 0:
            detail = _native.text(_lib.vfio_backend_last_error(self._handle))
            raise VmappleError(ret, detail or _native.last_error(), function)
        return ret

    @property
    def last_error(self) -> str:
        return _native.text(_lib.vfio_backend_last_error(self.handle))

    def functions(self) -> list[FunctionInfo]:
        """Every host function the backend can enumerate."""
        out = []
        for i in range(1 << 16):
            c = FunctionInfoC()
            c.size = ctypes.sizeof(c)
            ret = _lib.vfio_backend_get_function(self.handle, i, ctypes.byref(c))
            if ret == -errno.ENOENT:
                break
            self._check(ret, "vmapple_vfio_backend_get_function")
            out.append(FunctionInfo(c.domain, c.bus, c.device, c.function, c.revision,
                                    c.vendor_id, c.device_id, c.subsystem_vendor_id,
                                    c.subsystem_id, c.class_code))
        return out

    def read_config(self, fn: int, offset: int, length: int) -> bytes:
        """Config bytes of host function @fn (fewer when its space is shorter)."""
        buf = ctypes.create_string_buffer(length)
        n = self._check(_lib.vfio_backend_read_config(self.handle, fn, offset, buf, length),
                        "vmapple_vfio_backend_read_config")
        return buf.raw[:n]

    def bar_info(self, fn: int, bar: int) -> BarInfo:
        c = BarInfoC()
        c.size = ctypes.sizeof(c)
        self._check(_lib.vfio_backend_get_bar_info(self.handle, fn, bar, ctypes.byref(c)),
                    "vmapple_vfio_backend_get_bar_info")
        return BarInfo(c.flags, c.bar_size, c.address)

    def refs(self, fn: int) -> int:
        return self._check(_lib.vfio_backend_get_refs(self.handle, fn),
                           "vmapple_vfio_backend_get_refs")

    def is_owned(self, fn: int) -> bool:
        return bool(self._check(_lib.vfio_backend_is_owned(self.handle, fn),
                                "vmapple_vfio_backend_is_owned"))

    def dma(self, fn: int, *, max_mappings: int = 0, max_bytes: int = 0) -> DmaBackend:
        """A DMA backend going to @fn's dma_map/dma_unmap. A failure raises
        here, and leaves no DMA backend behind holding @fn's connection."""
        o = limit_options(DmaBackendOptions, "VfioBackend.dma", max_mappings=max_mappings,
                          max_bytes=max_bytes)
        out = ctypes.c_void_p()
        ret = _lib.vfio_backend_get_dma(self.handle, fn, ctypes.byref(o) if o else None,
                                        ctypes.byref(out))
        if ret < 0:
            self._check(ret, "vmapple_vfio_backend_get_dma")
        # Owned at once (the backend object outlives the DMA backend), so
        # that a failure raised by this call releases it.
        dma = DmaBackend._adopt(out.value, self)
        failures = self.take_callback_failures()
        if failures:
            dma.close()  # may disconnect: what that raises is reported too
            raise_failures(failures + self.take_callback_failures())
        return dma


def _destroy_sim(handle: int, keepalive: object) -> None:
    _lib.vfio_sim_destroy(handle)


class VfioSim(Closeable):
    """A simulated host mechanism with fake functions, for tests.

    Args:
        dma: where the functions' dma_map goes (None: one simulated DART).
        notify: called with the host_fn when a raised interrupt finds the
            function armed (the "interrupts pending" notification).
    """

    def __init__(self, *, dma: DmaBackend | None = None,
                 notify: Callable[[int], None] | None = None):
        self.notifications: list[int] = []
        self._callbacks = callbacks = CallbackLog("vfio sim ", "vfio-sim")
        notes = self.notifications

        def c_notify(_opaque, fn):
            try:
                notes.append(fn)
                if notify is not None:
                    notify(fn)
            except BaseException as e:  # noqa: B902 -- must not reach C
                callbacks.fail("notify", e)

        o = SimOptions()
        o.size = ctypes.sizeof(o)
        o.dma = dma.handle if dma is not None else None
        fn = SIM_NOTIFY_FN(c_notify)
        o.notify = fn
        out = ctypes.c_void_p()
        ret = _lib.vfio_sim_create(ctypes.byref(o), ctypes.byref(out))
        check(ret, function="vmapple_vfio_sim_create")
        self._handle: int | None = out.value
        self._finalizer = weakref.finalize(self, _destroy_sim, out.value, (fn, dma))
        self.backend = VfioBackend.__new__(VfioBackend)
        self.backend._init(_lib.vfio_sim_get_backend(out.value), owned=False, owner=self)

    def close(self) -> None:
        """Drop the simulation's own reference (its functions live on while
        passthrough objects use its backend)."""
        if self._handle is None:
            return
        self._handle = None
        self._finalizer()

    def _check(self, ret: int, function: str) -> int:
        raise_failures(self._callbacks.take_callback_failures())
        return check(ret, function=function)

    def add_function(self, bus: int, device: int, function: int = 0, *,
                     config: bytes = b"", config_len: int = 0, msi_vectors: int = 0,
                     bars: dict[int, int | tuple[int, int]] | None = None) -> int:
        """Add a fake function; @bars maps BAR number to size or (size,
        BAR_64 | BAR_PREFETCH flags). Returns its host_fn."""
        c = SimFunctionC()
        c.size = ctypes.sizeof(c)
        for name, value in (("bus", bus), ("device", device), ("function", function),
                            ("config_len", config_len), ("msi_vectors", msi_vectors)):
            set_int_field(c, name, value, "VfioSim.add_function")
        buf = ctypes.create_string_buffer(bytes(config), len(config)) if config else None
        c.config = ctypes.cast(buf, ctypes.c_void_p) if buf is not None else None
        c.config_bytes = len(config)
        for bar, spec in (bars or {}).items():
            size, flags = spec if isinstance(spec, tuple) else (spec, 0)
            c.bar_size[bar] = size
            c.bar_flags[bar] = flags
        self._check(_lib.vfio_sim_add_function(self.handle, ctypes.byref(c)),
                    "vmapple_vfio_sim_add_function")
        return host_fn(bus, device, function)

    def raise_irq(self, fn: int, vector: int) -> None:
        """Make @vector pending on @fn, as the device would."""
        self._check(_lib.vfio_sim_raise(self.handle, fn, vector), "vmapple_vfio_sim_raise")

    def state(self, fn: int) -> SimState:
        c = SimStateC()
        c.size = ctypes.sizeof(c)
        self._check(_lib.vfio_sim_get_state(self.handle, fn, ctypes.byref(c)),
                    "vmapple_vfio_sim_get_state")
        return SimState(bool(c.connected), c.connects, c.resets, c.config_writes, c.irq_setups,
                        c.arms, bool(c.armed), c.notifies, c.bars_mapped, _bits(c.pending),
                        _bits(c.mask))

    def config_writes(self, fn: int) -> list[tuple[int, int, int]]:
        """The config writes that reached @fn (offset, size, value), oldest
        first (the last 256 are kept)."""
        total = self.state(fn).config_writes
        out = []
        for i in range(max(0, total - 256), total):
            o, s, v = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
            self._check(_lib.vfio_sim_get_config_write(self.handle, fn, i, ctypes.byref(o),
                                                       ctypes.byref(s), ctypes.byref(v)),
                        "vmapple_vfio_sim_get_config_write")
            out.append((o.value, s.value, v.value))
        return out

    def bar_memory(self, fn: int, bar: int) -> memoryview:
        """The memory behind a fake BAR (writable; keeps the simulation alive)."""
        host, size = ctypes.c_void_p(), ctypes.c_uint64()
        self._check(_lib.vfio_sim_get_bar_memory(self.handle, fn, bar, ctypes.byref(host),
                                                 ctypes.byref(size)),
                    "vmapple_vfio_sim_get_bar_memory")
        return _native.buffer_at(host.value, size.value, owner=self)


def _destroy_pt(handle: int, slot_id: int, host: Host, keepalive: object) -> None:
    _lib.vfio_apple_destroy(handle)
    host._detach(slot_id)


class VfioPassthrough(Closeable):
    """One passed-through host function (vmapple_vfio_apple).

    Args:
        backend: the host mechanism (a VfioBackend).
        host: host callbacks for the apple-dma-pci companion and log lines
            (default: a new Host without memory).
        guest_bdf, host_bus, host_device, host_function: where the function
            sits for the guest and on the host.
        companion: AppleDmaPci options for an automatically created
            companion (dict; dma=None: the host function's own DMA).
        on_irq: called with (IrqType, vector) for every delivered interrupt;
            every one is also recorded in irq_events and host.events.
    """

    def __init__(self, backend: VfioBackend, host: Host | None = None, *, guest_bdf: int = 0,
                 host_bus: int = 0, host_device: int = 0, host_function: int = 0,
                 companion: dict | None = None,
                 on_irq: Callable[[IrqType, int], None] | None = None):
        self._handle: int | None = None
        self.host = host if host is not None else Host()
        self.backend = backend
        self.irq_events: list[VfioIrqEvent] = []
        events, hst = self.irq_events, self.host

        def deliver(_opaque, type_, vector):
            try:
                ev = VfioIrqEvent(time.monotonic_ns(), "vfio-apple", IrqType(type_), vector)
                events.append(ev)
                hst.events.append(ev)
                if on_irq is not None:
                    on_irq(IrqType(type_), vector)
            except BaseException as e:  # noqa: B902 -- must not reach C
                hst._fail("vfio irq_deliver", "vfio-apple", e)

        o = VfioAppleOptions()
        o.size = ctypes.sizeof(o)
        for name, value in (("guest_bdf", guest_bdf), ("host_bus", host_bus),
                            ("host_device", host_device), ("host_function", host_function)):
            set_int_field(o, name, value, "VfioPassthrough")
        o.backend = backend.handle
        keep: tuple = ()
        if companion is not None:
            tmpl, keep = AppleDmaPci.build(dict(companion), "VfioPassthrough companion",
                                           always=True)
            o.companion = ctypes.pointer(tmpl)
            keep = keep + (tmpl,)
        fn = IRQ_DELIVER_FN(deliver)
        o.irq_deliver = fn
        # Everything above raises before the host has a slot for the function.
        slot_id = hst._attach("vfio-apple")
        out = ctypes.c_void_p()
        ret = _lib.vfio_apple_create(ctypes.byref(hst._ops), slot_id, ctypes.byref(o),
                                     ctypes.byref(out))
        if ret < 0:
            detail = _native.last_error()
            hst._detach(slot_id)
            # A callback raising during a failed create is the more useful report.
            raise_failures(self._callback_failures())
            raise VmappleError(ret, detail, "vmapple_vfio_apple_create")
        self._handle = out.value
        self._slot_id = slot_id
        self._companion: AppleDmaPci | None = None
        self._finalizer = weakref.finalize(self, _destroy_pt, out.value, slot_id, hst,
                                           (fn, backend, keep, hst))
        failures = self._callback_failures()
        if failures:
            # Callbacks raised while the function was taken (interrupt setup,
            # BAR mapping): this call fails, and releases the function
            # rather than leave it owned by an object nobody holds.
            self._handle = None
            self._finalizer()
            raise_failures(failures + self._callback_failures())

    def close(self) -> None:
        """Release the function (and an automatically created companion,
        which is unmapped from buses first)."""
        if self._handle is None:
            return
        if self._companion is not None:
            self._companion.close()
        self._handle = None
        self._finalizer()
        self.host.raise_callback_errors_now()

    def _callback_failures(self) -> list[CallbackFailure]:
        """What the host's and the backend's callbacks raised that is not
        raised yet."""
        return take_failures(self.host, (self.backend,))

    def _check(self, ret: int, function: str) -> int:
        raise_failures(self._callback_failures())
        if ret < 0:
            detail = _native.text(_lib.vfio_apple_last_error(self._handle))
            raise VmappleError(ret, detail or _native.last_error(), function)
        return ret

    @property
    def last_error(self) -> str:
        return _native.text(_lib.vfio_apple_last_error(self.handle))

    def config_read(self, offset: int, size: int = 4) -> int:
        v = ctypes.c_uint32()
        self._check(_lib.vfio_apple_config_read(self.handle, offset, size, ctypes.byref(v)),
                    "vmapple_vfio_apple_config_read")
        return v.value

    def config_read_block(self, offset: int, length: int) -> bytes:
        buf = ctypes.create_string_buffer(length)
        self._check(_lib.vfio_apple_config_read_block(self.handle, offset, buf, length),
                    "vmapple_vfio_apple_config_read_block")
        return buf.raw

    def config_write(self, offset: int, value: int, size: int = 4) -> None:
        """A config write through the policy (COMMAND forwarded bytewise,
        STATUS/BAR writes dropped, the rest forwarded)."""
        self._check(_lib.vfio_apple_config_write(self.handle, offset, size, value & 0xFFFFFFFF),
                    "vmapple_vfio_apple_config_write")

    def bar_read(self, bar: int, offset: int, size: int = 4) -> int:
        v = ctypes.c_uint64()
        self._check(_lib.vfio_apple_bar_read(self.handle, bar, offset, size, ctypes.byref(v)),
                    "vmapple_vfio_apple_bar_read")
        return v.value

    def bar_write(self, bar: int, offset: int, value: int, size: int = 4) -> None:
        self._check(_lib.vfio_apple_bar_write(self.handle, bar, offset, size,
                                              value & 0xFFFFFFFFFFFFFFFF),
                    "vmapple_vfio_apple_bar_write")

    def bar_memory(self, bar: int) -> memoryview:
        """The host mapping of a BAR (keeps this object alive; invalid after
        close())."""
        host, size = ctypes.c_void_p(), ctypes.c_uint64()
        self._check(_lib.vfio_apple_get_bar_memory(self.handle, bar, ctypes.byref(host),
                                                   ctypes.byref(size)),
                    "vmapple_vfio_apple_get_bar_memory")
        return _native.buffer_at(host.value, size.value, owner=self)

    def region_info(self, index: int) -> RegionInfo:
        c = RegionInfoC()
        c.size = ctypes.sizeof(c)
        self._check(_lib.vfio_apple_get_region_info(self.handle, index, ctypes.byref(c)),
                    "vmapple_vfio_apple_get_region_info")
        return RegionInfo(c.flags, c.region_size)

    def irq_count(self, type_: IrqType | int) -> int:
        return self._check(_lib.vfio_apple_get_irq_count(self.handle, int(type_)),
                           "vmapple_vfio_apple_get_irq_count")

    def set_irqs(self, type_: IrqType | int, enabled: int = 0,
                 in_use: Iterable[int] = ()) -> None:
        """Choose the interrupt mode: @enabled vectors, @in_use the vectors
        the VMM delivers."""
        bitmap = (ctypes.c_uint64 * 4)()
        for v in in_use:
            if not 0 <= v < MAX_VECTORS:
                raise ValueError(f"set_irqs: vector {v} is not 0..255")
            bitmap[v // 64] |= 1 << (v % 64)
        self._check(_lib.vfio_apple_set_irqs(self.handle, int(type_), enabled, bitmap),
                    "vmapple_vfio_apple_set_irqs")

    def process_interrupts(self) -> int:
        """Deliver what is pending (through on_irq); returns how many."""
        return self._check(_lib.vfio_apple_process_interrupts(self.handle),
                           "vmapple_vfio_apple_process_interrupts")

    def reset(self) -> None:
        self._check(_lib.vfio_apple_reset(self.handle), "vmapple_vfio_apple_reset")

    def attach_companion(self, candidates: Sequence[Device] = ()) -> tuple[AppleDmaPci, bool]:
        """Find the function's apple-dma-pci companion among @candidates or
        create one; returns (companion, created). A created companion
        belongs to this object (closed with it)."""
        arr = (ctypes.c_void_p * max(1, len(candidates)))()
        for i, d in enumerate(candidates):
            arr[i] = d.handle if d is not None and not d.closed else None
        out = ctypes.c_void_p()
        ret = self._check(_lib.vfio_apple_attach_companion(self.handle, arr, len(candidates),
                                                           ctypes.byref(out)),
                          "vmapple_vfio_apple_attach_companion")
        if ret == 0:
            for d in candidates:
                if d is not None and not d.closed and d.handle == out.value:
                    return d, False  # type: ignore[return-value]
            raise VmappleError(-errno.ENOENT, "the companion found is not a candidate",
                               "vmapple_vfio_apple_attach_companion")
        comp = AppleDmaPci._borrow(out.value, self.host, self._slot_id, self)
        self._companion = comp  # type: ignore[assignment]
        return comp, True  # type: ignore[return-value]
