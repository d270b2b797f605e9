/* SPDX-License-Identifier: MIT */
/**
 * @file xhci.h
 * The xHCI interrupter-mapping quirk as a policy object
 * (VMAPPLE_DEVICE_XHCI_POLICY).
 *
 * macOS's xHCI driver posts events to event rings 1 and 2 even when the
 * controller only has a pin interrupt (vmapple has no MSI); a controller
 * that honours interrupter mapping then signals interrupters that cannot
 * raise the pin, and input lags. A host that owns an xHCI model asks this
 * object, for each event, which event ring receives it and which vector or
 * pin to signal:
 *
 * 1. MSI/MSI-X: interrupter n signals vector (n mod number-of-vectors), as
 *    the xHCI spec's implementation note in section 4.17 asks.
 * 2. numintrs == 1: interrupter mapping is unsupported; every event goes to
 *    event ring 0 whatever interrupter its TRB names (xHCI 1.2, 4.17.1).
 * 3. Conditional mapping (VMAPPLE_XHCI_MAPPING_CONDITIONAL, the default and
 *    what vmapple needs): mapping is supported only while MSI or MSI-X is
 *    enabled; in pin mode every event goes to event ring 0, and interrupter
 *    0 asserts the pin.
 *
 * Without MSI/MSI-X only interrupter 0 drives the pin: an event routed to
 * another ring in pin mode (possible only with VMAPPLE_XHCI_MAPPING_ALWAYS)
 * is answered without VMAPPLE_XHCI_ROUTE_SIGNAL, the lost interrupt the
 * quirk exists to avoid. A TRB naming an interrupter >= numintrs (after the
 * rules above) has no event ring: the answer says to drop the event, as the
 * reference controller does, and a guest error is logged.
 *
 * The object mirrors the controller's interrupt mode (MSI/MSI-X enable and
 * vector counts), which the host sets with vmapple_xhci_policy_set_irq_state()
 * whenever the guest changes it. That state is what reset clears (pin mode,
 * as after a PCI reset) and what save/load carry. The object has no MMIO
 * regions and no interrupt lines.
 */
#ifndef LIBVMAPPLE_XHCI_H
#define LIBVMAPPLE_XHCI_H

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default and largest number of interrupters (xHCI MaxIntrs: 1..1024). */
#define VMAPPLE_XHCI_DEFAULT_NUMINTRS 16u
#define VMAPPLE_XHCI_MAX_NUMINTRS     1024u
/** Largest vector counts: MSI Multiple Message Enable, MSI-X table size. */
#define VMAPPLE_XHCI_MAX_MSI_VECTORS  32u
#define VMAPPLE_XHCI_MAX_MSIX_VECTORS 2048u

/** Interrupter mapping policy (vmapple_xhci_policy_options.mapping). */
typedef enum vmapple_xhci_mapping {
    /** Rule 3 on: mapping only while MSI or MSI-X is enabled. Default; vmapple. */
    VMAPPLE_XHCI_MAPPING_CONDITIONAL = 0,
    /** Rule 3 off: mapping whenever numintrs > 1, as a plain xHCI controller. */
    VMAPPLE_XHCI_MAPPING_ALWAYS = 1
} vmapple_xhci_mapping;

/** Options of vmapple_xhci_policy_create(). */
typedef struct vmapple_xhci_policy_options {
    uint32_t size;      /**< sizeof, set by VMAPPLE_XHCI_POLICY_OPTIONS_INIT */
    uint32_t numintrs;  /**< interrupters of the controller, 1..1024; 0: 16 */
    uint32_t mapping;   /**< vmapple_xhci_mapping; default CONDITIONAL */
    uint32_t reserved0; /**< must be 0 */
} vmapple_xhci_policy_options;

#define VMAPPLE_XHCI_POLICY_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_xhci_policy_options)

/** Flags of vmapple_xhci_irq_state. */
enum {
    /** The guest enabled MSI (MSI Enable in the MSI capability). */
    VMAPPLE_XHCI_MSI_ENABLED = 1u << 0,
    /** The guest enabled MSI-X. When both are set, MSI-X is used. */
    VMAPPLE_XHCI_MSIX_ENABLED = 1u << 1
};

/** How the controller signals interrupts (vmapple_xhci_route.irq_mode). */
typedef enum vmapple_xhci_irq_mode {
    VMAPPLE_XHCI_IRQ_PIN = 0, /**< INTx pin */
    VMAPPLE_XHCI_IRQ_MSI = 1, /**< MSI */
    VMAPPLE_XHCI_IRQ_MSIX = 2 /**< MSI-X */
} vmapple_xhci_irq_mode;

/**
 * The controller's current interrupt mode, as its PCI configuration space
 * says. Caller-filled; size set by VMAPPLE_XHCI_IRQ_STATE_INIT.
 */
typedef struct vmapple_xhci_irq_state {
    uint32_t size;  /**< sizeof, set by VMAPPLE_XHCI_IRQ_STATE_INIT */
    uint32_t flags; /**< VMAPPLE_XHCI_MSI_ENABLED | VMAPPLE_XHCI_MSIX_ENABLED */
    /** With MSI enabled: the vectors enabled, a power of two 1..32. Else ignored. */
    uint32_t msi_vectors;
    /** With MSI-X enabled: the table size, 1..2048. Else ignored. */
    uint32_t msix_vectors;
} vmapple_xhci_irq_state;

#define VMAPPLE_XHCI_IRQ_STATE_INIT VMAPPLE_SIZED_INIT(vmapple_xhci_irq_state)

/** A question: where does an event whose TRB names @c interrupter go? */
typedef struct vmapple_xhci_route_request {
    uint32_t size;        /**< sizeof, set by VMAPPLE_XHCI_ROUTE_REQUEST_INIT */
    uint32_t interrupter; /**< the TRB's Interrupter Target (guest-controlled) */
} vmapple_xhci_route_request;

#define VMAPPLE_XHCI_ROUTE_REQUEST_INIT VMAPPLE_SIZED_INIT(vmapple_xhci_route_request)

/** Flags of vmapple_xhci_route. */
enum {
    /** Write the event to the ring of interrupter event_ring. */
    VMAPPLE_XHCI_ROUTE_DELIVER = 1u << 0,
    /**
     * That interrupter can raise an interrupt: MSI/MSI-X vector @c vector,
     * or (pin mode) the pin. Absent in pin mode for rings other than 0.
     */
    VMAPPLE_XHCI_ROUTE_SIGNAL = 1u << 1
};

/** event_ring of an event to drop. */
#define VMAPPLE_XHCI_NO_RING UINT32_MAX

/** The answer. Size set by the caller (VMAPPLE_XHCI_ROUTE_INIT); the library fills the rest. */
typedef struct vmapple_xhci_route {
    uint32_t size;       /**< sizeof(vmapple_xhci_route) as the caller knows it */
    uint32_t flags;      /**< VMAPPLE_XHCI_ROUTE_* */
    uint32_t event_ring; /**< the interrupter whose event ring receives it, or NO_RING */
    uint32_t irq_mode;   /**< vmapple_xhci_irq_mode in force */
    uint32_t vector;     /**< MSI/MSI-X vector to signal; 0 in pin mode */
    uint32_t reserved0;  /**< 0 */
} vmapple_xhci_route;

#define VMAPPLE_XHCI_ROUTE_INIT VMAPPLE_SIZED_INIT(vmapple_xhci_route)

/**
 * Create an xHCI interrupter-mapping policy object. Needs no host callbacks
 * (log is used for guest errors when given). Starts in pin mode.
 *
 * @param opts NULL for defaults (16 interrupters, conditional mapping).
 * @param[out] out the new object.
 * @return 0; -EINVAL for a NULL @p out, a bad options or host ops struct,
 *         numintrs above 1024, an unknown mapping or reserved0 not 0
 *         (vmapple_last_error() names the option and the limit); -ENOMEM.
 */
VMAPPLE_API int vmapple_xhci_policy_create(const vmapple_host_ops *ops, void *opaque,
                                           const vmapple_xhci_policy_options *opts,
                                           vmapple_device **out);

/**
 * Tell the policy the controller's interrupt mode changed (the guest wrote
 * the MSI or MSI-X capability). Saved and loaded with the object's state.
 *
 * @return 0; -EINVAL for NULL arguments, a bad size, a device that is not an
 *         xHCI policy, unknown flags, or a vector count out of range for an
 *         enabled mechanism (the device's last error says which); the state
 *         is then unchanged.
 */
VMAPPLE_API int vmapple_xhci_policy_set_irq_state(vmapple_device *dev,
                                                  const vmapple_xhci_irq_state *state);

/**
 * The interrupt mode last set (or the reset state: pin mode, no vectors).
 * @param[in,out] state size set by the caller; the fields it covers are filled.
 * @return 0; -EINVAL for NULL arguments, a bad size or a device that is not
 *         an xHCI policy.
 */
VMAPPLE_API int vmapple_xhci_policy_get_irq_state(const vmapple_device *dev,
                                                  vmapple_xhci_irq_state *state);

/**
 * Route one event: which event ring receives it and what to signal.
 *
 * An interrupter the controller does not have is a guest error, not a
 * failure of this call: the answer then has no VMAPPLE_XHCI_ROUTE_DELIVER
 * flag and event_ring VMAPPLE_XHCI_NO_RING.
 *
 * @param[out] route size set by the caller; the fields it covers are filled.
 * @return 0; -EINVAL for NULL arguments, bad sizes, or a device that is not
 *         an xHCI policy.
 */
VMAPPLE_API int vmapple_xhci_policy_route(vmapple_device *dev,
                                          const vmapple_xhci_route_request *request,
                                          vmapple_xhci_route *route);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_XHCI_H */
