# SPDX-License-Identifier: MIT
"""bdif: block requests from guest memory against Python and file volumes."""

from __future__ import annotations

import errno
import gc

import pytest

import libvmapple as vm
from libvmapple import bdif
from libvmapple.bdif import Bdif

SCRATCH = vm.RAM_BASE + 0x100  # request, sector block, status byte
BUF = vm.RAM_BASE + 0x10000


def pattern(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


@pytest.fixture
def root() -> vm.MemoryVolume:
    return vm.MemoryVolume(bytearray(pattern(64 * 1024)))


def test_registers():
    b = Bdif()
    assert b.device_type == vm.DeviceType.BDIF
    assert [(r.name, r.base, r.size) for r in b.regions] == [("bdif", 0x30000000, 0x200000)]
    assert b.reg_read(bdif.UNIT_ROOT, bdif.STATUS) == 1
    assert b.reg_read(bdif.UNIT_AUX, bdif.CFG) == 2
    assert b.reg_read(bdif.UNIT_ROOT, bdif.NEXT_DEVICE) == 0x08000000
    assert b.reg_read(bdif.UNIT_AUX, bdif.NEXT_DEVICE) == 0x00010000
    assert b.reg_read(0x10, bdif.NEXT_DEVICE) == 0xFFFFFFFF
    assert b.reg_read(bdif.UNIT_ROOT, 0x44, 2) == 0xFFFF
    assert b.reg_read(bdif.UNIT_ROOT, bdif.STATUS, 8) == 1


def test_reads_from_root_and_aux(host, root):
    mem = host.memory
    aux = vm.MemoryVolume(bytearray(pattern(8192, seed=3)))
    b = Bdif(host, root=root, aux=aux)
    assert b.transfer(bdif.UNIT_ROOT, SCRATCH, 2, BUF, 4096) == bdif.STATUS_OK
    assert mem.read(BUF, 4096) == bytes(root.data[1024:1024 + 4096])
    assert b.transfer(bdif.UNIT_AUX, SCRATCH, 0, BUF, 8192) == bdif.STATUS_OK
    assert mem.read(BUF, 8192) == pattern(8192, seed=3)
    assert ("read", 1024, 4096) in root.ops
    mapped = "mem_map" not in host.omitted
    assert any(d.op == "map" for d in host.dma) == mapped
    assert mem.live_maps == 0


def test_the_end_of_the_volume(root):
    mem = vm.GuestMemory(1 << 20)
    b = Bdif(vm.Host(mem), root=root)
    last = 64 * 1024 // 512 - 1
    assert b.transfer(0, SCRATCH, last, BUF, 512) == bdif.STATUS_OK
    mem.fill(BUF, 1024, 0xCC)
    # Crossing the end fails before any byte moves.
    assert b.transfer(0, SCRATCH, last, BUF, 1024) == bdif.STATUS_FAILED
    assert mem.read(BUF, 1024) == b"\xcc" * 1024


def test_writes_need_the_option_and_flush_when_asked(root):
    mem = vm.GuestMemory(1 << 20)
    host = vm.Host(mem)
    mem.write(BUF, b"\x5a" * 1024)
    before = bytes(root.data)
    plain = Bdif(host, root=root)
    assert plain.transfer(0, SCRATCH, 4, BUF, 1024, write=True) == bdif.STATUS_FAILED
    assert bytes(root.data) == before
    durable = Bdif(host, root=root, allow_writes=True, flush_writes=True)
    root.ops.clear()
    assert durable.transfer(0, SCRATCH, 4, BUF, 1024, write=True) == bdif.STATUS_OK
    assert root.data[2048:3072] == b"\x5a" * 1024
    assert root.durable[2048:3072] == b"\x5a" * 1024  # flushed before the status
    assert [op for op, _, _ in root.ops] == ["write", "flush"]
    ro = vm.MemoryVolume(4096, read_only=True)
    writer = Bdif(host, root=ro, allow_writes=True)
    assert writer.transfer(0, SCRATCH, 0, BUF, 512, write=True) == bdif.STATUS_FAILED
    with pytest.raises(vm.VmappleError) as ei:
        Bdif(host, root=root, flush_writes=True)
    assert ei.value.errno == errno.EINVAL and "ALLOW_WRITES" in ei.value.detail.upper()


def test_file_volume(tmp_path):
    img = tmp_path / "root.img"
    img.write_bytes(pattern(1 << 20))
    mem = vm.GuestMemory(4 << 20)
    vol = vm.FileVolume(img)
    b = Bdif(vm.Host(mem, mem_map=True), root=vol, allow_writes=True)
    vol.close()  # the device holds its own reference
    assert b.transfer(0, SCRATCH, 100, BUF, 256 * 1024) == bdif.STATUS_OK
    assert mem.read(BUF, 256 * 1024) == pattern(1 << 20)[51200:51200 + 256 * 1024]
    mem.write(BUF, b"W" * 512)
    assert b.transfer(0, SCRATCH, 0, BUF, 512, write=True) == bdif.STATUS_OK
    b.close()
    assert img.read_bytes()[:512] == b"W" * 512


def test_guest_errors_give_status_one(root):
    mem = vm.GuestMemory(1 << 20)
    host = vm.Host(mem)
    b = Bdif(host, root=root)
    assert b.transfer(bdif.UNIT_AUX, SCRATCH, 0, BUF, 512) == bdif.STATUS_FAILED  # no aux
    assert b.transfer(0, SCRATCH, 0, 0x1000, 512) == bdif.STATUS_FAILED  # buffer not RAM
    assert b.transfer(0, SCRATCH, 0, BUF, bdif.MAX_TRANSFER + 512) == bdif.STATUS_FAILED
    # Unknown data flags.
    mem.write(SCRATCH + 48, bdif.sector_block(0))
    mem.write(SCRATCH, bdif.request(SCRATCH + 48, BUF, 512, SCRATCH + 64, data_flags=0x42))
    mem.write(SCRATCH + 64, b"\xff")  # not the answer already: the device must write it
    host.logs.clear()
    b.submit(0, SCRATCH)
    assert mem.read(SCRATCH + 64, 1) == b"\x01"
    assert [(r.level, r.message) for r in host.logs] == [
        (vm.LogLevel.GUEST_ERROR, "bdif: root: unknown data flags 0x42")]
    # A request that is not in RAM: nothing at all is written.
    host.dma.clear()
    b.submit(0, 0x2000)
    assert [d.op for d in host.dma if d.op == "write"] == []
    # Absent units ignore CMD.
    host.dma.clear()
    b.submit(0x10, SCRATCH)
    assert host.dma == []


def test_raising_volume_callbacks(root):
    mem = vm.GuestMemory(1 << 20)

    def read(off, n):
        if off == 0:
            raise vm.Fault(errno.EIO)
        raise RuntimeError("image server gone")

    vol = vm.CallbackVolume(8192, read=read, name="remote")
    b = Bdif(vm.Host(mem), root=vol)
    # A Fault is a disk error: status 1, nothing raised.
    assert b.transfer(0, SCRATCH, 0, BUF, 512) == bdif.STATUS_FAILED
    # An exception is a harness bug: status 1 for the guest, CallbackError here.
    with pytest.raises(vm.CallbackError) as ei:
        b.transfer(0, SCRATCH, 1, BUF, 512)
    assert ei.value.failures[0].source == "remote"
    assert mem.read(SCRATCH + 64, 1) == b"\x01"
    # Still serving.
    root_dev = Bdif(vm.Host(mem), root=root)
    assert root_dev.transfer(0, SCRATCH, 0, BUF, 512) == bdif.STATUS_OK


def test_raising_host_write_is_reported(root):
    mem = vm.GuestMemory(1 << 20)

    class Broken(vm.Host):
        def mem_write(self, gpa, data):
            if gpa == BUF:
                raise RuntimeError("mem_write")
            super().mem_write(gpa, data)

    b = Bdif(Broken(mem), root=root)
    with pytest.raises(vm.CallbackError, match="mem_write callback for bdif"):
        b.transfer(0, SCRATCH, 0, BUF, 512)
    assert mem.read(SCRATCH + 64, 1) == b"\x01"


def test_volumes_live_as_long_as_the_device():
    closed = []
    vol = vm.CallbackVolume(4096, read=lambda o, n: b"v" * n, close=lambda: closed.append(1))
    mem = vm.GuestMemory(1 << 20)
    b = Bdif(vm.Host(mem), root=vol)
    del vol
    gc.collect()
    assert closed == []
    assert b.transfer(0, SCRATCH, 0, BUF, 512) == bdif.STATUS_OK
    assert mem.read(BUF, 4) == b"vvvv"
    del b
    gc.collect()
    assert closed == [1]


def test_state_records_the_configuration(root):
    b = Bdif(root=root)
    blob = b.save()
    Bdif(root=root).load(blob)
    with pytest.raises(vm.VmappleError) as ei:
        Bdif(root=vm.MemoryVolume(4096)).load(blob)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(TypeError, match="Blockdev"):
        Bdif(root=b"not a volume")
