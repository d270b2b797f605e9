/* SPDX-License-Identifier: MIT */
/*
 * The example's vmapple machine. Memory: the firmware region and guest RAM
 * are host memory mapped into the accelerator; everything else is MMIO and
 * goes through one vmapple_bus, on which the library's devices sit at their
 * map bases (vmapple_bus_map_device), PCI BARs where the guest puts them,
 * and the example's own handlers (GIC distributor, PL011, ECAM) in between.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "machine.h"
#include "pcihost.h"
#include "psci.h"
#include "regnames.h"
#include "standins.h"
#include "vmmlog.h"

#define MAX_DEVICES 16
#define MAX_LINES   8
#define MAX_RESETS  64 /* a guest resetting forever is stopped, not run forever */

struct mdev {
    struct machine *m;
    vmapple_device *dev;
    char label[32];
    int slot; /* PCI slot, or -1 for a platform device */
    uint32_t nr_lines;
    uint32_t spi[MAX_LINES]; /* per interrupt line, VMAPPLE_NO_IRQ when unrouted */
    uint64_t levels;
};

struct machine {
    struct machine_config cfg;
    accel *accel;
    vmapple_bus *bus;

    void *ram_map;
    size_t ram_map_len;
    uint8_t *ram;
    uint8_t *fw_mem;
    void *fw_map;
    size_t fw_map_len;

    struct gicd gicd;
    struct pl011 uart;
    struct pcihost pci;
    struct mdev devs[MAX_DEVICES];
    unsigned nr_devs;
    uint64_t devices; /* SELFTEST_DEV_* */
    vmapple_dma_backend *dart;
    vmapple_device *dma_pci;
    uint32_t dma_slot;

    /* Statistics and findings of the current run. */
    uint64_t mmio_exits;
    uint64_t hvc_calls;
    unsigned unmapped_logged; /* vmm_guest_error() */
    bool touched_gfx;
    uint32_t warned_platform; /* bit per vmapple_map_id already reported */
    uint64_t pvpanic_events;
    bool cpu_on_warned;
};

#define mlog(m, level, ...) vmm_log((m)->cfg.log, (m)->cfg.opaque, (level), __VA_ARGS__)

/* ---- host ops for the library's devices ---- */

static bool ram_range(const struct machine *m, uint64_t gpa, uint64_t len)
{
    return gpa >= VMAPPLE_RAM_BASE && len <= m->cfg.ram_size &&
           gpa - VMAPPLE_RAM_BASE <= m->cfg.ram_size - len;
}

static int host_mem_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    struct mdev *d = opaque;
    if (!ram_range(d->m, gpa, len)) {
        return -EFAULT;
    }
    memcpy(buf, d->m->ram + (gpa - VMAPPLE_RAM_BASE), len);
    return 0;
}

static int host_mem_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    struct mdev *d = opaque;
    if (!ram_range(d->m, gpa, len)) {
        return -EFAULT;
    }
    memcpy(d->m->ram + (gpa - VMAPPLE_RAM_BASE), buf, len);
    return 0;
}

static void *host_mem_map(void *opaque, uint64_t gpa, uint64_t len, int writable,
                          uint64_t *mapped_len)
{
    struct mdev *d = opaque;
    uint64_t left;
    (void)writable;

    if (!len || !ram_range(d->m, gpa, 1)) {
        return NULL;
    }
    left = d->m->cfg.ram_size - (gpa - VMAPPLE_RAM_BASE);
    *mapped_len = len < left ? len : left;
    return d->m->ram + (gpa - VMAPPLE_RAM_BASE);
}

static void update_spi(struct machine *m, uint32_t spi)
{
    bool level = false;

    for (unsigned i = 0; i < m->nr_devs && !level; i++) {
        const struct mdev *d = &m->devs[i];
        for (uint32_t l = 0; l < d->nr_lines; l++) {
            if (d->spi[l] == spi && (d->levels >> l) & 1) {
                level = true;
                break;
            }
        }
    }
    gicd_set_spi(&m->gicd, spi, level);
}

static void host_irq_set(void *opaque, uint32_t line, int level)
{
    struct mdev *d = opaque;

    if (line >= MAX_LINES) {
        return;
    }
    if (level) {
        d->levels |= 1ull << line;
    } else {
        d->levels &= ~(1ull << line);
    }
    if (line < d->nr_lines && d->spi[line] != VMAPPLE_NO_IRQ) {
        update_spi(d->m, d->spi[line]);
    }
}

static void host_log(void *opaque, int level, const char *message)
{
    struct mdev *d = opaque;
    if (d->m->cfg.log) {
        d->m->cfg.log(d->m->cfg.opaque, level, message);
    }
}

static void host_pci_bar_update(void *opaque, uint32_t region, uint64_t address, uint64_t size,
                                int enabled)
{
    struct mdev *d = opaque;
    if (d->slot >= 0) {
        pcihost_bar_update(&d->m->pci, (uint32_t)d->slot, region, address, size, enabled);
    }
}

static vmapple_host_ops machine_host_ops(void)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;

    ops.mem_read = host_mem_read;
    ops.mem_write = host_mem_write;
    ops.mem_map = host_mem_map;
    ops.irq_set = host_irq_set;
    ops.log = host_log;
    ops.pci_bar_update = host_pci_bar_update;
    return ops;
}

/*
 * Reserve a device slot; the caller creates the device with
 * machine_host_ops() and the returned opaque, then calls attach_device().
 */
static struct mdev *new_device(struct machine *m, const char *label, int slot)
{
    struct mdev *d;

    if (m->nr_devs == MAX_DEVICES) {
        return NULL;
    }
    d = &m->devs[m->nr_devs];
    memset(d, 0, sizeof(*d));
    d->m = m;
    d->slot = slot;
    snprintf(d->label, sizeof(d->label), "%s", label);
    for (uint32_t l = 0; l < MAX_LINES; l++) {
        d->spi[l] = VMAPPLE_NO_IRQ;
    }
    return d;
}

static bool attach_device(struct machine *m, struct mdev *d, uint64_t selftest_bit, GError **error)
{
    int n, ret;

    vmapple_device_set_name(d->dev, d->label);
    if (d->slot < 0) {
        ret = vmapple_bus_map_device(m->bus, d->dev);
        if (ret < 0) {
            g_set_error(error, VMM_ERROR, 0, "%s: cannot map it: %s", d->label,
                        vmapple_bus_last_error(m->bus));
            return false;
        }
    } else {
        ret = pcihost_attach(&m->pci, (uint32_t)d->slot, d->dev, d->label);
        if (ret < 0) {
            g_set_error(error, VMM_ERROR, 0, "%s: PCI slot %d: %s", d->label, d->slot,
                        g_strerror(-ret));
            return false;
        }
    }
    n = vmapple_device_count_irqs(d->dev);
    d->nr_lines = n > 0 ? (uint32_t)(n < MAX_LINES ? n : MAX_LINES) : 0;
    for (uint32_t l = 0; l < d->nr_lines; l++) {
        const vmapple_irq_info *info;

        if (vmapple_device_get_irq(d->dev, l, &info) < 0) {
            continue;
        }
        if (info->flags & VMAPPLE_IRQ_PCI_INTX) {
            uint32_t pin = 1;
            if (vmapple_device_pci_config_read(d->dev, 0x3d, 1, &pin) < 0 || pin < 1 || pin > 4) {
                pin = 1;
            }
            d->spi[l] = d->slot >= 0 ? vmapple_platform_get_intx_spi((uint32_t)d->slot, pin)
                                     : VMAPPLE_NO_IRQ;
        } else {
            d->spi[l] = info->spi;
        }
    }
    m->nr_devs++;
    m->devices |= selftest_bit;
    return true;
}

/* ---- the guest's view: MMIO exits and hypercalls ---- */

static const char *device_label(const struct machine *m, const vmapple_device *dev)
{
    for (unsigned i = 0; i < m->nr_devs; i++) {
        if (m->devs[i].dev == dev) {
            return m->devs[i].label;
        }
    }
    return vmapple_device_get_name(dev);
}

/* The platform map row gpa lies in, or NULL; RAM's row, of size 0, never matches. */
static const vmapple_platform_region *platform_row(uint64_t gpa)
{
    int n = vmapple_platform_count_regions();
    const vmapple_platform_region *p;

    for (int i = 0; i < n; i++) {
        if (vmapple_platform_get_region((uint32_t)i, &p) == 0 && gpa >= p->base &&
            gpa - p->base < p->size) {
            return p;
        }
    }
    return NULL;
}

static void describe(struct machine *m, uint64_t gpa, char *buf, size_t len)
{
    vmapple_bus_range r = VMAPPLE_BUS_RANGE_INIT;
    const vmapple_platform_region *p;
    uint64_t off;

    if (vmapple_bus_lookup(m->bus, gpa, &r) < 0) {
        p = platform_row(gpa);
        if (p) {
            snprintf(buf, len, "(unmapped: %s, not provided) +0x%" PRIx64, p->name, gpa - p->base);
        } else {
            snprintf(buf, len, "(unmapped)");
        }
        return;
    }
    off = gpa - r.base;
    if (r.device) {
        const vmapple_region_info *info = NULL;
        const char *label = device_label(m, r.device);
        char reg[48];

        vmapple_device_get_region(r.device, r.region, &info);
        if (info && ((vmapple_device_get_type(r.device) == VMAPPLE_DEVICE_VIRTIO_BLK &&
                      info->pci_bar != UINT32_MAX &&
                      virtio_regname(r.device, info->pci_bar, off, reg, sizeof(reg))) ||
                     regname(label, info->name, off, reg, sizeof(reg)))) {
            snprintf(buf, len, "%s %s", label, reg);
        } else {
            snprintf(buf, len, "%s %s+0x%" PRIx64, label, info ? info->name : "?", off);
        }
    } else if (!strcmp(r.name, "uart")) {
        const char *reg = pl011_reg_name(off);
        if (reg) {
            snprintf(buf, len, "uart %s", reg);
        } else {
            snprintf(buf, len, "uart +0x%" PRIx64, off);
        }
    } else if (!strcmp(r.name, "gic-dist")) {
        char reg[32];
        if (gicd_reg_name(off, reg, sizeof(reg))) {
            snprintf(buf, len, "gic-dist %s", reg);
        } else {
            snprintf(buf, len, "gic-dist +0x%" PRIx64, off);
        }
    } else if (!strcmp(r.name, "pcie-ecam")) {
        char reg[80];
        pcihost_describe(&m->pci, off, reg, sizeof(reg));
        snprintf(buf, len, "ecam %s", reg);
    } else {
        snprintf(buf, len, "%s +0x%" PRIx64, r.name, off);
    }
}

static void trace_access(struct machine *m, char dir, uint64_t gpa, uint32_t size, uint64_t value)
{
    char what[160];

    describe(m, gpa, what, sizeof(what));
    fprintf(m->cfg.trace_out ? m->cfg.trace_out : stderr,
            "mmio %c%u 0x%08" PRIx64 " %-40s %s 0x%" PRIx64 "\n", dir, size, gpa, what,
            dir == 'R' ? "->" : "<-", value);
}

/* A guest access nothing decodes: say once per map row what is missing. */
static void unmapped_access(struct machine *m, char dir, uint64_t gpa, uint32_t size)
{
    const vmapple_platform_region *p = platform_row(gpa);

    if (p) {
        if (p->id == VMAPPLE_MAP_GFX || p->id == VMAPPLE_MAP_GFX_IOSFC) {
            m->touched_gfx = true;
        }
        if (p->id < 32 && !(m->warned_platform & (1u << p->id))) {
            m->warned_platform |= 1u << p->id;
            mlog(m, VMAPPLE_LOG_WARNING,
                 "guest %s %s (0x%" PRIx64 "), which this machine does not provide%s; "
                 "reads return 0, writes are dropped",
                 dir == 'R' ? "read from" : "wrote to", p->description, gpa,
                 (p->id == VMAPPLE_MAP_GFX || p->id == VMAPPLE_MAP_GFX_IOSFC)
                     ? " (apple-gfx exists only inside Apple's Virtualization.framework)"
                     : "");
        }
        return;
    }
    vmm_guest_error(m->cfg.log, m->cfg.opaque, &m->unmapped_logged, "unmapped accesses",
                    "guest %s %u bytes at 0x%" PRIx64 ": nothing there; %s",
                    dir == 'R' ? "read" : "wrote", size, gpa,
                    dir == 'R' ? "reads as 0" : "dropped");
}

static uint64_t machine_mmio_read(void *opaque, uint64_t gpa, uint32_t size)
{
    struct machine *m = opaque;
    uint64_t value = 0;
    int ret;

    m->mmio_exits++;
    ret = vmapple_bus_read(m->bus, gpa, size, &value);
    if (ret == -ENXIO) {
        unmapped_access(m, 'R', gpa, size);
        value = 0;
    } else if (ret < 0) {
        mlog(m, VMAPPLE_LOG_ERROR, "read of 0x%" PRIx64 ": %s (%s)", gpa, vmapple_strerror(ret),
             vmapple_last_error());
        value = 0;
    }
    if (m->cfg.trace) {
        trace_access(m, 'R', gpa, size, value);
    }
    return value;
}

static void machine_mmio_write(void *opaque, uint64_t gpa, uint32_t size, uint64_t value)
{
    struct machine *m = opaque;
    int ret;

    m->mmio_exits++;
    if (m->cfg.trace) {
        trace_access(m, 'W', gpa, size, value);
    }
    ret = vmapple_bus_write(m->bus, gpa, size, value);
    if (ret == -ENXIO) {
        unmapped_access(m, 'W', gpa, size);
    } else if (ret < 0) {
        mlog(m, VMAPPLE_LOG_ERROR, "write of 0x%" PRIx64 ": %s (%s)", gpa, vmapple_strerror(ret),
             vmapple_last_error());
    }
}

static bool psci_implemented(uint32_t fn)
{
    switch (fn) {
    case PSCI_VERSION:
    case PSCI_CPU_OFF:
    case PSCI_CPU_ON_32:
    case PSCI_CPU_ON_64:
    case PSCI_AFFINITY_INFO_32:
    case PSCI_AFFINITY_INFO_64:
    case PSCI_MIGRATE_INFO_TYPE:
    case PSCI_SYSTEM_OFF:
    case PSCI_SYSTEM_RESET:
    case PSCI_FEATURES:
        return true;
    default:
        return false;
    }
}

static accel_action machine_hvc(void *opaque, uint16_t imm, uint64_t x[4])
{
    struct machine *m = opaque;
    uint32_t fn = (uint32_t)x[0];
    uint64_t target = x[1];

    m->hvc_calls++;
    if (imm != 0) {
        /* SMCCC: calls use HVC #0; anything else is not a call we know. */
        x[0] = (uint64_t)(int64_t)PSCI_RET_NOT_SUPPORTED;
        return ACCEL_CONTINUE;
    }
    switch (fn) {
    case PSCI_VERSION:
        x[0] = 0x00010000; /* PSCI 1.0 */
        break;
    case PSCI_SYSTEM_OFF:
        return ACCEL_POWER_OFF;
    case PSCI_SYSTEM_RESET:
        return ACCEL_RESET;
    case PSCI_CPU_OFF:
        mlog(m, VMAPPLE_LOG_INFO, "PSCI CPU_OFF on the boot CPU: no CPU is left running");
        return ACCEL_POWER_OFF;
    case PSCI_CPU_ON_32:
    case PSCI_CPU_ON_64:
        if ((target & 0xff00ffffffull) == 0) {
            x[0] = (uint64_t)(int64_t)PSCI_RET_ALREADY_ON;
        } else if ((target & 0xff00ffff00ull) || (target & 0xff) >= m->cfg.cpus) {
            x[0] = (uint64_t)(int64_t)PSCI_RET_INVALID_PARAMS;
        } else {
            if (!m->cpu_on_warned) {
                m->cpu_on_warned = true;
                mlog(m, VMAPPLE_LOG_WARNING,
                     "PSCI CPU_ON for CPU %u: this example runs the boot CPU only; answered "
                     "NOT_SUPPORTED",
                     (unsigned)(target & 0xff));
            }
            x[0] = (uint64_t)(int64_t)PSCI_RET_NOT_SUPPORTED;
        }
        break;
    case PSCI_AFFINITY_INFO_32:
    case PSCI_AFFINITY_INFO_64:
        if (x[2] != 0 || (target & 0xff00ffff00ull) || (target & 0xff) >= m->cfg.cpus) {
            x[0] = (uint64_t)(int64_t)PSCI_RET_INVALID_PARAMS;
        } else {
            x[0] = (target & 0xff) == 0 ? 0 /* ON */ : 1 /* OFF */;
        }
        break;
    case PSCI_MIGRATE_INFO_TYPE:
        x[0] = 2; /* no trusted OS */
        break;
    case PSCI_FEATURES:
        x[0] = psci_implemented((uint32_t)x[1]) ? PSCI_RET_SUCCESS
                                                : (uint64_t)(int64_t)PSCI_RET_NOT_SUPPORTED;
        break;
    default:
        x[0] = (uint64_t)(int64_t)PSCI_RET_NOT_SUPPORTED;
        break;
    }
    return ACCEL_CONTINUE;
}

/* ---- construction ---- */

static int redist_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value)
{
    (void)opaque;
    (void)offset;
    (void)size;
    *value = 0; /* GICR_WAKER.ChildrenAsleep reads 0: awake */
    return 0;
}

static void uart_output(void *opaque, const char *buf, size_t len)
{
    struct machine *m = opaque;
    if (m->cfg.console) {
        m->cfg.console(m->cfg.opaque, buf, len);
    }
}

static bool map_handler(struct machine *m, uint32_t id, vmapple_bus_read_fn rd,
                        vmapple_bus_write_fn wr, void *opaque, GError **error)
{
    const vmapple_platform_region *p;
    int ret = vmapple_platform_find_region(id, &p);

    if (ret == 0) {
        ret = vmapple_bus_map_handler(m->bus, p->name, p->base, p->size, rd, wr, opaque);
    }
    if (ret < 0) {
        g_set_error(error, VMM_ERROR, 0, "cannot map map row %u: %s", id,
                    vmapple_bus_last_error(m->bus));
        return false;
    }
    return true;
}

/* The VZ slots (spec/README.md): host bridge 0, root 6, aux 7; 2 is free on VZ. */
#define SLOT_HOST_BRIDGE 0
#define SLOT_DMA_PCI     2
#define SLOT_VBLK_ROOT   6
#define SLOT_VBLK_AUX    7

static bool create_failed(const char *what, int ret, GError **error)
{
    g_set_error(error, VMM_ERROR, 0, "%s: %s (%s)", what, vmapple_strerror(ret),
                vmapple_last_error());
    return false;
}

static void pvpanic_event(void *opaque, uint32_t events)
{
    struct mdev *d = opaque;

    /* The library logs the event itself; the verdict needs to know. */
    d->m->pvpanic_events |= events;
}

/* Attach a device just created into d, or destroy it. */
static bool add_device(struct machine *m, struct mdev *d, int ret, uint64_t selftest_bit,
                       GError **error)
{
    if (ret < 0) {
        return create_failed(d->label, ret, error);
    }
    if (!attach_device(m, d, selftest_bit, error)) {
        vmapple_device_destroy(d->dev);
        return false;
    }
    return true;
}

static bool create_devices(struct machine *m, GError **error)
{
    vmapple_host_ops ops = machine_host_ops();
    vmapple_cfg_options cfg = VMAPPLE_CFG_OPTIONS_INIT;
    vmapple_bdif_options bdif = VMAPPLE_BDIF_OPTIONS_INIT;
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;
    vmapple_pvpanic_options pvpanic = VMAPPLE_PVPANIC_OPTIONS_INIT;
    vmapple_apple_dma_pci_options dma = VMAPPLE_APPLE_DMA_PCI_OPTIONS_INIT;
    vmapple_virtio_blk_options vblk = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct mdev *d;
    int ret;

    if (m->nr_devs + 8 > MAX_DEVICES) {
        return create_failed("machine", -ENOSPC, error);
    }

    cfg.ecid = m->cfg.ecid;
    cfg.ram_size = m->cfg.ram_size;
    cfg.nr_cpus = m->cfg.cpus;
    cfg.rnd = g_random_int();
    d = new_device(m, "cfg", -1);
    if (!add_device(m, d, vmapple_cfg_create(&ops, d, &cfg, &d->dev), SELFTEST_DEV_CFG, error)) {
        return false;
    }

    /* iBoot only reads: bdif writes stay off, as the library's default. */
    bdif.root = m->cfg.root;
    bdif.aux = m->cfg.aux;
    d = new_device(m, "bdif", -1);
    if (!add_device(m, d, vmapple_bdif_create(&ops, d, &bdif, &d->dev), SELFTEST_DEV_BDIF, error)) {
        return false;
    }

    memcpy(aes.builtin_keys, m->cfg.aes_keys, sizeof(aes.builtin_keys));
    d = new_device(m, "aes", -1);
    if (!add_device(m, d, vmapple_aes_create(&ops, d, &aes, &d->dev), SELFTEST_DEV_AES, error)) {
        return false;
    }

    pvpanic.event = pvpanic_event;
    d = new_device(m, "pvpanic", -1);
    if (!add_device(m, d, vmapple_pvpanic_create(&ops, d, &pvpanic, &d->dev), SELFTEST_DEV_PVPANIC,
                    error)) {
        return false;
    }

    d = new_device(m, "pci-host-bridge", SLOT_HOST_BRIDGE);
    if (!add_device(m, d, vmapple_pci_host_bridge_create(&ops, d, NULL, &d->dev),
                    SELFTEST_DEV_PCI_HOST, error)) {
        return false;
    }

    /*
     * Apple's virtio-blk on the same volumes as bdif, at VZ's slots; INTx
     * (vmapple has no MSI controller), requests run inside the notify write.
     */
    if (m->cfg.root) {
        vblk.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
        vblk.blockdev = m->cfg.root;
        d = new_device(m, "virtio-blk-root", SLOT_VBLK_ROOT);
        if (!add_device(m, d, vmapple_virtio_blk_create(&ops, d, &vblk, &d->dev),
                        SELFTEST_DEV_VBLK_ROOT, error)) {
            return false;
        }
    }
    if (m->cfg.aux) {
        vblk.variant = VMAPPLE_VIRTIO_BLK_VARIANT_AUX;
        vblk.blockdev = m->cfg.aux;
        d = new_device(m, "virtio-blk-aux", SLOT_VBLK_AUX);
        if (!add_device(m, d, vmapple_virtio_blk_create(&ops, d, &vblk, &d->dev),
                        SELFTEST_DEV_VBLK_AUX, error)) {
            return false;
        }
    }

    /*
     * apple-dma-pci on the simulated DART (16 KiB pages, unaligned bus
     * addresses, the platform's limits). There is no passthrough function
     * in this machine for it to serve: MANAGED_BDF keeps its default, 0.
     */
    ret = vmapple_dma_backend_create_sim_dart(NULL, &m->dart);
    if (ret < 0) {
        return create_failed("simulated DART", ret, error);
    }
    dma.dma = m->dart;
    d = new_device(m, "apple-dma-pci", SLOT_DMA_PCI);
    if (!add_device(m, d, vmapple_apple_dma_pci_create(&ops, d, &dma, &d->dev),
                    SELFTEST_DEV_DMA_PCI, error)) {
        return false;
    }
    m->dma_pci = d->dev;
    m->dma_slot = SLOT_DMA_PCI;
    return true;
}

static void load_firmware(struct machine *m)
{
    memset(m->fw_mem, 0, VMAPPLE_FIRMWARE_SIZE);
    memcpy(m->fw_mem, m->cfg.firmware, m->cfg.firmware_size);
}

static void write_params(struct machine *m)
{
    struct selftest_params p;

    memset(&p, 0, sizeof(p));
    p.magic = SELFTEST_PARAMS_MAGIC;
    p.version = SELFTEST_VERSION;
    p.size = sizeof(p);
    p.devices = m->devices;
    p.flags = m->cfg.selftest_flags;
    p.ecid = m->cfg.ecid;
    p.ram_size = m->cfg.ram_size;
    p.nr_cpus = m->cfg.cpus;
    p.nonce = m->cfg.nonce;
    p.dma_slot = m->dma_slot;
    p.dma_managed_bdf = 0;
    memcpy(m->ram + (SELFTEST_PARAMS_GPA - VMAPPLE_RAM_BASE), &p, sizeof(p));
}

static void *alloc_aligned(size_t size, size_t align, void **map, size_t *map_len)
{
    uint8_t *p;

    *map_len = size + align;
    *map = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                -1, 0);
    if (*map == MAP_FAILED) {
        *map = NULL;
        return NULL;
    }
    p = (uint8_t *)(((uintptr_t)*map + align - 1) & ~(uintptr_t)(align - 1));
    return p;
}

struct machine *machine_create(const struct machine_config *cfg, GError **error)
{
    struct machine *m;
    accel_exits exits = { machine_mmio_read, machine_mmio_write, machine_hvc };
    char err[256];
    int ret;

    if (!cfg->accel || !cfg->firmware || !cfg->firmware_size ||
        cfg->firmware_size > VMAPPLE_FIRMWARE_SIZE) {
        g_set_error(error, VMM_ERROR, 0,
                    "firmware: %zu bytes; the firmware region holds 1 to %llu bytes",
                    cfg->firmware_size, (unsigned long long)VMAPPLE_FIRMWARE_SIZE);
        return NULL;
    }
    if (cfg->ram_size < MACHINE_MIN_RAM || cfg->ram_size % MACHINE_RAM_ALIGN ||
        cfg->ram_size > cfg->accel->phys_limit - VMAPPLE_RAM_BASE) {
        g_set_error(error, VMM_ERROR, 0,
                    "RAM: %" PRIu64 " bytes is not a multiple of 16 KiB between 64 MiB and %" PRIu64
                    " GiB",
                    cfg->ram_size, (uint64_t)((cfg->accel->phys_limit - VMAPPLE_RAM_BASE) >> 30));
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        g_set_error(error, VMM_ERROR, 0, "out of memory");
        return NULL;
    }
    m->cfg = *cfg;

    m->ram = alloc_aligned(cfg->ram_size, MACHINE_RAM_ALIGN, &m->ram_map, &m->ram_map_len);
    m->fw_mem = alloc_aligned(VMAPPLE_FIRMWARE_SIZE, MACHINE_RAM_ALIGN, &m->fw_map, &m->fw_map_len);
    if (!m->ram || !m->fw_mem) {
        g_set_error(error, VMM_ERROR, 0, "cannot reserve %" PRIu64 " MiB of guest RAM: %s",
                    cfg->ram_size >> 20, g_strerror(errno));
        goto fail;
    }
    if (vmapple_bus_create(&m->bus) < 0) {
        g_set_error(error, VMM_ERROR, 0, "bus: %s", vmapple_last_error());
        goto fail;
    }
    gicd_reset(&m->gicd);
    pl011_init(&m->uart, uart_output, m);
    if (pcihost_init(&m->pci, m->bus, m->cfg.log, m->cfg.opaque) < 0) {
        g_set_error(error, VMM_ERROR, 0, "PCIe host: the platform map has no PCIe MMIO window");
        goto fail;
    }
    if (!map_handler(m, VMAPPLE_MAP_GIC_DIST, gicd_read, gicd_write, &m->gicd, error) ||
        !map_handler(m, VMAPPLE_MAP_GIC_REDIST, redist_read, NULL, NULL, error) ||
        !map_handler(m, VMAPPLE_MAP_UART, pl011_read, pl011_write, &m->uart, error) ||
        !map_handler(m, VMAPPLE_MAP_PCIE_ECAM, pcihost_ecam_read, pcihost_ecam_write, &m->pci,
                     error)) {
        goto fail;
    }
    m->devices = SELFTEST_DEV_UART | SELFTEST_DEV_GIC;
    if (!create_devices(m, error)) {
        goto fail;
    }
    /* The devices hold their own references to the volumes. */
    m->cfg.root = NULL;
    m->cfg.aux = NULL;

    ret = cfg->accel->create(&exits, m, &m->accel, err, sizeof(err));
    if (ret == 0) {
        ret = cfg->accel->map_memory(m->accel, VMAPPLE_FIRMWARE_BASE, m->fw_mem,
                                     VMAPPLE_FIRMWARE_SIZE, 0, err, sizeof(err));
    }
    if (ret == 0) {
        ret = cfg->accel->map_memory(m->accel, VMAPPLE_RAM_BASE, m->ram, cfg->ram_size, 0, err,
                                     sizeof(err));
    }
    if (ret < 0) {
        g_set_error(error, VMM_ERROR, 0, "%s", err);
        goto fail;
    }
    return m;

fail:
    machine_destroy(m);
    return NULL;
}

void machine_destroy(struct machine *m)
{
    if (!m) {
        return;
    }
    if (m->accel) {
        m->cfg.accel->destroy(m->accel);
    }
    for (unsigned i = 0; i < m->nr_devs; i++) {
        vmapple_device_destroy(m->devs[i].dev);
    }
    vmapple_bus_destroy(m->bus);
    vmapple_dma_backend_release(m->dart);
    if (m->ram_map) {
        munmap(m->ram_map, m->ram_map_len);
    }
    if (m->fw_map) {
        munmap(m->fw_map, m->fw_map_len);
    }
    free(m);
}

G_DEFINE_QUARK(libvmapple - example - error, vmm_error)

uint64_t machine_selftest_devices(const struct machine *m)
{
    return m->devices;
}

/* A machine reset: every device back to power-on, BARs unmapped. */
static void machine_reset(struct machine *m)
{
    for (unsigned i = 0; i < m->nr_devs; i++) {
        vmapple_device_reset(m->devs[i].dev);
    }
    pcihost_reset(&m->pci);
    gicd_reset(&m->gicd);
    pl011_reset(&m->uart);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int machine_run(struct machine *m, struct machine_result *res, GError **error)
{
    double start = now_s();
    int ret = 0;

    memset(res, 0, sizeof(*res));
    m->mmio_exits = 0;
    m->hvc_calls = 0;
    for (;;) {
        uint64_t timeout_us = 0;

        if (m->cfg.timeout_us) {
            double left = (double)m->cfg.timeout_us / 1e6 - (now_s() - start);
            if (left <= 0) {
                res->end = MACHINE_TIMEOUT;
                snprintf(res->stop.detail, sizeof(res->stop.detail), "time limit reached");
                break;
            }
            timeout_us = (uint64_t)(left * 1e6) + 1;
        }
        load_firmware(m);
        if (m->cfg.selftest) {
            write_params(m);
        }
        ret = m->cfg.accel->run(m->accel, VMAPPLE_RESET_PC, timeout_us, &res->stop);
        if (ret < 0) {
            g_set_error(error, VMM_ERROR, 0, "%s", res->stop.detail);
            res->end = MACHINE_ERROR;
            break;
        }
        if (res->stop.reason == ACCEL_STOPPED_RESET) {
            if (++res->resets > MAX_RESETS) {
                res->end = MACHINE_STOPPED;
                snprintf(res->stop.detail, sizeof(res->stop.detail),
                         "the guest reset the machine %u times; stopped", MAX_RESETS);
                break;
            }
            mlog(m, VMAPPLE_LOG_INFO, "PSCI SYSTEM_RESET: resetting the machine");
            machine_reset(m);
            continue;
        }
        switch (res->stop.reason) {
        case ACCEL_STOPPED_POWER_OFF:
            res->end = MACHINE_POWERED_OFF;
            break;
        case ACCEL_STOPPED_TIMEOUT:
            res->end = MACHINE_TIMEOUT;
            break;
        case ACCEL_STOPPED_GUEST_FAULT:
            res->end = MACHINE_GUEST_FAULT;
            break;
        case ACCEL_STOPPED_BY_HOST:
            res->end = MACHINE_STOPPED;
            break;
        default:
            res->end = MACHINE_ERROR;
            break;
        }
        break;
    }
    res->elapsed_s = now_s() - start;
    res->mmio_exits = m->mmio_exits;
    res->hvc_calls = m->hvc_calls;
    res->touched_apple_gfx = m->touched_gfx;
    res->pvpanic_events = m->pvpanic_events;
    vmapple_bus_get_unmapped_counts(m->bus, &res->unmapped_reads, &res->unmapped_writes);
    if (m->dma_pci) {
        vmapple_apple_dma_pci_info info = VMAPPLE_APPLE_DMA_PCI_INFO_INIT;
        vmapple_dma_occupancy occ = VMAPPLE_DMA_OCCUPANCY_INIT;

        res->have_dma = vmapple_apple_dma_pci_get_info(m->dma_pci, &info) == 0 &&
                        vmapple_dma_backend_get_occupancy(m->dart, &occ) == 0;
        res->dma_live_mappings = info.live_mappings;
        res->dma_backend_mappings = occ.mappings;
        res->dma_doorbells = info.doorbells;
    }
    return ret < 0 ? ret : 0;
}
