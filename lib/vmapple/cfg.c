/* SPDX-License-Identifier: MIT */
/*
 * cfg: the 64 KiB configuration region the firmware reads. Plain RAM to the
 * guest; the initial image is built from the options, in one of the two
 * layouts the reference's struct suggests (see include/libvmapple/cfg.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "state.h"

#define CFG_IMAGE_SIZE 0x10000u
/* The core bounds accesses by the region size; the image must cover it. */
_Static_assert(CFG_IMAGE_SIZE == VMAPPLE_CFG_SIZE, "cfg image and region differ");

/* Fields common to both layouts. */
#define CFG_OFF_VERSION        0x000u
#define CFG_OFF_NR_CPUS        0x004u
#define CFG_OFF_UNK1           0x008u
#define CFG_OFF_UNK2           0x00cu
#define CFG_OFF_UNK3           0x010u
#define CFG_OFF_UNK4           0x014u
#define CFG_OFF_ECID           0x018u
#define CFG_OFF_RAM_SIZE       0x020u
#define CFG_OFF_RUN_INSTALLER1 0x028u
#define CFG_OFF_UNK5           0x02cu
#define CFG_OFF_UNK6           0x030u
#define CFG_OFF_RUN_INSTALLER2 0x034u
#define CFG_OFF_RND            0x038u
#define CFG_OFF_UNK7           0x03cu
#define CFG_OFF_MAC_EN0        0x040u
#define CFG_OFF_MAC_EN1        0x048u
#define CFG_OFF_MAC_WIFI0      0x050u
#define CFG_OFF_MAC_BT0        0x058u
#define CFG_OFF_CPU_IDS        0x100u

#define CFG_VERSION      2u
#define CFG_UNK1_VALUE   1u
#define CFG_UNK2_VALUE   1u
#define CFG_UNK3_VALUE   0x20u
#define CFG_UNK5_VALUE   1u
#define CFG_UNK6_VALUE   1u
#define CFG_UNK10_VALUE  1u
#define CFG_UNK8_STRING  "D/A"
#define CFG_STRING_FIELD 32u /* char[32] */
#define CFG_MAC_LEN      6u
#define CFG_NR_MACS      4u

#define CFG_DEFAULT_SERIAL   "1234"
#define CFG_DEFAULT_MODEL    "VM0001"
#define CFG_DEFAULT_SOC_NAME "Apple M1 (Virtual)"

/* Where the layouts differ: from cpu_ids on. */
struct cfg_layout_info {
    const char *name;
    uint32_t cpu_slots;
    uint32_t serial, unk8, model, unk10, soc_name;
};

static const struct cfg_layout_info cfg_layouts[] = {
    [VMAPPLE_CFG_LAYOUT_COMPILED] = { "compiled", VMAPPLE_CFG_COMPILED_MAX_CPUS, 0x500, 0x520,
                                      0x540, 0x580, 0x584 },
    [VMAPPLE_CFG_LAYOUT_COMMENTED] = { "commented", VMAPPLE_CFG_COMMENTED_MAX_CPUS, 0x380, 0x3a0,
                                       0x3c0, 0x400, 0x404 },
};

static const char *const cfg_mac_names[CFG_NR_MACS] = { "mac_en0", "mac_en1", "mac_wifi0",
                                                        "mac_bt0" };
static const uint32_t cfg_mac_offsets[CFG_NR_MACS] = { CFG_OFF_MAC_EN0, CFG_OFF_MAC_EN1,
                                                       CFG_OFF_MAC_WIFI0, CFG_OFF_MAC_BT0 };

/* The configuration the initial image is built from (validated). */
struct cfg_config {
    uint32_t layout;
    uint64_t ecid;
    uint64_t ram_size;
    uint32_t nr_cpus;
    uint32_t rnd;
    uint8_t mac[CFG_NR_MACS][CFG_MAC_LEN];
    char serial[CFG_STRING_FIELD];
    char model[CFG_STRING_FIELD];
    char soc_name[CFG_STRING_FIELD];
    bool run_installer;
};

struct cfg {
    vmapple_device dev;
    struct cfg_config conf;
    uint8_t image[CFG_IMAGE_SIZE];
};

static const vmapple_region_info cfg_regions[] = {
    { "cfg", VMAPPLE_CFG_SIZE, VMAPPLE_CFG_BASE, VMAPPLE_REGION_MMIO | VMAPPLE_REGION_RAM,
      UINT32_MAX },
};

static struct cfg *to_cfg(vmapple_device *dev)
{
    return vm_container_of(dev, struct cfg, dev);
}

/* The image. */

static void cfg_put_string(uint8_t *image, uint32_t off, const char *s)
{
    /* Validated to fit with its NUL; the rest of the field stays zero. */
    memcpy(image + off, s, strlen(s));
}

static void cfg_build_image(const struct cfg_config *c, uint8_t *image)
{
    const struct cfg_layout_info *l = &cfg_layouts[c->layout];
    uint32_t installer = c->run_installer ? 1u : 0u;

    memset(image, 0, CFG_IMAGE_SIZE);
    vm_st_le32(image + CFG_OFF_VERSION, CFG_VERSION);
    vm_st_le32(image + CFG_OFF_NR_CPUS, c->nr_cpus);
    vm_st_le32(image + CFG_OFF_UNK1, CFG_UNK1_VALUE);
    vm_st_le32(image + CFG_OFF_UNK2, CFG_UNK2_VALUE);
    vm_st_le32(image + CFG_OFF_UNK3, CFG_UNK3_VALUE);
    vm_st_le32(image + CFG_OFF_UNK4, 0);
    vm_st_le64(image + CFG_OFF_ECID, c->ecid);
    vm_st_le64(image + CFG_OFF_RAM_SIZE, c->ram_size);
    vm_st_le32(image + CFG_OFF_RUN_INSTALLER1, installer);
    vm_st_le32(image + CFG_OFF_UNK5, CFG_UNK5_VALUE);
    vm_st_le32(image + CFG_OFF_UNK6, CFG_UNK6_VALUE);
    vm_st_le32(image + CFG_OFF_RUN_INSTALLER2, installer);
    vm_st_le32(image + CFG_OFF_RND, c->rnd);
    vm_st_le32(image + CFG_OFF_UNK7, 0);
    for (uint32_t i = 0; i < CFG_NR_MACS; i++) {
        memcpy(image + cfg_mac_offsets[i], c->mac[i], CFG_MAC_LEN);
    }
    for (uint32_t i = 0; i < c->nr_cpus; i++) {
        vm_st_le32(image + CFG_OFF_CPU_IDS + 4 * i, i);
    }
    cfg_put_string(image, l->serial, c->serial);
    cfg_put_string(image, l->unk8, CFG_UNK8_STRING);
    cfg_put_string(image, l->model, c->model);
    vm_st_le32(image + l->unk10, CFG_UNK10_VALUE);
    cfg_put_string(image, l->soc_name, c->soc_name);
}

/* Guest accesses: RAM. */

static int cfg_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                    uint64_t *value)
{
    (void)region;
    *value = vm_ld_le(to_cfg(dev)->image + offset, size);
    return 0;
}

static int cfg_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t value)
{
    (void)region;
    vm_st_le(to_cfg(dev)->image + offset, size, value);
    return 0;
}

static int cfg_region_memory(vmapple_device *dev, uint32_t region, void **host, uint64_t *size)
{
    (void)region;
    *host = to_cfg(dev)->image;
    *size = CFG_IMAGE_SIZE;
    return 0;
}

/* Lifecycle and state. */

static void cfg_reset(vmapple_device *dev)
{
    struct cfg *c = to_cfg(dev);
    cfg_build_image(&c->conf, c->image);
}

static void cfg_put_config(struct vm_state_writer *w, const struct cfg_config *c)
{
    vm_st_put_u32(w, c->layout);
    vm_st_put_u64(w, c->ecid);
    vm_st_put_u64(w, c->ram_size);
    vm_st_put_u32(w, c->nr_cpus);
    vm_st_put_u32(w, c->rnd);
    vm_st_put_bytes(w, c->mac, sizeof(c->mac));
    vm_st_put_bytes(w, c->serial, sizeof(c->serial));
    vm_st_put_bytes(w, c->model, sizeof(c->model));
    vm_st_put_bytes(w, c->soc_name, sizeof(c->soc_name));
    vm_st_put_bool(w, c->run_installer);
}

static void cfg_get_config(struct vm_state_reader *r, struct cfg_config *c)
{
    c->layout = vm_st_get_u32(r);
    c->ecid = vm_st_get_u64(r);
    c->ram_size = vm_st_get_u64(r);
    c->nr_cpus = vm_st_get_u32(r);
    c->rnd = vm_st_get_u32(r);
    vm_st_get_bytes(r, c->mac, sizeof(c->mac));
    vm_st_get_bytes(r, c->serial, sizeof(c->serial));
    vm_st_get_bytes(r, c->model, sizeof(c->model));
    vm_st_get_bytes(r, c->soc_name, sizeof(c->soc_name));
    c->run_installer = vm_st_get_bool(r);
}

static int cfg_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct cfg *c = to_cfg(dev);

    cfg_put_config(w, &c->conf);
    vm_st_put_bytes(w, c->image, sizeof(c->image));
    return 0;
}

/* Names the first configuration field of `blob` that differs from `mine`, or NULL. */
static const char *cfg_config_mismatch(const struct cfg_config *blob, const struct cfg_config *mine)
{
    if (blob->layout != mine->layout) {
        return "layout";
    }
    if (blob->ecid != mine->ecid) {
        return "ecid";
    }
    if (blob->ram_size != mine->ram_size) {
        return "ram_size";
    }
    if (blob->nr_cpus != mine->nr_cpus) {
        return "nr_cpus";
    }
    if (blob->rnd != mine->rnd) {
        return "rnd";
    }
    for (uint32_t i = 0; i < CFG_NR_MACS; i++) {
        if (memcmp(blob->mac[i], mine->mac[i], CFG_MAC_LEN) != 0) {
            return cfg_mac_names[i];
        }
    }
    /* Both sides are NUL-padded arrays; compare them whole. */
    if (memcmp(blob->serial, mine->serial, CFG_STRING_FIELD) != 0) {
        return "serial";
    }
    if (memcmp(blob->model, mine->model, CFG_STRING_FIELD) != 0) {
        return "model";
    }
    if (memcmp(blob->soc_name, mine->soc_name, CFG_STRING_FIELD) != 0) {
        return "soc_name";
    }
    if (blob->run_installer != mine->run_installer) {
        return "run_installer";
    }
    return NULL;
}

static int cfg_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct cfg *c = to_cfg(dev);
    struct cfg_config conf;
    uint8_t *image;
    const char *field;

    (void)version;
    memset(&conf, 0, sizeof(conf));
    image = malloc(CFG_IMAGE_SIZE);
    if (!image) {
        return vm_error(dev, -ENOMEM, "load: out of memory");
    }
    cfg_get_config(r, &conf);
    vm_st_get_bytes(r, image, CFG_IMAGE_SIZE);
    if (!vm_st_complete(r)) {
        free(image);
        return vm_error(dev, -EBADMSG, "load: truncated or malformed cfg state");
    }
    if (conf.layout != c->conf.layout) {
        uint32_t l = conf.layout;
        free(image);
        return vm_error(dev, -EINVAL,
                        "load: option layout: the blob is of the %s layout, this device uses the "
                        "%s layout",
                        l < VM_ARRAY_SIZE(cfg_layouts) ? cfg_layouts[l].name : "unknown",
                        cfg_layouts[c->conf.layout].name);
    }
    /*
     * The blob's configuration must be this device's: then the image the
     * guest may have changed is the only state, and any 64 KiB is valid RAM.
     */
    field = cfg_config_mismatch(&conf, &c->conf);
    if (field) {
        free(image);
        return vm_error(dev, -EINVAL, "load: option %s differs between the blob and this device",
                        field);
    }
    memcpy(c->image, image, CFG_IMAGE_SIZE);
    free(image);
    return 0;
}

static void cfg_destroy(vmapple_device *dev)
{
    free(to_cfg(dev));
}

static const struct vmapple_device_class cfg_class = {
    .type = VMAPPLE_DEVICE_CFG,
    .name = "cfg",
    .state_version = 1,
    .read = cfg_read,
    .write = cfg_write,
    .reset = cfg_reset,
    .save = cfg_save,
    .load = cfg_load,
    .destroy = cfg_destroy,
    .region_memory = cfg_region_memory,
};

/* Creation. */

static int cfg_take_string(char *dst, const char *value, const char *dflt, const char *option)
{
    size_t len;

    if (!value) {
        value = dflt;
    }
    len = strlen(value);
    if (len > VMAPPLE_CFG_MAX_STRING) {
        /* Never truncated: the firmware would read a different identity. */
        return vm_error_named("cfg", NULL, -EINVAL, "option %s is %zu characters, the limit is %u",
                              option, len, VMAPPLE_CFG_MAX_STRING);
    }
    memset(dst, 0, CFG_STRING_FIELD);
    memcpy(dst, value, len);
    return 0;
}

static int cfg_take_options(const vmapple_cfg_options *o, struct cfg_config *c)
{
    const struct cfg_layout_info *l;
    int ret;

    if (o->layout >= VM_ARRAY_SIZE(cfg_layouts)) {
        return vm_error_named("cfg", NULL, -EINVAL,
                              "option layout is %u; known layouts are 0 (compiled) and 1 "
                              "(commented)",
                              o->layout);
    }
    l = &cfg_layouts[o->layout];
    if (o->nr_cpus == 0) {
        return vm_error_named("cfg", NULL, -EINVAL,
                              "option nr_cpus is 0; it must be 1 to %u (the %s layout's cpu_ids "
                              "slots)",
                              l->cpu_slots, l->name);
    }
    if (o->nr_cpus > l->cpu_slots) {
        return vm_error_named("cfg", NULL, -EINVAL,
                              "option nr_cpus is %u, the limit is %u (the %s layout's cpu_ids "
                              "slots)",
                              o->nr_cpus, l->cpu_slots, l->name);
    }
    if (o->run_installer > 1) {
        return vm_error_named("cfg", NULL, -EINVAL, "option run_installer is %u; it must be 0 or 1",
                              o->run_installer);
    }
    if (o->reserved0 != 0) {
        return vm_error_named("cfg", NULL, -EINVAL, "option reserved0 must be 0");
    }
    ret = cfg_take_string(c->serial, o->serial, CFG_DEFAULT_SERIAL, "serial");
    if (ret == 0) {
        ret = cfg_take_string(c->model, o->model, CFG_DEFAULT_MODEL, "model");
    }
    if (ret == 0) {
        ret = cfg_take_string(c->soc_name, o->soc_name, CFG_DEFAULT_SOC_NAME, "soc_name");
    }
    if (ret < 0) {
        return ret;
    }
    c->layout = o->layout;
    c->ecid = o->ecid;
    c->ram_size = o->ram_size;
    c->nr_cpus = o->nr_cpus;
    c->rnd = o->rnd;
    memcpy(c->mac[0], o->mac_en0, CFG_MAC_LEN);
    memcpy(c->mac[1], o->mac_en1, CFG_MAC_LEN);
    memcpy(c->mac[2], o->mac_wifi0, CFG_MAC_LEN);
    memcpy(c->mac[3], o->mac_bt0, CFG_MAC_LEN);
    c->run_installer = o->run_installer != 0;
    return 0;
}

VMAPPLE_API int vmapple_cfg_create(const vmapple_host_ops *ops, void *opaque,
                                   const vmapple_cfg_options *user_opts, vmapple_device **out)
{
    vmapple_cfg_options opts = VMAPPLE_CFG_OPTIONS_INIT;
    struct cfg_config conf;
    struct cfg *c;
    int ret;

    if (!out) {
        return vm_error_named("cfg", NULL, -EINVAL, "create: NULL out");
    }
    *out = NULL;
    /* The defaults of a NULL options pointer (and of an older, shorter struct). */
    opts.layout = VMAPPLE_CFG_LAYOUT_COMPILED;
    opts.nr_cpus = 1;
    if (vm_sized_splits_field(user_opts, offsetof(vmapple_cfg_options, serial), sizeof(char *)) ||
        vm_sized_splits_field(user_opts, offsetof(vmapple_cfg_options, model), sizeof(char *)) ||
        vm_sized_splits_field(user_opts, offsetof(vmapple_cfg_options, soc_name), sizeof(char *))) {
        return vm_error_named("cfg", NULL, -EINVAL,
                              "cfg options: the size field ends inside a string pointer; set it "
                              "with VMAPPLE_CFG_OPTIONS_INIT");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "cfg options");
    if (ret < 0) {
        return ret;
    }
    memset(&conf, 0, sizeof(conf));
    ret = cfg_take_options(&opts, &conf);
    if (ret < 0) {
        return ret;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return vm_error_named("cfg", NULL, -ENOMEM, "out of memory");
    }
    ret = vm_device_init(&c->dev, &cfg_class, ops, opaque, cfg_regions, VM_ARRAY_SIZE(cfg_regions),
                         NULL, 0);
    if (ret < 0) {
        free(c);
        return ret;
    }
    c->conf = conf;
    cfg_reset(&c->dev);
    *out = &c->dev;
    return 0;
}
