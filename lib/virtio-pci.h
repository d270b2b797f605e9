/* SPDX-License-Identifier: MIT */
/*
 * The virtio-pci modern transport (virtio 1.2, 4.1), no legacy interface:
 * vendor capabilities for the common configuration, notifications (with
 * notify_off_multiplier), ISR status, device configuration and PCI
 * configuration access, all in one 16 KiB memory BAR (BAR0); MSI-X, when the
 * host asks for vectors, in a 4 KiB BAR1. Feature negotiation (a driver that
 * does not accept VIRTIO_F_VERSION_1 never gets FEATURES_OK), the device
 * status state machine, reset by writing 0, INTx through the ISR (read clears
 * and deasserts) or MSI-X, config generation, split virtqueues.
 *
 * A device embeds struct vm_virtio_pci, calls vm_virtio_pci_init() and routes
 * its class's read/write/config hooks here; it gets queue notifications and
 * resets through vm_virtio_pci_ops and raises interrupts with
 * vm_virtio_pci_notify_queue().
 *
 * BAR0 layout:
 *   0x0000 common configuration (0x38 bytes)
 *   0x1000 ISR status (1 byte)
 *   0x2000 device configuration (device-defined length)
 *   0x3000 notifications: queue q at 0x3000 + 4 * q (notify_off_multiplier 4)
 * BAR1 (only with MSI-X): table at 0, PBA at 0x800.
 */
#ifndef VMAPPLE_VIRTIO_PCI_H
#define VMAPPLE_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "state.h"
#include "virtqueue.h"

/* Transport feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE        0x01
#define VIRTIO_STATUS_DRIVER             0x02
#define VIRTIO_STATUS_DRIVER_OK          0x04
#define VIRTIO_STATUS_FEATURES_OK        0x08
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED             0x80

/* ISR bits. */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Capability types. */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* Common configuration offsets. */
#define VIRTIO_PCI_COMMON_DFSELECT  0x00
#define VIRTIO_PCI_COMMON_DF        0x04
#define VIRTIO_PCI_COMMON_GFSELECT  0x08
#define VIRTIO_PCI_COMMON_GF        0x0c
#define VIRTIO_PCI_COMMON_MSIX      0x10
#define VIRTIO_PCI_COMMON_NUMQ      0x12
#define VIRTIO_PCI_COMMON_STATUS    0x14
#define VIRTIO_PCI_COMMON_CFGGEN    0x15
#define VIRTIO_PCI_COMMON_Q_SELECT  0x16
#define VIRTIO_PCI_COMMON_Q_SIZE    0x18
#define VIRTIO_PCI_COMMON_Q_MSIX    0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE  0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF    0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO  0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI  0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO 0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI 0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO  0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI  0x34
#define VIRTIO_PCI_COMMON_LEN       0x38

/* BAR layout. */
#define VM_VIRTIO_BAR0_SIZE       0x4000u
#define VM_VIRTIO_COMMON_OFFSET   0x0000u
#define VM_VIRTIO_ISR_OFFSET      0x1000u
#define VM_VIRTIO_DEVCFG_OFFSET   0x2000u
#define VM_VIRTIO_NOTIFY_OFFSET   0x3000u
#define VM_VIRTIO_NOTIFY_MULT     4u
#define VM_VIRTIO_MSIX_BAR_SIZE   0x1000u
#define VM_VIRTIO_MSIX_PBA_OFFSET 0x800u
#define VM_VIRTIO_MAX_MSIX        64u
#define VM_VIRTIO_MAX_QUEUES      8u
#define VM_VIRTIO_MAX_DEVCFG      0x1000u

struct vm_virtio_pci;

struct vm_virtio_pci_ops {
    /* The driver notified queue q (enabled, DRIVER_OK set, not broken). */
    void (*queue_notify)(struct vm_virtio_pci *vp, uint16_t q);
    /*
     * Drop all work before the transport forgets its queues (a driver or
     * machine reset). When it returns, nothing may touch guest memory for the
     * old queues any more.
     */
    void (*reset)(struct vm_virtio_pci *vp);
    /* Optional: device-specific checks at FEATURES_OK. */
    bool (*features_ok)(struct vm_virtio_pci *vp, uint64_t features);
    /* Optional: the driver wrote the device configuration (else: ignored). */
    void (*config_write)(struct vm_virtio_pci *vp, uint32_t offset, uint32_t size, uint64_t value);
};

struct vm_virtio_queue {
    uint16_t max_size;
    uint16_t size;
    uint16_t msix_vector;
    bool enabled;
    uint64_t desc, driver, device;
    struct vm_vq vq;
};

/* What a device asks of the transport at creation. */
struct vm_virtio_pci_setup {
    struct vm_pci_ids ids;
    uint64_t features; /* must include VIRTIO_F_VERSION_1 */
    uint16_t num_queues;
    uint16_t queue_max_size; /* power of two */
    const uint8_t *devcfg;   /* device configuration bytes, owned by the device */
    uint32_t devcfg_len;
    uint16_t msix_vectors; /* 0: INTx only */
    uint32_t bar0_region;  /* device region index of BAR0 */
    uint32_t msix_region;  /* device region index of BAR1 (with MSI-X) */
};

struct vm_virtio_pci {
    vmapple_device *dev;
    struct vm_pci_function pci;
    const struct vm_virtio_pci_ops *ops;

    uint64_t device_features;
    uint64_t driver_features;
    uint32_t device_feature_select;
    uint32_t driver_feature_select;
    uint8_t status;
    uint8_t isr;
    uint8_t config_generation;
    uint16_t msix_config;
    uint16_t queue_select;
    uint16_t num_queues;
    uint16_t msix_vectors;
    struct vm_virtio_queue queues[VM_VIRTIO_MAX_QUEUES];

    const uint8_t *devcfg;
    uint32_t devcfg_len;
    uint32_t bar0_region;
    uint32_t msix_region;
    uint8_t pci_cfg_cap; /* config offset of the PCI configuration access capability */
};

/* Set up the PCI function and the transport. Returns 0 or -EINVAL/-ENOMEM. */
VM_HIDDEN int vm_virtio_pci_init(struct vm_virtio_pci *vp, vmapple_device *dev,
                                 const struct vm_virtio_pci_ops *ops,
                                 const struct vm_virtio_pci_setup *setup);
VM_HIDDEN void vm_virtio_pci_release(struct vm_virtio_pci *vp);

/* Class hooks. */
VM_HIDDEN int vm_virtio_pci_read(struct vm_virtio_pci *vp, uint32_t region, uint64_t offset,
                                 uint32_t size, uint64_t *value);
VM_HIDDEN int vm_virtio_pci_write(struct vm_virtio_pci *vp, uint32_t region, uint64_t offset,
                                  uint32_t size, uint64_t value);
VM_HIDDEN int vm_virtio_pci_config_read(struct vm_virtio_pci *vp, uint32_t offset, uint32_t size,
                                        uint32_t *value);
VM_HIDDEN int vm_virtio_pci_config_write(struct vm_virtio_pci *vp, uint32_t offset, uint32_t size,
                                         uint32_t value);
/* Machine reset: the device's work (ops->reset), the transport, the PCI function. */
VM_HIDDEN void vm_virtio_pci_reset(struct vm_virtio_pci *vp);

/* The driver finished set-up and nothing stops the device from working. */
static inline bool vm_virtio_pci_live(const struct vm_virtio_pci *vp)
{
    return (vp->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |
                          VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)) ==
           (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK);
}

static inline bool vm_virtio_pci_has_feature(const struct vm_virtio_pci *vp, unsigned bit)
{
    return (vp->status & VIRTIO_STATUS_FEATURES_OK) && ((vp->driver_features >> bit) & 1);
}

/* Used-buffer notification for queue q (MSI-X vector, or ISR bit 0 + INTx). */
VM_HIDDEN void vm_virtio_pci_notify_queue(struct vm_virtio_pci *vp, uint16_t q);
/* Configuration-change notification (ISR bit 1 + INTx, or the config vector). */
VM_HIDDEN void vm_virtio_pci_notify_config(struct vm_virtio_pci *vp);
/* The device configuration changed: new generation, notify the driver. */
VM_HIDDEN void vm_virtio_pci_config_changed(struct vm_virtio_pci *vp);
/* Enter DEVICE_NEEDS_RESET (and tell a running driver). */
VM_HIDDEN void vm_virtio_pci_set_needs_reset(struct vm_virtio_pci *vp);

/*
 * State: save writes the PCI function and the transport (queue indices
 * included). Load is two-phase like lib/pci.h: parse and validate everything
 * into a snapshot, then commit.
 */
struct vm_virtio_pci_snapshot;
VM_HIDDEN void vm_virtio_pci_save(const struct vm_virtio_pci *vp, struct vm_state_writer *w);
VM_HIDDEN int vm_virtio_pci_load_parse(struct vm_virtio_pci *vp, struct vm_state_reader *r,
                                       struct vm_virtio_pci_snapshot **out);
VM_HIDDEN void vm_virtio_pci_load_commit(struct vm_virtio_pci *vp,
                                         struct vm_virtio_pci_snapshot *snap);
VM_HIDDEN void vm_virtio_pci_snapshot_free(struct vm_virtio_pci_snapshot *snap);

#endif /* VMAPPLE_VIRTIO_PCI_H */
