# SPDX-License-Identifier: MIT
"""The guest-physical address dispatcher (bus.h)."""

from __future__ import annotations

import ctypes
import errno
import weakref
from dataclasses import dataclass
from typing import Callable

from . import _native
from ._handle import Closeable
from ._native import lib
from .device import Device
from .errors import CallbackLog, VmappleError, check
from .host import raise_failures


@dataclass(frozen=True)
class BusRange:
    """What is mapped at an address."""

    base: int
    length: int
    name: str
    device: Device | None  #: None for a host handler
    region: int | None  #: the device's region index

    @property
    def end(self) -> int:
        return self.base + self.length


ReadHandler = Callable[[int, int], int]  # (offset, size) -> value
WriteHandler = Callable[[int, int, int], None]  # (offset, size, value)


def _truncate(size: int) -> Callable[[object], int]:
    """What a read handler's answer becomes: an int cut to @size bytes."""
    mask = (1 << (8 * size)) - 1
    return lambda v: int(v) & mask


# The conversions of the access sizes the bus passes (1, 2, 4, 8), made once.
_TRUNCATE = {size: _truncate(size) for size in (1, 2, 4, 8)}


def _destroy(handle: int, keepalive: object) -> None:
    lib.vmapple_bus_destroy(handle)


class Bus(Closeable):
    """Routes guest accesses by address to device regions and Python
    handlers, so a harness can assemble a machine.

    >>> bus = Bus()
    >>> bus.map_device(aes)                 # at its vmapple map bases
    >>> bus.write(0x3022001c, 1)            # AES IRQ_ENABLE

    The bus keeps every mapped device alive; closing a device unmaps it
    first. Handler exceptions are caught like host callback exceptions (the
    access fails with -EIO) and raised as CallbackError when the access
    returns.
    """

    def __init__(self) -> None:
        out = ctypes.c_void_p()
        check(lib.vmapple_bus_create(ctypes.byref(out)), function="vmapple_bus_create")
        self._handle: int | None = out.value
        self._devices: dict[int, Device] = {}  # device handle -> object
        self._handlers: dict[int, tuple] = {}  # base -> ctypes callbacks
        # What handlers raised; the handlers hold it, never the bus.
        self._callbacks = CallbackLog("bus handler ", "bus")
        self._bar_tracking: dict[int, tuple] = {}
        self._finalizer = weakref.finalize(self, _destroy, out.value, self._handlers)

    def close(self) -> None:
        """Destroy the bus (not the devices). Idempotent."""
        if self._handle is None:
            return
        for dev in list(self._devices.values()):
            dev._buses.discard(self)
        for dev, listener in list(self._bar_tracking.values()):
            if not dev.closed and dev._slot_id in dev.host._slots:
                dev.host._slots[dev._slot_id].bar_listeners.remove(listener)
        self._bar_tracking.clear()
        self._devices.clear()
        self._handle = None
        self._finalizer()

    def _check(self, ret: int, function: str, thread_error: bool = False) -> int:
        pending = self._callbacks.take_callback_failures()
        for dev in list(self._devices.values()):
            if not dev.closed:
                dev._check_callbacks()
        raise_failures(pending)
        if ret < 0:
            if thread_error:
                detail = _native.last_error()
            else:
                detail = _native.text(lib.vmapple_bus_last_error(self._handle))
            raise VmappleError(ret, detail, function)
        return ret

    @property
    def last_error(self) -> str:
        return _native.text(lib.vmapple_bus_last_error(self.handle))

    # -- mapping --------------------------------------------------------------------

    def _keep(self, device: Device) -> None:
        self._devices[device.handle] = device
        device._buses.add(self)

    def map_region(self, device: Device, region: int | str, base: int | None = None) -> None:
        """Map one region of @device at @base (None: its vmapple map base)."""
        idx = device.region_index(region)
        self._check(lib.vmapple_bus_map_region(
            self.handle, device.handle, idx, _native.VMAPPLE_NO_BASE if base is None else base),
            "vmapple_bus_map_region")
        self._keep(device)

    def map_device(self, device: Device) -> None:
        """Map every region of @device that has a vmapple map base (all or
        nothing)."""
        self._check(lib.vmapple_bus_map_device(self.handle, device.handle),
                    "vmapple_bus_map_device")
        self._keep(device)

    def map_handler(self, name: str, base: int, size: int, read: ReadHandler | None = None,
                    write: WriteHandler | None = None) -> None:
        """Route [base, base + size) to Python: read(offset, size) -> value,
        write(offset, size, value). Either may be None (reads 0, writes
        dropped). A handler may raise Fault(errno) to fail the access."""
        # The callbacks live in the bus's finalizer: they must not hold the bus.
        # They run on every guest access to the range: what does not depend
        # on the access is made here, once.
        call = self._callbacks.call
        read_op, write_op = f"{name}.read", f"{name}.write"

        def c_read(_opaque, offset, sz, value):
            if not read:
                value[0] = 0
                return 0
            ret, got = call(read_op, read, offset, sz, convert=_TRUNCATE.get(sz) or _truncate(sz))
            value[0] = got if ret == 0 else 0
            return ret

        def c_write(_opaque, offset, sz, value):
            return call(write_op, write, offset, sz, value)[0] if write else 0

        fns = (_native.BUS_READ_FN(c_read), _native.BUS_WRITE_FN(c_write))
        self._check(lib.vmapple_bus_map_handler(self.handle, name.encode(), base, size,
                                                fns[0], fns[1], None),
                    "vmapple_bus_map_handler")
        self._handlers[base] = fns

    def unmap(self, base: int) -> None:
        """Remove the range that starts at @base."""
        self._check(lib.vmapple_bus_unmap(self.handle, base), "vmapple_bus_unmap")
        # Device objects stay referenced until unmap_device or close; handler
        # callbacks can go now.
        self._handlers.pop(base, None)

    def unmap_device(self, device: Device) -> int:
        """Remove every range of @device; returns how many."""
        n = self._check(lib.vmapple_bus_unmap_device(self.handle, device.handle),
                        "vmapple_bus_unmap_device")
        self._devices.pop(device.handle, None)
        device._buses.discard(self)
        return n

    def track_bars(self, device: Device) -> None:
        """Follow the BARs of PCI function @device: whenever the guest
        places, moves or disables a BAR (pci_bar_update), map or unmap that
        region here."""
        slot = device.host._slots[device._slot_id]
        mapped: dict[int, int] = {}
        bus_ref = weakref.ref(self)
        dev_ref = weakref.ref(device)

        def listener(region: int, address: int, size: int, enabled: bool) -> None:
            bus, dev = bus_ref(), dev_ref()
            if bus is None or bus._handle is None or dev is None or dev.closed:
                return
            if region in mapped:
                lib.vmapple_bus_unmap(bus._handle, mapped.pop(region))
            if enabled:
                ret = lib.vmapple_bus_map_region(bus._handle, dev.handle, region, address)
                if ret < 0:
                    raise VmappleError(ret, _native.text(lib.vmapple_bus_last_error(bus._handle)),
                                       "vmapple_bus_map_region")
                mapped[region] = address
                bus._keep(dev)

        slot.bar_listeners.append(listener)
        self._bar_tracking[device.handle] = (device, listener)

    # -- accesses ----------------------------------------------------------------------

    def read(self, addr: int, size: int = 4) -> int:
        """A guest read at @addr. VmappleError ENXIO when nothing is mapped."""
        value = ctypes.c_uint64()
        self._check(lib.vmapple_bus_read(self.handle, addr, size, ctypes.byref(value)),
                    "vmapple_bus_read", thread_error=True)
        return value.value

    def write(self, addr: int, value: int, size: int = 4) -> None:
        """A guest write at @addr."""
        self._check(lib.vmapple_bus_write(self.handle, addr, size, value & 0xFFFFFFFFFFFFFFFF),
                    "vmapple_bus_write", thread_error=True)

    def _range(self, r: _native.BusRange) -> BusRange:
        dev = self._devices.get(r.device) if r.device else None
        return BusRange(r.base, r.length, _native.text(r.name), dev,
                        None if r.region == 0xFFFFFFFF else r.region)

    def lookup(self, addr: int) -> BusRange | None:
        """What is mapped at @addr, or None."""
        r = _native.BusRange()
        r.size = ctypes.sizeof(r)
        ret = lib.vmapple_bus_lookup(self.handle, addr, ctypes.byref(r))
        if ret == -errno.ENXIO:
            return None
        self._check(ret, "vmapple_bus_lookup")
        return self._range(r)

    @property
    def ranges(self) -> list[BusRange]:
        """Every mapped range, in ascending address order."""
        out = []
        for i in range(self._check(lib.vmapple_bus_count_ranges(self.handle),
                                   "vmapple_bus_count_ranges")):
            r = _native.BusRange()
            r.size = ctypes.sizeof(r)
            self._check(lib.vmapple_bus_get_range(self.handle, i, ctypes.byref(r)),
                        "vmapple_bus_get_range")
            out.append(self._range(r))
        return out

    @property
    def unmapped_counts(self) -> tuple[int, int]:
        """(reads, writes) that hit no range since the bus was created."""
        reads, writes = ctypes.c_uint64(), ctypes.c_uint64()
        self._check(lib.vmapple_bus_get_unmapped_counts(self.handle, ctypes.byref(reads),
                                                        ctypes.byref(writes)),
                    "vmapple_bus_get_unmapped_counts")
        return reads.value, writes.value
