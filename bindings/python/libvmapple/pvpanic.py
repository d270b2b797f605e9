# SPDX-License-Identifier: MIT
"""pvpanic over MMIO (pvpanic.h)."""

from __future__ import annotations

import ctypes
import enum
import time
from dataclasses import dataclass
from typing import Callable

from . import _native
from .device import Device, DeviceType, build_options
from .host import Host

BASE = 0x20070000
SIZE = 0x2


class Events(enum.IntFlag):
    PANICKED = 1 << 0
    CRASH_LOADED = 1 << 1
    SHUTDOWN = 1 << 2


ALL_EVENTS = Events.PANICKED | Events.CRASH_LOADED | Events.SHUTDOWN
DEFAULT_EVENTS = Events.PANICKED | Events.CRASH_LOADED

EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32)


class PvpanicOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("events", ctypes.c_uint32),
        ("event", EVENT_FN),
    ]


class PvpanicCountsC(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("supported", ctypes.c_uint32),
        ("panicked", ctypes.c_uint64),
        ("crash_loaded", ctypes.c_uint64),
        ("shutdown", ctypes.c_uint64),
        ("unsupported_writes", ctypes.c_uint64),
    ]


_create = _native.optional(
    "vmapple_pvpanic_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(PvpanicOptions),
     ctypes.POINTER(ctypes.c_void_p)])
_get_counts = _native.optional(
    "vmapple_pvpanic_get_counts", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(PvpanicCountsC)])


@dataclass(frozen=True)
class PvpanicEvent:
    """The guest reported events (one write); also in Host.events."""

    time_ns: int
    device: str
    events: Events


@dataclass(frozen=True)
class PvpanicCounts:
    supported: Events
    panicked: int
    crash_loaded: int
    shutdown: int
    unsupported_writes: int


class Pvpanic(Device):
    """pvpanic over MMIO: region "pvpanic" (2 bytes at 0x2007_0000).

    Options: events (the supported set, Events flags; default PANICKED |
    CRASH_LOADED), on_event (a Python function called with the Events of
    every guest write that carries supported ones). Every report is also
    recorded in reports and in the host's events.
    """

    TYPE = DeviceType.PVPANIC
    _create_name = "vmapple_pvpanic_create"

    def __init__(self, host: Host | None = None, *,
                 on_event: Callable[[Events], None] | None = None, **options):
        host = host if host is not None else Host()
        reports: list[PvpanicEvent] = []

        # Holds the host and the report list, never the device.
        def event(opaque, bits):
            name = "pvpanic"  # until the host knows the device
            try:
                slot = host._slots.get(opaque or 0)
                name = slot.name if slot else name
                ev = PvpanicEvent(time.monotonic_ns(), name, Events(bits))
                reports.append(ev)
                host.events.append(ev)
                if on_event is not None:
                    on_event(Events(bits))
            except BaseException as e:  # noqa: B902 -- must not reach C
                host._fail("pvpanic event", name, e)

        fn = EVENT_FN(event)
        opts = build_options(PvpanicOptions, "Pvpanic", options, exclude=("event",), always=True)
        opts.event = fn
        self.reports = reports
        self._create(host, _create, opts, keepalive=(fn,), name="pvpanic")

    @property
    def supported(self) -> Events:
        """What a guest read returns: the supported events."""
        return Events(self.read(0, 0, 1))

    def report(self, events: int) -> None:
        """What a guest does: write @events to the register."""
        self.write(0, 0, int(events), 1)

    def counts(self) -> PvpanicCounts:
        c = PvpanicCountsC()
        c.size = ctypes.sizeof(c)
        self._check(_get_counts(self.handle, ctypes.byref(c)), "vmapple_pvpanic_get_counts")
        return PvpanicCounts(Events(c.supported), c.panicked, c.crash_loaded, c.shutdown,
                             c.unsupported_writes)
