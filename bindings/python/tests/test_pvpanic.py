# SPDX-License-Identifier: MIT
"""pvpanic over MMIO."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm
from libvmapple.pvpanic import ALL_EVENTS, DEFAULT_EVENTS, Events, Pvpanic, PvpanicEvent


def test_identity_and_supported_events():
    p = Pvpanic()
    assert p.device_type == vm.DeviceType.PVPANIC
    assert [(r.name, r.base, r.size) for r in p.regions] == [("pvpanic", 0x20070000, 2)]
    assert p.irqs == ()
    assert p.supported == DEFAULT_EVENTS
    assert p.read(0, 0, 2) == int(DEFAULT_EVENTS)
    assert Pvpanic(events=ALL_EVENTS).supported == ALL_EVENTS


def test_reports_reach_the_callback_the_records_and_the_counts():
    seen = []
    host = vm.Host()
    p = Pvpanic(host, on_event=seen.append, events=ALL_EVENTS)
    p.report(Events.PANICKED)
    p.report(Events.SHUTDOWN | Events.CRASH_LOADED)
    assert seen == [Events.PANICKED, Events.SHUTDOWN | Events.CRASH_LOADED]
    assert [e.events for e in p.reports] == seen
    # Exactly one event per write, in order (an empty list must not pass).
    assert [(type(e), e.device, e.events) for e in host.events] == [
        (PvpanicEvent, "pvpanic", Events.PANICKED),
        (PvpanicEvent, "pvpanic", Events.SHUTDOWN | Events.CRASH_LOADED),
    ]
    c = p.counts()
    assert (c.panicked, c.crash_loaded, c.shutdown, c.unsupported_writes) == (1, 1, 1, 0)
    assert c.supported == ALL_EVENTS


def test_unsupported_bits():
    seen = []
    host = vm.Host()
    p = Pvpanic(host, on_event=seen.append)
    p.report(Events.SHUTDOWN)  # not supported by default
    p.report(Events.PANICKED | 0x80)
    assert seen == [Events.PANICKED]
    c = p.counts()
    assert c.panicked == 1 and c.shutdown == 0 and c.unsupported_writes == 2
    # The unsupported bits are logged once, as a guest error; the supported
    # one is reported as usual.
    assert [(r.level, r.message) for r in host.logs] == [
        (vm.LogLevel.GUEST_ERROR,
         "pvpanic: write of 0x4: unsupported event bits 0x4 ignored (supported 0x3; logged once)"),
        (vm.LogLevel.WARNING, "pvpanic: guest reported panicked"),
    ]


def test_a_raising_event_callback_is_reported():
    def on_event(events):
        raise RuntimeError("harness bug")

    p = Pvpanic(on_event=on_event)
    with pytest.raises(vm.CallbackError) as ei:
        p.report(Events.PANICKED)
    assert ei.value.failures[0].callback == "pvpanic event"
    assert p.counts().panicked == 1  # the device carried on
    with pytest.raises(vm.CallbackError):
        p.report(Events.CRASH_LOADED)
    # A device call that runs no callback does not raise.
    assert p.supported == DEFAULT_EVENTS


def test_option_errors():
    with pytest.raises(vm.VmappleError) as ei:
        Pvpanic(events=0x8)
    assert ei.value.errno == errno.EINVAL and "events" in ei.value.detail
    with pytest.raises(TypeError, match="unknown option event "):
        Pvpanic(event=lambda *a: None)


def test_counts_survive_reset_and_travel_in_state():
    p = Pvpanic()
    p.report(Events.PANICKED)
    p.reset()
    assert p.counts().panicked == 1
    blob = p.save()
    q = Pvpanic()
    q.load(blob)
    assert q.counts().panicked == 1
    with pytest.raises(vm.VmappleError) as ei:
        vm.Cfg().load(blob)
    assert ei.value.errno == errno.ENODEV
