# SPDX-License-Identifier: MIT
"""PCI functions and the PCI host bridge (pci.h)."""

from __future__ import annotations

from . import _native
from .device import Device, DeviceType, build_options
from .host import Host

# Configuration-space offsets and bits (PCI 3.0), for harnesses.
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_PROG = 0x09
HEADER_TYPE = 0x0E
BAR0 = 0x10
SUBSYSTEM_VENDOR_ID = 0x2C
SUBSYSTEM_ID = 0x2E
CAPABILITY_LIST = 0x34
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D

COMMAND_MEMORY = 1 << 1
COMMAND_MASTER = 1 << 2
COMMAND_INTX_DISABLE = 1 << 10
STATUS_INTERRUPT = 1 << 3
STATUS_CAP_LIST = 1 << 4

CAP_ID_MSIX = 0x11
MSIX_FLAGS_ENABLE = 1 << 15
MSIX_FLAGS_MASKALL = 1 << 14


class PciFunction(Device):
    """A device that is a PCI function: helpers over its configuration space."""

    @property
    def vendor_id(self) -> int:
        return self.pci_config_read(VENDOR_ID, 2)

    @property
    def device_id(self) -> int:
        return self.pci_config_read(DEVICE_ID, 2)

    @property
    def class_code(self) -> int:
        return self.pci_config_read(REVISION_ID, 4) >> 8

    @property
    def command(self) -> int:
        return self.pci_config_read(COMMAND, 2)

    @command.setter
    def command(self, value: int) -> None:
        self.pci_config_write(COMMAND, value, 2)

    def capabilities(self) -> dict[int, int]:
        """Capability id -> offset, walking the capability list."""
        caps: dict[int, int] = {}
        for cap_id, off in self._capability_list():
            caps.setdefault(cap_id, off)
        return caps

    def _capability_list(self) -> list[tuple[int, int]]:
        """(id, offset) of every capability in list order (a loop ends it)."""
        out: list[tuple[int, int]] = []
        if not self.pci_config_read(STATUS, 2) & STATUS_CAP_LIST:
            return out
        off = self.pci_config_read(CAPABILITY_LIST, 1) & ~3
        seen = set()
        while off and off not in seen:
            seen.add(off)
            out.append((self.pci_config_read(off, 1), off))
            off = self.pci_config_read(off + 1, 1) & ~3
        return out

    def place_bar(self, bar: int, address: int, *, enable: bool = True) -> None:
        """Program BAR @bar (64-bit BARs take both dwords) and, with
        @enable, turn on memory decoding and bus mastering."""
        off = BAR0 + 4 * bar
        low = self.pci_config_read(off)
        self.pci_config_write(off, (address & 0xFFFFFFF0) | (low & 0xF))
        if (low >> 1) & 3 == 2:
            self.pci_config_write(off + 4, address >> 32)
        if enable:
            self.command = self.command | COMMAND_MEMORY | COMMAND_MASTER


class PciHostBridge(PciFunction):
    """The host bridge function at 00:00.0: configuration space only.

    Options (vmapple_pci_host_bridge_options): vendor_id (default 0x106b),
    device_id (0x1a05), class_code (0x060000), subsystem_vendor_id,
    subsystem_id, revision (0). QEMU's identity is vendor_id=0x1b36,
    device_id=0x0008.
    """

    TYPE = DeviceType.PCI_HOST_BRIDGE
    _create_name = "vmapple_pci_host_bridge_create"
    # The C defaults apply to a NULL options pointer only: a filled struct
    # carries every field, so the documented defaults are filled in here.
    DEFAULTS = {"vendor_id": 0x106B, "device_id": 0x1A05, "class_code": 0x060000}

    def __init__(self, host: Host | None = None, **options: int):
        opts = build_options(_native.PciHostBridgeOptions, "PciHostBridge", options,
                             self.DEFAULTS)
        self._create(host, _native.pci_host_bridge_create, opts)
