/* SPDX-License-Identifier: MIT */
/*
 * The ECID of a VZ-provisioned machine, from the files VMMs keep it in:
 *
 * - a machine-identifier property list (VZMacMachineIdentifier's
 *   dataRepresentation, binary or XML): a dictionary with an integer ECID;
 * - a property list that stores such a plist as data, or as a base64
 *   string, under "machineId", "machineIdentifier" or "MachineIdentifier"
 *   (at any depth: UTM nests it);
 * - a JSON file with such a base64 string under "machineId" (macosvm) or
 *   "machineIdentifier" (Tart, lume) at the top level.
 */
#ifndef VMM_MACHINE_ID_H
#define VMM_MACHINE_ID_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

bool machine_id_from_file(const char *path, uint64_t *ecid, GError **error);
/* The same, for bytes already read (@p name is used in messages). */
bool machine_id_from_data(const char *name, const uint8_t *data, size_t len, uint64_t *ecid,
                          GError **error);

#endif /* VMM_MACHINE_ID_H */
