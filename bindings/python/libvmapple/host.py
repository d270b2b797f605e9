# SPDX-License-Identifier: MIT
"""The host side of a device: guest memory, interrupts, MSI, BAR moves and
log lines, recorded for assertions (host.h)."""

from __future__ import annotations

import ctypes
import enum
import errno
import itertools
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Union

from . import _native
from .errors import CallbackError, CallbackFailure, FailureQueue, Fault
from .memory import GuestMemory

_logger = logging.getLogger("libvmapple")
# A library's logger: silent unless the application (or pytest) listens.
_logger.addHandler(logging.NullHandler())


class LogLevel(enum.IntEnum):
    """vmapple_log_level: lower is more severe."""

    ERROR = 0
    WARNING = 1
    GUEST_ERROR = 2  #: the guest did something invalid (rate-limited per device)
    INFO = 3
    DEBUG = 4


_PY_LEVELS = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.GUEST_ERROR: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
}


@dataclass(frozen=True)
class IrqEvent:
    """An interrupt line changed level (irq_set)."""

    time_ns: int  #: time.monotonic_ns() when the library called the host
    device: str  #: the device's name
    line: int  #: index into the device's interrupts
    level: int  #: 1 asserted, 0 deasserted
    name: str = ""  #: the line's name (vmapple_irq_info.name)


@dataclass(frozen=True)
class MsiEvent:
    """An MSI / MSI-X message (msi_send)."""

    time_ns: int
    device: str
    address: int
    data: int


@dataclass(frozen=True)
class BarUpdate:
    """A PCI function's BAR was placed, moved, enabled or disabled."""

    time_ns: int
    device: str
    region: int
    address: int
    size: int
    enabled: bool


@dataclass(frozen=True)
class LogRecord:
    """One log line of the library."""

    time_ns: int
    device: str
    level: LogLevel | int
    message: str

    def __str__(self) -> str:
        return f"[{_native.text(_native.lib.vmapple_log_level_name(self.level))}] {self.message}"


@dataclass(frozen=True)
class DmaAccess:
    """One guest-memory callback: op is "read", "write", "map" or "unmap"."""

    time_ns: int
    device: str
    op: str
    gpa: int  #: the guest address (the host address for "unmap")
    length: int  #: bytes asked for (bytes mapped for a successful "map")
    result: int  #: 0, or the negative errno the host answered


Event = Union[IrqEvent, MsiEvent, BarUpdate]

_slot_ids = itertools.count(1)


class _Slot:
    """What a Host knows about one device using it (the callbacks' opaque)."""

    def __init__(self, name: str):
        self.name = name
        self.irq_names: list[str] = []
        self.levels: dict[int, int] = {}
        self.bar_listeners: list[Callable[[int, int, int, bool], None]] = []
        self.device_ref: Callable[[], object] = lambda: None


OPS = ("mem_read", "mem_write", "mem_map", "mem_unmap", "irq_set", "msi_send", "log",
       "pci_bar_update", "async_notify")


class Host:
    """The callbacks a device calls (vmapple_host_ops), for one or many devices.

    By default a Host serves guest memory from @memory (a GuestMemory; None:
    every guest access fails with -EFAULT) and records everything the
    devices tell it: interrupt levels (irq_events, irq_level()), MSI messages
    (msi_events), BAR placement (bar_updates), log lines (logs, also sent to
    the Python logger "libvmapple") and guest-memory accesses (dma).
    events holds the interrupts, MSIs and BAR updates of all its devices in
    the order they happened.

    Customise by subclassing and overriding mem_read, mem_write, mem_map,
    mem_unmap, irq_set, msi_send, log, pci_bar_update or async_notify. A
    callback may raise Fault(errno) to fail on purpose (the device sees
    -errno). Any other exception is caught before it can reach the library:
    the device sees an error (-EIO from mem_read/mem_write, NULL from
    mem_map) and takes its defined error path, the exception is kept in
    callback_failures, and the next call through the bindings on a device of
    this host raises CallbackError (unless raise_callback_errors is False).

    Args:
        memory: the guest memory the default callbacks serve.
        mem_map: offer mem_map/mem_unmap (zero-copy DMA into the memory's
            buffers); False makes devices copy through mem_read/mem_write.
        omit: names of callbacks to leave NULL (e.g. ("mem_read",) to check
            that a device refuses a host without it).
        record_dma: keep a DmaAccess per guest-memory callback in dma.
        raise_callback_errors: raise CallbackError on the next call after a
            callback raised.
    """

    def __init__(self, memory: GuestMemory | None = None, *, mem_map: bool = False,
                 omit: Iterable[str] = (), record_dma: bool = True,
                 raise_callback_errors: bool = True):
        omit = set(omit)
        unknown = omit - set(OPS)
        if unknown:
            raise TypeError(f"Host: unknown callbacks in omit: {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(OPS)})")
        if not mem_map:
            omit |= {"mem_map", "mem_unmap"}
        self.memory = memory
        self.record_dma = record_dma
        self.raise_callback_errors = raise_callback_errors
        self.omitted = frozenset(omit)
        self._slots: dict[int, _Slot] = {}
        self._failures = FailureQueue()
        self._async = threading.Event()
        self.clear()
        self.callback_failures = self._failures.all
        self.async_notifications = 0

        # The ctypes function objects must outlive every device using this
        # host: devices hold a reference to the Host, the Host to these.
        ops = _native.HostOps()
        ops.size = ctypes.sizeof(_native.HostOps)
        trampolines = {
            "mem_read": _native.MEM_READ_FN(self._t_mem_read),
            "mem_write": _native.MEM_WRITE_FN(self._t_mem_write),
            "mem_map": _native.MEM_MAP_FN(self._t_mem_map),
            "mem_unmap": _native.MEM_UNMAP_FN(self._t_mem_unmap),
            "irq_set": _native.IRQ_SET_FN(self._t_irq_set),
            "msi_send": _native.MSI_SEND_FN(self._t_msi_send),
            "log": _native.LOG_FN(self._t_log),
            "pci_bar_update": _native.PCI_BAR_UPDATE_FN(self._t_pci_bar_update),
            "async_notify": _native.ASYNC_NOTIFY_FN(self._t_async_notify),
        }
        for name, fn in trampolines.items():
            if name not in omit:
                setattr(ops, name, fn)
        self._trampolines = trampolines
        self._ops = ops

    # -- records --------------------------------------------------------------

    def clear(self) -> None:
        """Forget every recorded event, log line and DMA access (the
        current interrupt levels are kept)."""
        self.events: list[Event] = []
        self.irq_events: list[IrqEvent] = []
        self.msi_events: list[MsiEvent] = []
        self.bar_updates: list[BarUpdate] = []
        self.logs: list[LogRecord] = []
        self.dma: list[DmaAccess] = []

    def irq_level(self, device: object, line: int | str = 0) -> int:
        """The current level of interrupt @line (index or name) of @device
        (a Device or its name), as the library last set it."""
        slot = self._slot_for(device)
        if isinstance(line, str):
            line = slot.irq_names.index(line)
        return slot.levels.get(line, 0)

    def log_contains(self, text: str, level: LogLevel | int | None = None) -> bool:
        """Does a recorded log line contain @text (at @level, if given)?"""
        return any(text in r.message and (level is None or r.level == level) for r in self.logs)

    def wait_async(self, timeout: float | None = None) -> bool:
        """Wait until a device calls async_notify (then clear the flag)."""
        ok = self._async.wait(timeout)
        self._async.clear()
        return ok

    def take_callback_failures(self) -> list[CallbackFailure]:
        """The callback failures not raised yet, which are then forgotten
        (they stay in callback_failures)."""
        return self._failures.take()

    def raise_callback_errors_now(self) -> None:
        """Raise what callbacks raised since the last call (see the class doc)."""
        if not self._failures.waiting() or not self.raise_callback_errors:
            return
        raise_failures(self.take_callback_failures())

    # -- overridable callbacks -----------------------------------------------

    #: Name of the device whose call is running the current memory callback.
    caller: str = ""

    def mem_read(self, gpa: int, length: int):
        """Return @length bytes of guest memory at @gpa (any bytes-like)."""
        if self.memory is None:
            raise Fault(errno.EFAULT, "the host has no guest memory")
        return self.memory.dma_read(gpa, length)

    def mem_write(self, gpa: int, data: memoryview) -> None:
        """Store @data at @gpa. @data is only valid during the call."""
        if self.memory is None:
            raise Fault(errno.EFAULT, "the host has no guest memory")
        self.memory.dma_write(gpa, data)

    def mem_map(self, gpa: int, length: int, writable: bool) -> tuple[int, int] | None:
        """(host address, bytes <= length) backing @gpa, or None."""
        if self.memory is None:
            return None
        return self.memory.dma_map(gpa, length, writable)

    def mem_unmap(self, address: int, length: int, written: bool) -> None:
        if self.memory is not None:
            self.memory.dma_unmap(address, length, written)

    def irq_set(self, device: str, line: int, level: int) -> None:
        """An interrupt line changed (already recorded in irq_events)."""

    def msi_send(self, device: str, address: int, data: int) -> None:
        """An MSI message (already recorded in msi_events)."""

    def log(self, device: str, level: LogLevel | int, message: str) -> None:
        """A log line (already recorded in logs): sent to logging."""
        _logger.log(_PY_LEVELS.get(level, logging.DEBUG), "%s", message)

    def pci_bar_update(self, device: str, region: int, address: int, size: int,
                       enabled: bool) -> None:
        """A BAR moved (already recorded in bar_updates)."""

    def async_notify(self, device: str) -> None:
        """Completions are ready (called on a library worker thread)."""

    # -- device attachment (used by Device) ----------------------------------

    def _attach(self, name: str) -> int:
        slot_id = next(_slot_ids)
        self._slots[slot_id] = _Slot(name)
        return slot_id

    def _bind(self, slot_id: int, device: object, irq_names: list[str]) -> None:
        slot = self._slots[slot_id]
        slot.device_ref = weakref.ref(device)
        slot.irq_names = irq_names

    def _detach(self, slot_id: int) -> None:
        self._slots.pop(slot_id, None)

    def _rename(self, slot_id: int, name: str) -> None:
        if slot_id in self._slots:
            self._slots[slot_id].name = name

    def _slot_for(self, device: object) -> _Slot:
        slot_id = getattr(device, "_slot_id", None)
        if slot_id is not None and slot_id in self._slots:
            return self._slots[slot_id]
        for slot in self._slots.values():
            if slot.name == device:
                return slot
        raise KeyError(f"{device!r} is not a device of this host")

    def _fail(self, callback: str, source: str, exc: BaseException) -> None:
        self._failures.add(CallbackFailure.capture(callback, source, exc))

    def _name(self, opaque: int | None) -> tuple[str, _Slot | None]:
        slot = self._slots.get(opaque or 0)
        return (slot.name if slot else f"<device {opaque}>"), slot

    def _dma(self, name: str, op: str, gpa: int, length: int, result: int) -> None:
        if self.record_dma:
            self.dma.append(DmaAccess(time.monotonic_ns(), name, op, gpa, length, result))

    # -- trampolines: the only code the library calls --------------------------
    # Each catches every exception: nothing may unwind into C.

    def _t_mem_read(self, opaque, gpa, buf, length):
        name, _ = self._name(opaque)
        try:
            self.caller = name
            data = memoryview(self.mem_read(gpa, length)).cast("B")
            if data.nbytes != length:
                raise ValueError(f"mem_read returned {data.nbytes} bytes for a read of {length}")
            _native.buffer_at(buf, length)[:] = data
            result = 0
        except Fault as f:
            result = -f.errno
        except BaseException as e:  # noqa: B902 -- must not reach C
            self._fail("mem_read", name, e)
            result = -errno.EIO
        self._dma(name, "read", gpa, length, result)
        return result

    def _t_mem_write(self, opaque, gpa, buf, length):
        name, _ = self._name(opaque)
        try:
            self.caller = name
            self.mem_write(gpa, _native.buffer_at(buf, length))
            result = 0
        except Fault as f:
            result = -f.errno
        except BaseException as e:  # noqa: B902
            self._fail("mem_write", name, e)
            result = -errno.EIO
        self._dma(name, "write", gpa, length, result)
        return result

    def _t_mem_map(self, opaque, gpa, length, writable, mapped_len):
        name, _ = self._name(opaque)
        mapped_len[0] = 0
        result = -errno.EFAULT
        try:
            self.caller = name
            got = self.mem_map(gpa, length, bool(writable))
            if got is not None:
                address, n = got
                if not address or not 0 < n <= length:
                    raise ValueError(f"mem_map returned {n} bytes at {address:#x} "
                                     f"for a request of {length}")
                mapped_len[0] = n
                self._dma(name, "map", gpa, n, 0)
                return address
        except Fault as f:
            result = -f.errno
        except BaseException as e:  # noqa: B902
            self._fail("mem_map", name, e)
        # NULL: the device falls back to mem_read / mem_write.
        self._dma(name, "map", gpa, length, result)
        return None

    def _t_mem_unmap(self, opaque, host, length, written):
        name, _ = self._name(opaque)
        try:
            self.caller = name
            self.mem_unmap(host or 0, length, bool(written))
        except BaseException as e:  # noqa: B902
            self._fail("mem_unmap", name, e)
        self._dma(name, "unmap", host or 0, length, 0)

    def _t_irq_set(self, opaque, line, level):
        name, slot = self._name(opaque)
        try:
            irq_name = ""
            if slot is not None:
                slot.levels[line] = level
                if line < len(slot.irq_names):
                    irq_name = slot.irq_names[line]
            ev = IrqEvent(time.monotonic_ns(), name, line, level, irq_name)
            self.irq_events.append(ev)
            self.events.append(ev)
            self.irq_set(name, line, level)
        except BaseException as e:  # noqa: B902
            self._fail("irq_set", name, e)

    def _t_msi_send(self, opaque, address, data):
        name, _ = self._name(opaque)
        try:
            ev = MsiEvent(time.monotonic_ns(), name, address, data)
            self.msi_events.append(ev)
            self.events.append(ev)
            self.msi_send(name, address, data)
        except BaseException as e:  # noqa: B902
            self._fail("msi_send", name, e)

    def _t_log(self, opaque, level, message):
        name, _ = self._name(opaque)
        try:
            try:
                lvl: LogLevel | int = LogLevel(level)
            except ValueError:
                lvl = level
            text = _native.text(message)
            self.logs.append(LogRecord(time.monotonic_ns(), name, lvl, text))
            self.log(name, lvl, text)
        except BaseException as e:  # noqa: B902
            self._fail("log", name, e)

    def _t_pci_bar_update(self, opaque, region, address, size, enabled):
        name, slot = self._name(opaque)
        try:
            ev = BarUpdate(time.monotonic_ns(), name, region, address, size, bool(enabled))
            self.bar_updates.append(ev)
            self.events.append(ev)
            self.pci_bar_update(name, region, address, size, bool(enabled))
            for listener in list(slot.bar_listeners if slot else ()):
                listener(region, address, size, bool(enabled))
        except BaseException as e:  # noqa: B902
            self._fail("pci_bar_update", name, e)

    def _t_async_notify(self, opaque):
        name, _ = self._name(opaque)
        try:
            self.async_notifications += 1
            self._async.set()
            self.async_notify(name)
        except BaseException as e:  # noqa: B902
            self._fail("async_notify", name, e)


def take_failures(host: Host, sources: Iterable = ()) -> list[CallbackFailure]:
    """The callback failures an object using @host has not raised yet: the
    host's first, when it raises them (raise_callback_errors; otherwise
    they stay pending there), then those of each of @sources (volumes, DMA
    or host mechanisms: anything with take_callback_failures()), in order.
    They are forgotten by their logs, for the caller to raise."""
    failures = host.take_callback_failures() if host.raise_callback_errors else []
    for source in sources:
        failures += source.take_callback_failures()
    return failures


def raise_failures(failures: list[CallbackFailure]) -> None:
    """Raise CallbackError for @failures (or the original exception when it
    is a KeyboardInterrupt, SystemExit or other non-Exception)."""
    if not failures:
        return
    for f in failures:
        if not isinstance(f.exception, Exception):
            raise f.exception
    raise CallbackError(failures) from failures[0].exception
