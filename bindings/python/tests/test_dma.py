# SPDX-License-Identifier: MIT
"""DMA backends."""

from __future__ import annotations

import errno
import gc

import pytest

import libvmapple as vm
from libvmapple.dma import SIM_DART_BUS_BASE, SIM_DART_PAGE, DmaBackend


def test_identity():
    with DmaBackend.identity(max_mappings=2) as d:
        assert d.map(0x70001000, 0x3000) == (0x70001000, 0x3000)
        d.map(0x70008000, 16)
        with pytest.raises(vm.VmappleError) as ei:
            d.map(0x70009000, 16)
        assert ei.value.errno == errno.ENOSPC and "mappings" in ei.value.detail
        occ = d.occupancy()
        assert (occ.mappings, occ.max_mappings, occ.bytes, occ.failed_maps) == (2, 2, 0x3010, 1)
        d.unmap(0x70001000, 0x3000, 0x70001000, 0x3000)
        assert d.occupancy().mappings == 1
        with pytest.raises(vm.VmappleError) as ei:
            d.map(0, 0)
        assert ei.value.errno == errno.EINVAL


def test_sim_dart_hands_out_unaligned_addresses():
    d = DmaBackend.sim_dart(max_bytes=1 << 20)
    addr, n = d.map(0x70000000, 0x10000)
    assert n == 0x10000 and addr >= SIM_DART_BUS_BASE
    assert addr % SIM_DART_PAGE == 0 and addr % (2 * SIM_DART_PAGE) != 0
    addr2, _ = d.map(0x70020123, 100)
    assert addr2 % SIM_DART_PAGE == 0x123  # the offset within a 16 KiB page is kept
    with pytest.raises(vm.VmappleError) as ei:
        d.map(0x70100000, 1 << 20)
    assert ei.value.errno == errno.ENOSPC
    with pytest.raises(vm.VmappleError) as ei:
        d.unmap(0x70000000, 0x10000, addr + SIM_DART_PAGE, 0x10000)
    assert ei.value.errno == errno.ENOENT
    d.unmap(0x70000000, 0x10000, addr, 0x10000)
    occ = d.occupancy()
    assert occ.mappings == 1 and occ.max_bytes == 1 << 20
    with pytest.raises(vm.VmappleError):
        DmaBackend.sim_dart(bus_base=0x1234)  # not a multiple of 16 KiB


def test_python_backend():
    live = {}
    unmapped = []
    closed = []

    def map_(gpa, host, length, flags):
        if length > 0x10000:
            raise vm.Fault(errno.ENOSPC)
        if flags == 0xBAD:
            raise RuntimeError("dext bug")
        live[gpa] = (host, length, flags)
        return 0x1_0000_0000 + gpa, length

    def unmap(gpa, length, bus_addr, bus_len):
        unmapped.append((gpa, length, bus_addr, bus_len))
        live.pop(gpa)

    d = DmaBackend(map_, unmap, lambda: closed.append(1), max_mappings=8)
    # Every argument reaches the callbacks, each in its place.
    assert d.map(0x5000, 0x100, flags=3, host=0x7F00_0000) == (0x1_0000_5000, 0x100)
    assert live == {0x5000: (0x7F00_0000, 0x100, 3)}
    assert d.map(0x9000, 0x40) == (0x1_0000_9000, 0x40)
    assert live[0x9000] == (None, 0x40, 0)  # no host address: None
    with pytest.raises(vm.VmappleError) as ei:
        d.map(0x6000, 0x20000)
    assert ei.value.errno == errno.ENOSPC
    with pytest.raises(vm.CallbackError, match="dext bug"):
        d.map(0x7000, 16, flags=0xBAD)
    d.unmap(0x5000, 0x100, 0x1_0000_5000, 0x100)
    d.unmap(0x9000, 0x40, 0x2_0000_9000, 0x30)
    assert unmapped == [(0x5000, 0x100, 0x1_0000_5000, 0x100), (0x9000, 0x40, 0x2_0000_9000, 0x30)]
    assert live == {} and d.occupancy().max_mappings == 8
    d.close()
    assert closed == [1] and d.closed_by_library
    # Left to the garbage collector, a backend closes as well.
    DmaBackend(map_, unmap, lambda: closed.append(2))
    gc.collect()
    assert closed == [1, 2]


@pytest.mark.parametrize("bus_addr", [-1, 1 << 64, (1 << 64) + 0x5000])
def test_a_python_backend_bus_address_a_uint64_cannot_hold_is_refused(bus_addr):
    # ctypes would store -1 as 0xffffffffffffffff and 2**64 + x as x.
    d = DmaBackend(lambda gpa, host, length, flags: (bus_addr, length),
                   lambda gpa, length, bus_addr, bus_len: None)
    with pytest.raises(vm.CallbackError, match=f"map bus address = {bus_addr:#x} does not fit "
                                               "64 bits") as ei:
        d.map(0x5000, 0x100)
    assert isinstance(ei.value.__cause__, ValueError)
    assert [f.callback for f in d.callback_failures] == ["dma.map"]
    assert d.occupancy().mappings == 0
    d.close()


def test_a_python_backend_answer_of_too_many_bytes_is_refused():
    d = DmaBackend(lambda gpa, host, length, flags: (0x1_0000_0000 + gpa, length + 1),
                   lambda gpa, length, bus_addr, bus_len: None)
    with pytest.raises(vm.CallbackError, match="map answered 257 bytes for 256"):
        d.map(0x5000, 0x100)
    assert d.occupancy().mappings == 0
    d.close()
