/* SPDX-License-Identifier: MIT */
/*
 * pvpanic over MMIO: reads return the supported events, writes report
 * events to the host (callback, counters, log). See include/libvmapple/pvpanic.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "state.h"

/* The whole window is one register: any offset reads and writes it. */
#define PVPANIC_NR_EVENTS 3u

static const char *const pvpanic_event_names[PVPANIC_NR_EVENTS] = { "panicked", "crash-loaded",
                                                                    "shutdown" };

struct pvpanic {
    vmapple_device dev;
    uint32_t supported; /* VMAPPLE_PVPANIC_* the device offers */
    vmapple_pvpanic_event_fn event;
    uint64_t counts[PVPANIC_NR_EVENTS];
    uint64_t unsupported_writes;
    bool unsupported_logged; /* "logged once" per device */
};

static const vmapple_region_info pvpanic_regions[] = {
    { "pvpanic", VMAPPLE_PVPANIC_SIZE, VMAPPLE_PVPANIC_BASE, VMAPPLE_REGION_MMIO, UINT32_MAX },
};

static struct pvpanic *to_pvpanic(vmapple_device *dev)
{
    return vm_container_of(dev, struct pvpanic, dev);
}

static int pvpanic_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                        uint64_t *value)
{
    (void)region;
    (void)offset;
    (void)size;
    *value = to_pvpanic(dev)->supported;
    return 0;
}

static void pvpanic_deliver(struct pvpanic *p, uint32_t events)
{
    for (uint32_t i = 0; i < PVPANIC_NR_EVENTS; i++) {
        if (events & (1u << i)) {
            p->counts[i]++;
        }
    }
    /* The callback is the report; it never depends on the host's log. */
    if (p->event) {
        p->event(p->dev.opaque, events);
    }
    /* Rate-limited: a guest writing in a loop must not flood the host's log. */
    vm_log_ratelimited(
        &p->dev, (events & VMAPPLE_PVPANIC_PANICKED) ? VMAPPLE_LOG_WARNING : VMAPPLE_LOG_INFO,
        "guest reported%s%s%s", (events & VMAPPLE_PVPANIC_PANICKED) ? " panicked" : "",
        (events & VMAPPLE_PVPANIC_CRASH_LOADED) ? " crash-loaded" : "",
        (events & VMAPPLE_PVPANIC_SHUTDOWN) ? " shutdown" : "");
}

static int pvpanic_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                         uint64_t value)
{
    struct pvpanic *p = to_pvpanic(dev);
    uint64_t unsupported = value & ~(uint64_t)p->supported;
    uint32_t events = (uint32_t)(value & p->supported);

    (void)region;
    (void)offset;
    (void)size;
    if (unsupported) {
        p->unsupported_writes++;
        if (!p->unsupported_logged) {
            p->unsupported_logged = true;
            vm_guest_error(dev,
                           "write of 0x%llx: unsupported event bits 0x%llx ignored (supported "
                           "0x%x; logged once)",
                           (unsigned long long)value, (unsigned long long)unsupported,
                           p->supported);
        }
    }
    if (events) {
        pvpanic_deliver(p, events);
    }
    return 0;
}

static void pvpanic_reset(vmapple_device *dev)
{
    /*
     * The device has no guest-visible state. The counts are the host's
     * record of what the guest reported and survive a machine reset.
     */
    (void)dev;
}

static int pvpanic_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct pvpanic *p = to_pvpanic(dev);

    vm_st_put_u32(w, p->supported);
    for (uint32_t i = 0; i < PVPANIC_NR_EVENTS; i++) {
        vm_st_put_u64(w, p->counts[i]);
    }
    vm_st_put_u64(w, p->unsupported_writes);
    vm_st_put_bool(w, p->unsupported_logged);
    return 0;
}

static int pvpanic_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct pvpanic *p = to_pvpanic(dev);
    uint64_t counts[PVPANIC_NR_EVENTS], unsupported_writes;
    uint32_t supported;
    bool logged;

    (void)version;
    supported = vm_st_get_u32(r);
    for (uint32_t i = 0; i < PVPANIC_NR_EVENTS; i++) {
        counts[i] = vm_st_get_u64(r);
    }
    unsupported_writes = vm_st_get_u64(r);
    logged = vm_st_get_bool(r);
    if (!vm_st_complete(r)) {
        return vm_error(dev, -EBADMSG, "load: truncated or malformed pvpanic state");
    }
    if (supported != p->supported) {
        return vm_error(dev, -EINVAL,
                        "load: option events: the blob supports 0x%x, this device 0x%x", supported,
                        p->supported);
    }
    /* A count of events that was never possible on this device is tampering. */
    for (uint32_t i = 0; i < PVPANIC_NR_EVENTS; i++) {
        if (counts[i] != 0 && !(supported & (1u << i))) {
            return vm_error(dev, -EBADMSG,
                            "load: the blob counts %s events, which this device does not support",
                            pvpanic_event_names[i]);
        }
    }
    if (logged != (unsupported_writes != 0)) {
        return vm_error(dev, -EBADMSG, "load: inconsistent unsupported-write state");
    }
    memcpy(p->counts, counts, sizeof(counts));
    p->unsupported_writes = unsupported_writes;
    p->unsupported_logged = logged;
    return 0;
}

static void pvpanic_destroy(vmapple_device *dev)
{
    free(to_pvpanic(dev));
}

static const struct vmapple_device_class pvpanic_class = {
    .type = VMAPPLE_DEVICE_PVPANIC,
    .name = "pvpanic",
    .state_version = 1,
    .read = pvpanic_read,
    .write = pvpanic_write,
    .reset = pvpanic_reset,
    .save = pvpanic_save,
    .load = pvpanic_load,
    .destroy = pvpanic_destroy,
};

VMAPPLE_API int vmapple_pvpanic_create(const vmapple_host_ops *ops, void *opaque,
                                       const vmapple_pvpanic_options *user_opts,
                                       vmapple_device **out)
{
    vmapple_pvpanic_options opts = VMAPPLE_PVPANIC_OPTIONS_INIT;
    struct pvpanic *p;
    int ret;

    if (!out) {
        return vm_error_named("pvpanic", NULL, -EINVAL, "create: NULL out");
    }
    *out = NULL;
    if (vm_sized_splits_field(user_opts, offsetof(vmapple_pvpanic_options, event),
                              sizeof(opts.event))) {
        return vm_error_named("pvpanic", NULL, -EINVAL,
                              "pvpanic options: the size field ends inside the event pointer; set "
                              "it with VMAPPLE_PVPANIC_OPTIONS_INIT");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "pvpanic options");
    if (ret < 0) {
        return ret;
    }
    if (opts.events & ~(uint32_t)VMAPPLE_PVPANIC_ALL_EVENTS) {
        return vm_error_named("pvpanic", NULL, -EINVAL,
                              "option events: unknown bits 0x%x (known: 0x%x)",
                              opts.events & ~(uint32_t)VMAPPLE_PVPANIC_ALL_EVENTS,
                              (uint32_t)VMAPPLE_PVPANIC_ALL_EVENTS);
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        return vm_error_named("pvpanic", NULL, -ENOMEM, "out of memory");
    }
    ret = vm_device_init(&p->dev, &pvpanic_class, ops, opaque, pvpanic_regions,
                         VM_ARRAY_SIZE(pvpanic_regions), NULL, 0);
    if (ret < 0) {
        free(p);
        return ret;
    }
    p->supported = opts.events ? opts.events : (uint32_t)VMAPPLE_PVPANIC_DEFAULT_EVENTS;
    p->event = opts.event;
    pvpanic_reset(&p->dev);
    *out = &p->dev;
    return 0;
}

VMAPPLE_API int vmapple_pvpanic_get_counts(const vmapple_device *dev,
                                           vmapple_pvpanic_counts *counts)
{
    vmapple_pvpanic_counts full;
    const struct pvpanic *p;
    uint32_t size;

    if (!dev || !counts) {
        return vm_error(NULL, -EINVAL, "pvpanic: get_counts: NULL %s", dev ? "counts" : "device");
    }
    if (dev->cls != &pvpanic_class) {
        return vm_error(NULL, -EINVAL, "pvpanic: get_counts: %s is not a pvpanic device",
                        dev->name);
    }
    size = counts->size;
    if (size < 2 * sizeof(uint32_t)) {
        return vm_error(NULL, -EINVAL,
                        "pvpanic: get_counts: size field is %u; set it with "
                        "VMAPPLE_PVPANIC_COUNTS_INIT",
                        size);
    }
    p = vm_container_of(dev, struct pvpanic, dev);
    memset(&full, 0, sizeof(full));
    full.supported = p->supported;
    full.panicked = p->counts[0];
    full.crash_loaded = p->counts[1];
    full.shutdown = p->counts[2];
    full.unsupported_writes = p->unsupported_writes;
    vm_fill_sized(counts, &full, sizeof(full));
    return 0;
}
