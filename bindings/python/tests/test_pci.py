# SPDX-License-Identifier: MIT
"""The PCI host bridge and the generic device methods."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm
from libvmapple import pci


def test_default_identity():
    with vm.PciHostBridge() as b:
        assert b.device_type == vm.DeviceType.PCI_HOST_BRIDGE
        assert b.name == "pci-host-bridge"
        assert (b.vendor_id, b.device_id, b.class_code) == (0x106B, 0x1A05, 0x060000)
        assert b.regions == () and b.irqs == ()
        assert b.pci_config_read(pci.HEADER_TYPE, 1) == 0
        assert b.capabilities() == {}


def test_options_map_to_the_struct():
    # Options that are given replace the defaults; the rest keep VZ's identity.
    with vm.PciHostBridge(revision=2) as b:
        assert (b.vendor_id, b.device_id, b.class_code) == (0x106B, 0x1A05, 0x060000)
        assert b.pci_config_read(pci.REVISION_ID, 1) == 2
    with vm.PciHostBridge(vendor_id=0x1B36, device_id=0x0008, subsystem_vendor_id=0x1AF4,
                          subsystem_id=0x1100) as b:
        assert (b.vendor_id, b.device_id) == (0x1B36, 0x0008)
        assert b.pci_config_read(pci.SUBSYSTEM_VENDOR_ID, 4) == 0x11001AF4


def test_option_errors():
    with pytest.raises(TypeError, match=r"unknown options bogus, vendor \("):
        vm.PciHostBridge(vendor=1, bogus=2)
    with pytest.raises(ValueError, match="vendor_id"):
        vm.PciHostBridge(vendor_id=-1)
    with pytest.raises(TypeError, match="revision must be an int"):
        vm.PciHostBridge(revision="2")
    with pytest.raises(vm.VmappleError, match="class_code") as ei:
        vm.PciHostBridge(class_code=0x1000000)
    assert ei.value.errno == errno.EINVAL


def test_config_space_semantics():
    host = vm.Host()
    with vm.PciHostBridge(host) as b:
        b.pci_config_write(pci.VENDOR_ID, 0xFFFFFFFF)  # read-only
        assert b.vendor_id == 0x106B
        b.command = 0xFFFF
        assert b.command == pci.COMMAND_MEMORY | pci.COMMAND_MASTER | pci.COMMAND_INTX_DISABLE \
            | (1 << 6) | (1 << 8)
        assert b.pci_config_read(0x800, 4) == 0  # extended space with nothing in it
        with pytest.raises(vm.VmappleError) as ei:
            b.pci_config_read(0xFFE, 4)
        assert ei.value.errno == errno.EINVAL and "config space" in ei.value.detail
        assert "config space" in b.last_error
        with pytest.raises(vm.VmappleError) as ei:
            b.pci_config_write(0, 0, size=3)
        assert ei.value.errno == errno.EINVAL and "access size 3" in ei.value.detail


def test_reset_save_load():
    a = vm.PciHostBridge()
    a.command = 6
    a.pci_config_write(pci.INTERRUPT_LINE, 0x2A, 1)
    blob = a.save()
    assert blob[:8] == b"VMAPLSTA"
    a.reset()
    assert a.command == 0
    b = vm.PciHostBridge()
    b.load(blob)
    assert b.command == 6 and b.pci_config_read(pci.INTERRUPT_LINE, 1) == 0x2A
    # A damaged blob is refused and changes nothing.
    bad = bytearray(blob)
    bad[-1] ^= 0xFF
    with pytest.raises(vm.VmappleError) as ei:
        b.load(bad)
    assert ei.value.errno == errno.EBADMSG
    with pytest.raises(vm.VmappleError) as ei:
        b.load(blob[:20])
    assert ei.value.errno == errno.EBADMSG
    assert b.command == 6
    a.close()
    b.close()


def test_regions_by_name_and_bad_accesses():
    b = vm.PciHostBridge()
    with pytest.raises(vm.VmappleError) as ei:
        b.read("bar0", 0)
    assert ei.value.errno == errno.ENOENT and "no region named 'bar0'" in ei.value.detail
    with pytest.raises(vm.VmappleError) as ei:
        b.write(0, 0, 1)
    assert ei.value.errno == errno.EINVAL and "no region 0" in ei.value.detail
    with pytest.raises(vm.VmappleError) as ei:
        b.region_memory(0)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(vm.VmappleError) as ei:
        b.poll_fd()
    assert ei.value.errno == errno.ENOTSUP
    assert b.process() == 0


def test_names_and_closing():
    host = vm.Host()
    b = vm.PciHostBridge(host)
    b.name = "bridge0"
    assert b.name == "bridge0" and repr(b) == "<PciHostBridge 'bridge0'>"
    with pytest.raises(vm.VmappleError):
        b.name = "x" * 40
    b.close()
    b.close()
    assert b.closed and repr(b) == "<PciHostBridge closed>"
    with pytest.raises(ValueError, match="closed"):
        b.read(0, 0)
    assert host._slots == {}
