/* SPDX-License-Identifier: MIT */
/*
 * The self-test firmware's small runtime: MMIO accessors, the UART console,
 * PSCI calls, a bump allocator for DMA buffers in RAM and the check API
 * every device module reports through.
 */
#ifndef FW_H
#define FW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvmapple/platform.h>

#include "psci.h"
#include "selftest.h"

#define FW_VERSION_STRING "selftest-1"

/*
 * The vmapple map (spec/README.md) where the public headers name no macro:
 * the host's regions, and the AES engine's windows and SPI (only in the
 * library's region table, which the firmware cannot call).
 */
#define FW_GICD_BASE     0x10000000ull
#define FW_UART_BASE     0x20010000ull
#define FW_AES1_BASE     0x30220000ull
#define FW_AES2_BASE     0x30230000ull
#define FW_ECAM_BASE     0x40000000ull
#define FW_PCI_MMIO_BASE 0x50000000ull
#define FW_PCI_MMIO_SIZE 0x1fff0000ull
#define FW_SPI_AES       0x12u

/* Single, exactly sized accesses: the compiler must not merge or split them. */
static inline uint8_t mmio_read8(uint64_t a)
{
    uint8_t v;
    __asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline uint16_t mmio_read16(uint64_t a)
{
    uint16_t v;
    __asm__ volatile("ldrh %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline uint32_t mmio_read32(uint64_t a)
{
    uint32_t v;
    __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline uint64_t mmio_read64(uint64_t a)
{
    uint64_t v;
    __asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory");
    return v;
}
static inline void mmio_write8(uint64_t a, uint8_t v)
{
    __asm__ volatile("strb %w0, [%1]" : : "r"(v), "r"(a) : "memory");
}
static inline void mmio_write16(uint64_t a, uint16_t v)
{
    __asm__ volatile("strh %w0, [%1]" : : "r"(v), "r"(a) : "memory");
}
static inline void mmio_write32(uint64_t a, uint32_t v)
{
    __asm__ volatile("str %w0, [%1]" : : "r"(v), "r"(a) : "memory");
}
static inline void mmio_write64(uint64_t a, uint64_t v)
{
    __asm__ volatile("str %0, [%1]" : : "r"(v), "r"(a) : "memory");
}
static inline void fw_barrier(void)
{
    __asm__ volatile("dsb sy" : : : "memory");
}

/* Little-endian loads and stores in RAM buffers (the CPU is little-endian). */
static inline uint32_t ld_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t ld_le64(const void *p)
{
    return ld_le32(p) | (uint64_t)ld_le32((const uint8_t *)p + 4) << 32;
}
static inline void st_le32(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline void st_le64(void *p, uint64_t v)
{
    st_le32(p, (uint32_t)v);
    st_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* libc pieces (lib.c); gcc may call the first four itself. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* Console (PL011). */
void fw_putc(char c);
void fw_puts(const char *s);
int fw_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int fw_snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A hex dump of n bytes into buf ("00112233..."), truncated to fit. */
void fw_hex(char *buf, size_t len, const void *data, size_t n);

/* PSCI over HVC (SMCCC); the ids are in psci.h. */
int64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
void fw_power_off(void) __attribute__((noreturn));

/* The host's parameter block (NULL when absent or invalid). */
const struct selftest_params *fw_params(void);
bool fw_has(uint64_t device);

/* DMA buffers in RAM above the firmware's own data; aligned, never freed. */
void *fw_alloc(size_t size, size_t align);
uint64_t fw_gpa(const void *p);

/*
 * Checks. A module calls fw_check_begin() with its device name, then one
 * fw_check() per property; each prints one report line. A failure is
 * remembered: at the end the firmware raises pvpanic and reports the first
 * failure again as "@@ panic".
 */
void fw_check_begin(const char *device);
bool fw_check(const char *check, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fw_skip(const char *device, const char *why);
void fw_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned fw_checks_failed(void);
unsigned fw_checks_passed(void);
/* "<device> <check>" of the first failed check, "" when none failed. */
const char *fw_first_failure(void);
/*
 * Forget every check: the first boot's start. The tally survives the
 * SYSTEM_RESET round trip, so checks made before the reset count too.
 */
void fw_checks_clear(void);

/*
 * The byte offset in the volume of the first byte of buf (len bytes read
 * from volume offset off; both multiples of 8) that is not the pattern of
 * seed, or FW_PATTERN_OK; *got and *want receive the byte read there and
 * the byte the image was written with.
 */
#define FW_PATTERN_OK UINT64_MAX
uint64_t fw_pattern_mismatch(uint64_t seed, uint64_t off, const uint8_t *buf, uint64_t len,
                             uint8_t *got, uint8_t *want);

/* The GIC stand-in's view of an SPI (GICD_ISPENDR). */
bool fw_spi_pending(uint32_t spi);

/* PCI (check-pci.c): bus 0 as enumerated, BARs assigned, decoding on. */
struct fw_pci_fn {
    uint8_t slot;
    uint8_t header_type;
    uint8_t pin;
    bool bar_failed;
    uint16_t vendor, device;
    uint32_t class_rev; /* class code << 8 | revision */
    uint64_t bar[6];
    uint64_t bar_size[6];
};
void fw_pci_enumerate(void);
const struct fw_pci_fn *fw_pci_slot(uint32_t slot);
uint32_t fw_pci_read32(uint32_t slot, uint32_t reg);
uint16_t fw_pci_read16(uint32_t slot, uint32_t reg);
uint8_t fw_pci_read8(uint32_t slot, uint32_t reg);
void fw_pci_write32(uint32_t slot, uint32_t reg, uint32_t v);
void fw_pci_write16(uint32_t slot, uint32_t reg, uint16_t v);

/* Device modules (check-*.c). */
void check_boot(void);
void check_gic(void);
void check_pci(void);
void check_cfg(void);
void check_cfg_before_reset(void);
void check_cfg_after_reset(void);
void check_bdif(void);
void check_pvpanic(void);
void check_virtio_blk_root(void);
void check_dma_pci(void);
void check_dma_pci_before_reset(void);
void check_dma_pci_after_reset(void);
void check_virtio_blk_aux(void);
void check_aes(void);
void check_aes_before_reset(void);
void check_aes_after_reset(void);

#endif /* FW_H */
