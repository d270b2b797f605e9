/* SPDX-License-Identifier: MIT */
/*
 * apple-dma-pci: MAP of a 4096-entry batch through one doorbell, in ns per
 * mapping, beside the same 4096 mappings done one entry per doorbell in the
 * same run (the "limit" column), for the identity and the simulated-DART
 * backends. The ratio is batch / one-per-doorbell: below 0.2 means the batch
 * is more than 5x faster per mapping. Only library work is timed (register
 * writes and the doorbells they trigger); the command pages and request
 * arrays are written beforehand, as a guest writes them in its own memory.
 */
#include <stdlib.h>
#include <string.h>

#include "adp-guest.h"
#include "bench.h"
#include "mockhost.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE (64ull << 20)
#define N        4096u
#define ROUNDS   200

/* Guest layout: one-entry pages, a batch page, arrays, then the buffers. */
#define PAGES (RAM_BASE + 0x000000) /* N one-entry command pages, 32 bytes each */
#define BPAGE (RAM_BASE + 0x020000) /* the batch page */
#define REQ   (RAM_BASE + 0x040000) /* N requests */
#define RESP  (RAM_BASE + 0x080000) /* N responses */
#define UREQ  (RAM_BASE + 0x0c0000) /* N unmap requests */
#define URESP (RAM_BASE + 0x100000) /* N unmap responses */
#define BUFS  (RAM_BASE + 0x200000) /* N buffers of 4 KiB */

static void die(const char *what)
{
    fprintf(stderr, "bench-apple-dma-pci: %s\n", what);
    exit(1);
}

static void unmap_all(struct adp_guest *g)
{
    g->cmd = BPAGE;
    g->req = UREQ;
    g->resp = URESP;
    if (adp_ring(g, ADP_UNMAP, N) != ADP_OK) {
        die("unmap batch failed");
    }
}

/* ns per mapping: one batch of N per doorbell. */
static double run_batch(struct adp_guest *g)
{
    uint64_t best = UINT64_MAX;

    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0, t1;
        g->cmd = BPAGE;
        adp_put_page(g, ADP_MAP, N, REQ, RESP, 0);
        t0 = bench_now_ns();
        adp_reg_write(g, ADP_REG_CMD_GPA_LO, (uint32_t)BPAGE);
        adp_reg_write(g, ADP_REG_CMD_GPA_HI, (uint32_t)(BPAGE >> 32));
        adp_reg_write(g, ADP_REG_DOORBELL, 1);
        t1 = bench_now_ns();
        if (adp_reg_read(g, ADP_REG_STATUS) != ADP_OK) {
            die("map batch failed");
        }
        best = t1 - t0 < best ? t1 - t0 : best;
        unmap_all(g);
    }
    return (double)best / N;
}

/* ns per mapping: the same N mappings, one entry per doorbell. */
static double run_single(struct adp_guest *g)
{
    uint64_t best = UINT64_MAX;

    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0, t1;
        t0 = bench_now_ns();
        /* The same register sequence per doorbell as the batch uses. */
        for (uint32_t i = 0; i < N; i++) {
            uint64_t page = PAGES + i * 32ull;
            adp_reg_write(g, ADP_REG_CMD_GPA_LO, (uint32_t)page);
            adp_reg_write(g, ADP_REG_CMD_GPA_HI, (uint32_t)(page >> 32));
            adp_reg_write(g, ADP_REG_DOORBELL, 1);
        }
        t1 = bench_now_ns();
        if (adp_reg_read(g, ADP_REG_STATUS) != ADP_OK) {
            die("single map failed");
        }
        best = t1 - t0 < best ? t1 - t0 : best;
        unmap_all(g);
    }
    return (double)best / N;
}

static void bench_backend(const char *name, vmapple_dma_backend *dma)
{
    vmapple_apple_dma_pci_options o = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    struct adp_guest g = { 0 };
    double batch, single;
    char label[96];

    h->allow_map = true;
    o.dma = dma;
    if (vmapple_apple_dma_pci_create(mock_host_ops(), h, &o, &g.dev) != 0) {
        die(vmapple_last_error());
    }
    g.h = h;
    adp_enable(&g);
    for (uint32_t i = 0; i < N; i++) {
        /* Requests, their one-entry pages (request i, response i), and the unmaps. */
        g.req = REQ;
        adp_put_map(&g, i, BUFS + i * 0x1000ull + (i % 64) * 8, 0x1000 - (i % 64) * 8, 0);
        g.cmd = PAGES + i * 32ull;
        adp_put_page(&g, ADP_MAP, 1, REQ + i * 16ull, RESP + i * 24ull, 0);
        g.req = UREQ;
        adp_put_unmap(&g, i, BUFS + i * 0x1000ull + (i % 64) * 8, 0x1000 - (i % 64) * 8);
    }
    /* Warm up both paths once. */
    single = run_single(&g);
    batch = run_batch(&g);
    single = run_single(&g);
    snprintf(label, sizeof(label), "apple-dma-pci-map-batch4096-%s", name);
    bench_report(label, batch, "ns/mapping", single);
    printf("bench: apple-dma-pci-map-%s one-per-doorbell %.1f ns/mapping, batch %.1f ns/mapping, "
           "batch advantage %.1fx\n",
           name, single, batch, single / batch);
    vmapple_device_destroy(g.dev);
    mock_host_free(h);
}

int main(void)
{
    vmapple_dma_backend *dma;

    if (vmapple_dma_backend_create_identity(NULL, &dma) != 0) {
        die("identity");
    }
    bench_backend("identity", dma);
    vmapple_dma_backend_release(dma);
    if (vmapple_dma_backend_create_sim_dart(NULL, &dma) != 0) {
        die("sim-dart");
    }
    bench_backend("sim-dart", dma);
    vmapple_dma_backend_release(dma);
    return 0;
}
