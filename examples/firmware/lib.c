/* SPDX-License-Identifier: MIT */
/* The firmware runtime: libc pieces, console, PSCI, allocator, checks. */
#include "fw.h"

#define UARTDR  0x000
#define UARTFR  0x018
#define FR_TXFF (1u << 5)

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--) {
        *p++ = (uint8_t)c;
    }
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--) {
        *dp++ = *sp++;
    }
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp) {
        while (n--) {
            *dp++ = *sp++;
        }
    } else {
        while (n--) {
            dp[n] = sp[n];
        }
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) {
        n++;
    }
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (uint8_t)*a - (uint8_t)*b;
}

void fw_putc(char c)
{
    while (mmio_read32(FW_UART_BASE + UARTFR) & FR_TXFF) {
    }
    mmio_write32(FW_UART_BASE + UARTDR, (uint8_t)c);
}

void fw_puts(const char *s)
{
    while (*s) {
        if (*s == '\n') {
            fw_putc('\r');
        }
        fw_putc(*s++);
    }
}

struct out {
    char *buf;
    size_t len, pos;
};

static void out_c(struct out *o, char c)
{
    if (o->pos + 1 < o->len) {
        o->buf[o->pos] = c;
    }
    o->pos++;
}

static void out_num(struct out *o, uint64_t v, unsigned base, bool neg, int width, char pad,
                    bool upper)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (neg) {
        if (pad == '0') {
            out_c(o, '-');
        } else {
            tmp[n++] = '-';
        }
        width--;
    }
    for (int i = n; i < width; i++) {
        out_c(o, pad);
    }
    while (n) {
        out_c(o, tmp[--n]);
    }
}

int fw_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    struct out o = { buf, len, 0 };

    for (; *fmt; fmt++) {
        int width = 0, lng = 0;
        char pad = ' ';
        bool left = false;

        if (*fmt != '%') {
            out_c(&o, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '-') {
            left = true;
            fmt++;
        }
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        while (*fmt == 'l' || *fmt == 'z') {
            lng++;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_num(&o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0, width, pad, false);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out_num(&o, v, *fmt == 'u' ? 10 : 16, false, width, pad, *fmt == 'X');
            break;
        }
        case 'p':
            out_c(&o, '0');
            out_c(&o, 'x');
            out_num(&o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, 0, ' ', false);
            break;
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n;
            if (!s) {
                s = "(null)";
            }
            n = strlen(s);
            if (!left) {
                for (int i = (int)n; i < width; i++) {
                    out_c(&o, ' ');
                }
            }
            while (*s) {
                out_c(&o, *s++);
            }
            if (left) {
                for (int i = (int)n; i < width; i++) {
                    out_c(&o, ' ');
                }
            }
            break;
        }
        case '%':
            out_c(&o, '%');
            break;
        default:
            out_c(&o, '?');
            if (!*fmt) {
                fmt--;
            }
            break;
        }
    }
    if (len) {
        buf[o.pos < len ? o.pos : len - 1] = 0;
    }
    return (int)o.pos;
}

int fw_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = fw_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

void fw_printf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    fw_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fw_puts(buf);
}

void fw_hex(char *buf, size_t len, const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    size_t o = 0;

    for (size_t i = 0; i < n && o + 2 < len; i++) {
        buf[o++] = digits[p[i] >> 4];
        buf[o++] = digits[p[i] & 15];
    }
    if (len) {
        buf[o] = 0;
    }
}

int64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;

    /* SMCCC 1.0 leaves x4..x17 unpredictable across the call. */
    __asm__ volatile("hvc #0"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
                     :
                     : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15",
                       "x16", "x17", "memory");
    return (int64_t)x0;
}

void fw_power_off(void)
{
    psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
    fw_puts("@@ error SYSTEM_OFF returned\n");
    for (;;) {
        __asm__ volatile("wfi");
    }
}

const struct selftest_params *fw_params(void)
{
    const struct selftest_params *p = (const struct selftest_params *)SELFTEST_PARAMS_GPA;

    if (p->magic != SELFTEST_PARAMS_MAGIC || p->version != SELFTEST_VERSION ||
        p->size != sizeof(*p)) {
        return NULL;
    }
    return p;
}

bool fw_has(uint64_t device)
{
    const struct selftest_params *p = fw_params();
    return p && (p->devices & device);
}

extern char __heap_start[];
static uint64_t heap_next;

void *fw_alloc(size_t size, size_t align)
{
    const struct selftest_params *p = fw_params();
    uint64_t end = VMAPPLE_RAM_BASE + (p ? p->ram_size : 0x4000000ull);
    uint64_t at;

    if (!heap_next) {
        heap_next = (uint64_t)(uintptr_t)__heap_start;
    }
    at = (heap_next + align - 1) & ~(uint64_t)(align - 1);
    if (at > end || size > end - at) {
        return NULL;
    }
    heap_next = at + size;
    return (void *)(uintptr_t)at;
}

uint64_t fw_gpa(const void *p)
{
    return (uint64_t)(uintptr_t)p; /* MMU off: virtual = physical */
}

static const char *current_device = "boot";

/*
 * Outside .bss, which start.S clears on every boot, in RAM, which a reset
 * keeps: the host counts the checks of both boots against "@@ end".
 */
static struct {
    unsigned passed, failed;
    char first_failure[96];
} tally __attribute__((section(".noinit")));

void fw_checks_clear(void)
{
    memset(&tally, 0, sizeof(tally));
}

void fw_check_begin(const char *device)
{
    current_device = device;
}

bool fw_check(const char *check, bool ok, const char *fmt, ...)
{
    char detail[200];
    va_list ap;

    va_start(ap, fmt);
    fw_vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    fw_printf("@@ check %s %s %s %s\n", current_device, check, ok ? "pass" : "FAIL", detail);
    if (ok) {
        tally.passed++;
    } else {
        if (!tally.failed) {
            fw_snprintf(tally.first_failure, sizeof(tally.first_failure), "%s %s", current_device,
                        check);
        }
        tally.failed++;
    }
    return ok;
}

void fw_skip(const char *device, const char *why)
{
    fw_printf("@@ skip %s %s\n", device, why);
}

void fw_note(const char *fmt, ...)
{
    char buf[200];
    va_list ap;

    va_start(ap, fmt);
    fw_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fw_printf("   %s\n", buf);
}

unsigned fw_checks_failed(void)
{
    return tally.failed;
}

unsigned fw_checks_passed(void)
{
    return tally.passed;
}

const char *fw_first_failure(void)
{
    return tally.first_failure;
}

uint64_t fw_pattern_mismatch(uint64_t seed, uint64_t off, const uint8_t *buf, uint64_t len,
                             uint8_t *got, uint8_t *want)
{
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t w = ld_le64(buf + i), e = selftest_pattern_word(seed, (off + i) / 8);

        if (w != e) {
            /* Little-endian words: the lowest differing bit is in the first differing byte. */
            unsigned byte = (unsigned)__builtin_ctzll(w ^ e) / 8;

            *got = (uint8_t)(w >> (8 * byte));
            *want = (uint8_t)(e >> (8 * byte));
            return off + i + byte;
        }
    }
    return FW_PATTERN_OK;
}

bool fw_spi_pending(uint32_t spi)
{
    uint32_t id = spi + VMAPPLE_GIC_SPI_BASE;
    return (mmio_read32(FW_GICD_BASE + 0x200 + 4 * (id / 32)) >> (id % 32)) & 1;
}
