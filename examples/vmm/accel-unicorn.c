/* SPDX-License-Identifier: MIT */
/*
 * The unicorn accelerator: the guest's AArch64 code runs on unicorn 2's
 * emulated CPU (QEMU's TCG inside).
 *
 * Facts about unicorn 2.0.1 this relies on (checked on Debian's 2.0.1):
 *
 * - The AArch64 CPU starts in EL1h with DAIF masked, and its CPU models
 *   implement EL2 and EL3 (ID_AA64PFR0_EL1 reads 0x2222). So HVC is
 *   UNDEFINED at reset: with EL3 present, SCR_EL3.HCE gates it and resets
 *   to 0. We set SCR_EL3 = NS | RES1 | HCE | RW and HCR_EL2.RW before every
 *   run, which makes HVC legal and keeps every lower EL AArch64, while the
 *   guest itself stays in EL1 as on VZ (where EL2 belongs to the host).
 * - With a UC_HOOK_INTR hook installed, unicorn does not enter the guest's
 *   exception vectors at all: it calls the hook with QEMU's exception number
 *   and carries on. For HVC (number 11) the PC already points after the
 *   instruction, so returning from the hook resumes the guest after its HVC
 *   with whatever the hook wrote into x0..x3: exactly a hypercall exit. For
 *   every other number (UNDEF 1 at the faulting instruction, SVC, SMC,
 *   aborts) there is no way to deliver the exception to the guest, so the
 *   run ends with a guest fault that names it.
 * - Address ranges mapped with uc_mmio_map() call back on every access with
 *   the offset and size, which is the MMIO exit. We cover everything that is
 *   not memory with such ranges, up to the CPU's physical address limit.
 *   Unicorn splits an 8-byte access (and each half of an STP) into two
 *   4-byte callbacks, low half first: the machine never sees size 8 from
 *   this accelerator, so a 64-bit register write arrives as two writes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "accel.h"

/* QEMU's exception numbers as unicorn passes them to UC_HOOK_INTR. */
enum {
    QEMU_EXCP_UDEF = 1,
    QEMU_EXCP_SWI = 2,
    QEMU_EXCP_PREFETCH_ABORT = 3,
    QEMU_EXCP_DATA_ABORT = 4,
    QEMU_EXCP_IRQ = 5,
    QEMU_EXCP_FIQ = 6,
    QEMU_EXCP_BKPT = 7,
    QEMU_EXCP_HVC = 11,
    QEMU_EXCP_HYP_TRAP = 12,
    QEMU_EXCP_SMC = 13,
    QEMU_EXCP_UNALIGNED = 22,
};

#define SCR_EL3_NS         (1ull << 0)
#define SCR_EL3_RES1       (3ull << 4)
#define SCR_EL3_HCE        (1ull << 8)
#define SCR_EL3_RW         (1ull << 10)
#define HCR_EL2_RW         (1ull << 31)
#define PSTATE_EL1H_MASKED 0x3c5u /* EL1h, D, A, I, F masked: the reset state */

/* 40 bits: the physical address size of the "max" CPU model (PARange 2). */
#define UNICORN_PHYS_LIMIT (1ull << 40)
#define UNICORN_GRANULE    0x4000ull /* 16 KiB, as HVF needs too */
#define MAX_MAPS           8

struct mem_map {
    uint64_t gpa;
    uint64_t size;
    void *host;
    uint32_t flags;
};

struct mmio_window {
    accel *a;
    uint64_t base;
};

struct accel {
    uc_engine *uc;
    accel_exits exits;
    void *opaque;
    struct mem_map maps[MAX_MAPS];
    unsigned nr_maps;
    struct mmio_window windows[MAX_MAPS + 1];

    /* State of the current run. */
    bool stopping;
    accel_stop_reason reason;
    accel_stop *stop;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

static int uc_to_errno(uc_err e)
{
    switch (e) {
    case UC_ERR_NOMEM:
        return -ENOMEM;
    case UC_ERR_ARG:
    case UC_ERR_MAP:
        return -EINVAL;
    default:
        return -EIO;
    }
}

static int unicorn_create(const accel_exits *exits, void *opaque, accel **out, char *err,
                          size_t errlen)
{
    accel *a;

    if (!exits || !exits->mmio_read || !exits->mmio_write || !exits->hvc || !out) {
        set_err(err, errlen, "%s", "unicorn: missing exit callbacks");
        return -EINVAL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        set_err(err, errlen, "%s", "unicorn: out of memory");
        return -ENOMEM;
    }
    a->exits = *exits;
    a->opaque = opaque;
    *out = a;
    return 0;
}

static int unicorn_map_memory(accel *a, uint64_t gpa, void *host, uint64_t size, uint32_t flags,
                              char *err, size_t errlen)
{
    if (a->nr_maps == MAX_MAPS) {
        set_err(err, errlen, "%s", "unicorn: too many memory ranges");
        return -ENOSPC;
    }
    if (!size || (gpa | size | (uintptr_t)host) & (UNICORN_GRANULE - 1) ||
        gpa >= UNICORN_PHYS_LIMIT || size > UNICORN_PHYS_LIMIT - gpa) {
        set_err(err, errlen, "%s", "unicorn: memory range not aligned to 16 KiB or beyond 1 TiB");
        return -EINVAL;
    }
    for (unsigned i = 0; i < a->nr_maps; i++) {
        const struct mem_map *m = &a->maps[i];
        if (gpa < m->gpa + m->size && m->gpa < gpa + size) {
            set_err(err, errlen, "%s", "unicorn: memory ranges overlap");
            return -EEXIST;
        }
    }
    a->maps[a->nr_maps++] = (struct mem_map){ gpa, size, host, flags };
    return 0;
}

static void end_run(accel *a, accel_stop_reason reason)
{
    if (!a->stopping) {
        a->stopping = true;
        a->reason = reason;
    }
    uc_emu_stop(a->uc);
}

static uint64_t reg_read(accel *a, int reg)
{
    uint64_t v = 0;
    uc_reg_read(a->uc, reg, &v);
    return v;
}

static bool insn_read(accel *a, uint64_t pc, uint32_t *insn)
{
    uint8_t b[4];

    if (uc_mem_read(a->uc, pc, b, sizeof(b)) != UC_ERR_OK) {
        return false;
    }
    *insn = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

/*
 * End the run on something the guest did that the CPU cannot go on from.
 * The first reason of a run is the one reported: a fault raised while the
 * engine is already stopping (a hypercall or an earlier fault asked for
 * it) is only a consequence.
 */
static void guest_fault(accel *a, uint64_t pc, bool undefined, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void guest_fault(accel *a, uint64_t pc, bool undefined, const char *fmt, ...)
{
    accel_stop *stop = a->stop;
    va_list ap;

    if (!a->stopping) {
        stop->pc = pc;
        stop->insn_valid = insn_read(a, pc, &stop->insn);
        stop->undefined = undefined;
        va_start(ap, fmt);
        vsnprintf(stop->detail, sizeof(stop->detail), fmt, ap);
        va_end(ap);
    }
    end_run(a, ACCEL_STOPPED_GUEST_FAULT);
}

static uint64_t mmio_read_cb(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    struct mmio_window *w = user;
    (void)uc;
    return w->a->exits.mmio_read(w->a->opaque, w->base + offset, size);
}

static void mmio_write_cb(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    struct mmio_window *w = user;
    (void)uc;
    w->a->exits.mmio_write(w->a->opaque, w->base + offset, size, value);
}

static const char *exception_name(uint32_t intno)
{
    switch (intno) {
    case QEMU_EXCP_UDEF:
        return "an undefined instruction";
    case QEMU_EXCP_SWI:
        return "an SVC";
    case QEMU_EXCP_PREFETCH_ABORT:
        return "a prefetch abort";
    case QEMU_EXCP_DATA_ABORT:
        return "a data abort";
    case QEMU_EXCP_IRQ:
        return "an IRQ";
    case QEMU_EXCP_FIQ:
        return "an FIQ";
    case QEMU_EXCP_BKPT:
        return "a BRK breakpoint";
    case QEMU_EXCP_HYP_TRAP:
        return "a trap to EL2";
    case QEMU_EXCP_SMC:
        return "an SMC (this machine has no EL3 firmware)";
    case QEMU_EXCP_UNALIGNED:
        return "an alignment fault";
    default:
        return "an exception";
    }
}

static void intr_cb(uc_engine *uc, uint32_t intno, void *user)
{
    accel *a = user;
    uint64_t pc = reg_read(a, UC_ARM64_REG_PC);
    (void)uc;

    if (intno == QEMU_EXCP_HVC) {
        static const int xregs[4] = { UC_ARM64_REG_X0, UC_ARM64_REG_X1, UC_ARM64_REG_X2,
                                      UC_ARM64_REG_X3 };
        uint64_t x[4];
        uint32_t insn = 0;
        uint16_t imm = 0;
        accel_action act;

        /* The PC is past the HVC already; its immediate is in bits 20:5. */
        if (insn_read(a, pc - 4, &insn)) {
            imm = (uint16_t)(insn >> 5);
        }
        for (int i = 0; i < 4; i++) {
            x[i] = reg_read(a, xregs[i]);
        }
        act = a->exits.hvc(a->opaque, imm, x);
        for (int i = 0; i < 4; i++) {
            uc_reg_write(a->uc, xregs[i], &x[i]);
        }
        switch (act) {
        case ACCEL_CONTINUE:
            return;
        case ACCEL_POWER_OFF:
            end_run(a, ACCEL_STOPPED_POWER_OFF);
            return;
        case ACCEL_RESET:
            end_run(a, ACCEL_STOPPED_RESET);
            return;
        }
        return;
    }
    guest_fault(a, pc, intno == QEMU_EXCP_UDEF,
                "the guest raised %s (exception %u) at PC 0x%" PRIx64, exception_name(intno), intno,
                pc);
}

static bool mem_invalid_cb(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
                           int64_t value, void *user)
{
    accel *a = user;
    const char *what;
    (void)uc;
    (void)value;

    switch (type) {
    case UC_MEM_FETCH_UNMAPPED:
    case UC_MEM_FETCH_PROT:
        what = "fetched an instruction from";
        break;
    case UC_MEM_WRITE_PROT:
        what = "stored to read-only memory at";
        break;
    case UC_MEM_WRITE_UNMAPPED:
        what = "stored to";
        break;
    default:
        what = "loaded from";
        break;
    }
    guest_fault(a, reg_read(a, UC_ARM64_REG_PC), false,
                "the guest %s 0x%" PRIx64 " (%d bytes), outside memory and devices", what, address,
                size);
    return false;
}

static bool insn_invalid_cb(uc_engine *uc, void *user)
{
    accel *a = user;
    uint64_t pc = reg_read(a, UC_ARM64_REG_PC);
    (void)uc;

    guest_fault(
        a, pc, true,
        "the guest executed an instruction the CPU model does not implement at PC 0x%" PRIx64, pc);
    return false;
}

static int cp_write(uc_engine *uc, uint32_t op0, uint32_t op1, uint32_t crn, uint32_t crm,
                    uint32_t op2, uint64_t val)
{
    uc_arm64_cp_reg r = { .crn = crn, .crm = crm, .op0 = op0, .op1 = op1, .op2 = op2, .val = val };
    return uc_reg_write(uc, UC_ARM64_REG_CP_REG, &r) == UC_ERR_OK ? 0 : -EIO;
}

static int map_everything(accel *a, char *detail, size_t len)
{
    struct mem_map sorted[MAX_MAPS];
    uint64_t next = 0;
    unsigned nw = 0;
    uc_err e;

    memcpy(sorted, a->maps, a->nr_maps * sizeof(sorted[0]));
    for (unsigned i = 1; i < a->nr_maps; i++) {
        for (unsigned j = i; j > 0 && sorted[j].gpa < sorted[j - 1].gpa; j--) {
            struct mem_map t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    }
    for (unsigned i = 0; i <= a->nr_maps; i++) {
        uint64_t end = i < a->nr_maps ? sorted[i].gpa : UNICORN_PHYS_LIMIT;

        if (end > next) {
            struct mmio_window *w = &a->windows[nw++];
            w->a = a;
            w->base = next;
            e = uc_mmio_map(a->uc, next, end - next, mmio_read_cb, w, mmio_write_cb, w);
            if (e != UC_ERR_OK) {
                snprintf(detail, len, "unicorn: MMIO window at 0x%" PRIx64 ": %s", next,
                         uc_strerror(e));
                return uc_to_errno(e);
            }
        }
        if (i < a->nr_maps) {
            const struct mem_map *m = &sorted[i];
            uint32_t prot = UC_PROT_READ | UC_PROT_EXEC;

            if (!(m->flags & ACCEL_MEM_READ_ONLY)) {
                prot |= UC_PROT_WRITE;
            }
            e = uc_mem_map_ptr(a->uc, m->gpa, m->size, prot, m->host);
            if (e != UC_ERR_OK) {
                snprintf(detail, len, "unicorn: memory at 0x%" PRIx64 ": %s", m->gpa,
                         uc_strerror(e));
                return uc_to_errno(e);
            }
            next = m->gpa + m->size;
        }
    }
    return 0;
}

/* A fresh engine per run is unicorn's way to a CPU reset. */
static int unicorn_setup(accel *a, uint64_t entry_pc, char *detail, size_t len)
{
    uc_hook h;
    uc_err e;
    uint64_t pstate = PSTATE_EL1H_MASKED;
    int ret;

    if (a->uc) {
        uc_close(a->uc);
        a->uc = NULL;
    }
    e = uc_open(UC_ARCH_ARM64, UC_MODE_ARM, &a->uc);
    if (e != UC_ERR_OK) {
        snprintf(detail, len, "unicorn: cannot open an AArch64 engine: %s", uc_strerror(e));
        a->uc = NULL;
        return uc_to_errno(e);
    }
    /* "max": the widest instruction set unicorn has (v8.x extensions). */
    e = uc_ctl_set_cpu_model(a->uc, UC_CPU_ARM64_MAX);
    if (e != UC_ERR_OK) {
        snprintf(detail, len, "unicorn: cannot select the max CPU model: %s", uc_strerror(e));
        return uc_to_errno(e);
    }
    ret = map_everything(a, detail, len);
    if (ret < 0) {
        return ret;
    }
    if (uc_hook_add(a->uc, &h, UC_HOOK_INTR, (void *)intr_cb, a, 1, 0) != UC_ERR_OK ||
        uc_hook_add(a->uc, &h, UC_HOOK_MEM_INVALID, (void *)mem_invalid_cb, a, 1, 0) != UC_ERR_OK ||
        uc_hook_add(a->uc, &h, UC_HOOK_INSN_INVALID, (void *)insn_invalid_cb, a, 1, 0) !=
            UC_ERR_OK) {
        snprintf(detail, len, "unicorn: cannot install hooks");
        return -EIO;
    }
    /* SCR_EL3 (op0 3, op1 6, CRn 1, CRm 1, op2 0), HCR_EL2 (3, 4, 1, 1, 0). */
    if (cp_write(a->uc, 3, 6, 1, 1, 0, SCR_EL3_NS | SCR_EL3_RES1 | SCR_EL3_HCE | SCR_EL3_RW) < 0 ||
        cp_write(a->uc, 3, 4, 1, 1, 0, HCR_EL2_RW) < 0) {
        snprintf(detail, len, "unicorn: cannot enable HVC (SCR_EL3.HCE, HCR_EL2.RW)");
        return -EIO;
    }
    if (uc_reg_write(a->uc, UC_ARM64_REG_PSTATE, &pstate) != UC_ERR_OK ||
        uc_reg_write(a->uc, UC_ARM64_REG_PC, &entry_pc) != UC_ERR_OK) {
        snprintf(detail, len, "unicorn: cannot set the reset state");
        return -EIO;
    }
    return 0;
}

static int unicorn_run(accel *a, uint64_t entry_pc, uint64_t timeout_us, accel_stop *stop)
{
    uc_err e;
    size_t timed_out = 0;
    int ret;

    memset(stop, 0, sizeof(*stop));
    a->stop = stop;
    a->stopping = false;
    ret = unicorn_setup(a, entry_pc, stop->detail, sizeof(stop->detail));
    if (ret < 0) {
        stop->reason = ACCEL_STOPPED_ERROR;
        return ret;
    }
    e = uc_emu_start(a->uc, entry_pc, UINT64_MAX, timeout_us, 0);
    if (a->stopping) {
        stop->reason = a->reason;
        if (stop->reason != ACCEL_STOPPED_GUEST_FAULT) {
            stop->pc = reg_read(a, UC_ARM64_REG_PC);
        }
        return 0;
    }
    stop->pc = reg_read(a, UC_ARM64_REG_PC);
    stop->insn_valid = insn_read(a, stop->pc, &stop->insn);
    if (e == UC_ERR_OK && uc_query(a->uc, UC_QUERY_TIMEOUT, &timed_out) == UC_ERR_OK && timed_out) {
        stop->reason = ACCEL_STOPPED_TIMEOUT;
        snprintf(stop->detail, sizeof(stop->detail), "time limit reached at PC 0x%" PRIx64,
                 stop->pc);
        return 0;
    }
    if (e == UC_ERR_INSN_INVALID || e == UC_ERR_EXCEPTION) {
        stop->reason = ACCEL_STOPPED_GUEST_FAULT;
        stop->undefined = e == UC_ERR_INSN_INVALID;
        snprintf(stop->detail, sizeof(stop->detail), "unicorn stopped at PC 0x%" PRIx64 ": %s",
                 stop->pc, uc_strerror(e));
        return 0;
    }
    stop->reason = e == UC_ERR_OK ? ACCEL_STOPPED_BY_HOST : ACCEL_STOPPED_ERROR;
    snprintf(stop->detail, sizeof(stop->detail), "unicorn stopped at PC 0x%" PRIx64 ": %s",
             stop->pc, uc_strerror(e));
    return 0;
}

static const char *unicorn_describe(void)
{
    static char text[96];
    unsigned major, minor;

    uc_version(&major, &minor);
    snprintf(text, sizeof(text), "unicorn %u.%u (QEMU TCG), AArch64 \"max\" CPU model, EL1", major,
             minor);
    return text;
}

static void unicorn_destroy(accel *a)
{
    if (!a) {
        return;
    }
    if (a->uc) {
        uc_close(a->uc);
    }
    free(a);
}

const accel_ops accel_unicorn_ops = {
    .name = "unicorn",
    .describe = unicorn_describe,
    .create = unicorn_create,
    .map_memory = unicorn_map_memory,
    .run = unicorn_run,
    .destroy = unicorn_destroy,
    .granule = UNICORN_GRANULE,
    .phys_limit = UNICORN_PHYS_LIMIT,
};
