/* SPDX-License-Identifier: MIT */
#ifndef VMM_REGNAMES_H
#define VMM_REGNAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The public name of the register at @p off of region @p region of the
 * device labelled @p device ("aes", "bdif", "cfg", "pvpanic"), into buf.
 * @return false when the offset has no public name.
 */
bool regname(const char *device, const char *region, uint64_t off, char *buf, size_t len);

/*
 * The name of PCI configuration register @p reg ("COMMAND"), or else the
 * part of configuration space it lies in ("header", "capabilities",
 * "extended").
 */
const char *pci_config_regname(uint32_t reg);

/*
 * A virtio-pci function's BAR offset by the structure its capabilities put
 * there: "common.queue_select", "notify+0x0", "isr+0x0", "config.apple_type".
 */
struct vmapple_device;
bool virtio_regname(struct vmapple_device *dev, uint32_t bar, uint64_t off, char *buf, size_t len);

#endif /* VMM_REGNAMES_H */
