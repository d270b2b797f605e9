/* SPDX-License-Identifier: MIT */
/* Print the library version and the vmapple memory map. */
#include <inttypes.h>
#include <stdio.h>

#include <libvmapple/libvmapple.h>

int main(void)
{
    int n = vmapple_platform_count_regions();

    printf("libvmapple %s (headers %s)\n\n", vmapple_version_string(), VMAPPLE_VERSION_STRING);
    printf("%-12s %-12s %-12s %-9s %-7s %s\n", "region", "base", "size", "SPI", "by",
           "description");
    for (int i = 0; i < n; i++) {
        const vmapple_platform_region *r;
        char size[24], spi[24];

        if (vmapple_platform_get_region((uint32_t)i, &r) < 0) {
            return 1;
        }
        if (r->size) {
            snprintf(size, sizeof(size), "0x%08" PRIx64, r->size);
        } else {
            snprintf(size, sizeof(size), "(host)");
        }
        if (r->spi == VMAPPLE_PLATFORM_NO_SPI) {
            snprintf(spi, sizeof(spi), "-");
        } else if (r->spi_count > 1) {
            snprintf(spi, sizeof(spi), "0x%x-0x%x", r->spi, r->spi + r->spi_count - 1);
        } else {
            snprintf(spi, sizeof(spi), "0x%x", r->spi);
        }
        printf("%-12s 0x%08" PRIx64 "   %-12s %-9s %-7s %s\n", r->name, r->base, size, spi,
               (r->flags & VMAPPLE_PLATFORM_LIBRARY) ? "library" : "host", r->description);
    }
    return 0;
}
