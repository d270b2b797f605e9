/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the xHCI interrupter-mapping policy: options, interrupt states
 * (valid or not) and route queries from the input, every answer checked
 * against the three rules; state blobs from the input. Findings: sanitizer
 * reports, an answer that breaks a rule, an accepted impossible state.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "mockhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = { data, size, 0 };
    vmapple_xhci_policy_options o = VMAPPLE_XHCI_POLICY_OPTIONS_INIT;
    vmapple_xhci_irq_state s = VMAPPLE_XHCI_IRQ_STATE_INIT;
    vmapple_xhci_route_request q = VMAPPLE_XHCI_ROUTE_REQUEST_INIT;
    vmapple_xhci_route r = VMAPPLE_XHCI_ROUTE_INIT;
    vmapple_device *dev = NULL;
    int ret;

    o.numintrs = (uint32_t)fuzz_take(&in, 2) % 1100;
    o.mapping = (uint32_t)fuzz_take(&in, 1) % 3;
    ret = vmapple_xhci_policy_create(NULL, NULL, &o, &dev);
    if ((ret == 0) != (o.numintrs <= 1024 && o.mapping < 2)) {
        FUZZ_FINDING("create returned %d", ret);
    }
    if (ret != 0) {
        return 0;
    }
    uint32_t m = o.numintrs ? o.numintrs : 16;

    for (unsigned steps = 0; fuzz_left(&in) && steps < 4096; steps++) {
        uint8_t op = (uint8_t)fuzz_take(&in, 1);
        if ((op & 7) == 0) {
            s.flags = (uint32_t)fuzz_take(&in, 1) % 5;
            s.msi_vectors = (uint32_t)fuzz_take(&in, 1);
            s.msix_vectors = (uint32_t)fuzz_take(&in, 2);
            bool msi_ok = !(s.flags & 1) || (s.msi_vectors && s.msi_vectors <= 32 &&
                                             !(s.msi_vectors & (s.msi_vectors - 1)));
            bool msix_ok = !(s.flags & 2) || (s.msix_vectors && s.msix_vectors <= 2048);
            ret = vmapple_xhci_policy_set_irq_state(dev, &s);
            if ((ret == 0) != (s.flags < 4 && msi_ok && msix_ok)) {
                FUZZ_FINDING("set_irq_state returned %d", ret);
            }
            continue;
        }
        if ((op & 7) == 1) {
            size_t len = (size_t)fuzz_take(&in, 1);
            if (len > size - in.pos) {
                len = size - in.pos;
            }
            vmapple_device_load(dev, data + in.pos, len);
            in.pos += len;
            continue;
        }
        if ((op & 7) == 2) {
            vmapple_device_reset(dev);
            continue;
        }
        vmapple_xhci_irq_state cur = VMAPPLE_XHCI_IRQ_STATE_INIT;
        vmapple_xhci_policy_get_irq_state(dev, &cur);
        q.interrupter = (uint32_t)fuzz_take(&in, op & 0x80 ? 4 : 2);
        if (vmapple_xhci_policy_route(dev, &q, &r) != 0) {
            FUZZ_FINDING("route failed");
        }
        bool msix = cur.flags & 2, msi = !msix && (cur.flags & 1);
        uint32_t vectors = msix ? cur.msix_vectors : cur.msi_vectors;
        bool mapping = m > 1 && (o.mapping == 1 || msi || msix);
        uint32_t ring = mapping ? q.interrupter : 0;
        if ((msi || msix) && (vectors == 0 || vectors > 2048)) {
            FUZZ_FINDING("impossible state was accepted");
        }
        if (r.irq_mode != (msix ? 2u : msi ? 1u : 0u)) {
            FUZZ_FINDING("wrong mode");
        }
        if (ring >= m) {
            if (r.flags != 0 || r.event_ring != VMAPPLE_XHCI_NO_RING) {
                FUZZ_FINDING("out-of-range interrupter not dropped");
            }
            continue;
        }
        if (r.event_ring != ring || !(r.flags & VMAPPLE_XHCI_ROUTE_DELIVER)) {
            FUZZ_FINDING("ring %u, rules say %u", r.event_ring, ring);
        }
        bool signal = r.flags & VMAPPLE_XHCI_ROUTE_SIGNAL;
        if ((msi || msix) ? (r.vector != ring % vectors || !signal)
                          : (r.vector != 0 || signal != (ring == 0))) {
            FUZZ_FINDING("vector %u signal %d for ring %u", r.vector, signal, ring);
        }
    }
    vmapple_device_destroy(dev);
    return 0;
}
