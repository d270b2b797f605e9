/* SPDX-License-Identifier: MIT */
/*
 * The accelerator interface of libvmapple-example: what the machine needs
 * from whatever runs the guest's AArch64 code.
 *
 * It is the shape every AArch64 hypervisor interface shares (HVF on macOS,
 * KVM on Linux/arm64) and that an emulator (unicorn) can be given: host
 * memory is mapped at guest-physical addresses; the boot CPU runs from its
 * reset state at an entry PC in EL1 with the MMU off; a load or store to an
 * address that is not mapped memory becomes an MMIO exit; an HVC becomes a
 * hypercall exit; anything else the CPU cannot go on with ends the run with
 * a reason. One implementation exists (accel-unicorn.c); README.md says
 * what an HVF or KVM one would take.
 *
 * Threading: everything runs on the caller's thread; the exit callbacks run
 * inside accel_ops.run() on that thread.
 */
#ifndef VMM_ACCEL_H
#define VMM_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct accel accel;

/* What a hypercall handler tells the accelerator to do next. */
typedef enum accel_action {
    ACCEL_CONTINUE = 0, /* return to the guest after the HVC */
    ACCEL_POWER_OFF,    /* end the run: the guest asked to be powered off */
    ACCEL_RESET         /* end the run: the guest asked for a machine reset */
} accel_action;

/* Why accel_ops.run() returned. */
typedef enum accel_stop_reason {
    ACCEL_STOPPED_POWER_OFF = 1, /* a hypercall handler returned ACCEL_POWER_OFF */
    ACCEL_STOPPED_RESET,         /* a hypercall handler returned ACCEL_RESET */
    ACCEL_STOPPED_BY_HOST,       /* the engine returned with no reason from the guest */
    ACCEL_STOPPED_TIMEOUT,       /* the run's time limit passed */
    ACCEL_STOPPED_GUEST_FAULT,   /* the guest did something the CPU cannot go on from */
    ACCEL_STOPPED_ERROR          /* the accelerator itself failed */
} accel_stop_reason;

typedef struct accel_stop {
    accel_stop_reason reason;
    uint64_t pc;      /* guest PC where the run ended (0 when unknown) */
    uint32_t insn;    /* the instruction word at pc, when readable */
    bool insn_valid;  /* insn was read */
    bool undefined;   /* GUEST_FAULT: the CPU model does not implement the instruction */
    char detail[256]; /* one line for people */
} accel_stop;

/* The machine's side: called from inside accel_ops.run(). */
typedef struct accel_exits {
    /* A guest load of size 1, 2, 4 or 8 bytes at gpa, which is not memory. */
    uint64_t (*mmio_read)(void *opaque, uint64_t gpa, uint32_t size);
    /* A guest store of the low size bytes of value at gpa. */
    void (*mmio_write)(void *opaque, uint64_t gpa, uint32_t size, uint64_t value);
    /*
     * HVC #imm at EL1 (SMCCC: function id in x[0], arguments x[1..3]).
     * The handler sets the results in x[0..3]; the guest resumes after the
     * HVC with them when the handler returns ACCEL_CONTINUE.
     */
    accel_action (*hvc)(void *opaque, uint16_t imm, uint64_t x[4]);
} accel_exits;

/* Flags of accel_ops.map_memory(). */
enum {
    ACCEL_MEM_READ_ONLY = 1u << 0, /* guest stores to it are a fault */
};

typedef struct accel_ops {
    const char *name; /* "unicorn" */
    /* One line for people: engine, version, CPU model. */
    const char *(*describe)(void);

    /*
     * Create an accelerator for one VM. On failure returns a negative errno
     * and writes a message to err.
     */
    int (*create)(const accel_exits *exits, void *opaque, accel **out, char *err, size_t errlen);

    /*
     * Back [gpa, gpa + size) with host memory (kept by the caller until
     * destroy). gpa, size and host must be aligned to accel_ops.granule.
     * Everything not mapped this way is MMIO.
     */
    int (*map_memory)(accel *a, uint64_t gpa, void *host, uint64_t size, uint32_t flags, char *err,
                      size_t errlen);

    /*
     * Run the boot CPU from its reset state (EL1h, MMU and caches off,
     * interrupts masked, general registers zero) at entry_pc until it
     * stops; timeout_us 0 means no limit. Each call starts from reset again,
     * so a machine reset is: reset the devices, call run() again. Returns 0
     * and fills *stop, or a negative errno when the run could not start
     * (with stop->detail set).
     */
    int (*run)(accel *a, uint64_t entry_pc, uint64_t timeout_us, accel_stop *stop);

    void (*destroy)(accel *a);

    /* Alignment of map_memory() arguments in bytes. */
    uint64_t granule;
    /* Highest guest-physical address + 1 the CPU can reach. */
    uint64_t phys_limit;
} accel_ops;

/* The implementations compiled in. */
extern const accel_ops accel_unicorn_ops;

#endif /* VMM_ACCEL_H */
