#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed inputs of fuzz-virtqueue and fuzz-virtio-blk (see the
input formats at the top of those harnesses). Run from anywhere:
    tests/fuzz/gen-virtio-seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
RAM = 0x70000000


def desc(addr, length, flags, nxt):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def write(name, sub, data):
    path = os.path.join(HERE, 'seeds', sub, name)
    with open(path, 'wb') as f:
        f.write(data)


# fuzz-virtqueue: [log2 size][features][host] + 3 KiB RAM image (desc 0x0, avail 0x800)
def vq_image(descs, heads, size_log2=3, features=0, host=1, extra=None):
    ram = bytearray(0xc00)
    for i, d in enumerate(descs):
        ram[16 * i:16 * i + 16] = d
    ram[0x800:0x804] = struct.pack('<HH', 0, len(heads))
    for i, h in enumerate(heads):
        ram[0x804 + 2 * i:0x806 + 2 * i] = struct.pack('<H', h)
    for off, blob in (extra or {}).items():
        ram[off:off + len(blob)] = blob
    return bytes([size_log2, features, host]) + bytes(ram)


write('simple-chain', 'virtqueue', vq_image(
    [desc(RAM + 0x1400, 16, 1, 1), desc(RAM + 0x1800, 512, 3, 2), desc(RAM + 0x1c00, 1, 2, 0)],
    [0]))
write('indirect', 'virtqueue', vq_image(
    [desc(RAM + 0x400, 48, 4, 0)], [0], features=1,
    extra={0x400: desc(RAM + 0x1400, 16, 1, 1) + desc(RAM + 0x1800, 1024, 3, 2) +
           desc(RAM + 0x1c00, 1, 2, 0)}))
write('event-idx-copy', 'virtqueue', vq_image(
    [desc(RAM + 0x1000 + 64 * i, 64, 2, 0) for i in range(8)], list(range(8)),
    features=2, host=0))
write('loop', 'virtqueue', vq_image(
    [desc(RAM + 0x1400, 16, 1, 1), desc(RAM + 0x1800, 16, 1, 0)], [0]))
write('short-maps', 'virtqueue', vq_image(
    [desc(RAM + 0x1400, 16, 1, 1), desc(RAM + 0x1800, 512, 3, 2), desc(RAM + 0x1c00, 1, 2, 0)],
    [0, 0], host=3) + struct.pack('<HH', 0x802, 2))


# fuzz-virtio-blk: [setup] then ops
SIZE_CODE = {1: 0, 2: 1, 4: 2, 8: 3}


def bar0(off, size, value):
    return bytes([0]) + struct.pack('<HB', off, SIZE_CODE[size]) + struct.pack('<Q', value)


def cfgw(off, size, value):
    return bytes([2]) + struct.pack('<HB', off, SIZE_CODE[size]) + struct.pack('<I', value)


def ram(off, data):
    out = b''
    while data:
        chunk = data[:32]
        data = data[32:]
        chunk = chunk + bytes(-len(chunk) % 4)
        code = {4: 0, 8: 1, 16: 2, 32: 3}.get(len(chunk))
        if code is None:
            chunk = chunk + bytes(32 - len(chunk))
            code = 3
        out += bytes([4]) + struct.pack('<HB', off, code) + chunk
        off += len(chunk)
    return out


def bring_up(features_hi=1, features_lo=0):
    return (cfgw(0x04, 2, 0x0006) + bar0(0x14, 1, 0) + bar0(0x14, 1, 1) + bar0(0x14, 1, 3) +
            bar0(0x08, 4, 0) + bar0(0x0c, 4, features_lo) + bar0(0x08, 4, 1) +
            bar0(0x0c, 4, features_hi) + bar0(0x14, 1, 0x0b) + bar0(0x16, 2, 0) +
            bar0(0x18, 2, 16) + bar0(0x20, 8, RAM + 0x1000) + bar0(0x28, 8, RAM + 0x2000) +
            bar0(0x30, 8, RAM + 0x3000) + bar0(0x1c, 2, 1) + bar0(0x14, 1, 0x0f))


def request(rtype, sector, data_len, write_data):
    flags = 3 if write_data else 1
    chain = (desc(RAM + 0x4000, 16, 1, 1) + desc(RAM + 0x5000, data_len, flags, 2) +
             desc(RAM + 0x6000, 1, 2, 0))
    return (ram(0x1000, chain) + ram(0x4000, struct.pack('<IIQ', rtype, 0, sector)) +
            ram(0x2000, struct.pack('<HHH', 0, 1, 0)) + bar0(0x3000, 2, 0))


read_req = bring_up() + request(0, 1, 512, True) + bytes([1]) + struct.pack('<HB', 0x1000, 0)
write('read-request', 'virtio-blk', bytes([0x04]) + read_req + bytes([7, 0, 0, 0]))
write('read-request-copy', 'virtio-blk', bytes([0x00]) + read_req)
write('write-read-only', 'virtio-blk', bytes([0x06]) + bring_up() + request(1, 0, 512, False))
write('msix', 'virtio-blk', bytes([0x05]) + bring_up() +
      bytes([5]) + struct.pack('<HB', 0, 3) + struct.pack('<Q', 0xfee00000) +
      bytes([5]) + struct.pack('<HB', 8, 3) + struct.pack('<Q', 0x20) +
      cfgw(0x9a, 2, 0x8000) + bar0(0x1a, 2, 0) + request(0, 2, 1024, True))
write('no-event-idx', 'virtio-blk', bytes([0x14]) + bring_up() + request(4, 0, 0, True))
write('get-id', 'virtio-blk', bytes([0x04]) + bring_up(1, 1 << 29) + request(8, 0, 20, True))
write('registers-only', 'virtio-blk', bytes([0x00]) + bring_up() + bar0(0x00, 4, 1) +
      bytes([1]) + struct.pack('<HB', 0x04, 2) + bytes([1]) + struct.pack('<HB', 0x2000, 3) +
      bytes([6]) + bytes([7]))
