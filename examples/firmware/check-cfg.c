/* SPDX-License-Identifier: MIT */
/*
 * cfg (spec/cfg.md): the machine as the firmware learns it, in the default
 * (compiled) layout, against what the host put in the parameter block; the
 * region behaves as RAM (any access size, writes kept), and a machine reset
 * restores its initial image.
 */
#include <libvmapple/cfg.h>

#include "fw.h"

#define CFG_VERSION  0x000
#define CFG_NR_CPUS  0x004
#define CFG_UNK1     0x008
#define CFG_ECID     0x018
#define CFG_RAM_SIZE 0x020
#define CFG_CPU_IDS  0x100
#define CFG_SCRATCH  0x300
#define CFG_SERIAL   0x500
#define CFG_UNK8     0x520
#define CFG_MODEL    0x540
#define CFG_UNK10    0x580
#define CFG_SOC_NAME 0x584

static uint64_t at(uint32_t off)
{
    return VMAPPLE_CFG_BASE + off;
}

/* A NUL-terminated string of at most VMAPPLE_CFG_MAX_STRING characters at off, copied into buf. */
static bool cfg_string(uint32_t off, char *buf)
{
    for (unsigned i = 0; i <= VMAPPLE_CFG_MAX_STRING; i++) {
        buf[i] = (char)mmio_read8(at(off + i));
        if (!buf[i]) {
            return true;
        }
    }
    buf[VMAPPLE_CFG_MAX_STRING] = 0;
    return false;
}

void check_cfg(void)
{
    const struct selftest_params *p = fw_params();
    uint32_t version = mmio_read32(at(CFG_VERSION));
    uint32_t cpus = mmio_read32(at(CFG_NR_CPUS));
    uint64_t ecid = mmio_read64(at(CFG_ECID));
    uint64_t ram = mmio_read64(at(CFG_RAM_SIZE));
    uint32_t bad_ids = 0;
    char serial[VMAPPLE_CFG_MAX_STRING + 1], unk8[VMAPPLE_CFG_MAX_STRING + 1],
        model[VMAPPLE_CFG_MAX_STRING + 1], soc[VMAPPLE_CFG_MAX_STRING + 1];
    bool strings;

    fw_check("version", version == 2, "version %u (VZ: 2)", version);
    fw_check("ecid", ecid == p->ecid, "ECID 0x%016lx, the host configured 0x%016lx", ecid, p->ecid);
    fw_check("ram-size", ram == p->ram_size, "RAM size %lu MiB, the machine has %lu MiB", ram >> 20,
             p->ram_size >> 20);
    fw_check("nr-cpus", cpus == p->nr_cpus, "CPU count %u, the host configured %u", cpus,
             p->nr_cpus);
    fw_check("constants",
             mmio_read32(at(CFG_UNK1)) == 1 && mmio_read32(at(CFG_UNK1 + 4)) == 1 &&
                 mmio_read32(at(CFG_UNK1 + 8)) == 0x20 && mmio_read32(at(CFG_UNK1 + 12)) == 0 &&
                 mmio_read32(at(CFG_UNK10)) == 1,
             "the fixed words at 0x008..0x014 and 0x580 hold 1, 1, 0x20, 0 and 1");
    for (uint32_t i = 0; i < VMAPPLE_CFG_COMPILED_MAX_CPUS; i++) {
        uint32_t id = mmio_read32(at(CFG_CPU_IDS + 4 * i));
        if (id != (i < cpus ? i : 0)) {
            bad_ids++;
        }
    }
    fw_check("cpu-ids", bad_ids == 0, "cpu_ids[i] = i for the %u CPUs, 0 in the other %u slots",
             cpus, VMAPPLE_CFG_COMPILED_MAX_CPUS - cpus);
    strings = cfg_string(CFG_SERIAL, serial) && cfg_string(CFG_UNK8, unk8) &&
              cfg_string(CFG_MODEL, model) && cfg_string(CFG_SOC_NAME, soc);
    fw_check("strings",
             strings && !strcmp(serial, "1234") && !strcmp(unk8, "D/A") &&
                 !strcmp(model, "VM0001") && !strcmp(soc, "Apple M1 (Virtual)"),
             "serial \"%s\", \"%s\", model \"%s\", SoC \"%s\"", serial, unk8, model, soc);

    /* RAM semantics: any size, writes kept, neighbours untouched. */
    mmio_write64(at(CFG_SCRATCH), 0x1122334455667788ull);
    mmio_write8(at(CFG_SCRATCH + 9), 0x99);
    mmio_write16(at(CFG_SCRATCH + 10), 0xaabb);
    fw_check("ram-like",
             mmio_read64(at(CFG_SCRATCH)) == 0x1122334455667788ull &&
                 mmio_read32(at(CFG_SCRATCH + 8)) == 0xaabb9900u &&
                 mmio_read8(at(CFG_SCRATCH + 3)) == 0x55 && mmio_read32(at(CFG_SCRATCH + 12)) == 0,
             "the scratch area keeps 8-, 2- and 1-byte writes and reads back at any size");
}

/*
 * Before the machine reset: change what reset must restore, and see the
 * changes took, or the check after the reset proves nothing.
 */
void check_cfg_before_reset(void)
{
    uint64_t ecid;
    uint32_t scratch;

    mmio_write64(at(CFG_ECID), ~fw_params()->ecid);
    mmio_write32(at(CFG_SCRATCH + 0x40), 0xdeadbeef);
    ecid = mmio_read64(at(CFG_ECID));
    scratch = mmio_read32(at(CFG_SCRATCH + 0x40));
    fw_check("pre-reset", ecid == ~fw_params()->ecid && scratch == 0xdeadbeef,
             "before SYSTEM_RESET: ECID overwritten with 0x%016lx (wrote 0x%016lx), scratch 0x%x "
             "(wrote 0xdeadbeef)",
             ecid, ~fw_params()->ecid, scratch);
}

void check_cfg_after_reset(void)
{
    fw_check("reset",
             mmio_read64(at(CFG_ECID)) == fw_params()->ecid &&
                 mmio_read32(at(CFG_SCRATCH + 0x40)) == 0,
             "SYSTEM_RESET restored the ECID the guest overwrote and cleared the scratch area");
}
