/* SPDX-License-Identifier: MIT */
/*
 * PCI function plumbing shared by every PCI device of the library: a type-0
 * configuration space (4 KiB, PCIe) with per-byte write and write-1-to-clear
 * masks, a capability list, memory BARs (32- and 64-bit) with the sizing
 * protocol, COMMAND semantics (memory decode -> pci_bar_update, bus master ->
 * DMA allowed, INTx disable), STATUS.INTERRUPT, and MSI-X.
 *
 * A device embeds struct vm_pci_function next to its vmapple_device, calls
 * vm_pci_init(), adds BARs and capabilities, then vm_pci_finalize(), and
 * routes its class's config_read/config_write hooks here.
 */
#ifndef VMAPPLE_PCI_H
#define VMAPPLE_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "state.h"

#define VM_PCI_CONFIG_SIZE 4096u
#define VM_PCI_NUM_BARS    6u

/* Standard header offsets. */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_CACHE_LINE_SIZE     0x0c
#define PCI_LATENCY_TIMER       0x0d
#define PCI_HEADER_TYPE         0x0e
#define PCI_BAR0                0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_ROM_ADDRESS         0x30
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d

#define PCI_COMMAND_IO           0x0001
#define PCI_COMMAND_MEMORY       0x0002
#define PCI_COMMAND_MASTER       0x0004
#define PCI_COMMAND_PARITY       0x0040
#define PCI_COMMAND_SERR         0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400

#define PCI_STATUS_INTERRUPT 0x0008
#define PCI_STATUS_CAP_LIST  0x0010
/* Error bits software clears by writing 1. */
#define PCI_STATUS_W1C 0xf900

#define PCI_BAR_MEM_64       0x04
#define PCI_BAR_MEM_PREFETCH 0x08

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_EXP  0x10

#define PCI_MSIX_FLAGS           2 /* offset of Message Control in the capability */
#define PCI_MSIX_FLAGS_ENABLE    0x8000
#define PCI_MSIX_FLAGS_MASKALL   0x4000
#define PCI_MSIX_ENTRY_SIZE      16
#define PCI_MSIX_ENTRY_CTRL_MASK 0x1

/* Flags of vm_pci_add_bar(). */
#define VM_PCI_BAR_64       (1u << 0)
#define VM_PCI_BAR_PREFETCH (1u << 1)

/* Identity of a function. */
struct vm_pci_ids {
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint32_t class_code; /* 24 bits: class, subclass, prog-if */
    uint8_t revision;
    uint8_t irq_pin; /* 0 none, 1 INTA .. 4 INTD */
};

struct vm_pci_bar {
    bool present;
    bool is64;
    uint64_t size;      /* power of two, >= 16 */
    uint32_t region;    /* the device region behind this BAR */
    uint64_t addr;      /* as last reported through pci_bar_update */
    bool mapped;        /* as last reported */
    bool ever_reported; /* nothing reported yet: report the first state */
};

struct vm_pci_function;

/* Device hooks, called after the generic handling of a config write. */
typedef void (*vm_pci_config_write_hook)(struct vm_pci_function *pci, uint32_t offset,
                                         uint32_t size, uint32_t value);

struct vm_pci_function {
    vmapple_device *dev;
    uint32_t intx_line; /* the device's irq index of its INTx pin */

    uint8_t config[VM_PCI_CONFIG_SIZE];
    uint8_t wmask[VM_PCI_CONFIG_SIZE];
    uint8_t w1cmask[VM_PCI_CONFIG_SIZE];
    uint8_t initial[VM_PCI_CONFIG_SIZE]; /* the power-on image */

    struct vm_pci_bar bars[VM_PCI_NUM_BARS];
    uint32_t next_cap; /* where the next capability goes */
    uint8_t last_cap;  /* offset of the last capability in the list, 0 if none */
    bool intx_pending; /* the device's INTx request, before INTX_DISABLE */

    vm_pci_config_write_hook write_hook;

    /* MSI-X (msix_vectors == 0: none). */
    uint16_t msix_vectors;
    uint8_t msix_cap;
    uint32_t msix_bar;
    uint64_t msix_table_off;
    uint64_t msix_pba_off;
    uint8_t *msix_table; /* msix_vectors * 16 bytes */
    uint8_t *msix_pba;   /* (msix_vectors + 63) / 64 * 8 bytes */
};

/* Set up the header. `intx_line` is the device's irq index for INTx. */
VM_HIDDEN void vm_pci_init(struct vm_pci_function *pci, vmapple_device *dev,
                           const struct vm_pci_ids *ids, uint32_t intx_line);
/* Declare a memory BAR (`bar` 0..5; a 64-bit BAR also takes bar + 1). */
VM_HIDDEN int vm_pci_add_bar(struct vm_pci_function *pci, uint32_t bar, uint32_t region,
                             uint64_t size, uint32_t flags);
/*
 * Append a capability of `size` bytes (including its 2-byte header) to the
 * list. Returns its config offset, or -ENOSPC. The caller fills the body and
 * sets write masks (vm_pci_set_wmask) for its writable fields.
 */
VM_HIDDEN int vm_pci_add_capability(struct vm_pci_function *pci, uint8_t cap_id, uint32_t size);
/*
 * MSI-X with `vectors` entries (1..2048), its table at `table_off` and PBA
 * at `pba_off` of BAR `bar` (which must exist and hold both).
 */
VM_HIDDEN int vm_pci_msix_init(struct vm_pci_function *pci, uint16_t vectors, uint32_t bar,
                               uint64_t table_off, uint64_t pba_off);
/* The current configuration becomes the reset image. */
VM_HIDDEN void vm_pci_finalize(struct vm_pci_function *pci);
VM_HIDDEN void vm_pci_release(struct vm_pci_function *pci);

/* Mark `len` bytes at `offset` writable (mask bits set) by the guest. */
VM_HIDDEN void vm_pci_set_wmask(struct vm_pci_function *pci, uint32_t offset, uint32_t len,
                                uint64_t mask);

/* Config access from the class hooks (the core checked size and range). */
VM_HIDDEN int vm_pci_config_read(struct vm_pci_function *pci, uint32_t offset, uint32_t size,
                                 uint32_t *value);
VM_HIDDEN int vm_pci_config_write(struct vm_pci_function *pci, uint32_t offset, uint32_t size,
                                  uint32_t value);

/* Little-endian access to the config bytes for the device itself. */
static inline uint16_t vm_pci_get16(const struct vm_pci_function *pci, uint32_t off)
{
    return vm_ld_le16(pci->config + off);
}
static inline uint32_t vm_pci_get32(const struct vm_pci_function *pci, uint32_t off)
{
    return vm_ld_le32(pci->config + off);
}
static inline void vm_pci_set8(struct vm_pci_function *pci, uint32_t off, uint8_t v)
{
    pci->config[off] = v;
}
static inline void vm_pci_set16(struct vm_pci_function *pci, uint32_t off, uint16_t v)
{
    vm_st_le16(pci->config + off, v);
}
static inline void vm_pci_set32(struct vm_pci_function *pci, uint32_t off, uint32_t v)
{
    vm_st_le32(pci->config + off, v);
}

static inline bool vm_pci_bus_master(const struct vm_pci_function *pci)
{
    return vm_pci_get16(pci, PCI_COMMAND) & PCI_COMMAND_MASTER;
}

/* Power-on state: the reset image, BARs unmapped, INTx low, MSI-X cleared. */
VM_HIDDEN void vm_pci_reset(struct vm_pci_function *pci);

/* INTx request of the device (a level); honours COMMAND.INTX_DISABLE. */
VM_HIDDEN void vm_pci_set_intx(struct vm_pci_function *pci, bool level);

/* MSI-X. */
VM_HIDDEN bool vm_pci_msix_enabled(const struct vm_pci_function *pci);
/* Send vector `vector`, or set its pending bit while masked. */
VM_HIDDEN void vm_pci_msix_notify(struct vm_pci_function *pci, uint16_t vector);
VM_HIDDEN void vm_pci_msix_mmio_read(struct vm_pci_function *pci, uint64_t offset, uint32_t size,
                                     uint64_t *value);
VM_HIDDEN void vm_pci_msix_mmio_write(struct vm_pci_function *pci, uint64_t offset, uint32_t size,
                                      uint64_t value);

/*
 * State. Save writes config bytes and MSI-X state. Load is two-phase: parse
 * and validate into a heap snapshot (read-only bits of the blob must match
 * this function's), then commit it (which re-reports BAR mappings and
 * re-derives DMA and INTx state).
 */
struct vm_pci_snapshot;
VM_HIDDEN void vm_pci_save(const struct vm_pci_function *pci, struct vm_state_writer *w);
VM_HIDDEN int vm_pci_load_parse(struct vm_pci_function *pci, struct vm_state_reader *r,
                                struct vm_pci_snapshot **out);
VM_HIDDEN void vm_pci_load_commit(struct vm_pci_function *pci, struct vm_pci_snapshot *snap);
VM_HIDDEN void vm_pci_snapshot_free(struct vm_pci_snapshot *snap);

#endif /* VMAPPLE_PCI_H */
