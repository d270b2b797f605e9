/* SPDX-License-Identifier: MIT */
/* State blob writer/reader and the save/load entry points. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

static bool writer_reserve(struct vm_state_writer *w, size_t n)
{
    size_t need, cap;
    uint8_t *nbuf;

    if (w->failed) {
        return false;
    }
    if (n > VM_STATE_MAX_PAYLOAD || w->len > VM_STATE_MAX_PAYLOAD - n) {
        w->failed = true;
        return false;
    }
    need = w->len + n;
    if (need <= w->cap) {
        return true;
    }
    cap = w->cap ? w->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    nbuf = realloc(w->buf, cap);
    if (!nbuf) {
        w->failed = true;
        return false;
    }
    w->buf = nbuf;
    w->cap = cap;
    return true;
}

void vm_st_put_bytes(struct vm_state_writer *w, const void *p, size_t n)
{
    if (n == 0 || !writer_reserve(w, n)) {
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void vm_st_put_u8(struct vm_state_writer *w, uint8_t v)
{
    vm_st_put_bytes(w, &v, 1);
}

void vm_st_put_u16(struct vm_state_writer *w, uint16_t v)
{
    uint8_t b[2];
    vm_st_le16(b, v);
    vm_st_put_bytes(w, b, sizeof(b));
}

void vm_st_put_u32(struct vm_state_writer *w, uint32_t v)
{
    uint8_t b[4];
    vm_st_le32(b, v);
    vm_st_put_bytes(w, b, sizeof(b));
}

void vm_st_put_u64(struct vm_state_writer *w, uint64_t v)
{
    uint8_t b[8];
    vm_st_le64(b, v);
    vm_st_put_bytes(w, b, sizeof(b));
}

void vm_st_put_bool(struct vm_state_writer *w, bool v)
{
    vm_st_put_u8(w, v ? 1 : 0);
}

static const uint8_t *reader_take(struct vm_state_reader *r, size_t n)
{
    const uint8_t *p;

    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        return NULL;
    }
    p = r->buf + r->pos;
    r->pos += n;
    return p;
}

void vm_st_get_bytes(struct vm_state_reader *r, void *dst, size_t n)
{
    const uint8_t *p = reader_take(r, n);

    if (p) {
        memcpy(dst, p, n);
    } else if (n) {
        memset(dst, 0, n);
    }
}

uint8_t vm_st_get_u8(struct vm_state_reader *r)
{
    const uint8_t *p = reader_take(r, 1);
    return p ? *p : 0;
}

uint16_t vm_st_get_u16(struct vm_state_reader *r)
{
    const uint8_t *p = reader_take(r, 2);
    return p ? vm_ld_le16(p) : 0;
}

uint32_t vm_st_get_u32(struct vm_state_reader *r)
{
    const uint8_t *p = reader_take(r, 4);
    return p ? vm_ld_le32(p) : 0;
}

uint64_t vm_st_get_u64(struct vm_state_reader *r)
{
    const uint8_t *p = reader_take(r, 8);
    return p ? vm_ld_le64(p) : 0;
}

bool vm_st_get_bool(struct vm_state_reader *r)
{
    uint8_t v = vm_st_get_u8(r);

    if (v > 1) {
        r->failed = true;
        return false;
    }
    return v == 1;
}

uint32_t vm_crc32(const void *buf, size_t len)
{
    static uint32_t table[256];
    static _Atomic int ready;
    const uint8_t *p = buf;
    uint32_t crc = 0xffffffffu;

    if (!ready) {
        /* Idempotent: racing threads compute the same table. */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        ready = 1;
    }
    for (size_t i = 0; i < len; i++) {
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    }
    return crc ^ 0xffffffffu;
}

VMAPPLE_API int vmapple_device_save(vmapple_device *dev, void *buf, size_t buf_size,
                                    size_t *size_out)
{
    struct vm_state_writer w = { 0 };
    uint8_t *hdr;
    int ret;

    if (!dev || !size_out) {
        return vm_error(dev, -EINVAL, "save: NULL %s", dev ? "size_out" : "device");
    }
    /*
     * The levels are filled in after the device's save, which may deliver
     * completions (and raise interrupts) while it waits for asynchronous work.
     */
    vm_st_put_u64(&w, 0);
    ret = dev->cls->save(dev, &w);
    if (ret == 0 && !w.failed) {
        vm_st_le64(w.buf, dev->irq_levels);
    }
    if (ret == 0 && w.failed) {
        ret = vm_error(dev, -ENOMEM, "save: out of memory or state over %u bytes",
                       VM_STATE_MAX_PAYLOAD);
    }
    if (ret < 0) {
        free(w.buf);
        return ret;
    }
    *size_out = VM_STATE_HEADER_LEN + w.len;
    if (!buf || buf_size < *size_out) {
        free(w.buf);
        return vm_error(dev, -ENOSPC, "save: the state needs %zu bytes, the buffer has %zu",
                        *size_out, buf ? buf_size : (size_t)0);
    }
    hdr = buf;
    memcpy(hdr, VM_STATE_MAGIC, 8);
    vm_st_le32(hdr + 8, VM_STATE_FORMAT);
    vm_st_le32(hdr + 12, dev->cls->type);
    vm_st_le32(hdr + 16, dev->cls->state_version);
    vm_st_le32(hdr + 20, (uint32_t)w.len);
    vm_st_le32(hdr + 24, vm_crc32(w.buf, w.len));
    vm_st_le32(hdr + 28, 0);
    if (w.len) {
        memcpy(hdr + VM_STATE_HEADER_LEN, w.buf, w.len);
    }
    free(w.buf);
    return 0;
}

VMAPPLE_API int vmapple_device_load(vmapple_device *dev, const void *buf, size_t size)
{
    const uint8_t *hdr = buf;
    struct vm_state_reader r = { 0 };
    uint32_t format, type, version, len, crc;
    uint64_t levels;
    int ret;

    if (!dev || !buf) {
        return vm_error(dev, -EINVAL, "load: NULL %s", dev ? "buffer" : "device");
    }
    if (size < VM_STATE_HEADER_LEN || memcmp(hdr, VM_STATE_MAGIC, 8) != 0) {
        return vm_error(dev, -EBADMSG, "load: not a libvmapple state blob (%zu bytes)", size);
    }
    format = vm_ld_le32(hdr + 8);
    type = vm_ld_le32(hdr + 12);
    version = vm_ld_le32(hdr + 16);
    len = vm_ld_le32(hdr + 20);
    crc = vm_ld_le32(hdr + 24);
    if (format != VM_STATE_FORMAT || vm_ld_le32(hdr + 28) != 0) {
        return vm_error(dev, -EPROTONOSUPPORT, "load: blob format %u is not supported (want %u)",
                        format, VM_STATE_FORMAT);
    }
    if (type != dev->cls->type) {
        return vm_error(dev, -ENODEV, "load: the blob is of device type %u, this is %s (%u)", type,
                        dev->cls->name, dev->cls->type);
    }
    if (version > dev->cls->state_version || version == 0) {
        return vm_error(dev, -EPROTONOSUPPORT,
                        "load: state version %u is not supported (this library writes %u)", version,
                        dev->cls->state_version);
    }
    if (len > VM_STATE_MAX_PAYLOAD || len != size - VM_STATE_HEADER_LEN) {
        return vm_error(dev, -EBADMSG, "load: payload length %u does not match the blob (%zu)", len,
                        size - VM_STATE_HEADER_LEN);
    }
    if (vm_crc32(hdr + VM_STATE_HEADER_LEN, len) != crc) {
        return vm_error(dev, -EBADMSG, "load: checksum mismatch");
    }
    r.buf = hdr + VM_STATE_HEADER_LEN;
    r.len = len;
    levels = vm_st_get_u64(&r);
    if (!r.failed && dev->nr_irqs < VM_MAX_IRQ_LINES && (levels >> dev->nr_irqs) != 0) {
        return vm_error(dev, -EBADMSG,
                        "load: interrupt levels 0x%llx name lines this device "
                        "does not have",
                        (unsigned long long)levels);
    }
    if (r.failed) {
        return vm_error(dev, -EBADMSG, "load: truncated blob");
    }
    r.irq_levels = levels;
    ret = dev->cls->load(dev, &r, version);
    if (ret < 0) {
        return ret;
    }
    /* Devices validate before committing; reaching here means they did. */
    dev->irq_levels = levels;
    for (uint32_t i = 0; i < dev->nr_irqs && i < VM_MAX_IRQ_LINES; i++) {
        if (dev->ops.irq_set) {
            dev->ops.irq_set(dev->opaque, i, (int)((levels >> i) & 1));
        }
    }
    return 0;
}
