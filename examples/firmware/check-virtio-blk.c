/* SPDX-License-Identifier: MIT */
/*
 * Apple's virtio-blk variant (spec/virtio-blk-vmapple.md) with a minimal
 * virtio 1.2 PCI driver: capabilities, feature negotiation (VERSION_1
 * only), one split virtqueue polled for completions, INTx through the GIC
 * stand-in and the ISR. For each of the root (slot 6) and aux (slot 7)
 * functions: the PCI identity, the Apple type at config offset 60, the
 * capacity, reads checked against the image pattern, writes to the scratch
 * area, FLUSH, APPLE_BARRIER, read-back, an unknown request type, and the
 * interrupt.
 */
#include <libvmapple/virtio-blk.h>

#include "fw.h"

/* PCI and virtio-pci. */
#define PCI_STATUS            0x06
#define PCI_CAP_PTR           0x34
#define PCI_STATUS_CAPS       0x0010
#define PCI_CAP_ID_VENDOR     0x09
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4

#define COMMON_DFSELECT   0x00
#define COMMON_DF         0x04
#define COMMON_GFSELECT   0x08
#define COMMON_GF         0x0c
#define COMMON_NUM_QUEUES 0x12
#define COMMON_STATUS     0x14
#define COMMON_Q_SELECT   0x16
#define COMMON_Q_SIZE     0x18
#define COMMON_Q_ENABLE   0x1c
#define COMMON_Q_NOFF     0x1e
#define COMMON_Q_DESCLO   0x20
#define COMMON_Q_DESCHI   0x24
#define COMMON_Q_AVAILLO  0x28
#define COMMON_Q_AVAILHI  0x2c
#define COMMON_Q_USEDLO   0x30
#define COMMON_Q_USEDHI   0x34
#define COMMON_LEN        (COMMON_Q_USEDHI + 4) /* through queue_used_hi */

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER      2
#define STATUS_DRIVER_OK   4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64

#define VIRTIO_F_VERSION_1_HI (1u << 0) /* feature bit 32 */
#define VIRTIO_BLK_F_RO       (1u << 5)
#define VIRTIO_BLK_F_FLUSH    (1u << 9)

#define VIRTQ_DESC_F_NEXT  1
#define VIRTQ_DESC_F_WRITE 2

/* virtio-blk. */
#define BLK_CFG_CAPACITY           0
#define BLK_CFG_APPLE_TYPE         60
#define VIRTIO_BLK_T_IN            0
#define VIRTIO_BLK_T_OUT           1
#define VIRTIO_BLK_T_FLUSH         4
#define VIRTIO_BLK_T_APPLE_BARRIER 0x10000
#define VIRTIO_BLK_S_OK            0
#define VIRTIO_BLK_S_IOERR         1
#define VIRTIO_BLK_S_UNSUPP        2

#define QSIZE     8
#define SLOT_ROOT 6
#define SLOT_AUX  7

struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vblk {
    const struct fw_pci_fn *fn;
    uint32_t kind;
    uint64_t common, notify, isr, device;
    uint32_t notify_mult, notify_len;
    uint64_t queue_notify; /* queue 0's doorbell, checked to lie in the notify structure */
    uint32_t features_lo;  /* offered, bits 31:0 */
    uint16_t qsize;
    struct vq_desc *desc;
    uint8_t *avail, *used;
    uint16_t avail_idx, used_idx;
    uint8_t *hdr, *status;
};

static uint64_t bar_address(const struct fw_pci_fn *f, uint8_t bar, uint32_t off)
{
    return bar < 6 && f->bar_size[bar] ? f->bar[bar] + off : 0;
}

/*
 * Find the virtio capabilities; false when one is missing, outside its BAR
 * or shorter than the registers this driver touches.
 */
static bool find_caps(struct vblk *v)
{
    uint32_t slot = v->fn->slot;
    uint8_t ptr;
    unsigned guard = 0;

    if (!(fw_pci_read16(slot, PCI_STATUS) & PCI_STATUS_CAPS)) {
        return false;
    }
    ptr = fw_pci_read8(slot, PCI_CAP_PTR) & ~3u;
    while (ptr >= 0x40 && guard++ < 48) {
        if (fw_pci_read8(slot, ptr) == PCI_CAP_ID_VENDOR) {
            uint8_t type = fw_pci_read8(slot, ptr + 3), bar = fw_pci_read8(slot, ptr + 4);
            uint32_t off = fw_pci_read32(slot, ptr + 8), len = fw_pci_read32(slot, ptr + 12);
            uint64_t a = bar_address(v->fn, bar, off);

            if (a && (uint64_t)off + len <= v->fn->bar_size[bar]) {
                if (type == VIRTIO_PCI_CAP_COMMON && !v->common && len >= COMMON_LEN) {
                    v->common = a;
                } else if (type == VIRTIO_PCI_CAP_NOTIFY && !v->notify) {
                    v->notify = a;
                    v->notify_len = len;
                    v->notify_mult = fw_pci_read32(slot, ptr + 16);
                } else if (type == VIRTIO_PCI_CAP_ISR && !v->isr && len >= 1) {
                    v->isr = a;
                } else if (type == VIRTIO_PCI_CAP_DEVICE && !v->device && len >= 64) {
                    v->device = a;
                }
            }
        }
        ptr = fw_pci_read8(slot, ptr + 1) & ~3u;
    }
    return v->common && v->notify && v->isr && v->device;
}

static void set_status(struct vblk *v, uint8_t bits)
{
    mmio_write8(v->common + COMMON_STATUS, mmio_read8(v->common + COMMON_STATUS) | bits);
}

/* Reset, negotiate VERSION_1, set up queue 0, DRIVER_OK. */
static bool vblk_init(struct vblk *v, char *why, size_t len)
{
    uint64_t doorbell;
    uint32_t hi;
    uint16_t max, noff;

    mmio_write8(v->common + COMMON_STATUS, 0);
    if (mmio_read8(v->common + COMMON_STATUS) != 0) {
        fw_snprintf(why, len, "device_status does not read 0 after reset");
        return false;
    }
    set_status(v, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    mmio_write32(v->common + COMMON_DFSELECT, 1);
    hi = mmio_read32(v->common + COMMON_DF);
    if (!(hi & VIRTIO_F_VERSION_1_HI)) {
        fw_snprintf(why, len, "VIRTIO_F_VERSION_1 not offered (features 63:32 0x%x)", hi);
        return false;
    }
    mmio_write32(v->common + COMMON_DFSELECT, 0);
    v->features_lo = mmio_read32(v->common + COMMON_DF);
    /* FLUSH needs VIRTIO_BLK_F_FLUSH; RO is only information. Nothing else. */
    mmio_write32(v->common + COMMON_GFSELECT, 0);
    mmio_write32(v->common + COMMON_GF, v->features_lo & (VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_RO));
    mmio_write32(v->common + COMMON_GFSELECT, 1);
    mmio_write32(v->common + COMMON_GF, VIRTIO_F_VERSION_1_HI);
    set_status(v, STATUS_FEATURES_OK);
    if (!(mmio_read8(v->common + COMMON_STATUS) & STATUS_FEATURES_OK)) {
        fw_snprintf(why, len, "FEATURES_OK not accepted");
        return false;
    }
    mmio_write16(v->common + COMMON_Q_SELECT, 0);
    max = mmio_read16(v->common + COMMON_Q_SIZE);
    if (max == 0) {
        fw_snprintf(why, len, "queue 0 has size 0");
        return false;
    }
    v->qsize = max < QSIZE ? max : QSIZE;
    mmio_write16(v->common + COMMON_Q_SIZE, v->qsize);
    /*
     * Both factors come from the device: a doorbell outside the notify
     * structure would be a write to wherever they point. Read once; the
     * offset is fixed while the queue lives.
     */
    noff = mmio_read16(v->common + COMMON_Q_NOFF);
    doorbell = (uint64_t)noff * v->notify_mult;
    if (doorbell + 2 > v->notify_len) {
        fw_snprintf(why, len,
                    "queue 0's notify offset %u x multiplier %u is past the %u-byte "
                    "notify structure",
                    noff, v->notify_mult, v->notify_len);
        return false;
    }
    v->queue_notify = v->notify + doorbell;
    if (!v->desc) {
        v->desc = fw_alloc(16 * QSIZE, 16);
        v->avail = fw_alloc(6 + 2 * QSIZE, 2);
        v->used = fw_alloc(6 + 8 * QSIZE, 4);
        v->hdr = fw_alloc(16, 16);
        v->status = fw_alloc(16, 16);
        if (!v->desc || !v->avail || !v->used || !v->hdr || !v->status) {
            fw_snprintf(why, len, "out of RAM for the queue");
            return false;
        }
    }
    memset(v->desc, 0, 16 * QSIZE);
    memset(v->avail, 0, 6 + 2 * QSIZE);
    memset(v->used, 0, 6 + 8 * QSIZE);
    v->avail_idx = v->used_idx = 0;
    mmio_write32(v->common + COMMON_Q_DESCLO, (uint32_t)fw_gpa(v->desc));
    mmio_write32(v->common + COMMON_Q_DESCHI, (uint32_t)(fw_gpa(v->desc) >> 32));
    mmio_write32(v->common + COMMON_Q_AVAILLO, (uint32_t)fw_gpa(v->avail));
    mmio_write32(v->common + COMMON_Q_AVAILHI, (uint32_t)(fw_gpa(v->avail) >> 32));
    mmio_write32(v->common + COMMON_Q_USEDLO, (uint32_t)fw_gpa(v->used));
    mmio_write32(v->common + COMMON_Q_USEDHI, (uint32_t)(fw_gpa(v->used) >> 32));
    mmio_write16(v->common + COMMON_Q_ENABLE, 1);
    set_status(v, STATUS_DRIVER_OK);
    if (mmio_read8(v->common + COMMON_STATUS) & STATUS_NEEDS_RESET) {
        fw_snprintf(why, len, "DEVICE_NEEDS_RESET after DRIVER_OK");
        return false;
    }
    return true;
}

/*
 * One request: header, optional data, status. Returns the status byte, or
 * 0xee when the device did not complete it.
 */
static uint8_t vblk_request(struct vblk *v, uint32_t type, uint64_t sector, void *data,
                            uint32_t len, bool device_writes)
{
    uint16_t head = 0, n = 0, idx;
    unsigned spins = 0;

    st_le32(v->hdr, type);
    st_le32(v->hdr + 4, 0);
    st_le64(v->hdr + 8, sector);
    *v->status = 0xee;
    v->desc[n] = (struct vq_desc){ fw_gpa(v->hdr), 16, VIRTQ_DESC_F_NEXT, 1 };
    n++;
    if (len) {
        v->desc[n] = (struct vq_desc){ fw_gpa(data), len,
                                       (uint16_t)(VIRTQ_DESC_F_NEXT |
                                                  (device_writes ? VIRTQ_DESC_F_WRITE : 0)),
                                       (uint16_t)(n + 1) };
        n++;
    }
    v->desc[n] = (struct vq_desc){ fw_gpa(v->status), 1, VIRTQ_DESC_F_WRITE, 0 };
    /* avail ring: flags, idx, ring[qsize] */
    idx = v->avail_idx;
    v->avail[4 + 2 * (idx % v->qsize)] = (uint8_t)head;
    v->avail[5 + 2 * (idx % v->qsize)] = (uint8_t)(head >> 8);
    fw_barrier();
    v->avail_idx = (uint16_t)(idx + 1);
    v->avail[2] = (uint8_t)v->avail_idx;
    v->avail[3] = (uint8_t)(v->avail_idx >> 8);
    fw_barrier();
    mmio_write16(v->queue_notify, 0);
    /* A synchronous device completes inside the notify write; allow a little more. */
    while ((uint16_t)(v->used[2] | v->used[3] << 8) == v->used_idx && spins++ < 1000000) {
        fw_barrier();
    }
    if ((uint16_t)(v->used[2] | v->used[3] << 8) == v->used_idx) {
        return 0xee;
    }
    v->used_idx++;
    return *v->status;
}

/*
 * The platform's INTx routing (vmapple_platform_get_intx_spi, which the
 * firmware cannot call): the standard swizzle onto the 16 INTx SPIs.
 */
static uint32_t intx_spi(uint32_t slot, uint8_t pin)
{
    if (slot > 31 || pin < 1 || pin > 4) {
        return VMAPPLE_PLATFORM_NO_SPI;
    }
    return VMAPPLE_PCI_INTX_SPI_BASE + (slot + pin - 1) % VMAPPLE_PCI_INTX_LINES;
}

static void check_one(struct vblk *v, uint32_t slot)
{
    const struct selftest_params *p = fw_params();
    const uint32_t nsec = SELFTEST_IO_SECTORS;
    struct selftest_image_header h;
    uint8_t *buf = fw_alloc(64 * 1024, 4096), *back = fw_alloc(64 * 1024, 4096);
    char why[128];
    uint64_t cap, scratch, bad = FW_PATTERN_OK;
    uint32_t type, spi;
    uint16_t sub_vendor, sub_id;
    uint8_t st, isr, isr_after, got = 0, want = 0;
    bool pend, low, ok, header_ok, same;

    v->fn = fw_pci_slot(slot);
    if (!v->fn || !buf || !back) {
        fw_check("present", false, "no function at 00:%02x.0", slot);
        return;
    }
    sub_vendor = fw_pci_read16(slot, 0x2c);
    sub_id = fw_pci_read16(slot, 0x2e);
    fw_check("identity",
             v->fn->vendor == 0x106b && v->fn->device == 0x1a00 &&
                 (v->fn->class_rev >> 8) == VMAPPLE_VIRTIO_BLK_CLASS_VZ &&
                 (v->fn->class_rev & 0xff) == 1 && sub_vendor == 0x1af4 &&
                 sub_id == VMAPPLE_VIRTIO_BLK_SUBSYSTEM_VZ && v->fn->pin == 1,
             "00:%02x.0 %04x:%04x rev %u class %06x subsystem %04x:%04x pin %u (VZ: 106b:1a00 "
             "rev 1 class %06x subsystem 1af4:%04x INTA)",
             slot, v->fn->vendor, v->fn->device, v->fn->class_rev & 0xff, v->fn->class_rev >> 8,
             sub_vendor, sub_id, v->fn->pin, VMAPPLE_VIRTIO_BLK_CLASS_VZ,
             VMAPPLE_VIRTIO_BLK_SUBSYSTEM_VZ);
    if (!fw_check("capabilities", find_caps(v),
                  "common, notify, ISR and device config structures found in the BARs, each long "
                  "enough")) {
        return;
    }
    ok = vblk_init(v, why, sizeof(why));
    if (!fw_check("init", ok, "%s", ok ? "reset, VERSION_1 negotiated, queue 0 live" : why)) {
        return;
    }
    type = mmio_read32(v->device + BLK_CFG_APPLE_TYPE);
    fw_check("apple-type", type == v->kind, "config offset 60 says %u, expected %u (%s)", type,
             v->kind, v->kind == SELFTEST_KIND_ROOT ? "root" : "aux");
    cap = mmio_read32(v->device + BLK_CFG_CAPACITY) |
          (uint64_t)mmio_read32(v->device + BLK_CFG_CAPACITY + 4) << 32;

    /* Sector 0 and the first sectors of the pattern. */
    st = vblk_request(v, VIRTIO_BLK_T_IN, 0, buf, nsec * SELFTEST_SECTOR, true);
    memcpy(&h, buf, sizeof(h));
    header_ok = st == VIRTIO_BLK_S_OK && selftest_header_valid(&h, v->kind);
    fw_check("capacity", header_ok && cap == h.sectors, "%lu sectors; the image header says %lu",
             cap, header_ok ? h.sectors : 0);
    if (header_ok) {
        bad = fw_pattern_mismatch(h.seed, SELFTEST_SECTOR, buf + SELFTEST_SECTOR,
                                  (nsec - 1) * SELFTEST_SECTOR, &got, &want);
    }
    ok = header_ok && bad == FW_PATTERN_OK;
    if (ok) {
        fw_check("read", true, "IN of sectors 0..%u: status %u, the header and the pattern match",
                 nsec - 1, st);
    } else if (!header_ok) {
        fw_check("read", false, "IN of sectors 0..%u: status %u, NOT a valid self-test header",
                 nsec - 1, st);
    } else {
        fw_check("read", false,
                 "IN of sectors 0..%u: status %u; sector %lu byte %lu is 0x%02x, the image was "
                 "written with 0x%02x",
                 nsec - 1, st, bad / SELFTEST_SECTOR, bad % SELFTEST_SECTOR, got, want);
    }
    if (!ok) {
        return;
    }

    /* The interrupt: pending at the GIC after a completion; the ISR read clears it. */
    spi = intx_spi(slot, v->fn->pin);
    pend = spi != VMAPPLE_PLATFORM_NO_SPI && fw_spi_pending(spi);
    isr = mmio_read8(v->isr);
    low = spi != VMAPPLE_PLATFORM_NO_SPI && !fw_spi_pending(spi);
    isr_after = mmio_read8(v->isr);
    fw_check("interrupt", pend && (isr & 1) && low && isr_after == 0,
             "INTx pin %u of slot %u is SPI 0x%x: %s after a completion, ISR 0x%x, then %s "
             "(ISR 0x%x)",
             v->fn->pin, slot, spi, pend ? "pending" : "NOT pending", isr, low ? "low" : "NOT low",
             isr_after);

    /* Write the scratch area, FLUSH, BARRIER, read it back. */
    scratch = h.pattern_sectors;
    for (uint32_t i = 0; i < nsec * SELFTEST_SECTOR; i += 8) {
        st_le64(buf + i, selftest_scratch_word(p->nonce, v->kind, i / 8));
    }
    st = vblk_request(v, VIRTIO_BLK_T_OUT, scratch, buf, nsec * SELFTEST_SECTOR, false);
    fw_check(
        "write", st == VIRTIO_BLK_S_OK, "OUT of %u sectors at %lu: status %u%s", nsec, scratch, st,
        v->features_lo & VIRTIO_BLK_F_RO ? " (the device offers VIRTIO_BLK_F_RO: read-only)" : "");
    fw_check("flush-offered", (v->features_lo & VIRTIO_BLK_F_FLUSH) != 0,
             "VIRTIO_BLK_F_FLUSH %s (a write-back cache the driver can flush)",
             v->features_lo & VIRTIO_BLK_F_FLUSH ? "offered" : "NOT offered");
    st = vblk_request(v, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false);
    fw_check("flush", st == VIRTIO_BLK_S_OK, "FLUSH: status %u", st);
    st = vblk_request(v, VIRTIO_BLK_T_APPLE_BARRIER, 0, NULL, 0, false);
    fw_check("barrier", st == VIRTIO_BLK_S_OK, "APPLE_BARRIER (0x10000): status %u", st);
    memset(back, 0, nsec * SELFTEST_SECTOR);
    st = vblk_request(v, VIRTIO_BLK_T_IN, scratch, back, nsec * SELFTEST_SECTOR, true);
    same = !memcmp(back, buf, nsec * SELFTEST_SECTOR);
    fw_check("read-back", st == VIRTIO_BLK_S_OK && same, "IN of the written sectors: status %u, %s",
             st, same ? "what was written" : "NOT what was written");
    st = vblk_request(v, 0x7777, 0, NULL, 0, false);
    fw_check("unsupported", st == VIRTIO_BLK_S_UNSUPP, "request type 0x7777: status %u (UNSUPP 2)",
             st);
    mmio_read8(v->isr);
}

void check_virtio_blk_root(void)
{
    static struct vblk v = { .kind = SELFTEST_KIND_ROOT };
    fw_pci_enumerate();
    check_one(&v, SLOT_ROOT);
}

void check_virtio_blk_aux(void)
{
    static struct vblk v = { .kind = SELFTEST_KIND_AUX };
    fw_pci_enumerate();
    check_one(&v, SLOT_AUX);
}
