# SPDX-License-Identifier: MIT
"""Host callbacks as the library calls them.

The library reaches Python only through the ctypes function pointers of
Host._ops; these tests call those pointers as C would (through the C thunk),
so they see exactly what a device sees. Device tests drive the same paths
from real devices.
"""

from __future__ import annotations

import ctypes
import errno
import logging

import pytest

import libvmapple as vm


def slot(host: vm.Host, name: str = "probe") -> int:
    sid = host._attach(name)
    host._slots[sid].irq_names = ["line0", "line1"]
    return sid


def c_read(host, sid, gpa, n):
    buf = ctypes.create_string_buffer(n)
    return host._ops.mem_read(sid, gpa, buf, n), buf.raw


def test_memory_callbacks_copy_and_fault(mem):
    host = vm.Host(mem)
    sid = slot(host)
    mem.write(vm.RAM_BASE, b"guest data")
    ret, data = c_read(host, sid, vm.RAM_BASE, 10)
    assert (ret, data) == (0, b"guest data")
    assert host._ops.mem_write(sid, vm.RAM_BASE + 0x100, b"device out", 10) == 0
    assert mem.read(vm.RAM_BASE + 0x100, 10) == b"device out"
    # Not RAM: -EFAULT, and no failure to report (a guest error, not a bug).
    assert c_read(host, sid, 0x1000, 4)[0] == -errno.EFAULT
    assert host._ops.mem_write(sid, vm.RAM_BASE - 2, b"xxxx", 4) == -errno.EFAULT
    assert host.take_callback_failures() == []
    assert [(d.op, d.result) for d in host.dma] == \
        [("read", 0), ("write", 0), ("read", -errno.EFAULT), ("write", -errno.EFAULT)]
    assert host.dma[0].device == "probe"
    assert mem.stats["faults"] == 2 and mem.stats["bytes_read"] == 10


def test_no_memory_and_omitted_ops():
    host = vm.Host(omit=("msi_send",))
    sid = slot(host)
    assert c_read(host, sid, vm.RAM_BASE, 4)[0] == -errno.EFAULT
    assert not host._ops.mem_map  # not offered unless mem_map=True
    assert not host._ops.msi_send
    assert host._ops.irq_set
    with pytest.raises(TypeError, match="mem_reed"):
        vm.Host(omit=("mem_reed",))


def test_map_and_unmap(mem):
    host = vm.Host(mem, mem_map=True)
    sid = slot(host)
    got = ctypes.c_uint64()
    ptr = host._ops.mem_map(sid, vm.RAM_BASE + 8, 64, 1, ctypes.byref(got))
    assert ptr == mem.ranges[0].address + 8 and got.value == 64
    ctypes.memmove(ptr, b"direct", 6)
    assert mem.read(vm.RAM_BASE + 8, 6) == b"direct"
    host._ops.mem_unmap(sid, ptr, 64, 1)
    assert mem.live_maps == 0
    assert not host._ops.mem_map(sid, 0x10, 64, 0, ctypes.byref(got))
    assert got.value == 0


class Raising(vm.Host):
    def mem_read(self, gpa, length):
        raise RuntimeError("harness bug in mem_read")

    def mem_write(self, gpa, data):
        raise KeyError("harness bug in mem_write")

    def mem_map(self, gpa, length, writable):
        raise ZeroDivisionError("mem_map")

    def irq_set(self, device, line, level):
        raise RuntimeError("irq_set")

    def msi_send(self, device, address, data):
        raise RuntimeError("msi_send")

    def log(self, device, level, message):
        raise RuntimeError("log")

    def pci_bar_update(self, device, region, address, size, enabled):
        raise RuntimeError("pci_bar_update")

    def async_notify(self, device):
        raise RuntimeError("async_notify")


def test_raising_callbacks_return_errors_and_are_recorded(mem):
    host = Raising(mem, mem_map=True)
    sid = slot(host)
    got = ctypes.c_uint64(123)
    assert c_read(host, sid, vm.RAM_BASE, 4)[0] == -errno.EIO
    assert host._ops.mem_write(sid, vm.RAM_BASE, b"x", 1) == -errno.EIO
    assert not host._ops.mem_map(sid, vm.RAM_BASE, 4, 0, ctypes.byref(got))
    assert got.value == 0
    host._ops.irq_set(sid, 1, 1)
    host._ops.msi_send(sid, 0xFEE00000, 0x41)
    host._ops.log(sid, 2, b"probe: hello")
    host._ops.pci_bar_update(sid, 0, 0x50000000, 0x1000, 1)
    host._ops.async_notify(sid)
    # The events were recorded before the override raised.
    assert host.irq_level("probe", "line1") == 1
    assert host.irq_events[0].name == "line1"
    assert host.msi_events[0].data == 0x41
    assert host.logs[0].message == "probe: hello"
    assert host.bar_updates[0].enabled
    assert host.async_notifications == 1
    with pytest.raises(vm.CallbackError) as ei:
        host.raise_callback_errors_now()
    err = ei.value
    assert [f.callback for f in err.failures] == [
        "mem_read", "mem_write", "mem_map", "irq_set", "msi_send", "log", "pci_bar_update",
        "async_notify"]
    assert isinstance(err.__cause__, RuntimeError)
    assert "harness bug in mem_read" in str(err) and "7 more" in str(err)
    assert "Traceback" in err.failures[0].traceback
    assert all(f.source == "probe" for f in err.failures)
    # Raised once, kept for inspection.
    host.raise_callback_errors_now()
    assert len(host.callback_failures) == 8


def test_wrong_sized_answers_are_failures(mem):
    class Short(vm.Host):
        def mem_read(self, gpa, length):
            return b"\x00" * (length - 1)

        def mem_map(self, gpa, length, writable):
            return (self.memory.ranges[0].address, length + 1)

    host = Short(mem, mem_map=True)
    sid = slot(host)
    assert c_read(host, sid, vm.RAM_BASE, 8)[0] == -errno.EIO
    got = ctypes.c_uint64()
    assert not host._ops.mem_map(sid, vm.RAM_BASE, 8, 0, ctypes.byref(got))
    failures = host.take_callback_failures()
    assert "7 bytes for a read of 8" in str(failures[0].exception)
    assert "9 bytes" in str(failures[1].exception)


def test_base_exceptions_are_reraised_as_themselves(mem):
    class Interrupted(vm.Host):
        def mem_read(self, gpa, length):
            raise KeyboardInterrupt

    host = Interrupted(mem)
    sid = slot(host)
    assert c_read(host, sid, vm.RAM_BASE, 4)[0] == -errno.EIO
    with pytest.raises(KeyboardInterrupt):
        host.raise_callback_errors_now()


def test_fault_from_an_override_is_the_answer(mem):
    class Flaky(vm.Host):
        def mem_read(self, gpa, length):
            raise vm.Fault(errno.EIO, "injected")

    host = Flaky(mem)
    sid = slot(host)
    assert c_read(host, sid, vm.RAM_BASE, 4)[0] == -errno.EIO
    assert host.take_callback_failures() == []


def test_log_records_and_python_logging(caplog):
    host = vm.Host()
    sid = slot(host, "dev0")
    with caplog.at_level(logging.DEBUG, logger="libvmapple"):
        host._ops.log(sid, vm.LogLevel.GUEST_ERROR, b"dev0: bad register 0x40")
        host._ops.log(sid, 17, b"dev0: odd level")
    assert host.log_contains("bad register", vm.LogLevel.GUEST_ERROR)
    assert not host.log_contains("bad register", vm.LogLevel.INFO)
    assert host.logs[1].level == 17
    assert str(host.logs[0]) == "[guest-error] dev0: bad register 0x40"
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]


def test_events_are_ordered_with_timestamps():
    host = vm.Host()
    a, b = slot(host, "a"), slot(host, "b")
    host._ops.irq_set(a, 0, 1)
    host._ops.msi_send(b, 0xFEE00000, 7)
    host._ops.irq_set(b, 1, 1)
    host._ops.irq_set(a, 0, 0)
    assert [(type(e).__name__, e.device) for e in host.events] == [
        ("IrqEvent", "a"), ("MsiEvent", "b"), ("IrqEvent", "b"), ("IrqEvent", "a")]
    times = [e.time_ns for e in host.events]
    assert times == sorted(times)
    assert host.irq_level("a") == 0 and host.irq_level("b", 1) == 1
    host.clear()
    assert host.events == [] and host.irq_level("b", 1) == 1
    with pytest.raises(KeyError):
        host.irq_level("nobody")


def test_failures_are_taken_from_the_host_first_then_from_each_source():
    # What Device, VhostUserBlk and VfioPassthrough raise: the host's
    # failures (when it raises them), then each source's, in that order.
    from libvmapple.errors import CallbackLog
    from libvmapple.host import take_failures

    host = vm.Host()
    vol, dma = CallbackLog("blockdev.", "vol"), CallbackLog("dma.", "dart")
    dma.fail("map", KeyError("d1"))
    host._fail("mem_read", "dev", LookupError("h1"))
    vol.fail("read", ValueError("v1"))
    host._fail("irq_set", "dev", LookupError("h2"))
    taken = take_failures(host, (vol, dma))
    assert [f.exception.args[0] for f in taken] == ["h1", "h2", "v1", "d1"]
    assert [f.callback for f in taken] == ["mem_read", "irq_set", "blockdev.read", "dma.map"]
    assert take_failures(host, (vol, dma)) == []  # taken once
    assert take_failures(host) == []
    # A host that does not raise its failures keeps them pending.
    quiet = vm.Host(raise_callback_errors=False)
    quiet._fail("log", "dev", LookupError("h3"))
    vol.fail("write", ValueError("v2"))
    assert [f.exception.args[0] for f in take_failures(quiet, (vol,))] == ["v2"]
    assert [f.exception.args[0] for f in quiet.take_callback_failures()] == ["h3"]
