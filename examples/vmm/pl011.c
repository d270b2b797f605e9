/* SPDX-License-Identifier: MIT */
/* PL011 stand-in: a transmitter that never fills, no receiver. */
#include <errno.h>
#include <string.h>

#include "standins.h"

enum {
    UARTDR = 0x000,
    UARTRSR = 0x004,
    UARTFR = 0x018,
    UARTILPR = 0x020,
    UARTIBRD = 0x024,
    UARTFBRD = 0x028,
    UARTLCR_H = 0x02c,
    UARTCR = 0x030,
    UARTIFLS = 0x034,
    UARTIMSC = 0x038,
    UARTRIS = 0x03c,
    UARTMIS = 0x040,
    UARTICR = 0x044,
    UARTDMACR = 0x048,
    UARTPERIPHID0 = 0xfe0,
    UARTCELLID0 = 0xff0,
};

#define FR_RXFE (1u << 4)
#define FR_TXFE (1u << 7)

/* Identification registers of a PL011 r1p5. */
static const uint8_t pl011_id[8] = { 0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };

void pl011_init(struct pl011 *u, void (*output)(void *, const char *, size_t), void *opaque)
{
    memset(u, 0, sizeof(*u));
    u->output = output;
    u->opaque = opaque;
    pl011_reset(u);
}

void pl011_reset(struct pl011 *u)
{
    u->cr = 0x300; /* TXE | RXE, as after reset */
    u->lcr_h = 0;
    u->ibrd = 0;
    u->fbrd = 0;
    u->ifls = 0x12;
    u->imsc = 0;
    u->dmacr = 0;
}

int pl011_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value)
{
    struct pl011 *u = opaque;
    (void)size;

    switch (offset) {
    case UARTDR:
    case UARTRSR:
    case UARTRIS:
    case UARTMIS:
    case UARTILPR:
        *value = 0;
        break;
    case UARTFR:
        *value = FR_TXFE | FR_RXFE;
        break;
    case UARTIBRD:
        *value = u->ibrd;
        break;
    case UARTFBRD:
        *value = u->fbrd;
        break;
    case UARTLCR_H:
        *value = u->lcr_h;
        break;
    case UARTCR:
        *value = u->cr;
        break;
    case UARTIFLS:
        *value = u->ifls;
        break;
    case UARTIMSC:
        *value = u->imsc;
        break;
    case UARTDMACR:
        *value = u->dmacr;
        break;
    default:
        if (offset >= UARTPERIPHID0 && offset < UARTPERIPHID0 + 0x20 && !(offset & 3)) {
            *value = pl011_id[(offset - UARTPERIPHID0) / 4];
        } else {
            *value = 0;
        }
        break;
    }
    return 0;
}

int pl011_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value)
{
    struct pl011 *u = opaque;
    (void)size;

    switch (offset) {
    case UARTDR: {
        char c = (char)(value & 0xff);
        if (u->output) {
            u->output(u->opaque, &c, 1);
        }
        break;
    }
    case UARTIBRD:
        u->ibrd = (uint32_t)value & 0xffff;
        break;
    case UARTFBRD:
        u->fbrd = (uint32_t)value & 0x3f;
        break;
    case UARTLCR_H:
        u->lcr_h = (uint32_t)value & 0xff;
        break;
    case UARTCR:
        u->cr = (uint32_t)value & 0xffff;
        break;
    case UARTIFLS:
        u->ifls = (uint32_t)value & 0x3f;
        break;
    case UARTIMSC:
        u->imsc = (uint32_t)value & 0x7ff;
        break;
    case UARTDMACR:
        u->dmacr = (uint32_t)value & 7;
        break;
    default:
        break; /* RSR/ECR, ICR and read-only registers: nothing to do */
    }
    return 0;
}

const char *pl011_reg_name(uint64_t offset)
{
    switch (offset) {
    case UARTDR:
        return "UARTDR";
    case UARTRSR:
        return "UARTRSR";
    case UARTFR:
        return "UARTFR";
    case UARTILPR:
        return "UARTILPR";
    case UARTIBRD:
        return "UARTIBRD";
    case UARTFBRD:
        return "UARTFBRD";
    case UARTLCR_H:
        return "UARTLCR_H";
    case UARTCR:
        return "UARTCR";
    case UARTIFLS:
        return "UARTIFLS";
    case UARTIMSC:
        return "UARTIMSC";
    case UARTRIS:
        return "UARTRIS";
    case UARTMIS:
        return "UARTMIS";
    case UARTICR:
        return "UARTICR";
    case UARTDMACR:
        return "UARTDMACR";
    default:
        if (offset >= UARTPERIPHID0 && offset < UARTCELLID0) {
            return "UARTPeriphID";
        }
        if (offset >= UARTCELLID0 && offset < UARTCELLID0 + 0x10) {
            return "UARTPCellID";
        }
        return NULL;
    }
}
