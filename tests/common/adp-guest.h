/* SPDX-License-Identifier: MIT */
/*
 * A minimal apple-dma-pci guest driver for the tests, the fuzzer and the
 * benchmark: composes command pages and request arrays in the mock host's
 * RAM (little-endian, either entry layout), rings the doorbell and reads the
 * responses back. Uses only the public ABI.
 */
#ifndef VMAPPLE_TEST_ADP_GUEST_H
#define VMAPPLE_TEST_ADP_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <libvmapple/libvmapple.h>

#include "mockhost.h"

#define ADP_REG_VERSION     0x00
#define ADP_REG_MANAGED_BDF 0x04
#define ADP_REG_MAX_ENTRIES 0x08
#define ADP_REG_STATUS      0x0c
#define ADP_REG_CMD_GPA_LO  0x10
#define ADP_REG_CMD_GPA_HI  0x14
#define ADP_REG_DOORBELL    0x18

#define ADP_MAP   1u
#define ADP_UNMAP 2u

#define ADP_OK    0u
#define ADP_IOERR 1u
#define ADP_INVAL 3u

struct adp_guest {
    struct mock_host *h;
    vmapple_device *dev;
    uint32_t layout;
    uint64_t cmd, req, resp; /* guest-physical addresses */
};

static inline uint8_t *adp_ram(struct adp_guest *g, uint64_t gpa, uint64_t len)
{
    return (uint8_t *)mock_ram(g->h, gpa, len);
}

static inline void adp_st(uint8_t *p, unsigned bytes, uint64_t v)
{
    for (unsigned i = 0; i < bytes; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t adp_ld(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static inline uint32_t adp_map_req_size(const struct adp_guest *g)
{
    return g->layout == VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE ? 20 : 16;
}

static inline uint32_t adp_map_resp_size(const struct adp_guest *g)
{
    return g->layout == VMAPPLE_APPLE_DMA_PCI_LAYOUT_MODULE ? 28 : 24;
}

/* MAP request i of the array at g->req. */
static inline void adp_put_map(struct adp_guest *g, uint32_t i, uint64_t gpa, uint64_t len,
                               uint32_t flags)
{
    uint32_t sz = adp_map_req_size(g);
    uint8_t *p = adp_ram(g, g->req + (uint64_t)i * sz, sz);
    bool wide = sz == 20;

    adp_st(p, 8, gpa);
    adp_st(p + 8, wide ? 8 : 4, len);
    adp_st(p + (wide ? 16 : 12), 4, flags);
}

static inline void adp_put_unmap(struct adp_guest *g, uint32_t i, uint64_t id, uint64_t size)
{
    uint8_t *p = adp_ram(g, g->req + (uint64_t)i * 16, 16);

    adp_st(p, 8, id);
    adp_st(p + 8, 8, size);
}

struct adp_map_resp {
    uint64_t id, dma_addr, dma_len;
    uint32_t status;
};

static inline struct adp_map_resp adp_get_map(struct adp_guest *g, uint32_t i)
{
    uint32_t sz = adp_map_resp_size(g);
    const uint8_t *p = adp_ram(g, g->resp + (uint64_t)i * sz, sz);
    struct adp_map_resp r;
    bool wide = sz == 28;

    r.id = adp_ld(p, 8);
    r.dma_addr = adp_ld(p + 8, 8);
    r.dma_len = adp_ld(p + 16, wide ? 8 : 4);
    r.status = (uint32_t)adp_ld(p + (wide ? 24 : 20), 4);
    return r;
}

/* UNMAP response i: id, status; *reserved gets the reserved word. */
static inline uint32_t adp_get_unmap(struct adp_guest *g, uint32_t i, uint64_t *id,
                                     uint32_t *reserved)
{
    const uint8_t *p = adp_ram(g, g->resp + (uint64_t)i * 16, 16);

    *id = adp_ld(p, 8);
    if (reserved) {
        *reserved = (uint32_t)adp_ld(p + 12, 4);
    }
    return (uint32_t)adp_ld(p + 8, 4);
}

static inline uint64_t adp_reg_read(struct adp_guest *g, uint64_t off)
{
    uint64_t v = 0xdeadbeef;
    vmapple_device_read(g->dev, 0, off, 4, &v);
    return v;
}

static inline void adp_reg_write(struct adp_guest *g, uint64_t off, uint64_t v)
{
    vmapple_device_write(g->dev, 0, off, 4, v);
}

/* Turn on memory decoding and bus mastering. */
static inline void adp_enable(struct adp_guest *g)
{
    vmapple_device_pci_config_write(g->dev, 0x04, 2, 0x0006);
}

/* Write the command page at g->cmd (status field set to `seed_status`). */
static inline void adp_put_page(struct adp_guest *g, uint32_t type, uint32_t count, uint64_t req,
                                uint64_t resp, uint32_t seed_status)
{
    uint8_t *p = adp_ram(g, g->cmd, 32);

    adp_st(p, 4, type);
    adp_st(p + 4, 4, count);
    adp_st(p + 8, 4, seed_status);
    adp_st(p + 12, 4, 0);
    adp_st(p + 16, 8, req);
    adp_st(p + 24, 8, resp);
}

/* Point the device at g->cmd and ring; returns the STATUS register. */
static inline uint32_t adp_ring_page(struct adp_guest *g)
{
    adp_reg_write(g, ADP_REG_CMD_GPA_LO, (uint32_t)g->cmd);
    adp_reg_write(g, ADP_REG_CMD_GPA_HI, (uint32_t)(g->cmd >> 32));
    adp_reg_write(g, ADP_REG_DOORBELL, 1);
    return (uint32_t)adp_reg_read(g, ADP_REG_STATUS);
}

/* A whole batch with the arrays at g->req / g->resp. */
static inline uint32_t adp_ring(struct adp_guest *g, uint32_t type, uint32_t count)
{
    adp_put_page(g, type, count, g->req, g->resp, 0xffffffffu);
    return adp_ring_page(g);
}

/* The status field of the command page. */
static inline uint32_t adp_page_status(struct adp_guest *g)
{
    return (uint32_t)adp_ld(adp_ram(g, g->cmd + 8, 4), 4);
}

#endif
