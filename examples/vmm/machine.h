/* SPDX-License-Identifier: MIT */
/*
 * The vmapple machine of libvmapple-example: guest RAM and the firmware
 * region, the library's devices at their map addresses, the stand-ins for
 * what the library does not model (GIC distributor, PL011), the PCIe host
 * (ECAM, BARs, INTx), PSCI, and the run loop over an accelerator.
 */
#ifndef VMM_MACHINE_H
#define VMM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <glib.h>
#include <libvmapple/libvmapple.h>

#include "accel.h"
#include "selftest.h"

#define MACHINE_MIN_RAM   (64ull << 20) /* the self-test firmware's heap needs it */
#define MACHINE_RAM_ALIGN 0x4000ull     /* 16 KiB: HVF's granule, kept for all accelerators */

struct machine_config {
    const accel_ops *accel;
    const uint8_t *firmware; /* at most VMAPPLE_FIRMWARE_SIZE bytes */
    size_t firmware_size;
    /* Write the self-test parameter block at the start of RAM before each boot. */
    bool selftest;
    uint64_t selftest_flags; /* SELFTEST_FLAG_* */
    uint64_t nonce;

    uint64_t ram_size;
    uint32_t cpus;
    uint64_t ecid;
    /* The devices take their own references; release yours after machine_create(). */
    vmapple_blockdev *root;
    vmapple_blockdev *aux;
    /* Built-in AES keys 1..7 (length 0: the library's default). */
    vmapple_aes_builtin_key aes_keys[VMAPPLE_AES_BUILTIN_KEYS];

    uint64_t timeout_us; /* 0: none */
    bool trace;          /* every MMIO access to trace_out */
    FILE *trace_out;

    /* Guest console bytes (PL011 transmitter). */
    void (*console)(void *opaque, const char *buf, size_t len);
    /* Library and machine log lines (level: vmapple_log_level). */
    void (*log)(void *opaque, int level, const char *message);
    void *opaque;
};

enum machine_end {
    MACHINE_POWERED_OFF = 1, /* PSCI SYSTEM_OFF */
    MACHINE_GUEST_FAULT,     /* the CPU stopped on something it cannot run */
    MACHINE_TIMEOUT,
    MACHINE_STOPPED, /* the host stopped it */
    MACHINE_ERROR
};

struct machine_result {
    enum machine_end end;
    accel_stop stop; /* of the last run */
    unsigned resets;
    uint64_t mmio_exits;
    uint64_t hvc_calls;
    uint64_t unmapped_reads, unmapped_writes;
    double elapsed_s;
    bool touched_apple_gfx;
    uint64_t pvpanic_events; /* bits the guest wrote to pvpanic (PANICKED = 1) */
    /* apple-dma-pci after the run: what is still mapped, device and DART. */
    bool have_dma;
    uint32_t dma_live_mappings;
    uint32_t dma_backend_mappings;
    uint64_t dma_doorbells;
};

struct machine;

/* The GError domain of the example's own errors (code 0). */
#define VMM_ERROR vmm_error_quark()
GQuark vmm_error_quark(void);

/* Build the machine. On failure returns NULL and sets *error. */
struct machine *machine_create(const struct machine_config *cfg, GError **error);
void machine_destroy(struct machine *m);

/* Run from power-on until the guest powers off or the run ends otherwise. */
int machine_run(struct machine *m, struct machine_result *res, GError **error);

/* The devices in the machine, for the summary: "cfg", "bdif", ... */
uint64_t machine_selftest_devices(const struct machine *m);

#endif /* VMM_MACHINE_H */
