# SPDX-License-Identifier: MIT
"""The bus helper with Python handlers (device regions: see the device tests)."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm


class Uart:
    """A stand-in for a host-modelled part."""

    def __init__(self):
        self.regs = {}
        self.writes = []

    def read(self, offset, size):
        return self.regs.get(offset, 0)

    def write(self, offset, size, value):
        self.writes.append((offset, size, value))
        self.regs[offset] = value


def test_handlers_route_by_address():
    uart = Uart()
    with vm.Bus() as bus:
        bus.map_handler("uart", 0x20010000, 0x1000, uart.read, uart.write)
        bus.map_handler("sink", 0x20050000, 0x1000)
        bus.write(0x20010018, 0xAB, 1)
        assert uart.writes == [(0x18, 1, 0xAB)]
        assert bus.read(0x20010018, 1) == 0xAB
        # A value wider than the access is truncated to it.
        uart.regs[0] = 0x1FF
        assert bus.read(0x20010000, 1) == 0xFF
        assert bus.read(0x20050000, 8) == 0
        bus.write(0x20050000, 1, 8)
        r = bus.lookup(0x20010FFF)
        assert (r.name, r.base, r.length, r.device, r.region) == \
            ("uart", 0x20010000, 0x1000, None, None)
        assert bus.lookup(0x20011000) is None
        assert [r.name for r in bus.ranges] == ["uart", "sink"]


def test_unmapped_accesses():
    bus = vm.Bus()
    with pytest.raises(vm.VmappleError) as ei:
        bus.read(0x1234, 4)
    assert ei.value.errno == errno.ENXIO and "0x1234" in ei.value.detail
    with pytest.raises(vm.VmappleError):
        bus.write(0x1234, 0, 4)
    assert bus.unmapped_counts == (1, 1)
    with pytest.raises(vm.VmappleError) as ei:
        bus.read(0x1234, 3)
    assert ei.value.errno == errno.EINVAL


def test_overlap_and_unmap():
    bus = vm.Bus()
    bus.map_handler("a", 0x1000, 0x1000)
    with pytest.raises(vm.VmappleError) as ei:
        bus.map_handler("b", 0x1800, 0x1000)
    assert ei.value.errno == errno.EEXIST
    assert "a" in ei.value.detail and "b" in ei.value.detail
    assert "overlaps" in bus.last_error
    with pytest.raises(vm.VmappleError) as ei:
        bus.unmap(0x1800)
    assert ei.value.errno == errno.ENOENT
    bus.unmap(0x1000)
    bus.map_handler("b", 0x1800, 0x1000)
    assert [r.name for r in bus.ranges] == ["b"]
    bus.close()
    bus.close()
    with pytest.raises(ValueError):
        bus.read(0x1800)


def test_handler_faults_and_exceptions():
    def bad_read(offset, size):
        raise LookupError("no such register")

    def faulting_write(offset, size, value):
        raise vm.Fault(errno.EPERM)

    bus = vm.Bus()
    bus.map_handler("dev", 0x4000, 0x100, bad_read, faulting_write)
    with pytest.raises(vm.CallbackError) as ei:
        bus.read(0x4000)
    assert isinstance(ei.value.__cause__, LookupError)
    assert ei.value.failures[0].callback == "bus handler dev.read"
    # A Fault is the handler's answer: the access fails with its errno.
    with pytest.raises(vm.VmappleError) as ei:
        bus.write(0x4000, 1)
    assert ei.value.errno == errno.EPERM
    # The bus keeps working.
    bus.unmap(0x4000)
    bus.map_handler("dev", 0x4000, 0x100, lambda o, s: 7)
    assert bus.read(0x4000) == 7


def test_handler_answers_at_every_access_size_and_failures_name_the_handler():
    # The conversions and names the handlers use are made once per
    # map_handler, not per access: every size still truncates to its own
    # width, and each handler's failures carry its own name.
    wide = 0x1122_3344_5566_7788_99
    answers = {0: wide, 8: "not a number"}

    def write(offset, size, value):
        raise KeyError("write-only register")

    bus = vm.Bus()
    bus.map_handler("regs", 0x4000, 0x100, lambda o, s: answers[o], write)
    bus.map_handler("other", 0x5000, 0x100, lambda o, s: -1)
    for size in (1, 2, 4, 8):
        assert bus.read(0x4000, size) == wide & ((1 << (8 * size)) - 1)
        assert bus.read(0x5000, size) == (1 << (8 * size)) - 1
    with pytest.raises(vm.CallbackError) as ei:
        bus.read(0x4008, 4)
    assert isinstance(ei.value.__cause__, ValueError)
    assert ei.value.failures[0].callback == "bus handler regs.read"
    with pytest.raises(vm.CallbackError) as ei:
        bus.write(0x4000, 1, 2)
    assert isinstance(ei.value.__cause__, KeyError)
    assert ei.value.failures[0].callback == "bus handler regs.write"
    assert ei.value.failures[0].source == "bus"
    bus.close()
