# SPDX-License-Identifier: MIT
"""Block volumes for bdif and virtio-blk (blockdev.h): files opened by the
library, and volumes served by Python callbacks."""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import threading
import weakref
from typing import Callable

from . import _native
from ._handle import Closeable
from ._native import lib
from .errors import CallbackFailure, CallbackLog, Fault, VmappleError, check
from .host import raise_failures

SECTOR = 512


class BlockdevFlags(enum.IntFlag):
    READ_ONLY = 1 << 0
    NO_LOCK = 1 << 1
    DIRECT = 1 << 2
    THREAD_SAFE = 1 << 3


class BlockdevFeatures(enum.IntFlag):
    CAN_WRITE = 1 << 0
    CAN_FLUSH = 1 << 1
    CAN_DISCARD = 1 << 2
    CAN_WRITE_ZEROES = 1 << 3


def _release(handle: int, keepalive: object) -> None:
    # keepalive: the callbacks of a Python volume, which the library may
    # call until this (or a device's) last reference is gone.
    lib.vmapple_blockdev_release(handle)


class Blockdev(Closeable):
    """A reference-counted volume. Devices take their own reference, so the
    volume may be closed right after the devices using it are created; it
    ends when the last user is gone. Use FileVolume, CallbackVolume or
    MemoryVolume to make one."""

    def _init(self, handle: int, keepalive: object = None) -> None:
        self._handle: int | None = handle
        self._backend_core = keepalive
        self._finalizer = weakref.finalize(self, _release, handle, keepalive)

    def close(self) -> None:
        """Drop this reference (the volume lives on in devices using it)."""
        if self._handle is None:
            return
        self._handle = None
        self._finalizer()
        self._check(0, "")

    release = close

    def take_callback_failures(self) -> list[CallbackFailure]:
        core = self._backend_core
        return core.take_callback_failures() if core is not None else []

    def _check(self, ret: int, function: str) -> int:
        raise_failures(self.take_callback_failures())
        if ret < 0:
            detail = _native.text(lib.vmapple_blockdev_last_error(self._handle)) \
                if self._handle else _native.last_error()
            raise VmappleError(ret, detail or _native.last_error(), function)
        return ret

    @property
    def capacity(self) -> int:
        """Bytes of the volume."""
        n = ctypes.c_uint64()
        self._check(lib.vmapple_blockdev_get_capacity(self.handle, ctypes.byref(n)),
                    "vmapple_blockdev_get_capacity")
        return n.value

    @property
    def features(self) -> BlockdevFeatures:
        return BlockdevFeatures(self._check(lib.vmapple_blockdev_get_features(self.handle),
                                            "vmapple_blockdev_get_features"))

    @property
    def read_only(self) -> bool:
        return not self.features & BlockdevFeatures.CAN_WRITE

    @property
    def last_error(self) -> str:
        return _native.text(lib.vmapple_blockdev_last_error(self.handle))

    def read(self, offset: int, length: int) -> bytes:
        buf = ctypes.create_string_buffer(length)
        self._check(lib.vmapple_blockdev_read(self.handle, offset, buf, length),
                    "vmapple_blockdev_read")
        return buf.raw

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        self._check(lib.vmapple_blockdev_write(self.handle, offset, data, len(data)),
                    "vmapple_blockdev_write")

    def flush(self) -> None:
        self._check(lib.vmapple_blockdev_flush(self.handle), "vmapple_blockdev_flush")

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<{type(self).__name__} closed>"
        return f"<{type(self).__name__} {self.capacity} bytes>"


class FileVolume(Blockdev):
    """A file or block device opened by the library.

    Args:
        path: the image.
        read_only: open read-only; no write ever reaches it.
        lock: take an advisory lock (exclusive, or shared when read-only).
        offset: where the volume starts in the file (multiple of 512).
        length: bytes of the volume (multiple of 512); 0 = to the end.
        direct: bypass the host page cache (O_DIRECT); refused with EINVAL
            where the file system does not support it.
    """

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False, lock: bool = True,
                 offset: int = 0, length: int = 0, direct: bool = False):
        opts = _native.BlockdevFileOptions()
        opts.size = ctypes.sizeof(opts)
        opts.flags = (BlockdevFlags.READ_ONLY if read_only else 0) | \
            (0 if lock else BlockdevFlags.NO_LOCK) | (BlockdevFlags.DIRECT if direct else 0)
        opts.offset = offset
        opts.length = length
        out = ctypes.c_void_p()
        ret = lib.vmapple_blockdev_open_file(os.fsencode(path), ctypes.byref(opts),
                                             ctypes.byref(out))
        check(ret, function="vmapple_blockdev_open_file")
        self.path = os.fspath(path)
        self._init(out.value)


class VolumeBackend:
    """What a CallbackVolume calls. Subclass it and define read, and any of
    write, flush, discard, write_zeroes and close (left as None they are not
    offered: no write means a read-only volume). Offsets and lengths are
    bytes inside the volume. Raise Fault(errno) to fail an operation.

    The library may call these from its worker threads (asynchronous
    devices), one at a time unless the volume is thread_safe.
    """

    def read(self, offset: int, length: int) -> bytes | bytearray | memoryview:
        raise NotImplementedError

    write: Callable[[int, memoryview], None] | None = None
    flush: Callable[[], None] | None = None
    discard: Callable[[int, int], None] | None = None
    write_zeroes: Callable[[int, int, bool], None] | None = None
    close: Callable[[], None] | None = None


class _FunctionBackend(VolumeBackend):
    def __init__(self, read, write, flush, discard, write_zeroes, close):
        self.read = read  # type: ignore[method-assign]
        self.write = write
        self.flush = flush
        self.discard = discard
        self.write_zeroes = write_zeroes
        self.close = close


class _Core(CallbackLog):
    """The C callbacks of a Python volume and the failures they caught.
    Holds the backend, never the volume object (it lives in the finalizer)."""

    def __init__(self, backend: VolumeBackend, label: str):
        super().__init__("blockdev.", label)
        self.backend = backend
        self.closed_by_library = False

    def read(self, _opaque, offset, buf, length):
        def store(data) -> None:
            data = memoryview(data).cast("B")
            if data.nbytes != length:
                raise ValueError(f"read returned {data.nbytes} bytes for a read of {length}")
            _native.buffer_at(buf, length)[:] = data

        return self.call("read", self.backend.read, offset, length, convert=store)[0]

    def write(self, _opaque, offset, buf, length):
        return self.call("write",
                         lambda: self.backend.write(offset, _native.buffer_at(buf, length)))[0]

    def flush(self, _opaque):
        return self.call("flush", self.backend.flush)[0]

    def discard(self, _opaque, offset, length):
        return self.call("discard", self.backend.discard, offset, length)[0]

    def write_zeroes(self, _opaque, offset, length, may_unmap):
        return self.call("write_zeroes", self.backend.write_zeroes, offset, length,
                         bool(may_unmap))[0]

    def close(self, _opaque):
        self.closed_by_library = True
        try:
            if self.backend.close is not None:
                self.backend.close()
        except BaseException as e:  # noqa: B902 -- must not reach C
            self.fail("close", e)


class CallbackVolume(Blockdev):
    """A volume served by Python: a VolumeBackend, or plain functions.

    >>> vol = CallbackVolume(1 << 20, read=lambda off, n: bytes(n))

    Args:
        capacity: bytes (a multiple of 512).
        backend: a VolumeBackend; or give read (required), write, flush,
            discard, write_zeroes, close as functions with its signatures.
        read_only: refuse writes even when write is given.
        thread_safe: the callbacks may run on several threads at once.

    Exceptions other than Fault become -EIO for the device and are raised
    as CallbackError by the next call on a device using the volume (or on
    the volume).
    """

    def __init__(self, capacity: int, backend: VolumeBackend | None = None, *,
                 read: Callable[[int, int], bytes] | None = None,
                 write: Callable[[int, memoryview], None] | None = None,
                 flush: Callable[[], None] | None = None,
                 discard: Callable[[int, int], None] | None = None,
                 write_zeroes: Callable[[int, int, bool], None] | None = None,
                 close: Callable[[], None] | None = None,
                 read_only: bool = False, thread_safe: bool = False, name: str = ""):
        if backend is None:
            if read is None:
                raise TypeError("CallbackVolume: give a backend or a read function")
            backend = _FunctionBackend(read, write, flush, discard, write_zeroes, close)
        elif any(f is not None for f in (read, write, flush, discard, write_zeroes, close)):
            raise TypeError("CallbackVolume: give a backend or functions, not both")
        self.backend = backend
        core = _Core(backend, name or type(backend).__name__)
        ops = _native.BlockdevOps()
        ops.size = ctypes.sizeof(ops)
        fns = {"read": _native.BD_READ_FN(core.read), "close": _native.BD_CLOSE_FN(core.close)}
        if backend.write is not None:
            fns["write"] = _native.BD_WRITE_FN(core.write)
        if backend.flush is not None:
            fns["flush"] = _native.BD_FLUSH_FN(core.flush)
        if backend.discard is not None:
            fns["discard"] = _native.BD_DISCARD_FN(core.discard)
        if backend.write_zeroes is not None:
            fns["write_zeroes"] = _native.BD_WRITE_ZEROES_FN(core.write_zeroes)
        for k, fn in fns.items():
            setattr(ops, k, fn)
        core.fns = fns  # type: ignore[attr-defined]
        opts = _native.BlockdevOptions()
        opts.size = ctypes.sizeof(opts)
        opts.flags = (BlockdevFlags.READ_ONLY if read_only else 0) | \
            (BlockdevFlags.THREAD_SAFE if thread_safe else 0)
        opts.capacity = capacity
        out = ctypes.c_void_p()
        ret = lib.vmapple_blockdev_create(ctypes.byref(ops), None, ctypes.byref(opts),
                                          ctypes.byref(out))
        check(ret, function="vmapple_blockdev_create")
        self._core = core
        self._init(out.value, core)

    @property
    def closed_by_library(self) -> bool:
        """True once the library dropped its last reference (close ran)."""
        return self._core.closed_by_library

    @property
    def callback_failures(self) -> list[CallbackFailure]:
        """Every exception the callbacks raised (raised or not)."""
        return list(self._core.failures)


class MemoryBackend(VolumeBackend):
    """A volume in a bytearray that records what the library did with it.

    Attributes:
        data: the volume's bytes.
        durable: the bytes as of the last flush (what survives a power
            cut); None when the volume is not flushable.
        ops: (op, offset, length) for every call, in order.
        faults: op name -> errno: calls of that op fail with -errno.

    An access beyond the end of data (a volume declared bigger than its
    buffer) fails with -EIO, as a disk fails past its end; data never grows.
    """

    def __init__(self, data: bytearray, *, flushable: bool = True, writable: bool = True,
                 discardable: bool = True):
        self.data = data
        self.durable: bytearray | None = bytearray(data) if flushable else None
        self.ops: list[tuple[str, int, int]] = []
        self.faults: dict[str, int] = {}
        self.lock = threading.Lock()
        if writable:
            self.write = self._write  # type: ignore[method-assign]
            if flushable:
                self.flush = self._flush  # type: ignore[method-assign]
            if discardable:
                self.discard = self._discard  # type: ignore[method-assign]
                self.write_zeroes = self._write_zeroes  # type: ignore[method-assign]

    def _enter(self, op: str, offset: int, length: int) -> None:
        with self.lock:
            self.ops.append((op, offset, length))
        if op in self.faults:
            raise Fault(self.faults[op])
        if offset + length > len(self.data):
            raise Fault(errno.EIO, f"{op} of [{offset:#x}, +{length:#x}) is beyond the "
                        f"{len(self.data):#x}-byte buffer")

    def read(self, offset: int, length: int) -> memoryview:
        self._enter("read", offset, length)
        return memoryview(self.data)[offset:offset + length]

    def _write(self, offset: int, data: memoryview) -> None:
        self._enter("write", offset, data.nbytes)
        self.data[offset:offset + data.nbytes] = data

    def _flush(self) -> None:
        self._enter("flush", 0, 0)
        self.durable = bytearray(self.data)

    def _discard(self, offset: int, length: int) -> None:
        self._enter("discard", offset, length)
        self.data[offset:offset + length] = bytes(length)

    def _write_zeroes(self, offset: int, length: int, may_unmap: bool) -> None:
        self._enter("write_zeroes", offset, length)
        self.data[offset:offset + length] = bytes(length)


class MemoryVolume(CallbackVolume):
    """A CallbackVolume over a bytearray (see MemoryBackend).

    >>> vol = MemoryVolume(bytearray(b"x" * 4096))
    >>> vol.read(0, 4)
    b'xxxx'

    Args:
        data: the initial bytes (bytes, bytearray, or a size in bytes for a
            zero-filled volume); its length must be a multiple of 512.
    """

    def __init__(self, data: int | bytes | bytearray, *, read_only: bool = False,
                 flushable: bool = True, discardable: bool = True, thread_safe: bool = False,
                 name: str = "memory-volume"):
        buf = data if isinstance(data, bytearray) else bytearray(data)
        backend = MemoryBackend(buf, flushable=flushable, writable=not read_only,
                                discardable=discardable)
        super().__init__(len(buf), backend, read_only=read_only, thread_safe=thread_safe,
                         name=name)

    @property
    def data(self) -> bytearray:
        return self.backend.data  # type: ignore[attr-defined]

    @property
    def durable(self) -> bytearray | None:
        return self.backend.durable  # type: ignore[attr-defined]

    @property
    def ops(self) -> list[tuple[str, int, int]]:
        return self.backend.ops  # type: ignore[attr-defined]

    @property
    def faults(self) -> dict[str, int]:
        return self.backend.faults  # type: ignore[attr-defined]
