/* SPDX-License-Identifier: MIT */
/*
 * vfio-apple: host mechanisms behind vmapple_vfio_backend_ops with their
 * connection registry, and the passthrough policy object. See
 * include/libvmapple/vfio-apple.h and spec/vfio-apple.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

/* Standard config offsets the policy cares about. */
#define CFG_COMMAND      0x04
#define CFG_STATUS       0x06
#define CFG_BAR0         0x10
#define CFG_BAR_END      0x27 /* last byte of BAR5 */
#define CFG_ROM_BAR      0x30 /* expansion ROM base address, 4 bytes */
#define CFG_CAP_PTR      0x34
#define CFG_STATUS_CAPS  0x10
#define CFG_CAP_ID_MSIX  0x11
#define CFG_MSIX_QSIZE   0x7ff
#define CFG_HEADER_BYTES 256u
/* A capability list longer than this is a loop. */
#define CFG_MAX_CAPS 48

#define NUM_BARS 6u

/* One open connection to a host function, shared by its users. */
struct vfio_conn {
    struct vfio_conn *next;
    uint32_t key;
    void *handle;
    uint32_t refs;
    bool owned;
};

struct vmapple_vfio_backend {
    int refs; /* atomic */
    vmapple_vfio_backend_ops ops;
    void *opaque;
    /* Serialises the registry and every callback. */
    pthread_mutex_t lock;
    struct vfio_conn *conns;
    char last_error[VM_ERROR_LEN];
};

static char *backend_slot(vmapple_vfio_backend *b)
{
    return b ? b->last_error : NULL;
}

#define backend_error(b, err, ...) \
    vm_error_named("vfio-backend", backend_slot(b), (err), __VA_ARGS__)

static int fn_name(char *buf, size_t len, uint32_t key)
{
    return snprintf(buf, len, "%02x:%02x.%x", (key >> 16) & 0xff, (key >> 8) & 0x1f, key & 7);
}

/* ---- backend object and registry ---- */

VMAPPLE_API int vmapple_vfio_backend_create(const vmapple_vfio_backend_ops *ops, void *opaque,
                                            vmapple_vfio_backend **out)
{
    vmapple_vfio_backend_ops copy = VMAPPLE_VFIO_BACKEND_OPS_INIT;
    vmapple_vfio_backend *b;
    uint32_t given;

    if (!ops || !out) {
        return backend_error(NULL, -EINVAL, "create: NULL %s", ops ? "out" : "ops");
    }
    if (vm_copy_ops(&copy, sizeof(copy), ops, &given) < 0) {
        return backend_error(NULL, -EINVAL,
                             "ops: size field is %u; set it with VMAPPLE_VFIO_BACKEND_OPS_INIT",
                             given);
    }
    if (!copy.connect || !copy.disconnect || !copy.config_read) {
        return backend_error(NULL, -EINVAL, "ops: %s is required",
                             !copy.connect      ? "connect"
                             : !copy.disconnect ? "disconnect"
                                                : "config_read");
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->refs = 1;
    b->ops = copy;
    b->opaque = opaque;
    pthread_mutex_init(&b->lock, NULL);
    *out = b;
    return 0;
}

void vm_vfio_backend_ref(vmapple_vfio_backend *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
}

VMAPPLE_API void vmapple_vfio_backend_release(vmapple_vfio_backend *b)
{
    if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    /* Every user holds a reference, so no connection is left here. */
    if (b->ops.close) {
        b->ops.close(b->opaque);
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

VMAPPLE_API const char *vmapple_vfio_backend_last_error(const vmapple_vfio_backend *b)
{
    return b ? b->last_error : "NULL vfio backend";
}

static struct vfio_conn *find_conn(vmapple_vfio_backend *b, uint32_t key)
{
    for (struct vfio_conn *c = b->conns; c; c = c->next) {
        if (c->key == key) {
            return c;
        }
    }
    return NULL;
}

/* Join (or open) the connection to `key`; an owner is refused when one exists. */
static int conn_acquire(vmapple_vfio_backend *b, uint32_t key, bool owner, struct vfio_conn **out)
{
    struct vfio_conn *c;
    char name[16];
    int ret = 0;

    fn_name(name, sizeof(name), key);
    pthread_mutex_lock(&b->lock);
    c = find_conn(b, key);
    if (c) {
        if (owner && c->owned) {
            ret = backend_error(b, -EBUSY, "host function %s already has an owner", name);
            goto out;
        }
        c->refs++;
        c->owned = c->owned || owner;
        *out = c;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        ret = -ENOMEM;
        goto out;
    }
    ret = b->ops.connect(b->opaque, key, &c->handle);
    if (ret > 0) {
        ret = -EIO;
    }
    if (ret < 0) {
        free(c);
        ret = backend_error(b, ret, "connect to host function %s: %s", name, vmapple_strerror(ret));
        goto out;
    }
    c->key = key;
    c->refs = 1;
    c->owned = owner;
    c->next = b->conns;
    b->conns = c;
    *out = c;
out:
    pthread_mutex_unlock(&b->lock);
    return ret;
}

static void conn_release(vmapple_vfio_backend *b, struct vfio_conn *c, bool owner)
{
    pthread_mutex_lock(&b->lock);
    if (owner) {
        c->owned = false;
    }
    if (--c->refs == 0) {
        for (struct vfio_conn **pp = &b->conns; *pp; pp = &(*pp)->next) {
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        }
        b->ops.disconnect(b->opaque, c->handle);
        free(c);
    }
    pthread_mutex_unlock(&b->lock);
}

static int backend_check(vmapple_vfio_backend *b, uint32_t key, const char *op)
{
    if (key & ~0xff1f07u) {
        return backend_error(b, -EINVAL, "%s: 0x%x is not a host function key", op, key);
    }
    return 0;
}

/* Callbacks under the backend lock; positive returns become -EIO. */
static int call_config_read(vmapple_vfio_backend *b, struct vfio_conn *c, uint32_t offset,
                            void *buf, uint32_t len)
{
    int ret;

    pthread_mutex_lock(&b->lock);
    ret = b->ops.config_read(b->opaque, c->handle, offset, buf, len);
    pthread_mutex_unlock(&b->lock);
    if (ret > (int)len) {
        ret = -EIO; /* never trust a count we did not ask for */
    }
    return ret;
}

static int call_bar_info(vmapple_vfio_backend *b, struct vfio_conn *c, uint32_t bar,
                         vmapple_vfio_bar_info *info)
{
    vmapple_vfio_bar_info v = VMAPPLE_VFIO_BAR_INFO_INIT;
    int ret = 0;

    if (b->ops.bar_info) {
        pthread_mutex_lock(&b->lock);
        ret = b->ops.bar_info(b->opaque, c->handle, bar, &v);
        pthread_mutex_unlock(&b->lock);
    }
    ret = ret > 0 ? -EIO : ret;
    if (ret == 0) {
        vm_fill_sized(info, &v, sizeof(v));
    }
    return ret;
}

VMAPPLE_API int vmapple_vfio_backend_get_function(vmapple_vfio_backend *b, uint32_t index,
                                                  vmapple_vfio_function_info *info)
{
    vmapple_vfio_function_info v = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    int ret;

    if (!b || !info || info->size < 8) {
        return backend_error(b, -EINVAL, "get_function: NULL argument or size below 8");
    }
    if (!b->ops.get_function) {
        return backend_error(b, -ENOTSUP, "get_function: this backend cannot enumerate");
    }
    pthread_mutex_lock(&b->lock);
    ret = b->ops.get_function(b->opaque, index, &v);
    pthread_mutex_unlock(&b->lock);
    if (ret < 0) {
        return ret == -ENOENT ? ret : backend_error(b, ret, "get_function %u failed", index);
    }
    vm_fill_sized(info, &v, sizeof(v));
    return 0;
}

VMAPPLE_API int vmapple_vfio_backend_read_config(vmapple_vfio_backend *b, uint32_t key,
                                                 uint32_t offset, void *buf, uint32_t len)
{
    struct vfio_conn *c;
    int ret;

    if (!b || !buf || len == 0 || offset >= VMAPPLE_VFIO_CONFIG_SIZE ||
        len > VMAPPLE_VFIO_CONFIG_SIZE - offset) {
        return backend_error(b, -EINVAL, "read_config: NULL argument or %u bytes at 0x%x", len,
                             offset);
    }
    if ((ret = backend_check(b, key, "read_config")) < 0 ||
        (ret = conn_acquire(b, key, false, &c)) < 0) {
        return ret;
    }
    ret = call_config_read(b, c, offset, buf, len);
    conn_release(b, c, false);
    return ret < 0 ? backend_error(b, ret, "read_config: %s", vmapple_strerror(ret)) : ret;
}

VMAPPLE_API int vmapple_vfio_backend_get_bar_info(vmapple_vfio_backend *b, uint32_t key,
                                                  uint32_t bar, vmapple_vfio_bar_info *info)
{
    struct vfio_conn *c;
    int ret;

    if (!b || !info || info->size < 8 || bar >= NUM_BARS) {
        return backend_error(b, -EINVAL, "get_bar_info: NULL argument, size below 8 or BAR %u",
                             bar);
    }
    if ((ret = backend_check(b, key, "get_bar_info")) < 0 ||
        (ret = conn_acquire(b, key, false, &c)) < 0) {
        return ret;
    }
    ret = call_bar_info(b, c, bar, info);
    conn_release(b, c, false);
    return ret < 0 ? backend_error(b, ret, "get_bar_info: %s", vmapple_strerror(ret)) : ret;
}

VMAPPLE_API int vmapple_vfio_backend_get_refs(vmapple_vfio_backend *b, uint32_t key)
{
    struct vfio_conn *c;
    int refs;

    if (!b) {
        return -EINVAL;
    }
    pthread_mutex_lock(&b->lock);
    c = find_conn(b, key);
    refs = c ? (int)c->refs : 0;
    pthread_mutex_unlock(&b->lock);
    return refs;
}

VMAPPLE_API int vmapple_vfio_backend_is_owned(vmapple_vfio_backend *b, uint32_t key)
{
    struct vfio_conn *c;
    int owned;

    if (!b) {
        return -EINVAL;
    }
    pthread_mutex_lock(&b->lock);
    c = find_conn(b, key);
    owned = c && c->owned;
    pthread_mutex_unlock(&b->lock);
    return owned;
}

/* ---- a DMA backend over a connection's dma_map / dma_unmap ---- */

struct conn_dma {
    vmapple_vfio_backend *b;
    struct vfio_conn *c;
};

static int conn_dma_map(void *opaque, uint64_t gpa, void *host, uint64_t len, uint32_t flags,
                        uint64_t *bus_addr, uint64_t *bus_len)
{
    struct conn_dma *d = opaque;
    int ret;

    if (!d->b->ops.dma_map) {
        return -ENOTSUP;
    }
    pthread_mutex_lock(&d->b->lock);
    ret = d->b->ops.dma_map(d->b->opaque, d->c->handle, gpa, host, len, flags, bus_addr, bus_len);
    pthread_mutex_unlock(&d->b->lock);
    return ret;
}

static int conn_dma_unmap(void *opaque, uint64_t gpa, uint64_t len, uint64_t bus_addr,
                          uint64_t bus_len)
{
    struct conn_dma *d = opaque;
    int ret;

    if (!d->b->ops.dma_unmap) {
        return -ENOTSUP;
    }
    pthread_mutex_lock(&d->b->lock);
    ret = d->b->ops.dma_unmap(d->b->opaque, d->c->handle, gpa, len, bus_addr, bus_len);
    pthread_mutex_unlock(&d->b->lock);
    return ret;
}

static void conn_dma_close(void *opaque)
{
    struct conn_dma *d = opaque;

    conn_release(d->b, d->c, false);
    vmapple_vfio_backend_release(d->b);
    free(d);
}

VMAPPLE_API int vmapple_vfio_backend_get_dma(vmapple_vfio_backend *b, uint32_t key,
                                             const vmapple_dma_backend_options *user_opts,
                                             vmapple_dma_backend **out)
{
    static const vmapple_dma_ops conn_dma_ops = {
        .size = sizeof(vmapple_dma_ops),
        .map = conn_dma_map,
        .unmap = conn_dma_unmap,
        .close = conn_dma_close,
    };
    vmapple_dma_backend_options opts = VMAPPLE_DMA_BACKEND_OPTIONS_INIT;
    struct conn_dma *d;
    int ret;

    if (!b || !out) {
        return backend_error(b, -EINVAL, "get_dma: NULL argument");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "dma backend options");
    if (ret < 0 || (ret = backend_check(b, key, "get_dma")) < 0) {
        return ret;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    ret = conn_acquire(b, key, false, &d->c);
    if (ret < 0) {
        free(d);
        return ret;
    }
    d->b = b;
    vm_vfio_backend_ref(b);
    ret = vm_dma_backend_new(&conn_dma_ops, d, "host-function", opts.max_mappings, opts.max_bytes,
                             out);
    if (ret < 0) {
        conn_dma_close(d);
    }
    return ret;
}

/* ---- the passthrough function ---- */

struct pt_bar {
    vmapple_vfio_bar_info info;
    void *host;
    uint64_t len;
    int map_err; /* why host is NULL for an implemented BAR */
};

struct vmapple_vfio_apple {
    vmapple_host_ops ops;
    void *opaque;
    vmapple_vfio_apple_options opts;
    vmapple_vfio_backend *backend;
    struct vfio_conn *conn;
    uint32_t key;
    char name[32];

    struct pt_bar bars[NUM_BARS];
    uint32_t msi_vectors, msix_entries;

    uint32_t irq_type, irq_enabled;
    uint64_t in_use[4];

    vmapple_device *companion;
    bool companion_auto;

    char last_error[VM_ERROR_LEN];
};

#define pt_error(pt, err, ...) vm_error_named((pt)->name, (pt)->last_error, (err), __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static void pt_log(vmapple_vfio_apple *pt, int level,
                                                         const char *fmt, ...)
{
    char msg[VM_ERROR_LEN];
    va_list ap;
    int n;

    if (!pt->ops.log) {
        return;
    }
    n = snprintf(msg, sizeof(msg), "%s: ", pt->name);
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    pt->ops.log(pt->opaque, level, msg);
}

static int pt_set_mask(vmapple_vfio_apple *pt, const uint64_t mask[4])
{
    vmapple_vfio_backend *b = pt->backend;
    int ret = 0;

    if (b->ops.irq_set_mask) {
        pthread_mutex_lock(&b->lock);
        ret = b->ops.irq_set_mask(b->opaque, pt->conn->handle, mask);
        pthread_mutex_unlock(&b->lock);
    }
    return ret > 0 ? -EIO : ret;
}

static void pt_arm(vmapple_vfio_apple *pt)
{
    vmapple_vfio_backend *b = pt->backend;
    int ret = 0;

    if (b->ops.irq_arm) {
        pthread_mutex_lock(&b->lock);
        ret = b->ops.irq_arm(b->opaque, pt->conn->handle);
        pthread_mutex_unlock(&b->lock);
    }
    if (ret < 0) {
        pt_log(pt, VMAPPLE_LOG_ERROR, "re-arming the interrupt notification failed: %s",
               vmapple_strerror(ret));
    }
}

/* The MSI-X table size from the function's capability list (0 without one). */
static uint32_t pt_msix_entries(vmapple_vfio_apple *pt)
{
    uint8_t cfg[CFG_HEADER_BYTES] = { 0 };
    uint32_t ptr;
    int n = call_config_read(pt->backend, pt->conn, 0, cfg, sizeof(cfg));

    /* Bytes the function does not have stay zero: a walk ends at them. */
    if (n < 0x40) {
        return 0;
    }
    if (!(cfg[CFG_STATUS] & CFG_STATUS_CAPS)) {
        return 0;
    }
    ptr = cfg[CFG_CAP_PTR] & 0xfc;
    for (int i = 0; i < CFG_MAX_CAPS && ptr >= 0x40; i++) {
        if (cfg[ptr] == CFG_CAP_ID_MSIX) {
            return (vm_ld_le16(cfg + ptr + 2) & CFG_MSIX_QSIZE) + 1u;
        }
        ptr = cfg[ptr + 1] & 0xfc;
    }
    return 0;
}

static void pt_map_bars(vmapple_vfio_apple *pt)
{
    vmapple_vfio_backend *b = pt->backend;

    for (uint32_t i = 0; i < NUM_BARS; i++) {
        struct pt_bar *bar = &pt->bars[i];
        int ret;

        bar->info.size = sizeof(bar->info);
        ret = call_bar_info(b, pt->conn, i, &bar->info);
        if (ret < 0) {
            pt_log(pt, VMAPPLE_LOG_WARNING, "BAR%u: no information: %s", i, vmapple_strerror(ret));
            memset(&bar->info, 0, sizeof(bar->info));
            bar->info.size = sizeof(bar->info);
            continue;
        }
        if (bar->info.bar_size == 0) {
            continue;
        }
        if (bar->info.flags & VMAPPLE_VFIO_BAR_IO) {
            bar->map_err = -ENOTSUP;
        } else if (!b->ops.bar_map) {
            bar->map_err = -ENOTSUP;
        } else {
            void *host = NULL;
            uint64_t len = 0;
            pthread_mutex_lock(&b->lock);
            ret = b->ops.bar_map(b->opaque, pt->conn->handle, i, &host, &len);
            pthread_mutex_unlock(&b->lock);
            if (ret == 0 && host && len) {
                bar->host = host;
                /* Accesses stay inside both the mapping and the BAR. */
                bar->len = VM_MIN(len, bar->info.bar_size);
            } else {
                bar->map_err = ret < 0 ? ret : -EIO;
            }
        }
        if (!bar->host) {
            pt_log(pt, VMAPPLE_LOG_WARNING, "BAR%u (%llu bytes) is not mapped: %s", i,
                   (unsigned long long)bar->info.bar_size, vmapple_strerror(bar->map_err));
        }
        if (bar->info.flags & VMAPPLE_VFIO_BAR_64) {
            i++; /* the upper half: no BAR of its own */
        }
    }
}

static void pt_unmap_bars(vmapple_vfio_apple *pt)
{
    vmapple_vfio_backend *b = pt->backend;

    for (uint32_t i = 0; i < NUM_BARS; i++) {
        struct pt_bar *bar = &pt->bars[i];
        if (bar->host && b->ops.bar_unmap) {
            pthread_mutex_lock(&b->lock);
            b->ops.bar_unmap(b->opaque, pt->conn->handle, i, bar->host, bar->len);
            pthread_mutex_unlock(&b->lock);
        }
        bar->host = NULL;
    }
}

static int pt_check_options(const vmapple_vfio_apple_options *o)
{
    if (!o->backend) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "option backend is required");
    }
    if (!o->irq_deliver) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "option irq_deliver is required");
    }
    if (o->host_device > 31 || o->host_function > 7) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "option host_%s is %u, the limit is %u",
                              o->host_device > 31 ? "device" : "function",
                              o->host_device > 31 ? o->host_device : o->host_function,
                              o->host_device > 31 ? 31 : 7);
    }
    for (size_t i = 0; i < sizeof(o->reserved); i++) {
        if (o->reserved[i]) {
            return vm_error_named("vfio-apple", NULL, -EINVAL, "option reserved[%zu] is not 0", i);
        }
    }
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_create(const vmapple_host_ops *ops, void *opaque,
                                          const vmapple_vfio_apple_options *user_opts,
                                          vmapple_vfio_apple **out)
{
    vmapple_vfio_apple_options opts = VMAPPLE_VFIO_APPLE_OPTIONS_INIT;
    static const uint64_t none[4] = { 0 };
    vmapple_vfio_apple *pt;
    vmapple_vfio_backend *b;
    uint32_t vectors = 0;
    int ret;

    if (!out || !user_opts) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "create: NULL %s",
                              out ? "options (a backend is required)" : "out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "vfio-apple options");
    if (ret < 0 || (ret = pt_check_options(&opts)) < 0) {
        return ret;
    }
    pt = calloc(1, sizeof(*pt));
    if (!pt) {
        return -ENOMEM;
    }
    ret = vm_copy_host_ops(&pt->ops, ops, "vfio-apple");
    if (ret < 0) {
        free(pt);
        return ret;
    }
    pt->opaque = opaque;
    b = opts.backend;
    pt->key = VMAPPLE_VFIO_HOST_FN(opts.host_bus, opts.host_device, opts.host_function);
    snprintf(pt->name, sizeof(pt->name), "vfio-apple %02x:%02x.%x", opts.host_bus, opts.host_device,
             opts.host_function);
    ret = conn_acquire(b, pt->key, true, &pt->conn);
    if (ret < 0) {
        /* The registry's message already names the function. */
        vm_set_thread_error(vmapple_vfio_backend_last_error(b));
        free(pt);
        return ret;
    }
    vm_vfio_backend_ref(b);
    pt->backend = b;
    pt->opts = opts;

    if (b->ops.irq_setup) {
        pthread_mutex_lock(&b->lock);
        ret = b->ops.irq_setup(b->opaque, pt->conn->handle, &vectors);
        pthread_mutex_unlock(&b->lock);
        if (ret < 0) {
            pt_log(pt, VMAPPLE_LOG_WARNING, "interrupt setup failed (%s): no MSI vectors",
                   vmapple_strerror(ret));
            vectors = 0;
        } else if (vectors > VMAPPLE_VFIO_MAX_VECTORS) {
            pt_log(pt, VMAPPLE_LOG_WARNING, "backend set up %u vectors; using %u", vectors,
                   VMAPPLE_VFIO_MAX_VECTORS);
            vectors = VMAPPLE_VFIO_MAX_VECTORS;
        }
    }
    pt->msi_vectors = vectors;
    pt->msix_entries = pt_msix_entries(pt);
    pt_map_bars(pt);
    pt->irq_type = VMAPPLE_VFIO_IRQ_NONE;
    if ((ret = pt_set_mask(pt, none)) < 0) {
        pt_log(pt, VMAPPLE_LOG_WARNING, "masking every vector failed: %s", vmapple_strerror(ret));
    }
    pt_arm(pt);
    *out = pt;
    return 0;
}

VMAPPLE_API void vmapple_vfio_apple_destroy(vmapple_vfio_apple *pt)
{
    static const uint64_t none[4] = { 0 };

    if (!pt) {
        return;
    }
    if (pt->companion_auto) {
        /* Its DMA backend holds a reference on the connection: it goes first. */
        vmapple_device_destroy(pt->companion);
    }
    pt_unmap_bars(pt);
    pt_set_mask(pt, none);
    conn_release(pt->backend, pt->conn, true);
    vmapple_vfio_backend_release(pt->backend);
    free(pt);
}

VMAPPLE_API const char *vmapple_vfio_apple_last_error(const vmapple_vfio_apple *pt)
{
    return pt ? pt->last_error : "NULL vfio-apple function";
}

/* Read `len` config bytes; bytes the function does not have read as 0. */
static int pt_config_read(vmapple_vfio_apple *pt, uint32_t offset, void *buf, uint32_t len)
{
    int n = call_config_read(pt->backend, pt->conn, offset, buf, len);

    if (n < 0) {
        return pt_error(pt, n, "config read of %u bytes at 0x%x: %s", len, offset,
                        vmapple_strerror(n));
    }
    memset((uint8_t *)buf + n, 0, len - (uint32_t)n);
    return 0;
}

static bool config_range_ok(uint32_t offset, uint32_t len)
{
    return offset < VMAPPLE_VFIO_CONFIG_SIZE && len <= VMAPPLE_VFIO_CONFIG_SIZE - offset;
}

VMAPPLE_API int vmapple_vfio_apple_config_read(vmapple_vfio_apple *pt, uint32_t offset,
                                               uint32_t size, uint32_t *value)
{
    uint8_t buf[4];
    int ret;

    if (!pt || !value) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "config_read: NULL argument");
    }
    *value = 0;
    if ((size != 1 && size != 2 && size != 4) || !config_range_ok(offset, size)) {
        return pt_error(pt, -EINVAL, "config_read: %u bytes at 0x%x (1, 2 or 4 inside 4 KiB)", size,
                        offset);
    }
    ret = pt_config_read(pt, offset, buf, size);
    for (uint32_t i = 0; ret == 0 && i < size; i++) {
        *value |= (uint32_t)buf[i] << (8 * i);
    }
    return ret;
}

VMAPPLE_API int vmapple_vfio_apple_config_read_block(vmapple_vfio_apple *pt, uint32_t offset,
                                                     void *buf, uint32_t len)
{
    if (!pt || !buf) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "config_read_block: NULL argument");
    }
    if (len == 0 || !config_range_ok(offset, len)) {
        return pt_error(pt, -EINVAL, "config_read_block: %u bytes at 0x%x leave the 4 KiB", len,
                        offset);
    }
    return pt_config_read(pt, offset, buf, len);
}

static int pt_forward(vmapple_vfio_apple *pt, uint32_t offset, uint32_t size, uint32_t value)
{
    vmapple_vfio_backend *b = pt->backend;
    int ret;

    if (!b->ops.config_write) {
        return pt_error(pt, -ENOTSUP, "config write at 0x%x: the backend cannot write", offset);
    }
    pthread_mutex_lock(&b->lock);
    ret = b->ops.config_write(b->opaque, pt->conn->handle, offset, size, value);
    pthread_mutex_unlock(&b->lock);
    ret = ret > 0 ? -EIO : ret;
    if (ret < 0) {
        return pt_error(pt, ret, "config write of %u bytes at 0x%x: %s", size, offset,
                        vmapple_strerror(ret));
    }
    return 0;
}

static bool cfg_is_command(uint32_t o)
{
    return o == CFG_COMMAND || o == CFG_COMMAND + 1;
}

/*
 * STATUS, the BARs and the expansion ROM BAR: owned by the host (address
 * decoding). The spec's list stops at 0x27, but the ROM BAR decodes host
 * addresses just the same, and the ROM region is not offered (size 0).
 */
static bool cfg_is_host_owned(uint32_t o)
{
    return o == CFG_STATUS || o == CFG_STATUS + 1 || (o >= CFG_BAR0 && o <= CFG_BAR_END) ||
           (o >= CFG_ROM_BAR && o < CFG_ROM_BAR + 4);
}

VMAPPLE_API int vmapple_vfio_apple_config_write(vmapple_vfio_apple *pt, uint32_t offset,
                                                uint32_t size, uint32_t value)
{
    bool command = false, host_owned = false;
    int ret;

    if (!pt) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "config_write: NULL function");
    }
    if ((size != 1 && size != 2 && size != 4) || !config_range_ok(offset, size)) {
        return pt_error(pt, -EINVAL, "config_write: %u bytes at 0x%x (1, 2 or 4 inside 4 KiB)",
                        size, offset);
    }
    for (uint32_t i = 0; i < size; i++) {
        command = command || cfg_is_command(offset + i);
        host_owned = host_owned || cfg_is_host_owned(offset + i);
    }
    if (!command && !host_owned) {
        return pt_forward(pt, offset, size, value);
    }
    /*
     * COMMAND bytes always reach the device, one at a time; the rest of a
     * write that touches STATUS or a BAR (ROM included) is dropped (and
     * reported done).
     */
    for (uint32_t i = 0; i < size; i++) {
        uint32_t o = offset + i;
        if (cfg_is_command(o) || !host_owned) {
            ret = pt_forward(pt, o, 1, (value >> (8 * i)) & 0xff);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

static int pt_bar_check(vmapple_vfio_apple *pt, const char *op, uint32_t bar, uint64_t offset,
                        uint32_t size)
{
    const struct pt_bar *b;

    if (!vm_access_size_ok(size) || bar >= NUM_BARS) {
        return pt_error(pt, -EINVAL, "%s: BAR %u, size %u (BAR 0..5, size 1, 2, 4 or 8)", op, bar,
                        size);
    }
    b = &pt->bars[bar];
    if (b->info.bar_size == 0) {
        return pt_error(pt, -ENXIO, "%s: BAR%u is not implemented", op, bar);
    }
    if (!b->host) {
        return pt_error(pt, b->map_err, "%s: BAR%u is not mapped: %s", op, bar,
                        vmapple_strerror(b->map_err));
    }
    if (offset >= b->len || size > b->len - offset) {
        return pt_error(pt, -ERANGE, "%s: %u bytes at 0x%llx leave BAR%u (0x%llx bytes)", op, size,
                        (unsigned long long)offset, bar, (unsigned long long)b->len);
    }
    if (offset % size) {
        return pt_error(pt, -EINVAL, "%s: %u bytes at 0x%llx of BAR%u are not aligned", op, size,
                        (unsigned long long)offset, bar);
    }
    return 0;
}

/* Device memory: one access of exactly the guest's width, in little-endian order. */
VMAPPLE_API int vmapple_vfio_apple_bar_read(vmapple_vfio_apple *pt, uint32_t bar, uint64_t offset,
                                            uint32_t size, uint64_t *value)
{
    uint8_t *p;
    uint64_t v;
    int ret;

    if (!pt || !value) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "bar_read: NULL argument");
    }
    *value = 0;
    ret = pt_bar_check(pt, "bar_read", bar, offset, size);
    if (ret < 0) {
        return ret;
    }
    p = (uint8_t *)pt->bars[bar].host + offset;
    switch (size) {
    case 1:
        v = *(volatile uint8_t *)p;
        break;
    case 2:
        v = *(volatile uint16_t *)(void *)p;
        break;
    case 4:
        v = *(volatile uint32_t *)(void *)p;
        break;
    default:
        v = *(volatile uint64_t *)(void *)p;
        break;
    }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v) >> (64 - 8 * size);
#endif
    *value = v;
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_bar_write(vmapple_vfio_apple *pt, uint32_t bar, uint64_t offset,
                                             uint32_t size, uint64_t value)
{
    uint8_t *p;
    int ret;

    if (!pt) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "bar_write: NULL function");
    }
    ret = pt_bar_check(pt, "bar_write", bar, offset, size);
    if (ret < 0) {
        return ret;
    }
    value &= vm_size_mask(size);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value) >> (64 - 8 * size);
#endif
    p = (uint8_t *)pt->bars[bar].host + offset;
    switch (size) {
    case 1:
        *(volatile uint8_t *)p = (uint8_t)value;
        break;
    case 2:
        *(volatile uint16_t *)(void *)p = (uint16_t)value;
        break;
    case 4:
        *(volatile uint32_t *)(void *)p = (uint32_t)value;
        break;
    default:
        *(volatile uint64_t *)(void *)p = value;
        break;
    }
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_get_bar_memory(vmapple_vfio_apple *pt, uint32_t bar, void **host,
                                                  uint64_t *len)
{
    if (!pt || !host || !len || bar >= NUM_BARS) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "get_bar_memory: NULL argument or BAR %u", bar);
    }
    if (pt->bars[bar].info.bar_size == 0) {
        return pt_error(pt, -ENXIO, "get_bar_memory: BAR%u is not implemented", bar);
    }
    if (!pt->bars[bar].host) {
        return pt_error(pt, pt->bars[bar].map_err, "get_bar_memory: BAR%u is not mapped", bar);
    }
    *host = pt->bars[bar].host;
    *len = pt->bars[bar].len;
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_get_region_info(vmapple_vfio_apple *pt, uint32_t index,
                                                   vmapple_vfio_region_info *info)
{
    vmapple_vfio_region_info v = VMAPPLE_VFIO_REGION_INFO_INIT;

    if (!pt || !info || info->size < 8 || index >= VMAPPLE_VFIO_NUM_REGIONS) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "get_region_info: NULL argument, size below 8 or region %u", index);
    }
    if (index < NUM_BARS) {
        const struct pt_bar *bar = &pt->bars[index];
        v.region_size = bar->info.bar_size;
        if (v.region_size) {
            v.flags = VMAPPLE_VFIO_REGION_READ | VMAPPLE_VFIO_REGION_WRITE;
            v.flags |= bar->host ? VMAPPLE_VFIO_REGION_MMAP : 0;
        }
    } else if (index == VMAPPLE_VFIO_REGION_CONFIG) {
        v.region_size = VMAPPLE_VFIO_CONFIG_SIZE;
        v.flags = VMAPPLE_VFIO_REGION_READ | VMAPPLE_VFIO_REGION_WRITE;
    }
    vm_fill_sized(info, &v, sizeof(v));
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_get_irq_count(vmapple_vfio_apple *pt, uint32_t type)
{
    if (!pt) {
        return -EINVAL;
    }
    switch (type) {
    case VMAPPLE_VFIO_IRQ_INTX:
        return 1;
    case VMAPPLE_VFIO_IRQ_MSI:
        return (int)pt->msi_vectors;
    case VMAPPLE_VFIO_IRQ_MSIX:
        return (int)pt->msix_entries;
    case VMAPPLE_VFIO_IRQ_ERR:
    case VMAPPLE_VFIO_IRQ_REQ:
        return 0;
    default:
        return pt_error(pt, -EINVAL, "get_irq_count: unknown type %u", type);
    }
}

VMAPPLE_API int vmapple_vfio_apple_set_irqs(vmapple_vfio_apple *pt, uint32_t type, uint32_t enabled,
                                            const uint64_t in_use[4])
{
    uint64_t mask[4] = { 0 };
    uint32_t limit;
    int ret;

    if (!pt) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "set_irqs: NULL function");
    }
    switch (type) {
    case VMAPPLE_VFIO_IRQ_NONE:
        limit = 0;
        break;
    case VMAPPLE_VFIO_IRQ_INTX:
        limit = 1;
        mask[0] = 1;
        break;
    case VMAPPLE_VFIO_IRQ_MSI:
    case VMAPPLE_VFIO_IRQ_MSIX:
        limit = type == VMAPPLE_VFIO_IRQ_MSI ? pt->msi_vectors : pt->msix_entries;
        if (in_use) {
            memcpy(mask, in_use, sizeof(mask));
        }
        /* Vectors from `enabled` up are never delivered: unmasking them only wakes us. */
        for (uint32_t w = 0; w < 4; w++) {
            uint32_t first = w * 64;
            mask[w] &= enabled >= first + 64 ? ~0ull
                       : enabled > first     ? (1ull << (enabled - first)) - 1
                                             : 0;
        }
        break;
    default:
        return pt_error(pt, -EINVAL, "set_irqs: unknown type %u", type);
    }
    if (enabled > limit || (type == VMAPPLE_VFIO_IRQ_INTX && enabled != 1)) {
        return pt_error(pt, -EINVAL, "set_irqs: %u vectors enabled, the function has %u", enabled,
                        limit);
    }
    ret = pt_set_mask(pt, mask);
    if (ret < 0) {
        return pt_error(pt, ret, "set_irqs: the backend refused the mask: %s",
                        vmapple_strerror(ret));
    }
    pt->irq_type = type;
    pt->irq_enabled = enabled;
    memcpy(pt->in_use, mask, sizeof(mask));
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_process_interrupts(vmapple_vfio_apple *pt)
{
    vmapple_vfio_backend *b;
    uint64_t pending[4] = { 0 };
    int ret = 0, delivered = 0;

    if (!pt) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "process_interrupts: NULL function");
    }
    b = pt->backend;
    if (b->ops.irq_read_and_clear) {
        pthread_mutex_lock(&b->lock);
        ret = b->ops.irq_read_and_clear(b->opaque, pt->conn->handle, pending);
        pthread_mutex_unlock(&b->lock);
        ret = ret > 0 ? -EIO : ret;
    }
    if (ret < 0) {
        pt_arm(pt);
        return pt_error(pt, ret, "reading the pending interrupts failed: %s",
                        vmapple_strerror(ret));
    }
    if (pt->irq_type == VMAPPLE_VFIO_IRQ_INTX) {
        if (pending[0] & 1) {
            pt->opts.irq_deliver(pt->opaque, VMAPPLE_VFIO_IRQ_INTX, 0);
            delivered = 1;
        }
    } else if (pt->irq_type == VMAPPLE_VFIO_IRQ_MSI || pt->irq_type == VMAPPLE_VFIO_IRQ_MSIX) {
        for (uint32_t w = 0; w < 4; w++) {
            uint64_t bits = pending[w] & pt->in_use[w];
            while (bits) {
                uint32_t v = w * 64 + (uint32_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (v < pt->irq_enabled) {
                    pt->opts.irq_deliver(pt->opaque, pt->irq_type, v);
                    delivered++;
                }
            }
        }
    }
    pt_arm(pt);
    return delivered;
}

VMAPPLE_API int vmapple_vfio_apple_reset(vmapple_vfio_apple *pt)
{
    static const uint64_t none[4] = { 0 };
    vmapple_vfio_backend *b;
    int ret;

    if (!pt) {
        return vm_error_named("vfio-apple", NULL, -EINVAL, "reset: NULL function");
    }
    b = pt->backend;
    if (!b->ops.reset) {
        return pt_error(pt, -ENOTSUP, "reset: the backend cannot reset functions");
    }
    pthread_mutex_lock(&b->lock);
    ret = b->ops.reset(b->opaque, pt->conn->handle);
    pthread_mutex_unlock(&b->lock);
    ret = ret > 0 ? -EIO : ret;
    if (ret < 0) {
        return pt_error(pt, ret, "reset failed: %s", vmapple_strerror(ret));
    }
    pt->irq_type = VMAPPLE_VFIO_IRQ_NONE;
    pt->irq_enabled = 0;
    memset(pt->in_use, 0, sizeof(pt->in_use));
    if ((ret = pt_set_mask(pt, none)) < 0) {
        pt_log(pt, VMAPPLE_LOG_WARNING, "masking after reset failed: %s", vmapple_strerror(ret));
    }
    return 0;
}

VMAPPLE_API int vmapple_vfio_apple_attach_companion(vmapple_vfio_apple *pt,
                                                    vmapple_device *const *candidates,
                                                    uint32_t count, vmapple_device **companion)
{
    vmapple_apple_dma_pci_options copts = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_device *found = NULL, *dev;
    vmapple_dma_backend *dma = NULL;
    int ret;

    if (!pt || !companion || (count && !candidates)) {
        return vm_error_named("vfio-apple", pt ? pt->last_error : NULL, -EINVAL,
                              "attach_companion: NULL argument");
    }
    if (pt->companion_auto) {
        return pt_error(pt, -EBUSY, "attach_companion: a companion was already created");
    }
    for (uint32_t i = 0; i < count; i++) {
        vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
        bool same_guest, same_host;
        if (!candidates[i] || vmapple_apple_dma_pci_get_info(candidates[i], &info) < 0) {
            continue;
        }
        same_guest = info.managed_bdf == pt->opts.guest_bdf;
        same_host =
            VMAPPLE_VFIO_HOST_FN(info.host_bus, info.host_device, info.host_function) == pt->key;
        if (!same_guest && !same_host) {
            continue;
        }
        if (!same_guest || !same_host) {
            return pt_error(pt, -EEXIST,
                            "attach_companion: %s (candidate %u) serves guest BDF 0x%04x for host "
                            "function %02x:%02x.%x, this function is guest BDF 0x%04x",
                            vmapple_device_get_name(candidates[i]), i, info.managed_bdf,
                            info.host_bus, info.host_device, info.host_function,
                            pt->opts.guest_bdf);
        }
        if (found && found != candidates[i]) {
            return pt_error(pt, -EEXIST, "attach_companion: two companions (%s and candidate %u)",
                            vmapple_device_get_name(found), i);
        }
        found = candidates[i];
    }
    if (found) {
        pt->companion = found;
        *companion = found;
        return 0;
    }
    if (pt->opts.companion) {
        ret = vm_copy_sized(&copts, sizeof(copts), pt->opts.companion, "companion options");
        if (ret < 0) {
            return pt_error(pt, ret, "attach_companion: %s", vmapple_last_error());
        }
    }
    if (!copts.dma) {
        ret = vmapple_vfio_backend_get_dma(pt->backend, pt->key, NULL, &dma);
        if (ret < 0) {
            return pt_error(pt, ret, "attach_companion: %s",
                            vmapple_vfio_backend_last_error(pt->backend));
        }
        copts.dma = dma;
    }
    copts.managed_bdf = pt->opts.guest_bdf;
    copts.host_bus = pt->opts.host_bus;
    copts.host_device = pt->opts.host_device;
    copts.host_function = pt->opts.host_function;
    ret = vmapple_apple_dma_pci_create(&pt->ops, pt->opaque, &copts, &dev);
    vmapple_dma_backend_release(dma); /* the device holds its own reference */
    if (ret < 0) {
        return pt_error(pt, ret, "attach_companion: %s", vmapple_last_error());
    }
    pt->companion = dev;
    pt->companion_auto = true;
    *companion = dev;
    return 1;
}
