/* SPDX-License-Identifier: MIT */
/*
 * The self-test firmware: boots, takes the machine through one PSCI
 * SYSTEM_RESET (checking that devices came back in their reset state), runs
 * one check module per device the host says the machine has, reports over
 * the UART, raises pvpanic on any failure and powers off.
 *
 * A device module is a row of the table below: its device name (as the
 * report and the host's summary show it), the SELFTEST_DEV_* bit the
 * parameter block must have for it to run, its checks, and optionally what
 * it sets up before the reset and checks after it.
 */
#include <libvmapple/pvpanic.h>

#include "fw.h"

struct fw_module {
    const char *device;
    uint64_t needs; /* SELFTEST_DEV_* (0: always) */
    void (*run)(void);
    void (*before_reset)(void);
    void (*after_reset)(void);
};

static const struct fw_module modules[] = {
    { "boot", 0, check_boot, NULL, NULL },
    { "gic", SELFTEST_DEV_GIC, check_gic, NULL, NULL },
    { "cfg", SELFTEST_DEV_CFG, check_cfg, check_cfg_before_reset, check_cfg_after_reset },
    { "bdif", SELFTEST_DEV_BDIF, check_bdif, NULL, NULL },
    { "aes", SELFTEST_DEV_AES, check_aes, check_aes_before_reset, check_aes_after_reset },
    { "pvpanic", SELFTEST_DEV_PVPANIC, check_pvpanic, NULL, NULL },
    { "pci", SELFTEST_DEV_PCI_HOST, check_pci, NULL, NULL },
    { "virtio-blk-root", SELFTEST_DEV_VBLK_ROOT, check_virtio_blk_root, NULL, NULL },
    { "virtio-blk-aux", SELFTEST_DEV_VBLK_AUX, check_virtio_blk_aux, NULL, NULL },
    { "apple-dma-pci", SELFTEST_DEV_DMA_PCI, check_dma_pci, check_dma_pci_before_reset,
      check_dma_pci_after_reset },
};

#define NR_MODULES (sizeof(modules) / sizeof(modules[0]))

void fw_main(void);
void fw_exception(uint64_t kind, uint64_t esr, uint64_t elr, uint64_t far);

static void raise_pvpanic(void)
{
    if (fw_has(SELFTEST_DEV_PVPANIC)) {
        mmio_write8(VMAPPLE_PVPANIC_BASE, VMAPPLE_PVPANIC_PANICKED);
    }
}

static void finish(void) __attribute__((noreturn));
static void finish(void)
{
    if (fw_checks_failed()) {
        fw_printf("@@ panic %s\n", fw_first_failure());
        raise_pvpanic();
    }
    fw_printf("@@ end %u %u\n", fw_checks_passed(), fw_checks_failed());
    fw_power_off();
}

void fw_exception(uint64_t kind, uint64_t esr, uint64_t elr, uint64_t far)
{
    fw_check_begin("boot");
    fw_check("exception", false, "vector %u ESR_EL1 0x%lx ELR_EL1 0x%lx FAR_EL1 0x%lx",
             (unsigned)kind, esr, elr, far);
    finish();
}

static bool module_enabled(const struct fw_module *m)
{
    return !m->needs || fw_has(m->needs);
}

void fw_main(void)
{
    volatile uint64_t *marker = (volatile uint64_t *)SELFTEST_RESET_MARKER_GPA;
    const struct selftest_params *p = fw_params();
    unsigned boot = *marker == SELFTEST_RESET_MARKER ? 2 : 1;

    if (boot == 1) {
        fw_checks_clear();
    }
    fw_printf("@@ begin %u %s\n", boot, FW_VERSION_STRING);
    if (!p) {
        fw_check_begin("boot");
        fw_check("params", false,
                 "no valid parameter block at 0x%lx (not started by "
                 "libvmapple-example?)",
                 (uint64_t)SELFTEST_PARAMS_GPA);
        finish();
    }

    if (boot == 1 && !(p->flags & SELFTEST_FLAG_NO_RESET)) {
        for (unsigned i = 0; i < NR_MODULES; i++) {
            if (module_enabled(&modules[i]) && modules[i].before_reset) {
                fw_check_begin(modules[i].device);
                modules[i].before_reset();
            }
        }
        fw_note("PSCI SYSTEM_RESET: the machine restarts this firmware");
        *marker = SELFTEST_RESET_MARKER;
        fw_barrier();
        psci_call(PSCI_SYSTEM_RESET, 0, 0, 0);
        fw_check_begin("psci");
        fw_check("system-reset", false, "SYSTEM_RESET returned to the caller");
        finish();
    }
    if (boot == 2) {
        *marker = 0;
        fw_check_begin("psci");
        fw_check("system-reset", true, "the machine restarted the firmware from the reset PC");
        for (unsigned i = 0; i < NR_MODULES; i++) {
            if (module_enabled(&modules[i]) && modules[i].after_reset) {
                fw_check_begin(modules[i].device);
                modules[i].after_reset();
            }
        }
    }

    for (unsigned i = 0; i < NR_MODULES; i++) {
        const struct fw_module *m = &modules[i];

        if (!module_enabled(m)) {
            fw_skip(m->device, "not in this machine");
            continue;
        }
        fw_check_begin(m->device);
        m->run();
    }
    finish();
}
