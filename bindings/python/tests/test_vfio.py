# SPDX-License-Identifier: MIT
"""vfio-apple passthrough policy against the simulated host mechanism, and
the libpciaccess backend read-only against this machine."""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import struct

import pytest

import libvmapple as vm
from libvmapple import vfio
from libvmapple.apple_dma_pci import AppleDmaDriver, AppleDmaPci
from libvmapple.vfio import IrqType, VfioPassthrough, VfioSim

# A function with an MSI-X capability of 8 entries at 0x40.
CONFIG = (struct.pack("<HHHH", 0x14E4, 0x166B, 0x0006, 0x0010) + bytes(0x34 - 8) +
          bytes([0x40]) + bytes(0x40 - 0x35) + struct.pack("<BBHII", 0x11, 0, 7, 0, 0))


@pytest.fixture
def sim():
    s = VfioSim()
    s.fn = s.add_function(3, 0, 0, config=CONFIG, msi_vectors=4,
                          bars={0: 0x4000, 2: (1 << 20, vfio.BAR_64)})
    return s


def make(sim, mem=None, **kw):
    host = vm.Host(mem, mem_map=mem is not None)
    return VfioPassthrough(sim.backend, host, guest_bdf=0x0800, host_bus=3, **kw)


def test_backend_registry(sim):
    b = sim.backend
    (f,) = b.functions()
    assert (f.bus, f.device, f.vendor_id, f.device_id) == (3, 0, 0x14E4, 0x166B)
    assert f.host_fn == vfio.host_fn(3, 0, 0) == sim.fn
    assert b.read_config(sim.fn, 0, 4) == CONFIG[:4]
    assert b.bar_info(sim.fn, 2).size == 1 << 20 and b.bar_info(sim.fn, 2).flags & vfio.BAR_64
    assert b.bar_info(sim.fn, 1).size == 0
    assert b.refs(sim.fn) == 0 and not b.is_owned(sim.fn)
    pt = make(sim)
    assert b.refs(sim.fn) == 1 and b.is_owned(sim.fn)
    with pytest.raises(vm.VmappleError) as ei:
        make(sim)
    assert ei.value.errno == errno.EBUSY
    pt.close()
    assert b.refs(sim.fn) == 0 and not sim.state(sim.fn).connected
    with pytest.raises(vm.VmappleError) as ei:
        b.read_config(vfio.host_fn(9, 9), 0, 4)
    assert ei.value.errno == errno.ENODEV


def test_config_policy(sim):
    pt = make(sim)
    assert pt.config_read(0) == 0x166B14E4
    assert pt.config_read_block(0, 8) == CONFIG[:8]
    pt.config_write(0x04, 0x0006, 2)  # COMMAND: forwarded bytewise
    pt.config_write(0x10, 0xFFFFFFFF)  # a BAR: dropped
    pt.config_write(0x06, 0xFFFF, 2)  # STATUS: dropped
    pt.config_write(0x42, 0x8000, 2)  # MSI-X control: forwarded as is
    assert sim.config_writes(sim.fn) == [(4, 1, 6), (5, 1, 0), (0x42, 2, 0x8000)]
    with pytest.raises(vm.VmappleError) as ei:
        pt.config_write(0, 0, 3)
    assert ei.value.errno == errno.EINVAL


def test_bars_and_regions(sim):
    pt = make(sim)
    pt.bar_write(0, 0x10, 0x1122334455667788, 8)
    assert sim.bar_memory(sim.fn, 0)[0x10:0x18].tobytes() == \
        bytes.fromhex("8877665544332211")
    assert pt.bar_read(0, 0x14) == 0x11223344
    pt.bar_memory(2)[0:4] = b"abcd"
    assert pt.bar_read(2, 0) == int.from_bytes(b"abcd", "little")
    with pytest.raises(vm.VmappleError) as ei:
        pt.bar_read(0, 0x4000 - 4, 8)
    assert ei.value.errno == errno.ERANGE  # 8 bytes where 4 are left
    with pytest.raises(vm.VmappleError) as ei:
        pt.bar_read(0, 2, 4)  # unaligned
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(vm.VmappleError) as ei:
        pt.bar_read(1, 0)
    assert ei.value.errno == errno.ENXIO
    bar0 = pt.region_info(vfio.RegionIndex.BAR0)
    assert bar0.size == 0x4000 and bar0.flags & vfio.REGION_MMAP
    assert pt.region_info(vfio.RegionIndex.CONFIG).size == 4096
    assert pt.region_info(vfio.RegionIndex.ROM).size == 0


def test_interrupts(sim):
    seen = []
    pt = make(sim, on_irq=lambda t, v: seen.append((t, v)))
    assert pt.irq_count(IrqType.INTX) == 1
    assert pt.irq_count(IrqType.MSI) == 4
    assert pt.irq_count(IrqType.MSIX) == 8
    assert pt.irq_count(IrqType.ERR) == 0
    pt.set_irqs(IrqType.MSIX, 8, in_use=[1, 5])
    assert sim.state(sim.fn).mask == (1 << 1) | (1 << 5)
    for v in (5, 3, 1):
        sim.raise_irq(sim.fn, v)
    assert sim.notifications == [sim.fn]  # armed: one notification
    assert pt.process_interrupts() == 2
    assert seen == [(IrqType.MSIX, 1), (IrqType.MSIX, 5)]
    assert [(e.type, e.vector) for e in pt.host.events] == seen
    pt.set_irqs(IrqType.INTX, 1)
    sim.raise_irq(sim.fn, 0)
    assert pt.process_interrupts() == 1 and seen[-1] == (IrqType.INTX, 0)
    with pytest.raises(vm.VmappleError):
        pt.set_irqs(IrqType.MSI, 5)  # more than the backend's 4
    before = sim.state(sim.fn)
    assert (before.connects, before.resets) == (1, 0)
    pt.reset()
    after = sim.state(sim.fn)
    assert (after.connects, after.resets) == (1, 1)
    sim.raise_irq(sim.fn, 1)
    assert pt.process_interrupts() == 0  # mode NONE after a reset


def test_a_raising_irq_callback_is_reported(sim):
    def on_irq(t, v):
        raise RuntimeError("VMM bug")

    pt = make(sim, on_irq=on_irq)
    pt.set_irqs(IrqType.MSI, 1, in_use=[0])
    sim.raise_irq(sim.fn, 0)
    with pytest.raises(vm.CallbackError, match="VMM bug"):
        pt.process_interrupts()
    assert sim.state(sim.fn).armed  # re-armed all the same


def test_companion_created_and_found(sim):
    mem = vm.GuestMemory(1 << 20)
    pt = make(sim, mem, companion={"max_entries": 64})
    comp, created = pt.attach_companion([])
    assert created
    info = comp.info()
    assert (info.managed_bdf, info.host_bus, info.max_entries) == (0x0800, 3, 64)
    # The companion maps through the host function's DMA (the sim's DART).
    drv = AppleDmaDriver(comp, mem)
    status, res = drv.map([(vm.RAM_BASE + 0x1000, 0x1000)])
    assert status == 0 and res[0].dma_addr != vm.RAM_BASE + 0x1000
    with pytest.raises(vm.VmappleError) as ei:
        pt.attach_companion([])
    assert ei.value.errno == errno.EBUSY
    bus = vm.Bus()
    comp.place_bar(0, 0x50000000)
    bus.map_region(comp, 0, 0x50000000)
    pt.close()
    assert comp.closed and bus.ranges == []

    # A companion the host made is found among the candidates.
    other = make(sim, mem)
    mine = AppleDmaPci(other.host, managed_bdf=0x0800, host_bus=3)
    stranger = AppleDmaPci(other.host, managed_bdf=0x0900, host_bus=4)
    found, created = other.attach_companion([vm.PciHostBridge(), stranger, mine])
    assert found is mine and not created
    clash = AppleDmaPci(other.host, managed_bdf=0x0800, host_bus=5)
    with pytest.raises(vm.VmappleError) as ei:
        other.attach_companion([mine, clash])
    assert ei.value.errno == errno.EEXIST


def test_simulation_lifetime(sim):
    pt = make(sim)
    backend = sim.backend
    sim.close()
    with pytest.raises(ValueError, match="VfioSim"):
        backend.functions()
    # The passthrough function keeps the simulated function alive.
    pt.bar_write(0, 0, 7)
    assert pt.bar_read(0, 0) == 7
    del pt, backend
    gc.collect()


def test_sim_errors(sim):
    with pytest.raises(vm.VmappleError) as ei:
        sim.add_function(3, 0, 0)
    assert ei.value.errno == errno.EEXIST
    with pytest.raises(vm.VmappleError):
        sim.add_function(4, 0, 0, bars={0: 100})  # not a power of two
    with pytest.raises(vm.VmappleError) as ei:
        sim.raise_irq(vfio.host_fn(9, 0), 0)
    assert ei.value.errno == errno.ENODEV


def _sysfs_functions() -> set[tuple[int, int, int]]:
    out = set()
    for name in os.listdir("/sys/bus/pci/devices"):
        dom, bus, devfn = name.split(":")
        dev, fn = devfn.split(".")
        if int(dom, 16) == 0:
            out.add((int(bus, 16), int(dev, 16), int(fn, 16)))
    return out


def test_pciaccess_reads_this_machine():
    if not os.path.isdir("/sys/bus/pci/devices"):
        pytest.skip("no /sys/bus/pci on this machine")
    try:
        b = vfio.VfioBackend.pciaccess()  # read-only: never writes to real devices
    except vm.VmappleError as e:
        if e.errno == errno.ENOTSUP:
            pytest.skip(f"libvmapple was built without libpciaccess: {e.detail}")
        raise
    in_sysfs = _sysfs_functions()
    if not in_sysfs:
        b.close()
        pytest.skip("/sys/bus/pci/devices lists no function of domain 0: nothing to compare")
    fns = [f for f in b.functions() if f.domain == 0]
    assert {(f.bus, f.device, f.function) for f in fns} == in_sysfs
    assert len(fns) == len(in_sysfs)  # each function once
    for f in fns:
        path = f"/sys/bus/pci/devices/0000:{f.bus:02x}:{f.device:02x}.{f.function:x}/config"
        with open(path, "rb") as fh:
            want = fh.read(4)
        assert b.read_config(f.host_fn, 0, 4) == want
        assert struct.unpack("<HH", want) == (f.vendor_id, f.device_id)
    b.close()


class FakeFunction:
    """A host mechanism written in Python: one function at 5:00.0."""

    FN = vfio.host_fn(5, 0, 0)

    def __init__(self):
        self.config = bytearray(CONFIG + bytes(256 - len(CONFIG)))
        self.bar0 = bytearray(0x1000)
        self.pending = 0
        self.mask = 0
        self.log: list[tuple] = []

    def connect(self, fn):
        if fn != self.FN:
            raise vm.Fault(errno.ENODEV)
        self.log.append(("connect", fn))
        return "conn-5"

    def disconnect(self, conn):
        self.log.append(("disconnect", conn))

    def config_read(self, conn, offset, length):
        return self.config[offset:offset + length]  # 256 bytes of config space

    def config_write(self, conn, offset, size, value):
        self.log.append(("config_write", offset, size, value))

    def bar_info(self, conn, bar):
        return vfio.BarInfo(vfio.BAR_MEM, 0x1000, 0xC000_0000) if bar == 0 else None

    def bar_map(self, conn, bar):
        return self.bar0

    def irq_setup(self, conn):
        return 2

    def irq_read_and_clear(self, conn):
        bits, self.pending = self.pending, 0
        return bits

    def irq_set_mask(self, conn, mask):
        self.mask = mask

    def reset(self, conn):
        raise RuntimeError("FLR wedged")

    def get_function(self, index):
        if index:
            return None
        return vfio.FunctionInfo(0, 5, 0, 0, 1, 0x14E4, 0x166B, 0, 0, 0x020000)


class OverlongDmaMap(FakeFunction):
    """dma_map answers more bytes than were asked for: the bindings refuse it."""

    def dma_map(self, conn, gpa, host, length, flags):
        return 0x1_0000_0000 + gpa, length + 1


def map_is_refused(dma):
    """A map whose callback answer the bindings refuse fails with EIO; the
    callback failure then waits on the backend for its next call."""
    with pytest.raises(vm.VmappleError) as ei:
        dma.map(0x1000, 0x100)
    assert ei.value.errno == errno.EIO


def test_python_host_mechanism():
    fake = FakeFunction()
    backend = vfio.VfioBackend.from_python(fake, name="fake-dext")
    (f,) = backend.functions()
    assert (f.bus, f.vendor_id, f.class_code) == (5, 0x14E4, 0x020000)
    with pytest.raises(vm.VmappleError) as ei:
        VfioPassthrough(backend, guest_bdf=0x0900, host_bus=6)
    assert ei.value.errno == errno.ENODEV
    seen = []
    pt = VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5,
                         on_irq=lambda t, v: seen.append(v))
    assert fake.log[0] == ("connect", FakeFunction.FN)
    assert pt.config_read(0) == 0x166B14E4
    assert pt.config_read(0x400) == 0  # beyond a 256-byte config space
    pt.config_write(0x10, 0xFFFFFFFF)  # dropped by the policy
    pt.config_write(0x04, 0x0002, 2)
    assert [e for e in fake.log if e[0] == "config_write"] == \
        [("config_write", 4, 1, 2), ("config_write", 5, 1, 0)]
    # BAR accesses reach the Python buffer directly.
    pt.bar_write(0, 0x20, 0xAABBCCDD)
    assert fake.bar0[0x20:0x24] == bytes.fromhex("ddccbbaa")
    fake.bar0[0x30] = 0x5A
    assert pt.bar_read(0, 0x30, 1) == 0x5A
    assert pt.irq_count(IrqType.MSI) == 2
    pt.set_irqs(IrqType.MSI, 2, in_use=[1])
    assert fake.mask == 0b10
    fake.pending = 0b11
    assert pt.process_interrupts() == 1 and seen == [1]
    with pytest.raises(vm.CallbackError, match="FLR wedged"):
        pt.reset()
    assert backend.callback_failures[0].callback == "vfio backend.reset"
    pt.close()
    assert fake.log[-1] == ("disconnect", "conn-5")
    backend.close()


def test_python_host_mechanism_dma_and_all_256_vectors():
    class Wide(FakeFunction):
        def irq_setup(self, conn):
            return 256  # the most a function can have

        def dma_map(self, conn, gpa, host, length, flags):
            self.log.append(("dma_map", conn, gpa, host, length, flags))
            return 0x8_0000_0000 + gpa, length

        def dma_unmap(self, conn, gpa, length, bus_addr, bus_len):
            self.log.append(("dma_unmap", conn, gpa, length, bus_addr, bus_len))

    fake = Wide()
    backend = vfio.VfioBackend.from_python(fake, name="wide-dext")
    seen = []
    pt = VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5,
                         on_irq=lambda t, v: seen.append((t, v)))
    # DMA through the function's connection: every argument in its place,
    # and the bus address the mechanism chose comes back.
    dma = backend.dma(FakeFunction.FN)
    assert dma.map(0x7000_1000, 0x2000, flags=1, host=0x7F12_3000) == (0x8_7000_1000, 0x2000)
    assert dma.occupancy().mappings == 1
    dma.unmap(0x7000_1000, 0x2000, 0x8_7000_1000, 0x2000)
    assert [e for e in fake.log if e[0].startswith("dma")] == [
        ("dma_map", "conn-5", 0x7000_1000, 0x7F12_3000, 0x2000, 1),
        ("dma_unmap", "conn-5", 0x7000_1000, 0x2000, 0x8_7000_1000, 0x2000)]
    assert dma.occupancy().mappings == 0
    dma.close()
    # Interrupt bitmaps are 4 words wide: vectors in each word, the edges too.
    assert pt.irq_count(IrqType.MSI) == 256
    in_use = [0, 63, 64, 127, 128, 191, 192, 255]
    pt.set_irqs(IrqType.MSI, 256, in_use=in_use)
    assert fake.mask == sum(1 << v for v in in_use)
    fake.pending = sum(1 << v for v in in_use + [1, 65, 129, 254])  # some not in use
    assert pt.process_interrupts() == len(in_use)
    assert seen == [(IrqType.MSI, v) for v in in_use]
    assert fake.pending == 0
    # Vectors from `enabled` up are masked, in use or not.
    pt.set_irqs(IrqType.MSI, 128, in_use=in_use)
    assert fake.mask == sum(1 << v for v in in_use if v < 128)
    seen.clear()
    fake.pending = sum(1 << v for v in in_use)
    assert pt.process_interrupts() == 4
    assert seen == [(IrqType.MSI, v) for v in (0, 63, 64, 127)]
    pt.close()
    assert fake.log[-1] == ("disconnect", "conn-5")
    backend.close()


def test_a_python_backend_answer_that_does_not_convert_is_reported():
    # Answers of the wrong shape fail in the bindings' conversion, not in
    # the implementation: they must be callback failures all the same.
    class Broken(OverlongDmaMap):
        def irq_setup(self, conn):
            return None  # not a vector count

    backend = vfio.VfioBackend.from_python(Broken(), name="broken-dext")
    with pytest.raises(vm.CallbackError, match="irq_setup callback for broken-dext") as ei:
        VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5)
    assert isinstance(ei.value.__cause__, TypeError)
    assert [f.callback for f in backend.callback_failures] == ["vfio backend.irq_setup"]
    dma = backend.dma(FakeFunction.FN)
    map_is_refused(dma)
    with pytest.raises(vm.CallbackError, match="dma_map answered 257 bytes for 256"):
        backend.functions()
    dma.close()
    backend.close()


@pytest.mark.parametrize("vectors", [(1 << 32) + 3, -1])
def test_an_irq_setup_answer_a_uint32_cannot_hold_is_refused(vectors):
    # ctypes would store 2**32 + 3 as 3 and -1 as 0xffffffff: the answer is
    # refused instead, as answers of the wrong shape are.
    class Huge(FakeFunction):
        def irq_setup(self, conn):
            return vectors

    fake = Huge()
    backend = vfio.VfioBackend.from_python(fake, name="huge-dext")
    with pytest.raises(vm.CallbackError, match=f"irq_setup vectors = {vectors:#x} does not fit "
                                               r"32 bits \(0 .. 0xffffffff\)") as ei:
        VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5)
    assert isinstance(ei.value.__cause__, ValueError)
    assert [f.callback for f in backend.callback_failures] == ["vfio backend.irq_setup"]
    assert backend.refs(fake.FN) == 0 and not backend.is_owned(fake.FN)
    backend.close()


def test_a_function_field_its_c_field_cannot_hold_is_refused():
    # ctypes would store bus 300 as 44: another function than the one meant.
    class Odd(FakeFunction):
        def get_function(self, index):
            info = super().get_function(index)
            return info and dataclasses.replace(info, bus=300)

    backend = vfio.VfioBackend.from_python(Odd(), name="odd-dext")
    with pytest.raises(vm.CallbackError, match="get_function bus = 0x12c does not fit 8 bits") \
            as ei:
        backend.functions()
    assert isinstance(ei.value.__cause__, ValueError)
    backend.close()


@pytest.mark.parametrize("size", [1 << 64, -1])
def test_a_bar_size_a_uint64_cannot_hold_is_refused(size):
    class Odd(FakeFunction):
        def bar_info(self, conn, bar):
            return vfio.BarInfo(vfio.BAR_MEM, size, 0xC000_0000) if bar == 0 else None

    backend = vfio.VfioBackend.from_python(Odd(), name="odd-dext")
    with pytest.raises(vm.CallbackError, match=f"bar_info size = {size:#x} does not fit 64 bits"):
        VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5)
    assert [f.callback for f in backend.callback_failures] == ["vfio backend.bar_info"]
    backend.close()


@pytest.mark.parametrize("bus_addr", [-1, 1 << 64])
def test_a_dma_map_bus_address_a_uint64_cannot_hold_is_refused(bus_addr):
    class Wild(FakeFunction):
        def dma_map(self, conn, gpa, host, length, flags):
            return bus_addr, length

    backend = vfio.VfioBackend.from_python(Wild(), name="wild-dext")
    dma = backend.dma(FakeFunction.FN)
    map_is_refused(dma)
    assert dma.occupancy().mappings == 0
    with pytest.raises(vm.CallbackError, match=f"dma_map bus address = {bus_addr:#x} does not "
                                               "fit 64 bits") as ei:
        backend.functions()
    assert isinstance(ei.value.__cause__, ValueError)
    dma.close()
    backend.close()


def test_a_pending_bitmap_that_is_negative_or_too_wide_is_refused():
    # -1 >> 64 * i is all ones in every word: every vector would be
    # pending. Bits from 256 up would be dropped without a word.
    class Bitmap(FakeFunction):
        def irq_read_and_clear(self, conn):
            return self.pending

    fake = Bitmap()
    backend = vfio.VfioBackend.from_python(fake, name="negative-dext")
    seen = []
    pt = VfioPassthrough(backend, guest_bdf=0x0900, host_bus=5,
                         on_irq=lambda t, v: seen.append(v))
    pt.set_irqs(IrqType.MSI, 2, in_use=[0, 1])
    for bad in (-1, 1 << 256):
        fake.pending = bad
        with pytest.raises(vm.CallbackError, match=f"irq_read_and_clear bitmap = {bad:#x} "
                                                   "does not fit 256 bits") as ei:
            pt.process_interrupts()
        assert isinstance(ei.value.__cause__, ValueError)
        assert seen == []
    fake.pending = 0b10
    assert pt.process_interrupts() == 1 and seen == [1]
    fake.pending = 1 << 255  # the last vector: valid (and not in use)
    assert pt.process_interrupts() == 0
    pt.close()
    backend.close()


def test_a_refused_dma_raises_in_dma_and_leaves_nothing_behind():
    fake = OverlongDmaMap()
    backend = vfio.VfioBackend.from_python(fake, name="broken-dext")
    # Refused by the library: raised by dma() itself, with its message.
    with pytest.raises(vm.VmappleError, match="connect to host function 06:00.0") as ei:
        backend.dma(vfio.host_fn(6, 0))
    assert ei.value.errno == errno.ENODEV
    assert ei.value.function == "vmapple_vfio_backend_get_dma"
    with pytest.raises(vm.VmappleError, match="0xffffffff is not a host function key") as ei:
        backend.dma(0xFFFFFFFF)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(ValueError, match="max_mappings"):
        backend.dma(FakeFunction.FN, max_mappings=1 << 32)
    assert backend.refs(FakeFunction.FN) == 0
    # A dma() that raises the backend's pending callback failure has made a
    # DMA backend in the library: it must not outlive the call, holding the
    # function's connection with nothing left to release it.
    first = backend.dma(FakeFunction.FN)
    map_is_refused(first)
    with pytest.raises(vm.CallbackError, match="dma_map answered 257 bytes for 256"):
        backend.dma(FakeFunction.FN)
    assert backend.refs(FakeFunction.FN) == 1
    first.close()
    assert backend.refs(FakeFunction.FN) == 0
    assert fake.log[-1] == ("disconnect", "conn-5")
    backend.close()


def test_a_callback_failing_during_passthrough_creation_raises_in_the_constructor():
    class Flaky(FakeFunction):
        def __init__(self):
            super().__init__()
            self.refuse_connect = True
            self.vectors = None  # not a vector count

        def connect(self, fn):
            if self.refuse_connect:
                raise RuntimeError("the dext is not loaded")
            return super().connect(fn)

        def irq_setup(self, conn):
            return self.vectors

    fake = Flaky()
    backend = vfio.VfioBackend.from_python(fake, name="flaky-dext")
    host = vm.Host()
    # The creation fails because connect raised: that is what the
    # constructor raises, not a later call on the backend.
    with pytest.raises(vm.CallbackError, match="connect callback for flaky-dext") as ei:
        VfioPassthrough(backend, host, guest_bdf=0x0900, host_bus=5)
    assert isinstance(ei.value.__cause__, RuntimeError)
    assert backend.take_callback_failures() == []
    assert len(backend.functions()) == 1
    # The library takes the function although irq_setup raised: the
    # constructor raises all the same, and the function is released again.
    fake.refuse_connect = False
    with pytest.raises(vm.CallbackError, match="irq_setup callback for flaky-dext") as ei:
        VfioPassthrough(backend, host, guest_bdf=0x0900, host_bus=5)
    assert isinstance(ei.value.__cause__, TypeError)
    assert backend.take_callback_failures() == []
    assert backend.refs(fake.FN) == 0 and not backend.is_owned(fake.FN)
    assert fake.log[-2:] == [("connect", fake.FN), ("disconnect", "conn-5")]
    assert host._slots == {}
    fake.vectors = 2
    pt = VfioPassthrough(backend, host, guest_bdf=0x0900, host_bus=5)  # not EBUSY
    assert pt.irq_count(IrqType.MSI) == 2
    pt.close()
    backend.close()


def test_a_refused_passthrough_raises_in_the_constructor_and_leaves_nothing_behind(sim):
    host = vm.Host()
    # Refused by the library: raised by the constructor, with its message.
    with pytest.raises(vm.VmappleError, match="option host_device is 40, the limit is 31") as ei:
        VfioPassthrough(sim.backend, host, host_bus=3, host_device=40)
    assert ei.value.errno == errno.EINVAL
    assert ei.value.function == "vmapple_vfio_apple_create"
    with pytest.raises(vm.VmappleError, match="connect to host function 09:00.0") as ei:
        VfioPassthrough(sim.backend, host, host_bus=9)
    assert ei.value.errno == errno.ENODEV
    # Refused by the bindings before the library is called.
    with pytest.raises(ValueError, match="host_device = 0x12c does not fit 8 bits"):
        VfioPassthrough(sim.backend, host, host_bus=3, host_device=300)
    with pytest.raises(TypeError, match="unknown option bogus"):
        VfioPassthrough(sim.backend, host, host_bus=3, companion={"bogus": 1})
    closed = VfioSim()
    closed.close()
    with pytest.raises(ValueError, match="VfioSim of this backend is closed"):
        VfioPassthrough(closed.backend, host, host_bus=3)
    # No failed attempt left a device slot on the host or a connection.
    assert host._slots == {}
    assert sim.backend.refs(sim.fn) == 0 and not sim.state(sim.fn).connected
    pt = VfioPassthrough(sim.backend, host, guest_bdf=0x0800, host_bus=3)
    assert list(host._slots) == [pt._slot_id]
    pt.close()
    assert host._slots == {}
