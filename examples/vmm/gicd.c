/* SPDX-License-Identifier: MIT */
/*
 * GICv3 distributor stand-in (ARM IHI 0069): the registers a firmware
 * touches to set up SPIs, with GICD_ISPENDR showing which lines are
 * asserted. Level-sensitive SPIs are pending while their line is high
 * (clearing them through ICPENDR has no effect while the line stays high,
 * as on a real GIC); ISPENDR and SETSPI add a software pending bit that
 * ICPENDR and CLRSPI clear. Nothing is delivered to a CPU interface.
 */
#include <stdio.h>
#include <string.h>

#include "standins.h"

enum {
    GICD_CTLR = 0x0000,
    GICD_TYPER = 0x0004,
    GICD_IIDR = 0x0008,
    GICD_TYPER2 = 0x000c,
    GICD_STATUSR = 0x0010,
    GICD_SETSPI_NSR = 0x0040,
    GICD_CLRSPI_NSR = 0x0048,
    GICD_IGROUPR = 0x0080,
    GICD_ISENABLER = 0x0100,
    GICD_ICENABLER = 0x0180,
    GICD_ISPENDR = 0x0200,
    GICD_ICPENDR = 0x0280,
    GICD_ISACTIVER = 0x0300,
    GICD_ICACTIVER = 0x0380,
    GICD_IPRIORITYR = 0x0400,
    GICD_ITARGETSR = 0x0800,
    GICD_ICFGR = 0x0c00,
    GICD_IGRPMODR = 0x0d00,
    GICD_NSACR = 0x0e00,
    GICD_SGIR = 0x0f00,
    GICD_IROUTER = 0x6000,
    GICD_PIDR2 = 0xffe8,
};

/* A bank of one bit per interrupt: offset within [base, base + GICD_NR_WORDS * 4). */
static bool in_bank(uint64_t offset, uint64_t base, uint32_t *word)
{
    if (offset >= base && offset < base + GICD_NR_WORDS * 4u && !(offset & 3)) {
        *word = (uint32_t)(offset - base) / 4u;
        return true;
    }
    return false;
}

void gicd_reset(struct gicd *g)
{
    memset(g, 0, sizeof(*g));
}

void gicd_set_spi(struct gicd *g, uint32_t spi, bool level)
{
    uint32_t id = spi + 32u;
    uint32_t bit;

    if (id >= GICD_NR_IRQS) {
        return;
    }
    bit = 1u << (id % 32u);
    if (level) {
        g->level[id / 32u] |= bit;
    } else {
        g->level[id / 32u] &= ~bit;
    }
}

int gicd_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value)
{
    struct gicd *g = opaque;
    uint32_t w;

    *value = 0;
    if (offset >= GICD_IROUTER + 32u * 8u && offset < GICD_IROUTER + GICD_NR_IRQS * 8u) {
        uint64_t v = g->router[(offset - GICD_IROUTER) / 8u];
        *value = size == 8 ? v : (offset & 4) ? v >> 32 : (uint32_t)v;
        return 0;
    }
    if (offset >= GICD_IPRIORITYR && offset < GICD_IPRIORITYR + GICD_NR_IRQS) {
        uint32_t first = (uint32_t)(offset - GICD_IPRIORITYR);
        for (uint32_t i = 0; i < size && first + i < GICD_NR_IRQS; i++) {
            *value |= (uint64_t)g->priority[first + i] << (8 * i);
        }
        return 0;
    }
    if (offset >= GICD_ICFGR && offset < GICD_ICFGR + GICD_NR_IRQS / 4u && !(offset & 3)) {
        *value = g->cfg[(offset - GICD_ICFGR) / 4u];
        return 0;
    }
    if (in_bank(offset, GICD_IGROUPR, &w)) {
        *value = g->group[w];
    } else if (in_bank(offset, GICD_ISENABLER, &w) || in_bank(offset, GICD_ICENABLER, &w)) {
        *value = g->enabled[w];
    } else if (in_bank(offset, GICD_ISPENDR, &w) || in_bank(offset, GICD_ICPENDR, &w)) {
        *value = g->level[w] | g->sw_pending[w];
    } else if (in_bank(offset, GICD_ISACTIVER, &w) || in_bank(offset, GICD_ICACTIVER, &w)) {
        *value = g->active[w];
    } else {
        switch (offset) {
        case GICD_CTLR:
            *value = g->ctlr;
            break;
        case GICD_TYPER:
            /* ITLinesNumber = 128 / 32 - 1; IDbits = 9 (10 bits of INTID); no LPIs, no MBIS. */
            *value = (GICD_NR_IRQS / 32u - 1u) | (9u << 19);
            break;
        case GICD_IIDR:
            *value = 0x0000043b; /* ProductID 0, implementer 0x43b (ARM) */
            break;
        case GICD_PIDR2:
            *value = 0x3b; /* ArchRev 3: GICv3 */
            break;
        default:
            break; /* TYPER2, STATUSR, ITARGETSR (RAZ with ARE), others: RAZ */
        }
    }
    return 0;
}

int gicd_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value)
{
    struct gicd *g = opaque;
    uint32_t w, v = (uint32_t)value;

    if (offset >= GICD_IROUTER + 32u * 8u && offset < GICD_IROUTER + GICD_NR_IRQS * 8u) {
        uint64_t *r = &g->router[(offset - GICD_IROUTER) / 8u];
        if (size == 8) {
            *r = value;
        } else if (offset & 4) {
            *r = (*r & 0xffffffffu) | (uint64_t)v << 32;
        } else {
            *r = (*r & ~0xffffffffull) | v;
        }
        return 0;
    }
    if (offset >= GICD_IPRIORITYR && offset < GICD_IPRIORITYR + GICD_NR_IRQS) {
        uint32_t first = (uint32_t)(offset - GICD_IPRIORITYR);
        for (uint32_t i = 0; i < size && first + i < GICD_NR_IRQS; i++) {
            g->priority[first + i] = (uint8_t)(value >> (8 * i));
        }
        return 0;
    }
    if (offset >= GICD_ICFGR && offset < GICD_ICFGR + GICD_NR_IRQS / 4u && !(offset & 3)) {
        uint32_t i = (uint32_t)(offset - GICD_ICFGR) / 4u;
        if (i >= 2) { /* SGI/PPI configuration belongs to the redistributor */
            g->cfg[i] = v & 0xaaaaaaaau;
        }
        return 0;
    }
    if (in_bank(offset, GICD_IGROUPR, &w)) {
        g->group[w] = w ? v : g->group[w];
    } else if (in_bank(offset, GICD_ISENABLER, &w)) {
        g->enabled[w] |= w ? v : 0;
    } else if (in_bank(offset, GICD_ICENABLER, &w)) {
        g->enabled[w] &= w ? ~v : ~0u;
    } else if (in_bank(offset, GICD_ISPENDR, &w)) {
        g->sw_pending[w] |= w ? v : 0;
    } else if (in_bank(offset, GICD_ICPENDR, &w)) {
        g->sw_pending[w] &= w ? ~v : ~0u;
    } else if (in_bank(offset, GICD_ISACTIVER, &w)) {
        g->active[w] |= w ? v : 0;
    } else if (in_bank(offset, GICD_ICACTIVER, &w)) {
        g->active[w] &= w ? ~v : ~0u;
    } else if (offset == GICD_CTLR) {
        g->ctlr = v & 0x37; /* EnableGrp0/1NS/1S, ARE_S, ARE_NS */
    } else if (offset == GICD_SETSPI_NSR || offset == GICD_CLRSPI_NSR) {
        uint32_t id = v & 0x3ff;
        if (id >= 32 && id < GICD_NR_IRQS) {
            if (offset == GICD_SETSPI_NSR) {
                g->sw_pending[id / 32u] |= 1u << (id % 32u);
            } else {
                g->sw_pending[id / 32u] &= ~(1u << (id % 32u));
            }
        }
    }
    /* Everything else (SGIR, NSACR, IGRPMODR, read-only registers) is ignored. */
    return 0;
}

bool gicd_reg_name(uint64_t offset, char *buf, size_t len)
{
    static const struct {
        uint64_t base;
        const char *name;
    } banks[] = {
        { GICD_IGROUPR, "GICD_IGROUPR" },     { GICD_ISENABLER, "GICD_ISENABLER" },
        { GICD_ICENABLER, "GICD_ICENABLER" }, { GICD_ISPENDR, "GICD_ISPENDR" },
        { GICD_ICPENDR, "GICD_ICPENDR" },     { GICD_ISACTIVER, "GICD_ISACTIVER" },
        { GICD_ICACTIVER, "GICD_ICACTIVER" },
    };
    uint32_t w;

    for (size_t i = 0; i < sizeof(banks) / sizeof(banks[0]); i++) {
        if (in_bank(offset, banks[i].base, &w)) {
            snprintf(buf, len, "%s%u", banks[i].name, w);
            return true;
        }
    }
    if (offset >= GICD_IROUTER && offset < GICD_IROUTER + GICD_NR_IRQS * 8u) {
        snprintf(buf, len, "GICD_IROUTER%u", (unsigned)((offset - GICD_IROUTER) / 8u));
    } else if (offset >= GICD_IPRIORITYR && offset < GICD_IPRIORITYR + 0x400) {
        snprintf(buf, len, "GICD_IPRIORITYR%u", (unsigned)((offset - GICD_IPRIORITYR) / 4u));
    } else if (offset >= GICD_ICFGR && offset < GICD_ICFGR + 0x100) {
        snprintf(buf, len, "GICD_ICFGR%u", (unsigned)((offset - GICD_ICFGR) / 4u));
    } else {
        const char *n = offset == GICD_CTLR         ? "GICD_CTLR"
                        : offset == GICD_TYPER      ? "GICD_TYPER"
                        : offset == GICD_IIDR       ? "GICD_IIDR"
                        : offset == GICD_TYPER2     ? "GICD_TYPER2"
                        : offset == GICD_STATUSR    ? "GICD_STATUSR"
                        : offset == GICD_SETSPI_NSR ? "GICD_SETSPI_NSR"
                        : offset == GICD_CLRSPI_NSR ? "GICD_CLRSPI_NSR"
                        : offset == GICD_SGIR       ? "GICD_SGIR"
                        : offset == GICD_PIDR2      ? "GICD_PIDR2"
                                                    : NULL;
        if (!n) {
            return false;
        }
        snprintf(buf, len, "%s", n);
    }
    return true;
}
