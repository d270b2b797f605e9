/* SPDX-License-Identifier: MIT */
/*
 * libvmapple-pci: the example CLI's `pci` command on its own, until it is
 * hooked into libvmapple-example. Usage: libvmapple-pci pci list
 *                                        libvmapple-pci pci show 00:02.0
 * (the leading "pci" may be left out).
 */
#include <string.h>

#include "pci-cmd.h"

int main(int argc, char **argv)
{
    char *args[3] = { "pci", NULL, NULL };

    if (argc >= 2 && strcmp(argv[1], "pci") == 0) {
        return example_pci_command(argc - 1, argv + 1);
    }
    if (argc > 3) {
        return example_pci_command(argc, argv); /* usage */
    }
    for (int i = 1; i < argc; i++) {
        args[i] = argv[i];
    }
    return example_pci_command(argc, args);
}
