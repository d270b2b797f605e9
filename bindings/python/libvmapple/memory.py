# SPDX-License-Identifier: MIT
"""Guest memory for harnesses: guest-physical ranges backed by Python buffers."""

from __future__ import annotations

import ctypes
import errno
import mmap
import struct
from dataclasses import dataclass
from typing import Iterator

from .errors import Fault
from .platform import RAM_BASE


@dataclass(frozen=True)
class MemoryRange:
    """One guest-physical range of a GuestMemory."""

    base: int
    size: int
    name: str
    buffer: bytearray | mmap.mmap | memoryview
    writable: bool
    address: int  #: host address of the first byte (what mem_map hands out)

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, gpa: int, length: int) -> bool:
        return self.base <= gpa and length <= self.size and gpa - self.base <= self.size - length


class GuestMemory:
    """Guest-physical memory made of ranges backed by bytearrays (or mmaps).

    The host callbacks of a Host read and write it, and when mapping is
    allowed hand the device pointers straight into the buffers (zero-copy),
    so whatever the device writes is visible here at once. Accesses that are
    not wholly inside one range fail with -EFAULT, as on a real host.

    >>> mem = GuestMemory(0x10000)          # 64 KiB of RAM at RAM_BASE
    >>> mem.write(RAM_BASE + 0x100, b"hello")
    >>> mem.read(RAM_BASE + 0x100, 5)
    b'hello'

    Args:
        size: bytes of a first RAM range (0: none; add ranges later).
        base: its guest-physical base (default: the vmapple RAM base).
        map_chunk: when > 0, mem_map hands out at most this many bytes per
            call, so devices' loops over partial mappings are exercised.
    """

    def __init__(self, size: int = 0, base: int = RAM_BASE, *, map_chunk: int = 0,
                 use_mmap: bool = False):
        self._ranges: list[MemoryRange] = []
        self._arrays: list[ctypes.Array] = []
        self.map_chunk = map_chunk
        #: mem_map results not yet released by mem_unmap.
        self.live_maps = 0
        #: counters of the host callbacks that reached this memory
        self.stats = {"reads": 0, "writes": 0, "maps": 0, "unmaps": 0,
                      "bytes_read": 0, "bytes_written": 0, "faults": 0}
        if size:
            self.add_range(base, size, use_mmap=use_mmap)

    # -- layout -------------------------------------------------------------

    def add_range(self, base: int, size: int | None = None, *, buffer=None, name: str = "ram",
                  writable: bool = True, use_mmap: bool = False) -> MemoryRange:
        """Add a range at guest-physical @base: a new zero-filled buffer of
        @size bytes, or the given writable @buffer (bytearray, mmap, ...),
        which then stays shared with the caller. Ranges may not overlap.
        @writable False makes device writes to it fail with -EFAULT (ROM)."""
        if buffer is None:
            if not size or size < 0:
                raise ValueError("add_range: size must be > 0")
            buffer = mmap.mmap(-1, size) if use_mmap else bytearray(size)
        view = memoryview(buffer)
        if view.readonly:
            raise ValueError("add_range: the buffer must be writable (bytearray, mmap)")
        size = view.nbytes if size is None else size
        if size <= 0 or size > view.nbytes:
            raise ValueError(f"add_range: size {size} does not fit the {view.nbytes}-byte buffer")
        if base < 0 or base + size > 2**64:
            raise ValueError("add_range: range leaves the 64-bit address space")
        for r in self._ranges:
            if base < r.end and r.base < base + size:
                raise ValueError(f"add_range: [{base:#x}, {base + size:#x}) overlaps {r.name} "
                                 f"[{r.base:#x}, {r.end:#x})")
        # Exporting the buffer to ctypes pins it: a bytearray cannot be
        # resized while devices may hold pointers into it.
        arr = (ctypes.c_char * view.nbytes).from_buffer(buffer)
        rng = MemoryRange(base, size, name, buffer, writable, ctypes.addressof(arr))
        self._arrays.append(arr)
        self._ranges.append(rng)
        self._ranges.sort(key=lambda r: r.base)
        return rng

    @property
    def ranges(self) -> tuple[MemoryRange, ...]:
        return tuple(self._ranges)

    def __iter__(self) -> Iterator[MemoryRange]:
        return iter(self._ranges)

    def find(self, gpa: int, length: int = 1) -> MemoryRange | None:
        """The range holding all of [gpa, gpa + length), or None."""
        for r in self._ranges:
            if r.contains(gpa, length):
                return r
        return None

    def _range(self, gpa: int, length: int, write: bool = False, dma: bool = False) -> MemoryRange:
        r = self.find(gpa, length)
        if r is None or (write and not r.writable):
            if dma:
                self.stats["faults"] += 1
            raise Fault(errno.EFAULT, f"[{gpa:#x}, +{length:#x}) is not guest "
                        f"{'writable ' if write else ''}RAM")
        return r

    # -- the harness's view -------------------------------------------------

    def view(self, gpa: int, length: int) -> memoryview:
        """A writable memoryview of guest memory (no copy). Raises Fault."""
        r = self._range(gpa, length)
        off = gpa - r.base
        return memoryview(r.buffer)[off:off + length]

    def read(self, gpa: int, length: int) -> bytes:
        """A copy of guest memory. Raises Fault outside RAM."""
        return bytes(self.view(gpa, length))

    def write(self, gpa: int, data) -> None:
        """Store bytes into guest memory (also into ROM ranges: the harness
        may). Raises Fault outside RAM."""
        data = memoryview(data).cast("B")
        self.view(gpa, data.nbytes)[:] = data

    def fill(self, gpa: int, length: int, byte: int = 0) -> None:
        self.view(gpa, length)[:] = bytes([byte]) * length

    def read_u8(self, gpa: int) -> int:
        return self.view(gpa, 1)[0]

    def read_u16(self, gpa: int) -> int:
        return struct.unpack("<H", self.view(gpa, 2))[0]

    def read_u32(self, gpa: int) -> int:
        return struct.unpack("<I", self.view(gpa, 4))[0]

    def read_u64(self, gpa: int) -> int:
        return struct.unpack("<Q", self.view(gpa, 8))[0]

    def write_u8(self, gpa: int, value: int) -> None:
        self.write(gpa, struct.pack("<B", value))

    def write_u16(self, gpa: int, value: int) -> None:
        self.write(gpa, struct.pack("<H", value))

    def write_u32(self, gpa: int, value: int) -> None:
        self.write(gpa, struct.pack("<I", value))

    def write_u64(self, gpa: int, value: int) -> None:
        self.write(gpa, struct.pack("<Q", value))

    # -- what the host callbacks do ----------------------------------------

    def dma_read(self, gpa: int, length: int) -> memoryview:
        """A device reads guest memory (Host.mem_read). Raises Fault."""
        r = self._range(gpa, length, dma=True)
        off = gpa - r.base
        v = memoryview(r.buffer)[off:off + length]
        self.stats["reads"] += 1
        self.stats["bytes_read"] += length
        return v

    def dma_write(self, gpa: int, data: memoryview) -> None:
        """A device writes guest memory (Host.mem_write). Raises Fault."""
        r = self._range(gpa, data.nbytes, write=True, dma=True)
        off = gpa - r.base
        memoryview(r.buffer)[off:off + data.nbytes] = data
        self.stats["writes"] += 1
        self.stats["bytes_written"] += data.nbytes

    def dma_map(self, gpa: int, length: int, writable: bool) -> tuple[int, int] | None:
        """A device maps guest memory (Host.mem_map): (host address, bytes)
        or None when @gpa is not (writable) RAM. The mapping may be shorter
        than asked: up to the end of the range, or map_chunk."""
        for r in self._ranges:
            if r.base <= gpa < r.end:
                if writable and not r.writable:
                    return None
                n = min(length, r.end - gpa)
                if self.map_chunk:
                    n = min(n, self.map_chunk)
                self.live_maps += 1
                self.stats["maps"] += 1
                return r.address + (gpa - r.base), n
        return None

    def dma_unmap(self, address: int, length: int, written: bool) -> None:
        """Release a mapping of dma_map (Host.mem_unmap)."""
        self.live_maps -= 1
        self.stats["unmaps"] += 1
