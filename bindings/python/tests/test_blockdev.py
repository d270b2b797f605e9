# SPDX-License-Identifier: MIT
"""Block volumes: files, Python callbacks, memory."""

from __future__ import annotations

import errno
import gc

import pytest

import libvmapple as vm


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "disk.img"
    p.write_bytes(bytes(range(256)) * 32)  # 8 KiB
    return p


def test_file_volume(image):
    with vm.FileVolume(image) as vol:
        assert vol.capacity == 8192
        assert vol.features == vm.BlockdevFeatures.CAN_WRITE | vm.BlockdevFeatures.CAN_FLUSH | \
            vm.BlockdevFeatures.CAN_DISCARD | vm.BlockdevFeatures.CAN_WRITE_ZEROES
        assert vol.read(256, 4) == b"\x00\x01\x02\x03"
        vol.write(512, b"A" * 512)
        vol.flush()
        with pytest.raises(vm.VmappleError) as ei:
            vol.read(8000, 512)
        assert ei.value.errno == errno.ERANGE
    assert image.read_bytes()[512:1024] == b"A" * 512


def test_file_volume_options_and_errors(image, tmp_path):
    with vm.FileVolume(image, read_only=True, offset=1024, length=2048) as vol:
        assert vol.capacity == 2048 and vol.read_only
        assert vol.read(0, 2) == b"\x00\x01"
        with pytest.raises(vm.VmappleError) as ei:
            vol.write(0, b"x" * 512)
        assert ei.value.errno == errno.EROFS
        vol.flush()  # nothing to do on a read-only volume
    with pytest.raises(vm.VmappleError) as ei:
        vm.FileVolume(image, offset=100)
    assert ei.value.errno == errno.EINVAL and "offset" in ei.value.detail
    with pytest.raises(vm.VmappleError) as ei:
        vm.FileVolume(tmp_path / "missing.img")
    assert ei.value.errno == errno.ENOENT and "missing.img" in ei.value.detail
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"x" * 1000)
    with pytest.raises(vm.VmappleError, match="multiple of 512"):
        vm.FileVolume(odd)


def test_file_volume_lock(image):
    first = vm.FileVolume(image)
    with pytest.raises(vm.VmappleError) as ei:
        vm.FileVolume(image)
    assert ei.value.errno == errno.EBUSY
    vm.FileVolume(image, lock=False).close()
    first.close()
    vm.FileVolume(image).close()


def test_callback_volume_with_functions():
    store = bytearray(4096)
    calls = []

    def read(off, n):
        calls.append(("read", off, n))
        return store[off:off + n]

    def write(off, data):
        calls.append(("write", off, data.nbytes))
        store[off:off + data.nbytes] = data

    closed = []
    vol = vm.CallbackVolume(4096, read=read, write=write, close=lambda: closed.append(1))
    assert vol.features == vm.BlockdevFeatures.CAN_WRITE
    vol.write(512, b"hello")
    assert vol.read(512, 5) == b"hello"
    assert calls == [("write", 512, 5), ("read", 512, 5)]
    assert not vol.closed_by_library
    vol.close()
    assert closed == [1] and vol.closed_by_library
    with pytest.raises(TypeError):
        vm.CallbackVolume(512)
    with pytest.raises(vm.VmappleError, match="multiple of 512"):
        vm.CallbackVolume(1000, read=read)


def test_read_only_callback_volume():
    vol = vm.CallbackVolume(1024, read=lambda o, n: bytes(n), write=lambda o, d: None,
                            read_only=True)
    assert vol.read_only
    with pytest.raises(vm.VmappleError) as ei:
        vol.write(0, b"x")
    assert ei.value.errno == errno.EROFS


def test_callback_exceptions_and_faults():
    def read(off, n):
        if off == 0:
            raise vm.Fault(errno.EIO)
        if off == 512:
            return b"short"
        raise RuntimeError("disk on fire")

    vol = vm.CallbackVolume(2048, read=read, name="flaky")
    with pytest.raises(vm.VmappleError) as ei:
        vol.read(0, 512)
    assert ei.value.errno == errno.EIO
    with pytest.raises(vm.CallbackError, match="5 bytes for a read of 512"):
        vol.read(512, 512)
    with pytest.raises(vm.CallbackError) as ei:
        vol.read(1024, 512)
    assert isinstance(ei.value.__cause__, RuntimeError)
    assert ei.value.failures[0].callback == "blockdev.read"
    assert ei.value.failures[0].source == "flaky"
    assert len(vol.callback_failures) == 2


def test_memory_volume_records_and_durability():
    vol = vm.MemoryVolume(bytearray(b"\x11" * 2048))
    assert vol.features == vm.BlockdevFeatures.CAN_WRITE | vm.BlockdevFeatures.CAN_FLUSH | \
        vm.BlockdevFeatures.CAN_DISCARD | vm.BlockdevFeatures.CAN_WRITE_ZEROES
    vol.write(0, b"\x22" * 512)
    assert vol.data[:512] == b"\x22" * 512
    assert vol.durable[:512] == b"\x11" * 512  # not flushed yet
    vol.flush()
    assert vol.durable[:512] == b"\x22" * 512
    assert vol.ops == [("write", 0, 512), ("flush", 0, 0)]
    vol.faults["flush"] = errno.ENOSPC
    with pytest.raises(vm.VmappleError) as ei:
        vol.flush()
    assert ei.value.errno == errno.ENOSPC
    ro = vm.MemoryVolume(1024, read_only=True)
    assert ro.read_only and ro.read(0, 4) == bytes(4)
    plain = vm.MemoryVolume(512, flushable=False, discardable=False)
    assert plain.features == vm.BlockdevFeatures.CAN_WRITE and plain.durable is None


def test_volumes_are_released_by_the_garbage_collector():
    closed = []
    vm.CallbackVolume(512, read=lambda o, n: bytes(n), close=lambda: closed.append(1))
    gc.collect()
    assert closed == [1]


def test_memory_backend_refuses_accesses_beyond_its_buffer():
    buf = bytearray(1024)
    vol = vm.CallbackVolume(4096, vm.MemoryBackend(buf))  # declared bigger than its buffer
    vol.write(512, b"\x11" * 512)
    for access in (lambda: vol.write(2048, b"\xaa" * 512), lambda: vol.write(512, bytes(1024)),
                   lambda: vol.read(3072, 512)):
        with pytest.raises(vm.VmappleError) as ei:
            access()
        assert ei.value.errno == errno.EIO
    assert buf == bytes(512) + b"\x11" * 512  # neither grown nor written
    assert vol.callback_failures == []  # refused like a disk past its end, not a bug
