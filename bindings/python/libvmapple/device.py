# SPDX-License-Identifier: MIT
"""The device object every libvmapple device is (device.h)."""

from __future__ import annotations

import ctypes
import enum
import errno
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import _native
from ._handle import Closeable
from ._native import lib
from .errors import VmappleError
from .host import Host, IrqEvent, raise_failures, take_failures


class DeviceType(enum.IntEnum):
    """vmapple_device_type."""

    AES = 1
    BDIF = 2
    CFG = 3
    PVPANIC = 4
    XHCI_POLICY = 5
    VIRTIO_BLK = 6
    APPLE_DMA_PCI = 7
    PCI_HOST_BRIDGE = 8


class RegionFlags(enum.IntFlag):
    MMIO = 1 << 0  #: accessed through read()/write()
    RAM = 1 << 1  #: plain memory: region_memory() gives its bytes
    PCI_BAR = 1 << 2  #: a PCI BAR: the guest chooses its base


class IrqFlags(enum.IntFlag):
    LEVEL = 1 << 0
    PCI_INTX = 1 << 1  #: the SPI depends on the slot (platform.intx_spi())


@dataclass(frozen=True)
class Region:
    """One MMIO region of a device."""

    index: int
    name: str
    size: int
    base: int | None  #: base in the vmapple map, None when the map fixes none
    flags: RegionFlags
    pci_bar: int | None  #: BAR number of a PCI BAR region


@dataclass(frozen=True)
class Irq:
    """One interrupt output of a device (its index is the irq_set line)."""

    index: int
    name: str
    spi: int | None  #: GIC SPI in the vmapple map, None for PCI INTx
    flags: IrqFlags


_INT_LIMITS = {
    ctypes.c_uint8: 8, ctypes.c_uint16: 16, ctypes.c_uint32: 32, ctypes.c_uint64: 64,
}


def fit_bits(value: Any, bits: int, what: str) -> Any:
    """@value, when it is 0 .. 2**@bits - 1; ValueError naming @what
    otherwise. For what goes into a C integer of @bits bits, which ctypes
    would silently truncate (2**32 + 3 becomes 3, -1 becomes all ones)."""
    if not 0 <= value < 1 << bits:
        shown = f"{value:#x}" if isinstance(value, int) else repr(value)
        raise ValueError(f"{what} = {shown} does not fit {bits} bits "
                         f"(0 .. {(1 << bits) - 1:#x})")
    return value


def fit_field(struct: ctypes.Structure, field: str, value: Any, what: str) -> None:
    """Store @value in integer @field of @struct, refusing (ValueError
    naming @what) what the C field cannot hold."""
    bits = _INT_LIMITS.get(dict(struct._fields_)[field])
    if bits is not None:
        fit_bits(value, bits, what)
    setattr(struct, field, value)


def set_int_field(struct: ctypes.Structure, field: str, value: Any, what: str) -> None:
    """Store an integer option, refusing values the C field cannot hold
    (ctypes would silently truncate them)."""
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise TypeError(f"{what}: option {field} must be an int, not {type(value).__name__}")
    fit_field(struct, field, value, f"{what}: option {field}")


def build_options(struct_type: type[ctypes.Structure], what: str, given: Mapping[str, Any],
                  defaults: Mapping[str, Any] | None = None,
                  converters: Mapping[str, Callable[[ctypes.Structure, Any], None]] | None = None,
                  exclude: tuple[str, ...] = (), always: bool = False,
                  ) -> ctypes.Structure | None:
    """Fill a versioned options struct from keyword options.

    Returns None when nothing was given and not @always (the library then
    uses its own defaults). Otherwise every field starts at zero, or at
    @defaults (the documented defaults of fields for which 0 is not the
    default) when something was given, and then takes the given values
    (through @converters for fields that are not plain integers); size is
    sizeof(struct). Unknown keywords, and fields in @exclude (which the
    bindings fill themselves), raise TypeError naming them.
    """
    converters = converters or {}
    fields = [name for name, _ in struct_type._fields_
              if name != "size" and not name.startswith("reserved") and name not in exclude]
    known = set(fields) | set(converters)
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"{what}: unknown option{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if not given and not always:
        return None
    opts = struct_type()
    opts.size = ctypes.sizeof(struct_type)
    for name, value in ({**(defaults or {}), **given} if given else {}).items():
        if name in converters:
            converters[name](opts, value)
        else:
            set_int_field(opts, name, value, what)
    return opts


Converter = Callable[[ctypes.Structure, Any], None]


def enum_option(field: str, enum_type: type[enum.IntEnum], what: str) -> Converter:
    """The converter (for build_options) of an enum field given as a member,
    an int, or a member's name in any case ("root")."""

    def convert(opts: ctypes.Structure, value: Any) -> None:
        if isinstance(value, str):
            try:
                value = enum_type[value.upper()]
            except KeyError:
                names = [m.name.lower() for m in enum_type]
                choices = " or ".join(names) if len(names) == 2 else ", ".join(names)
                raise ValueError(f"{what}: option {field} {value!r} ({choices})") from None
        set_int_field(opts, field, value, what)
    return convert


def handle_option(field: str, kind: type, what: str, keep: list) -> Converter:
    """The converter of a field that points to a library object: @kind (a
    Blockdev, a DmaBackend) or None (NULL). The objects given are appended
    to @keep, for the device to keep alive."""

    def convert(opts: ctypes.Structure, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, kind):
            raise TypeError(f"{what}: option {field} must be a {kind.__name__}, "
                            f"not {type(value).__name__}")
        setattr(opts, field, value.handle)
        keep.append(value)
    return convert


def string_option(field: str, what: str) -> Converter:
    """The converter of a C string field: str or bytes without NUL, or None
    (NULL: the library's default)."""

    def convert(opts: ctypes.Structure, value: Any) -> None:
        if value is None:
            setattr(opts, field, None)
            return
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"{what}: option {field} must be a str, not {type(value).__name__}")
        data = value.encode() if isinstance(value, str) else value
        if b"\0" in data:
            raise ValueError(f"{what}: option {field} contains a NUL character")
        # The struct keeps the bytes alive until create, which copies them.
        setattr(opts, field, data)
    return convert


def _destroy(handle: int, slot_id: int, host: Host, keepalive: tuple) -> None:
    # keepalive (host callbacks, volumes) must outlive the C object.
    lib.vmapple_device_destroy(handle)
    host._detach(slot_id)


class _Lifeline:
    """Owns the C device: it is destroyed when the lifeline goes, which is
    when the Device is closed or collected and no view of its region
    memory (which holds the lifeline too) is left."""

    __slots__ = ("finalizer", "__weakref__")


class Device(Closeable):
    """A libvmapple device.

    Devices are made by their classes (Aes, PciHostBridge, ...), which take
    a Host (default: a new Host without guest memory) and keyword options
    (the fields of the C options struct). A device is closed by close(), by
    leaving a with block, or when it is garbage collected; calls on a closed
    device raise ValueError.

    Regions are named by index or name ("aes-window1"). Library errors raise
    VmappleError; exceptions of Python callbacks raise CallbackError on the
    next call (see Host).
    """

    TYPE: DeviceType  # set by subclasses
    _create_name = ""  # the C constructor, e.g. "vmapple_aes_create"

    def __init__(self, host: Host | None = None):
        # Subclasses call _create() instead; this exists for typing.
        raise TypeError("Device is abstract: use Aes, PciHostBridge, ...")

    # -- construction ----------------------------------------------------------

    def _create(self, host: Host | None, create: Callable[..., int] | None,
                options: ctypes.Structure | None, keepalive: tuple = (),
                name: str = "") -> None:
        self._handle: int | None = None
        self._lifeline: object | None = None
        self._buses: weakref.WeakSet = weakref.WeakSet()
        self.host = host if host is not None else Host()
        self._keepalive = keepalive
        # What the device raises failures of besides its host's: the
        # objects with Python callbacks it holds (volumes, DMA backends).
        self._volumes = tuple(v for v in keepalive if hasattr(v, "take_callback_failures"))
        if create is None:
            raise VmappleError(-errno.ENOSYS, f"this libvmapple ({_native.LIBRARY_PATH}) has no "
                               f"{self._create_name}", self._create_name)
        slot_id = self.host._attach(name or self._create_name)
        out = ctypes.c_void_p()
        ret = create(ctypes.byref(self.host._ops), slot_id,
                     ctypes.byref(options) if options is not None else None, ctypes.byref(out))
        if ret < 0:
            detail = _native.last_error()
            self.host._detach(slot_id)
            # A callback raising during a failed create is the more useful report.
            self.host.raise_callback_errors_now()
            raise VmappleError(ret, detail, self._create_name)
        self._handle = out.value
        self._slot_id = slot_id
        lifeline = _Lifeline()
        lifeline.finalizer = weakref.finalize(lifeline, _destroy, out.value, slot_id, self.host,
                                              (self.host, keepalive))
        self._lifeline = lifeline
        self.host._rename(slot_id, self.name)
        self.host._bind(slot_id, self, [i.name for i in self.irqs])
        self._region_index = {r.name: r.index for r in self.regions}
        self._check_callbacks()

    @classmethod
    def _borrow(cls, handle: int, host: Host, slot_id: int, owner: object) -> "Device":
        """Wrap a device the library made for @owner (which destroys it):
        the wrapper keeps @owner alive and never destroys the device."""
        self = cls.__new__(cls)
        self._handle = handle
        self._buses = weakref.WeakSet()
        self.host = host
        self._keepalive = ()
        self._volumes = ()
        self._slot_id = slot_id
        self._lifeline = owner  # type: ignore[assignment]
        self._region_index = {r.name: r.index for r in self.regions}
        return self

    def _check(self, ret: int, function: str) -> int:
        """Raise callback failures, then library failures."""
        self._check_callbacks()
        if ret < 0:
            detail = _native.text(lib.vmapple_device_last_error(self._handle)) or \
                _native.last_error()
            raise VmappleError(ret, detail, function)
        return ret

    def _check_callbacks(self) -> None:
        raise_failures(take_failures(self.host, self._volumes))

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Destroy the device (unmapping it from buses first). Idempotent.
        Raises CallbackError if callbacks raised during the destruction."""
        if self._handle is None:
            return
        for bus in list(self._buses):
            bus.unmap_device(self)
        self._handle = None
        # Destroys the C device now, unless a view from region_memory() is
        # still alive: then when the last one goes.
        self._lifeline = None
        self._check_callbacks()

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} {self.name!r}>"

    # -- identity ----------------------------------------------------------------

    @property
    def device_type(self) -> DeviceType | int:
        t = self._check(lib.vmapple_device_get_type(self.handle), "vmapple_device_get_type")
        try:
            return DeviceType(t)
        except ValueError:
            return t

    @property
    def name(self) -> str:
        """The instance name used in log lines (settable, 1..31 bytes)."""
        return _native.text(lib.vmapple_device_get_name(self.handle))

    @name.setter
    def name(self, value: str) -> None:
        self._check(lib.vmapple_device_set_name(self.handle, value.encode()),
                    "vmapple_device_set_name")
        self.host._rename(self._slot_id, value)

    @property
    def last_error(self) -> str:
        """The detailed message of the last failed call on this device."""
        return _native.text(lib.vmapple_device_last_error(self.handle))

    # -- regions and interrupts -----------------------------------------------------

    @property
    def regions(self) -> tuple[Region, ...]:
        out = []
        n = self._check(lib.vmapple_device_count_regions(self.handle),
                        "vmapple_device_count_regions")
        for i in range(n):
            p = ctypes.POINTER(_native.RegionInfo)()
            self._check(lib.vmapple_device_get_region(self.handle, i, ctypes.byref(p)),
                        "vmapple_device_get_region")
            r = p.contents
            out.append(Region(
                i, _native.text(r.name), r.size,
                None if r.base == _native.VMAPPLE_NO_BASE else r.base,
                RegionFlags(r.flags), None if r.pci_bar == 0xFFFFFFFF else r.pci_bar))
        return tuple(out)

    def region_index(self, region: int | str) -> int:
        """The index of a region given by index or name (VmappleError
        ENOENT for an unknown name)."""
        if isinstance(region, str):
            cached = self._region_index.get(region)
            if cached is not None:
                return cached
            idx = lib.vmapple_device_find_region(self.handle, region.encode())
            if idx < 0:
                names = ", ".join(self._region_index) or "none"
                raise VmappleError(idx, f"{self.name} has no region named {region!r} "
                                   f"(regions: {names})", "vmapple_device_find_region")
            return idx
        return int(region)

    def region(self, region: int | str) -> Region:
        idx = self.region_index(region)
        regions = self.regions
        if not 0 <= idx < len(regions):
            raise VmappleError(-errno.ENOENT, f"{self.name} has no region {idx} "
                               f"(it has {len(regions)})", "vmapple_device_get_region")
        return regions[idx]

    @property
    def irqs(self) -> tuple[Irq, ...]:
        out = []
        n = self._check(lib.vmapple_device_count_irqs(self.handle), "vmapple_device_count_irqs")
        for i in range(n):
            p = ctypes.POINTER(_native.IrqInfo)()
            self._check(lib.vmapple_device_get_irq(self.handle, i, ctypes.byref(p)),
                        "vmapple_device_get_irq")
            q = p.contents
            out.append(Irq(i, _native.text(q.name),
                           None if q.spi == _native.VMAPPLE_NO_IRQ else q.spi, IrqFlags(q.flags)))
        return tuple(out)

    def irq_level(self, line: int | str = 0) -> int:
        """The current level of interrupt @line, as the host last saw it."""
        return self.host.irq_level(self, line)

    @property
    def irq_events(self) -> list[IrqEvent]:
        """The host's interrupt events of this device, in order."""
        name = self.name
        return [e for e in self.host.irq_events if e.device == name]

    def region_memory(self, region: int | str) -> memoryview:
        """The backing bytes of a RAM region, writable and without a copy.
        The view (and its slices) keep the device's memory valid: a device
        closed while views exist is destroyed when the last one goes."""
        host = ctypes.c_void_p()
        size = ctypes.c_uint64()
        self._check(lib.vmapple_device_get_region_memory(
            self.handle, self.region_index(region), ctypes.byref(host), ctypes.byref(size)),
            "vmapple_device_get_region_memory")
        # The bytes stay valid while any view exists.
        return _native.buffer_at(host.value, size.value, owner=self._lifeline)

    # -- guest accesses ---------------------------------------------------------------

    def read(self, region: int | str, offset: int, size: int = 4) -> int:
        """A guest read of @size (1, 2, 4, 8) bytes at @offset of @region."""
        value = ctypes.c_uint64()
        self._check(lib.vmapple_device_read(self.handle, self.region_index(region), offset, size,
                                            ctypes.byref(value)), "vmapple_device_read")
        return value.value

    def write(self, region: int | str, offset: int, value: int, size: int = 4) -> None:
        """A guest write of the low @size bytes of @value at @offset of
        @region (may run a device command: DMA, interrupts)."""
        self._check(lib.vmapple_device_write(self.handle, self.region_index(region), offset, size,
                                             value & 0xFFFFFFFFFFFFFFFF), "vmapple_device_write")

    def reset(self) -> None:
        """Back to the power-on state; interrupt lines are deasserted."""
        self._check(lib.vmapple_device_reset(self.handle), "vmapple_device_reset")

    # -- state ---------------------------------------------------------------------

    def save(self) -> bytes:
        """The device's state as a versioned, checksummed blob."""
        need = ctypes.c_size_t()
        ret = lib.vmapple_device_save(self.handle, None, 0, ctypes.byref(need))
        if ret != -errno.ENOSPC:
            self._check(ret, "vmapple_device_save")
        buf = ctypes.create_string_buffer(need.value)
        got = ctypes.c_size_t()
        self._check(lib.vmapple_device_save(self.handle, buf, need.value, ctypes.byref(got)),
                    "vmapple_device_save")
        return buf.raw[:got.value]

    def load(self, blob: bytes | bytearray | memoryview) -> None:
        """Load a blob of save(); on failure the device is unchanged."""
        data = bytes(blob)
        self._check(lib.vmapple_device_load(self.handle, data, len(data)), "vmapple_device_load")

    # -- asynchronous work --------------------------------------------------------------

    def poll_fd(self) -> int:
        """A descriptor that becomes readable when completions are ready."""
        return self._check(lib.vmapple_device_poll_fd(self.handle), "vmapple_device_poll_fd")

    def process(self) -> int:
        """Deliver completions; returns how many."""
        return self._check(lib.vmapple_device_process(self.handle), "vmapple_device_process")

    # -- PCI configuration space ------------------------------------------------------------

    def pci_config_read(self, offset: int, size: int = 4) -> int:
        """A configuration-space read (PCI functions; others raise
        VmappleError ENOTSUP)."""
        value = ctypes.c_uint32()
        self._check(lib.vmapple_device_pci_config_read(self.handle, offset, size,
                                                       ctypes.byref(value)),
                    "vmapple_device_pci_config_read")
        return value.value

    def pci_config_write(self, offset: int, value: int, size: int = 4) -> None:
        """A configuration-space write (BAR and COMMAND changes reach the
        host's pci_bar_update)."""
        self._check(lib.vmapple_device_pci_config_write(self.handle, offset, size,
                                                        value & 0xFFFFFFFF),
                    "vmapple_device_pci_config_write")
