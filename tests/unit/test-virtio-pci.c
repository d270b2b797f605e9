/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci modern transport (lib/virtio-pci.c) through a minimal test
 * device defined here: an "echo" queue device whose 8-byte configuration
 * has one writable byte and can change under the driver's feet.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mockhost.h"
#include "virtio-pci.h"

#define RAM_BASE 0x70000000ull
#define RAM_SIZE 0x100000ull
#define TV_TYPE  0x7ff2u
#define NQ       2

struct tv {
    vmapple_device dev;
    struct vm_virtio_pci vp;
    uint8_t config[8];
    unsigned notifies[NQ];
    unsigned resets;
};

static const vmapple_region_info tv_regions[] = {
    { "bar0", VM_VIRTIO_BAR0_SIZE, VMAPPLE_NO_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR,
      0 },
    { "msix", VM_VIRTIO_MSIX_BAR_SIZE, VMAPPLE_NO_BASE,
      VMAPPLE_REGION_MMIO | VMAPPLE_REGION_PCI_BAR, 1 },
};
static const vmapple_irq_info tv_irqs[] = {
    { "intx", VMAPPLE_NO_IRQ, VMAPPLE_IRQ_LEVEL | VMAPPLE_IRQ_PCI_INTX },
};

static struct tv *to_tv(vmapple_device *dev)
{
    return vm_container_of(dev, struct tv, dev);
}

static void tv_notify(struct vm_virtio_pci *vp, uint16_t q)
{
    struct tv *t = vm_container_of(vp, struct tv, vp);
    struct vm_vq *vq = &vp->queues[q].vq;
    struct vm_vq_seg segs[16];
    struct vm_vq_chain c = { segs, 16, 0, 0, 0, 0, 0 };

    t->notifies[q]++;
    while (vm_vq_pop(vq, &c) == 1) {
        vm_vq_push(vq, c.head, (uint32_t)c.in_len);
    }
    if (vm_vq_publish(vq)) {
        vm_virtio_pci_notify_queue(vp, q);
    }
}

static void tv_vp_reset(struct vm_virtio_pci *vp)
{
    vm_container_of(vp, struct tv, vp)->resets++;
}

static void tv_config_write(struct vm_virtio_pci *vp, uint32_t off, uint32_t size, uint64_t v)
{
    struct tv *t = vm_container_of(vp, struct tv, vp);

    if (off == 4 && size == 1) {
        t->config[4] = (uint8_t)v;
    }
}

static const struct vm_virtio_pci_ops tv_ops = {
    .queue_notify = tv_notify,
    .reset = tv_vp_reset,
    .config_write = tv_config_write,
};

static int tv_read(vmapple_device *dev, uint32_t region, uint64_t off, uint32_t size, uint64_t *v)
{
    return vm_virtio_pci_read(&to_tv(dev)->vp, region, off, size, v);
}
static int tv_write(vmapple_device *dev, uint32_t region, uint64_t off, uint32_t size, uint64_t v)
{
    return vm_virtio_pci_write(&to_tv(dev)->vp, region, off, size, v);
}
static void tv_reset(vmapple_device *dev)
{
    vm_virtio_pci_reset(&to_tv(dev)->vp);
}
static int tv_save(vmapple_device *dev, struct vm_state_writer *w)
{
    vm_virtio_pci_save(&to_tv(dev)->vp, w);
    return 0;
}
static int tv_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct vm_virtio_pci_snapshot *snap;
    int ret = vm_virtio_pci_load_parse(&to_tv(dev)->vp, r, &snap);

    (void)version;
    if (ret < 0) {
        return ret;
    }
    if (!vm_st_complete(r)) {
        vm_virtio_pci_snapshot_free(snap);
        return -EBADMSG;
    }
    vm_virtio_pci_load_commit(&to_tv(dev)->vp, snap);
    return 0;
}
static void tv_destroy(vmapple_device *dev)
{
    vm_virtio_pci_release(&to_tv(dev)->vp);
    free(to_tv(dev));
}
static int tv_config_read(vmapple_device *dev, uint32_t off, uint32_t size, uint32_t *v)
{
    return vm_virtio_pci_config_read(&to_tv(dev)->vp, off, size, v);
}
static int tv_config_write_pci(vmapple_device *dev, uint32_t off, uint32_t size, uint32_t v)
{
    return vm_virtio_pci_config_write(&to_tv(dev)->vp, off, size, v);
}

static const struct vmapple_device_class tv_class = {
    .type = TV_TYPE,
    .name = "test-virtio",
    .state_version = 1,
    .read = tv_read,
    .write = tv_write,
    .reset = tv_reset,
    .save = tv_save,
    .load = tv_load,
    .destroy = tv_destroy,
    .config_read = tv_config_read,
    .config_write = tv_config_write_pci,
};

static struct tv *tv_create(struct mock_host *h, uint16_t vectors)
{
    struct tv *t = calloc(1, sizeof(*t));
    struct vm_virtio_pci_setup s = { 0 };

    assert_int_equal(vm_device_init(&t->dev, &tv_class, mock_host_ops(), h, tv_regions,
                                    vectors ? 2 : 1, tv_irqs, 1),
                     0);
    memcpy(t->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    s.ids = (struct vm_pci_ids){ 0x1af4, 0x105a, 0x1af4, 0x40, 0xff0000, 1, 1 };
    s.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) | (1ull << 3);
    s.num_queues = NQ;
    s.queue_max_size = 16;
    s.devcfg = t->config;
    s.devcfg_len = 8;
    s.msix_vectors = vectors;
    s.bar0_region = 0;
    s.msix_region = 1;
    assert_int_equal(vm_virtio_pci_init(&t->vp, &t->dev, &tv_ops, &s), 0);
    return t;
}

struct fx {
    struct mock_host *h;
    struct tv *t;
    vmapple_device *dev;
};

static int setup_n(void **state, uint16_t vectors)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->h = mock_host_new(RAM_BASE, RAM_SIZE);
    f->t = tv_create(f->h, vectors);
    f->dev = &f->t->dev;
    /* Memory decode and bus master on. */
    vmapple_device_pci_config_write(f->dev, 4, 2, 6);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 0);
}

static int setup_msix(void **state)
{
    return setup_n(state, 4);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    vmapple_device_destroy(f->dev);
    assert_int_equal(f->h->maps_live, 0);
    mock_host_free(f->h);
    free(f);
    return 0;
}

static uint64_t rd(struct fx *f, uint64_t off, uint32_t size)
{
    uint64_t v = 0xdead;
    assert_int_equal(vmapple_device_read(f->dev, 0, off, size, &v), 0);
    return v;
}

static void wr(struct fx *f, uint64_t off, uint32_t size, uint64_t v)
{
    assert_int_equal(vmapple_device_write(f->dev, 0, off, size, v), 0);
}

static uint32_t cfg(struct fx *f, uint32_t off, uint32_t size)
{
    uint32_t v = 0;
    assert_int_equal(vmapple_device_pci_config_read(f->dev, off, size, &v), 0);
    return v;
}

/* Negotiate VERSION_1 + EVENT_IDX and reach DRIVER_OK with queue 0 set up. */
static void bring_up(struct fx *f)
{
    wr(f, 0x14, 1, 0);
    wr(f, 0x14, 1, 3);
    wr(f, 0x08, 4, 0);
    wr(f, 0x0c, 4, 1u << VIRTIO_F_EVENT_IDX);
    wr(f, 0x08, 4, 1);
    wr(f, 0x0c, 4, 1);
    wr(f, 0x14, 1, 0x0b);
    assert_int_equal(rd(f, 0x14, 1), 0x0b);
    wr(f, 0x16, 2, 0);
    wr(f, 0x18, 2, 8);
    wr(f, 0x20, 8, RAM_BASE + 0x1000);
    wr(f, 0x28, 8, RAM_BASE + 0x2000);
    wr(f, 0x30, 8, RAM_BASE + 0x3000);
    wr(f, 0x1c, 2, 1);
    wr(f, 0x14, 1, 0x0f);
}

static void test_capabilities(void **state)
{
    struct fx *f = *state;
    unsigned seen = 0;
    uint32_t cap;

    assert_true(cfg(f, 6, 2) & 0x10);
    for (cap = cfg(f, 0x34, 1); cap; cap = cfg(f, cap + 1, 1)) {
        uint32_t type, off, len;
        assert_int_equal(cfg(f, cap, 1), 0x09);
        type = cfg(f, cap + 3, 1);
        off = cfg(f, cap + 8, 4);
        len = cfg(f, cap + 12, 4);
        seen |= 1u << type;
        switch (type) {
        case 1:
            assert_int_equal(off, 0);
            assert_int_equal(len, 0x38);
            assert_int_equal(cfg(f, cap + 2, 1), 16);
            break;
        case 2:
            assert_int_equal(off, 0x3000);
            assert_int_equal(cfg(f, cap + 16, 4), 4);
            assert_true(len >= 4 * (NQ - 1) + 2);
            assert_int_equal(cfg(f, cap + 2, 1), 20);
            break;
        case 3:
            assert_int_equal(off, 0x1000);
            assert_true(len >= 1);
            break;
        case 4:
            assert_int_equal(off, 0x2000);
            assert_int_equal(len, 8);
            break;
        case 5:
            assert_int_equal(cfg(f, cap + 2, 1), 20);
            break;
        default:
            fail();
        }
        assert_int_equal(cfg(f, cap + 4, 1), 0); /* BAR0 */
        if (type != 5) {
            /* Read-only for the driver. */
            vmapple_device_pci_config_write(f->dev, cap + 8, 4, 0x1234);
            assert_int_equal(cfg(f, cap + 8, 4), off);
        }
    }
    assert_int_equal(seen, 0x3e);
}

static void test_feature_words(void **state)
{
    struct fx *f = *state;

    wr(f, 0x00, 4, 0);
    assert_int_equal(rd(f, 0x04, 4), (1u << VIRTIO_F_EVENT_IDX) | (1u << 3));
    wr(f, 0x00, 4, 1);
    assert_int_equal(rd(f, 0x04, 4), 1);
    wr(f, 0x00, 4, 2);
    assert_int_equal(rd(f, 0x04, 4), 0);
    assert_int_equal(rd(f, 0x00, 4), 2);
    /* device_feature is read-only. */
    wr(f, 0x04, 4, 0xffffffff);
    assert_true(mock_log_contains(f->h, "read-only field"));
    wr(f, 0x00, 4, 0);
    assert_int_equal(rd(f, 0x04, 4), (1u << VIRTIO_F_EVENT_IDX) | (1u << 3));
    /* Driver feature words read back what was written. */
    wr(f, 0x08, 4, 0);
    wr(f, 0x0c, 4, 0x8);
    wr(f, 0x08, 4, 1);
    wr(f, 0x0c, 4, 1);
    assert_int_equal(rd(f, 0x0c, 4), 1);
    wr(f, 0x08, 4, 0);
    assert_int_equal(rd(f, 0x0c, 4), 8);
    wr(f, 0x14, 1, 0x0b);
    assert_int_equal(rd(f, 0x14, 1), 0x0b);
    /* Frozen after FEATURES_OK. */
    wr(f, 0x0c, 4, 0);
    assert_int_equal(rd(f, 0x0c, 4), 8);
    assert_true(vm_virtio_pci_has_feature(&f->t->vp, 3));
}

static void test_status_machine(void **state)
{
    struct fx *f = *state;

    assert_int_equal(rd(f, 0x14, 1), 0);
    wr(f, 0x14, 1, 1);
    wr(f, 0x14, 1, 3);
    /* No VERSION_1: FEATURES_OK does not stick. */
    wr(f, 0x14, 1, 0x0b);
    assert_int_equal(rd(f, 0x14, 1), 0x03);
    assert_true(mock_log_contains(f->h, "VIRTIO_F_VERSION_1"));
    /* A feature not offered: refused too. */
    wr(f, 0x08, 4, 1);
    wr(f, 0x0c, 4, 1 | 2);
    wr(f, 0x14, 1, 0x0b);
    assert_int_equal(rd(f, 0x14, 1), 0x03);
    wr(f, 0x0c, 4, 1);
    wr(f, 0x14, 1, 0x0b);
    assert_int_equal(rd(f, 0x14, 1), 0x0b);
    /* The driver cannot set DEVICE_NEEDS_RESET. */
    wr(f, 0x14, 1, 0x4f);
    assert_int_equal(rd(f, 0x14, 1), 0x0f);
    /* Writing 0 resets: features and status gone, the device's reset called. */
    wr(f, 0x14, 1, 0);
    assert_int_equal(rd(f, 0x14, 1), 0);
    assert_int_equal(f->t->resets, 1);
    wr(f, 0x08, 4, 1);
    assert_int_equal(rd(f, 0x0c, 4), 0);
    /* DRIVER_OK without FEATURES_OK: logged; the device stays idle. */
    wr(f, 0x14, 1, 0x07);
    assert_true(mock_log_contains(f->h, "DRIVER_OK without FEATURES_OK"));
    assert_false(vm_virtio_pci_live(&f->t->vp));
}

static void test_queue_fields(void **state)
{
    struct fx *f = *state;

    assert_int_equal(rd(f, 0x12, 2), NQ);
    wr(f, 0x16, 2, 1);
    assert_int_equal(rd(f, 0x18, 2), 16);
    assert_int_equal(rd(f, 0x1e, 2), 1);
    assert_int_equal(rd(f, 0x1a, 2), 0xffff);
    /* Sizes: powers of two up to the maximum. */
    wr(f, 0x18, 2, 12);
    assert_int_equal(rd(f, 0x18, 2), 16);
    wr(f, 0x18, 2, 32);
    assert_int_equal(rd(f, 0x18, 2), 16);
    wr(f, 0x18, 2, 0);
    assert_int_equal(rd(f, 0x18, 2), 16);
    wr(f, 0x18, 2, 4);
    assert_int_equal(rd(f, 0x18, 2), 4);
    /* 64-bit addresses: halves or whole. */
    wr(f, 0x20, 4, 0x11112000);
    wr(f, 0x24, 4, 0x2);
    assert_int_equal(rd(f, 0x20, 8), 0x211112000ull);
    assert_int_equal(rd(f, 0x24, 4), 2);
    wr(f, 0x28, 8, 0x300000004ull);
    assert_int_equal(rd(f, 0x28, 4), 4);
    assert_int_equal(rd(f, 0x2c, 4), 3);
    /* A queue that does not exist: zeros, writes ignored. */
    wr(f, 0x16, 2, NQ);
    assert_int_equal(rd(f, 0x18, 2), 0);
    wr(f, 0x18, 2, 4);
    wr(f, 0x1c, 2, 1);
    assert_int_equal(rd(f, 0x18, 2), 0);
    assert_int_equal(rd(f, 0x1c, 2), 0);
    /* Reads of any width and offset see the little-endian bytes. */
    wr(f, 0x16, 2, 1);
    assert_int_equal(rd(f, 0x16, 4), 0x00040001u);
    assert_int_equal(rd(f, 0x37, 1), 0);
    assert_int_equal(rd(f, 0x38, 4), 0);
    /* A write of the wrong width names no field: ignored. */
    wr(f, 0x16, 4, 0);
    assert_int_equal(rd(f, 0x16, 2), 1);
    assert_true(mock_log_contains(f->h, "4-byte write at common config 0x16"));
}

static void test_enabled_queue_is_frozen(void **state)
{
    struct fx *f = *state;

    bring_up(f);
    wr(f, 0x16, 2, 0);
    assert_int_equal(rd(f, 0x1c, 2), 1);
    wr(f, 0x20, 8, RAM_BASE + 0x8000);
    assert_int_equal(rd(f, 0x20, 8), RAM_BASE + 0x1000);
    wr(f, 0x18, 2, 4);
    assert_int_equal(rd(f, 0x18, 2), 8);
    /* queue_enable 0 is not how a queue is stopped. */
    wr(f, 0x1c, 2, 0);
    assert_int_equal(rd(f, 0x1c, 2), 1);
    wr(f, 0x14, 1, 0);
    assert_int_equal(rd(f, 0x1c, 2), 0);
    assert_int_equal(rd(f, 0x18, 2), 16);
    assert_int_equal(rd(f, 0x20, 8), 0);
}

static void test_notifications(void **state)
{
    struct fx *f = *state;
    uint8_t *ram = mock_ram(f->h, RAM_BASE, RAM_SIZE);

    /* Before DRIVER_OK: ignored. */
    wr(f, 0x3000, 2, 0);
    assert_int_equal(f->t->notifies[0], 0);
    bring_up(f);
    wr(f, 0x3000, 2, 0);
    assert_int_equal(f->t->notifies[0], 1);
    /* Queue 1 is not enabled; queue 2 does not exist; misaligned and 1-byte writes. */
    wr(f, 0x3004, 2, 1);
    wr(f, 0x3008, 2, 2);
    wr(f, 0x3001, 1, 0);
    wr(f, 0x3002, 2, 0);
    assert_int_equal(f->t->notifies[0] + f->t->notifies[1], 1);
    /* A chain through the queue: one writable 32-byte buffer. */
    memcpy(ram + 0x1000, "\x00\x50\x00\x70\x00\x00\x00\x00\x20\x00\x00\x00\x02\x00\x00\x00", 16);
    ram[0x2004] = 0;
    ram[0x2002] = 1;
    wr(f, 0x3000, 4, 0); /* 32-bit notification also accepted */
    assert_int_equal(ram[0x3002], 1);
    assert_int_equal(ram[0x3008], 32);
    assert_int_equal(f->h->irq_level[0], 1);
    assert_int_equal(rd(f, 0x1000, 1), 1);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(rd(f, 0x1000, 1), 0);
}

static void test_config_space(void **state)
{
    struct fx *f = *state;

    assert_int_equal(rd(f, 0x2000, 4), 0x44332211);
    assert_int_equal(rd(f, 0x2004, 4), 0x88776655);
    assert_int_equal(rd(f, 0x2006, 2), 0x8877);
    assert_int_equal(rd(f, 0x2007, 1), 0x88);
    assert_int_equal(rd(f, 0x2008, 4), 0);
    assert_int_equal(rd(f, 0x2006, 4), 0x8877);
    wr(f, 0x2004, 1, 0xab);
    assert_int_equal(rd(f, 0x2004, 1), 0xab);
    wr(f, 0x2000, 1, 0xab);
    assert_int_equal(rd(f, 0x2000, 1), 0x11);
}

static void test_config_generation(void **state)
{
    struct fx *f = *state;
    uint8_t gen = (uint8_t)rd(f, 0x15, 1);

    /* Before DRIVER_OK: a new generation, no interrupt. */
    vm_virtio_pci_config_changed(&f->t->vp);
    assert_int_equal(rd(f, 0x15, 1), (uint8_t)(gen + 1));
    assert_int_equal(f->h->irq_level[0], 0);
    bring_up(f);
    f->t->config[0] = 0x99;
    vm_virtio_pci_config_changed(&f->t->vp);
    assert_int_equal(rd(f, 0x15, 1), (uint8_t)(gen + 2));
    assert_int_equal(f->h->irq_level[0], 1);
    assert_int_equal(rd(f, 0x1000, 1), 2);
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(rd(f, 0x2000, 1), 0x99);
    /* The generation survives a driver reset (it only grows). */
    wr(f, 0x14, 1, 0);
    assert_int_equal(rd(f, 0x15, 1), (uint8_t)(gen + 2));
}

static void test_needs_reset(void **state)
{
    struct fx *f = *state;

    bring_up(f);
    vm_virtio_pci_set_needs_reset(&f->t->vp);
    assert_int_equal(rd(f, 0x14, 1), 0x4f);
    assert_false(vm_virtio_pci_live(&f->t->vp));
    assert_int_equal(rd(f, 0x1000, 1), 2);
    wr(f, 0x3000, 2, 0);
    assert_int_equal(f->t->notifies[0], 0);
    wr(f, 0x14, 1, 0);
    assert_int_equal(rd(f, 0x14, 1), 0);
}

static void test_msix_vectors(void **state)
{
    struct fx *f = *state;
    uint32_t cap;

    for (cap = cfg(f, 0x34, 1); cap && cfg(f, cap, 1) != 0x11; cap = cfg(f, cap + 1, 1)) {
    }
    assert_int_not_equal(cap, 0);
    bring_up(f);
    vmapple_device_write(f->dev, 1, 0, 8, 0xfee00000);
    vmapple_device_write(f->dev, 1, 8, 4, 0x10);
    vmapple_device_write(f->dev, 1, 12, 4, 0);
    vmapple_device_write(f->dev, 1, 16, 8, 0xfee00004);
    vmapple_device_write(f->dev, 1, 24, 4, 0x11);
    vmapple_device_write(f->dev, 1, 28, 4, 0);
    vmapple_device_pci_config_write(f->dev, cap + 2, 2, 0x8000);
    wr(f, 0x10, 2, 0);
    assert_int_equal(rd(f, 0x10, 2), 0);
    wr(f, 0x1a, 2, 1);
    assert_int_equal(rd(f, 0x1a, 2), 1);
    wr(f, 0x1a, 2, 4);
    assert_int_equal(rd(f, 0x1a, 2), 0xffff);
    wr(f, 0x1a, 2, 1);
    vm_virtio_pci_notify_queue(&f->t->vp, 0);
    assert_int_equal(f->h->nr_msi, 1);
    assert_int_equal(f->h->msi[0].data, 0x11);
    /* With MSI-X the queue does not use the ISR or INTx. */
    assert_int_equal(f->h->irq_level[0], 0);
    assert_int_equal(rd(f, 0x1000, 1), 0);
    vm_virtio_pci_config_changed(&f->t->vp);
    assert_int_equal(f->h->nr_msi, 2);
    assert_int_equal(f->h->msi[1].data, 0x10);
    assert_int_equal(f->h->irq_level[0], 0);
    /* Reset unmaps every event. */
    wr(f, 0x14, 1, 0);
    assert_int_equal(rd(f, 0x10, 2), 0xffff);
    assert_int_equal(rd(f, 0x1a, 2), 0xffff);
}

static void test_no_msix_vectors_read_no_vector(void **state)
{
    struct fx *f = *state;

    wr(f, 0x10, 2, 0);
    assert_int_equal(rd(f, 0x10, 2), 0xffff);
    wr(f, 0x1a, 2, 0);
    assert_int_equal(rd(f, 0x1a, 2), 0xffff);
}

static void test_unknown_offsets(void **state)
{
    struct fx *f = *state;

    assert_int_equal(rd(f, 0x0100, 4), 0);
    assert_int_equal(rd(f, 0x1001, 1), 0);
    assert_int_equal(rd(f, 0x3000, 2), 0);
    assert_int_equal(rd(f, 0x3ff8, 8), 0);
    wr(f, 0x0800, 4, 1);
    wr(f, 0x1000, 1, 3);
    wr(f, 0x3ffc, 4, 1);
    assert_int_equal(rd(f, 0x14, 1), 0);
}

static void test_save_load(void **state)
{
    struct fx *f = *state;
    uint8_t blob[20000];
    size_t n = 0;
    struct tv *t2 = tv_create(f->h, 0);
    uint8_t *ram = mock_ram(f->h, RAM_BASE, RAM_SIZE);

    bring_up(f);
    memcpy(ram + 0x1000, "\x00\x50\x00\x70\x00\x00\x00\x00\x20\x00\x00\x00\x02\x00\x00\x00", 16);
    ram[0x2004] = 0;
    ram[0x2002] = 1;
    wr(f, 0x3000, 2, 0);
    assert_int_equal(vmapple_device_save(f->dev, blob, sizeof(blob), &n), 0);
    assert_int_equal(vmapple_device_load(&t2->dev, blob, n), 0);
    vmapple_device_destroy(f->dev);
    f->t = t2;
    f->dev = &t2->dev;
    assert_int_equal(rd(f, 0x14, 1), 0x0f);
    assert_int_equal(rd(f, 0x20, 8), RAM_BASE + 0x1000);
    assert_int_equal(f->h->irq_level[0], 1);
    assert_int_equal(rd(f, 0x1000, 1), 1);
    /* The loaded queue continues at avail 1 / used 1. */
    ram[0x2006] = 0;
    ram[0x2002] = 2;
    wr(f, 0x3000, 2, 0);
    assert_int_equal(ram[0x3002], 2);
    /* A blob from a device with a different shape is refused. */
    {
        struct tv *t3 = tv_create(f->h, 4);
        assert_int_equal(vmapple_device_save(f->dev, blob, sizeof(blob), &n), 0);
        assert_int_not_equal(vmapple_device_load(&t3->dev, blob, n), 0);
        vmapple_device_destroy(&t3->dev);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enabled_queue_is_frozen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_needs_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msix_vectors, setup_msix, teardown),
        cmocka_unit_test_setup_teardown(test_no_msix_vectors_read_no_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
    };

    return cmocka_run_group_tests_name("virtio-pci", tests, NULL, NULL);
}
