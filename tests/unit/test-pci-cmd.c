/* SPDX-License-Identifier: MIT */
/*
 * The example CLI's `pci list` and `pci show` (examples/pci-cmd.c, run as
 * the libvmapple-pci program given as argument) against /sys/bus/pci:
 * every domain-0 function listed with its ids and class, and `pci show`
 * printing exactly the config bytes sysfs gives (same length). Usage
 * errors and unknown functions give exit codes 2 and 1. Read-only; skipped
 * (exit 77) where no PCI function is visible or the CLI cannot list them.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define SYSFS   "/sys/bus/pci/devices"
#define MAX_FNS 256
#define OUT_MAX (64 * 1024)

static const char *program;
static bool standalone;

struct sysfs_fn {
    unsigned bus, dev, fn;
    char path[300];
};

static struct sysfs_fn fns[MAX_FNS];
static unsigned nr_fns;

/* Run the CLI; its stdout in `out` (NUL-terminated); returns its exit status. */
static int run(char *out, const char *args)
{
    char cmd[512];
    FILE *p;
    size_t n;
    int status;

    snprintf(cmd, sizeof(cmd), "'%s' %s 2>/dev/null", program, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, OUT_MAX - 1, p);
    out[n] = 0;
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static ssize_t read_file(const char *dir, const char *name, uint8_t *buf, size_t max)
{
    char path[400];
    size_t got = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (got < max) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

static unsigned long read_hex(const char *dir, const char *name)
{
    uint8_t buf[64];
    ssize_t n = read_file(dir, name, buf, sizeof(buf) - 1);

    buf[n > 0 ? n : 0] = 0;
    return strtoul((const char *)buf, NULL, 16);
}

static void test_list(void **state)
{
    static char out[OUT_MAX];

    (void)state;
    assert_int_equal(run(out, "pci list"), 0);
    for (unsigned i = 0; i < nr_fns; i++) {
        char want[128];
        snprintf(want, sizeof(want), "0000:%02x:%02x.%x %04lx:%04lx class %06lx", fns[i].bus,
                 fns[i].dev, fns[i].fn, read_hex(fns[i].path, "vendor"),
                 read_hex(fns[i].path, "device"), read_hex(fns[i].path, "class"));
        if (!strstr(out, want)) {
            fail_msg("`pci list` lacks \"%s\":\n%s", want, out);
        }
    }
    /* The standalone tool lets the leading "pci" be left out. */
    if (standalone) {
        assert_int_equal(run(out, "list"), 0);
    }
}

static void test_show(void **state)
{
    static char out[OUT_MAX];
    static uint8_t want[4096];

    (void)state;
    for (unsigned i = 0; i < nr_fns; i++) {
        char args[64], *line;
        ssize_t n = read_file(fns[i].path, "config", want, sizeof(want));
        long printed = -1;
        unsigned got = 0;
        bool same = false;

        /* Live status bits may change between two reads: retry a little. */
        for (int attempt = 0; attempt < 3 && !same && n > 0; attempt++) {
            snprintf(args, sizeof(args), "pci show %02x:%02x.%x", fns[i].bus, fns[i].dev,
                     fns[i].fn);
            assert_int_equal(run(out, args), 0);
            line = strstr(out, "  config      ");
            assert_non_null(line);
            printed = strtol(line + 14, NULL, 10);
            got = 0;
            same = true;
            /* Hex dump lines: "  off: b0 b1 ..." */
            for (line = strchr(line, '\n'); line && *line; line = strchr(line + 1, '\n')) {
                char *p = strchr(line, ':');
                unsigned off;
                if (!p || sscanf(line + 1, "%x:", &off) != 1 || off != got) {
                    continue;
                }
                for (p++; *p == ' ';) {
                    unsigned long b = strtoul(p, &p, 16);
                    same = same && (ssize_t)got < n && want[got] == b;
                    got++;
                }
            }
            same = same && printed == n && got == (unsigned)n;
            if (!same) {
                n = read_file(fns[i].path, "config", want, sizeof(want));
            }
        }
        if (n <= 0) {
            continue;
        }
        if (!same) {
            fail_msg("`pci show` of %s printed %ld (%u) bytes; sysfs gives %zd, or they differ",
                     fns[i].path, printed, got, n);
        }
        assert_non_null(strstr(out, "  BAR0        "));
        assert_non_null(strstr(out, "  vendor      0x"));
    }
}

static void test_errors(void **state)
{
    static char out[OUT_MAX];

    (void)state;
    assert_int_equal(run(out, "pci"), 2);
    assert_int_equal(run(out, "pci bogus"), 2);
    assert_int_equal(run(out, "pci show"), 2);
    assert_int_equal(run(out, "pci show zz"), 2);
    assert_int_equal(run(out, "pci show 00:20.0"), 2); /* device 32 */
    assert_int_equal(run(out, "pci show 00:00.8"), 2);
    assert_int_equal(run(out, "pci show 00:01.0x"), 2);
    assert_int_equal(run(out, "pci show ff:1f.7"), 1); /* no such function here */
    assert_int_equal(run(out, "pci help"), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_show),
        cmocka_unit_test(test_errors),
    };
    static char out[OUT_MAX];
    DIR *d;
    struct dirent *e;

    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "--subcommand") == 0)) {
        fprintf(stderr,
                "usage: %s PROGRAM [--subcommand]\n"
                "  PROGRAM: libvmapple-pci, or libvmapple-example with --subcommand\n",
                argv[0]);
        return 2;
    }
    program = argv[1];
    standalone = argc == 2;
    d = opendir(SYSFS);
    while (d && (e = readdir(d)) != NULL && nr_fns < MAX_FNS) {
        struct sysfs_fn *s = &fns[nr_fns];
        unsigned domain;
        if (sscanf(e->d_name, "%x:%x:%x.%x", &domain, &s->bus, &s->dev, &s->fn) == 4 &&
            domain == 0) {
            snprintf(s->path, sizeof(s->path), "%s/%s", SYSFS, e->d_name);
            nr_fns++;
        }
    }
    if (d) {
        closedir(d);
    }
    if (nr_fns == 0) {
        printf("SKIP: no PCI function visible in %s\n", SYSFS);
        return 77;
    }
    if (run(out, "pci list") != 0) {
        printf("SKIP: `pci list` cannot list functions here (no libpciaccess?)\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
