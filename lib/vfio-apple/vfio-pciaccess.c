/* SPDX-License-Identifier: MIT */
/*
 * The libpciaccess backend of vfio-apple (Linux, the BSDs): enumerates the
 * host's PCI functions, reads their config space and BAR information, and
 * writes config or maps BARs only when the caller enabled it
 * (VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE). No IOMMU, interrupts or reset:
 * those callbacks are absent, which the policy reports as -ENOTSUP.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

#define pa_error(err, ...) vm_error_named("pciaccess", NULL, (err), __VA_ARGS__)

#ifndef VMAPPLE_HAVE_PCIACCESS

int vm_pciaccess_open(const vmapple_vfio_pciaccess_options *opts, vmapple_vfio_backend **out)
{
    (void)opts;
    (void)out;
    return pa_error(-ENOTSUP, "this libvmapple was built without libpciaccess (install "
                              "libpciaccess-dev and rebuild with -Dpciaccess=enabled)");
}

#else

#include <pciaccess.h>

/* libpciaccess has one process-wide state: initialised with our first user. */
static pthread_mutex_t pa_global_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned pa_users;

struct pa_backend {
    uint32_t flags;
    uint16_t domain;
    struct pci_device **devs;
    uint32_t nr_devs;
};

static int pa_errno(int err)
{
    return err > 0 ? -err : (err < 0 ? err : -EIO);
}

static bool pa_writable(const struct pa_backend *pa)
{
    return pa->flags & VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE;
}

static int pa_connect(void *opaque, uint32_t key, void **conn)
{
    struct pa_backend *pa = opaque;
    uint32_t bus = (key >> 16) & 0xff, dev = (key >> 8) & 0x1f, fn = key & 7;

    for (uint32_t i = 0; i < pa->nr_devs; i++) {
        struct pci_device *d = pa->devs[i];
        if (d->domain == pa->domain && d->bus == bus && d->dev == dev && d->func == fn) {
            /* Probing reads config space and sysfs "resource": no writes. */
            int err = pci_device_probe(d);
            if (err) {
                return pa_errno(err);
            }
            *conn = d;
            return 0;
        }
    }
    return -ENODEV;
}

static void pa_disconnect(void *opaque, void *conn)
{
    (void)opaque;
    (void)conn;
}

static int pa_config_read(void *opaque, void *conn, uint32_t offset, void *buf, uint32_t len)
{
    pciaddr_t got = 0;
    int err;

    (void)opaque;
    err = pci_device_cfg_read(conn, buf, offset, len, &got);
    if (err) {
        return pa_errno(err);
    }
    return (int)VM_MIN(got, (pciaddr_t)len);
}

static int pa_config_write(void *opaque, void *conn, uint32_t offset, uint32_t size, uint32_t value)
{
    struct pa_backend *pa = opaque;
    uint8_t bytes[4];
    pciaddr_t done = 0;
    int err;

    if (!pa_writable(pa)) {
        return -EPERM;
    }
    vm_st_le32(bytes, value);
    err = pci_device_cfg_write(conn, bytes, offset, size, &done);
    if (err) {
        return pa_errno(err);
    }
    return done == size ? 0 : -EIO;
}

static int pa_bar_info(void *opaque, void *conn, uint32_t bar, vmapple_vfio_bar_info *info)
{
    const struct pci_device *d = conn;
    const struct pci_mem_region *r = &d->regions[bar];

    (void)opaque;
    info->bar_size = r->size;
    info->address = r->base_addr;
    info->flags = 0;
    if (r->size) {
        info->flags = r->is_IO ? VMAPPLE_VFIO_BAR_IO : VMAPPLE_VFIO_BAR_MEM;
        info->flags |= r->is_64 ? VMAPPLE_VFIO_BAR_64 : 0;
        info->flags |= r->is_prefetchable ? VMAPPLE_VFIO_BAR_PREFETCH : 0;
    }
    return 0;
}

static int pa_bar_map(void *opaque, void *conn, uint32_t bar, void **host, uint64_t *len)
{
    struct pa_backend *pa = opaque;
    struct pci_device *d = conn;
    const struct pci_mem_region *r = &d->regions[bar];
    void *addr = NULL;
    int err;

    /* Even reading device memory can have side effects: mapping needs the flag too. */
    if (!pa_writable(pa)) {
        return -EPERM;
    }
    if (!r->size || r->is_IO) {
        return -ENOTSUP;
    }
    err = pci_device_map_range(d, r->base_addr, r->size, PCI_DEV_MAP_FLAG_WRITABLE, &addr);
    if (err) {
        return pa_errno(err);
    }
    *host = addr;
    *len = r->size;
    return 0;
}

static void pa_bar_unmap(void *opaque, void *conn, uint32_t bar, void *host, uint64_t len)
{
    (void)opaque;
    (void)bar;
    pci_device_unmap_range(conn, host, len);
}

static int pa_get_function(void *opaque, uint32_t index, vmapple_vfio_function_info *info)
{
    struct pa_backend *pa = opaque;
    const struct pci_device *d;

    if (index >= pa->nr_devs) {
        return -ENOENT;
    }
    d = pa->devs[index];
    info->domain = (uint16_t)d->domain;
    info->bus = d->bus;
    info->device = d->dev;
    info->function = d->func;
    info->revision = d->revision;
    info->vendor_id = d->vendor_id;
    info->device_id = d->device_id;
    info->subsystem_vendor_id = d->subvendor_id;
    info->subsystem_id = d->subdevice_id;
    info->class_code = d->device_class & 0xffffff;
    return 0;
}

static void pa_global_put(void)
{
    pthread_mutex_lock(&pa_global_lock);
    if (--pa_users == 0) {
        pci_system_cleanup();
    }
    pthread_mutex_unlock(&pa_global_lock);
}

static void pa_close(void *opaque)
{
    struct pa_backend *pa = opaque;

    free(pa->devs);
    free(pa);
    pa_global_put();
}

static const vmapple_vfio_backend_ops pa_ops = {
    .size = sizeof(vmapple_vfio_backend_ops),
    .connect = pa_connect,
    .disconnect = pa_disconnect,
    .config_read = pa_config_read,
    .config_write = pa_config_write,
    .bar_info = pa_bar_info,
    .bar_map = pa_bar_map,
    .bar_unmap = pa_bar_unmap,
    .get_function = pa_get_function,
    .close = pa_close,
};

static int pa_enumerate(struct pa_backend *pa)
{
    struct pci_device_iterator *it = pci_slot_match_iterator_create(NULL);
    struct pci_device *d;
    uint32_t cap = 0;

    if (!it) {
        return -ENOMEM;
    }
    while ((d = pci_device_next(it)) != NULL) {
        if (pa->nr_devs == cap) {
            uint32_t ncap = cap ? cap * 2 : 32;
            struct pci_device **devs = realloc(pa->devs, ncap * sizeof(*devs));
            if (!devs) {
                pci_iterator_destroy(it);
                return -ENOMEM;
            }
            pa->devs = devs;
            cap = ncap;
        }
        pa->devs[pa->nr_devs++] = d;
    }
    pci_iterator_destroy(it);
    return 0;
}

int vm_pciaccess_open(const vmapple_vfio_pciaccess_options *opts, vmapple_vfio_backend **out)
{
    struct pa_backend *pa;
    int ret = 0;

    pthread_mutex_lock(&pa_global_lock);
    if (pa_users == 0) {
        int err = pci_system_init();
        if (err) {
            ret = pa_error(pa_errno(err), "pci_system_init failed: %s",
                           vmapple_strerror(pa_errno(err)));
        }
    }
    if (ret == 0) {
        pa_users++;
    }
    pthread_mutex_unlock(&pa_global_lock);
    if (ret < 0) {
        return ret;
    }
    pa = calloc(1, sizeof(*pa));
    if (!pa) {
        pa_global_put();
        return -ENOMEM;
    }
    pa->flags = opts->flags;
    pa->domain = opts->domain;
    ret = pa_enumerate(pa);
    if (ret == 0) {
        ret = vmapple_vfio_backend_create(&pa_ops, pa, out);
    }
    if (ret < 0) {
        pa_close(pa);
    }
    return ret;
}

#endif /* VMAPPLE_HAVE_PCIACCESS */

VMAPPLE_API int
vmapple_vfio_backend_create_pciaccess(const vmapple_vfio_pciaccess_options *user_opts,
                                      vmapple_vfio_backend **out)
{
    vmapple_vfio_pciaccess_options opts = VMAPPLE_VFIO_PCIACCESS_OPTIONS_INIT;
    int ret;

    if (!out) {
        return pa_error(-EINVAL, "create: NULL out");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "pciaccess options");
    if (ret < 0) {
        return ret;
    }
    if (opts.flags & ~(uint32_t)VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE) {
        return pa_error(-EINVAL, "option flags 0x%x: unknown bits 0x%x", opts.flags,
                        opts.flags & ~(uint32_t)VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE);
    }
    return vm_pciaccess_open(&opts, out);
}
