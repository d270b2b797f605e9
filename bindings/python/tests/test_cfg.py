# SPDX-License-Identifier: MIT
"""The configuration region."""

from __future__ import annotations

import errno
import gc

import pytest

import libvmapple as vm
from libvmapple.cfg import Cfg, Layout


def test_default_image():
    c = Cfg()
    assert c.device_type == vm.DeviceType.CFG
    (r,) = c.regions
    assert (r.name, r.base, r.size) == ("cfg", 0x400000, 0x10000)
    assert r.flags == vm.RegionFlags.MMIO | vm.RegionFlags.RAM
    assert c.irqs == ()
    assert c.read_u32(0x000) == 2 and c.read_u32(0x004) == 1
    assert c.read_u32(0x100) == 0  # cpu_ids[0]
    assert c.read_string(0x500) == "1234"
    assert c.read_string(0x520) == "D/A"
    assert c.read_string(0x540) == "VM0001"
    assert c.read_string(0x584) == "Apple M1 (Virtual)"
    assert c.read(0, 0x000) == 2


def test_options_reach_the_image():
    c = Cfg(ecid=0x0011223344556677, ram_size=4 << 30, nr_cpus=4, rnd=0xDEADBEEF,
            mac_en0="02:00:00:00:00:01", mac_bt0=b"\x02\x00\x00\x00\x00\xbb",
            serial="C02XYZ", model="VirtualMac2,1", soc_name="Apple M2 (Virtual)",
            run_installer=True)
    assert c.read_u64(0x018) == 0x0011223344556677
    assert c.read_u64(0x020) == 4 << 30
    assert c.read_u32(0x004) == 4
    assert [c.read_u32(0x100 + 4 * i) for i in range(5)] == [0, 1, 2, 3, 0]
    assert c.read_u32(0x028) == 1 and c.read_u32(0x034) == 1
    assert c.read_u32(0x038) == 0xDEADBEEF
    img = c.image()
    assert img[0x40:0x46] == bytes.fromhex("020000000001")
    assert img[0x58:0x5E] == bytes.fromhex("0200000000bb")
    assert c.read_string(0x500) == "C02XYZ"
    assert c.read_string(0x540) == "VirtualMac2,1"
    assert c.read_string(0x584) == "Apple M2 (Virtual)"


def test_commented_layout():
    c = Cfg(layout="commented", serial="S1", nr_cpus=2)
    assert c.read_string(0x380) == "S1"
    assert c.read_string(0x3C0) == "VM0001"
    assert c.read_string(0x404) == "Apple M1 (Virtual)"
    c2 = Cfg(layout=Layout.COMMENTED, nr_cpus=32)
    assert c2.read_u32(0x100 + 4 * 31) == 31


def test_option_errors():
    with pytest.raises(vm.VmappleError) as ei:
        Cfg(serial="x" * 40)
    assert ei.value.errno == errno.EINVAL
    assert "serial is 40 characters, the limit is 31" in ei.value.detail
    with pytest.raises(vm.VmappleError, match="nr_cpus"):
        Cfg(nr_cpus=0)
    with pytest.raises(vm.VmappleError, match="nr_cpus"):
        Cfg(nr_cpus=129)
    with pytest.raises(vm.VmappleError, match="nr_cpus"):
        Cfg(layout="commented", nr_cpus=33)
    with pytest.raises(vm.VmappleError, match="layout"):
        Cfg(layout=5)
    with pytest.raises(vm.VmappleError, match="run_installer"):
        Cfg(run_installer=2)
    with pytest.raises(ValueError, match="compiled or commented"):
        Cfg(layout="packed")
    with pytest.raises(ValueError, match="mac_en1"):
        Cfg(mac_en1="02:00:00")
    with pytest.raises(ValueError, match="NUL"):
        Cfg(model="a\0b")
    with pytest.raises(TypeError, match="serial must be a str"):
        Cfg(serial=1234)
    with pytest.raises(TypeError, match="unknown option reserved0"):
        Cfg(reserved0=1)


def test_guest_accesses_are_kept_and_reset_restores():
    c = Cfg(serial="KEEP")
    c.write(0, 0x1001, 0xAB, 1)
    c.write("cfg", 0x2003, 0x1122334455667788, 8)  # unaligned
    assert c.read(0, 0x2003, 8) == 0x1122334455667788
    assert c.read(0, 0x2004, 2) == 0x6677
    view = c.region_memory("cfg")
    assert view[0x1001] == 0xAB
    view[0x3000] = 0x5A  # a host mapping the bytes into the guest
    assert c.read(0, 0x3000, 1) == 0x5A
    c.reset()
    assert view[0x1001] == 0 and c.read(0, 0x2003, 8) == 0
    assert c.read_string(0x500) == "KEEP"


def test_save_load_and_option_mismatch():
    a = Cfg(ecid=7, nr_cpus=2)
    a.write(0, 0x8000, 0xCAFE, 2)
    blob = a.save()
    b = Cfg(ecid=7, nr_cpus=2)
    b.load(blob)
    assert b.read(0, 0x8000, 2) == 0xCAFE
    other = Cfg(ecid=8, nr_cpus=2)
    with pytest.raises(vm.VmappleError) as ei:
        other.load(blob)
    assert ei.value.errno == errno.EINVAL and "ecid" in ei.value.detail
    assert other.read(0, 0x8000, 2) == 0


def test_region_memory_outlives_close():
    host = vm.Host()
    c = Cfg(host, serial="ALIVE")
    view = c.region_memory(0)
    tail = view[0x500:0x520]
    c.close()
    assert c.closed
    with pytest.raises(ValueError):
        c.read(0, 0)
    # The bytes are still valid: the C device waits for the views.
    assert bytes(tail[:5]) == b"ALIVE"
    assert host._slots  # not destroyed yet
    del view, tail
    gc.collect()
    assert not host._slots


def test_on_a_bus():
    c = Cfg(nr_cpus=3)
    bus = vm.Bus()
    bus.map_device(c)
    assert bus.read(0x400004) == 3
    bus.write(0x40FFFC, 0x12345678)
    assert c.read_u32(0xFFFC) == 0x12345678
    with pytest.raises(vm.VmappleError):
        bus.read(0x40FFFE, 4)  # crosses the end of the region
