# SPDX-License-Identifier: MIT
"""The plumbing every object over a library handle shares."""

from __future__ import annotations


class Closeable:
    """`handle` (ValueError once closed), `closed`, and `with` support over
    `self._handle` and the subclass's close()."""

    _handle: int | None

    @property
    def handle(self) -> int:
        """The library pointer (for other ctypes code)."""
        if self._handle is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
