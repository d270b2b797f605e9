/* SPDX-License-Identifier: MIT */
/*
 * The PCIe host of the example machine: ECAM at 0x4000_0000 decoding bus 0,
 * one function per slot, dispatched to the library's PCI function objects
 * through vmapple_device_pci_config_read/write; BARs the guest programs
 * arrive through the host op pci_bar_update and are mapped on the bus when
 * they lie inside the PCIe MMIO window; INTx pin A of slot s is SPI
 * vmapple_platform_get_intx_spi(s, pin).
 */
#ifndef VMM_PCIHOST_H
#define VMM_PCIHOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvmapple/libvmapple.h>

#define PCIHOST_SLOTS      32u
#define PCIHOST_MAX_REGION 8u

struct pcihost_slot {
    vmapple_device *dev; /* NULL: empty slot */
    const char *label;
    uint64_t bar_base[PCIHOST_MAX_REGION]; /* mapped base per device region, or VMAPPLE_NO_BASE */
};

struct pcihost {
    vmapple_bus *bus;
    struct pcihost_slot slots[PCIHOST_SLOTS];
    /* The window BARs must lie in (VMAPPLE_MAP_PCIE_MMIO). */
    uint64_t mmio_base;
    uint64_t mmio_size;
    void (*log)(void *opaque, int level, const char *message);
    void *opaque;
    /* BAR lines logged so far, both kinds in one count (vmm_guest_error). */
    unsigned bar_errors_logged;
};

/*
 * All slots empty; BARs are mapped only inside the platform's PCIe MMIO
 * window. Guest errors go to @p log (machine_config.log), at most
 * VMM_GUEST_ERROR_LINES of them.
 * @return 0, or -ENOENT when the platform map has no such window.
 */
int pcihost_init(struct pcihost *h, vmapple_bus *bus,
                 void (*log)(void *opaque, int level, const char *message), void *opaque);
/* Put @p dev in @p slot (bus 0, function 0). @return 0, -EBUSY or -EINVAL. */
int pcihost_attach(struct pcihost *h, uint32_t slot, vmapple_device *dev, const char *label);
/* Unmap every BAR (machine reset; the functions' own reset clears their BARs). */
void pcihost_reset(struct pcihost *h);

/* Bus handlers for the ECAM window. */
int pcihost_ecam_read(void *opaque, uint64_t offset, uint32_t size, uint64_t *value);
int pcihost_ecam_write(void *opaque, uint64_t offset, uint32_t size, uint64_t value);

/* pci_bar_update of the function in @p slot. */
void pcihost_bar_update(struct pcihost *h, uint32_t slot, uint32_t region, uint64_t address,
                        uint64_t size, int enabled);

/* "00:06.0 COMMAND" for a trace line. */
void pcihost_describe(const struct pcihost *h, uint64_t offset, char *buf, size_t len);

#endif /* VMM_PCIHOST_H */
