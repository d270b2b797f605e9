# SPDX-License-Identifier: MIT
"""GuestMemory: the harness's guest RAM."""

from __future__ import annotations

import ctypes
import errno

import pytest

import libvmapple as vm


def test_read_write_and_integers(mem):
    base = vm.RAM_BASE
    mem.write(base + 0x10, b"\x01\x02\x03\x04")
    assert mem.read(base + 0x10, 4) == b"\x01\x02\x03\x04"
    assert mem.read_u32(base + 0x10) == 0x04030201
    mem.write_u64(base + 0x20, 0x1122334455667788)
    assert mem.read_u16(base + 0x20) == 0x7788
    assert mem.read_u8(base + 0x27) == 0x11
    mem.write_u16(base, 0xBEEF)
    mem.write_u8(base + 2, 0x7F)
    mem.write_u32(base + 4, 0xCAFEF00D)
    assert mem.read(base, 8) == b"\xef\xbe\x7f\x00\x0d\xf0\xfe\xca"
    mem.fill(base, 8, 0xAA)
    assert mem.read(base, 8) == b"\xaa" * 8
    assert mem.read_u64(base + 0x20) == 0x1122334455667788


def test_outside_ram_faults(mem):
    with pytest.raises(vm.Fault) as ei:
        mem.read(vm.RAM_BASE - 1, 2)
    assert ei.value.errno == errno.EFAULT
    with pytest.raises(vm.Fault):
        mem.read(vm.RAM_BASE + mem.ranges[0].size - 4, 8)
    with pytest.raises(vm.Fault):
        mem.write(0, b"x")
    assert mem.find(vm.RAM_BASE, 1 << 20) is mem.ranges[0]
    assert mem.find(vm.RAM_BASE, (1 << 20) + 1) is None


def test_ranges_shared_buffers_and_rom():
    mem = vm.GuestMemory()
    fw = bytearray(b"\xfe" * 0x1000)
    mem.add_range(vm.FIRMWARE_BASE, buffer=fw, name="firmware", writable=False)
    mem.add_range(vm.RAM_BASE, 0x2000, use_mmap=True)
    assert [r.name for r in mem] == ["firmware", "ram"]
    assert mem.read(vm.FIRMWARE_BASE, 2) == b"\xfe\xfe"
    # The harness may store into ROM; devices may not.
    mem.write(vm.FIRMWARE_BASE, b"\x01")
    assert fw[0] == 1
    with pytest.raises(vm.Fault):
        mem.dma_write(vm.FIRMWARE_BASE, memoryview(b"x"))
    assert mem.dma_map(vm.FIRMWARE_BASE, 16, writable=True) is None
    assert mem.dma_map(vm.FIRMWARE_BASE, 16, writable=False) is not None
    with pytest.raises(ValueError, match="overlaps"):
        mem.add_range(vm.RAM_BASE + 0x1000, 0x2000)
    with pytest.raises(ValueError, match="writable"):
        mem.add_range(0, buffer=b"read-only bytes")
    # A pinned buffer cannot be resized under a device's pointer.
    with pytest.raises(BufferError):
        fw.extend(b"x")


def test_map_hands_out_pointers_into_the_buffer():
    mem = vm.GuestMemory(0x1000, map_chunk=0x100)
    addr, n = mem.dma_map(vm.RAM_BASE + 0x10, 0x800, writable=True)
    assert n == 0x100  # map_chunk
    ctypes.memmove(addr, b"zero-copy", 9)
    assert mem.read(vm.RAM_BASE + 0x10, 9) == b"zero-copy"
    assert mem.live_maps == 1
    mem.dma_unmap(addr, n, True)
    assert mem.live_maps == 0
    mem.map_chunk = 0
    _, n = mem.dma_map(vm.RAM_BASE + 0xF00, 0x800, writable=False)
    assert n == 0x100  # up to the end of the range
    assert mem.dma_map(vm.RAM_BASE + 0x1000, 1, writable=False) is None
