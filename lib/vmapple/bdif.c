/* SPDX-License-Identifier: MIT */
/*
 * bdif: the boot "backdoor" block interface through which iBoot reads the
 * root and aux volumes. Requests complete synchronously inside the guest's
 * CMD write. See include/libvmapple/bdif.h for the behaviour this library
 * defines where the reference is silent or wrong.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "core.h"
#include "state.h"

/* Addressing: bits 31:16 of the offset select a unit, bits 15:0 a register. */
#define BDIF_UNIT_SHIFT 16
#define BDIF_REG_MASK   0xffffu
#define BDIF_UNIT_ROOT  0x00u
#define BDIF_UNIT_AUX   0x01u
#define BDIF_NR_VOLUMES 2u /* units 0 and 1; every other unit is absent */

/* Registers (per unit) and what they read as. */
#define BDIF_REG_STATUS      0x000u
#define BDIF_REG_CFG         0x004u
#define BDIF_REG_UNK_008     0x008u
#define BDIF_REG_BUSY        0x010u
#define BDIF_REG_UNK_400     0x400u
#define BDIF_REG_CMD         0x408u
#define BDIF_REG_NEXT_DEVICE 0x420u
#define BDIF_REG_UNK_434     0x434u

#define BDIF_STATUS_ACTIVE   1u
#define BDIF_CFG_ACTIVE      2u /* bit 1 */
#define BDIF_UNK_008_VALUE   0x420u
#define BDIF_BUSY_READY      1u
#define BDIF_UNK_400_VALUE   1u
#define BDIF_UNK_434_VALUE   0u
#define BDIF_NEXT_AFTER_ROOT 0x08000000u
#define BDIF_NEXT_AFTER_AUX  0x00010000u
#define BDIF_ALL_ONES        UINT64_MAX

/* The request: three descriptors of {u64 addr, u32 len, u32 flags}. */
#define BDIF_REQUEST_LEN      48u
#define BDIF_DESC_LEN         16u
#define BDIF_SECTOR_BLOCK_LEN 16u /* what the sector descriptor points to */
#define BDIF_SECTOR_FIELD     8u  /* offset of the u32 sector in that block */
#define BDIF_SECTOR_SIZE      512u
#define BDIF_DATA_FLAGS_READ  0x00030001u
#define BDIF_DATA_FLAGS_WRITE 0x00010001u
#define BDIF_STATUS_OK        0u
#define BDIF_STATUS_FAILED    1u

/*
 * Bounce buffer for hosts without mem_map: the most a request ever
 * allocates, whatever length the guest asks for (reference defect 2).
 */
#define BDIF_CHUNK (1u << 20)

struct bdif_desc {
    uint64_t addr;
    uint32_t len;
    uint32_t flags;
};

struct bdif_request {
    struct bdif_desc sector, data, status;
};

struct bdif {
    vmapple_device dev;
    uint32_t flags;                         /* VMAPPLE_BDIF_* */
    vmapple_blockdev *vol[BDIF_NR_VOLUMES]; /* NULL: unit without a volume */
    uint8_t *bounce;                        /* BDIF_CHUNK bytes, on first use */
};

static const char *const bdif_unit_names[BDIF_NR_VOLUMES] = { "root", "aux" };

static const vmapple_region_info bdif_regions[] = {
    { "bdif", VMAPPLE_BDIF_SIZE, VMAPPLE_BDIF_BASE, VMAPPLE_REGION_MMIO, UINT32_MAX },
};

static struct bdif *to_bdif(vmapple_device *dev)
{
    return vm_container_of(dev, struct bdif, dev);
}

/* Registers. */

static uint64_t bdif_reg_value(uint32_t unit, uint32_t reg)
{
    switch (reg) {
    case BDIF_REG_STATUS:
        return BDIF_STATUS_ACTIVE;
    case BDIF_REG_CFG:
        return BDIF_CFG_ACTIVE;
    case BDIF_REG_UNK_008:
        return BDIF_UNK_008_VALUE;
    case BDIF_REG_BUSY:
        return BDIF_BUSY_READY;
    case BDIF_REG_UNK_400:
        return BDIF_UNK_400_VALUE;
    case BDIF_REG_UNK_434:
        return BDIF_UNK_434_VALUE;
    case BDIF_REG_NEXT_DEVICE:
        if (unit == BDIF_UNIT_ROOT) {
            return BDIF_NEXT_AFTER_ROOT;
        }
        if (unit == BDIF_UNIT_AUX) {
            return BDIF_NEXT_AFTER_AUX;
        }
        return BDIF_ALL_ONES;
    default:
        /* CMD reads as all ones too, like every undecoded offset. */
        return BDIF_ALL_ONES;
    }
}

static int bdif_read(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                     uint64_t *value)
{
    uint32_t unit = (uint32_t)(offset >> BDIF_UNIT_SHIFT);
    uint32_t reg = (uint32_t)offset & BDIF_REG_MASK;

    (void)dev;
    (void)region;
    *value = bdif_reg_value(unit, reg) & vm_size_mask(size);
    return 0;
}

/* Requests. */

static void bdif_parse_desc(const uint8_t *p, struct bdif_desc *d)
{
    d->addr = vm_ld_le64(p);
    d->len = vm_ld_le32(p + 8);
    d->flags = vm_ld_le32(p + 12);
}

static uint8_t *bdif_bounce(struct bdif *b)
{
    if (!b->bounce) {
        b->bounce = malloc(BDIF_CHUNK);
    }
    return b->bounce;
}

/*
 * Moves len bytes between the volume at `off` and guest memory at `gpa`
 * (write: guest -> volume). Mapped guest memory is read or filled by the
 * volume directly; the rest goes through the bounded bounce buffer.
 * Returns 0, or a negative errno with *guest_fault telling whose fault it was.
 */
static int bdif_stream(struct bdif *b, vmapple_blockdev *bd, bool write, uint64_t off, uint64_t gpa,
                       uint64_t len, bool *guest_fault)
{
    while (len > 0) {
        uint64_t n;
        /* Reading the volume stores into guest memory, hence writable = !write. */
        void *host = vm_dma_map(&b->dev, gpa, len, !write, &n);
        uint8_t *buf;
        int ret;

        if (host) {
            ret = write ? vm_blockdev_write(bd, off, host, n) : vm_blockdev_read(bd, off, host, n);
            vm_dma_unmap(&b->dev, host, n, !write);
            if (ret < 0) {
                *guest_fault = false;
                return ret;
            }
        } else {
            buf = bdif_bounce(b);
            if (!buf) {
                *guest_fault = false;
                return -ENOMEM;
            }
            n = VM_MIN(len, (uint64_t)BDIF_CHUNK);
            ret = write ? vm_dma_read(&b->dev, gpa, buf, n) : vm_blockdev_read(bd, off, buf, n);
            if (ret < 0) {
                *guest_fault = write;
                return ret;
            }
            ret = write ? vm_blockdev_write(bd, off, buf, n) : vm_dma_write(&b->dev, gpa, buf, n);
            if (ret < 0) {
                *guest_fault = !write;
                return ret;
            }
        }
        off += n;
        gpa += n;
        len -= n;
    }
    return 0;
}

static uint8_t bdif_transfer_failed(struct bdif *b, const char *unit, bool write, uint64_t sector,
                                    const struct bdif_desc *data, int err, bool guest_fault)
{
    if (guest_fault) {
        vm_guest_error(&b->dev, "%s: %s of %u bytes at sector %llu: guest memory at 0x%llx: %s",
                       unit, write ? "write" : "read", data->len, (unsigned long long)sector,
                       (unsigned long long)data->addr, vmapple_strerror(err));
    } else {
        /* Not the guest's doing, but it can repeat it at will: rate-limited. */
        vm_log_ratelimited(
            &b->dev, VMAPPLE_LOG_ERROR, "%s: %s of %u bytes at sector %llu failed: %s", unit,
            write ? "write" : "read", data->len, (unsigned long long)sector, vmapple_strerror(err));
    }
    return BDIF_STATUS_FAILED;
}

/* Runs a parsed request against unit `unit` and returns its status byte. */
static uint8_t bdif_exec_request(struct bdif *b, uint32_t unit, const struct bdif_request *req)
{
    const char *name = bdif_unit_names[unit];
    vmapple_blockdev *bd = b->vol[unit];
    const struct bdif_desc *data = &req->data;
    uint8_t block[BDIF_SECTOR_BLOCK_LEN];
    uint64_t sector, off;
    bool write, guest_fault = false;
    int ret;

    if (!bd) {
        vm_guest_error(&b->dev, "%s: request to a unit without a volume", name);
        return BDIF_STATUS_FAILED;
    }
    if (req->sector.len != BDIF_SECTOR_BLOCK_LEN) {
        vm_guest_error(&b->dev, "%s: sector descriptor len is %u, not %u", name, req->sector.len,
                       BDIF_SECTOR_BLOCK_LEN);
        return BDIF_STATUS_FAILED;
    }
    if (vm_dma_read(&b->dev, req->sector.addr, block, sizeof(block)) < 0) {
        vm_guest_error(&b->dev, "%s: sector block at 0x%llx cannot be read", name,
                       (unsigned long long)req->sector.addr);
        return BDIF_STATUS_FAILED;
    }
    sector = vm_ld_le32(block + BDIF_SECTOR_FIELD);
    if (data->flags == BDIF_DATA_FLAGS_READ) {
        write = false;
    } else if (data->flags == BDIF_DATA_FLAGS_WRITE) {
        write = true;
    } else {
        vm_guest_error(&b->dev, "%s: unknown data flags 0x%x", name, data->flags);
        return BDIF_STATUS_FAILED;
    }
    if (data->len > VMAPPLE_BDIF_MAX_TRANSFER) {
        vm_guest_error(&b->dev, "%s: transfer of %u bytes is over the %llu-byte limit", name,
                       data->len, (unsigned long long)VMAPPLE_BDIF_MAX_TRANSFER);
        return BDIF_STATUS_FAILED;
    }
    off = sector * BDIF_SECTOR_SIZE;
    /* Reference defect 3: refuse a request crossing the end before any byte moves. */
    if (!vm_blockdev_range_ok(bd, off, data->len)) {
        vm_guest_error(&b->dev, "%s: %s of %u bytes at sector %llu leaves the volume (%llu bytes)",
                       name, write ? "write" : "read", data->len, (unsigned long long)sector,
                       (unsigned long long)vm_blockdev_capacity(bd));
        return BDIF_STATUS_FAILED;
    }
    if (!vm_range_ok(data->addr, data->len)) {
        vm_guest_error(&b->dev, "%s: data buffer at 0x%llx (%u bytes) wraps", name,
                       (unsigned long long)data->addr, data->len);
        return BDIF_STATUS_FAILED;
    }
    if (!write) {
        ret = bdif_stream(b, bd, false, off, data->addr, data->len, &guest_fault);
        if (ret < 0) {
            return bdif_transfer_failed(b, name, false, sector, data, ret, guest_fault);
        }
        return BDIF_STATUS_OK;
    }
    if (!(b->flags & VMAPPLE_BDIF_ALLOW_WRITES)) {
        vm_guest_error(&b->dev,
                       "%s: write request refused (writes are off: flag "
                       "VMAPPLE_BDIF_ALLOW_WRITES)",
                       name);
        return BDIF_STATUS_FAILED;
    }
    if (vm_blockdev_read_only(bd)) {
        vm_guest_error(&b->dev, "%s: write request to a read-only volume", name);
        return BDIF_STATUS_FAILED;
    }
    ret = bdif_stream(b, bd, true, off, data->addr, data->len, &guest_fault);
    if (ret < 0) {
        return bdif_transfer_failed(b, name, true, sector, data, ret, guest_fault);
    }
    if (b->flags & VMAPPLE_BDIF_FLUSH_WRITES) {
        ret = vm_blockdev_flush(bd);
        if (ret < 0) {
            vm_log_ratelimited(&b->dev, VMAPPLE_LOG_ERROR, "%s: flush after write failed: %s", name,
                               vmapple_strerror(ret));
            return BDIF_STATUS_FAILED;
        }
    }
    return BDIF_STATUS_OK;
}

static void bdif_cmd(struct bdif *b, uint32_t unit, uint64_t gpa)
{
    uint8_t raw[BDIF_REQUEST_LEN];
    struct bdif_request req;
    uint8_t status;

    /*
     * Reference defect 1: an unreadable request has no trustworthy status
     * address, so nothing at all is written.
     */
    if (vm_dma_read(&b->dev, gpa, raw, sizeof(raw)) < 0) {
        vm_guest_error(&b->dev, "%s: request at 0x%llx cannot be read; no status written",
                       bdif_unit_names[unit], (unsigned long long)gpa);
        return;
    }
    bdif_parse_desc(raw, &req.sector);
    bdif_parse_desc(raw + BDIF_DESC_LEN, &req.data);
    bdif_parse_desc(raw + 2 * BDIF_DESC_LEN, &req.status);
    status = bdif_exec_request(b, unit, &req);
    if (vm_dma_write(&b->dev, req.status.addr, &status, 1) < 0) {
        vm_guest_error(&b->dev, "%s: status byte at 0x%llx cannot be written",
                       bdif_unit_names[unit], (unsigned long long)req.status.addr);
    }
}

static int bdif_write(vmapple_device *dev, uint32_t region, uint64_t offset, uint32_t size,
                      uint64_t value)
{
    struct bdif *b = to_bdif(dev);
    uint64_t unit = offset >> BDIF_UNIT_SHIFT;
    uint32_t reg = (uint32_t)offset & BDIF_REG_MASK;

    (void)region;
    (void)size;
    if (reg != BDIF_REG_CMD) {
        return 0; /* every other register ignores writes */
    }
    if (unit >= BDIF_NR_VOLUMES) {
        vm_guest_error(dev, "CMD write to absent unit 0x%llx ignored", (unsigned long long)unit);
        return 0;
    }
    bdif_cmd(b, (uint32_t)unit, value);
    return 0;
}

/* Lifecycle and state. */

static void bdif_reset(vmapple_device *dev)
{
    /* No guest-visible state: every register is constant. */
    (void)dev;
}

static int bdif_save(vmapple_device *dev, struct vm_state_writer *w)
{
    struct bdif *b = to_bdif(dev);

    /* The configuration, so that a loading device can check it matches. */
    vm_st_put_u32(w, b->flags);
    for (uint32_t i = 0; i < BDIF_NR_VOLUMES; i++) {
        vm_st_put_bool(w, b->vol[i] != NULL);
        vm_st_put_u64(w, b->vol[i] ? vm_blockdev_capacity(b->vol[i]) : 0);
    }
    return 0;
}

static int bdif_load(vmapple_device *dev, struct vm_state_reader *r, uint32_t version)
{
    struct bdif *b = to_bdif(dev);
    bool present[BDIF_NR_VOLUMES];
    uint64_t capacity[BDIF_NR_VOLUMES];
    uint32_t flags;

    (void)version;
    flags = vm_st_get_u32(r);
    for (uint32_t i = 0; i < BDIF_NR_VOLUMES; i++) {
        present[i] = vm_st_get_bool(r);
        capacity[i] = vm_st_get_u64(r);
    }
    if (!vm_st_complete(r)) {
        return vm_error(dev, -EBADMSG, "load: truncated or malformed bdif state");
    }
    if (flags != b->flags) {
        return vm_error(dev, -EINVAL, "load: the blob has option flags 0x%x, this device 0x%x",
                        flags, b->flags);
    }
    for (uint32_t i = 0; i < BDIF_NR_VOLUMES; i++) {
        uint64_t mine = b->vol[i] ? vm_blockdev_capacity(b->vol[i]) : 0;
        if (present[i] != (b->vol[i] != NULL)) {
            return vm_error(dev, -EINVAL, "load: option %s: the blob %s a volume, this device %s",
                            bdif_unit_names[i], present[i] ? "has" : "has no",
                            b->vol[i] ? "has one" : "has none");
        }
        if (present[i] && capacity[i] != mine) {
            return vm_error(dev, -EINVAL,
                            "load: option %s: the blob's volume is %llu bytes, this device's "
                            "%llu",
                            bdif_unit_names[i], (unsigned long long)capacity[i],
                            (unsigned long long)mine);
        }
    }
    /* Nothing to commit: the device has no mutable state. */
    return 0;
}

static void bdif_destroy(vmapple_device *dev)
{
    struct bdif *b = to_bdif(dev);

    for (uint32_t i = 0; i < BDIF_NR_VOLUMES; i++) {
        vm_blockdev_unref(b->vol[i]);
    }
    free(b->bounce);
    free(b);
}

static const struct vmapple_device_class bdif_class = {
    .type = VMAPPLE_DEVICE_BDIF,
    .name = "bdif",
    .state_version = 1,
    .read = bdif_read,
    .write = bdif_write,
    .reset = bdif_reset,
    .save = bdif_save,
    .load = bdif_load,
    .destroy = bdif_destroy,
};

VMAPPLE_API int vmapple_bdif_create(const vmapple_host_ops *ops, void *opaque,
                                    const vmapple_bdif_options *user_opts, vmapple_device **out)
{
    const uint32_t known_flags = VMAPPLE_BDIF_ALLOW_WRITES | VMAPPLE_BDIF_FLUSH_WRITES;
    vmapple_bdif_options opts = VMAPPLE_BDIF_OPTIONS_INIT;
    struct bdif *b;
    int ret;

    if (!out) {
        return vm_error_named("bdif", NULL, -EINVAL, "create: NULL out");
    }
    *out = NULL;
    if (vm_sized_splits_field(user_opts, offsetof(vmapple_bdif_options, root), sizeof(opts.root)) ||
        vm_sized_splits_field(user_opts, offsetof(vmapple_bdif_options, aux), sizeof(opts.aux))) {
        return vm_error_named("bdif", NULL, -EINVAL,
                              "bdif options: the size field ends inside a volume pointer; set it "
                              "with VMAPPLE_BDIF_OPTIONS_INIT");
    }
    ret = vm_copy_sized(&opts, sizeof(opts), user_opts, "bdif options");
    if (ret < 0) {
        return ret;
    }
    if (opts.flags & ~known_flags) {
        return vm_error_named("bdif", NULL, -EINVAL,
                              "option flags: unknown bits 0x%x (known: 0x%x)",
                              opts.flags & ~known_flags, known_flags);
    }
    if ((opts.flags & VMAPPLE_BDIF_FLUSH_WRITES) && !(opts.flags & VMAPPLE_BDIF_ALLOW_WRITES)) {
        return vm_error_named("bdif", NULL, -EINVAL,
                              "option flags: VMAPPLE_BDIF_FLUSH_WRITES needs "
                              "VMAPPLE_BDIF_ALLOW_WRITES");
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return vm_error_named("bdif", NULL, -ENOMEM, "out of memory");
    }
    ret = vm_device_init(&b->dev, &bdif_class, ops, opaque, bdif_regions,
                         VM_ARRAY_SIZE(bdif_regions), NULL, 0);
    if (ret == 0) {
        ret = vm_require_op("bdif", (const void *)b->dev.ops.mem_read, "mem_read");
    }
    if (ret == 0) {
        ret = vm_require_op("bdif", (const void *)b->dev.ops.mem_write, "mem_write");
    }
    if (ret < 0) {
        free(b);
        return ret;
    }
    b->flags = opts.flags;
    b->vol[BDIF_UNIT_ROOT] = opts.root;
    b->vol[BDIF_UNIT_AUX] = opts.aux;
    for (uint32_t i = 0; i < BDIF_NR_VOLUMES; i++) {
        if (b->vol[i]) {
            vm_blockdev_ref(b->vol[i]);
        }
    }
    bdif_reset(&b->dev);
    *out = &b->dev;
    return 0;
}
