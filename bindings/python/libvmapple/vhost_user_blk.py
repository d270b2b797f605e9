# SPDX-License-Identifier: MIT
"""Apple's virtio-blk variant as a vhost-user back end (vhost-user-blk.h).

A harness starts the back end on one end of a socket pair (or an accepted
Unix socket) and points a VMM, or its own front end, at the other:

    import socket, threading
    import libvmapple as vm

    vol = vm.FileVolume("root.img")
    be = vm.VhostUserBlk(variant="root", blockdev=vol, num_queues=2)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t = be.serve_in_thread(theirs)      # the back end owns `theirs` now
    ...                                 # speak vhost-user on `mine`
    mine.close(); t.join()              # the front end left: serve() returned
    print(be.stats())
"""

from __future__ import annotations

import ctypes
import errno
import socket
import threading
import weakref

from . import _native
from ._handle import Closeable
from .errors import VmappleError, check
from .host import Host, raise_failures, take_failures
from .virtio_blk import BarrierMode, IoEngine, Variant, VirtioBlkStats, VirtioBlkStatsC, blk_options

MAX_QUEUES = 16


class VhostUserBlkOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("variant", ctypes.c_uint32),
        ("blockdev", ctypes.c_void_p),
        ("flags", ctypes.c_uint32),
        ("barrier_mode", ctypes.c_uint32),
        ("num_queues", ctypes.c_uint32),
        ("max_queue_size", ctypes.c_uint32),
        ("io_engine", ctypes.c_uint32),
        ("io_threads", ctypes.c_uint32),
        ("seg_max", ctypes.c_uint32),
        ("size_max", ctypes.c_uint32),
        ("blk_size", ctypes.c_uint32),
        ("serial", ctypes.c_char_p),
        ("max_bounce_bytes", ctypes.c_uint64),
        ("worker_poll_us", ctypes.c_uint32),
    ]


_P = ctypes.c_void_p
_create = _native.optional(
    "vmapple_vhost_user_blk_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), _P, ctypes.POINTER(VhostUserBlkOptions),
     ctypes.POINTER(_P)])
_destroy = _native.optional("vmapple_vhost_user_blk_destroy", None, [_P])
_serve = _native.optional("vmapple_vhost_user_blk_serve", ctypes.c_int, [_P, ctypes.c_int])
_stop = _native.optional("vmapple_vhost_user_blk_stop", ctypes.c_int, [_P])
_get_stats = _native.optional("vmapple_vhost_user_blk_get_stats", ctypes.c_int,
                              [_P, ctypes.POINTER(VirtioBlkStatsC)])
_last_error = _native.optional("vmapple_vhost_user_blk_last_error", ctypes.c_char_p, [_P])


def _release(handle: int, host: Host, slot_id: int, keepalive: object) -> None:
    # keepalive: the volume and the host's ctypes callbacks, which ring
    # threads may call until destroy has returned.
    _destroy(handle)
    host._detach(slot_id)


class VhostUserBlk(Closeable):
    """A vhost-user-blk back end serving one front end at a time.

    Options (keywords named after vmapple_vhost_user_blk_options): variant
    ("root" or "aux", required), blockdev (a Blockdev, required; the back
    end keeps its own reference), read_only, no_discard, no_write_zeroes,
    no_indirect, no_event_idx (bools) or flags, barrier_mode ("flush",
    "drain", "none"), num_queues, max_queue_size, io_engine ("auto",
    "threads", "io_uring"), io_threads, seg_max, size_max, blk_size, serial
    (str), max_bounce_bytes, worker_poll_us. Zero means the default for
    every numeric option. Log lines (also from ring threads) go to @host's logs.
    """

    def __init__(self, host: Host | None = None, *, read_only: bool = False,
                 no_discard: bool = False, no_write_zeroes: bool = False,
                 no_indirect: bool = False, no_event_idx: bool = False, **options):
        self._handle: int | None = None
        self.host = host if host is not None else Host()
        if _create is None:
            raise VmappleError(-errno.ENOSYS, f"this libvmapple ({_native.LIBRARY_PATH}) has no "
                               "vmapple_vhost_user_blk_create", "vmapple_vhost_user_blk_create")
        volumes: list = []
        opts = blk_options(
            VhostUserBlkOptions, "VhostUserBlk", options,
            dict(read_only=read_only, no_discard=no_discard, no_write_zeroes=no_write_zeroes,
                 no_indirect=no_indirect, no_event_idx=no_event_idx),
            dict(variant=Variant, barrier_mode=BarrierMode, io_engine=IoEngine), volumes,
            always=True)
        slot_id = self.host._attach("vhost-user-blk")
        out = ctypes.c_void_p()
        ret = _create(ctypes.byref(self.host._ops), slot_id, ctypes.byref(opts),
                      ctypes.byref(out))
        if ret < 0:
            detail = _native.last_error()
            self.host._detach(slot_id)
            self.host.raise_callback_errors_now()
            raise VmappleError(ret, detail, "vmapple_vhost_user_blk_create")
        self._handle = out.value
        self._slot_id = slot_id
        self._volumes = tuple(volumes)  # their callbacks' failures are raised here too
        self._idle = threading.Condition()
        self._serving = 0
        self._finalizer = weakref.finalize(self, _release, out.value, self.host, slot_id,
                                           (self._volumes, self.host._trampolines))

    @property
    def last_error(self) -> str:
        """Why the last connection was closed (or "")."""
        return _native.text(_last_error(self.handle))

    def serve(self, sock: socket.socket | int) -> int:
        """Serve one front end on a connected Unix stream socket until it
        leaves; blocks (without holding the GIL). The back end takes the
        descriptor over: a socket object is detached. Returns 0 when the
        front end closed the connection; raises VmappleError with EPROTO
        (a malformed message: the detail names it), ECANCELED (after
        stop()) or EBUSY (another serve() is running)."""
        with self._idle:
            handle = self.handle
            self._serving += 1
        fd = sock.detach() if isinstance(sock, socket.socket) else int(sock)
        try:
            ret = _serve(handle, fd)
        finally:
            with self._idle:
                self._serving -= 1
                self._idle.notify_all()
        self._raise_callbacks()
        if ret < 0:
            raise VmappleError(ret, self.last_error or _native.last_error(),
                               "vmapple_vhost_user_blk_serve")
        return ret

    def serve_in_thread(self, sock: socket.socket | int) -> "ServeThread":
        """serve() on a new thread; join() it to get the result (or the
        exception serve() raised)."""
        t = ServeThread(self, sock)
        t.start()
        return t

    def stop(self) -> None:
        """Make the running and every later serve() end with ECANCELED."""
        check(_stop(self.handle), function="vmapple_vhost_user_blk_stop")

    def stats(self) -> VirtioBlkStats:
        """The counters of every queue, summed; they survive reconnections."""
        c = VirtioBlkStatsC()
        c.size = ctypes.sizeof(c)
        check(_get_stats(self.handle, ctypes.byref(c)), function="vmapple_vhost_user_blk_get_stats")
        return VirtioBlkStats(*(getattr(c, f) for f, _ in VirtioBlkStatsC._fields_[1:]))

    def close(self) -> None:
        """Stop serving (a serve() running on another thread ends with
        ECANCELED first) and release everything. Idempotent."""
        with self._idle:
            if self._handle is None:
                return
            if self._serving:
                _stop(self._handle)
                self._idle.wait_for(lambda: self._serving == 0)
            self._handle = None
        self._finalizer()
        self._raise_callbacks()

    def _raise_callbacks(self) -> None:
        """Raise what the host's and the volumes' callbacks raised (the
        volumes' run on the ring threads during serve())."""
        raise_failures(take_failures(self.host, self._volumes))


class ServeThread(threading.Thread):
    """A thread running VhostUserBlk.serve(); join() returns its result."""

    def __init__(self, backend: VhostUserBlk, sock: socket.socket | int):
        super().__init__(name="vhost-user-blk", daemon=True)
        self._backend = backend
        self._fd = sock.detach() if isinstance(sock, socket.socket) else int(sock)
        self.result: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._backend.serve(self._fd)
        except BaseException as e:  # noqa: B902
            self.error = e

    def join(self, timeout: float | None = None) -> int | None:  # type: ignore[override]
        super().join(timeout)
        if self.is_alive():
            raise TimeoutError("serve() is still running")
        if self.error is not None:
            raise self.error
        return self.result
