# SPDX-License-Identifier: MIT
"""Exceptions of the bindings."""

from __future__ import annotations

import errno as _errno
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from . import _native


class VmappleError(OSError):
    """A libvmapple function failed.

    Attributes:
        errno: the positive errno value (the C function returned -errno).
        strerror: the library's name for it (vmapple_strerror()).
        detail: the library's detailed message (the object's last error or
            vmapple_last_error()), e.g. which option and limit.
        function: the C function that failed.
    """

    def __init__(self, err: int, detail: str = "", function: str = ""):
        err = abs(err)
        super().__init__(err, _native.strerror(-err))
        self.detail = detail
        self.function = function

    @property
    def errno_name(self) -> str:
        """The symbolic errno name, e.g. "EINVAL"."""
        return _errno.errorcode.get(self.errno, str(self.errno))

    def __str__(self) -> str:
        where = f"{self.function}: " if self.function else ""
        text = f"{where}[{self.errno_name}] {self.strerror}"
        return f"{text}: {self.detail}" if self.detail else text

    def __reduce__(self):
        return (type(self), (self.errno, self.detail, self.function))


class Fault(Exception):
    """Raise this from a host callback (guest memory, block volume, bus
    handler) to make the callback fail with -errno on purpose, as a real host
    would (a DMA address that is not RAM, a failing disk). It is the
    callback's answer, not a bug: it is not reported as a CallbackError.
    """

    def __init__(self, err: int = _errno.EFAULT, message: str = ""):
        self.errno = abs(err)
        super().__init__(message or _native.strerror(-self.errno))


@dataclass
class CallbackFailure:
    """One exception a Python callback raised while the library called it."""

    callback: str  #: e.g. "mem_read", "blockdev.read", "bus handler uart.read"
    source: str  #: the device, volume or bus it was called for
    exception: BaseException
    traceback: str = field(repr=False, default="")

    @classmethod
    def capture(cls, callback: str, source: str, exc: BaseException) -> "CallbackFailure":
        return cls(callback, source, exc, "".join(traceback.format_exception(exc)))


class FailureQueue:
    """Callback failures recorded from any thread (the library may call
    from its own): every one in all, and those not handed out yet for
    take()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[CallbackFailure] = []
        self.all: list[CallbackFailure] = []

    def add(self, failure: CallbackFailure) -> None:
        with self._lock:
            self._pending.append(failure)
            self.all.append(failure)

    def take(self) -> list[CallbackFailure]:
        """The failures not handed out yet, which are then forgotten here
        (they stay in all)."""
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def waiting(self) -> bool:
        """Are there failures take() would hand out?"""
        return bool(self._pending)


class CallbackLog:
    """What the Python callbacks of one library object (a volume, a DMA
    backend, a host mechanism, a bus) raised: every failure in failures,
    and those not raised yet for take_callback_failures(). The library may
    call from its own threads, so the log is locked. It never holds the
    object whose callbacks it records (it lives in that object's finalizer).
    """

    def __init__(self, prefix: str, source: str):
        self.prefix = prefix  #: put before the op in CallbackFailure.callback
        self.source = source  #: CallbackFailure.source
        self._queue = FailureQueue()
        self.failures = self._queue.all

    def take_callback_failures(self) -> list[CallbackFailure]:
        """The failures not raised yet, which are then forgotten (they stay
        in failures)."""
        return self._queue.take()

    def fail(self, op: str, exc: BaseException) -> int:
        """Record @exc, raised by callback @op; returns -EIO, the library's
        answer for it."""
        self._queue.add(CallbackFailure.capture(self.prefix + op, self.source, exc))
        return -_errno.EIO

    def call(self, op: str, fn: Callable[..., Any], *args: Any,
             convert: Callable[[Any], Any] | None = None) -> tuple[int, Any]:
        """Run fn(*args) and then @convert on its answer (where it is checked
        and stored for the library), letting no exception out: returns
        (0, the converted answer), (-errno, None) for a Fault, or (-EIO,
        None) for any other exception, which is recorded as callback @op.
        """
        try:
            got = fn(*args)
            return 0, got if convert is None else convert(got)
        except Fault as f:
            return -f.errno, None
        except BaseException as e:  # noqa: B902 -- must not reach C
            return self.fail(op, e), None


class CallbackError(Exception):
    """Python callbacks raised exceptions while the library was calling them.

    The library never sees a Python exception: the callback returned an
    error to it instead (-EIO for guest memory and volumes, NULL for
    mem_map, nothing for notifications), so the device took its defined
    error path, and the bindings raise this on the next call made through
    them (normally the call during which the callback ran). The first
    original exception is also the __cause__.

    Attributes:
        failures: list of CallbackFailure, in the order they happened.
    """

    def __init__(self, failures: list[CallbackFailure]):
        self.failures = list(failures)
        first = self.failures[0]
        more = f" (and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        super().__init__(
            f"{first.callback} callback for {first.source} raised "
            f"{type(first.exception).__name__}: {first.exception}{more}"
        )

    @property
    def exceptions(self) -> list[BaseException]:
        return [f.exception for f in self.failures]


def check(ret: int, detail: str | None = None, function: str = "") -> int:
    """Raise VmappleError for a negative return value; return it otherwise."""
    if ret < 0:
        raise VmappleError(ret, _native.last_error() if detail is None else detail, function)
    return ret
