/* SPDX-License-Identifier: MIT */
/* The CPU as the guest finds it, PSCI, RAM and the UART. */
#include "fw.h"

static uint64_t current_el(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, CurrentEL" : "=r"(v));
    return (v >> 2) & 3;
}

void check_boot(void)
{
    const struct selftest_params *p = fw_params();
    uint64_t el = current_el();
    int64_t v;
    volatile uint64_t *last;
    uint64_t ram_end;

    fw_check("params",
             p->ram_size && !(p->ram_size & 0x3fff) && p->nr_cpus >= 1 && p->nr_cpus <= 32,
             "parameter block: %lu MiB RAM, CPU count %u, devices 0x%lx", p->ram_size >> 20,
             p->nr_cpus, p->devices);
    fw_check("el1", el == 1, "running at EL%u (VZ and this machine boot the firmware in EL1)",
             (unsigned)el);

    v = psci_call(PSCI_VERSION, 0, 0, 0);
    fw_check("psci-version", v >= 0x10000, "PSCI %u.%u", (unsigned)(v >> 16),
             (unsigned)(v & 0xffff));
    fw_check("psci-features",
             psci_call(PSCI_FEATURES, PSCI_SYSTEM_OFF, 0, 0) == 0 &&
                 psci_call(PSCI_FEATURES, PSCI_SYSTEM_RESET, 0, 0) == 0 &&
                 psci_call(PSCI_FEATURES, 0x8400ffffu, 0, 0) == PSCI_RET_NOT_SUPPORTED,
             "SYSTEM_OFF and SYSTEM_RESET implemented, unknown functions NOT_SUPPORTED");
    fw_check("psci-affinity", psci_call(PSCI_AFFINITY_INFO_64, 0, 0, 0) == 0, "the boot CPU is ON");

    /* The last bytes of RAM the host promised are there and keep what we store. */
    ram_end = VMAPPLE_RAM_BASE + p->ram_size;
    last = (volatile uint64_t *)(uintptr_t)(ram_end - 8);
    *last = 0x0123456789abcdefull ^ ram_end;
    fw_check("ram-end", *last == (0x0123456789abcdefull ^ ram_end),
             "RAM 0x%lx..0x%lx (%lu MiB) is writable to its last byte", (uint64_t)VMAPPLE_RAM_BASE,
             ram_end - 1, p->ram_size >> 20);

    fw_check_begin("uart");
    fw_check("pl011-id",
             mmio_read32(FW_UART_BASE + 0xfe0) == 0x11 && mmio_read32(FW_UART_BASE + 0xff0) == 0x0d,
             "PL011 identification registers at 0x%lx", (uint64_t)FW_UART_BASE);
    fw_check("tx-ready", (mmio_read32(FW_UART_BASE + 0x18) & (1u << 7)) != 0,
             "UARTFR.TXFE set: the transmitter drains at once");
}
