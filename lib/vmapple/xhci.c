/* SPDX-License-Identifier: MIT */
/*
 * The xHCI interrupter-mapping quirk as a policy object: for each event,
 * which event ring receives it and which vector or pin to signal. The rules
 * are in include/libvmapple/xhci.h; the state is the controller's interrupt
 * mode as the host mirrors it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "state.h"

#define XHCI_KNOWN_IRQ_FLAGS (VMAPPLE_XHCI_MSI_ENABLED | VMAPPLE_XHCI_MSIX_ENABLED)

/* The controller's interrupt mode, as last set by the host. */
struct xhci_irq {
    uint32_t flags;        /* VMAPPLE_XHCI_MSI_ENABLED | _MSIX_ENABLED */
    uint32_t msi_vectors;  /* 0 unless MSI is enabled */
    uint32_t msix_vectors; /* 0 unless MSI-X is enabled */
};

struct xhci_policy {
    vmapple_device dev;
    uint32_t numintrs;
    uint32_t mapping; /* vmapple_xhci_mapping */
    struct xhci_irq irq;
};

static struct xhci_policy *to_xhci(vmapple_device *dev)
{
    return vm_container_of(dev, struct xhci_policy, dev);
}

/* Why `s` is not a state the controller can be in, or NULL. */
static const char *xhci_irq_invalid(const struct xhci_irq *s)
{
    if (s->flags & ~(uint32_t)XHCI_KNOWN_IRQ_FLAGS) {
        return "unknown flags";
    }
    if (s->flags & VMAPPLE_XHCI_MSI_ENABLED) {
        if (!vm_is_pow2(s->msi_vectors) || s->msi_vectors > VMAPPLE_XHCI_MAX_MSI_VECTORS) {
            return "msi_vectors must be a power of two from 1 to 32 while MSI is enabled";
        }
    } else if (s->msi_vectors != 0) {
        return "msi_vectors without MSI enabled";
    }
    if (s->flags & VMAPPLE_XHCI_MSIX_ENABLED) {
        if (s->msix_vectors == 0 || s->msix_vectors > VMAPPLE_XHCI_MAX_MSIX_VECTORS) {
            return "msix_vectors must be 1 to 2048 while MSI-X is enabled";
        }
    } else if (s->msix_vectors != 0) {
        return "msix_vectors without MSI-X enabled";
    }
    return NULL;
}

/* The routing rules. */

static void xhci_route_event(struct xhci_policy *x, uint32_t target, vmapple_xhci_route *r)
{
    uint32_t mode, vectors = 0;
    bool mapping;

    /* Enabling both is undefined on PCI; MSI-X wins, as on the reference. */
    if (x->irq.flags & VMAPPLE_XHCI_MSIX_ENABLED) {
        mode = VMAPPLE_XHCI_IRQ_MSIX;
        vectors = x->irq.msix_vectors;
    } else if (x->irq.flags & VMAPPLE_XHCI_MSI_ENABLED) {
        mode = VMAPPLE_XHCI_IRQ_MSI;
        vectors = x->irq.msi_vectors;
    } else {
        mode = VMAPPLE_XHCI_IRQ_PIN;
    }
    /* Rule 2: one interrupter means no mapping. Rule 3: none without MSI/MSI-X. */
    mapping = x->numintrs > 1 &&
              (x->mapping == VMAPPLE_XHCI_MAPPING_ALWAYS || mode != VMAPPLE_XHCI_IRQ_PIN);
    r->event_ring = mapping ? target : 0;
    r->irq_mode = mode;
    r->vector = 0;
    r->flags = 0;
    r->reserved0 = 0;
    if (r->event_ring >= x->numintrs) {
        /* The reference controller drops such an event; so does its policy. */
        vm_guest_error(&x->dev, "event for interrupter %u dropped: the controller has %u", target,
                       x->numintrs);
        r->event_ring = VMAPPLE_XHCI_NO_RING;
        return;
    }
    r->flags = VMAPPLE_XHCI_ROUTE_DELIVER;
    if (mode == VMAPPLE_XHCI_IRQ_PIN) {
        /* Only interrupter 0 drives the pin; any other ring's interrupt is lost. */
        if (r->event_ring == 0) {
            r->flags |= VMAPPLE_XHCI_ROUTE_SIGNAL;
        }
        return;
    }
    /* Rule 1: more interrupters than vectors share them modulo the count. */
    r->vector = r->event_ring % vectors;
    r->flags |= VMAPPLE_XHCI_ROUTE_SIGNAL;
}

/* Lifecycle and state. */

static int xhci_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t *value)
{
    /* No regions: the core refuses every access before it gets here. */
    (void)dev;
    (void)region;
    (void)offset;
    (void)size;
    *value = 0;
    return -EINVAL;
}

static int xhci_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                      uint64_t value)
{
    (void)dev;
    (void)region;
    (void)offset;
    (void)size;
    (void)value;
    return -EINVAL;
}

static void xhci_reset(vmapple_device *dev)
{
    /* A PCI reset disables MSI and MSI-X: pin mode. */
    memset(&to_xhci(dev)->irq, 0, sizeof(struct xhci_irq));
}

static int xhci_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct xhci_policy *x = to_xhci(dev);

    vm_st_put_u32(w, x->numintrs);
    vm_st_put_u32(w, x->mapping);
    vm_st_put_u32(w, x->irq.flags);
    vm_st_put_u32(w, x->irq.msi_vectors);
    vm_st_put_u32(w, x->irq.msix_vectors);
    return 0;
}

static int xhci_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct xhci_policy *x = to_xhci(dev);
    struct xhci_irq irq;
    uint32_t numintrs, mapping;
    const char *why;

    (void)version;
    numintrs = vm_st_get_u32(r);
    mapping = vm_st_get_u32(r);
    irq.flags = vm_st_get_u32(r);
    irq.msi_vectors = vm_st_get_u32(r);
    irq.msix_vectors = vm_st_get_u32(r);
    if (!vm_st_complete(r)) {
        return vm_error(dev, -EBADMSG, "load: truncated or malformed xhci-policy state");
    }
    if (numintrs != x->numintrs) {
        return vm_error(dev, -EINVAL, "load: option numintrs: the blob has %u, this device %u",
                        numintrs, x->numintrs);
    }
    if (mapping != x->mapping) {
        return vm_error(dev, -EINVAL, "load: option mapping: the blob has %u, this device %u",
                        mapping, x->mapping);
    }
    why = xhci_irq_invalid(&irq);
    if (why) {
        return vm_error(dev, -EBADMSG, "load: impossible interrupt state: %s", why);
    }
    x->irq = irq;
    return 0;
}

static void xhci_destroy(vmapple_device *dev)
{
    free(to_xhci(dev));
}

static const struct vmapple_device_class xhci_policy_class = {
    .type = VMAPPLE_DEVICE_XHCI_POLICY,
    .name = "xhci-policy",
    .state_version = 1,
    .read = xhci_read,
    .write = xhci_write,
    .reset = xhci_reset,
    .save = xhci_save,
    .load = xhci_load,
    .destroy = xhci_destroy,
};

VMAPPLE_API int vmapple_xhci_policy_create(const vmapple_host_ops *ops, void *opaque,
                                           const vmapple_xhci_policy_options *user_opts,
                                           vmapple_device **out)
{
    vmapple_xhci_policy_options opts = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    struct xhci_policy *x;
    int ret;

    if (!out) {
        return vm_error_named("xhci-policy", NULL, -EINVAL, "create: NULL out");
    }
    *out = NULL;
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "xhci-policy options");
    if (ret < 0) {
        return ret;
    }
    if (opts.numintrs > VMAPPLE_XHCI_MAX_NUMINTRS) {
        return vm_error_named("xhci-policy", NULL, -EINVAL,
                              "option numintrs is %u, the limit is %u (xHCI MaxIntrs)",
                              opts.numintrs, VMAPPLE_XHCI_MAX_NUMINTRS);
    }
    if (opts.mapping != VMAPPLE_XHCI_MAPPING_CONDITIONAL &&
        opts.mapping != VMAPPLE_XHCI_MAPPING_ALWAYS) {
        return vm_error_named("xhci-policy", NULL, -EINVAL,
                              "option mapping is %u; known: 0 (conditional), 1 (always)",
                              opts.mapping);
    }
    if (opts.reserved0 != 0) {
        return vm_error_named("xhci-policy", NULL, -EINVAL, "option reserved0 must be 0");
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        return vm_error_named("xhci-policy", NULL, -ENOMEM, "out of memory");
    }
    ret = vm_device_init(&x->dev, &xhci_policy_class, ops, opaque, NULL, 0, NULL, 0);
    if (ret < 0) {
        free(x);
        return ret;
    }
    x->numintrs = opts.numintrs ? opts.numintrs : VMAPPLE_XHCI_DEFAULT_NUMINTRS;
    x->mapping = opts.mapping;
    xhci_reset(&x->dev);
    *out = &x->dev;
    return 0;
}

/* The query API. */

static struct xhci_policy *xhci_from(const vmapple_device *dev, const char *op)
{
    if (!dev) {
        vm_error(NULL, -EINVAL, "xhci-policy: %s: NULL device", op);
        return NULL;
    }
    if (dev->cls != &xhci_policy_class) {
        vm_error(NULL, -EINVAL, "xhci-policy: %s: %s is not an xHCI policy object", op, dev->name);
        return NULL;
    }
    return vm_container_of(dev, struct xhci_policy, dev);
}

/* Output structs: the caller's size must cover at least the first field after it. */
static bool xhci_out_size_ok(uint32_t size)
{
    return size >= 2 * sizeof(uint32_t);
}

VMAPPLE_API int vmapple_xhci_policy_set_irq_state(vmapple_device *dev,
                                                  const vmapple_xhci_irq_state *state)
{
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT;
    struct xhci_policy *x = xhci_from(dev, "set_irq_state");
    struct xhci_irq irq;
    const char *why;
    int ret;

    if (!x) {
        return -EINVAL;
    }
    if (!state) {
        return vm_error(dev, -EINVAL, "set_irq_state: NULL state");
    }
    ret = vm_copy_sized(&s, sizeof(s), state, "xhci irq state");
    if (ret < 0) {
        return vm_error(dev, ret, "%s", vmapple_last_error());
    }
    irq.flags = s.flags;
    irq.msi_vectors = (s.flags & VMAPPLE_XHCI_MSI_ENABLED) ? s.msi_vectors : 0;
    irq.msix_vectors = (s.flags & VMAPPLE_XHCI_MSIX_ENABLED) ? s.msix_vectors : 0;
    why = xhci_irq_invalid(&irq);
    if (why) {
        return vm_error(dev, -EINVAL,
                        "set_irq_state: %s (flags 0x%x, msi_vectors %u, msix_vectors %u)", why,
                        s.flags, s.msi_vectors, s.msix_vectors);
    }
    x->irq = irq;
    return 0;
}

VMAPPLE_API int vmapple_xhci_policy_get_irq_state(const vmapple_device *dev,
                                                  vmapple_xhci_irq_state *state)
{
    vmapple_xhci_irq_state full = VMAPPLE_XHCI_IRQ_STATE_INIT;
    struct xhci_policy *x = xhci_from(dev, "get_irq_state");

    if (!x) {
        return -EINVAL;
    }
    if (!state || !xhci_out_size_ok(state->size)) {
        return vm_error(NULL, -EINVAL,
                        "xhci-policy: get_irq_state: %s; set size with VMAPPLE_XHCI_IRQ_STATE_INIT",
                        state ? "size field too small" : "NULL state");
    }
    full.flags = x->irq.flags;
    full.msi_vectors = x->irq.msi_vectors;
    full.msix_vectors = x->irq.msix_vectors;
    vm_fill_sized(state, &full, sizeof(full));
    return 0;
}

VMAPPLE_API int vmapple_xhci_policy_route(vmapple_device *dev,
                                          const vmapple_xhci_route_request *request,
                                          vmapple_xhci_route *route)
{
    vmapple_xhci_route_request req = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route full = VMAPPLE_XHCI_ROUTE_INIT;
    struct xhci_policy *x = xhci_from(dev, "route");
    int ret;

    if (!x) {
        return -EINVAL;
    }
    if (!request || !route) {
        return vm_error(dev, -EINVAL, "route: NULL %s", request ? "route" : "request");
    }
    if (!xhci_out_size_ok(route->size)) {
        return vm_error(dev, -EINVAL,
                        "route: route size field is %u; set it with VMAPPLE_XHCI_ROUTE_INIT",
                        route->size);
    }
    ret = vm_copy_sized(&req, sizeof(req), request, "xhci route request");
    if (ret < 0) {
        return vm_error(dev, ret, "%s", vmapple_last_error());
    }
    if (request->size < offsetof(vmapple_xhci_route_request, interrupter) + sizeof(uint32_t)) {
        return vm_error(dev, -EINVAL,
                        "route: request size field is %u; set it with "
                        "VMAPPLE_XHCI_ROUTE_REQUEST_INIT",
                        request->size);
    }
    xhci_route_event(x, req.interrupter, &full);
    vm_fill_sized(route, &full, sizeof(full));
    return 0;
}
