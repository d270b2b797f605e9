# SPDX-License-Identifier: MIT
"""The xHCI interrupter-mapping policy."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm
from libvmapple.xhci import IrqMode, IrqState, Mapping, Route, XhciPolicy


def test_identity():
    x = XhciPolicy()
    assert x.device_type == vm.DeviceType.XHCI_POLICY
    assert x.regions == () and x.irqs == ()
    assert x.irq_state() == IrqState(False, False, 0, 0)


def test_pin_mode_sends_everything_to_ring_zero():
    x = XhciPolicy()
    for target in (0, 1, 2, 15):
        assert x.route(target) == Route(True, True, 0, IrqMode.PIN, 0)


def test_msix_maps_interrupters_to_vectors():
    x = XhciPolicy(numintrs=8)
    x.set_irq_state(msix=True, msix_vectors=4)
    assert x.irq_state() == IrqState(False, True, 0, 4)
    assert x.route(6) == Route(True, True, 6, IrqMode.MSIX, 2)
    x.set_irq_state(msi=True, msi_vectors=2)
    assert x.route(3) == Route(True, True, 3, IrqMode.MSI, 1)
    # An interrupter the controller lacks: the event is dropped, a guest error.
    host_logs = x.host.logs
    r = x.route(8)
    assert (r.deliver, r.signal, r.event_ring) == (False, False, None)
    assert any("dropped" in rec.message for rec in host_logs)


def test_always_mapping_loses_pin_interrupts():
    x = XhciPolicy(mapping="always")
    assert x.route(2) == Route(True, False, 2, IrqMode.PIN, 0)
    assert x.route(0).signal
    one = XhciPolicy(numintrs=1, mapping=Mapping.ALWAYS)
    assert one.route(5) == Route(True, True, 0, IrqMode.PIN, 0)


def test_irq_state_errors_leave_the_state():
    x = XhciPolicy()
    x.set_irq_state(msi=True, msi_vectors=4)
    with pytest.raises(vm.VmappleError) as ei:
        x.set_irq_state(msi=True, msi_vectors=3)
    assert ei.value.errno == errno.EINVAL and ei.value.detail
    with pytest.raises(vm.VmappleError):
        x.set_irq_state(msix=True, msix_vectors=4096)
    assert x.irq_state() == IrqState(True, False, 4, 0)


def test_state_and_reset():
    x = XhciPolicy(numintrs=4)
    x.set_irq_state(msix=True, msix_vectors=2)
    blob = x.save()
    x.reset()
    assert x.irq_state() == IrqState(False, False, 0, 0)
    y = XhciPolicy(numintrs=4)
    y.load(blob)
    assert y.route(3) == Route(True, True, 3, IrqMode.MSIX, 1)
    with pytest.raises(vm.VmappleError) as ei:
        XhciPolicy(numintrs=8).load(blob)
    assert ei.value.errno == errno.EINVAL and "numintrs" in ei.value.detail


def test_option_errors():
    with pytest.raises(vm.VmappleError, match="numintrs"):
        XhciPolicy(numintrs=2000)
    with pytest.raises(vm.VmappleError, match="mapping"):
        XhciPolicy(mapping=7)
    with pytest.raises(ValueError, match="conditional or always"):
        XhciPolicy(mapping="sometimes")
    with pytest.raises(TypeError, match="numintr "):
        XhciPolicy(numintr=4)
