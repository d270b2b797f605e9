# SPDX-License-Identifier: MIT
"""The AES engine driven from Python: vectors, interrupts, DMA, errors."""

from __future__ import annotations

import errno
import re

import pytest

import libvmapple as vm
from libvmapple import aes
from libvmapple.aes import Aes, cmd_data, cmd_flag, cmd_iv, cmd_key, cmd_store_iv

SRC = vm.RAM_BASE + 0x1000
DST = vm.RAM_BASE + 0x2000

# FIPS-197 appendix C: the same plaintext under 128-, 192- and 256-bit keys.
FIPS_PT = bytes.fromhex("00112233445566778899aabbccddeeff")
FIPS = {
    16: "69c4e0d86a7b0430d8cdb78070b4c55a",
    24: "dda97ca4864cdfe06eaf70a0ec0d7191",
    32: "8ea2b7ca516745bfeafc49904b496089",
}
# NIST SP 800-38A F.1.1 / F.2.1 (AES-128 ECB and CBC), first two blocks.
SP_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
SP_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
SP_PT = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a" "ae2d8a571e03ac9c9eb76fac45af8e51")
SP_ECB = bytes.fromhex("3ad77bb40d7a3660a89ecaf32466ef97" "f5d3d58503b9699de785895a96fdbaaf")
SP_CBC = bytes.fromhex("7649abac8119b246cee98e9b12e9197d" "5086cb9b507219ee95db113a917678b2")


def test_identity():
    with Aes(vm.Host(vm.GuestMemory(4096))) as a:
        assert a.device_type == vm.DeviceType.AES
        assert [(r.name, r.base, r.size) for r in a.regions] == [
            ("aes-window1", 0x30220000, 0x4000), ("aes-window2", 0x30230000, 0x4000)]
        assert a.irqs == (vm.Irq(0, "aes", 0x12, vm.IrqFlags.LEVEL),)
        assert a.read("aes-window1", aes.STATUS) == aes.STATUS_RESET
        assert a.read(0, aes.Q_STATUS) == 2
        assert a.read("aes-window2", 0) == 0


@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_fips197_vectors(host, key_len):
    mem = host.memory
    a = Aes(host)
    mem.write(SRC, FIPS_PT)
    assert a.run(SRC, DST, 16, bytes(range(key_len))) == 0
    assert mem.read(DST, 16).hex() == FIPS[key_len]
    # And back.
    assert a.run(DST, DST, 16, bytes(range(key_len)), encrypt=False) == 0
    assert mem.read(DST, 16) == FIPS_PT
    ops = {d.op for d in host.dma}
    assert ops == ({"map", "unmap"} if "mem_map" not in host.omitted else {"read", "write"})
    assert host.memory.live_maps == 0


def test_partial_mappings_are_followed():
    mem = vm.GuestMemory(1 << 16, map_chunk=16)
    host = vm.Host(mem, mem_map=True)
    a = Aes(host)
    mem.write(SRC, SP_PT * 8)
    assert a.run(SRC, DST, 256, SP_KEY) == 0
    assert mem.read(DST, 256) == SP_ECB * 8
    assert mem.live_maps == 0


def test_cbc_and_iv_contexts(host):
    mem = host.memory
    a = Aes(host)
    mem.write(SRC, SP_PT)
    a.push(cmd_key(SP_KEY, mode="cbc"), cmd_iv(SP_IV, context=3),
           cmd_data(SRC, DST, 32, iv_context=3))
    assert a.irq_status == 0
    assert mem.read(DST, 32) == SP_CBC
    # The IV context is unchanged by default (the reference's behaviour).
    a.push(cmd_store_iv(DST + 0x100, context=3))
    assert mem.read(DST + 0x100, 16) == SP_IV
    a.push(cmd_key(SP_KEY, mode="cbc", encrypt=False), cmd_data(DST, DST, 32, iv_context=3))
    assert mem.read(DST, 32) == SP_PT


def test_cbc_chain_iv_option(mem):
    host = vm.Host(mem)
    a = Aes(host, cbc_chain_iv=True)
    mem.write(SRC, SP_PT)
    a.push(cmd_key(SP_KEY, mode="cbc"), cmd_iv(SP_IV),
           cmd_data(SRC, DST, 16), cmd_data(SRC + 16, DST + 16, 16), cmd_store_iv(DST + 0x100))
    assert a.irq_status == 0
    assert mem.read(DST, 32) == SP_CBC  # two commands, one chain
    assert mem.read(DST + 0x100, 16) == SP_CBC[16:]


def test_flag_interrupt_is_level_and_recorded(mem):
    host = vm.Host(mem)
    a = Aes(host)
    a.push(cmd_flag(0x5A, irq=True))
    assert a.read(0, aes.FLAG_INFO) == 0x5A
    assert a.irq_status == aes.IRQ_FLAG
    assert a.irq_level() == 0 and host.irq_events == []  # not enabled yet
    a.write(0, aes.IRQ_ENABLE, aes.IRQ_FLAG)
    assert a.irq_level("aes") == 1
    a.clear_irq(aes.IRQ_FLAG)
    assert a.irq_level() == 0 and a.irq_status == 0
    a.push(cmd_flag(1, irq=True))
    a.reset()
    assert [(e.line, e.level, e.name) for e in a.irq_events] == \
        [(0, 1, "aes"), (0, 0, "aes"), (0, 1, "aes"), (0, 0, "aes")]
    times = [e.time_ns for e in host.irq_events]
    assert times == sorted(times)


def test_invalid_commands_flag_and_log(mem):
    host = vm.Host(mem)
    a = Aes(host)
    a.write(0, aes.IRQ_ENABLE, aes.IRQ_INVALID_CMD)
    a.push([aes.OP_DSB << 28])
    assert a.irq_status & aes.IRQ_INVALID_CMD and a.irq_level() == 1
    assert host.log_contains("aes: command DSB", vm.LogLevel.GUEST_ERROR)
    a.clear_irq()
    # DATA to an address that is not RAM: the command fails, nothing breaks.
    a.push(cmd_key(SP_KEY), cmd_data(0x1000, DST, 16))
    assert a.irq_status & aes.IRQ_INVALID_CMD
    a.clear_irq()
    mem.write(SRC, SP_PT[:16])
    assert a.run(SRC, DST, 16, SP_KEY) == 0
    assert mem.read(DST, 16) == SP_ECB[:16]
    # Bad access sizes are guest errors, not failures of the call.
    assert a.read(0, aes.STATUS, 2) == 0
    assert host.log_contains("2-byte read", vm.LogLevel.GUEST_ERROR)
    a.write(0, aes.IRQ_ENABLE, 0xFF, 1)
    assert a.read(0, aes.IRQ_ENABLE) == aes.IRQ_INVALID_CMD


def test_a_raising_mem_read_is_an_invalid_command_and_is_reported(mem):
    class Broken(vm.Host):
        def mem_read(self, gpa, length):
            raise RuntimeError("harness bug")

    host = Broken(mem)
    a = Aes(host)
    a.write(0, aes.IRQ_ENABLE, aes.IRQ_INVALID_CMD)
    mem.write(DST, b"\xee" * 16)
    a.push(cmd_key(SP_KEY))
    words = cmd_data(SRC, DST, 16)
    for w in words[:-1]:
        a.write(0, aes.FIFO, w)
    with pytest.raises(vm.CallbackError) as ei:
        a.write(0, aes.FIFO, words[-1])  # the command runs on its last word
    assert isinstance(ei.value.__cause__, RuntimeError)
    assert ei.value.failures[0].callback == "mem_read"
    assert ei.value.failures[0].source == "aes"
    # What the guest sees: the device's defined error behaviour.
    assert a.irq_status & aes.IRQ_INVALID_CMD and a.irq_level() == 1
    assert mem.read(DST, 16) == b"\xee" * 16
    # The engine carries on once the host behaves.
    host.mem_read = lambda gpa, length: mem.dma_read(gpa, length)
    a.clear_irq()
    mem.write(SRC, SP_PT[:16])
    assert a.run(SRC, DST, 16, SP_KEY) == 0
    assert mem.read(DST, 16) == SP_ECB[:16]


def test_a_raising_mem_write_is_reported(mem):
    class Broken(vm.Host):
        def mem_write(self, gpa, data):
            raise OSError("disk full")

    a = Aes(Broken(mem))
    mem.write(SRC, SP_PT[:16])
    with pytest.raises(vm.CallbackError, match="mem_write callback for aes raised OSError"):
        a.run(SRC, DST, 16, SP_KEY)
    assert a.irq_status & aes.IRQ_INVALID_CMD


def test_a_raising_mem_map_falls_back_to_copies(mem):
    class NoMaps(vm.Host):
        def mem_map(self, gpa, length, writable):
            raise RuntimeError("no maps today")

    host = NoMaps(mem, mem_map=True)
    a = Aes(host)
    mem.write(SRC, SP_PT[:16])
    with pytest.raises(vm.CallbackError):
        a.run(SRC, DST, 16, SP_KEY)
    # The device did not depend on the mapping: the result is right.
    assert mem.read(DST, 16) == SP_ECB[:16]
    assert a.irq_status == 0
    assert {d.op for d in host.dma} >= {"map", "read", "write"}


def test_collected_errors_can_be_inspected_instead(mem):
    class Broken(vm.Host):
        def mem_read(self, gpa, length):
            raise ValueError("quiet")

    host = Broken(mem, raise_callback_errors=False)
    a = Aes(host)
    a.run(SRC, DST, 16, SP_KEY)  # does not raise
    assert [f.callback for f in host.take_callback_failures()] == ["mem_read"]
    assert len(host.callback_failures) == 1


def test_builtin_keys(mem):
    host = vm.Host(mem)
    key = bytes(range(16))
    a = Aes(host, builtin_keys={4: key})
    mem.write(SRC, FIPS_PT)
    a.push(cmd_key(select=4, key_bits=128), cmd_data(SRC, DST, 16))
    assert a.irq_status == 0
    assert mem.read(DST, 16).hex() == FIPS[16]
    # Select 1 keeps the reference's placeholder: 0x01 then 31 zero bytes.
    a.push(cmd_key(select=1), cmd_data(SRC, DST, 16))
    via_select = mem.read(DST, 16)
    a.run(SRC, DST, 16, b"\x01" + bytes(31))
    assert mem.read(DST, 16) == via_select and a.irq_status == 0
    # Select 5 has no value on this host.
    a.push(cmd_key(select=5), cmd_data(SRC, DST, 16))
    assert a.irq_status & aes.IRQ_INVALID_CMD
    # The sequence form.
    b = Aes(host, builtin_keys=[None, key])
    b.push(cmd_key(select=2, key_bits=128), cmd_data(SRC, DST, 16))
    assert mem.read(DST, 16).hex() == FIPS[16]


def test_option_errors():
    host = vm.Host(vm.GuestMemory(4096))
    with pytest.raises(TypeError, match="unknown option cbc_chain"):
        Aes(host, cbc_chain=True)
    with pytest.raises(vm.VmappleError, match="cbc_chain_iv") as ei:
        Aes(host, cbc_chain_iv=2)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(vm.VmappleError) as ei:
        Aes(host, builtin_keys={3: bytes(20)})
    assert ei.value.errno == errno.EINVAL and "20" in ei.value.detail
    with pytest.raises(ValueError, match="select 8"):
        Aes(host, builtin_keys={8: bytes(16)})
    with pytest.raises(ValueError):
        Aes(host, builtin_keys={1: bytes(33)})
    # A host without the callbacks the engine needs.
    with pytest.raises(vm.VmappleError, match="mem_read") as ei:
        Aes(vm.Host(omit=("mem_read",)))
    assert ei.value.errno == errno.EINVAL


def test_save_and_load_carry_keys_and_ivs(mem):
    host = vm.Host(mem)
    a = Aes(host)
    a.push(cmd_key(SP_KEY, mode="cbc"), cmd_iv(SP_IV, context=1))
    a.write(0, aes.IRQ_ENABLE, aes.IRQ_FLAG)
    a.push(cmd_flag(9, irq=True))
    blob = a.save()
    b = Aes(host)
    b.name = "aes-restored"
    b.load(blob)
    assert b.irq_status == aes.IRQ_FLAG and b.read(0, aes.FLAG_INFO) == 9
    assert b.irq_level() == 1  # load reports the line levels
    mem.write(SRC, SP_PT)
    b.push(cmd_data(SRC, DST, 32, iv_context=1))
    assert mem.read(DST, 32) == SP_CBC
    # Reset forgets the keys: DATA now fails.
    b.reset()
    b.push(cmd_data(SRC, DST, 32))
    assert b.irq_status & aes.IRQ_INVALID_CMD
    # Damaged or foreign blobs change nothing.
    bad = bytearray(blob)
    bad[40] ^= 1
    with pytest.raises(vm.VmappleError) as ei:
        a.load(bytes(bad))
    assert ei.value.errno == errno.EBADMSG
    bridge = vm.PciHostBridge()
    with pytest.raises(vm.VmappleError) as ei:
        bridge.load(blob)
    assert ei.value.errno == errno.ENODEV


def test_on_a_bus(mem):
    host = vm.Host(mem, mem_map=True)
    a = Aes(host)
    bus = vm.Bus()
    bus.map_device(a)
    assert [(r.name, r.device) for r in bus.ranges] == [("aes-window1", a), ("aes-window2", a)]
    assert bus.lookup(0x30230010).region == 1
    w1 = 0x30220000
    mem.write(SRC, FIPS_PT)
    bus.write(w1 + aes.IRQ_ENABLE, aes.IRQ_FLAG)
    for word in cmd_key(bytes(range(16))) + cmd_data(SRC, DST, 16) + cmd_flag(1, irq=True):
        bus.write(w1 + aes.FIFO, word)
    assert bus.read(w1 + aes.IRQ_STATUS) == aes.IRQ_FLAG
    assert mem.read(DST, 16).hex() == FIPS[16]
    assert host.irq_events[-1].level == 1
    # 8-byte access: two 4-byte accesses, low half first.
    assert bus.read(w1 + 0x018, 8) == aes.IRQ_FLAG | (aes.IRQ_FLAG << 32)
    # Closing a mapped device unmaps it first.
    a.close()
    assert bus.ranges == []
    with pytest.raises(vm.VmappleError):
        bus.read(w1)


def test_region_memory_is_not_supported():
    a = Aes(vm.Host(vm.GuestMemory(4096)))
    with pytest.raises(vm.VmappleError) as ei:
        a.region_memory("aes-window1")
    assert ei.value.errno == errno.ENOTSUP
    with pytest.raises(vm.VmappleError) as ei:
        a.pci_config_read(0)
    assert ei.value.errno == errno.ENOTSUP


def test_guest_error_logs_are_rate_limited(mem):
    host = vm.Host(mem)
    a = Aes(host)
    for _ in range(50):
        a.write(0, 0x3000, 1)  # an offset the engine does not decode
    lines = [r for r in host.logs if r.level == vm.LogLevel.GUEST_ERROR]
    assert len(lines) == len(host.logs)  # nothing else was logged
    # A burst of 10 tokens, one more per second: 10 lines, not 50 (11 only
    # when the loop crossed a refill, that line counting the ones dropped).
    assert 10 <= len(lines) <= 11
    assert all(r.device == "aes" for r in lines)
    message = "aes: write of 0x00000001 to unknown register 0x3000"
    assert [r.message for r in lines[:10]] == [message] * 10
    for r in lines[10:]:
        m = re.fullmatch(re.escape(message) + r" \((\d+) similar messages suppressed\)", r.message)
        assert r.message == message or (m and 1 <= int(m.group(1)) <= 40), r.message
