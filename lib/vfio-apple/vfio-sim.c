/* SPDX-License-Identifier: MIT */
/*
 * A simulated host mechanism for vfio-apple: functions with config space
 * (every byte writable, every write logged), memory BARs backed by heap
 * memory, a pending-interrupt bitmap the test sets, an arm/notify cycle,
 * reset counting, and DMA registration through a DMA backend (a simulated
 * DART by default). Public, for VMMs' and bindings' tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

#define SIM_LOG_KEEP 256u
#define SIM_MAX_BAR  (1ull << 30)
#define SIM_NUM_BARS 6u
#define SIM_BAR_HOST 0xe0000000ull /* informational host bus addresses */

struct sim_fn {
    struct sim_fn *next;
    uint32_t key;
    uint8_t config[VMAPPLE_VFIO_CONFIG_SIZE];
    uint32_t config_len;
    uint32_t msi_vectors;
    uint8_t *bar_mem[SIM_NUM_BARS];
    uint64_t bar_size[SIM_NUM_BARS];
    uint32_t bar_flags[SIM_NUM_BARS];
    vmapple_vfio_sim_state st;
    bool notified_since_arm;
    struct {
        uint32_t offset, size, value;
    } log[SIM_LOG_KEEP];
};

struct vmapple_vfio_sim {
    vmapple_vfio_backend *backend;
    vmapple_dma_backend *dma;
    void (*notify)(void *opaque, uint32_t host_fn);
    void *notify_opaque;
    /* Test hooks may run on another thread than the backend's users. */
    pthread_mutex_t lock;
    struct sim_fn *fns, **tail;
};

#define sim_error(err, ...) vm_error_named("vfio-sim", NULL, (err), __VA_ARGS__)

static struct sim_fn *sim_find(struct vmapple_vfio_sim *sim, uint32_t key)
{
    for (struct sim_fn *f = sim->fns; f; f = f->next) {
        if (f->key == key) {
            return f;
        }
    }
    return NULL;
}

/* ---- backend operations ---- */

static int sim_connect(void *opaque, uint32_t key, void **conn)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f;
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    f = sim_find(sim, key);
    if (!f) {
        ret = -ENODEV;
    } else if (f->st.connected) {
        ret = -EBUSY; /* the registry should never let this happen */
    } else {
        f->st.connected = 1;
        f->st.connects++;
        *conn = f;
    }
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static void sim_disconnect(void *opaque, void *conn)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    pthread_mutex_lock(&sim->lock);
    f->st.connected = 0;
    f->st.armed = 0;
    pthread_mutex_unlock(&sim->lock);
}

static int sim_config_read(void *opaque, void *conn, uint32_t offset, void *buf, uint32_t len)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;
    uint32_t n;

    pthread_mutex_lock(&sim->lock);
    n = offset < f->config_len ? VM_MIN(len, f->config_len - offset) : 0;
    memcpy(buf, f->config + offset, n);
    pthread_mutex_unlock(&sim->lock);
    return (int)n;
}

static int sim_config_write(void *opaque, void *conn, uint32_t offset, uint32_t size,
                            uint32_t value)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;
    uint32_t slot;

    pthread_mutex_lock(&sim->lock);
    slot = f->st.config_writes % SIM_LOG_KEEP;
    f->log[slot].offset = offset;
    f->log[slot].size = size;
    f->log[slot].value = value;
    f->st.config_writes++;
    for (uint32_t i = 0; i < size && offset + i < f->config_len; i++) {
        f->config[offset + i] = (uint8_t)(value >> (8 * i));
    }
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static int sim_bar_info(void *opaque, void *conn, uint32_t bar, vmapple_vfio_bar_info *info)
{
    struct sim_fn *f = conn;

    (void)opaque;
    info->bar_size = f->bar_size[bar];
    info->flags = f->bar_size[bar] ? VMAPPLE_VFIO_BAR_MEM | f->bar_flags[bar] : 0;
    info->address = f->bar_size[bar] ? SIM_BAR_HOST + ((uint64_t)bar << 30) : 0;
    return 0;
}

static int sim_bar_map(void *opaque, void *conn, uint32_t bar, void **host, uint64_t *len)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    if (!f->bar_mem[bar]) {
        return -ENXIO;
    }
    pthread_mutex_lock(&sim->lock);
    f->st.bars_mapped++;
    pthread_mutex_unlock(&sim->lock);
    *host = f->bar_mem[bar];
    *len = f->bar_size[bar];
    return 0;
}

static void sim_bar_unmap(void *opaque, void *conn, uint32_t bar, void *host, uint64_t len)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    (void)bar;
    (void)host;
    (void)len;
    pthread_mutex_lock(&sim->lock);
    f->st.bars_mapped--;
    pthread_mutex_unlock(&sim->lock);
}

static int sim_dma_map(void *opaque, void *conn, uint64_t gpa, void *host, uint64_t len,
                       uint32_t flags, uint64_t *bus_addr, uint64_t *bus_len)
{
    struct vmapple_vfio_sim *sim = opaque;

    (void)conn;
    return vmapple_dma_backend_map(sim->dma, gpa, host, len, flags, bus_addr, bus_len);
}

static int sim_dma_unmap(void *opaque, void *conn, uint64_t gpa, uint64_t len, uint64_t bus_addr,
                         uint64_t bus_len)
{
    struct vmapple_vfio_sim *sim = opaque;

    (void)conn;
    return vmapple_dma_backend_unmap(sim->dma, gpa, len, bus_addr, bus_len);
}

static int sim_irq_setup(void *opaque, void *conn, uint32_t *vectors)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    pthread_mutex_lock(&sim->lock);
    f->st.irq_setups++;
    *vectors = f->msi_vectors;
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static int sim_irq_read_and_clear(void *opaque, void *conn, uint64_t pending[4])
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    pthread_mutex_lock(&sim->lock);
    memcpy(pending, f->st.pending, sizeof(f->st.pending));
    memset(f->st.pending, 0, sizeof(f->st.pending));
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static int sim_irq_set_mask(void *opaque, void *conn, const uint64_t mask[4])
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    pthread_mutex_lock(&sim->lock);
    memcpy(f->st.mask, mask, sizeof(f->st.mask));
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static bool any_pending(const struct sim_fn *f)
{
    return (f->st.pending[0] | f->st.pending[1] | f->st.pending[2] | f->st.pending[3]) != 0;
}

/* Called with sim->lock held; says whether to notify (outside the lock). */
static bool sim_should_notify(struct sim_fn *f)
{
    if (f->st.armed && any_pending(f)) {
        f->st.armed = 0;
        f->st.notifies++;
        return true;
    }
    return false;
}

static int sim_irq_arm(void *opaque, void *conn)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;
    bool notify;

    pthread_mutex_lock(&sim->lock);
    f->st.arms++;
    f->st.armed = 1;
    notify = sim_should_notify(f);
    pthread_mutex_unlock(&sim->lock);
    if (notify && sim->notify) {
        sim->notify(sim->notify_opaque, f->key);
    }
    return 0;
}

static int sim_reset(void *opaque, void *conn)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = conn;

    pthread_mutex_lock(&sim->lock);
    f->st.resets++;
    memset(f->st.pending, 0, sizeof(f->st.pending));
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static int sim_get_function(void *opaque, uint32_t index, vmapple_vfio_function_info *info)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f;
    int ret = -ENOENT;

    pthread_mutex_lock(&sim->lock);
    for (f = sim->fns; f && index; f = f->next) {
        index--;
    }
    if (f) {
        info->domain = 0;
        info->bus = (uint8_t)(f->key >> 16);
        info->device = (uint8_t)((f->key >> 8) & 0x1f);
        info->function = (uint8_t)(f->key & 7);
        info->vendor_id = vm_ld_le16(f->config + 0x00);
        info->device_id = vm_ld_le16(f->config + 0x02);
        info->revision = f->config[0x08];
        info->class_code = vm_ld_le32(f->config + 0x08) >> 8;
        info->subsystem_vendor_id = vm_ld_le16(f->config + 0x2c);
        info->subsystem_id = vm_ld_le16(f->config + 0x2e);
        ret = 0;
    }
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static void sim_close(void *opaque)
{
    struct vmapple_vfio_sim *sim = opaque;
    struct sim_fn *f = sim->fns;

    while (f) {
        struct sim_fn *next = f->next;
        for (uint32_t i = 0; i < SIM_NUM_BARS; i++) {
            free(f->bar_mem[i]);
        }
        free(f);
        f = next;
    }
    vmapple_dma_backend_release(sim->dma);
    pthread_mutex_destroy(&sim->lock);
    free(sim);
}

static const vmapple_vfio_backend_ops sim_ops = {
    .size = sizeof(vmapple_vfio_backend_ops),
    .connect = sim_connect,
    .disconnect = sim_disconnect,
    .config_read = sim_config_read,
    .config_write = sim_config_write,
    .bar_info = sim_bar_info,
    .bar_map = sim_bar_map,
    .bar_unmap = sim_bar_unmap,
    .dma_map = sim_dma_map,
    .dma_unmap = sim_dma_unmap,
    .irq_setup = sim_irq_setup,
    .irq_read_and_clear = sim_irq_read_and_clear,
    .irq_set_mask = sim_irq_set_mask,
    .irq_arm = sim_irq_arm,
    .reset = sim_reset,
    .get_function = sim_get_function,
    .close = sim_close,
};

/* ---- public ---- */

VMAPPLE_API int vmapple_vfio_sim_create(const vmapple_vfio_sim_options *user_opts,
                                        vmapple_vfio_sim **out)
{
    vmapple_vfio_sim_options opts = VMAPPLE_VFIO_SIM_OPTIONS_INIT;
    struct vmapple_vfio_sim *sim;
    int ret;

    if (!out) {
        return sim_error(-EINVAL, "create: NULL out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "vfio-sim options");
    if (ret < 0) {
        return ret;
    }
    if (opts.reserved) {
        return sim_error(-EINVAL, "option reserved is not 0");
    }
    sim = calloc(1, sizeof(*sim));
    if (!sim) {
        return -ENOMEM;
    }
    pthread_mutex_init(&sim->lock, NULL);
    sim->tail = &sim->fns;
    sim->notify = opts.notify;
    sim->notify_opaque = opts.notify_opaque;
    if (opts.dma) {
        vm_dma_backend_ref(opts.dma);
        sim->dma = opts.dma;
    } else if ((ret = vmapple_dma_backend_create_sim_dart(NULL, &sim->dma)) < 0) {
        pthread_mutex_destroy(&sim->lock);
        free(sim);
        return ret;
    }
    ret = vmapple_vfio_backend_create(&sim_ops, sim, &sim->backend);
    if (ret < 0) {
        sim_close(sim);
        return ret;
    }
    *out = sim;
    return 0;
}

VMAPPLE_API void vmapple_vfio_sim_destroy(vmapple_vfio_sim *sim)
{
    if (sim) {
        /* The functions go with the backend's last reference (sim_close). */
        vmapple_vfio_backend_release(sim->backend);
    }
}

VMAPPLE_API vmapple_vfio_backend *vmapple_vfio_sim_get_backend(vmapple_vfio_sim *sim)
{
    return sim ? sim->backend : NULL;
}

static int sim_check_function(const vmapple_vfio_sim_function *fn)
{
    uint32_t len = fn->config_len ? fn->config_len : VMAPPLE_VFIO_CONFIG_SIZE;

    if (fn->device > 31 || fn->function > 7) {
        return sim_error(-EINVAL, "function: %s is %u, the limit is %u",
                         fn->device > 31 ? "device" : "function",
                         fn->device > 31 ? fn->device : fn->function, fn->device > 31 ? 31 : 7);
    }
    if (len != 256 && len != VMAPPLE_VFIO_CONFIG_SIZE) {
        return sim_error(-EINVAL, "function: config_len %u is not 256 or 4096", len);
    }
    if (fn->config_bytes > len || (fn->config_bytes && !fn->config)) {
        return sim_error(-EINVAL, "function: config_bytes %u without config or above config_len %u",
                         fn->config_bytes, len);
    }
    if (fn->msi_vectors > VMAPPLE_VFIO_MAX_VECTORS) {
        return sim_error(-EINVAL, "function: msi_vectors is %u, the limit is %u", fn->msi_vectors,
                         VMAPPLE_VFIO_MAX_VECTORS);
    }
    if (fn->reserved0 || fn->reserved1) {
        return sim_error(-EINVAL, "function: reserved fields are not 0");
    }
    for (uint32_t i = 0; i < SIM_NUM_BARS; i++) {
        uint64_t sz = fn->bar_size[i];
        uint32_t fl = fn->bar_flags[i];
        if (fl & ~(uint32_t)(VMAPPLE_VFIO_BAR_64 | VMAPPLE_VFIO_BAR_PREFETCH)) {
            return sim_error(-EINVAL, "function: bar_flags[%u] 0x%x (only _64 and _PREFETCH)", i,
                             fl);
        }
        if (sz && (sz < 16 || sz > SIM_MAX_BAR || !vm_is_pow2(sz))) {
            return sim_error(-EINVAL,
                             "function: bar_size[%u] %llu is not a power of two in 16 .. 1 GiB", i,
                             (unsigned long long)sz);
        }
        if (!sz && fl) {
            return sim_error(-EINVAL, "function: bar_flags[%u] set without a BAR", i);
        }
        if (sz && (fl & VMAPPLE_VFIO_BAR_64) && (i == SIM_NUM_BARS - 1 || fn->bar_size[i + 1])) {
            return sim_error(-EINVAL, "function: 64-bit BAR%u needs BAR%u free", i, i + 1);
        }
        if (sz && i > 0 && (fn->bar_flags[i - 1] & VMAPPLE_VFIO_BAR_64) && fn->bar_size[i - 1]) {
            return sim_error(-EINVAL, "function: BAR%u is the upper half of BAR%u", i, i - 1);
        }
    }
    return 0;
}

VMAPPLE_API int vmapple_vfio_sim_add_function(vmapple_vfio_sim *sim,
                                              const vmapple_vfio_sim_function *user_fn)
{
    vmapple_vfio_sim_function fn = VMAPPLE_VFIO_SIM_FUNCTION_INIT;
    struct sim_fn *f;
    int ret;

    if (!sim || !user_fn) {
        return sim_error(-EINVAL, "add_function: NULL argument");
    }
    ret = vm_copy_sized(&fn, sizeof(fn), user_fn, "vfio-sim function");
    if (ret < 0 || (ret = sim_check_function(&fn)) < 0) {
        return ret;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->key = VMAPPLE_VFIO_HOST_FN(fn.bus, fn.device, fn.function);
    f->config_len = fn.config_len ? fn.config_len : VMAPPLE_VFIO_CONFIG_SIZE;
    if (fn.config_bytes) {
        memcpy(f->config, fn.config, fn.config_bytes);
    }
    f->msi_vectors = fn.msi_vectors;
    f->st.size = sizeof(f->st);
    for (uint32_t i = 0; i < SIM_NUM_BARS; i++) {
        f->bar_size[i] = fn.bar_size[i];
        f->bar_flags[i] = fn.bar_flags[i];
        if (fn.bar_size[i] && !(f->bar_mem[i] = calloc(1, (size_t)fn.bar_size[i]))) {
            ret = -ENOMEM;
        }
    }
    pthread_mutex_lock(&sim->lock);
    if (ret == 0 && sim_find(sim, f->key)) {
        ret =
            sim_error(-EEXIST, "add_function: %02x:%02x.%x exists", fn.bus, fn.device, fn.function);
    }
    if (ret == 0) {
        *sim->tail = f;
        sim->tail = &f->next;
    }
    pthread_mutex_unlock(&sim->lock);
    if (ret < 0) {
        for (uint32_t i = 0; i < SIM_NUM_BARS; i++) {
            free(f->bar_mem[i]);
        }
        free(f);
    }
    return ret;
}

VMAPPLE_API int vmapple_vfio_sim_raise(vmapple_vfio_sim *sim, uint32_t key, uint32_t vector)
{
    struct sim_fn *f;
    bool notify;

    if (!sim || vector >= VMAPPLE_VFIO_MAX_VECTORS) {
        return sim_error(-EINVAL, "raise: NULL simulation or vector %u (0 .. 255)", vector);
    }
    pthread_mutex_lock(&sim->lock);
    f = sim_find(sim, key);
    if (!f) {
        pthread_mutex_unlock(&sim->lock);
        return sim_error(-ENODEV, "raise: no function 0x%06x", key);
    }
    f->st.pending[vector / 64] |= 1ull << (vector % 64);
    notify = sim_should_notify(f);
    pthread_mutex_unlock(&sim->lock);
    if (notify && sim->notify) {
        sim->notify(sim->notify_opaque, key);
    }
    return 0;
}

VMAPPLE_API int vmapple_vfio_sim_get_state(vmapple_vfio_sim *sim, uint32_t key,
                                           vmapple_vfio_sim_state *state)
{
    vmapple_vfio_sim_state v;
    struct sim_fn *f;

    if (!sim || !state || state->size < 8) {
        return sim_error(-EINVAL, "get_state: NULL argument or size below 8");
    }
    pthread_mutex_lock(&sim->lock);
    f = sim_find(sim, key);
    if (f) {
        v = f->st;
    }
    pthread_mutex_unlock(&sim->lock);
    if (!f) {
        return sim_error(-ENODEV, "get_state: no function 0x%06x", key);
    }
    vm_fill_sized(state, &v, sizeof(v));
    return 0;
}

VMAPPLE_API int vmapple_vfio_sim_get_config_write(vmapple_vfio_sim *sim, uint32_t key,
                                                  uint32_t index, uint32_t *offset, uint32_t *size,
                                                  uint32_t *value)
{
    struct sim_fn *f;
    int ret = 0;

    if (!sim || !offset || !size || !value) {
        return sim_error(-EINVAL, "get_config_write: NULL argument");
    }
    pthread_mutex_lock(&sim->lock);
    f = sim_find(sim, key);
    if (!f) {
        ret = -ENODEV;
    } else if (index >= f->st.config_writes || f->st.config_writes - index > SIM_LOG_KEEP) {
        ret = -ENOENT;
    } else {
        *offset = f->log[index % SIM_LOG_KEEP].offset;
        *size = f->log[index % SIM_LOG_KEEP].size;
        *value = f->log[index % SIM_LOG_KEEP].value;
    }
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

VMAPPLE_API int vmapple_vfio_sim_get_bar_memory(vmapple_vfio_sim *sim, uint32_t key, uint32_t bar,
                                                void **host, uint64_t *len)
{
    struct sim_fn *f;
    int ret = 0;

    if (!sim || !host || !len || bar >= SIM_NUM_BARS) {
        return sim_error(-EINVAL, "get_bar_memory: NULL argument or BAR %u", bar);
    }
    pthread_mutex_lock(&sim->lock);
    f = sim_find(sim, key);
    if (!f) {
        ret = -ENODEV;
    } else if (!f->bar_mem[bar]) {
        ret = -ENXIO;
    } else {
        *host = f->bar_mem[bar];
        *len = f->bar_size[bar];
    }
    pthread_mutex_unlock(&sim->lock);
    return ret;
}
