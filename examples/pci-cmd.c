/* SPDX-License-Identifier: MIT */
/* The example CLI's `pci list` and `pci show`; see pci-cmd.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmapple/libvmapple.h>

#include "pci-cmd.h"

#define EXIT_USAGE 2

static int usage(void)
{
    fprintf(stderr, "usage: pci list\n"
                    "       pci show <[domain:]bus:dev.fn>   e.g. pci show 00:02.0\n");
    return EXIT_USAGE;
}

static int open_backend(uint16_t domain, vmapple_vfio_backend **out)
{
    vmapple_vfio_pciaccess_options o = VMAPPLE_VFIO_PCIACCESS_OPTIONS_INIT;
    int ret;

    o.domain = domain; /* read-only: no VMAPPLE_VFIO_PCIACCESS_ALLOW_WRITE */
    ret = vmapple_vfio_backend_create_pciaccess(&o, out);
    if (ret < 0) {
        fprintf(stderr, "pci: %s: %s\n", vmapple_strerror(ret), vmapple_last_error());
    }
    return ret;
}

static int cmd_list(void)
{
    vmapple_vfio_backend *b;
    vmapple_vfio_function_info f = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    uint32_t i;

    if (open_backend(0, &b) < 0) {
        return 1;
    }
    for (i = 0; vmapple_vfio_backend_get_function(b, i, &f) == 0; i++) {
        printf("%04x:%02x:%02x.%x %04x:%04x class %06x rev %02x subsystem %04x:%04x\n", f.domain,
               f.bus, f.device, f.function, f.vendor_id, f.device_id, f.class_code, f.revision,
               f.subsystem_vendor_id, f.subsystem_id);
    }
    if (i == 0) {
        fprintf(stderr, "pci: no PCI functions visible\n");
    }
    vmapple_vfio_backend_release(b);
    return 0;
}

/* One field of an address: 1 to `max_digits` hexadecimal digits, then `sep`. */
static const char *parse_field(const char *s, unsigned max_digits, char sep, unsigned *out)
{
    unsigned v = 0, n = 0;

    for (; *s && *s != sep; s++, n++) {
        char c = *s;
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16 || n == max_digits) {
            return NULL;
        }
        v = v * 16 + d;
    }
    if (n == 0 || *s != sep) {
        return NULL;
    }
    *out = v;
    return sep ? s + 1 : s;
}

/* "bus:dev.fn" or "domain:bus:dev.fn", hexadecimal as lspci prints them. */
static int parse_address(const char *s, unsigned *domain, unsigned *bus, unsigned *dev,
                         unsigned *fn)
{
    const char *p;

    *domain = 0;
    if (strchr(s, ':') != strrchr(s, ':')) {
        s = parse_field(s, 4, ':', domain);
    }
    p = s ? parse_field(s, 2, ':', bus) : NULL;
    p = p ? parse_field(p, 2, '.', dev) : NULL;
    p = p ? parse_field(p, 1, '\0', fn) : NULL;
    if (!p) {
        return -EINVAL;
    }
    return *dev <= 31 && *fn <= 7 ? 0 : -EINVAL;
}

static void print_size(uint64_t bytes)
{
    static const char *units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;

    while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    printf("%" PRIu64 " %s", bytes, units[u]);
}

static void print_bars(vmapple_vfio_backend *b, uint32_t key)
{
    bool upper = false;

    for (uint32_t bar = 0; bar < 6; bar++) {
        vmapple_vfio_bar_info info = VMAPPLE_VFIO_BAR_INFO_INIT;
        int ret = vmapple_vfio_backend_get_bar_info(b, key, bar, &info);

        printf("  BAR%u        ", bar);
        if (ret < 0) {
            printf("? (%s)\n", vmapple_strerror(ret));
        } else if (upper) {
            printf("(upper half of BAR%u)\n", bar - 1);
        } else if (info.bar_size == 0) {
            printf("-\n");
        } else {
            printf("%s%s%s, ", info.flags & VMAPPLE_VFIO_BAR_IO ? "I/O" : "memory",
                   info.flags & VMAPPLE_VFIO_BAR_64 ? " 64-bit" : "",
                   info.flags & VMAPPLE_VFIO_BAR_PREFETCH ? " prefetchable" : "");
            print_size(info.bar_size);
            printf(" at 0x%" PRIx64 "\n", info.address);
        }
        upper = ret == 0 && !upper && info.bar_size && (info.flags & VMAPPLE_VFIO_BAR_64);
    }
}

static int cmd_show(const char *addr)
{
    unsigned domain, bus, dev, fn;
    vmapple_vfio_backend *b;
    vmapple_vfio_function_info f = VMAPPLE_VFIO_FUNCTION_INFO_INIT;
    uint8_t cfg[VMAPPLE_VFIO_CONFIG_SIZE];
    uint32_t key;
    bool found = false;
    int n;

    if (parse_address(addr, &domain, &bus, &dev, &fn) < 0) {
        fprintf(stderr, "pci: '%s' is not a PCI address ([domain:]bus:dev.fn)\n", addr);
        return EXIT_USAGE;
    }
    if (open_backend((uint16_t)domain, &b) < 0) {
        return 1;
    }
    for (uint32_t i = 0; !found && vmapple_vfio_backend_get_function(b, i, &f) == 0; i++) {
        found = f.domain == domain && f.bus == bus && f.device == dev && f.function == fn;
    }
    if (!found) {
        fprintf(stderr, "pci: no PCI function %04x:%02x:%02x.%x\n", domain, bus, dev, fn);
        vmapple_vfio_backend_release(b);
        return 1;
    }
    key = VMAPPLE_VFIO_HOST_FN(bus, dev, fn);
    n = vmapple_vfio_backend_read_config(b, key, 0, cfg, sizeof(cfg));
    if (n < 0) {
        fprintf(stderr, "pci: reading config space of %s: %s\n", addr,
                vmapple_vfio_backend_last_error(b));
        vmapple_vfio_backend_release(b);
        return 1;
    }
    printf("%04x:%02x:%02x.%x\n", domain, bus, dev, fn);
    printf("  vendor      0x%04x\n", f.vendor_id);
    printf("  device      0x%04x\n", f.device_id);
    printf("  class       0x%06x\n", f.class_code);
    printf("  revision    0x%02x\n", f.revision);
    printf("  subsystem   %04x:%04x\n", f.subsystem_vendor_id, f.subsystem_id);
    print_bars(b, key);
    printf("  config      %d bytes%s\n", n,
           n == 64 ? " (the kernel shows only the header without privileges)" : "");
    for (int off = 0; off < n; off += 16) {
        printf("  %03x:", off);
        for (int i = off; i < off + 16 && i < n; i++) {
            printf(" %02x", cfg[i]);
        }
        printf("\n");
    }
    vmapple_vfio_backend_release(b);
    return 0;
}

int example_pci_command(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "list") == 0 && argc == 2) {
        return cmd_list();
    }
    if (strcmp(argv[1], "show") == 0 && argc == 3) {
        return cmd_show(argv[2]);
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage();
        return 0;
    }
    return usage();
}
