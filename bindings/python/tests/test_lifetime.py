# SPDX-License-Identifier: MIT
"""Objects left to the garbage collector or to interpreter exit."""

from __future__ import annotations

import gc
import weakref

import libvmapple as vm
from conftest import run_python


def test_devices_are_destroyed_by_the_garbage_collector():
    host = vm.Host()
    b = vm.PciHostBridge(host)
    ref = weakref.ref(b)
    del b
    gc.collect()
    assert ref() is None
    assert host._slots == {}


def test_device_on_a_bus_lives_until_unmapped():
    bus = vm.Bus()
    b = vm.PciHostBridge()
    bus.map_device(b)  # the bridge has no regions: nothing mapped, still kept
    ref = weakref.ref(b)
    del b
    gc.collect()
    assert ref() is not None
    bus.close()
    gc.collect()
    assert ref() is None


def test_exit_without_closing_anything():
    p = run_python("""
        import libvmapple as vm
        mem = vm.GuestMemory(1 << 16)
        host = vm.Host(mem, mem_map=True)
        devs = [vm.PciHostBridge(host) for _ in range(8)]
        bus = vm.Bus()
        bus.map_handler("x", 0x1000, 0x1000, lambda o, s: 1)
        for d in devs:
            bus.map_device(d)
        vol = vm.MemoryVolume(4096)
        cyc = [vm.PciHostBridge(vm.Host())]
        cyc.append(cyc)  # a reference cycle left for the collector at exit
        print("ok")
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"
    assert p.stderr == ""
