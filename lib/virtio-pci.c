/* SPDX-License-Identifier: MIT */
/* The virtio-pci modern transport: capabilities, common configuration, ISR,
 * notifications, device configuration, interrupts, reset and state. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio-pci.h"

/* struct virtio_pci_cap field offsets. */
#define CAP_CFG_TYPE 3
#define CAP_BAR      4
#define CAP_ID       5
#define CAP_OFFSET   8
#define CAP_LENGTH   12
#define CAP_LEN      16
/* Extra field of the notify capability and of the PCI access capability. */
#define CAP_NOTIFY_MULT 16
#define CAP_PCI_DATA    16

#define STATUS_DEVICE_OWNED VIRTIO_STATUS_DEVICE_NEEDS_RESET

struct vm_virtio_pci_snapshot {
    struct vm_pci_snapshot *pci;
    uint64_t driver_features;
    uint32_t dfselect, gfselect;
    uint8_t status, isr, generation;
    uint16_t msix_config, queue_select;
    struct {
        uint16_t size, vector;
        bool enabled;
        uint64_t desc, driver, device;
        uint16_t last_avail, used_idx, signalled_used;
        bool signalled_valid, broken;
    } q[VM_VIRTIO_MAX_QUEUES];
};

static int add_virtio_cap(struct vm_virtio_pci *vp, uint8_t type, uint32_t cap_len, uint8_t bar,
                          uint32_t offset, uint32_t length)
{
    int cap = vm_pci_add_capability(&vp->pci, PCI_CAP_ID_VNDR, cap_len);

    if (cap < 0) {
        return cap;
    }
    vm_pci_set8(&vp->pci, (uint32_t)cap + 2, (uint8_t)cap_len);
    vm_pci_set8(&vp->pci, (uint32_t)cap + CAP_CFG_TYPE, type);
    vm_pci_set8(&vp->pci, (uint32_t)cap + CAP_BAR, bar);
    vm_pci_set8(&vp->pci, (uint32_t)cap + CAP_ID, 0);
    vm_pci_set32(&vp->pci, (uint32_t)cap + CAP_OFFSET, offset);
    vm_pci_set32(&vp->pci, (uint32_t)cap + CAP_LENGTH, length);
    return cap;
}

static void reset_state(struct vm_virtio_pci *vp)
{
    vp->driver_features = 0;
    vp->device_feature_select = 0;
    vp->driver_feature_select = 0;
    vp->status = 0;
    vp->isr = 0;
    vp->msix_config = VIRTIO_MSI_NO_VECTOR;
    vp->queue_select = 0;
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        struct vm_virtio_queue *q = &vp->queues[i];
        q->size = q->max_size;
        q->msix_vector = VIRTIO_MSI_NO_VECTOR;
        q->enabled = false;
        q->desc = q->driver = q->device = 0;
        vm_vq_reset(&q->vq);
    }
    vm_pci_set_intx(&vp->pci, false);
}

int vm_virtio_pci_init(struct vm_virtio_pci *vp, vmapple_device *dev,
                       const struct vm_virtio_pci_ops *ops, const struct vm_virtio_pci_setup *s)
{
    int cap, ret;

    if (!(s->features & (1ull << VIRTIO_F_VERSION_1)) || s->num_queues == 0 ||
        s->num_queues > VM_VIRTIO_MAX_QUEUES || s->queue_max_size == 0 ||
        (s->queue_max_size & (s->queue_max_size - 1)) || s->queue_max_size > VM_VQ_MAX_SIZE ||
        s->devcfg_len > VM_VIRTIO_MAX_DEVCFG || s->msix_vectors > VM_VIRTIO_MAX_MSIX) {
        return -EINVAL;
    }
    memset(vp, 0, sizeof(*vp));
    vp->dev = dev;
    vp->ops = ops;
    vp->device_features = s->features;
    vp->num_queues = s->num_queues;
    vp->msix_vectors = s->msix_vectors;
    vp->devcfg = s->devcfg;
    vp->devcfg_len = s->devcfg_len;
    vp->bar0_region = s->bar0_region;
    vp->msix_region = s->msix_region;
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        vp->queues[i].max_size = s->queue_max_size;
        vm_vq_init(&vp->queues[i].vq, dev);
    }

    vm_pci_init(&vp->pci, dev, &s->ids, 0);
    ret = vm_pci_add_bar(&vp->pci, 0, s->bar0_region, VM_VIRTIO_BAR0_SIZE, 0);
    if (ret < 0) {
        return ret;
    }
    if (s->msix_vectors) {
        ret = vm_pci_add_bar(&vp->pci, 1, s->msix_region, VM_VIRTIO_MSIX_BAR_SIZE, 0);
        if (ret < 0) {
            return ret;
        }
    }
    /* The order of the capability list is the driver's order of preference. */
    cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, CAP_LEN, 0, VM_VIRTIO_COMMON_OFFSET,
                         VIRTIO_PCI_COMMON_LEN);
    if (cap >= 0) {
        cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, CAP_LEN + 4, 0, VM_VIRTIO_NOTIFY_OFFSET,
                             VM_VIRTIO_NOTIFY_MULT * vp->num_queues);
        if (cap >= 0) {
            vm_pci_set32(&vp->pci, (uint32_t)cap + CAP_NOTIFY_MULT, VM_VIRTIO_NOTIFY_MULT);
        }
    }
    if (cap >= 0) {
        cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, CAP_LEN, 0, VM_VIRTIO_ISR_OFFSET, 1);
    }
    if (cap >= 0 && s->devcfg_len) {
        cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, CAP_LEN, 0, VM_VIRTIO_DEVCFG_OFFSET,
                             s->devcfg_len);
    }
    if (cap >= 0) {
        /* bar, offset, length and data are the driver's to write. */
        cap = add_virtio_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, CAP_LEN + 4, 0, 0, 0);
        if (cap >= 0) {
            vp->pci_cfg_cap = (uint8_t)cap;
            vm_pci_set_wmask(&vp->pci, (uint32_t)cap + CAP_BAR, 1, 0xff);
            vm_pci_set_wmask(&vp->pci, (uint32_t)cap + CAP_OFFSET, 4, 0xffffffff);
            vm_pci_set_wmask(&vp->pci, (uint32_t)cap + CAP_LENGTH, 4, 0xffffffff);
            vm_pci_set_wmask(&vp->pci, (uint32_t)cap + CAP_PCI_DATA, 4, 0xffffffff);
        }
    }
    if (cap < 0) {
        return cap;
    }
    if (s->msix_vectors) {
        ret = vm_pci_msix_init(&vp->pci, s->msix_vectors, 1, 0, VM_VIRTIO_MSIX_PBA_OFFSET);
        if (ret < 0) {
            return ret;
        }
    }
    vm_pci_finalize(&vp->pci);
    reset_state(vp);
    return 0;
}

void vm_virtio_pci_release(struct vm_virtio_pci *vp)
{
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        vm_vq_reset(&vp->queues[i].vq);
    }
    vm_pci_release(&vp->pci);
}

/* Interrupts. */

static void raise_isr(struct vm_virtio_pci *vp, uint8_t bit)
{
    vp->isr |= bit;
    vm_pci_set_intx(&vp->pci, true);
}

void vm_virtio_pci_notify_queue(struct vm_virtio_pci *vp, uint16_t q)
{
    if (q >= vp->num_queues) {
        return;
    }
    if (vm_pci_msix_enabled(&vp->pci)) {
        if (vp->queues[q].msix_vector != VIRTIO_MSI_NO_VECTOR) {
            vm_pci_msix_notify(&vp->pci, vp->queues[q].msix_vector);
        }
        return;
    }
    raise_isr(vp, VIRTIO_ISR_QUEUE);
}

void vm_virtio_pci_notify_config(struct vm_virtio_pci *vp)
{
    /* The ISR bit is set even with MSI-X (spec 4.1.4.5.1); INTx stays masked then. */
    raise_isr(vp, VIRTIO_ISR_CONFIG);
    if (vm_pci_msix_enabled(&vp->pci) && vp->msix_config != VIRTIO_MSI_NO_VECTOR) {
        vm_pci_msix_notify(&vp->pci, vp->msix_config);
    }
}

void vm_virtio_pci_config_changed(struct vm_virtio_pci *vp)
{
    vp->config_generation++;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
        vm_virtio_pci_notify_config(vp);
    }
}

void vm_virtio_pci_set_needs_reset(struct vm_virtio_pci *vp)
{
    if (vp->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
        return;
    }
    vp->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
        vm_virtio_pci_notify_config(vp);
    }
}

/* Resets. */

static void driver_reset(struct vm_virtio_pci *vp)
{
    if (vp->ops->reset) {
        vp->ops->reset(vp);
    }
    reset_state(vp);
}

void vm_virtio_pci_reset(struct vm_virtio_pci *vp)
{
    driver_reset(vp);
    vm_pci_reset(&vp->pci);
}

/* Common configuration. */

static bool features_acceptable(struct vm_virtio_pci *vp, const char **why)
{
    uint64_t f = vp->driver_features;

    if (f & ~vp->device_features) {
        *why = "the driver accepted features the device does not offer";
        return false;
    }
    if (!(f & (1ull << VIRTIO_F_VERSION_1))) {
        *why = "the driver did not accept VIRTIO_F_VERSION_1 (no legacy interface)";
        return false;
    }
    if (vp->ops->features_ok && !vp->ops->features_ok(vp, f)) {
        *why = "the device refused the feature set";
        return false;
    }
    return true;
}

static void sync_queue_features(struct vm_virtio_pci *vp)
{
    bool indirect = (vp->driver_features >> VIRTIO_F_INDIRECT_DESC) & 1;
    bool event_idx = (vp->driver_features >> VIRTIO_F_EVENT_IDX) & 1;

    for (uint16_t i = 0; i < vp->num_queues; i++) {
        vm_vq_set_features(&vp->queues[i].vq, indirect, event_idx);
    }
}

static void write_status(struct vm_virtio_pci *vp, uint8_t v)
{
    uint8_t old = vp->status;
    uint8_t status;
    const char *why;

    if (v == 0) {
        driver_reset(vp);
        return;
    }
    /* DEVICE_NEEDS_RESET is the device's: the driver can neither set nor clear it. */
    status = (uint8_t)((v & ~STATUS_DEVICE_OWNED) | (old & STATUS_DEVICE_OWNED));
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        if (features_acceptable(vp, &why)) {
            sync_queue_features(vp);
        } else {
            status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
            vm_guest_error(vp->dev, "virtio: FEATURES_OK refused: %s (features 0x%llx)", why,
                           (unsigned long long)vp->driver_features);
        }
    }
    if ((status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_FEATURES_OK) &&
        !(old & VIRTIO_STATUS_DRIVER_OK)) {
        vm_guest_error(vp->dev, "virtio: DRIVER_OK without FEATURES_OK; the device stays idle");
    }
    vp->status = status;
}

static struct vm_virtio_queue *selected_queue(struct vm_virtio_pci *vp)
{
    return vp->queue_select < vp->num_queues ? &vp->queues[vp->queue_select] : NULL;
}

static void enable_queue(struct vm_virtio_pci *vp, struct vm_virtio_queue *q)
{
    const char *why;

    if (q->enabled) {
        return;
    }
    if (vm_vq_setup(&q->vq, q->size, q->desc, q->driver, q->device) < 0) {
        vm_vq_check_layout(q->size, q->desc, q->driver, q->device, &why);
        vm_guest_error(vp->dev, "virtio: queue %u not enabled: %s", vp->queue_select, why);
        vm_virtio_pci_set_needs_reset(vp);
        return;
    }
    sync_queue_features(vp);
    q->enabled = true;
}

/* The 0x38-byte common configuration as the driver would see it right now. */
static void common_image(struct vm_virtio_pci *vp, uint8_t img[VIRTIO_PCI_COMMON_LEN])
{
    struct vm_virtio_queue *q = selected_queue(vp);
    uint32_t df = 0, gf = 0;

    if (vp->device_feature_select < 2) {
        df = (uint32_t)(vp->device_features >> (32 * vp->device_feature_select));
    }
    if (vp->driver_feature_select < 2) {
        gf = (uint32_t)(vp->driver_features >> (32 * vp->driver_feature_select));
    }
    memset(img, 0, VIRTIO_PCI_COMMON_LEN);
    vm_st_le32(img + VIRTIO_PCI_COMMON_DFSELECT, vp->device_feature_select);
    vm_st_le32(img + VIRTIO_PCI_COMMON_DF, df);
    vm_st_le32(img + VIRTIO_PCI_COMMON_GFSELECT, vp->driver_feature_select);
    vm_st_le32(img + VIRTIO_PCI_COMMON_GF, gf);
    vm_st_le16(img + VIRTIO_PCI_COMMON_MSIX, vp->msix_config);
    vm_st_le16(img + VIRTIO_PCI_COMMON_NUMQ, vp->num_queues);
    img[VIRTIO_PCI_COMMON_STATUS] = vp->status;
    img[VIRTIO_PCI_COMMON_CFGGEN] = vp->config_generation;
    vm_st_le16(img + VIRTIO_PCI_COMMON_Q_SELECT, vp->queue_select);
    if (q) {
        vm_st_le16(img + VIRTIO_PCI_COMMON_Q_SIZE, q->size);
        vm_st_le16(img + VIRTIO_PCI_COMMON_Q_MSIX, q->msix_vector);
        vm_st_le16(img + VIRTIO_PCI_COMMON_Q_ENABLE, q->enabled ? 1 : 0);
        vm_st_le16(img + VIRTIO_PCI_COMMON_Q_NOFF, vp->queue_select);
        vm_st_le64(img + VIRTIO_PCI_COMMON_Q_DESCLO, q->desc);
        vm_st_le64(img + VIRTIO_PCI_COMMON_Q_AVAILLO, q->driver);
        vm_st_le64(img + VIRTIO_PCI_COMMON_Q_USEDLO, q->device);
    }
}

static uint16_t valid_vector(const struct vm_virtio_pci *vp, uint64_t v)
{
    return v < vp->msix_vectors ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void set_addr_half(struct vm_virtio_pci *vp, uint64_t *field, uint64_t rel, uint32_t size,
                          uint64_t value)
{
    struct vm_virtio_queue *q = selected_queue(vp);

    if (!q) {
        return;
    }
    if (q->enabled) {
        vm_guest_error(vp->dev, "virtio: queue %u address written while enabled", vp->queue_select);
        return;
    }
    if (size == 8) {
        *field = value;
    } else if (rel == 0) {
        *field = (*field & 0xffffffff00000000ull) | (uint32_t)value;
    } else {
        *field = (*field & 0xffffffffull) | ((uint64_t)(uint32_t)value << 32);
    }
}

/* Which field a write of `size` bytes at `off` names, or -1 when it names none exactly. */
static int common_field(uint64_t off, uint32_t size)
{
    static const struct {
        uint8_t off, size;
    } fields[] = {
        { VIRTIO_PCI_COMMON_DFSELECT, 4 },  { VIRTIO_PCI_COMMON_DF, 4 },
        { VIRTIO_PCI_COMMON_GFSELECT, 4 },  { VIRTIO_PCI_COMMON_GF, 4 },
        { VIRTIO_PCI_COMMON_MSIX, 2 },      { VIRTIO_PCI_COMMON_NUMQ, 2 },
        { VIRTIO_PCI_COMMON_STATUS, 1 },    { VIRTIO_PCI_COMMON_CFGGEN, 1 },
        { VIRTIO_PCI_COMMON_Q_SELECT, 2 },  { VIRTIO_PCI_COMMON_Q_SIZE, 2 },
        { VIRTIO_PCI_COMMON_Q_MSIX, 2 },    { VIRTIO_PCI_COMMON_Q_ENABLE, 2 },
        { VIRTIO_PCI_COMMON_Q_NOFF, 2 },    { VIRTIO_PCI_COMMON_Q_DESCLO, 4 },
        { VIRTIO_PCI_COMMON_Q_DESCHI, 4 },  { VIRTIO_PCI_COMMON_Q_AVAILLO, 4 },
        { VIRTIO_PCI_COMMON_Q_AVAILHI, 4 }, { VIRTIO_PCI_COMMON_Q_USEDLO, 4 },
        { VIRTIO_PCI_COMMON_Q_USEDHI, 4 },
    };

    for (unsigned i = 0; i < VM_ARRAY_SIZE(fields); i++) {
        if (fields[i].off == off &&
            (fields[i].size == size || (size == 8 && (off == VIRTIO_PCI_COMMON_Q_DESCLO ||
                                                      off == VIRTIO_PCI_COMMON_Q_AVAILLO ||
                                                      off == VIRTIO_PCI_COMMON_Q_USEDLO)))) {
            return (int)off;
        }
    }
    return -1;
}

static void common_write(struct vm_virtio_pci *vp, uint64_t off, uint32_t size, uint64_t v)
{
    struct vm_virtio_queue *q = selected_queue(vp);
    int field = common_field(off, size);

    switch (field) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        vp->device_feature_select = (uint32_t)v;
        break;
    case VIRTIO_PCI_COMMON_GFSELECT:
        vp->driver_feature_select = (uint32_t)v;
        break;
    case VIRTIO_PCI_COMMON_GF:
        if (vp->status & VIRTIO_STATUS_FEATURES_OK) {
            vm_guest_error(vp->dev, "virtio: driver features written after FEATURES_OK");
        } else if (vp->driver_feature_select < 2) {
            unsigned shift = 32 * vp->driver_feature_select;
            vp->driver_features = (vp->driver_features & ~(0xffffffffull << shift)) |
                                  ((uint64_t)(uint32_t)v << shift);
        }
        break;
    case VIRTIO_PCI_COMMON_MSIX:
        vp->msix_config = valid_vector(vp, v);
        break;
    case VIRTIO_PCI_COMMON_STATUS:
        write_status(vp, (uint8_t)v);
        break;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        vp->queue_select = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (!q) {
            break;
        }
        if (q->enabled || !vm_is_pow2(v) || v > q->max_size) {
            vm_guest_error(vp->dev, "virtio: queue %u size %llu refused (max %u%s)",
                           vp->queue_select, (unsigned long long)v, q->max_size,
                           q->enabled ? ", queue enabled" : ", a power of two");
            break;
        }
        q->size = (uint16_t)v;
        break;
    case VIRTIO_PCI_COMMON_Q_MSIX:
        if (q) {
            q->msix_vector = valid_vector(vp, v);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (!q) {
            break;
        }
        if (v == 1) {
            enable_queue(vp, q);
        } else if (v != 0 || q->enabled) {
            vm_guest_error(vp->dev, "virtio: queue_enable write of %llu ignored",
                           (unsigned long long)v);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        if (q) {
            set_addr_half(vp, &q->desc, off - VIRTIO_PCI_COMMON_Q_DESCLO, size, v);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if (q) {
            set_addr_half(vp, &q->driver, off - VIRTIO_PCI_COMMON_Q_AVAILLO, size, v);
        }
        break;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (q) {
            set_addr_half(vp, &q->device, off - VIRTIO_PCI_COMMON_Q_USEDLO, size, v);
        }
        break;
    default:
        vm_guest_error(vp->dev, "virtio: %u-byte write at common config 0x%llx ignored%s", size,
                       (unsigned long long)off, field >= 0 ? " (read-only field)" : "");
        break;
    }
}

static uint64_t isr_read(struct vm_virtio_pci *vp)
{
    uint8_t v = vp->isr;

    vp->isr = 0;
    vm_pci_set_intx(&vp->pci, false);
    return v;
}

static void notify_write(struct vm_virtio_pci *vp, uint64_t off, uint32_t size)
{
    uint64_t q = off / VM_VIRTIO_NOTIFY_MULT;

    if (size != 2 && size != 4) {
        vm_guest_error(vp->dev, "virtio: %u-byte queue notification ignored", size);
        return;
    }
    if (q >= vp->num_queues || !vp->queues[q].enabled) {
        vm_guest_error(vp->dev, "virtio: notification for queue %llu, which is not enabled",
                       (unsigned long long)q);
        return;
    }
    if (!vm_virtio_pci_live(vp)) {
        /* Before DRIVER_OK (or after NEEDS_RESET) the device must not use the queue. */
        vm_guest_error(vp->dev, "virtio: notification for queue %llu while status is 0x%x",
                       (unsigned long long)q, vp->status);
        return;
    }
    if (vp->queues[q].vq.broken) {
        return;
    }
    vp->ops->queue_notify(vp, (uint16_t)q);
}

/* BAR0 accesses (also reached through the PCI configuration access capability). */

static uint64_t bar0_read(struct vm_virtio_pci *vp, uint64_t off, uint32_t size)
{
    uint8_t img[VIRTIO_PCI_COMMON_LEN];

    if (off < VIRTIO_PCI_COMMON_LEN) {
        uint8_t tmp[8] = { 0 };
        common_image(vp, img);
        memcpy(tmp, img + off, VM_MIN((uint64_t)size, VIRTIO_PCI_COMMON_LEN - off));
        return vm_ld_le(tmp, size);
    }
    if (off == VM_VIRTIO_ISR_OFFSET) {
        return isr_read(vp);
    }
    if (off >= VM_VIRTIO_DEVCFG_OFFSET && off < VM_VIRTIO_DEVCFG_OFFSET + vp->devcfg_len) {
        uint64_t rel = off - VM_VIRTIO_DEVCFG_OFFSET;
        uint8_t tmp[8] = { 0 };
        memcpy(tmp, vp->devcfg + rel, VM_MIN((uint64_t)size, vp->devcfg_len - rel));
        return vm_ld_le(tmp, size);
    }
    return 0;
}

static void bar0_write(struct vm_virtio_pci *vp, uint64_t off, uint32_t size, uint64_t v)
{
    if (off < VIRTIO_PCI_COMMON_LEN) {
        common_write(vp, off, size, v);
    } else if (off >= VM_VIRTIO_NOTIFY_OFFSET &&
               off < VM_VIRTIO_NOTIFY_OFFSET + VM_VIRTIO_NOTIFY_MULT * vp->num_queues) {
        if ((off - VM_VIRTIO_NOTIFY_OFFSET) % VM_VIRTIO_NOTIFY_MULT) {
            vm_guest_error(vp->dev, "virtio: misaligned notification at 0x%llx",
                           (unsigned long long)off);
            return;
        }
        notify_write(vp, off - VM_VIRTIO_NOTIFY_OFFSET, size);
    } else if (off >= VM_VIRTIO_DEVCFG_OFFSET && off < VM_VIRTIO_DEVCFG_OFFSET + vp->devcfg_len) {
        if (vp->ops->config_write) {
            vp->ops->config_write(vp, (uint32_t)(off - VM_VIRTIO_DEVCFG_OFFSET), size, v);
        } else {
            vm_guest_error(vp->dev, "virtio: write to read-only device config at 0x%llx",
                           (unsigned long long)(off - VM_VIRTIO_DEVCFG_OFFSET));
        }
    } else {
        vm_guest_error(vp->dev, "virtio: %u-byte write at BAR0 0x%llx ignored", size,
                       (unsigned long long)off);
    }
}

int vm_virtio_pci_read(struct vm_virtio_pci *vp, uint32_t region, uint64_t offset, uint32_t size,
                       uint64_t *value)
{
    if (vp->msix_vectors && region == vp->msix_region) {
        vm_pci_msix_mmio_read(&vp->pci, offset, size, value);
        return 0;
    }
    *value = bar0_read(vp, offset, size);
    return 0;
}

int vm_virtio_pci_write(struct vm_virtio_pci *vp, uint32_t region, uint64_t offset, uint32_t size,
                        uint64_t value)
{
    if (vp->msix_vectors && region == vp->msix_region) {
        vm_pci_msix_mmio_write(&vp->pci, offset, size, value);
        return 0;
    }
    bar0_write(vp, offset, size, value);
    return 0;
}

/* PCI configuration access capability: a window onto BAR0 in config space. */

static bool pci_cfg_window(struct vm_virtio_pci *vp, uint32_t *off, uint32_t *len)
{
    uint32_t cap = vp->pci_cfg_cap;
    uint8_t bar = vp->pci.config[cap + CAP_BAR];

    *off = vm_pci_get32(&vp->pci, cap + CAP_OFFSET);
    *len = vm_pci_get32(&vp->pci, cap + CAP_LENGTH);
    if (bar != 0 || (*len != 1 && *len != 2 && *len != 4) || *off % *len ||
        *off > VM_VIRTIO_BAR0_SIZE - *len) {
        vm_guest_error(vp->dev, "virtio: PCI config window bar %u offset 0x%x length %u refused",
                       bar, *off, *len);
        return false;
    }
    return true;
}

static bool overlaps(uint32_t off, uint32_t size, uint32_t start, uint32_t len)
{
    return off < start + len && start < off + size;
}

int vm_virtio_pci_config_read(struct vm_virtio_pci *vp, uint32_t offset, uint32_t size,
                              uint32_t *value)
{
    uint32_t data = (uint32_t)vp->pci_cfg_cap + CAP_PCI_DATA;
    uint32_t off, len;

    if (vp->pci_cfg_cap && overlaps(offset, size, data, 4) && pci_cfg_window(vp, &off, &len)) {
        uint64_t v = bar0_read(vp, off, len);
        vm_st_le(vp->pci.config + data, len, v);
    }
    return vm_pci_config_read(&vp->pci, offset, size, value);
}

int vm_virtio_pci_config_write(struct vm_virtio_pci *vp, uint32_t offset, uint32_t size,
                               uint32_t value)
{
    uint32_t data = (uint32_t)vp->pci_cfg_cap + CAP_PCI_DATA;
    uint32_t off, len;
    int ret = vm_pci_config_write(&vp->pci, offset, size, value);

    if (vp->pci_cfg_cap && overlaps(offset, size, data, 4) && pci_cfg_window(vp, &off, &len)) {
        bar0_write(vp, off, len, vm_ld_le(vp->pci.config + data, len));
    }
    return ret;
}

/* State. */

void vm_virtio_pci_save(const struct vm_virtio_pci *vp, struct vm_state_writer *w)
{
    vm_pci_save(&vp->pci, w);
    /* Structure, checked against the loading device's options. */
    vm_st_put_u64(w, vp->device_features);
    vm_st_put_u16(w, vp->num_queues);
    vm_st_put_u16(w, vp->queues[0].max_size);
    vm_st_put_u16(w, vp->msix_vectors);
    vm_st_put_u32(w, vp->devcfg_len);
    /* Driver-visible state. */
    vm_st_put_u64(w, vp->driver_features);
    vm_st_put_u32(w, vp->device_feature_select);
    vm_st_put_u32(w, vp->driver_feature_select);
    vm_st_put_u8(w, vp->status);
    vm_st_put_u8(w, vp->isr);
    vm_st_put_u8(w, vp->config_generation);
    vm_st_put_u16(w, vp->msix_config);
    vm_st_put_u16(w, vp->queue_select);
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        const struct vm_virtio_queue *q = &vp->queues[i];
        vm_st_put_u16(w, q->size);
        vm_st_put_u16(w, q->msix_vector);
        vm_st_put_bool(w, q->enabled);
        vm_st_put_u64(w, q->desc);
        vm_st_put_u64(w, q->driver);
        vm_st_put_u64(w, q->device);
        /* Everything pushed is published by the time a device saves. */
        vm_st_put_u16(w, q->vq.last_avail);
        vm_st_put_u16(w, q->vq.published_used);
        vm_st_put_u16(w, q->vq.signalled_used);
        vm_st_put_bool(w, q->vq.signalled_valid);
        vm_st_put_bool(w, q->vq.broken);
    }
}

void vm_virtio_pci_snapshot_free(struct vm_virtio_pci_snapshot *snap)
{
    if (snap) {
        vm_pci_snapshot_free(snap->pci);
        free(snap);
    }
}

static int load_fail(struct vm_virtio_pci *vp, struct vm_virtio_pci_snapshot *s, int err,
                     const char *msg)
{
    vm_virtio_pci_snapshot_free(s);
    return vm_error(vp->dev, err, "load: %s", msg);
}

int vm_virtio_pci_load_parse(struct vm_virtio_pci *vp, struct vm_state_reader *r,
                             struct vm_virtio_pci_snapshot **out)
{
    struct vm_virtio_pci_snapshot *s = calloc(1, sizeof(*s));
    uint64_t dev_features;
    uint16_t nq, qmax, vectors;
    uint32_t cfglen;
    int ret;

    if (!s) {
        return -ENOMEM;
    }
    ret = vm_pci_load_parse(&vp->pci, r, &s->pci);
    if (ret < 0) {
        free(s);
        return ret;
    }
    dev_features = vm_st_get_u64(r);
    nq = vm_st_get_u16(r);
    qmax = vm_st_get_u16(r);
    vectors = vm_st_get_u16(r);
    cfglen = vm_st_get_u32(r);
    if (r->failed) {
        return load_fail(vp, s, -EBADMSG, "truncated virtio state");
    }
    if (nq != vp->num_queues || qmax != vp->queues[0].max_size) {
        vm_virtio_pci_snapshot_free(s);
        return vm_error(vp->dev, -EINVAL,
                        "load: the blob has %u queues of %u entries, this device %u of %u "
                        "(option queue_size differs)",
                        nq, qmax, vp->num_queues, vp->queues[0].max_size);
    }
    if (vectors != vp->msix_vectors) {
        vm_virtio_pci_snapshot_free(s);
        return vm_error(vp->dev, -EINVAL,
                        "load: the blob has %u MSI-X vectors, this device %u (option "
                        "msix_vectors differs)",
                        vectors, vp->msix_vectors);
    }
    if (dev_features != vp->device_features || cfglen != vp->devcfg_len) {
        vm_virtio_pci_snapshot_free(s);
        return vm_error(vp->dev, -EINVAL,
                        "load: the blob's device offers features 0x%llx, this one 0x%llx "
                        "(options or volume differ)",
                        (unsigned long long)dev_features, (unsigned long long)vp->device_features);
    }
    s->driver_features = vm_st_get_u64(r);
    s->dfselect = vm_st_get_u32(r);
    s->gfselect = vm_st_get_u32(r);
    s->status = vm_st_get_u8(r);
    s->isr = vm_st_get_u8(r);
    s->generation = vm_st_get_u8(r);
    s->msix_config = vm_st_get_u16(r);
    s->queue_select = vm_st_get_u16(r);
    for (uint16_t i = 0; i < nq; i++) {
        s->q[i].size = vm_st_get_u16(r);
        s->q[i].vector = vm_st_get_u16(r);
        s->q[i].enabled = vm_st_get_bool(r);
        s->q[i].desc = vm_st_get_u64(r);
        s->q[i].driver = vm_st_get_u64(r);
        s->q[i].device = vm_st_get_u64(r);
        s->q[i].last_avail = vm_st_get_u16(r);
        s->q[i].used_idx = vm_st_get_u16(r);
        s->q[i].signalled_used = vm_st_get_u16(r);
        s->q[i].signalled_valid = vm_st_get_bool(r);
        s->q[i].broken = vm_st_get_bool(r);
    }
    if (r->failed) {
        return load_fail(vp, s, -EBADMSG, "truncated virtio state");
    }
    if (s->isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) {
        return load_fail(vp, s, -EBADMSG, "ISR has reserved bits set");
    }
    if ((s->msix_config != VIRTIO_MSI_NO_VECTOR && s->msix_config >= vp->msix_vectors)) {
        return load_fail(vp, s, -EBADMSG, "config MSI-X vector out of range");
    }
    if (s->status & VIRTIO_STATUS_FEATURES_OK) {
        uint64_t saved = vp->driver_features;
        const char *why;
        bool ok;
        vp->driver_features = s->driver_features;
        ok = features_acceptable(vp, &why);
        vp->driver_features = saved;
        if (!ok) {
            return load_fail(vp, s, -EBADMSG, "FEATURES_OK with features the device refuses");
        }
    }
    for (uint16_t i = 0; i < nq; i++) {
        const char *why;
        if (s->q[i].size == 0 || (s->q[i].size & (s->q[i].size - 1)) || s->q[i].size > qmax) {
            return load_fail(vp, s, -EBADMSG, "queue size out of range");
        }
        if (s->q[i].vector != VIRTIO_MSI_NO_VECTOR && s->q[i].vector >= vp->msix_vectors) {
            return load_fail(vp, s, -EBADMSG, "queue MSI-X vector out of range");
        }
        if (s->q[i].enabled && vm_vq_check_layout(s->q[i].size, s->q[i].desc, s->q[i].driver,
                                                  s->q[i].device, &why) < 0) {
            return load_fail(vp, s, -EBADMSG, "enabled queue with an invalid ring layout");
        }
        if (s->q[i].enabled && (uint16_t)(s->q[i].last_avail - s->q[i].used_idx) > s->q[i].size) {
            return load_fail(vp, s, -EBADMSG, "queue has more requests in flight than entries");
        }
        if (!s->q[i].enabled && (s->q[i].last_avail || s->q[i].used_idx || s->q[i].signalled_used ||
                                 s->q[i].signalled_valid || s->q[i].broken)) {
            return load_fail(vp, s, -EBADMSG, "disabled queue with ring state");
        }
    }
    *out = s;
    return 0;
}

void vm_virtio_pci_load_commit(struct vm_virtio_pci *vp, struct vm_virtio_pci_snapshot *s)
{
    vm_pci_load_commit(&vp->pci, s->pci);
    s->pci = NULL;
    vp->driver_features = s->driver_features;
    vp->device_feature_select = s->dfselect;
    vp->driver_feature_select = s->gfselect;
    vp->status = s->status;
    vp->isr = s->isr;
    vp->config_generation = s->generation;
    vp->msix_config = s->msix_config;
    vp->queue_select = s->queue_select;
    for (uint16_t i = 0; i < vp->num_queues; i++) {
        struct vm_virtio_queue *q = &vp->queues[i];
        vm_vq_reset(&q->vq);
        q->size = s->q[i].size;
        q->msix_vector = s->q[i].vector;
        q->enabled = s->q[i].enabled;
        q->desc = s->q[i].desc;
        q->driver = s->q[i].driver;
        q->device = s->q[i].device;
        if (q->enabled) {
            vm_vq_setup(&q->vq, q->size, q->desc, q->driver, q->device);
            vm_vq_set_last_avail(&q->vq, s->q[i].last_avail);
            q->vq.used_idx = q->vq.published_used = s->q[i].used_idx;
            q->vq.signalled_used = s->q[i].signalled_used;
            q->vq.signalled_valid = s->q[i].signalled_valid;
            q->vq.broken = s->q[i].broken;
        }
    }
    sync_queue_features(vp);
    /* INTx follows the ISR, whatever the blob said about the pin. */
    vm_pci_set_intx(&vp->pci, vp->isr != 0);
    vm_virtio_pci_snapshot_free(s);
}
