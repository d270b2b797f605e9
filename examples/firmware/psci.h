/* SPDX-License-Identifier: MIT */
/*
 * PSCI (Arm DEN0022) function ids and return values, over SMCCC HVC #0:
 * compiled into the machine that answers the calls and the self-test
 * firmware that makes them, so both sides use the same numbers. The tiny
 * test firmwares (examples/tests/fw-*.S) are built without include paths
 * and spell out the one id they use, SYSTEM_OFF.
 */
#ifndef LIBVMAPPLE_PSCI_H
#define LIBVMAPPLE_PSCI_H

#define PSCI_VERSION            0x84000000u
#define PSCI_CPU_SUSPEND_32     0x84000001u
#define PSCI_CPU_SUSPEND_64     0xc4000001u
#define PSCI_CPU_OFF            0x84000002u
#define PSCI_CPU_ON_32          0x84000003u
#define PSCI_CPU_ON_64          0xc4000003u
#define PSCI_AFFINITY_INFO_32   0x84000004u
#define PSCI_AFFINITY_INFO_64   0xc4000004u
#define PSCI_MIGRATE_INFO_TYPE  0x84000006u
#define PSCI_SYSTEM_OFF         0x84000008u
#define PSCI_SYSTEM_RESET       0x84000009u
#define PSCI_FEATURES           0x8400000au
#define PSCI_RET_SUCCESS        0
#define PSCI_RET_NOT_SUPPORTED  (-1)
#define PSCI_RET_INVALID_PARAMS (-2)
#define PSCI_RET_ALREADY_ON     (-4)

#endif /* LIBVMAPPLE_PSCI_H */
