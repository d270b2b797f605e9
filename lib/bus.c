/* SPDX-License-Identifier: MIT */
/*
 * The bus helper: sorted, non-overlapping ranges found by binary search,
 * with the last hit tried first (guests hammer one register at a time).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct bus_range {
    uint64_t base;
    uint64_t last; /* inclusive, so a range may end at 2^64 - 1 */
    vmapple_device *dev;
    uint32_t region;
    vmapple_bus_read_fn read;
    vmapple_bus_write_fn write;
    void *opaque;
    char *owned_name; /* handlers: our copy of the name */
    const char *name;
};

struct vmapple_bus {
    struct bus_range *ranges;
    uint32_t count;
    uint32_t cap;
    uint32_t hint; /* index of the last range hit; accessed with relaxed atomics */
    uint64_t unmapped_reads;
    uint64_t unmapped_writes;
    char last_error[VM_ERROR_LEN];
};

#define bus_error(bus, err, ...) vm_error_named("bus", (bus)->last_error, (err), __VA_ARGS__)

VMAPPLE_API int vmapple_bus_create(vmapple_bus **out)
{
    vmapple_bus *bus;

    if (!out) {
        return vm_error_named("bus", NULL, -EINVAL, "create: NULL out");
    }
    bus = calloc(1, sizeof(*bus));
    if (!bus) {
        return vm_error_named("bus", NULL, -ENOMEM, "create: out of memory");
    }
    *out = bus;
    return 0;
}

VMAPPLE_API void vmapple_bus_destroy(vmapple_bus *bus)
{
    if (!bus) {
        return;
    }
    for (uint32_t i = 0; i < bus->count; i++) {
        free(bus->ranges[i].owned_name);
    }
    free(bus->ranges);
    free(bus);
}

VMAPPLE_API const char *vmapple_bus_last_error(const vmapple_bus *bus)
{
    return bus ? bus->last_error : "NULL bus";
}

/* Index of the first range whose base is > addr. */
static uint32_t upper_bound(const vmapple_bus *bus, uint64_t addr)
{
    uint32_t lo = 0, hi = bus->count;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bus->ranges[mid].base <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int bus_insert(vmapple_bus *bus, const struct bus_range *nr)
{
    uint32_t pos = upper_bound(bus, nr->base);
    const struct bus_range *prev = pos > 0 ? &bus->ranges[pos - 1] : NULL;
    const struct bus_range *next = pos < bus->count ? &bus->ranges[pos] : NULL;

    if (prev && prev->last >= nr->base) {
        return bus_error(bus, -EEXIST, "%s [0x%llx, 0x%llx] overlaps %s [0x%llx, 0x%llx]", nr->name,
                         (unsigned long long)nr->base, (unsigned long long)nr->last, prev->name,
                         (unsigned long long)prev->base, (unsigned long long)prev->last);
    }
    if (next && next->base <= nr->last) {
        return bus_error(bus, -EEXIST, "%s [0x%llx, 0x%llx] overlaps %s [0x%llx, 0x%llx]", nr->name,
                         (unsigned long long)nr->base, (unsigned long long)nr->last, next->name,
                         (unsigned long long)next->base, (unsigned long long)next->last);
    }
    if (bus->count == bus->cap) {
        uint32_t cap = bus->cap ? bus->cap * 2 : 16;
        struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));
        if (!r) {
            return bus_error(bus, -ENOMEM, "out of memory");
        }
        bus->ranges = r;
        bus->cap = cap;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->count - pos) * sizeof(*nr));
    bus->ranges[pos] = *nr;
    bus->count++;
    __atomic_store_n(&bus->hint, 0, __ATOMIC_RELAXED);
    return 0;
}

static int range_bounds(vmapple_bus *bus, const char *name, uint64_t base, uint64_t size,
                        uint64_t *last)
{
    if (size == 0) {
        return bus_error(bus, -EINVAL, "%s: size 0", name);
    }
    if (base > UINT64_MAX - (size - 1)) {
        return bus_error(bus, -EINVAL, "%s: 0x%llx bytes at 0x%llx wrap around", name,
                         (unsigned long long)size, (unsigned long long)base);
    }
    *last = base + size - 1;
    return 0;
}

VMAPPLE_API int vmapple_bus_map_region(vmapple_bus *bus, vmapple_device *dev, uint32_t region,
                                       uint64_t base)
{
    const vmapple_region_info *info;
    struct bus_range nr = { 0 };
    int ret;

    if (!bus || !dev) {
        return bus ? bus_error(bus, -EINVAL, "map_region: NULL device")
                   : vm_error_named("bus", NULL, -EINVAL, "map_region: NULL bus");
    }
    if (region >= dev->nr_regions) {
        return bus_error(bus, -EINVAL, "map_region: %s has no region %u", dev->name, region);
    }
    info = &dev->regions[region];
    if (base == VMAPPLE_NO_BASE) {
        base = info->base;
        if (base == VMAPPLE_NO_BASE) {
            return bus_error(bus, -EINVAL,
                             "map_region: %s region %s has no base in the vmapple map; give one",
                             dev->name, info->name);
        }
    }
    ret = range_bounds(bus, info->name, base, info->size, &nr.last);
    if (ret < 0) {
        return ret;
    }
    nr.base = base;
    nr.dev = dev;
    nr.region = region;
    nr.name = info->name;
    return bus_insert(bus, &nr);
}

VMAPPLE_API int vmapple_bus_map_device(vmapple_bus *bus, vmapple_device *dev)
{
    int ret;

    if (!bus || !dev) {
        return bus ? bus_error(bus, -EINVAL, "map_device: NULL device")
                   : vm_error_named("bus", NULL, -EINVAL, "map_device: NULL bus");
    }
    for (uint32_t i = 0; i < dev->nr_regions; i++) {
        if (dev->regions[i].base == VMAPPLE_NO_BASE) {
            continue;
        }
        ret = vmapple_bus_map_region(bus, dev, i, VMAPPLE_NO_BASE);
        if (ret < 0) {
            char saved[VM_ERROR_LEN];
            memcpy(saved, bus->last_error, sizeof(saved));
            /* Only what this call mapped: ranges the host mapped before stay. */
            for (uint32_t j = 0; j < i; j++) {
                if (dev->regions[j].base != VMAPPLE_NO_BASE) {
                    vmapple_bus_unmap(bus, dev->regions[j].base);
                }
            }
            memcpy(bus->last_error, saved, sizeof(saved));
            vm_set_thread_error(saved);
            return ret;
        }
    }
    return 0;
}

VMAPPLE_API int vmapple_bus_map_handler(vmapple_bus *bus, const char *name, uint64_t base,
                                        uint64_t size, vmapple_bus_read_fn read,
                                        vmapple_bus_write_fn write, void *opaque)
{
    struct bus_range nr = { 0 };
    int ret;

    if (!bus || !name) {
        return bus ? bus_error(bus, -EINVAL, "map_handler: NULL name")
                   : vm_error_named("bus", NULL, -EINVAL, "map_handler: NULL bus");
    }
    ret = range_bounds(bus, name, base, size, &nr.last);
    if (ret < 0) {
        return ret;
    }
    nr.owned_name = strdup(name);
    if (!nr.owned_name) {
        return bus_error(bus, -ENOMEM, "out of memory");
    }
    nr.base = base;
    nr.region = UINT32_MAX;
    nr.read = read;
    nr.write = write;
    nr.opaque = opaque;
    nr.name = nr.owned_name;
    ret = bus_insert(bus, &nr);
    if (ret < 0) {
        free(nr.owned_name);
    }
    return ret;
}

static void bus_remove_at(vmapple_bus *bus, uint32_t i)
{
    free(bus->ranges[i].owned_name);
    memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->count - i - 1) * sizeof(bus->ranges[0]));
    bus->count--;
    __atomic_store_n(&bus->hint, 0, __ATOMIC_RELAXED);
}

VMAPPLE_API int vmapple_bus_unmap(vmapple_bus *bus, uint64_t base)
{
    uint32_t pos;

    if (!bus) {
        return vm_error_named("bus", NULL, -EINVAL, "unmap: NULL bus");
    }
    pos = upper_bound(bus, base);
    if (pos == 0 || bus->ranges[pos - 1].base != base) {
        return bus_error(bus, -ENOENT, "unmap: no range starts at 0x%llx",
                         (unsigned long long)base);
    }
    bus_remove_at(bus, pos - 1);
    return 0;
}

VMAPPLE_API int vmapple_bus_unmap_device(vmapple_bus *bus, vmapple_device *dev)
{
    int removed = 0;

    if (!bus || !dev) {
        return -EINVAL;
    }
    for (uint32_t i = bus->count; i-- > 0;) {
        if (bus->ranges[i].dev == dev) {
            bus_remove_at(bus, i);
            removed++;
        }
    }
    return removed;
}

/* The range holding [addr, addr + size), or NULL. */
static inline const struct bus_range *bus_find(const vmapple_bus *bus, uint64_t addr, uint32_t size)
{
    uint32_t hint = __atomic_load_n(&bus->hint, __ATOMIC_RELAXED);
    const struct bus_range *r;
    uint32_t pos;

    if (vm_likely(hint < bus->count)) {
        r = &bus->ranges[hint];
        if (addr >= r->base && addr <= r->last && size - 1 <= r->last - addr) {
            return r;
        }
    }
    pos = upper_bound(bus, addr);
    if (pos == 0) {
        return NULL;
    }
    r = &bus->ranges[pos - 1];
    if (addr > r->last || size - 1 > r->last - addr) {
        return NULL;
    }
    __atomic_store_n((uint32_t *)&bus->hint, pos - 1, __ATOMIC_RELAXED);
    return r;
}

static int bus_unmapped(vmapple_bus *bus, const char *op, uint64_t addr, uint32_t size,
                        uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    (void)bus; /* dispatch may run on several threads: only the thread's error */
    return vm_error_named("bus", NULL, -ENXIO, "%s of %u bytes at 0x%llx: nothing mapped there", op,
                          size, (unsigned long long)addr);
}

VMAPPLE_API int vmapple_bus_read(vmapple_bus *bus, uint64_t addr, uint32_t size, uint64_t *value)
{
    const struct bus_range *r;

    if (vm_unlikely(!bus || !value || !vm_access_size_ok(size))) {
        if (value) {
            *value = 0;
        }
        return vm_error_named("bus", NULL, -EINVAL, "read: bad arguments (size %u)", size);
    }
    r = bus_find(bus, addr, size);
    if (vm_unlikely(!r)) {
        *value = 0;
        return bus_unmapped(bus, "read", addr, size, &bus->unmapped_reads);
    }
    if (r->dev) {
        /* bus_find proved the access lies inside the region: no re-checks. */
        return r->dev->cls->read(r->dev, r->region, addr - r->base, size, value);
    }
    if (!r->read) {
        *value = 0;
        return 0;
    }
    *value = 0;
    return r->read(r->opaque, addr - r->base, size, value);
}

VMAPPLE_API int vmapple_bus_write(vmapple_bus *bus, uint64_t addr, uint32_t size, uint64_t value)
{
    const struct bus_range *r;

    if (vm_unlikely(!bus || !vm_access_size_ok(size))) {
        return vm_error_named("bus", NULL, -EINVAL, "write: bad arguments (size %u)", size);
    }
    r = bus_find(bus, addr, size);
    if (vm_unlikely(!r)) {
        return bus_unmapped(bus, "write", addr, size, &bus->unmapped_writes);
    }
    if (r->dev) {
        return r->dev->cls->write(r->dev, r->region, addr - r->base, size,
                                  value & vm_size_mask(size));
    }
    return r->write ? r->write(r->opaque, addr - r->base, size, value & vm_size_mask(size)) : 0;
}

static void fill_range(const struct bus_range *r, vmapple_bus_range *out)
{
    vmapple_bus_range full;

    full.size = (uint32_t)sizeof(full);
    full.region = r->region;
    full.base = r->base;
    full.length = r->last - r->base + 1;
    full.name = r->name;
    full.device = r->dev;
    vm_fill_sized(out, &full, sizeof(full));
}

static bool range_out_ok(const vmapple_bus_range *range)
{
    return range && range->size >= sizeof(uint32_t) * 2;
}

VMAPPLE_API int vmapple_bus_lookup(const vmapple_bus *bus, uint64_t addr, vmapple_bus_range *range)
{
    const struct bus_range *r;

    if (!bus || !range_out_ok(range)) {
        return -EINVAL;
    }
    r = bus_find(bus, addr, 1);
    if (!r) {
        return -ENXIO;
    }
    fill_range(r, range);
    return 0;
}

VMAPPLE_API int vmapple_bus_count_ranges(const vmapple_bus *bus)
{
    return bus ? (int)bus->count : -EINVAL;
}

VMAPPLE_API int vmapple_bus_get_range(const vmapple_bus *bus, uint32_t index,
                                      vmapple_bus_range *range)
{
    if (!bus || !range_out_ok(range)) {
        return -EINVAL;
    }
    if (index >= bus->count) {
        return -ENOENT;
    }
    fill_range(&bus->ranges[index], range);
    return 0;
}

VMAPPLE_API int vmapple_bus_get_unmapped_counts(const vmapple_bus *bus, uint64_t *reads,
                                                uint64_t *writes)
{
    if (!bus) {
        return -EINVAL;
    }
    if (reads) {
        *reads = __atomic_load_n(&bus->unmapped_reads, __ATOMIC_RELAXED);
    }
    if (writes) {
        *writes = __atomic_load_n(&bus->unmapped_writes, __ATOMIC_RELAXED);
    }
    return 0;
}
