/* SPDX-License-Identifier: MIT */
/*
 * Minimal stand-ins for the ordinary parts of the vmapple machine that
 * libvmapple does not model (spec/README.md: "what a guest needs that this
 * library does not model"): a PL011 transmitter and a GICv3 distributor
 * whose pending registers show the interrupt lines. They are what the
 * self-test firmware needs, not general models: the UART has no receiver
 * and raises no interrupt; the distributor records lines and registers but
 * delivers nothing to the CPU (the firmware polls GICD_ISPENDR with
 * interrupts masked).
 *
 * Both plug into the bus as vmapple_bus handlers.
 */
#ifndef VMM_STANDINS_H
#define VMM_STANDINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PL011 UART (ARM DDI 0183). */
struct pl011 {
    /* Bytes the guest transmits. */
    void (*output)(void *opaque, const char *buf, size_t len);
    void *opaque;
    uint32_t cr, lcr_h, ibrd, fbrd, ifls, imsc, dmacr;
};

void pl011_init(struct pl011 *u, void (*output)(void *, const char *, size_t), void *opaque);
void pl011_reset(struct pl011 *u);
int pl011_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value);
int pl011_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value);
/* The register's name ("UARTDR"), or NULL. */
const char *pl011_reg_name(uint64_t offset);

/* GICv3 distributor: 128 interrupt IDs (SGIs/PPIs 0..31, SPIs 0..95). */
#define GICD_NR_IRQS  128u
#define GICD_NR_WORDS (GICD_NR_IRQS / 32u)

struct gicd {
    uint32_t ctlr;
    uint32_t group[GICD_NR_WORDS];
    uint32_t enabled[GICD_NR_WORDS];
    uint32_t level[GICD_NR_WORDS];      /* line levels of level-sensitive SPIs */
    uint32_t sw_pending[GICD_NR_WORDS]; /* set through ISPENDR / SETSPI */
    uint32_t active[GICD_NR_WORDS];
    uint32_t cfg[GICD_NR_IRQS / 16u];
    uint8_t priority[GICD_NR_IRQS];
    uint64_t router[GICD_NR_IRQS];
};

void gicd_reset(struct gicd *g);
/* Set the level of SPI @p spi (interrupt ID spi + 32). */
void gicd_set_spi(struct gicd *g, uint32_t spi, bool level);
int gicd_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value);
int gicd_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value);
/* Writes the register's name ("GICD_ISPENDR1") into buf; false when it has none. */
bool gicd_reg_name(uint64_t offset, char *buf, size_t len);

#endif /* VMM_STANDINS_H */
