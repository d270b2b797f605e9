/* SPDX-License-Identifier: MIT */
/*
 * The example CLI's `pci` command: host PCI functions through libvmapple's
 * libpciaccess backend (read-only).
 *
 *   pci list                  every host function: address, ids, class
 *   pci show <[domain:]bus:dev.fn>
 *                             vendor, device, class, revision, subsystem,
 *                             BARs, and the bytes of config space
 *
 * Uses only the public ABI. Exit codes: 0 done, 1 failed (no libpciaccess,
 * no such function, no permission), 2 usage.
 */
#ifndef LIBVMAPPLE_EXAMPLE_PCI_CMD_H
#define LIBVMAPPLE_EXAMPLE_PCI_CMD_H

/* argv[0] is "pci"; prints to stdout, errors to stderr. */
int example_pci_command(int argc, char **argv);

#endif
