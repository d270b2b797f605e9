# SPDX-License-Identifier: MIT
"""A whole vmapple machine assembled from the platform map, one host and a bus."""

from __future__ import annotations

import libvmapple as vm
from libvmapple import aes, bdif, platform


def test_assemble_the_machine_from_the_map():
    mem = vm.GuestMemory(2 << 20)
    host = vm.Host(mem, mem_map=True)
    disk = vm.MemoryVolume(bytearray(b"R" * 65536))
    devices = [
        vm.Cfg(host, nr_cpus=2, ram_size=2 << 20),
        vm.Pvpanic(host),
        vm.Bdif(host, root=disk),
        vm.Aes(host),
    ]
    bus = vm.Bus()
    for dev in devices:
        bus.map_device(dev)
    uart_out = []
    uart = platform.find("uart")
    bus.map_handler("uart", uart.base, uart.size,
                    write=lambda off, size, v: uart_out.append(v) if off == 0 else None)

    # Every row the library models is now on the bus, at the map's address.
    library_rows = {r.base: r for r in platform.regions() if r.by_library}
    mapped = {r.base: r for r in bus.ranges if r.device is not None}
    assert set(library_rows) == set(mapped)
    for base, row in library_rows.items():
        assert mapped[base].length == row.size, row.name

    # Firmware-style accesses by address only.
    assert bus.read(platform.find("cfg").base + 4) == 2
    w1 = platform.find(vm.MapId.AES1).base
    bus.write(w1 + aes.IRQ_ENABLE, aes.IRQ_FLAG)
    for word in aes.cmd_flag(7, irq=True):
        bus.write(w1 + aes.FIFO, word)
    scratch, buf = vm.RAM_BASE, vm.RAM_BASE + 0x1000
    mem.write(scratch + 48, bdif.sector_block(0))
    mem.write(scratch, bdif.request(scratch + 48, buf, 512, scratch + 64))
    bus.write(platform.find("bdif").base + bdif.CMD, scratch, 8)
    assert mem.read(scratch + 64, 1) == b"\x00" and mem.read(buf, 4) == b"RRRR"
    bus.write(platform.find("pvpanic").base, 1, 1)
    for ch in b"ok\n":
        bus.write(uart.base, ch, 1)
    assert bytes(uart_out) == b"ok\n"

    # One host saw all of it, attributed by device, in order.
    kinds = [(type(e).__name__, e.device) for e in host.events]
    assert kinds == [("IrqEvent", "aes"), ("PvpanicEvent", "pvpanic")]
    assert host.irq_events[0].name == "aes"
    assert {d.device for d in host.dma} == {"bdif"}
    spi = devices[3].irqs[0].spi
    assert spi == platform.find("aes1").spi == 0x12
