# SPDX-License-Identifier: MIT
"""The xHCI interrupter-mapping quirk as a policy object (xhci.h)."""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass

from . import _native
from .device import Device, DeviceType, build_options, enum_option
from .host import Host

DEFAULT_NUMINTRS = 16
MAX_NUMINTRS = 1024
MAX_MSI_VECTORS = 32
MAX_MSIX_VECTORS = 2048
NO_RING = 0xFFFFFFFF

MSI_ENABLED = 1 << 0
MSIX_ENABLED = 1 << 1
ROUTE_DELIVER = 1 << 0
ROUTE_SIGNAL = 1 << 1


class Mapping(enum.IntEnum):
    CONDITIONAL = 0  #: mapping only while MSI/MSI-X is enabled (default, vmapple)
    ALWAYS = 1  #: mapping whenever numintrs > 1


class IrqMode(enum.IntEnum):
    PIN = 0
    MSI = 1
    MSIX = 2


class XhciPolicyOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("numintrs", ctypes.c_uint32),
        ("mapping", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
    ]


class IrqStateC(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("msi_vectors", ctypes.c_uint32),
        ("msix_vectors", ctypes.c_uint32),
    ]


class RouteRequestC(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("interrupter", ctypes.c_uint32)]


class RouteC(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("event_ring", ctypes.c_uint32),
        ("irq_mode", ctypes.c_uint32),
        ("vector", ctypes.c_uint32),
        ("reserved0", ctypes.c_uint32),
    ]


_create = _native.optional(
    "vmapple_xhci_policy_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(XhciPolicyOptions),
     ctypes.POINTER(ctypes.c_void_p)])
_set_irq_state = _native.optional(
    "vmapple_xhci_policy_set_irq_state", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(IrqStateC)])
_get_irq_state = _native.optional(
    "vmapple_xhci_policy_get_irq_state", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(IrqStateC)])
_route = _native.optional(
    "vmapple_xhci_policy_route", ctypes.c_int,
    [ctypes.c_void_p, ctypes.POINTER(RouteRequestC), ctypes.POINTER(RouteC)])


@dataclass(frozen=True)
class IrqState:
    """The controller's interrupt mode as the policy knows it."""

    msi: bool
    msix: bool
    msi_vectors: int
    msix_vectors: int


@dataclass(frozen=True)
class Route:
    """Where an event goes."""

    deliver: bool  #: write it to event_ring (False: drop it)
    signal: bool  #: that interrupter can raise an interrupt
    event_ring: int | None  #: None when the event is dropped
    irq_mode: IrqMode
    vector: int  #: MSI/MSI-X vector; 0 in pin mode


class XhciPolicy(Device):
    """The interrupter-mapping policy a host's xHCI model asks, for each
    event, which event ring receives it and what to signal. No regions, no
    interrupt lines; set_irq_state() mirrors the controller's MSI/MSI-X
    configuration (reset: pin mode; saved and loaded).

    Options: numintrs (1..1024, default 16), mapping ("conditional"
    default, "always", or Mapping).
    """

    TYPE = DeviceType.XHCI_POLICY
    _create_name = "vmapple_xhci_policy_create"

    def __init__(self, host: Host | None = None, **options):
        mapping = enum_option("mapping", Mapping, "XhciPolicy")
        opts = build_options(XhciPolicyOptions, "XhciPolicy", options,
                             converters={"mapping": mapping})
        self._create(host, _create, opts, name="xhci-policy")

    def set_irq_state(self, *, msi: bool = False, msix: bool = False, msi_vectors: int = 0,
                      msix_vectors: int = 0) -> None:
        s = IrqStateC()
        s.size = ctypes.sizeof(s)
        s.flags = (MSI_ENABLED if msi else 0) | (MSIX_ENABLED if msix else 0)
        s.msi_vectors = msi_vectors
        s.msix_vectors = msix_vectors
        self._check(_set_irq_state(self.handle, ctypes.byref(s)),
                    "vmapple_xhci_policy_set_irq_state")

    def irq_state(self) -> IrqState:
        s = IrqStateC()
        s.size = ctypes.sizeof(s)
        self._check(_get_irq_state(self.handle, ctypes.byref(s)),
                    "vmapple_xhci_policy_get_irq_state")
        return IrqState(bool(s.flags & MSI_ENABLED), bool(s.flags & MSIX_ENABLED),
                        s.msi_vectors, s.msix_vectors)

    def route(self, interrupter: int) -> Route:
        """Route an event whose TRB names @interrupter (guest-controlled)."""
        req = RouteRequestC()
        req.size = ctypes.sizeof(req)
        req.interrupter = interrupter
        r = RouteC()
        r.size = ctypes.sizeof(r)
        self._check(_route(self.handle, ctypes.byref(req), ctypes.byref(r)),
                    "vmapple_xhci_policy_route")
        return Route(bool(r.flags & ROUTE_DELIVER), bool(r.flags & ROUTE_SIGNAL),
                     None if r.event_ring == NO_RING else r.event_ring, IrqMode(r.irq_mode),
                     r.vector)
