/* SPDX-License-Identifier: MIT */
/* PCI function plumbing (lib/pci.c) through a test function, and the host bridge. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mockhost.h"
#include "state.h"
#include "testpci.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x10000ull

struct fixture {
    struct mock_host *h;
    vmapple_device *dev;
};

static int setup_msix(void **state, uint16_t vectors)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    assert_int_equal(testpci_create(mock_host_ops(), f->h, vectors, &f->dev), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_msix(state, 4);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vmapple_device_destroy(f->dev);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static uint32_t cfg_rd(vmapple_device *dev, uint32_t off, uint32_t size)
{
    uint32_t v = 0xdeadbeef;
    assert_int_equal(vmapple_device_pci_config_read(dev, off, size, &v), 0);
    return v;
}

static void cfg_wr(vmapple_device *dev, uint32_t off, uint32_t size, uint32_t v)
{
    assert_int_equal(vmapple_device_pci_config_write(dev, off, size, v), 0);
}

static void bar0_wr(vmapple_device *dev, uint64_t off, uint64_t v)
{
    assert_int_equal(vmapple_device_write(dev, 0, off, 8, v), 0);
}

static void test_header(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cfg_rd(f->dev, 0x00, 4), 0x56781234);
    assert_int_equal(cfg_rd(f->dev, 0x08, 4), 0x08800003);
    assert_int_equal(cfg_rd(f->dev, 0x2c, 4), 0xbbbbaaaa);
    assert_int_equal(cfg_rd(f->dev, 0x0e, 1), 0); /* header type 0 */
    assert_int_equal(cfg_rd(f->dev, 0x3d, 1), 1); /* INTA */
    assert_int_equal(cfg_rd(f->dev, 0x04, 2), 0); /* COMMAND at reset */
    assert_true(cfg_rd(f->dev, 0x06, 2) & 0x10);  /* capabilities list */
    /* Read-only fields ignore writes, writable ones keep them. */
    cfg_wr(f->dev, 0x00, 4, 0xffffffff);
    cfg_wr(f->dev, 0x08, 4, 0);
    cfg_wr(f->dev, 0x3d, 1, 3);
    assert_int_equal(cfg_rd(f->dev, 0x00, 4), 0x56781234);
    assert_int_equal(cfg_rd(f->dev, 0x08, 4), 0x08800003);
    assert_int_equal(cfg_rd(f->dev, 0x3d, 1), 1);
    cfg_wr(f->dev, 0x3c, 1, 0x2a);
    assert_int_equal(cfg_rd(f->dev, 0x3c, 1), 0x2a);
    /* COMMAND: I/O space cannot be enabled (no I/O BARs); reserved bits stay 0. */
    cfg_wr(f->dev, 0x04, 2, 0xffff);
    assert_int_equal(cfg_rd(f->dev, 0x04, 2), 0x0546);
    /* Reserved and unimplemented config space reads as 0; extended space too. */
    assert_int_equal(cfg_rd(f->dev, 0xf0, 4), 0);
    assert_int_equal(cfg_rd(f->dev, 0x100, 4), 0);
    assert_int_equal(cfg_rd(f->dev, 0xffc, 4), 0);
}

static void test_access_sizes(void **state)
{
    struct fixture *f = *state;
    uint32_t v;

    assert_int_equal(cfg_rd(f->dev, 0x01, 1), 0x12);
    assert_int_equal(cfg_rd(f->dev, 0x02, 2), 0x5678);
    /* Unaligned accesses are handled bytewise, not refused. */
    assert_int_equal(cfg_rd(f->dev, 0x01, 4), 0x00567812);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 0, 3, &v), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 0, 8, &v), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 4094, 4, &v), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 4096, 1, &v), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_write(f->dev, 4093, 4, 0), -EINVAL);
    assert_int_equal(vmapple_device_pci_config_read(f->dev, 4095, 1, &v), 0);
}

static void test_capability_list(void **state)
{
    struct fixture *f = *state;
    uint32_t p = cfg_rd(f->dev, 0x34, 1);
    int vcap = testpci_vendor_cap(f->dev);

    assert_int_equal(p, vcap);
    assert_int_equal(p & 3, 0);
    assert_int_equal(cfg_rd(f->dev, p, 1), 0x09);
    p = cfg_rd(f->dev, p + 1, 1);
    assert_int_equal(cfg_rd(f->dev, p, 1), 0x11); /* MSI-X */
    assert_int_equal(cfg_rd(f->dev, p + 2, 2) & 0x7ff, 3);
    assert_int_equal(cfg_rd(f->dev, p + 4, 4), 0x0 | 2);   /* table at BAR2 + 0 */
    assert_int_equal(cfg_rd(f->dev, p + 8, 4), 0x800 | 2); /* PBA at BAR2 + 0x800 */
    assert_int_equal(cfg_rd(f->dev, p + 1, 1), 0);         /* end of list */
    /* The vendor capability's writable dword, and its read-only header. */
    cfg_wr(f->dev, vcap + 4, 4, 0xcafef00d);
    assert_int_equal(cfg_rd(f->dev, vcap + 4, 4), 0xcafef00d);
    cfg_wr(f->dev, vcap, 2, 0);
    assert_int_equal(cfg_rd(f->dev, vcap, 1), 0x09);
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;

    cfg_wr(f->dev, 0x10, 4, 0xffffffff);
    assert_int_equal(cfg_rd(f->dev, 0x10, 4), 0xfffff000);
    /* 64-bit prefetchable BAR2/3. */
    assert_int_equal(cfg_rd(f->dev, 0x18, 4), 0xc);
    cfg_wr(f->dev, 0x18, 4, 0xffffffff);
    cfg_wr(f->dev, 0x1c, 4, 0xffffffff);
    assert_int_equal(cfg_rd(f->dev, 0x18, 4), 0xffffc00c);
    assert_int_equal(cfg_rd(f->dev, 0x1c, 4), 0xffffffff);
    /* Absent BARs read 0 and ignore writes. */
    cfg_wr(f->dev, 0x14, 4, 0xffffffff);
    cfg_wr(f->dev, 0x20, 4, 0xffffffff);
    assert_int_equal(cfg_rd(f->dev, 0x14, 4), 0);
    assert_int_equal(cfg_rd(f->dev, 0x20, 4), 0);
    /* Low bits of an address are dropped. */
    cfg_wr(f->dev, 0x10, 4, 0x50001234);
    assert_int_equal(cfg_rd(f->dev, 0x10, 4), 0x50001000);
    /* Sizing never told the host anything: memory decode was off. */
    assert_int_equal(f->h->bar_updates, 0);
}

static void test_bar_placement_reported(void **state)
{
    struct fixture *f = *state;

    cfg_wr(f->dev, 0x10, 4, 0x50001000);
    assert_int_equal(f->h->bar_updates, 0);
    cfg_wr(f->dev, 0x04, 2, 0x0002); /* memory decode on */
    assert_int_equal(f->h->bar_updates, 1);
    assert_int_equal(f->h->last_bar.region, 0);
    assert_int_equal(f->h->last_bar.address, 0x50001000);
    assert_int_equal(f->h->last_bar.size, 0x1000);
    assert_int_equal(f->h->last_bar.enabled, 1);
    /* Writing the same address again is no news. */
    cfg_wr(f->dev, 0x10, 4, 0x50001000);
    assert_int_equal(f->h->bar_updates, 1);
    /* Moving it while decoding. */
    cfg_wr(f->dev, 0x10, 4, 0x50008000);
    assert_int_equal(f->h->bar_updates, 2);
    assert_int_equal(f->h->last_bar.address, 0x50008000);
    /* Sizing while decoding: not an address. */
    cfg_wr(f->dev, 0x10, 4, 0xffffffff);
    assert_int_equal(f->h->last_bar.enabled, 0);
    cfg_wr(f->dev, 0x10, 4, 0x50008000);
    assert_int_equal(f->h->last_bar.enabled, 1);
    /* Address 0: not placed. */
    cfg_wr(f->dev, 0x10, 4, 0);
    assert_int_equal(f->h->last_bar.enabled, 0);
    cfg_wr(f->dev, 0x10, 4, 0x50008000);
    /* 64-bit BAR above 4 GiB, written in halves. */
    unsigned before = f->h->bar_updates;
    cfg_wr(f->dev, 0x1c, 4, 0x1);
    cfg_wr(f->dev, 0x18, 4, 0x00004000);
    assert_true(f->h->bar_updates > before);
    assert_int_equal(f->h->last_bar.region, 1);
    assert_int_equal(f->h->last_bar.address, 0x100004000ull);
    assert_int_equal(f->h->last_bar.size, 0x4000);
    assert_int_equal(f->h->last_bar.enabled, 1);
    /* Decode off: both BARs reported disabled. */
    before = f->h->bar_updates;
    cfg_wr(f->dev, 0x04, 2, 0);
    assert_int_equal(f->h->bar_updates, before + 2);
    assert_int_equal(f->h->last_bar.enabled, 0);
}

static void test_bus_master_gates_dma(void **state)
{
    struct fixture *f = *state;
    uint64_t v;
    uint8_t *src = mock_ram(f->h, RAM_BASE, 16);

    memset(src, 0x77, 16);
    bar0_wr(f->dev, 0x10, RAM_BASE);
    bar0_wr(f->dev, 0x18, RAM_BASE + 0x100);
    bar0_wr(f->dev, 0x20, 16);
    bar0_wr(f->dev, 0x28, 1);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0x30, 8, &v), 0);
    assert_int_equal((int64_t)v, -EPERM);
    assert_int_equal(f->h->mem_reads, 0);
    cfg_wr(f->dev, 0x04, 2, 0x0004);
    bar0_wr(f->dev, 0x28, 1);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0x30, 8, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(((uint8_t *)mock_ram(f->h, RAM_BASE + 0x100, 1))[0], 0x77);
    cfg_wr(f->dev, 0x04, 2, 0x0000);
    bar0_wr(f->dev, 0x28, 1);
    assert_int_equal(vmapple_device_read(f->dev, 0, 0x30, 8, &v), 0);
    assert_int_equal((int64_t)v, -EPERM);
}

static void test_intx(void **state)
{
    struct fixture *f = *state;

    bar0_wr(f->dev, 0x04, 1);
    assert_int_equal(f->h->irq_level[0], 1);
    assert_true(cfg_rd(f->dev, 0x06, 2) & 0x08);
    cfg_wr(f->dev, 0x04, 2, 0x0400); /* INTx disable */
    assert_int_equal(f->h->irq_level[0], 0);
    assert_true(cfg_rd(f->dev, 0x06, 2) & 0x08); /* the request still shows */
    cfg_wr(f->dev, 0x04, 2, 0x0000);
    assert_int_equal(f->h->irq_level[0], 1);
    bar0_wr(f->dev, 0x04, 0);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_false(cfg_rd(f->dev, 0x06, 2) & 0x08);
    /* STATUS.INTERRUPT is read-only to the guest. */
    cfg_wr(f->dev, 0x06, 2, 0x0008);
    assert_false(cfg_rd(f->dev, 0x06, 2) & 0x08);
}

static void test_status_w1c(void **state)
{
    struct fixture *f = *state;

    bar0_wr(f->dev, 0x0c, 0x2000 | 0x0100); /* received master abort, parity */
    assert_int_equal(cfg_rd(f->dev, 0x06, 2) & 0xf900, 0x2100);
    cfg_wr(f->dev, 0x06, 2, 0x2000);
    assert_int_equal(cfg_rd(f->dev, 0x06, 2) & 0xf900, 0x0100);
    cfg_wr(f->dev, 0x06, 2, 0x0000); /* writing 0 changes nothing */
    assert_int_equal(cfg_rd(f->dev, 0x06, 2) & 0xf900, 0x0100);
    cfg_wr(f->dev, 0x06, 2, 0xffff);
    assert_int_equal(cfg_rd(f->dev, 0x06, 2), 0x0010);
}

static void msix_program(vmapple_device *dev, uint16_t v, uint64_t addr, uint32_t data, bool mask)
{
    assert_int_equal(vmapple_device_write(dev, 1, v * 16, 8, addr), 0);
    assert_int_equal(vmapple_device_write(dev, 1, v * 16 + 8, 4, data), 0);
    assert_int_equal(vmapple_device_write(dev, 1, v * 16 + 12, 4, mask ? 1 : 0), 0);
}

static void test_msix(void **state)
{
    struct fixture *f = *state;
    uint32_t cap = cfg_rd(f->dev, cfg_rd(f->dev, 0x34, 1) + 1, 1);
    uint64_t v;

    cfg_wr(f->dev, 0x04, 2, 0x0006);
    /* Vectors start masked. */
    assert_int_equal(vmapple_device_read(f->dev, 1, 12, 4, &v), 0);
    assert_int_equal(v, 1);
    /* Not enabled: a notify does nothing, INTx still works. */
    bar0_wr(f->dev, 0x08, 1);
    assert_int_equal(f->h->nr_msi, 0);
    bar0_wr(f->dev, 0x04, 1);
    assert_int_equal(f->h->irq_level[0], 1);
    /* Enabling MSI-X silences INTx. */
    cfg_wr(f->dev, cap + 2, 2, 0x8000);
    assert_int_equal(f->h->irq_level[0], 0);
    bar0_wr(f->dev, 0x04, 0);
    /* Masked vector: pending bit, no message; unmask delivers it. */
    msix_program(f->dev, 1, 0xfee00000, 0x4041, true);
    bar0_wr(f->dev, 0x08, 1);
    assert_int_equal(f->h->nr_msi, 0);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x800, 8, &v), 0);
    assert_int_equal(v, 0x2);
    assert_int_equal(vmapple_device_write(f->dev, 1, 16 + 12, 4, 0), 0);
    assert_int_equal(f->h->nr_msi, 1);
    assert_int_equal(f->h->msi[0].address, 0xfee00000);
    assert_int_equal(f->h->msi[0].data, 0x4041);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x800, 8, &v), 0);
    assert_int_equal(v, 0);
    /* Unmasked: immediate. */
    bar0_wr(f->dev, 0x08, 1);
    assert_int_equal(f->h->nr_msi, 2);
    /* Function mask-all holds messages; clearing it delivers. */
    cfg_wr(f->dev, cap + 2, 2, 0xc000);
    bar0_wr(f->dev, 0x08, 1);
    assert_int_equal(f->h->nr_msi, 2);
    cfg_wr(f->dev, cap + 2, 2, 0x8000);
    assert_int_equal(f->h->nr_msi, 3);
    /* Bus mastering off: messages wait, then go. */
    cfg_wr(f->dev, 0x04, 2, 0x0002);
    bar0_wr(f->dev, 0x08, 1);
    assert_int_equal(f->h->nr_msi, 3);
    cfg_wr(f->dev, 0x04, 2, 0x0006);
    assert_int_equal(f->h->nr_msi, 4);
    /* Out-of-range vectors are ignored. */
    bar0_wr(f->dev, 0x08, 4);
    bar0_wr(f->dev, 0x08, 0xffff);
    assert_int_equal(f->h->nr_msi, 4);
    /* Reserved vector-control bits and the PBA are read-only. */
    assert_int_equal(vmapple_device_write(f->dev, 1, 16 + 12, 4, 0xfffffffe), 0);
    assert_int_equal(vmapple_device_read(f->dev, 1, 16 + 12, 4, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_write(f->dev, 1, 0x800, 8, ~0ull), 0);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x800, 8, &v), 0);
    assert_int_equal(v, 0);
    /* The table size field is read-only. */
    cfg_wr(f->dev, cap + 2, 2, 0x87ff);
    assert_int_equal(cfg_rd(f->dev, cap + 2, 2), 0x8003);
    /* Two masked pending vectors: each unmask delivers its own, nothing else does. */
    msix_program(f->dev, 3, 0xfee01000, 0x4043, true);
    assert_int_equal(vmapple_device_write(f->dev, 1, 16 + 12, 4, 1), 0);
    bar0_wr(f->dev, 0x08, 1);
    bar0_wr(f->dev, 0x08, 3);
    assert_int_equal(f->h->nr_msi, 4);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x800, 8, &v), 0);
    assert_int_equal(v, 0xa);
    assert_int_equal(vmapple_device_write(f->dev, 1, 3 * 16 + 12, 4, 0), 0);
    assert_int_equal(f->h->nr_msi, 5);
    assert_int_equal(f->h->msi[4].data, 0x4043);
    assert_int_equal(vmapple_device_write(f->dev, 1, 2 * 16, 8, 0xfee02000), 0);
    assert_int_equal(f->h->nr_msi, 5);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0x800, 8, &v), 0);
    assert_int_equal(v, 0x2);
    assert_int_equal(vmapple_device_write(f->dev, 1, 16 + 12, 4, 0), 0);
    assert_int_equal(f->h->nr_msi, 6);
    assert_int_equal(f->h->msi[5].data, 0x4041);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    uint32_t cap = cfg_rd(f->dev, cfg_rd(f->dev, 0x34, 1) + 1, 1);
    uint64_t v;

    cfg_wr(f->dev, 0x10, 4, 0x50000000);
    cfg_wr(f->dev, 0x04, 2, 0x0006);
    cfg_wr(f->dev, 0x3c, 1, 9);
    msix_program(f->dev, 0, 0xfee00000, 1, false);
    bar0_wr(f->dev, 0x04, 1);
    assert_int_equal(f->h->irq_level[0], 1);
    assert_int_equal(vmapple_device_reset(f->dev), 0);
    assert_int_equal(cfg_rd(f->dev, 0x04, 2), 0);
    assert_int_equal(cfg_rd(f->dev, 0x10, 4), 0);
    assert_int_equal(cfg_rd(f->dev, 0x3c, 1), 0);
    assert_int_equal(cfg_rd(f->dev, cap + 2, 2), 3);
    assert_int_equal(f->h->last_bar.enabled, 0);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_false(cfg_rd(f->dev, 0x06, 2) & 0x08);
    assert_int_equal(vmapple_device_read(f->dev, 1, 12, 4, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(vmapple_device_read(f->dev, 1, 0, 8, &v), 0);
    assert_int_equal(v, 0);
}

static void test_save_load(void **state)
{
    struct fixture *f = *state;
    struct mock_host *h2 = mock_host_new(RAM_BASE, RAM_SIZE);
    uint32_t cap = cfg_rd(f->dev, cfg_rd(f->dev, 0x34, 1) + 1, 1);
    vmapple_device *copy, *other;
    uint8_t *blob;
    size_t size = 0;
    uint64_t v;

    cfg_wr(f->dev, 0x10, 4, 0x50002000);
    cfg_wr(f->dev, 0x04, 2, 0x0006);
    cfg_wr(f->dev, cap + 2, 2, 0x8000);
    msix_program(f->dev, 2, 0xfee01000, 0x77, true);
    bar0_wr(f->dev, 0x08, 2); /* pending */
    vmapple_device_save(f->dev, NULL, 0, &size);
    blob = malloc(size);
    assert_int_equal(vmapple_device_save(f->dev, blob, size, &size), 0);

    assert_int_equal(testpci_create(mock_host_ops(), h2, 4, &copy), 0);
    assert_int_equal(vmapple_device_load(copy, blob, size), 0);
    /* The host learns where the BAR is, and DMA is allowed again. */
    assert_int_equal(h2->last_bar.address, 0x50002000);
    assert_int_equal(h2->last_bar.enabled, 1);
    assert_int_equal(cfg_rd(copy, 0x04, 2), 0x0006);
    /* The pending vector is delivered once unmasked, to the saved address. */
    assert_int_equal(vmapple_device_write(copy, 1, 2 * 16 + 12, 4, 0), 0);
    assert_int_equal(h2->nr_msi, 1);
    assert_int_equal(h2->msi[0].address, 0xfee01000);
    assert_int_equal(h2->msi[0].data, 0x77);

    /* A blob that claims another identity: refused, device untouched. */
    uint8_t *bad = malloc(size);
    memcpy(bad, blob, size);
    bad[32 + 8 + 0] ^= 0xff; /* vendor ID byte */
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);
    assert_non_null(strstr(vmapple_device_last_error(copy), "read-only"));
    /* An INTx line level the PCI state does not justify (nothing pending). */
    memcpy(bad, blob, size);
    vm_st_le64(bad + 32, 1);
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);
    assert_non_null(strstr(vmapple_device_last_error(copy), "INTx level"));
    /* STATUS.INTERRUPT that contradicts the INTx state. */
    memcpy(bad, blob, size);
    bad[32 + 8 + 6] |= 0x08;
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 32));
    assert_int_equal(vmapple_device_load(copy, bad, size), -EBADMSG);
    free(bad);

    /* A function built with another MSI-X size cannot take it. */
    assert_int_equal(testpci_create(NULL, NULL, 8, &other), 0);
    assert_int_equal(vmapple_device_load(other, blob, size), -EBADMSG);
    vmapple_device_destroy(other);
    assert_int_equal(vmapple_device_read(copy, 1, 2 * 16, 8, &v), 0);
    assert_int_equal(v, 0xfee01000);

    vmapple_device_destroy(copy);
    mock_host_free(h2);
    free(blob);
}

static void test_no_msix(void **state)
{
    struct fixture *f = *state;
    uint32_t p = cfg_rd(f->dev, 0x34, 1);

    /* Only the vendor capability. */
    assert_int_equal(cfg_rd(f->dev, p + 1, 1), 0);
    bar0_wr(f->dev, 0x08, 0);
    assert_int_equal(f->h->nr_msi, 0);
}

static int setup_no_msix(void **state)
{
    return setup_msix(state, 0);
}

static void test_host_bridge(void **state)
{
    vmapple_pci_host_bridge_options o = VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT;
    vmapple_device *b;
    uint32_t v;
    size_t size;
    uint8_t blob[8192];
    (void)state;

    assert_int_equal(vmapple_pci_host_bridge_create(NULL, NULL, NULL, &b), 0);
    assert_int_equal(vmapple_device_get_type(b), VMAPPLE_DEVICE_PCI_HOST_BRIDGE);
    assert_int_equal(vmapple_device_count_regions(b), 0);
    assert_int_equal(vmapple_device_count_irqs(b), 0);
    assert_int_equal(vmapple_device_pci_config_read(b, 0, 4, &v), 0);
    assert_int_equal(v, 0x1a05106b);
    assert_int_equal(vmapple_device_pci_config_read(b, 8, 4, &v), 0);
    assert_int_equal(v >> 8, 0x060000);
    assert_int_equal(vmapple_device_pci_config_read(b, 0x3d, 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_pci_config_write(b, 0x04, 2, 0x6), 0);
    assert_int_equal(vmapple_device_save(b, blob, sizeof(blob), &size), 0);
    assert_int_equal(vmapple_device_reset(b), 0);
    assert_int_equal(vmapple_device_pci_config_read(b, 4, 2, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(vmapple_device_load(b, blob, size), 0);
    assert_int_equal(vmapple_device_pci_config_read(b, 4, 2, &v), 0);
    assert_int_equal(v, 6);
    vmapple_device_destroy(b);

    /* QEMU's identity, through the options. */
    o.vendor_id = 0x1b36;
    o.device_id = 0x0008;
    o.revision = 2;
    assert_int_equal(vmapple_pci_host_bridge_create(NULL, NULL, &o, &b), 0);
    assert_int_equal(vmapple_device_pci_config_read(b, 0, 4, &v), 0);
    assert_int_equal(v, 0x00081b36);
    assert_int_equal(vmapple_device_pci_config_read(b, 8, 1, &v), 0);
    assert_int_equal(v, 2);
    vmapple_device_destroy(b);

    /* Fields left 0 take VZ's defaults, whatever else is set. */
    vmapple_pci_host_bridge_options only_rev = VMAPPLE_PCI_HOST_BRIDGE_OPTIONS_INIT;
    only_rev.revision = 5;
    assert_int_equal(vmapple_pci_host_bridge_create(NULL, NULL, &only_rev, &b), 0);
    assert_int_equal(vmapple_device_pci_config_read(b, 0, 4, &v), 0);
    assert_int_equal(v, 0x1a05106b);
    assert_int_equal(vmapple_device_pci_config_read(b, 8, 4, &v), 0);
    assert_int_equal(v, 0x06000005);
    vmapple_device_destroy(b);

    o.class_code = 0x1000000;
    assert_int_equal(vmapple_pci_host_bridge_create(NULL, NULL, &o, &b), -EINVAL);
    assert_non_null(strstr(vmapple_last_error(), "class_code"));
    assert_int_equal(vmapple_pci_host_bridge_create(NULL, NULL, NULL, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capability_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_placement_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_master_gates_dma, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_w1c, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_msix, setup_no_msix, teardown),
        cmocka_unit_test(test_host_bridge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
