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

#endif /* VMM_REGNAMES_H */
