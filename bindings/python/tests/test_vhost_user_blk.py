# SPDX-License-Identifier: MIT
"""The vhost-user-blk back end from Python, driven by a small vhost-user
front end written here (memfd guest memory, eventfds, one split vring)."""

from __future__ import annotations

import errno
import mmap
import os
import select
import socket
import struct

import pytest

import libvmapple as vm
from libvmapple import vhost_user_blk as vub
from libvmapple import virtio_blk as vb

GET_FEATURES, SET_FEATURES, SET_OWNER = 1, 2, 3
SET_MEM_TABLE = 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM = 15, 16, 17
SET_VRING_ENABLE = 18
GET_CONFIG = 24
F_PROTOCOL_FEATURES = 1 << 30
F_VERSION_1 = 1 << 32
PF_MQ, PF_CONFIG = 1 << 0, 1 << 9
VERSION, REPLY = 0x1, 0x4

GPA = 0x4000_0000
RAM = 1 << 20
QSIZE = 16
DESC, AVAIL, USED, BUFS = 0x0, 0x1000, 0x2000, 0x10000
NEXT, WRITE = 1, 2


class Front:
    """Just enough of a vhost-user front end to run virtio-blk requests."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.memfd = os.memfd_create("guest-ram")
        os.ftruncate(self.memfd, RAM)
        self.ram = mmap.mmap(self.memfd, RAM)
        self.kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.used_seen = 0

    def close(self) -> None:
        self.sock.close()
        self.ram.close()
        for fd in (self.memfd, self.kick, self.call):
            os.close(fd)

    def send(self, request: int, payload: bytes = b"", fds: list[int] = ()) -> None:
        msg = struct.pack("<III", request, VERSION, len(payload)) + payload
        if fds:
            socket.send_fds(self.sock, [msg], list(fds))
        else:
            self.sock.sendall(msg)

    def recv(self, request: int) -> bytes:
        hdr = self.sock.recv(12, socket.MSG_WAITALL)
        assert len(hdr) == 12, "the back end closed the connection"
        req, flags, size = struct.unpack("<III", hdr)
        assert req == request and flags & REPLY
        return self.sock.recv(size, socket.MSG_WAITALL) if size else b""

    def get_u64(self, request: int) -> int:
        self.send(request)
        return struct.unpack("<Q", self.recv(request))[0]

    def set_u64(self, request: int, value: int) -> None:
        self.send(request, struct.pack("<Q", value))

    def vring_state(self, request: int, index: int, num: int) -> None:
        self.send(request, struct.pack("<II", index, num))

    def get_config(self, size: int = 96) -> bytes:
        self.send(GET_CONFIG, struct.pack("<III", 0, size, 0) + bytes(size))
        return self.recv(GET_CONFIG)[12:]

    def setup(self) -> tuple[int, int]:
        features = self.get_u64(GET_FEATURES)
        protocol = self.get_u64(GET_PROTOCOL_FEATURES)
        self.set_u64(SET_PROTOCOL_FEATURES, protocol & (PF_MQ | PF_CONFIG))
        self.send(SET_OWNER)
        self.set_u64(SET_FEATURES, features | F_PROTOCOL_FEATURES)
        self.send(SET_MEM_TABLE, struct.pack("<II4Q", 1, 0, GPA, RAM, GPA, 0), [self.memfd])
        self.vring_state(SET_VRING_NUM, 0, QSIZE)
        self.vring_state(SET_VRING_BASE, 0, 0)
        self.send(SET_VRING_ADDR, struct.pack("<II4Q", 0, 0, GPA + DESC, GPA + USED,
                                              GPA + AVAIL, 0))
        self.send(SET_VRING_CALL, struct.pack("<Q", 0), [self.call])
        self.send(SET_VRING_KICK, struct.pack("<Q", 0), [self.kick])
        self.vring_state(SET_VRING_ENABLE, 0, 1)
        return features, protocol

    def request(self, type_: int, sector: int, data: bytes = b"", read_len: int = 0,
                timeout: float = 10.0) -> tuple[int, bytes]:
        """One request through descriptors 0..2; returns (status, data read)."""
        header, buf, status = BUFS, BUFS + 0x100, BUFS + 0x80
        self.ram[header:header + 16] = struct.pack("<IIQ", type_, 0, sector)
        self.ram[status] = 0xFF
        length = len(data) or read_len
        if data:
            self.ram[buf:buf + length] = data
        descs = [(header, 16, NEXT)]
        if length:
            descs.append((buf, length, NEXT | (WRITE if read_len else 0)))
        descs.append((status, 1, WRITE))
        for i, (addr, ln, flags) in enumerate(descs):
            nxt = i + 1 if flags & NEXT else 0
            self.ram[DESC + 16 * i:DESC + 16 * i + 16] = struct.pack("<QIHH", GPA + addr, ln,
                                                                     flags, nxt)
        slot = AVAIL + 4 + 2 * (self.avail_idx % QSIZE)
        self.ram[slot:slot + 2] = struct.pack("<H", 0)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.ram[AVAIL + 2:AVAIL + 4] = struct.pack("<H", self.avail_idx)
        # used_event (VIRTIO_RING_F_EVENT_IDX): call when this request is used.
        self.ram[AVAIL + 4 + 2 * QSIZE:AVAIL + 6 + 2 * QSIZE] = struct.pack("<H", self.used_seen)
        os.eventfd_write(self.kick, 1)
        while struct.unpack_from("<H", self.ram, USED + 2)[0] == self.used_seen:
            assert select.select([self.call], [], [], timeout)[0], "no completion"
            os.eventfd_read(self.call)
        self.used_seen = (self.used_seen + 1) & 0xFFFF
        got = self.ram[buf:buf + read_len] if read_len else b""
        return self.ram[status], bytes(got)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * 256)  # 64 KiB
    return path


def connect(be: vub.VhostUserBlk):
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Front(mine), be.serve_in_thread(theirs)


def test_config_io_and_stats(image):
    host = vm.Host()
    with vub.VhostUserBlk(host, variant="aux", blockdev=vm.FileVolume(image),
                          serial="py-vhost", num_queues=2) as be:
        front, thread = connect(be)
        features, protocol = front.setup()
        assert features & F_VERSION_1 and features & F_PROTOCOL_FEATURES
        assert protocol & PF_CONFIG and protocol & PF_MQ
        assert front.get_u64(GET_QUEUE_NUM) == 2
        config = front.get_config()
        assert len(config) == 96
        assert struct.unpack_from("<Q", config, 0)[0] == 128  # sectors
        assert struct.unpack_from("<I", config, 60)[0] == vb.Variant.AUX

        assert front.request(vb.T_IN, 2, read_len=512) == (vb.S_OK, (bytes(range(256)) * 2))
        assert front.request(vb.T_OUT, 4, b"\xab" * 1024)[0] == vb.S_OK
        assert front.request(vb.T_FLUSH, 0)[0] == vb.S_OK
        status, ident = front.request(vb.T_GET_ID, 0, read_len=20)
        assert status == vb.S_OK and ident.rstrip(b"\0") == b"py-vhost"
        front.close()
        assert thread.join(10) == 0
        with open(image, "rb") as f:
            f.seek(4 * 512)
            assert f.read(1024) == b"\xab" * 1024
        s = be.stats()
        assert s.requests == 4 and s.read_bytes == 512 and s.write_bytes == 1024
        assert s.flushes == 1 and s.in_flight == 0

        # The next front end is served with the same counters.
        front, thread = connect(be)
        front.setup()
        assert front.request(vb.T_IN, 4, read_len=512) == (vb.S_OK, b"\xab" * 512)
        front.close()
        assert thread.join(10) == 0
        assert be.stats().requests == 5


def test_read_only(image):
    before = image.read_bytes()
    # A writable volume: the device's read_only option alone must refuse writes.
    with vub.VhostUserBlk(variant="root", blockdev=vm.FileVolume(image),
                          read_only=True) as be:
        front, thread = connect(be)
        features, _ = front.setup()
        assert features & vb.F_RO
        assert front.request(vb.T_OUT, 0, b"\0" * 512)[0] == vb.S_IOERR
        assert front.request(vb.T_IN, 0, read_len=512) == (vb.S_OK, bytes(range(256)) * 2)
        front.close()
        assert thread.join(10) == 0  # a refused write ends nothing
        assert be.stats().io_errors == 1
    assert image.read_bytes() == before


def test_malformed_message_closes_the_connection(image):
    host = vm.Host()
    with vub.VhostUserBlk(host, variant="root", blockdev=vm.FileVolume(image)) as be:
        front, thread = connect(be)
        front.send(SET_VRING_NUM, struct.pack("<II", 99, 16))  # no such ring
        with pytest.raises(vm.VmappleError) as e:
            thread.join(10)
        assert e.value.errno == errno.EPROTO
        assert "SET_VRING_NUM" in str(e.value) and "99" in str(e.value)
        assert "SET_VRING_NUM" in be.last_error
        assert host.log_contains("closing the connection", vm.LogLevel.ERROR)
        assert front.sock.recv(1) == b""  # closed by the back end
        front.close()


def test_stop_and_close_while_serving(image):
    be = vub.VhostUserBlk(variant="root", blockdev=vm.FileVolume(image))
    front, thread = connect(be)
    front.setup()
    be.stop()
    with pytest.raises(vm.VmappleError) as e:
        thread.join(10)
    assert e.value.errno == errno.ECANCELED
    front.close()
    # close() with a serve() in progress stops it and waits.
    be2 = vub.VhostUserBlk(variant="root", blockdev=vm.FileVolume(image, lock=False))
    front2, thread2 = connect(be2)
    front2.setup()
    be2.close()  # returns once serve() has returned in the library
    with pytest.raises(vm.VmappleError) as e:
        thread2.join(10)
    assert e.value.errno == errno.ECANCELED
    front2.close()
    be.close()
    be.close()  # idempotent
    with pytest.raises(ValueError):
        be.stats()


def test_options_refused(image):
    vol = vm.FileVolume(image)
    with pytest.raises(vm.VmappleError) as e:
        vub.VhostUserBlk(blockdev=vol)
    assert e.value.errno == errno.EINVAL and "variant" in str(e.value)
    with pytest.raises(vm.VmappleError) as e:
        vub.VhostUserBlk(variant="root", blockdev=vol, num_queues=vub.MAX_QUEUES + 1)
    assert "num_queues" in str(e.value) and "16" in str(e.value)
    with pytest.raises(ValueError):
        vub.VhostUserBlk(variant="middle", blockdev=vol)
    with pytest.raises(TypeError):
        vub.VhostUserBlk(variant="root", blockdev=vol, queues=2)
    with pytest.raises(TypeError):
        vub.VhostUserBlk(variant="root", blockdev=str(image))


def test_raising_volume_callbacks_are_raised_by_serve():
    def read(offset, length):
        raise RuntimeError("disk on fire")

    vol = vm.CallbackVolume(1 << 16, read=read, name="flaky")
    with vub.VhostUserBlk(variant="aux", blockdev=vol) as be:
        vol.close()  # the back end keeps its own reference
        front, thread = connect(be)
        front.setup()
        assert front.request(vb.T_IN, 0, read_len=512)[0] == vb.S_IOERR
        front.close()
        with pytest.raises(vm.CallbackError, match="disk on fire") as e:
            thread.join(10)
        assert (e.value.failures[0].callback, e.value.failures[0].source) == \
            ("blockdev.read", "flaky")
        assert be.stats().io_errors == 1
