# SPDX-License-Identifier: MIT
"""apple-dma-pci, driven through the guest protocol."""

from __future__ import annotations

import errno

import pytest

import libvmapple as vm
from libvmapple import apple_dma_pci as adp
from libvmapple import pci
from libvmapple.apple_dma_pci import AppleDmaDriver, AppleDmaPci, Layout
from libvmapple.dma import DmaBackend

RAM = vm.RAM_BASE


def test_identity_and_registers(host):
    d = AppleDmaPci(host, managed_bdf=0x0810, max_entries=16, host_bus=4, host_device=2,
                    host_function=1)
    assert d.device_type == vm.DeviceType.APPLE_DMA_PCI
    assert (d.vendor_id, d.device_id, d.class_code) == (0x1B36, 0x0015, 0x088000)
    (bar0,) = d.regions
    assert (bar0.name, bar0.size, bar0.pci_bar) == ("bar0", 4096, 0)
    assert d.irqs == ()
    assert d.read(0, adp.REG_VERSION) == adp.VERSION
    assert d.read(0, adp.REG_MANAGED_BDF) == 0x0810
    assert d.read(0, adp.REG_MAX_ENTRIES) == 16
    info = d.info()
    assert (info.host_bus, info.host_device, info.host_function) == (4, 2, 1)
    assert d.read(0, 0x100) == 0  # undecoded


def test_map_and_unmap_through_a_sim_dart(host):
    mem = host.memory
    dart = DmaBackend.sim_dart()
    d = AppleDmaPci(host, dma=dart)
    dart.close()  # the device holds its own reference
    drv = AppleDmaDriver(d, mem)
    status, res = drv.map([(RAM + 0x1000, 0x2000), (RAM + 0x4010, 100)])
    assert status == adp.STATUS_OK and drv.status == adp.STATUS_OK
    assert [r.status for r in res] == [0, 0]
    assert [r.id for r in res] == [RAM + 0x1000, RAM + 0x4010]
    assert res[1].dma_addr % 0x4000 == 0x10 and res[1].dma_len == 100
    assert d.info().live_mappings == 2
    status, out = drv.unmap([(RAM + 0x1000, 0x2000), (RAM + 0x4010, 99)])
    assert status == adp.STATUS_IOERR and out == [(RAM + 0x1000, 0), (RAM + 0x4010, 1)]
    assert d.info().live_mappings == 1
    d.reset()
    assert d.info().live_mappings == 0


def test_entries_fail_independently(mem):
    d = AppleDmaPci(vm.Host(mem))
    drv = AppleDmaDriver(d, mem)
    status, res = drv.map([(RAM, 16), (0x1000, 16), (RAM + 0x100, 0)])
    assert status == adp.STATUS_IOERR
    assert [r.status for r in res] == [0, 1, 1]
    assert res[0].dma_addr == RAM  # identity backend by default


def test_module_layout(mem):
    d = AppleDmaPci(vm.Host(mem), layout="module")
    assert d.info().layout == Layout.MODULE
    drv = AppleDmaDriver(d, mem, layout=Layout.MODULE)
    status, res = drv.map([(RAM + 0x2000, 0x1_0000)])
    assert status == adp.STATUS_OK and res[0].dma_len == 0x1_0000


def test_malformed_batches_are_inval(mem):
    d = AppleDmaPci(vm.Host(mem), max_entries=4)
    drv = AppleDmaDriver(d, mem)
    assert drv.map([(RAM, 16)] * 5)[0] == adp.STATUS_INVAL
    assert drv.ring(7, 1, bytes(16), 24)[0] == adp.STATUS_INVAL
    # Bus mastering off: only the register says so.
    d.command = 0
    d.write(0, adp.REG_DOORBELL, 1)
    assert drv.status == adp.STATUS_INVAL
    d.command = pci.COMMAND_MASTER
    assert drv.map([(RAM, 16)])[0] == adp.STATUS_OK


def test_python_dma_backend_exceptions(mem):
    def map_(gpa, host, length, flags):
        raise RuntimeError("dext went away")

    backend = DmaBackend(map_, lambda *a: None, name="dext")
    d = AppleDmaPci(vm.Host(mem), dma=backend)
    drv = AppleDmaDriver(d, mem)
    with pytest.raises(vm.CallbackError) as ei:
        drv.map([(RAM, 16)])
    assert ei.value.failures[0].callback == "dma.map"
    assert ei.value.failures[0].source == "dext"
    status = mem.read_u32(drv.scratch + 8)
    assert status == adp.STATUS_IOERR  # the guest saw an entry fail


def test_save_load(mem):
    host = vm.Host(mem)
    a = AppleDmaPci(host)
    drv = AppleDmaDriver(a, mem)
    drv.map([(RAM + 0x8000, 0x1000)])
    blob = a.save()
    b = AppleDmaPci(host)
    b.load(blob)
    assert b.info().live_mappings == 1
    with pytest.raises(vm.VmappleError) as ei:
        AppleDmaPci(host, layout="module").load(blob)
    assert ei.value.errno == errno.EINVAL


def test_option_errors(mem):
    host = vm.Host(mem)
    with pytest.raises(vm.VmappleError, match="max_entries"):
        AppleDmaPci(host, max_entries=70000)
    with pytest.raises(vm.VmappleError, match="host_device"):
        AppleDmaPci(host, host_device=32)
    with pytest.raises(ValueError, match="published or module"):
        AppleDmaPci(host, layout="other")
    with pytest.raises(TypeError, match="DmaBackend"):
        AppleDmaPci(host, dma=object())
    with pytest.raises(vm.VmappleError, match="mem_read"):
        AppleDmaPci(vm.Host(omit=("mem_read",)))
