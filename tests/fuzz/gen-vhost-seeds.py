#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed inputs of fuzz-vhost-user (see the input format at the top
of tests/fuzz/fuzz-vhost-user.c). Run from anywhere:
    tests/fuzz/gen-vhost-seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'seeds', 'vhost-user')

F_INDIRECT, F_EVENT_IDX, F_PROTOCOL, F_VERSION_1 = 1 << 28, 1 << 29, 1 << 30, 1 << 32
PF_ALL = (1 << 0) | (1 << 3) | (1 << 9) | (1 << 13)


def msg(req, payload=b'', flags=0, fds=0):
    """Op 0; fds: the descriptor byte (count | kinds << 2)."""
    return bytes([0, req, flags]) + struct.pack('<H', len(payload)) + bytes([fds]) + payload


def u64(v):
    return struct.pack('<Q', v)


def state(index, num):
    return struct.pack('<II', index, num)


def poke(off, blob):
    out = b''
    for i in range(0, len(blob), 255):
        part = blob[i:i + 255]
        out += bytes([1]) + struct.pack('<HB', off + i, len(part)) + part
    return out


def run():
    return bytes([2])


def ring(q, log2, desc, avail, used):
    return bytes([4, q, log2]) + struct.pack('<HHH', desc, avail, used)


def desc(addr, length, flags, nxt):
    return struct.pack('<QIHH', addr, length, flags, nxt)


HANDSHAKE = (msg(1) + msg(15) + msg(16, u64(PF_ALL)) + msg(3) +
             msg(2, u64(F_VERSION_1 | F_PROTOCOL | F_INDIRECT | F_EVENT_IDX)) +
             msg(24, struct.pack('<III', 0, 96, 0) + bytes(96)))


def blk_request(q_desc, q_avail, type_, sector, data_len, write_data=False, slot=0, head=0,
                base=0x4000):
    """Three descriptors at `head` for a request, the header at base, data and status after."""
    hdr = struct.pack('<IIQ', type_, 0, sector)
    data = base + 0x100
    status = base + 0x100 + data_len
    descs = desc(base, 16, 1, head + 1)
    descs += desc(data, data_len, 1 | (0 if write_data else 2), head + 2) if data_len else b''
    n = 3 if data_len else 2
    if not data_len:
        descs = desc(base, 16, 1, head + 1)
    descs += desc(status, 1, 2, 0)
    out = poke(base, hdr) + poke(q_desc + 16 * head, descs)
    out += poke(q_avail + 4 + 2 * slot, struct.pack('<H', head))
    out += poke(q_avail + 2, struct.pack('<H', slot + 1))
    return out, n


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)


write('handshake', bytes([0]) + HANDSHAKE)

req, _ = blk_request(0x1000, 0x2000, 0, 0, 512)
write('read-request', bytes([0]) + HANDSHAKE + ring(0, 4, 0x1000, 0x2000, 0x3000) + req + run() +
      msg(11, state(0, 0)))

req, _ = blk_request(0x1000, 0x2000, 1, 8, 1024, write_data=True)
write('write-read-only', bytes([1]) + HANDSHAKE + ring(0, 4, 0x1000, 0x2000, 0x3000) + req +
      run())

req0, _ = blk_request(0x1000, 0x2000, 1, 0, 512, write_data=True)
req1, _ = blk_request(0x8000, 0x9000, 4, 0, 0, base=0xc000)
write('two-rings', bytes([2]) + HANDSHAKE + ring(0, 4, 0x1000, 0x2000, 0x3000) +
      ring(1, 3, 0x8000, 0x9000, 0xa000) + req0 + req1 + run() + msg(34) + run())

req, _ = blk_request(0x1000, 0x2000, 0x10000, 0, 0)
write('barrier-then-base', bytes([0]) + HANDSHAKE + ring(0, 4, 0x1000, 0x2000, 0x3000) + req +
      run() + msg(11, state(0, 0)) + msg(10, state(0, 1)) + ring(0, 4, 0x1000, 0x2000, 0x3000) +
      run())

bad_mem = struct.pack('<II', 2, 0) + struct.pack('<QQQQ', 0, 0x8000, 0x7f0000000000, 0) + \
    struct.pack('<QQQQ', 0x4000, 0x8000, 0x7f0000100000, 0)
write('overlapping-regions', bytes([0]) + HANDSHAKE + msg(5, bad_mem, fds=2 | (0 << 2) | (0 << 4)))

write('truncated', bytes([0]) + HANDSHAKE + bytes([3, 7]) + HANDSHAKE)

write('config-and-enable', bytes([0]) + HANDSHAKE + msg(25, struct.pack('<III', 60, 4, 0) +
      bytes(4), flags=1) + msg(18, state(1, 1)) + msg(13, u64(0x101)) + msg(12, u64(0x100)) +
      ring(1, 5, 0x1000, 0x2000, 0x3000) + run())
