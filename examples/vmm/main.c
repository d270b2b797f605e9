/* SPDX-License-Identifier: MIT */
/*
 * libvmapple-example: the reference VMM of libvmapple.
 *
 *   libvmapple-example demo      the built-in self-test firmware on fresh images
 *   libvmapple-example run ...   a firmware of yours on images of yours
 *   libvmapple-example images    write self-test images
 *   libvmapple-example pci ...   host PCI functions (list, show) through libpciaccess
 *
 * Exit status: 0 when the guest did what was asked (demo: every check
 * passed), 1 when it did not, 2 for a usage or configuration error found
 * before the CPU started.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libvmapple/libvmapple.h>

#include "accel.h"
#include "images.h"
#include "machine-id.h"
#include "machine.h"
#include "pci-cmd.h"
#include "report.h"
#include "selftest.h"

#if HAVE_SELFTEST_FIRMWARE
extern const uint8_t selftest_firmware[];
extern const size_t selftest_firmware_size;
#endif

#define PROG "libvmapple-example"

#define EXIT_GUEST_FAILED 1
#define EXIT_USAGE        2

#define DEMO_ROOT_BYTES (8ull << 20)
/* The smallest image `images` writes (see selftest.h). */
#define MIN_IMAGE      (SELFTEST_MIN_IMAGE_SECTORS * SELFTEST_SECTOR)
#define DEMO_AUX_BYTES (4ull << 20)
#define DEFAULT_RAM    (256ull << 20)

/* ---- options ---- */

static gchar *opt_firmware, *opt_aux, *opt_root, *opt_ecid, *opt_machine_id, *opt_ram, *opt_keep,
    *opt_out;
static gint opt_cpus = 1;
static gdouble opt_timeout = -1;
static gboolean opt_trace, opt_verbose, opt_aux_skip_header, opt_aux_ro, opt_root_ro, opt_no_reset,
    opt_vz_header;
static gchar *opt_root_size, *opt_aux_size;
static gchar **opt_aes_keys;

static const GOptionEntry machine_entries[] = {
    { "ram", 0, 0, G_OPTION_ARG_STRING, &opt_ram,
      "Guest RAM, a multiple of 16 KiB (e.g. 256M, 4G; default 256M)", "SIZE" },
    { "cpus", 0, 0, G_OPTION_ARG_INT, &opt_cpus, "CPUs the cfg region announces (1..32; default 1)",
      "N" },
    { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_timeout,
      "Stop the guest after SECONDS (0: never; default 120 for demo, 0 for run)", "SECONDS" },
    { "aes-key", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_aes_keys,
      "The AES engine's built-in key N (1..7): 32, 48 or 64 hex digits (repeatable)", "N=HEX" },
    { "trace", 0, 0, G_OPTION_ARG_NONE, &opt_trace,
      "Print every guest MMIO access with device and register names", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Show the library's info messages",
      NULL },
    { NULL }
};

static const GOptionEntry run_entries[] = {
    { "firmware", 0, 0, G_OPTION_ARG_FILENAME, &opt_firmware,
      "Firmware image loaded at 0x100000 (at most 1 MiB)", "FILE" },
    { "aux", 0, 0, G_OPTION_ARG_FILENAME, &opt_aux, "Aux volume image (VZ header trimmed)",
      "FILE" },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &opt_root, "Root volume image", "FILE" },
    { "ecid", 0, 0, G_OPTION_ARG_STRING, &opt_ecid, "Machine ECID (decimal or 0x hex)", "N" },
    { "machine-id", 0, 0, G_OPTION_ARG_FILENAME, &opt_machine_id,
      "Take the ECID from a VZ machine identifier (binary or XML plist) or a macosvm/Tart JSON",
      "FILE" },
    { "aux-skip-header", 0, 0, G_OPTION_ARG_NONE, &opt_aux_skip_header,
      "The aux image still has VZ's 16 KiB header: skip it", NULL },
    { "aux-read-only", 0, 0, G_OPTION_ARG_NONE, &opt_aux_ro, "Open the aux image read-only", NULL },
    { "root-read-only", 0, 0, G_OPTION_ARG_NONE, &opt_root_ro, "Open the root image read-only",
      NULL },
    { NULL }
};

static const GOptionEntry demo_entries[] = {
    { "keep", 0, 0, G_OPTION_ARG_FILENAME, &opt_keep,
      "Write the fresh images into DIR and keep them (default: a temporary directory)", "DIR" },
    { "no-reset", 0, 0, G_OPTION_ARG_NONE, &opt_no_reset, "Skip the PSCI SYSTEM_RESET round trip",
      NULL },
    { NULL }
};

static const GOptionEntry images_entries[] = {
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &opt_out, "Directory for root.img and aux.img", "DIR" },
    { "root-size", 0, 0, G_OPTION_ARG_STRING, &opt_root_size, "Root image size (default 8M)",
      "SIZE" },
    { "aux-size", 0, 0, G_OPTION_ARG_STRING, &opt_aux_size, "Aux image size (default 4M)", "SIZE" },
    { "vz-header", 0, 0, G_OPTION_ARG_NONE, &opt_vz_header,
      "Put a 16 KiB header in front of aux.img, like an untrimmed VZ aux file", NULL },
    { NULL }
};

static void fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_USAGE);
}

/* "256M", "4G", "65536", "1.5G" (suffixes K, M, G, T: powers of 1024). */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v;
    double mult = 1;

    if (!s || !*s) {
        return false;
    }
    errno = 0;
    v = g_ascii_strtod(s, &end);
    if (errno || end == s || v < 0) {
        return false;
    }
    switch (g_ascii_toupper(*end)) {
    case 0:
        break;
    case 'K':
        mult = 1024.0;
        break;
    case 'M':
        mult = 1024.0 * 1024;
        break;
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
    default:
        return false;
    }
    if (*end && end[1] && !(g_ascii_toupper(end[1]) == 'B' && !end[2]) &&
        !(g_ascii_toupper(end[1]) == 'I' && g_ascii_toupper(end[2]) == 'B' && !end[3])) {
        return false;
    }
    v *= mult;
    if (v >= 18446744073709551616.0 || v != (double)(uint64_t)v) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static uint64_t host_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

static uint64_t check_ram_option(const accel_ops *acc)
{
    uint64_t ram = DEFAULT_RAM, host = host_memory_bytes();
    uint64_t limit = acc->phys_limit - VMAPPLE_RAM_BASE;

    if (opt_ram && !parse_size(opt_ram, &ram)) {
        fail_usage("--ram %s: not a size (use e.g. 256M or 4G)", opt_ram);
    }
    if (ram < MACHINE_MIN_RAM) {
        fail_usage("--ram %s: at least 64M (the machine's firmware needs it)", opt_ram);
    }
    if (ram % MACHINE_RAM_ALIGN) {
        fail_usage("--ram %s: must be a multiple of 16K (the granule of Apple's hypervisor)",
                   opt_ram);
    }
    if (ram > limit) {
        fail_usage("--ram %s: RAM from 0x%llx would end beyond the %s CPU's %" PRIu64
                   " GiB physical address space; at most %" PRIu64 " GiB",
                   opt_ram, (unsigned long long)VMAPPLE_RAM_BASE, acc->name, acc->phys_limit >> 30,
                   limit >> 30);
    }
    if (host && ram > host) {
        fail_usage("--ram %s: more than this host's %.1f GiB of memory", opt_ram,
                   (double)host / (1u << 30));
    }
    return ram;
}

static void check_cpus_option(void)
{
    if (opt_cpus < 1 || opt_cpus > (gint)VMAPPLE_MAX_CPUS) {
        fail_usage("--cpus %d: between 1 and %u", opt_cpus, VMAPPLE_MAX_CPUS);
    }
}

static double timeout_option(double def)
{
    if (opt_timeout < 0) {
        return def;
    }
    if (opt_timeout > 1e7) {
        fail_usage("--timeout %g: at most 10000000 seconds", opt_timeout);
    }
    return opt_timeout;
}

static void parse_aes_keys(vmapple_aes_builtin_key keys[VMAPPLE_AES_BUILTIN_KEYS])
{
    memset(keys, 0, sizeof(keys[0]) * VMAPPLE_AES_BUILTIN_KEYS);
    for (gchar **k = opt_aes_keys; k && *k; k++) {
        const char *eq = strchr(*k, '=');
        const char *hex = eq ? eq + 1 : "";
        size_t n = strlen(hex);
        char *end;
        unsigned long sel;

        errno = 0;
        sel = strtoul(*k, &end, 10);
        if (!eq || end != eq || errno || sel < 1 || sel > VMAPPLE_AES_BUILTIN_KEYS) {
            fail_usage("--aes-key %s: give N=HEX with N from 1 to %u", *k,
                       VMAPPLE_AES_BUILTIN_KEYS);
        }
        if (n != 32 && n != 48 && n != 64) {
            fail_usage("--aes-key %s: the key is %zu hex digits; AES keys are 32, 48 or 64", *k, n);
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = g_ascii_xdigit_value(hex[i]), lo = g_ascii_xdigit_value(hex[i + 1]);
            if (hi < 0 || lo < 0) {
                fail_usage("--aes-key %s: '%.2s' is not a hex byte", *k, hex + i);
            }
            keys[sel - 1].key[i / 2] = (uint8_t)(hi << 4 | lo);
        }
        keys[sel - 1].length = (uint32_t)(n / 2);
    }
}

/* ---- output ---- */

static int log_threshold = VMAPPLE_LOG_GUEST_ERROR;

static void log_line(void *opaque, int level, const char *message)
{
    (void)opaque;
    if (level <= log_threshold) {
        fprintf(stderr, "  [%s] %s\n", vmapple_log_level_name(level), message);
    }
}

struct run_setup {
    const uint8_t *firmware;
    size_t firmware_size;
    const char *firmware_name;
    bool selftest;
    uint64_t ram;
    uint64_t ecid;
    vmapple_blockdev *root, *aux;
    /* The image files and where their volumes start, for the host's own checks. */
    const char *root_path, *aux_path;
    uint64_t root_offset, aux_offset;
    bool root_read_only, aux_read_only;
    double timeout_s;
    vmapple_aes_builtin_key aes_keys[VMAPPLE_AES_BUILTIN_KEYS];
};

struct session {
    bool selftest; /* the firmware is ours: parse its report */
    struct report report;
    /* Checks the host makes after the run (device "host"). */
    struct report_check host_checks[8];
    unsigned nr_host_checks;
    const struct run_setup *rs;
    uint64_t devices; /* SELFTEST_DEV_* of the machine */
    uint64_t nonce;
};

static void host_check(struct session *s, const char *name, bool pass, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One row of the check table, for the host's own checks and the firmware's. */
static void print_check(const struct report_check *c)
{
    printf("  %-4s %-16s %-20s %s\n", c->pass ? "ok" : "FAIL", c->device, c->name, c->detail);
}

static void host_check(struct session *s, const char *name, bool pass, const char *fmt, ...)
{
    struct report_check *c;
    va_list ap;

    if (s->nr_host_checks == G_N_ELEMENTS(s->host_checks)) {
        return;
    }
    c = &s->host_checks[s->nr_host_checks++];
    g_strlcpy(c->device, "host", sizeof(c->device));
    g_strlcpy(c->name, name, sizeof(c->name));
    c->pass = pass;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    print_check(c);
}

/*
 * What the guest wrote through virtio-blk into the scratch area of a
 * self-test image must be in the image file (read with our own pread, not
 * through the library).
 */
static void check_written(struct session *s, const char *name, const char *path, uint64_t base,
                          uint32_t kind, uint64_t nonce, bool read_only)
{
    struct selftest_image_header h;
    uint8_t buf[SELFTEST_IO_SECTORS * SELFTEST_SECTOR];
    char check[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool ok;

    /* A read-only volume must not have changed: its scratch area stays zero. */
    snprintf(check, sizeof(check), "%s-%s", name, read_only ? "untouched" : "written");
    if (fd < 0 || pread(fd, &h, sizeof(h), (off_t)base) != (ssize_t)sizeof(h) ||
        !selftest_header_valid(&h, kind)) {
        host_check(s, check, false, "%s: not a self-test image, or unreadable", path);
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    ok = pread(fd, buf, sizeof(buf), (off_t)(base + h.pattern_sectors * SELFTEST_SECTOR)) ==
         (ssize_t)sizeof(buf);
    for (uint32_t i = 0; ok && i < sizeof(buf); i += 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        ok = w == (read_only ? 0 : selftest_scratch_word(nonce, kind, i / 8));
    }
    close(fd);
    if (read_only) {
        host_check(s, check, ok, "%s (read-only): sectors %" PRIu64 "..%" PRIu64 " %s", path,
                   h.pattern_sectors, h.pattern_sectors + SELFTEST_IO_SECTORS - 1,
                   ok ? "still hold zeros" : "were WRITTEN");
    } else {
        host_check(s, check, ok, "%s: the %u sectors the guest wrote at sector %" PRIu64 " %s",
                   path, SELFTEST_IO_SECTORS, h.pattern_sectors,
                   ok ? "are in the file" : "are NOT in the file");
    }
}

/* What the host can check itself once the guest is done. */
static void host_checks(struct session *s, const struct machine_result *res)
{
    const struct run_setup *rs = s->rs;

    if ((s->devices & SELFTEST_DEV_VBLK_ROOT) && rs->root_path) {
        check_written(s, "root", rs->root_path, rs->root_offset, SELFTEST_KIND_ROOT, s->nonce,
                      rs->root_read_only);
    }
    if ((s->devices & SELFTEST_DEV_VBLK_AUX) && rs->aux_path) {
        check_written(s, "aux", rs->aux_path, rs->aux_offset, SELFTEST_KIND_AUX, s->nonce,
                      rs->aux_read_only);
    }
    if (res->have_dma) {
        host_check(s, "dma-released",
                   res->dma_live_mappings == 0 && res->dma_backend_mappings == 0 &&
                       res->dma_doorbells > 0,
                   "after %" PRIu64 " doorbells: %u live mappings in apple-dma-pci, %u in the "
                   "simulated DART",
                   res->dma_doorbells, res->dma_live_mappings, res->dma_backend_mappings);
    }
}

static void show_report_line(void *opaque, const char *line, const struct report_check *c)
{
    (void)opaque;
    if (c) {
        print_check(c);
    } else if (!strncmp(line, "@@ begin ", 9)) {
        unsigned boot = 0;
        if (sscanf(line + 9, "%u", &boot) == 1 && boot > 1) {
            printf("  -- the firmware is running again after the reset (boot %u)\n", boot);
        } else {
            printf("  -- the firmware is running (%s)\n", line + 9);
        }
    } else if (!strncmp(line, "@@ skip ", 8)) {
        printf("  skip %s\n", line + 8);
    } else if (!strncmp(line, "@@ panic ", 9)) {
        printf("  -- the firmware raises pvpanic over: %s\n", line + 9);
    } else if (!strncmp(line, "@@ end ", 7)) {
        printf("  -- the firmware is done; it asks PSCI to power off\n");
    } else {
        printf("  guest: %s\n", line);
    }
    fflush(stdout);
}

static void console_bytes(void *opaque, const char *buf, size_t len)
{
    struct session *s = opaque;

    if (s->selftest) {
        report_feed(&s->report, buf, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        /* Pass text through; keep terminal control sequences from the guest out. */
        if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) {
            fputc(c, stdout);
        }
        if (c == '\n') {
            fflush(stdout);
        }
    }
}

/* ---- firmware ---- */

static bool is_selftest_firmware(const uint8_t *fw, size_t len)
{
    return len >= SELFTEST_FW_MAGIC_OFF + 8 &&
           !memcmp(fw + SELFTEST_FW_MAGIC_OFF, SELFTEST_FW_MAGIC, 8);
}

/* A printable marker string found in the image, e.g. "iBoot-7429.61.2". */
static bool find_marker(const uint8_t *fw, size_t len, const char *needle, char *out, size_t outlen)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= len; i++) {
        if (!memcmp(fw + i, needle, n)) {
            size_t j = 0;
            while (i + j < len && j + 1 < outlen && fw[i + j] >= 0x20 && fw[i + j] < 0x7f) {
                out[j] = (char)fw[i + j];
                j++;
            }
            out[j] = 0;
            return true;
        }
    }
    return false;
}

static void warn_foreign_firmware(const char *path, const uint8_t *fw, size_t len)
{
    char marker[64];
    bool avp;

    printf("note: %s is not libvmapple's self-test firmware.\n", path);
    avp = find_marker(fw, len, "AVPBooter", marker, sizeof(marker)) ||
          find_marker(fw, len, "iBoot", marker, sizeof(marker));
    if (avp) {
        printf("note: it looks like Apple's AVPBooter (it contains \"%s\").\n", marker);
    }
    printf("note: %sa real AVPBooter needs an Apple CPU with HVF (Virtualization.framework's\n"
           "      hypervisor): it uses Apple-specific system registers and the apple-gfx\n"
           "      device, which the %s CPU model and this machine do not have, so under\n"
           "      this accelerator it stops early. The run below shows where.\n",
           avp ? "" : "if it is Apple's AVPBooter: ", accel_unicorn_ops.name);
}

/* MRS/MSR to a register in the IMPLEMENTATION DEFINED space: an Apple register, on VZ. */
static bool describe_sysreg(uint32_t insn, char *buf, size_t len)
{
    if ((insn & 0xffd00000u) != 0xd5100000u) {
        return false;
    }
    snprintf(buf, len, "%s S%u_%u_C%u_C%u_%u", (insn >> 21) & 1 ? "MRS" : "MSR",
             2 + ((insn >> 19) & 1), (insn >> 16) & 7, (insn >> 12) & 15, (insn >> 8) & 15,
             (insn >> 5) & 7);
    return true;
}

static void explain_stop(const struct machine_result *res, bool foreign)
{
    char sysreg[48];

    switch (res->end) {
    case MACHINE_POWERED_OFF:
        printf("the guest powered the machine off (PSCI SYSTEM_OFF)\n");
        return;
    case MACHINE_TIMEOUT:
        printf("the guest was stopped: %s (PC 0x%" PRIx64 ")\n", res->stop.detail, res->stop.pc);
        break;
    case MACHINE_GUEST_FAULT:
        printf("the guest stopped: %s\n", res->stop.detail);
        if (res->stop.insn_valid) {
            printf("  instruction 0x%08" PRIx32 " at PC 0x%" PRIx64 "\n", res->stop.insn,
                   res->stop.pc);
            if (describe_sysreg(res->stop.insn, sysreg, sizeof(sysreg))) {
                printf("  it is %s, a system register the emulated CPU does not have%s\n", sysreg,
                       ((res->stop.insn >> 12) & 15) == 15 || ((res->stop.insn >> 12) & 15) == 11
                           ? " (IMPLEMENTATION DEFINED space: Apple's own registers live there)"
                           : "");
            }
        }
        if (res->stop.undefined) {
            printf("  unicorn's CPU model cannot run that instruction.\n");
        }
        break;
    default:
        printf("the run ended: %s\n", res->stop.detail);
        break;
    }
    if (foreign && (res->stop.undefined || res->touched_apple_gfx)) {
        printf("a real AVPBooter needs an Apple CPU with HVF (macOS on Apple silicon, the\n"
               "hypervisor behind Virtualization.framework); it cannot boot under unicorn.\n");
    } else if (res->touched_apple_gfx) {
        printf("the guest touched apple-gfx, which only Apple's Virtualization.framework has.\n");
    }
}

static void print_stats(const struct machine_result *res)
{
    double rate = res->elapsed_s > 0 ? (double)res->mmio_exits / res->elapsed_s : 0;

    printf("  guest MMIO exits  %" PRIu64 "\n", res->mmio_exits);
    printf("  elapsed           %.3f s\n", res->elapsed_s);
    printf("  exits per second  %.0f\n", rate);
    printf("  hypercalls        %" PRIu64 " (PSCI), machine resets %u\n", res->hvc_calls,
           res->resets);
    if (res->unmapped_reads || res->unmapped_writes) {
        printf("  unmapped accesses %" PRIu64 " reads, %" PRIu64 " writes\n", res->unmapped_reads,
               res->unmapped_writes);
    }
}

/*
 * The verdict of a self-test run: every device of the machine reported, no
 * check failed, the firmware finished and powered off.
 */
static int selftest_verdict(struct session *s, const struct machine_result *res)
{
    const struct report *r = &s->report;
    const struct report_check *first = report_first_failure(r);
    GString *missing = g_string_new(NULL), *absent = g_string_new(NULL);
    bool ok = true;

    unsigned host_failed = 0;

    host_checks(s, res);
    printf("\nsummary\n");
    printf("  %-16s %-20s %s\n", "device", "check", "result");
    for (guint i = 0; i < r->checks->len + s->nr_host_checks; i++) {
        const struct report_check *c = i < r->checks->len
                                           ? &g_array_index(r->checks, struct report_check, i)
                                           : &s->host_checks[i - r->checks->len];
        printf("  %-16s %-20s %s%s%s\n", c->device, c->name, c->pass ? "pass" : "FAIL",
               c->pass ? "" : ": ", c->pass ? "" : c->detail);
        if (i >= r->checks->len && !c->pass) {
            host_failed++;
            if (!first) {
                first = c;
            }
        }
    }
    for (uint64_t bit = 1; bit <= SELFTEST_DEV_DMA_PCI; bit <<= 1) {
        const char *name = report_device_name(bit);
        if (!name) {
            continue;
        }
        if (!(s->devices & bit)) {
            g_string_append_printf(absent, " %s", name);
        } else if (!report_device_checks(r, name)) {
            g_string_append_printf(missing, " %s", name);
        }
    }
    printf("\n  checks            %u passed, %u failed\n",
           report_passed(r) + s->nr_host_checks - host_failed, report_failed(r) + host_failed);
    if (absent->len) {
        printf("  not in this machine%s\n", absent->str);
    }
    print_stats(res);
    printf("\n");

    if (res->end != MACHINE_POWERED_OFF) {
        explain_stop(res, false);
        ok = false;
    }
    if (first) {
        printf(PROG ": FAILED: %s %s: %s\n", first->device, first->name, first->detail);
        ok = false;
    }
    if (res->pvpanic_events & 1) {
        printf(PROG ": the guest raised pvpanic (PANICKED)%s%s\n", r->panic[0] ? " over " : "",
               r->panic);
        ok = false;
    }
    if (missing->len) {
        printf(PROG ": FAILED: no checks reported for:%s\n", missing->str);
        ok = false;
    }
    if (!r->checks->len) {
        printf(PROG ": FAILED: the firmware reported no checks\n");
        ok = false;
    } else if (!r->ended) {
        printf(PROG ": FAILED: the firmware did not finish its report\n");
        ok = false;
    } else if (r->end_passed != report_passed(r) || r->end_failed != report_failed(r)) {
        printf(PROG ": FAILED: the firmware counted %u passed and %u failed; the report has %u "
                    "and %u\n",
               r->end_passed, r->end_failed, report_passed(r), report_failed(r));
        ok = false;
    }
    if (r->malformed) {
        printf(PROG ": FAILED: %u malformed report lines\n", r->malformed);
        ok = false;
    }
    if (ok) {
        printf(PROG ": all %u checks passed\n", report_passed(r) + s->nr_host_checks);
    }
    g_string_free(missing, TRUE);
    g_string_free(absent, TRUE);
    return ok ? 0 : EXIT_GUEST_FAILED;
}

/* ---- running ---- */

static int run_machine(const struct run_setup *rs)
{
    struct session s = { 0 };
    struct machine_config cfg = { 0 };
    struct machine_result res;
    struct machine *m;
    GError *err = NULL;
    int status;

    s.selftest = rs->selftest;
    s.rs = rs;
    report_init(&s.report, show_report_line, &s);
    cfg.accel = &accel_unicorn_ops;
    cfg.firmware = rs->firmware;
    cfg.firmware_size = rs->firmware_size;
    cfg.selftest = rs->selftest;
    cfg.selftest_flags = opt_no_reset ? SELFTEST_FLAG_NO_RESET : 0;
    cfg.nonce = g_random_int() | (uint64_t)g_random_int() << 32;
    s.nonce = cfg.nonce;
    cfg.ram_size = rs->ram;
    cfg.cpus = (uint32_t)opt_cpus;
    cfg.ecid = rs->ecid;
    cfg.root = rs->root;
    cfg.aux = rs->aux;
    memcpy(cfg.aes_keys, rs->aes_keys, sizeof(cfg.aes_keys));
    cfg.timeout_us = (uint64_t)(rs->timeout_s * 1e6);
    cfg.trace = opt_trace;
    cfg.trace_out = stderr;
    cfg.console = console_bytes;
    cfg.log = log_line;
    cfg.opaque = &s;

    m = machine_create(&cfg, &err);
    if (!m) {
        fprintf(stderr, PROG ": cannot build the machine: %s\n", err->message);
        g_error_free(err);
        report_free(&s.report);
        return EXIT_USAGE;
    }
    printf("machine: %s; %" PRIu64 " MiB RAM, %d CPU%s, ECID 0x%016" PRIx64 "\n",
           accel_unicorn_ops.describe(), rs->ram >> 20, opt_cpus, opt_cpus > 1 ? "s" : "",
           rs->ecid);
    printf("booting %s (%zu bytes) at 0x%llx\n", rs->firmware_name, rs->firmware_size,
           (unsigned long long)VMAPPLE_RESET_PC);
    fflush(stdout);

    if (machine_run(m, &res, &err) < 0) {
        fprintf(stderr, PROG ": %s\n", err->message);
        g_error_free(err);
        machine_destroy(m);
        report_free(&s.report);
        return EXIT_GUEST_FAILED;
    }
    if (s.selftest) {
        report_flush(&s.report);
        s.devices = machine_selftest_devices(m);
        status = selftest_verdict(&s, &res);
    } else {
        fflush(stdout);
        printf("\n");
        explain_stop(&res, true);
        print_stats(&res);
        status = res.end == MACHINE_POWERED_OFF ? 0 : EXIT_GUEST_FAILED;
    }
    machine_destroy(m);
    report_free(&s.report);
    return status;
}

static bool parse_ecid(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = g_ascii_strtoull(s, &end, 0);
    return !errno && end != s && !*end && s[0] != '-';
}

static vmapple_blockdev *open_volume(const char *option, const char *path, bool read_only,
                                     uint64_t offset)
{
    vmapple_blockdev_file_options o = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev *bd = NULL;
    struct stat st;
    int ret;

    if (stat(path, &st) < 0) {
        fail_usage("%s %s: %s", option, path, g_strerror(errno));
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        fail_usage("%s %s: not a regular file or block device", option, path);
    }
    if (access(path, read_only ? R_OK : R_OK | W_OK) < 0) {
        fail_usage("%s %s: %s", option, path, g_strerror(errno));
    }
    o.flags = read_only ? VMAPPLE_BLOCKDEV_READ_ONLY : 0;
    o.offset = offset;
    ret = vmapple_blockdev_open_file(path, &o, &bd);
    if (ret < 0) {
        fail_usage("%s %s: %s (%s)", option, path, vmapple_strerror(ret), vmapple_last_error());
    }
    return bd;
}

static uint8_t *read_firmware(const char *path, size_t *len)
{
    gchar *data = NULL;
    gsize n = 0;
    GError *err = NULL;
    struct stat st;

    if (stat(path, &st) < 0) {
        fail_usage("--firmware %s: %s", path, g_strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        fail_usage("--firmware %s: not a regular file", path);
    }
    /*
     * Before reading, so that a disk image passed by mistake is not read
     * into memory first. A file that grows past the limit or empties before
     * the read is still refused, by machine_create().
     */
    if ((uint64_t)st.st_size > VMAPPLE_FIRMWARE_SIZE || st.st_size == 0) {
        fail_usage("--firmware %s: %lld bytes; the firmware region holds 1 to %llu bytes", path,
                   (long long)st.st_size, (unsigned long long)VMAPPLE_FIRMWARE_SIZE);
    }
    if (!g_file_get_contents(path, &data, &n, &err)) {
        fail_usage("--firmware %s", err->message);
    }
    *len = n;
    return (uint8_t *)data;
}

static int cmd_run(void)
{
    struct run_setup rs = { 0 };
    uint8_t *fw;
    const char *why;
    int status;

    if (!opt_firmware) {
        fail_usage("run: --firmware FILE is required");
    }
    if (!opt_aux) {
        fail_usage("run: --aux FILE is required");
    }
    if (!opt_root) {
        fail_usage("run: --root FILE is required");
    }
    if (opt_ecid && opt_machine_id) {
        fail_usage("run: give --ecid or --machine-id, not both");
    }
    check_cpus_option();
    rs.ram = check_ram_option(&accel_unicorn_ops);
    rs.timeout_s = timeout_option(0);
    parse_aes_keys(rs.aes_keys);
    fw = read_firmware(opt_firmware, &rs.firmware_size);
    rs.firmware = fw;
    rs.firmware_name = opt_firmware;
    rs.selftest = is_selftest_firmware(fw, rs.firmware_size);

    if (opt_ecid && !parse_ecid(opt_ecid, &rs.ecid)) {
        fail_usage("--ecid %s: not a 64-bit number (decimal or 0x hex)", opt_ecid);
    }
    if (opt_machine_id) {
        GError *err = NULL;
        if (!machine_id_from_file(opt_machine_id, &rs.ecid, &err)) {
            fail_usage("--machine-id %s", err->message);
        }
    }
    if (!opt_aux_skip_header && image_has_vz_header(opt_aux, &why)) {
        fail_usage("--aux %s: this looks like an untrimmed VZ aux image (%s). The firmware "
                   "expects the volume without VZ's 16 KiB header: pass --aux-skip-header to "
                   "skip it, or trim it with: dd if=%s of=aux.trimmed bs=16384 skip=1",
                   opt_aux, why, opt_aux);
    }
    rs.aux =
        open_volume("--aux", opt_aux, opt_aux_ro, opt_aux_skip_header ? IMAGE_VZ_HEADER_SIZE : 0);
    rs.root = open_volume("--root", opt_root, opt_root_ro, 0);
    rs.aux_path = opt_aux;
    rs.aux_offset = opt_aux_skip_header ? IMAGE_VZ_HEADER_SIZE : 0;
    rs.root_path = opt_root;
    rs.aux_read_only = opt_aux_ro;
    rs.root_read_only = opt_root_ro;

    if (!rs.selftest) {
        warn_foreign_firmware(opt_firmware, fw, rs.firmware_size);
    }
    if (!opt_ecid && !opt_machine_id) {
        printf("note: no --ecid or --machine-id: the cfg region says ECID 0; a VZ-provisioned "
               "guest only boots with its own machine's ECID.\n");
    }
    status = run_machine(&rs);
    vmapple_blockdev_release(rs.aux);
    vmapple_blockdev_release(rs.root);
    g_free(fw);
    return status;
}

static bool write_images(const char *dir, uint64_t root_bytes, uint64_t aux_bytes, bool vz_header,
                         char **root_path, char **aux_path)
{
    GError *err = NULL;
    uint64_t seed = g_random_int() | (uint64_t)g_random_int() << 32;

    *root_path = g_build_filename(dir, "root.img", NULL);
    *aux_path = g_build_filename(dir, "aux.img", NULL);
    if (!image_create(*root_path, SELFTEST_KIND_ROOT, root_bytes, seed, false, &err) ||
        !image_create(*aux_path, SELFTEST_KIND_AUX, aux_bytes, selftest_mix(seed), vz_header,
                      &err)) {
        fprintf(stderr, PROG ": cannot write the images: %s\n", err->message);
        g_error_free(err);
        return false;
    }
    return true;
}

static int cmd_images(void)
{
    uint64_t root = DEMO_ROOT_BYTES, aux = DEMO_AUX_BYTES;
    char *rp, *ap;

    if (!opt_out) {
        fail_usage("images: --out DIR is required");
    }
    if (opt_root_size &&
        (!parse_size(opt_root_size, &root) || root % SELFTEST_SECTOR || root < MIN_IMAGE)) {
        fail_usage("--root-size %s: a multiple of 512 bytes, at least %uK", opt_root_size,
                   MIN_IMAGE / 1024);
    }
    if (opt_aux_size &&
        (!parse_size(opt_aux_size, &aux) || aux % SELFTEST_SECTOR || aux < MIN_IMAGE)) {
        fail_usage("--aux-size %s: a multiple of 512 bytes, at least %uK", opt_aux_size,
                   MIN_IMAGE / 1024);
    }
    if (g_mkdir_with_parents(opt_out, 0755) < 0) {
        fail_usage("--out %s: %s", opt_out, g_strerror(errno));
    }
    if (!write_images(opt_out, root, aux, opt_vz_header, &rp, &ap)) {
        return EXIT_USAGE;
    }
    printf("%s\n%s\n", rp, ap);
    g_free(rp);
    g_free(ap);
    return 0;
}

static int cmd_demo(void)
{
#if HAVE_SELFTEST_FIRMWARE
    struct run_setup rs = { 0 };
    char *dir, *rp = NULL, *ap = NULL;
    GError *err = NULL;
    int status;

    check_cpus_option();
    rs.ram = check_ram_option(&accel_unicorn_ops);
    rs.timeout_s = timeout_option(120);
    parse_aes_keys(rs.aes_keys);
    if (opt_keep) {
        if (g_mkdir_with_parents(opt_keep, 0755) < 0) {
            fail_usage("--keep %s: %s", opt_keep, g_strerror(errno));
        }
        dir = g_strdup(opt_keep);
    } else {
        dir = g_dir_make_tmp(PROG "-XXXXXX", &err);
        if (!dir) {
            fprintf(stderr, PROG ": cannot make a temporary directory: %s\n", err->message);
            g_error_free(err);
            return EXIT_USAGE;
        }
    }
    printf(PROG " demo: libvmapple %s, the built-in self-test firmware\n",
           vmapple_version_string());
    printf("images: %s/root.img (%llu MiB), %s/aux.img (%llu MiB), fresh\n", dir,
           DEMO_ROOT_BYTES >> 20, dir, DEMO_AUX_BYTES >> 20);
    if (!write_images(dir, DEMO_ROOT_BYTES, DEMO_AUX_BYTES, false, &rp, &ap)) {
        if (!opt_keep) {
            g_unlink(rp);
            g_unlink(ap);
            g_rmdir(dir);
        }
        g_free(rp);
        g_free(ap);
        g_free(dir);
        return EXIT_USAGE;
    }
    rs.firmware = selftest_firmware;
    rs.firmware_size = selftest_firmware_size;
    rs.firmware_name = "the self-test firmware";
    rs.selftest = true;
    rs.ecid = g_random_int() | (uint64_t)g_random_int() << 32;
    rs.root = open_volume("root image", rp, false, 0);
    rs.aux = open_volume("aux image", ap, false, 0);
    rs.root_path = rp;
    rs.aux_path = ap;
    status = run_machine(&rs);
    vmapple_blockdev_release(rs.aux);
    vmapple_blockdev_release(rs.root);
    if (!opt_keep) {
        g_unlink(rp);
        g_unlink(ap);
        g_rmdir(dir);
    }
    g_free(rp);
    g_free(ap);
    g_free(dir);
    return status;
#else
    fprintf(stderr, PROG ": this build has no self-test firmware: aarch64-linux-gnu-gcc was "
                         "missing when it was configured. Install gcc-aarch64-linux-gnu and "
                         "reconfigure (meson setup --reconfigure).\n");
    return EXIT_USAGE;
#endif
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " COMMAND [OPTION...]\n\n"
            "The reference VMM of libvmapple: the vmapple machine on a %s CPU.\n\n"
            "Commands:\n"
            "  demo     run the built-in self-test firmware on fresh images and summarise\n"
            "  run      run a firmware on your images: --firmware F --aux A --root R\n"
            "  images   write self-test images (root.img, aux.img) into a directory\n"
            "  pci      host PCI functions, read-only: 'pci list', 'pci show BUS:DEV.FN'\n"
            "  version  print versions\n\n"
            "'" PROG " COMMAND --help' lists the options of a command.\n",
            accel_unicorn_ops.name);
}

int main(int argc, char **argv)
{
    GOptionContext *ctx;
    GError *err = NULL;
    const char *cmd;
    int status;

    setlocale(LC_ALL, "");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf(PROG " (libvmapple %s), %s\n", vmapple_version_string(),
               accel_unicorn_ops.describe());
        return 0;
    }
    if (!strcmp(cmd, "pci")) {
        return example_pci_command(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "demo") && strcmp(cmd, "run") && strcmp(cmd, "images")) {
        fprintf(stderr, PROG ": unknown command '%s'\n\n", cmd);
        usage(stderr);
        return EXIT_USAGE;
    }

    ctx = g_option_context_new(NULL);
    if (!strcmp(cmd, "demo")) {
        g_option_context_set_summary(ctx, "Run the built-in self-test firmware on freshly "
                                          "generated aux and root images and print a summary.");
        g_option_context_add_main_entries(ctx, demo_entries, NULL);
    } else if (!strcmp(cmd, "run")) {
        g_option_context_set_summary(ctx, "Run a firmware on your aux and root images.");
        g_option_context_add_main_entries(ctx, run_entries, NULL);
    } else {
        g_option_context_set_summary(ctx, "Write self-test images for 'run'.");
        g_option_context_add_main_entries(ctx, images_entries, NULL);
    }
    if (strcmp(cmd, "images")) {
        g_option_context_add_main_entries(ctx, machine_entries, NULL);
    }
    {
        char *prgname = g_strdup_printf(PROG " %s", cmd);
        g_set_prgname(prgname);
        g_free(prgname);
    }
    argv[1] = argv[0];
    argc--;
    argv++;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, PROG " %s: %s\n", cmd, err->message);
        g_error_free(err);
        g_option_context_free(ctx);
        return EXIT_USAGE;
    }
    g_option_context_free(ctx);
    if (argc > 1) {
        fail_usage("%s: unexpected argument '%s'", cmd, argv[1]);
    }
    /* The demo provokes guest errors on purpose; show them when asked. */
    if (opt_verbose) {
        log_threshold = VMAPPLE_LOG_INFO;
    } else if (!strcmp(cmd, "demo")) {
        log_threshold = VMAPPLE_LOG_WARNING;
    }

    if (!strcmp(cmd, "demo")) {
        status = cmd_demo();
    } else if (!strcmp(cmd, "run")) {
        status = cmd_run();
    } else {
        status = cmd_images();
    }
    fflush(stdout);
    return status;
}
