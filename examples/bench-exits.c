/* SPDX-License-Identifier: MIT */
/*
 * How fast a guest's MMIO exits go through the example machine: the guest
 * (fw-exits.S) loads 2^20 times from cfg (a library device behind the bus)
 * and 2^20 times from the PL011 stand-in (a host handler behind the bus).
 * The limit is the same guest on the bare accelerator, whose exit callback
 * only returns a constant: what unicorn itself costs per exit.
 *
 *   bench-exits FIRMWARE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "../tests/bench/bench.h"
#include "accel.h"
#include "machine.h"
#include "psci.h"

#define EXITS (2u << 20)

static uint64_t raw_exits;

static uint64_t raw_read(void *opaque, uint64_t gpa, uint32_t size)
{
    (void)opaque;
    (void)gpa;
    (void)size;
    raw_exits++;
    return 0;
}

static void raw_write(void *opaque, uint64_t gpa, uint32_t size, uint64_t value)
{
    (void)opaque;
    (void)gpa;
    (void)size;
    (void)value;
    raw_exits++;
}

static accel_action raw_hvc(void *opaque, uint16_t imm, uint64_t x[4])
{
    (void)opaque;
    (void)imm;
    return x[0] == PSCI_SYSTEM_OFF ? ACCEL_POWER_OFF : ACCEL_CONTINUE;
}

static double raw_rate(const uint8_t *fw, size_t len)
{
    accel_exits exits = { raw_read, raw_write, raw_hvc };
    const size_t ram_size = MACHINE_MIN_RAM;
    void *fwmem = NULL, *ram = NULL;
    accel *a = NULL;
    accel_stop stop;
    char err[256];
    uint64_t t0, t1;

    /* The machine's alignment, which is what the accelerator interface asks. */
    if (posix_memalign(&fwmem, MACHINE_RAM_ALIGN, VMAPPLE_FIRMWARE_SIZE) ||
        posix_memalign(&ram, MACHINE_RAM_ALIGN, ram_size)) {
        return 0;
    }
    memset(fwmem, 0, VMAPPLE_FIRMWARE_SIZE);
    memcpy(fwmem, fw, len);
    if (accel_unicorn_ops.create(&exits, NULL, &a, err, sizeof(err)) < 0 ||
        accel_unicorn_ops.map_memory(a, VMAPPLE_FIRMWARE_BASE, fwmem, VMAPPLE_FIRMWARE_SIZE, 0, err,
                                     sizeof(err)) < 0 ||
        accel_unicorn_ops.map_memory(a, VMAPPLE_RAM_BASE, ram, ram_size, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench-exits: %s\n", err);
        return 0;
    }
    t0 = bench_now_ns();
    accel_unicorn_ops.run(a, VMAPPLE_RESET_PC, 0, &stop);
    t1 = bench_now_ns();
    accel_unicorn_ops.destroy(a);
    free(fwmem);
    free(ram);
    if (stop.reason != ACCEL_STOPPED_POWER_OFF || raw_exits != EXITS) {
        fprintf(stderr, "bench-exits: the bare run ended badly (%s, %llu exits)\n", stop.detail,
                (unsigned long long)raw_exits);
        return 0;
    }
    return (double)raw_exits / ((double)(t1 - t0) / 1e9);
}

static double machine_rate(const uint8_t *fw, size_t len)
{
    struct machine_config cfg = { 0 };
    struct machine_result res;
    struct machine *m;
    GError *err = NULL;

    cfg.accel = &accel_unicorn_ops;
    cfg.firmware = fw;
    cfg.firmware_size = len;
    cfg.ram_size = MACHINE_MIN_RAM;
    cfg.cpus = 1;
    m = machine_create(&cfg, &err);
    if (!m || machine_run(m, &res, &err) < 0) {
        fprintf(stderr, "bench-exits: %s\n", err ? err->message : "?");
        return 0;
    }
    machine_destroy(m);
    if (res.end != MACHINE_POWERED_OFF || res.mmio_exits != EXITS) {
        fprintf(stderr, "bench-exits: the machine run ended badly (%s, %llu exits)\n",
                res.stop.detail, (unsigned long long)res.mmio_exits);
        return 0;
    }
    return (double)res.mmio_exits / res.elapsed_s;
}

int main(int argc, char **argv)
{
    gchar *fw = NULL;
    gsize len = 0;
    double best_machine = 0, best_raw = 0;

    if (argc != 2 || !g_file_get_contents(argv[1], &fw, &len, NULL)) {
        fprintf(stderr, "usage: bench-exits FIRMWARE (fw-exits.bin)\n");
        return 2;
    }
    /* Best of three each: the figure of a quiet machine. */
    for (int i = 0; i < 3; i++) {
        double mr = machine_rate((const uint8_t *)fw, len);
        double rr;

        raw_exits = 0;
        rr = raw_rate((const uint8_t *)fw, len);
        if (mr <= 0 || rr <= 0) {
            g_free(fw);
            return 1;
        }
        best_machine = mr > best_machine ? mr : best_machine;
        best_raw = rr > best_raw ? rr : best_raw;
    }
    bench_report("example-mmio-exits", best_machine / 1e6, "Mexits/s", best_raw / 1e6);
    g_free(fw);
    return 0;
}
