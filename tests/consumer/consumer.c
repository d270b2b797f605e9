/* SPDX-License-Identifier: MIT */
/* An external program built only from `pkg-config --cflags --libs libvmapple`. */
#include <errno.h>
#include <stdio.h>

#include <libvmapple/libvmapple.h>

int main(void)
{
    const vmapple_platform_region *cfg;
    vmapple_bus *bus;
    uint64_t v;

    if (vmapple_platform_find_region(VMAPPLE_MAP_CFG, &cfg) != 0 || cfg->base != 0x400000) {
        fprintf(stderr, "memory map lookup failed\n");
        return 1;
    }
    if (vmapple_bus_create(&bus) != 0) {
        return 1;
    }
    if (vmapple_bus_read(bus, cfg->base, 4, &v) != -ENXIO) {
        fprintf(stderr, "empty bus did not report an unmapped access\n");
        return 1;
    }
    vmapple_bus_destroy(bus);
    printf("consumer: libvmapple %s, cfg at 0x%llx\n", vmapple_version_string(),
           (unsigned long long)cfg->base);
    return 0;
}
