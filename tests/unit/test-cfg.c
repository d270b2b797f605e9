/* SPDX-License-Identifier: MIT */
/* cfg: the initial image in both layouts (every field of spec/cfg.md, checked
 * against an image the test builds itself from the spec's offsets), every
 * option and its limits, guest accesses of every size, the exposed backing
 * bytes, reset, and save/load. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"
#include "state.h"
#include "mockhost.h"

#define IMAGE 0x10000u

/* Offsets from the spec's table, written out independently of the device. */
struct layout_offsets {
    uint32_t cpu_slots, scratch, serial, unk8, model, unk9, unk10, soc_name;
};
static const struct layout_offsets compiled = {
    128, 0x300, 0x500, 0x520, 0x540, 0x560, 0x580, 0x584
};
static const struct layout_offsets commented = {
    32, 0x180, 0x380, 0x3a0, 0x3c0, 0x3e0, 0x400, 0x404
};

struct expect {
    const struct layout_offsets *l;
    uint64_t ecid, ram_size;
    uint32_t nr_cpus, rnd, installer;
    uint8_t mac[4][6];
    const char *serial, *model, *soc_name;
};

static void le32(uint8_t *img, uint32_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        img[off + i] = (uint8_t)(v >> (8 * i));
    }
}

static void le64(uint8_t *img, uint32_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        img[off + i] = (uint8_t)(v >> (8 * i));
    }
}

static void build_expected(const struct expect *e, uint8_t *img)
{
    memset(img, 0, IMAGE);
    le32(img, 0x000, 2);
    le32(img, 0x004, e->nr_cpus);
    le32(img, 0x008, 1);
    le32(img, 0x00c, 1);
    le32(img, 0x010, 0x20);
    le32(img, 0x014, 0);
    le64(img, 0x018, e->ecid);
    le64(img, 0x020, e->ram_size);
    le32(img, 0x028, e->installer);
    le32(img, 0x02c, 1);
    le32(img, 0x030, 1);
    le32(img, 0x034, e->installer);
    le32(img, 0x038, e->rnd);
    le32(img, 0x03c, 0);
    for (int i = 0; i < 4; i++) {
        memcpy(img + 0x040 + 8 * i, e->mac[i], 6);
    }
    for (uint32_t i = 0; i < e->nr_cpus; i++) {
        le32(img, 0x100 + 4 * i, i);
    }
    strcpy((char *)img + e->l->serial, e->serial);
    strcpy((char *)img + e->l->unk8, "D/A");
    strcpy((char *)img + e->l->model, e->model);
    le32(img, e->l->unk10, 1);
    strcpy((char *)img + e->l->soc_name, e->soc_name);
}

static uint8_t *image_of(vmapple_device *dev)
{
    void *p = NULL;
    uint64_t size = 0;

    assert_int_equal(vmapple_device_get_region_memory(dev, 0, &p, &size), 0);
    assert_int_equal(size, IMAGE);
    return p;
}

/* Compares byte by byte, naming the first offset that differs. */
static void assert_image(vmapple_device *dev, const uint8_t *want)
{
    const uint8_t *got = image_of(dev);

    for (uint32_t i = 0; i < IMAGE; i++) {
        if (got[i] != want[i]) {
            fail_msg("image differs at 0x%x: got 0x%02x want 0x%02x", i, got[i], want[i]);
        }
    }
    /* And through MMIO reads, 8 bytes at a time. */
    for (uint32_t i = 0; i < IMAGE; i += 8) {
        uint64_t v;
        assert_int_equal(vmapple_device_read(dev, 0, i, 8, &v), 0);
        assert_int_equal(v, vm_ld_le64(want + i));
    }
}

static vmapple_device *make(const vmapple_cfg_options *o)
{
    vmapple_device *dev = NULL;
    int ret = vmapple_cfg_create(NULL, NULL, o, &dev);

    if (ret != 0) {
        fail_msg("create: %d %s", ret, vmapple_last_error());
    }
    return dev;
}

static vmapple_cfg_options full_options(uint32_t layout)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    static const uint8_t macs[4][6] = { { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 },
                                        { 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa },
                                        { 0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xff },
                                        { 0x0e, 0x01, 0x02, 0x03, 0x04, 0x05 } };

    o.layout = layout;
    o.ecid = 0x1122334455667788ull;
    o.ram_size = 8ull << 30;
    o.nr_cpus = 4;
    o.rnd = 0xdeadbeef;
    memcpy(o.mac_en0, macs[0], 6);
    memcpy(o.mac_en1, macs[1], 6);
    memcpy(o.mac_wifi0, macs[2], 6);
    memcpy(o.mac_bt0, macs[3], 6);
    o.serial = "ZX81SPECTRUM";
    o.model = "VirtualMac2,1";
    o.soc_name = "Apple M2 (Virtual)";
    o.run_installer = 1;
    return o;
}

static struct expect expect_of(const vmapple_cfg_options *o)
{
    struct expect e = { 0 };

    e.l = o->layout == VMAPPLE_CFG_LAYOUT_COMMENTED ? &commented : &compiled;
    e.ecid = o->ecid;
    e.ram_size = o->ram_size;
    e.nr_cpus = o->nr_cpus;
    e.rnd = o->rnd;
    e.installer = o->run_installer;
    memcpy(e.mac[0], o->mac_en0, 6);
    memcpy(e.mac[1], o->mac_en1, 6);
    memcpy(e.mac[2], o->mac_wifi0, 6);
    memcpy(e.mac[3], o->mac_bt0, 6);
    e.serial = o->serial ? o->serial : "1234";
    e.model = o->model ? o->model : "VM0001";
    e.soc_name = o->soc_name ? o->soc_name : "Apple M1 (Virtual)";
    return e;
}

static void test_cfg_identity_and_map(void **state)
{
    vmapple_device *dev = make(NULL);
    const vmapple_region_info *ri;
    const vmapple_platform_region *pr;
    (void)state;

    assert_int_equal(vmapple_device_get_type(dev), VMAPPLE_DEVICE_CFG);
    assert_string_equal(vmapple_device_get_name(dev), "cfg");
    assert_int_equal(vmapple_device_count_regions(dev), 1);
    assert_int_equal(vmapple_device_count_irqs(dev), 0);
    assert_int_equal(vmapple_device_get_region(dev, 0, &ri), 0);
    assert_string_equal(ri->name, "cfg");
    assert_int_equal(ri->base, 0x400000);
    assert_int_equal(ri->size, 0x10000);
    assert_int_equal(ri->flags, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_RAM);
    assert_int_equal(vmapple_platform_find_region(VMAPPLE_MAP_CFG, &pr), 0);
    assert_int_equal(ri->base, pr->base);
    assert_int_equal(ri->size, pr->size);
    vmapple_device_destroy(dev);
}

static void test_cfg_default_image(void **state)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    uint8_t *want = malloc(IMAGE);
    vmapple_device *dev = make(NULL);
    struct expect e;
    (void)state;

    o.nr_cpus = 1;
    e = expect_of(&o);
    build_expected(&e, want);
    assert_image(dev, want);
    /* Spot checks of the spec's defaults, in case both sides agree on a mistake. */
    assert_string_equal((char *)image_of(dev) + 0x500, "1234");
    assert_string_equal((char *)image_of(dev) + 0x540, "VM0001");
    assert_string_equal((char *)image_of(dev) + 0x584, "Apple M1 (Virtual)");
    assert_int_equal(vm_ld_le32(image_of(dev) + 0x004), 1);
    vmapple_device_destroy(dev);
    free(want);
}

static void check_full_image(uint32_t layout)
{
    vmapple_cfg_options o = full_options(layout);
    uint8_t *want = malloc(IMAGE);
    vmapple_device *dev = make(&o);
    struct expect e = expect_of(&o);

    build_expected(&e, want);
    assert_image(dev, want);
    vmapple_device_destroy(dev);
    free(want);
}

static void test_cfg_full_image_compiled(void **state)
{
    const uint8_t *img;
    vmapple_cfg_options o = full_options(VMAPPLE_CFG_LAYOUT_COMPILED);
    vmapple_device *dev = make(&o);
    (void)state;

    check_full_image(VMAPPLE_CFG_LAYOUT_COMPILED);
    img = image_of(dev);
    assert_int_equal(vm_ld_le64(img + 0x18), 0x1122334455667788ull);
    assert_int_equal(vm_ld_le64(img + 0x20), 8ull << 30);
    assert_int_equal(vm_ld_le32(img + 0x28), 1);
    assert_int_equal(vm_ld_le32(img + 0x34), 1);
    assert_int_equal(vm_ld_le32(img + 0x38), 0xdeadbeef);
    assert_int_equal(img[0x58], 0x0e);
    assert_string_equal((const char *)img + 0x500, "ZX81SPECTRUM");
    assert_string_equal((const char *)img + 0x520, "D/A");
    assert_string_equal((const char *)img + 0x540, "VirtualMac2,1");
    assert_int_equal(vm_ld_le32(img + 0x580), 1);
    assert_string_equal((const char *)img + 0x584, "Apple M2 (Virtual)");
    vmapple_device_destroy(dev);
}

/* The reference's comments and its compiled struct disagree; both are offered. */
static void test_cfg_defect_layout_comments_disagree(void **state)
{
    vmapple_cfg_options o = full_options(VMAPPLE_CFG_LAYOUT_COMMENTED);
    vmapple_device *dev = make(&o);
    const uint8_t *img = image_of(dev);
    (void)state;

    check_full_image(VMAPPLE_CFG_LAYOUT_COMMENTED);
    assert_string_equal((const char *)img + 0x380, "ZX81SPECTRUM");
    assert_string_equal((const char *)img + 0x3a0, "D/A");
    assert_string_equal((const char *)img + 0x3c0, "VirtualMac2,1");
    assert_int_equal(vm_ld_le32(img + 0x400), 1);
    assert_string_equal((const char *)img + 0x404, "Apple M2 (Virtual)");
    /* Nothing at the compiled layout's offsets. */
    assert_int_equal(img[0x500], 0);
    assert_int_equal(img[0x584], 0);
    vmapple_device_destroy(dev);
}

static void test_cfg_cpu_ids_limits(void **state)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_device *dev;
    const uint8_t *img;
    (void)state;

    o.nr_cpus = 128;
    dev = make(&o);
    img = image_of(dev);
    assert_int_equal(vm_ld_le32(img + 0x004), 128);
    for (uint32_t i = 0; i < 128; i++) {
        assert_int_equal(vm_ld_le32(img + 0x100 + 4 * i), i);
    }
    assert_int_equal(vm_ld_le32(img + 0x300), 0); /* scratch */
    vmapple_device_destroy(dev);

    o.layout = VMAPPLE_CFG_LAYOUT_COMMENTED;
    o.nr_cpus = 32;
    dev = make(&o);
    img = image_of(dev);
    assert_int_equal(vm_ld_le32(img + 0x17c), 31);
    assert_int_equal(vm_ld_le32(img + 0x180), 0); /* scratch */
    vmapple_device_destroy(dev);

    /* Slots past nr_cpus stay 0. */
    o.nr_cpus = 3;
    dev = make(&o);
    img = image_of(dev);
    assert_int_equal(vm_ld_le32(img + 0x108), 2);
    assert_int_equal(vm_ld_le32(img + 0x10c), 0);
    vmapple_device_destroy(dev);
}

static void expect_refused(const vmapple_cfg_options *o, const char *message)
{
    vmapple_device *dev = (vmapple_device *)0x1;

    assert_int_equal(vmapple_cfg_create(NULL, NULL, o, &dev), -EINVAL);
    assert_null(dev);
    if (!strstr(vmapple_last_error(), message)) {
        fail_msg("error '%s' does not contain '%s'", vmapple_last_error(), message);
    }
}

static void test_cfg_nr_cpus_limits(void **state)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    (void)state;

    /* Zero is refused, not defaulted: the INIT struct must say how many CPUs. */
    expect_refused(&o, "cfg: option nr_cpus is 0; it must be 1 to 128");
    o.nr_cpus = 129;
    expect_refused(&o, "cfg: option nr_cpus is 129, the limit is 128");
    o.layout = VMAPPLE_CFG_LAYOUT_COMMENTED;
    o.nr_cpus = 33;
    expect_refused(&o, "cfg: option nr_cpus is 33, the limit is 32 (the commented layout");
    o.nr_cpus = 0;
    expect_refused(&o, "1 to 32");
    o.nr_cpus = UINT32_MAX;
    expect_refused(&o, "limit is 32");
}

/* Strings longer than 31 characters are refused, never truncated. */
static void test_cfg_no_silent_truncation(void **state)
{
    char s31[32], s32[33], s40[41];
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_device *dev;
    (void)state;

    memset(s31, 'a', 31);
    s31[31] = 0;
    memset(s32, 'b', 32);
    s32[32] = 0;
    memset(s40, 'c', 40);
    s40[40] = 0;
    o.nr_cpus = 1;
    o.serial = s40;
    expect_refused(&o, "cfg: option serial is 40 characters, the limit is 31");
    o.serial = s32;
    expect_refused(&o, "cfg: option serial is 32 characters, the limit is 31");
    o.serial = NULL;
    o.model = s32;
    expect_refused(&o, "option model is 32 characters, the limit is 31");
    o.model = NULL;
    o.soc_name = s32;
    expect_refused(&o, "option soc_name is 32 characters, the limit is 31");

    /* 31 characters fit, with the NUL in the last byte of the field. */
    o.serial = s31;
    o.model = s31;
    o.soc_name = s31;
    dev = make(&o);
    assert_memory_equal(image_of(dev) + 0x500, s31, 32);
    assert_memory_equal(image_of(dev) + 0x540, s31, 32);
    assert_memory_equal(image_of(dev) + 0x584, s31, 32);
    assert_string_equal((char *)image_of(dev) + 0x520, "D/A");
    vmapple_device_destroy(dev);
    /* Empty strings are allowed. */
    o.serial = "";
    dev = make(&o);
    assert_int_equal(image_of(dev)[0x500], 0);
    vmapple_device_destroy(dev);
}

static void test_cfg_other_options(void **state)
{
    vmapple_cfg_options o = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_device *dev = NULL;
    struct {
        vmapple_cfg_options o;
        uint64_t future;
    } newer;
    (void)state;

    o.nr_cpus = 1;
    o.layout = 2;
    expect_refused(&o, "option layout is 2");
    o.layout = 0;
    o.run_installer = 2;
    expect_refused(&o, "option run_installer is 2");
    o.run_installer = 0;
    o.reserved0 = 1;
    expect_refused(&o, "reserved0");
    o.reserved0 = 0;
    assert_int_equal(vmapple_cfg_create(NULL, NULL, &o, NULL), -EINVAL);
    o.size = 3;
    assert_int_equal(vmapple_cfg_create(NULL, NULL, &o, &dev), -EINVAL);

    /* A size ending inside a string pointer would copy half a pointer. */
    o.size = offsetof(vmapple_cfg_options, model) + 4;
    expect_refused(&o, "ends inside a string pointer");
    o.size = offsetof(vmapple_cfg_options, soc_name) + 7;
    expect_refused(&o, "ends inside a string pointer");

    /* An older caller whose struct ends before nr_cpus gets the default 1. */
    o.size = offsetof(vmapple_cfg_options, nr_cpus);
    o.ecid = 42;
    o.nr_cpus = 0;
    dev = make(&o);
    assert_int_equal(vm_ld_le32(image_of(dev) + 4), 1);
    assert_int_equal(vm_ld_le64(image_of(dev) + 0x18), 42);
    vmapple_device_destroy(dev);

    /* A newer caller: accepted while its unknown fields are zero. */
    memset(&newer, 0, sizeof(newer));
    newer.o.size = sizeof(newer);
    newer.o.nr_cpus = 2;
    dev = make(&newer.o);
    vmapple_device_destroy(dev);
    newer.future = 7;
    assert_int_equal(vmapple_cfg_create(NULL, NULL, &newer.o, &dev), -EINVAL);

    /* Installer off by default: both words 0. */
    o = full_options(VMAPPLE_CFG_LAYOUT_COMPILED);
    o.run_installer = 0;
    dev = make(&o);
    assert_int_equal(vm_ld_le32(image_of(dev) + 0x28), 0);
    assert_int_equal(vm_ld_le32(image_of(dev) + 0x34), 0);
    vmapple_device_destroy(dev);

    /* Host ops are optional, and given ones are fine too. */
    struct mock_host *h = mock_host_new(0, 16);
    assert_int_equal(vmapple_cfg_create(mock_host_ops(), h, NULL, &dev), 0);
    vmapple_device_destroy(dev);
    mock_host_free(h);
}

/* Guest accesses: RAM of any size and alignment. */
static void test_cfg_guest_accesses(void **state)
{
    vmapple_device *dev = make(NULL);
    uint8_t *img = image_of(dev);
    uint64_t v;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    (void)state;

    for (int s = 0; s < 4; s++) {
        for (uint32_t off = 0x1000; off < 0x1010; off++) {
            uint64_t value = 0x8877665544332211ull + off;
            uint64_t mask = vm_size_mask(sizes[s]);
            assert_int_equal(vmapple_device_write(dev, 0, off, sizes[s], value), 0);
            assert_int_equal(vmapple_device_read(dev, 0, off, sizes[s], &v), 0);
            assert_int_equal(v, value & mask);
            /* Little-endian in the backing bytes. */
            assert_int_equal(img[off], (uint8_t)value);
        }
    }
    /* A write replaces only its own bytes. */
    memset(img + 0x2000, 0xee, 16);
    assert_int_equal(vmapple_device_write(dev, 0, 0x2003, 2, 0x1234), 0);
    assert_int_equal(vmapple_device_read(dev, 0, 0x2000, 8, &v), 0);
    assert_int_equal(v, 0xeeeeee1234eeeeeeull);
    assert_int_equal(img[0x2002], 0xee);
    assert_int_equal(img[0x2003], 0x34);
    assert_int_equal(img[0x2004], 0x12);
    assert_int_equal(img[0x2005], 0xee);
    /* Guests may overwrite the configuration fields too (it is RAM). */
    assert_int_equal(vmapple_device_write(dev, 0, 0x0, 4, 7), 0);
    assert_int_equal(vm_ld_le32(img), 7);
    /* Edges of the region. */
    assert_int_equal(vmapple_device_write(dev, 0, 0xffff, 1, 0xab), 0);
    assert_int_equal(vmapple_device_write(dev, 0, 0xfff8, 8, 0x0102030405060708ull), 0);
    assert_int_equal(vmapple_device_read(dev, 0, 0xfff8, 8, &v), 0);
    assert_int_equal(v, 0x0102030405060708ull);
    assert_int_equal(vmapple_device_read(dev, 0, 0xfffc, 8, &v), -EINVAL);
    assert_int_equal(vmapple_device_write(dev, 0, 0x10000, 1, 0), -EINVAL);
    /* Host stores through the mapping are what the guest reads. */
    img[0x3000] = 0x5a;
    assert_int_equal(vmapple_device_read(dev, 0, 0x3000, 1, &v), 0);
    assert_int_equal(v, 0x5a);
    vmapple_device_destroy(dev);
}

static void test_cfg_reset_restores_initial_image(void **state)
{
    vmapple_cfg_options o = full_options(VMAPPLE_CFG_LAYOUT_COMPILED);
    vmapple_device *dev = make(&o);
    uint8_t *img = image_of(dev);
    uint8_t *want = malloc(IMAGE);
    struct expect e = expect_of(&o);
    (void)state;

    build_expected(&e, want);
    for (uint32_t off = 0; off < IMAGE; off += 8) {
        assert_int_equal(vmapple_device_write(dev, 0, off, 8, 0xa5a5a5a5a5a5a5a5ull ^ off), 0);
    }
    assert_int_equal(vmapple_device_reset(dev), 0);
    /* In place: the pointer a host mapped stays valid. */
    assert_ptr_equal(image_of(dev), img);
    assert_image(dev, want);
    vmapple_device_destroy(dev);
    free(want);
}

static uint8_t *save_blob(vmapple_device *dev, size_t *size)
{
    uint8_t *blob;

    assert_int_equal(vmapple_device_save(dev, NULL, 0, size), -ENOSPC);
    blob = malloc(*size);
    assert_int_equal(vmapple_device_save(dev, blob, *size, size), 0);
    return blob;
}

static void fix_crc(uint8_t *blob, size_t size)
{
    vm_st_le32(blob + 24, vm_crc32(blob + 32, size - 32));
}

static void test_cfg_save_load(void **state)
{
    vmapple_cfg_options o = full_options(VMAPPLE_CFG_LAYOUT_COMPILED);
    vmapple_device *src = make(&o), *dst = make(&o), *other;
    uint8_t *want = malloc(IMAGE);
    struct expect e = expect_of(&o);
    uint8_t *blob, *bad;
    size_t size;
    (void)state;

    /* Guest-modified bytes travel. */
    assert_int_equal(vmapple_device_write(src, 0, 0x8000, 8, 0x1122334455667788ull), 0);
    assert_int_equal(vmapple_device_write(src, 0, 0x500, 1, 'Z'), 0);
    blob = save_blob(src, &size);
    assert_int_equal(vmapple_device_load(dst, blob, size), 0);
    assert_memory_equal(image_of(dst), image_of(src), IMAGE);
    /* Reset of the loaded device gives the initial image. */
    assert_int_equal(vmapple_device_reset(dst), 0);
    build_expected(&e, want);
    assert_image(dst, want);

    /* The other layout: refused, naming the option. */
    vmapple_cfg_options oc = o;
    oc.layout = VMAPPLE_CFG_LAYOUT_COMMENTED;
    other = make(&oc);
    assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(other), "option layout"));
    assert_non_null(strstr(vmapple_device_last_error(other), "compiled"));
    vmapple_device_destroy(other);

    /* Other configurations: each refused, naming the option. */
    struct {
        const char *name;
        vmapple_cfg_options o;
    } cases[8];
    for (int i = 0; i < 8; i++) {
        cases[i].o = o;
    }
    cases[0].name = "ecid";
    cases[0].o.ecid++;
    cases[1].name = "ram_size";
    cases[1].o.ram_size <<= 1;
    cases[2].name = "nr_cpus";
    cases[2].o.nr_cpus = 2;
    cases[3].name = "rnd";
    cases[3].o.rnd = 1;
    cases[4].name = "mac_wifi0";
    cases[4].o.mac_wifi0[5] ^= 1;
    cases[5].name = "serial";
    cases[5].o.serial = "other";
    cases[6].name = "soc_name";
    cases[6].o.soc_name = NULL;
    cases[7].name = "run_installer";
    cases[7].o.run_installer = 0;
    for (int i = 0; i < 8; i++) {
        other = make(&cases[i].o);
        uint8_t before = image_of(other)[0x8000];
        assert_int_equal(vmapple_device_load(other, blob, size), -EINVAL);
        if (!strstr(vmapple_device_last_error(other), cases[i].name)) {
            fail_msg("'%s' does not name %s", vmapple_device_last_error(other), cases[i].name);
        }
        assert_int_equal(image_of(other)[0x8000], before);
        vmapple_device_destroy(other);
    }

    /* Truncated, foreign, tampered. */
    bad = malloc(size);
    assert_int_equal(vmapple_device_load(dst, blob, size - 1), -EBADMSG);
    memcpy(bad, blob, size);
    bad[40] ^= 1; /* CRC now wrong */
    assert_int_equal(vmapple_device_load(dst, bad, size), -EBADMSG);
    memcpy(bad, blob, size);
    vm_st_le32(bad + 32 + 8, 7); /* layout 7, CRC fixed */
    fix_crc(bad, size);
    assert_int_equal(vmapple_device_load(dst, bad, size), -EINVAL);
    assert_non_null(strstr(vmapple_device_last_error(dst), "unknown"));
    /* run_installer is a bool just before the image: 2 is impossible. */
    memcpy(bad, blob, size);
    bad[size - IMAGE - 1] = 2;
    fix_crc(bad, size);
    assert_int_equal(vmapple_device_load(dst, bad, size), -EBADMSG);
    /* A payload one byte short of the image. */
    memcpy(bad, blob, size);
    vm_st_le32(bad + 20, (uint32_t)(size - 33));
    vm_st_le32(bad + 24, vm_crc32(bad + 32, size - 33));
    assert_int_equal(vmapple_device_load(dst, bad, size - 1), -EBADMSG);
    vmapple_device *pv;
    assert_int_equal(vmapple_pvpanic_create(NULL, NULL, NULL, &pv), 0);
    size_t psize;
    uint8_t *pblob = save_blob(pv, &psize);
    assert_int_equal(vmapple_device_load(dst, pblob, psize), -ENODEV);
    free(pblob);
    vmapple_device_destroy(pv);
    /* Failed loads changed nothing. */
    assert_image(dst, want);

    free(bad);
    free(blob);
    free(want);
    vmapple_device_destroy(src);
    vmapple_device_destroy(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_identity_and_map),
        cmocka_unit_test(test_cfg_default_image),
        cmocka_unit_test(test_cfg_full_image_compiled),
        cmocka_unit_test(test_cfg_defect_layout_comments_disagree),
        cmocka_unit_test(test_cfg_cpu_ids_limits),
        cmocka_unit_test(test_cfg_nr_cpus_limits),
        cmocka_unit_test(test_cfg_no_silent_truncation),
        cmocka_unit_test(test_cfg_other_options),
        cmocka_unit_test(test_cfg_guest_accesses),
        cmocka_unit_test(test_cfg_reset_restores_initial_image),
        cmocka_unit_test(test_cfg_save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
