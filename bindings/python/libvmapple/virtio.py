# SPDX-License-Identifier: MIT
"""A guest-side virtio 1.x PCI driver for harnesses (virtio spec 1.2,
sections 2.7 and 4.1): what a guest kernel does to a virtio-pci function,
done through a Device's config space and BAR registers and a GuestMemory.

This is test scaffolding, not a binding of a C API: it lets a harness talk
to the library's virtio devices the way a guest would, including the ways a
guest can get it wrong (descriptors can be written by hand).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import pci
from .device import RegionFlags
from .memory import GuestMemory
from .platform import RAM_BASE, find, MapId

# Device status (2.1).
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
DEVICE_NEEDS_RESET = 64
FAILED = 128

# Reserved feature bits (6).
F_INDIRECT_DESC = 1 << 28
F_EVENT_IDX = 1 << 29
F_VERSION_1 = 1 << 32

# Vendor capability types (4.1.4).
CAP_VENDOR = 0x09
CAP_COMMON = 1
CAP_NOTIFY = 2
CAP_ISR = 3
CAP_DEVICE = 4
CAP_PCI_CFG = 5

# Common configuration (4.1.4.3).
CC_DEVICE_FEATURE_SELECT = 0x00
CC_DEVICE_FEATURE = 0x04
CC_DRIVER_FEATURE_SELECT = 0x08
CC_DRIVER_FEATURE = 0x0C
CC_MSIX_CONFIG = 0x10
CC_NUM_QUEUES = 0x12
CC_DEVICE_STATUS = 0x14
CC_CONFIG_GENERATION = 0x15
CC_QUEUE_SELECT = 0x16
CC_QUEUE_SIZE = 0x18
CC_QUEUE_MSIX_VECTOR = 0x1A
CC_QUEUE_ENABLE = 0x1C
CC_QUEUE_NOTIFY_OFF = 0x1E
CC_QUEUE_DESC = 0x20
CC_QUEUE_DRIVER = 0x28
CC_QUEUE_DEVICE = 0x30

NO_VECTOR = 0xFFFF

# Split virtqueue descriptors (2.7.5).
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4


@dataclass(frozen=True)
class VirtioCap:
    cfg_type: int
    bar: int
    offset: int
    length: int
    cap_offset: int  #: where the capability sits in config space
    notify_off_multiplier: int = 0


class GuestAllocator:
    """Hands out guest-physical buffers from one range of a GuestMemory
    (never freed; make a new allocator per test)."""

    def __init__(self, mem: GuestMemory, base: int, size: int):
        if mem.find(base, size) is None:
            raise ValueError(f"[{base:#x}, +{size:#x}) is not in the guest memory")
        self.mem = mem
        self.next = base
        self.end = base + size

    def alloc(self, size: int, align: int = 16, data: bytes | None = None) -> int:
        addr = (self.next + align - 1) & ~(align - 1)
        if addr + size > self.end:
            raise MemoryError(f"guest allocator: {size} bytes do not fit")
        self.next = addr + size
        self.mem.fill(addr, size, 0)
        if data is not None:
            self.mem.write(addr, data)
        return addr


class SplitQueue:
    """One split virtqueue laid out in guest memory."""

    def __init__(self, driver: "VirtioPciDriver", index: int, size: int, desc: int, avail: int,
                 used: int, notify_addr: tuple[int, int]):
        self.driver = driver
        self.mem = driver.mem
        self.index = index
        self.size = size
        self.desc = desc
        self.avail = avail
        self.used = used
        self.notify_region, self.notify_offset = notify_addr
        self.avail_idx = 0
        self.last_used = 0
        self.free = list(range(size))
        self._chains: dict[int, list[int]] = {}  # head -> descriptors of a chain add() made

    def write_desc(self, i: int, addr: int, length: int, flags: int = 0, next_: int = 0) -> None:
        """Write descriptor @i by hand (harnesses testing bad chains)."""
        self.mem.write(self.desc + 16 * i, struct.pack("<QIHH", addr, length, flags, next_))

    def publish(self, head: int) -> None:
        """Put @head in the available ring and bump avail->idx."""
        slot = self.avail + 4 + 2 * (self.avail_idx % self.size)
        self.mem.write_u16(slot, head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem.write_u16(self.avail + 2, self.avail_idx)

    def add(self, buffers: list[tuple[int, int, bool]]) -> int:
        """Chain (gpa, length, device_writable) buffers and publish them;
        returns the head descriptor index."""
        if len(buffers) > len(self.free):
            raise RuntimeError(f"queue {self.index}: {len(buffers)} descriptors do not fit")
        ids = [self.free.pop(0) for _ in buffers]
        for n, (i, (addr, length, writable)) in enumerate(zip(ids, buffers)):
            last = n == len(ids) - 1
            flags = (DESC_F_WRITE if writable else 0) | (0 if last else DESC_F_NEXT)
            self.write_desc(i, addr, length, flags, 0 if last else ids[n + 1])
        self._chains[ids[0]] = ids
        self.publish(ids[0])
        return ids[0]

    def kick(self) -> None:
        """Notify the device (a write to the queue's notify address)."""
        self.driver.dev.write(self.notify_region, self.notify_offset, self.index, 2)

    def used_idx(self) -> int:
        return self.mem.read_u16(self.used + 2)

    def take_used(self) -> list[tuple[int, int]]:
        """New used-ring entries (id, written length) since the last call;
        the descriptors of chains add() made become free again (an id the
        device completes twice, or that add() never handed out, frees
        nothing)."""
        out = []
        idx = self.used_idx()
        while self.last_used != idx:
            off = self.used + 4 + 8 * (self.last_used % self.size)
            ident, length = struct.unpack("<II", self.mem.read(off, 8))
            out.append((ident, length))
            self.free.extend(self._chains.pop(ident, ()))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return out


class VirtioPciDriver:
    """Drive a virtio-pci function as a guest does.

    Args:
        dev: the PCI function (its Host must have @mem as guest memory).
        mem: guest memory for rings and buffers.
        bar_base: where BARs are placed (default: the PCIe MMIO window).
        heap: (base, size) of guest memory the driver may use for rings and
            buffers (default: the last 1 MiB of the first range).
    """

    def __init__(self, dev: pci.PciFunction, mem: GuestMemory, *, bar_base: int | None = None,
                 heap: tuple[int, int] | None = None):
        self.dev = dev
        self.mem = mem
        if heap is None:
            r = mem.find(RAM_BASE) or mem.ranges[0]
            size = min(r.size, 1 << 20)
            heap = (r.end - size, size)
        self.heap = GuestAllocator(mem, *heap)
        self.bar_region = {r.pci_bar: r.index for r in dev.regions
                           if r.flags & RegionFlags.PCI_BAR}
        base = find(MapId.PCIE_MMIO).base if bar_base is None else bar_base
        self.bar_address: dict[int, int] = {}
        for bar, region in sorted(self.bar_region.items()):
            size = dev.regions[region].size
            base = (base + size - 1) & ~(size - 1)
            dev.place_bar(bar, base, enable=False)
            self.bar_address[bar] = base
            base += size
        dev.pci_config_write(pci.COMMAND, pci.COMMAND_MEMORY | pci.COMMAND_MASTER, 2)
        self.caps = self._find_caps()
        self.queues: dict[int, SplitQueue] = {}

    def _find_caps(self) -> dict[int, VirtioCap]:
        caps: dict[int, VirtioCap] = {}
        d = self.dev
        for cap_id, off in d._capability_list():
            if cap_id == CAP_VENDOR:
                cfg_type = d.pci_config_read(off + 3, 1)
                mult = d.pci_config_read(off + 16) if cfg_type == CAP_NOTIFY else 0
                cap = VirtioCap(cfg_type, d.pci_config_read(off + 4, 1),
                                d.pci_config_read(off + 8), d.pci_config_read(off + 12), off,
                                mult)
                caps.setdefault(cfg_type, cap)
        return caps

    # -- structure access -----------------------------------------------------------

    def _at(self, cfg_type: int, offset: int) -> tuple[int, int]:
        cap = self.caps[cfg_type]
        return self.bar_region[cap.bar], cap.offset + offset

    def common_read(self, offset: int, size: int) -> int:
        return self.dev.read(*self._at(CAP_COMMON, offset), size)

    def common_write(self, offset: int, value: int, size: int) -> None:
        self.dev.write(*self._at(CAP_COMMON, offset), value, size)

    def config_read(self, offset: int, size: int = 4) -> int:
        """Read the device-specific configuration."""
        return self.dev.read(*self._at(CAP_DEVICE, offset), size)

    def isr(self) -> int:
        """Read (and so clear) the ISR status."""
        return self.dev.read(*self._at(CAP_ISR, 0), 1)

    @property
    def status(self) -> int:
        return self.common_read(CC_DEVICE_STATUS, 1)

    @status.setter
    def status(self, value: int) -> None:
        self.common_write(CC_DEVICE_STATUS, value, 1)

    def device_features(self) -> int:
        feats = 0
        for sel in (0, 1):
            self.common_write(CC_DEVICE_FEATURE_SELECT, sel, 4)
            feats |= self.common_read(CC_DEVICE_FEATURE, 4) << (32 * sel)
        return feats

    # -- initialisation (3.1.1) -----------------------------------------------------------

    def reset(self) -> None:
        self.status = 0
        self.queues.clear()

    def negotiate(self, wanted: int = ~0) -> int:
        """Reset, acknowledge, accept the offered features in @wanted (and
        VERSION_1), set FEATURES_OK; returns the accepted features. Raises
        RuntimeError when the device refuses them."""
        self.reset()
        self.status = ACKNOWLEDGE
        self.status = ACKNOWLEDGE | DRIVER
        accepted = self.device_features() & (wanted | F_VERSION_1)
        for sel in (0, 1):
            self.common_write(CC_DRIVER_FEATURE_SELECT, sel, 4)
            self.common_write(CC_DRIVER_FEATURE, (accepted >> (32 * sel)) & 0xFFFFFFFF, 4)
        self.status = ACKNOWLEDGE | DRIVER | FEATURES_OK
        if not self.status & FEATURES_OK:
            raise RuntimeError(f"the device refused features {accepted:#x}")
        self.features = accepted
        return accepted

    def setup_queue(self, index: int, size: int | None = None) -> SplitQueue:
        """Allocate and enable split virtqueue @index (default: the
        device's maximum size)."""
        self.common_write(CC_QUEUE_SELECT, index, 2)
        max_size = self.common_read(CC_QUEUE_SIZE, 2)
        if max_size == 0:
            raise RuntimeError(f"queue {index} does not exist")
        size = size or max_size
        self.common_write(CC_QUEUE_SIZE, size, 2)
        desc = self.heap.alloc(16 * size, 16)
        avail = self.heap.alloc(6 + 2 * size, 2)
        used = self.heap.alloc(6 + 8 * size, 4)
        for off, addr in ((CC_QUEUE_DESC, desc), (CC_QUEUE_DRIVER, avail),
                          (CC_QUEUE_DEVICE, used)):
            self.common_write(off, addr & 0xFFFFFFFF, 4)
            self.common_write(off + 4, addr >> 32, 4)
        notify_off = self.common_read(CC_QUEUE_NOTIFY_OFF, 2)
        ncap = self.caps[CAP_NOTIFY]
        notify = (self.bar_region[ncap.bar],
                  ncap.offset + notify_off * ncap.notify_off_multiplier)
        self.common_write(CC_QUEUE_ENABLE, 1, 2)
        q = SplitQueue(self, index, size, desc, avail, used, notify)
        self.queues[index] = q
        return q

    def driver_ok(self) -> None:
        self.status = self.status | DRIVER_OK
