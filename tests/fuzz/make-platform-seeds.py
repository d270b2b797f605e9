#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the committed seeds of the platform fuzz targets (bdif, cfg, pvpanic,
# xhci) into tests/fuzz/seeds/<target>/. Each seed follows its harness's input
# format; rerun after changing a format.
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def save(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def u(v, n):
    return list(v.to_bytes(n, "little"))


# bdif: cfg byte, then ops (see fuzz-bdif.c).
def ram(off):               # desc_addr: "how" byte 2 = RAM offset (3 bytes)
    return [2] + u(off, 3)


def structured(unit, req, secb, sector, length, flags_idx, data_off, stat_off):
    op = 1 | (unit << 5)
    shape = 0x08 | flags_idx | 0x40   # sector desc len 16, 4-byte length
    return [op] + u(req, 2) + u(secb, 2) + [shape] + u(sector, 1) + u(length, 4) + \
        ram(data_off) + ram(stat_off)


read_root = [0x00] + structured(0, 0x100, 0x200, 3, 4096, 0, 0x1000, 0x300)
save("bdif", "read-root", read_root)
save("bdif", "read-aux-mapped", [0x20] + structured(1, 0x100, 0x200, 1, 2048, 0, 0x2000, 0x300))
save("bdif", "write-flush", [0x03] + structured(0, 0x100, 0x200, 4, 1024, 1, 0x3000, 0x300) +
     structured(0, 0x400, 0x500, 4, 1024, 0, 0x8000, 0x600))
save("bdif", "end-of-volume", [0x00] + structured(0, 0x100, 0x200, 127, 512, 0, 0x1000, 0x300) +
     structured(0, 0x100, 0x200, 127, 513, 0, 0x1000, 0x300))
save("bdif", "file-aux-chunked-map", [0x48 | 0x20] +
     structured(1, 0x100, 0x200, 2, 16384, 0, 0x4000, 0x300))
save("bdif", "registers-save-reset", [0x00, 0x04] + u(0x10420, 3) + [0x24] + u(0x408, 3) +
     u(0x1234, 8) + [0x06, 0x07] + structured(0, 0x100, 0x200, 0, 512, 0, 0x1000, 0x300))
save("bdif", "unreadable-request", [0x00, 0x3b, 0x00] + u(0x1000, 8) + [0x03 | 0x18, 0x01] +
     ram(0x3fff0))
save("bdif", "io-errors", [0x00, 0x05 | 0x08] + structured(0, 0x100, 0x200, 3, 4096, 0, 0x1000,
                                                            0x300))
save("bdif", "empty", [])

# cfg: layout, nr_cpus, ecid, ram_size, rnd, installer, 6x(en0, bt0), 3 strings, ops.
def cfg_head(layout, cpus, strings=(0xff, 0xff, 0xff)):
    out = [layout, cpus] + u(0x1122334455667788, 8) + u(8 << 30, 8) + u(0xdeadbeef, 4) + [1]
    out += [0x02, 0x0e] * 6
    for s in strings:
        if s == 0xff:
            out += [0xff]
        else:
            out += [len(s)] + [c - 0x20 for c in s.encode()]
    return out


def cfg_write(size_idx, off, val):
    return [0 | (size_idx << 2)] + u(off, 2) + u(val, 8)


def cfg_read(size_idx, off):
    return [1 | (size_idx << 2)] + u(off, 2)


save("cfg", "defaults-accesses", cfg_head(0, 1) + cfg_write(3, 0x8000, 0x0102030405060708) +
     cfg_read(0, 0x8003) + cfg_read(3, 0x500) + [2, 0, 0] + [3, 0, 0] + cfg_read(2, 0))
save("cfg", "commented-strings", cfg_head(1, 32, ("serial-number", "VirtualMac2,1",
                                                  "Apple M2 (Virtual)")) +
     cfg_write(1, 0xffff, 0xaa) + cfg_write(3, 0xfff8, 0x55) + [2, 0, 0])
save("cfg", "too-long-serial", cfg_head(0, 4, ("x" * 32, 0xff, 0xff)))
save("cfg", "bad-cpus", cfg_head(1, 33))

# pvpanic: events byte, then ops.
save("pvpanic", "panic-crash", [0, 0x00, 1, 0x01, 2, 0x02, 0x00 | 0x04] + u(0x0103, 2))
save("pvpanic", "shutdown-unsupported", [7, 0x00, 4, 0x00, 0xf8, 0x10, 0x01, 0x0c, 0x03, 0])
save("pvpanic", "reads", [0, 0x02, 0x12, 0x06, 0x0e, 0x22])

# xhci: numintrs (2), mapping (1), ops.
def xs(flags, msi, msix):
    return [0, flags, msi] + u(msix, 2)


def route(n):
    return [3] + u(n, 2)


save("xhci", "spec-vectors", u(16, 2) + [0] + route(2) + xs(2, 0, 4) + route(6) + xs(1, 1, 0) +
     route(3) + [2] + route(2))
save("xhci", "quirk-off-pin", u(16, 2) + [1] + route(2) + route(0) + route(17))
save("xhci", "single-interrupter", u(1, 2) + [0] + xs(2, 0, 8) + route(5) + [0x83] + u(1000, 4))
save("xhci", "bad-states", u(4, 2) + [0] + xs(1, 3, 0) + xs(2, 0, 0) + xs(4, 1, 1) + xs(3, 2, 7) +
     route(3))
