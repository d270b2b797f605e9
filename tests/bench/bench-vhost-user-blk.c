/* SPDX-License-Identifier: MIT */
/*
 * Runs bench-vhost-user-blk.py (fio in a Linux guest: libvmapple's
 * vhost-user-blk back end against QEMU's own virtio-blk-pci) with the paths
 * of this build, so that `./dev bench` finds it beside the other benchmark
 * programs. Arguments are passed on (e.g. --rounds 5 --runtime 20).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char *args[64];
    int n = 0;

    args[n++] = (char *)BENCH_PYTHON;
    args[n++] = (char *)BENCH_SCRIPT;
    args[n++] = (char *)"--backend";
    args[n++] = (char *)BENCH_BACKEND;
    args[n++] = (char *)"--workdir";
    args[n++] = (char *)BENCH_WORKDIR;
    if (BENCH_BLKPATTERN[0]) {
        args[n++] = (char *)"--blkpattern";
        args[n++] = (char *)BENCH_BLKPATTERN;
    }
    for (int i = 1; i < argc && n < 63; i++) {
        args[n++] = argv[i];
    }
    args[n] = NULL;
    execv(args[0], args);
    perror(BENCH_PYTHON);
    return 1;
}
