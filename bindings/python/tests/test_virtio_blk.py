# SPDX-License-Identifier: MIT
"""Apple's virtio-blk, driven by the guest-side driver of libvmapple.virtio."""

from __future__ import annotations

import errno
import os
import select
import time

import pytest

import libvmapple as vm
from libvmapple import pci, virtio
from libvmapple.virtio_blk import (
    S_IOERR, S_OK, S_UNSUPP, T_IN, VirtioBlk, VirtioBlkDriver)

SECTORS = 256  # 128 KiB volumes


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((i * 13 + seed) & 0xFF for i in range(n))


@pytest.fixture
def vol() -> vm.MemoryVolume:
    return vm.MemoryVolume(bytearray(pattern(SECTORS * 512)), thread_safe=True)


@pytest.fixture
def mem() -> vm.GuestMemory:
    return vm.GuestMemory(4 << 20)


def test_identity(mem, vol):
    d = VirtioBlk(vm.Host(mem), variant="aux", blockdev=vol)
    assert d.device_type == vm.DeviceType.VIRTIO_BLK
    assert (d.vendor_id, d.device_id, d.class_code) == (0x106B, 0x1A00, 0x018000)
    assert d.pci_config_read(pci.SUBSYSTEM_VENDOR_ID, 4) == 0x00421AF4
    assert d.pci_config_read(pci.REVISION_ID, 1) == 1
    assert d.pci_config_read(pci.INTERRUPT_PIN, 1) == 1
    (bar0,) = d.regions
    assert (bar0.name, bar0.size, bar0.pci_bar, bar0.base) == ("bar0", 16384, 0, None)
    (intx,) = d.irqs
    assert intx.spi is None and intx.flags & vm.IrqFlags.PCI_INTX
    drv = VirtioBlkDriver(d, mem)
    assert drv.capacity == SECTORS and drv.apple_type == 2
    assert drv.features & virtio.F_VERSION_1
    q = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol, class_code=0x010000,
                  subsystem_id=0x1100)
    assert q.class_code == 0x010000 and q.pci_config_read(pci.SUBSYSTEM_ID, 2) == 0x1100
    assert VirtioBlkDriver(q, mem).apple_type == 1


def test_requests(host, vol):
    mem = host.memory
    d = VirtioBlk(host, variant="root", blockdev=vol, serial="VOLUME-1")
    drv = VirtioBlkDriver(d, mem)
    status, data = drv.read(3, 2048)
    assert status == S_OK and data == pattern(SECTORS * 512)[1536:1536 + 2048]
    assert drv.write(10, b"\x77" * 1024) == S_OK
    assert vol.data[5120:6144] == b"\x77" * 1024
    assert vol.durable[5120:6144] != b"\x77" * 1024
    assert drv.flush() == S_OK
    assert vol.durable[5120:6144] == b"\x77" * 1024
    assert drv.get_id() == (S_OK, b"VOLUME-1" + bytes(12))
    assert drv.run(0x1234)[0] == S_UNSUPP
    assert drv.read(SECTORS - 1, 1024)[0] == S_IOERR  # crosses the end
    assert mem.live_maps == 0
    st = d.stats()
    assert (st.requests, st.read_bytes, st.write_bytes, st.flushes) == (6, 2048, 1024, 1)
    assert (st.io_errors, st.unsupported, st.in_flight) == (1, 1, 0)


def test_barrier_flushes_by_default(mem, vol):
    drv = VirtioBlkDriver(VirtioBlk(vm.Host(mem), variant="root", blockdev=vol), mem)
    drv.write(0, b"\x01" * 512)
    assert vol.durable[:512] != b"\x01" * 512
    assert drv.barrier() == S_OK
    assert vol.durable[:512] == b"\x01" * 512
    none = VirtioBlkDriver(VirtioBlk(vm.Host(mem), variant="root", blockdev=vol,
                                     barrier_mode="none"), mem)
    vol.ops.clear()
    assert none.barrier() == S_OK and vol.ops == []


def test_discard_and_write_zeroes(mem, vol):
    drv = VirtioBlkDriver(VirtioBlk(vm.Host(mem), variant="root", blockdev=vol), mem)
    assert drv.write_zeroes(4, 2) == S_OK
    assert vol.data[2048:3072] == bytes(1024)
    assert drv.discard(8, 1) == S_OK
    assert ("discard", 4096, 512) in vol.ops


def test_read_only(mem, vol):
    before = bytes(vol.data)
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol, read_only=True)
    drv = VirtioBlkDriver(d, mem)
    assert drv.device_features() & (1 << 5)  # VIRTIO_BLK_F_RO
    assert drv.write(0, b"x" * 512) == S_IOERR
    assert bytes(vol.data) == before


def test_intx_follows_the_isr(mem, vol):
    host = vm.Host(mem)
    d = VirtioBlk(host, variant="root", blockdev=vol)
    drv = VirtioBlkDriver(d, mem)
    drv.read(0, 512)
    assert d.irq_level("intx") == 1
    assert drv.isr() & 1
    assert d.irq_level() == 0
    assert [e.level for e in d.irq_events] == [1, 0]


def test_msix(mem, vol):
    host = vm.Host(mem)
    d = VirtioBlk(host, variant="root", blockdev=vol, msix_vectors=2)
    assert [r.name for r in d.regions] == ["bar0", "msix"]
    drv = VirtioBlkDriver(d, mem)
    cap = d.capabilities()[pci.CAP_ID_MSIX]
    # Vector 1 -> (0xfee01000, 0x31); queue 0 uses it.
    d.write("msix", 16, 0xFEE01000, 4)
    d.write("msix", 24, 0x31, 4)
    d.write("msix", 28, 0, 4)  # unmask
    d.pci_config_write(cap + 2, pci.MSIX_FLAGS_ENABLE, 2)
    drv.common_write(virtio.CC_QUEUE_SELECT, 0, 2)
    drv.common_write(virtio.CC_QUEUE_MSIX_VECTOR, 1, 2)
    assert drv.common_read(virtio.CC_QUEUE_MSIX_VECTOR, 2) == 1
    assert drv.read(0, 512)[0] == S_OK
    assert [(m.address, m.data) for m in host.msi_events] == [(0xFEE01000, 0x31)]
    assert d.irq_events == []  # no INTx with MSI-X on


def test_bars_follow_the_guest_on_a_bus(mem, vol):
    host = vm.Host(mem)
    d = VirtioBlk(host, variant="root", blockdev=vol)
    bus = vm.Bus()
    bus.track_bars(d)
    drv = VirtioBlkDriver(d, mem, bar_base=0x50000000)
    r = bus.lookup(0x50000000)
    assert r.device is d and r.region == 0
    common = 0x50000000 + drv.caps[virtio.CAP_COMMON].offset
    assert bus.read(common + virtio.CC_DEVICE_STATUS, 1) == drv.status
    d.place_bar(0, 0x50100000)
    assert bus.lookup(0x50000000) is None and bus.lookup(0x50100000).device is d
    d.command = 0  # memory decoding off: nothing routed
    assert bus.ranges == []
    assert host.bar_updates[-1].enabled is False


@pytest.mark.parametrize("mapped", [False, True], ids=["copy", "mapped"])
def test_asynchronous_io(mem, vol, mapped):
    host = vm.Host(mem, mem_map=mapped)
    d = VirtioBlk(host, variant="root", blockdev=vol, io_mode="async", io_threads=2)
    fd = d.poll_fd()
    drv = VirtioBlkDriver(d, mem)
    reqs = [drv.submit(T_IN, s, read_len=4096) for s in range(0, 64, 8)]
    select.select([fd], [], [], 10)
    for req in reqs:
        assert drv.wait(req) == S_OK
    whole = pattern(SECTORS * 512)
    for n, req in enumerate(reqs):
        assert mem.read(req.data, 4096) == whole[n * 4096:(n + 1) * 4096]
    assert host.async_notifications >= 1
    assert drv.write(1, b"\x42" * 512) == S_OK and vol.data[512:1024] == b"\x42" * 512
    assert drv.flush() == S_OK
    assert mem.live_maps == 0
    st = d.stats()
    assert st.read_bytes == len(reqs) * 4096 and st.in_flight == 0 and st.bounce_bytes == 0
    assert (st.requests, st.write_bytes, st.flushes, st.io_errors) == (len(reqs) + 2, 512, 1, 0)
    # Without mem_map the data of every request that has some (the eight
    # reads and the write, not the flush) went through a bounce buffer.
    assert st.bounced == (0 if mapped else len(reqs) + 1)
    # How many bounce buffers were in use at once depends on the workers.
    assert (st.bounce_peak == 0) if mapped else (4096 <= st.bounce_peak <= len(reqs) * 4096)


def test_worker_poll(mem, vol):
    """worker_poll_us reaches the device: a request 1 ms after the last finds the worker polling."""
    d = VirtioBlk(vm.Host(mem, mem_map=True), variant="root", blockdev=vol, io_mode="async",
                  io_threads=1, worker_poll_us=10000)
    drv = VirtioBlkDriver(d, mem)
    for n in range(10):
        time.sleep(0.001)
        assert drv.write(n, bytes([n]) * 512) == S_OK
        assert vol.data[n * 512:(n + 1) * 512] == bytes([n]) * 512
    assert d.stats().worker_polled >= 3  # of 10; a loaded machine may miss some


def cached_file(tmp_path):
    """A 64 KiB file (bytes 0..255 repeated) in the page cache; skips the
    test where RWF_NOWAIT reads of it are impossible."""
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * 256)
    probe = os.open(path, os.O_RDONLY)
    try:
        os.pread(probe, 65536, 0)
        nowait = os.preadv(probe, [bytearray(4096)], 0, os.RWF_NOWAIT) == 4096
    except OSError:
        nowait = False
    finally:
        os.close(probe)
    if not nowait:
        pytest.skip(f"RWF_NOWAIT reads unsupported in {tmp_path}")
    return path


def test_complete_in_notify(mem, tmp_path):
    """complete_in_notify reaches the device: a cached read of a file volume
    is in the used ring when the kick returns, before any process()."""
    path = cached_file(tmp_path)
    vol = vm.FileVolume(path, lock=False)
    d = VirtioBlk(vm.Host(mem, mem_map=True), variant="root", blockdev=vol, io_mode="async",
                  io_engine="threads", complete_in_notify=1)
    drv = VirtioBlkDriver(d, mem)
    assert drv.read(0, 4096) == (S_OK, bytes(range(256)) * 16)
    req = drv.submit(T_IN, 8, read_len=4096)
    assert [r.head for r in drv.collect()] == [req.head]
    assert req.status(mem) == S_OK
    assert mem.read(req.data, 4096) == bytes(range(256)) * 16
    assert d.process() == 0
    assert d.stats().inline_requests == 2  # both reads, done in the kick


def test_inline_requests_polling_ring(mem, tmp_path):
    """io_uring with worker_poll_us (a polling kernel thread): lone cached
    reads are done on the notifying thread and counted in inline_requests;
    a plain ring counts none."""
    path = cached_file(tmp_path)
    counts = []
    for poll_us in (1000, 0):
        vol = vm.FileVolume(path, lock=False)
        try:
            d = VirtioBlk(vm.Host(mem, mem_map=True), variant="root", blockdev=vol,
                          io_mode="async", io_engine="io_uring", worker_poll_us=poll_us)
        except vm.VmappleError as e:
            pytest.skip(f"io_uring unavailable: {e}")
        drv = VirtioBlkDriver(d, mem)
        for n in range(8):
            assert drv.read(n * 8, 4096) == (S_OK, bytes(range(256)) * 16)
        counts.append(d.stats().inline_requests)
        d.close()
    assert counts == [8, 0]


def test_raising_volume_callbacks(mem):
    def read(off, n):
        if off == 0:
            raise vm.Fault(errno.EIO)
        raise RuntimeError("volume bug")

    vol = vm.CallbackVolume(64 * 1024, read=read, name="broken")
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol)
    drv = VirtioBlkDriver(d, mem)
    assert drv.read(0, 512)[0] == S_IOERR  # a disk error, nothing raised
    with pytest.raises(vm.CallbackError) as ei:
        drv.read(1, 512)
    assert ei.value.failures[0].source == "broken"
    drv.collect()
    assert drv.queue.last_used == 2  # the guest got its IOERR completion


def test_raising_volume_callbacks_async(mem):
    def read(off, n):
        raise RuntimeError("worker-thread volume bug")

    vol = vm.CallbackVolume(64 * 1024, read=read, thread_safe=True)
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol, io_mode="async")
    drv = VirtioBlkDriver(d, mem)
    # The worker records the failure; the first call through the bindings
    # after that raises it: the notifying write (when the worker was fast)
    # or a later process(). Exactly once, and the guest gets IOERR.
    errors = []
    try:
        req = drv.submit(T_IN, 0, read_len=512)
    except vm.CallbackError as e:
        errors.append(e)
        (req,) = drv.inflight.values()
    while True:
        try:
            status = drv.wait(req)
            break
        except vm.CallbackError as e:
            errors.append(e)
    assert len(errors) == 1 and "worker-thread volume bug" in str(errors[0])
    assert status == S_IOERR


def test_raising_mem_read(mem, vol):
    class Broken(vm.Host):
        fail = False

        def mem_read(self, gpa, length):
            if self.fail:
                raise RuntimeError("guest memory bug")
            return super().mem_read(gpa, length)

    host = Broken(mem)
    d = VirtioBlk(host, variant="root", blockdev=vol)
    drv = VirtioBlkDriver(d, mem)
    host.fail = True
    with pytest.raises(vm.CallbackError, match="guest memory bug"):
        drv.submit(T_IN, 0, read_len=512)
    host.fail = False
    # The guest sees what unreadable rings give: DEVICE_NEEDS_RESET, and a
    # guest-error log line; a reset brings the device back.
    assert drv.collect() == []
    assert drv.status & virtio.DEVICE_NEEDS_RESET
    assert [(r.level, r.message) for r in host.logs] == [
        (vm.LogLevel.GUEST_ERROR, "virtio-blk: virtqueue: available ring is not guest memory at "
                                  "idx (0, 0); the queue is stopped until reset")]
    drv2 = VirtioBlkDriver(d, mem)
    assert drv2.read(0, 512)[0] == S_OK


def test_hostile_descriptor_loop_needs_reset(mem, vol):
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol, no_indirect=True)
    drv = VirtioBlkDriver(d, mem)
    q = drv.queue
    q.write_desc(0, vm.RAM_BASE, 16, virtio.DESC_F_NEXT, 1)
    q.write_desc(1, vm.RAM_BASE + 16, 16, virtio.DESC_F_NEXT, 0)  # back to 0
    q.publish(0)
    q.kick()
    assert drv.status & virtio.DEVICE_NEEDS_RESET
    assert [(r.level, r.message) for r in d.host.logs] == [
        (vm.LogLevel.GUEST_ERROR, "virtio-blk: virtqueue: descriptor chain loops or is longer "
                                  f"than the queue (head, size) (0, {q.size}); the queue is "
                                  "stopped until reset")]
    drv = VirtioBlkDriver(d, mem)  # a driver resets and starts over
    assert drv.read(0, 512)[0] == S_OK


def test_save_and_load(mem, vol):
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol)
    drv = VirtioBlkDriver(d, mem)
    drv.read(0, 512)
    blob = d.save()
    e = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol)
    e.load(blob)
    drv.dev = e  # the guest keeps its rings; the device continues
    assert drv.read(1, 512) == (S_OK, pattern(SECTORS * 512)[512:1024])
    with pytest.raises(vm.VmappleError) as ei:
        VirtioBlk(vm.Host(mem), variant="aux", blockdev=vol).load(blob)
    assert ei.value.errno == errno.EINVAL and "variant" in ei.value.detail


def test_option_errors(mem, vol):
    host = vm.Host(mem)
    with pytest.raises(vm.VmappleError, match="variant"):
        VirtioBlk(host, blockdev=vol)
    with pytest.raises(vm.VmappleError, match="blockdev"):
        VirtioBlk(host, variant="root")
    with pytest.raises(vm.VmappleError, match="queue_size"):
        VirtioBlk(host, variant="root", blockdev=vol, queue_size=100)
    with pytest.raises(vm.VmappleError, match="serial"):
        VirtioBlk(host, variant="root", blockdev=vol, serial="s" * 21)
    with pytest.raises(vm.VmappleError, match="worker_poll_us"):
        VirtioBlk(host, variant="root", blockdev=vol, io_mode="async", worker_poll_us=10001)
    with pytest.raises(vm.VmappleError, match="complete_in_notify"):
        VirtioBlk(host, variant="root", blockdev=vol, io_mode="async", complete_in_notify=2)
    with pytest.raises(ValueError, match="root, aux"):
        VirtioBlk(host, variant="system", blockdev=vol)
    with pytest.raises(TypeError, match="Blockdev"):
        VirtioBlk(host, variant="root", blockdev=bytearray(512))
    with pytest.raises(TypeError, match="unknown option queue_depth"):
        VirtioBlk(host, variant="root", blockdev=vol, queue_depth=4)


def test_used_ids_free_only_chains_the_driver_made(mem, vol):
    d = VirtioBlk(vm.Host(mem), variant="root", blockdev=vol)
    drv = VirtioBlkDriver(d, mem)
    q = drv.queue
    req = drv.submit(T_IN, 0, read_len=512)
    assert drv.wait(req) == S_OK
    assert sorted(q.free) == list(range(q.size))
    # A used ring naming that head again, and an id never handed out:
    # neither may put a descriptor on the free list a second time.
    idx = q.used_idx()
    for n, ident in enumerate((req.head, q.size - 1)):
        entry = q.used + 4 + 8 * ((idx + n) % q.size)
        mem.write_u32(entry, ident)
        mem.write_u32(entry + 4, 0)
    mem.write_u16(q.used + 2, (idx + 2) & 0xFFFF)
    assert q.take_used() == [(req.head, 0), (q.size - 1, 0)]
    assert sorted(q.free) == list(range(q.size))
