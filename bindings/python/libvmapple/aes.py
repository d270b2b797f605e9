# SPDX-License-Identifier: MIT
"""The AES engine (aes.h; register map in spec/aes.md).

Besides the device, this module has the register offsets and encoders for
the command FIFO words, so a harness writes what a guest driver writes:

    aes.push(cmd_key(key), cmd_data(src, dst, 16))
"""

from __future__ import annotations

import ctypes
import struct
from typing import Iterable, Mapping, Sequence

from . import _native
from .device import Device, DeviceType, build_options
from .host import Host

# Window 1 registers.
STATUS = 0x00C
IRQ_STATUS = 0x018  #: write 1 to clear
IRQ_ENABLE = 0x01C
WATERMARK = 0x020
Q_STATUS = 0x024
FLAG_INFO = 0x030
FIFO = 0x200

STATUS_RESET = 0x3F80
IRQ_INVALID_CMD = 1 << 2
IRQ_FLAG = 1 << 5

OP_KEY = 0x1
OP_IV = 0x2
OP_DSB = 0x3
OP_SKG = 0x4
OP_DATA = 0x5
OP_STORE_IV = 0x6
OP_WRITE_REG = 0x7
OP_FLAG = 0x8

MODE_ECB = 0
MODE_CBC = 1

BUILTIN_KEYS = 7
MAX_KEY = 32
BLOCK = 16

_KEY_LENGTHS = {16: 0, 24: 1, 32: 2}


class BuiltinKey(ctypes.Structure):
    _fields_ = [("length", ctypes.c_uint32), ("key", ctypes.c_uint8 * MAX_KEY)]


class AesOptions(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("cbc_chain_iv", ctypes.c_uint32),
        ("builtin_keys", BuiltinKey * BUILTIN_KEYS),
    ]


_create = _native.optional(
    "vmapple_aes_create", ctypes.c_int,
    [ctypes.POINTER(_native.HostOps), ctypes.c_void_p, ctypes.POINTER(AesOptions),
     ctypes.POINTER(ctypes.c_void_p)])


def _words(data: bytes) -> list[int]:
    """Bytes as FIFO words, in memory order (little-endian words)."""
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def _mode(mode: int | str) -> int:
    if isinstance(mode, str):
        return {"ecb": MODE_ECB, "cbc": MODE_CBC}[mode.lower()]
    return mode


def cmd_key(key: bytes | None = None, *, select: int = 0, key_bits: int | None = None,
            context: int = 0, encrypt: bool = True, mode: int | str = MODE_ECB) -> list[int]:
    """A KEY command: load @key (16, 24 or 32 bytes) into key context
    @context, or built-in key @select (1..7; give key_bits for its length
    field, default 256), and set the direction and block mode ("ecb",
    "cbc")."""
    if select:
        length = _KEY_LENGTHS[(key_bits or 256) // 8]
        payload: list[int] = []
    else:
        if key is None or len(key) not in _KEY_LENGTHS:
            raise ValueError("cmd_key: a key is 16, 24 or 32 bytes")
        length = _KEY_LENGTHS[len(key)]
        payload = _words(key)
    word = (OP_KEY << 28) | ((context & 1) << 27) | ((select & 7) << 24) | (length << 22) | \
        ((1 << 20) if encrypt else 0) | ((_mode(mode) & 3) << 16)
    return [word] + payload


def cmd_iv(iv: bytes, *, context: int = 0) -> list[int]:
    """An IV command: load 16 bytes into IV context @context (0..3)."""
    if len(iv) != BLOCK:
        raise ValueError("cmd_iv: an IV is 16 bytes")
    return [(OP_IV << 28) | ((context & 3) << 26)] + _words(iv)


def cmd_data(src: int, dst: int, length: int, *, key_context: int = 0,
             iv_context: int = 0) -> list[int]:
    """A DATA command: run @length bytes at guest address @src through the
    cipher into @dst (48-bit addresses)."""
    word = (OP_DATA << 28) | ((key_context & 1) << 27) | ((iv_context & 3) << 25) | \
        (length & 0xFFFFFF)
    return [word, ((src >> 32) & 0xFFFF) << 16 | ((dst >> 32) & 0xFFFF),
            src & 0xFFFFFFFF, dst & 0xFFFFFFFF]


def cmd_store_iv(dst: int, *, context: int = 0) -> list[int]:
    """A STORE_IV command: write IV context @context to guest @dst (40 bits)."""
    return [(OP_STORE_IV << 28) | ((context & 3) << 26) | ((dst >> 32) & 0xFF),
            dst & 0xFFFFFFFF]


def cmd_flag(info: int = 0, *, irq: bool = False, stop: bool = False) -> list[int]:
    """A FLAG command: copy @info to FLAG_INFO, with @irq set IRQ_STATUS.FLAG."""
    return [(OP_FLAG << 28) | ((1 << 27) if irq else 0) | ((1 << 26) if stop else 0) |
            (info & 0xFF)]


def _set_builtin_keys(opts: AesOptions, keys: Mapping[int, bytes] | Sequence[bytes | None]) -> None:
    items = keys.items() if isinstance(keys, Mapping) else \
        ((i + 1, k) for i, k in enumerate(keys))
    for select, key in items:
        if not 1 <= select <= BUILTIN_KEYS:
            raise ValueError(f"Aes: option builtin_keys: key select {select} is not 1..7")
        if key is None:
            continue
        key = bytes(key)
        if len(key) > MAX_KEY:
            raise ValueError(f"Aes: option builtin_keys[{select}]: {len(key)} bytes "
                             f"(16, 24 or 32)")
        entry = opts.builtin_keys[select - 1]
        entry.length = len(key)
        ctypes.memmove(entry.key, key, len(key))


class Aes(Device):
    """The AES engine: regions "aes-window1" (registers, FIFO) and
    "aes-window2", interrupt "aes" (SPI 0x12). Needs guest memory (DMA).

    Options:
        cbc_chain_iv: True stores the last ciphertext block of a CBC DATA
            command in its IV context (consecutive DATA commands chain);
            False (default) leaves the IV unchanged, as the reference does.
        builtin_keys: the hardware keys of KEY select 1..7, as
            {select: key bytes} or a sequence of 7 (None keeps the default).
    """

    TYPE = DeviceType.AES
    _create_name = "vmapple_aes_create"

    def __init__(self, host: Host | None = None, **options):
        opts = build_options(AesOptions, "Aes", options,
                             converters={"builtin_keys": _set_builtin_keys})
        self._create(host, _create, opts, name="aes")

    def push(self, *commands: Iterable[int]) -> None:
        """Write the words of one or more commands to the FIFO."""
        for cmd in commands:
            for word in cmd:
                self.write(0, FIFO, word)

    @property
    def irq_status(self) -> int:
        return self.read(0, IRQ_STATUS)

    def clear_irq(self, bits: int = 0xFFFFFFFF) -> None:
        self.write(0, IRQ_STATUS, bits)

    def run(self, src: int, dst: int, length: int, key: bytes, *, encrypt: bool = True,
            mode: int | str = MODE_ECB, iv: bytes | None = None) -> int:
        """Load @key (and @iv), run one DATA command from @src to @dst, and
        return IRQ_STATUS afterwards (IRQ_INVALID_CMD set means it failed)."""
        cmds = [cmd_key(key, encrypt=encrypt, mode=mode)]
        if iv is not None:
            cmds.append(cmd_iv(iv))
        cmds.append(cmd_data(src, dst, length))
        self.push(*cmds)
        return self.irq_status
