/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk throughput against raw pread/pwrite of the same file with the
 * same number of threads, measured in the same run. The device runs in
 * asynchronous mode and is driven by the test driver (tests/common) over
 * mock guest RAM that the host maps (zero-copy); the host thread polls the
 * device's fd and calls vmapple_device_process(), like a VMM's event loop.
 *
 *   bench-virtio-blk [SECONDS_PER_CASE [CASE_SUBSTRING [ENGINE_TAG]]]
 *                                          (default 2 s, every case and engine)
 *
 * Cases: 1 MiB sequential read and write (queue depth = threads = 1 and 4),
 * 4 KiB random read at queue depth 1 (1 thread) and 32 (4 threads); each for
 * the thread pool (default options, with worker_poll_us = 100, and with
 * complete_in_notify: "-cin") and, when built with liburing, io_uring
 * (default options, "-cin", and worker_poll_us = 100, which gives the ring a
 * polling kernel thread, alone and with "-cin"), and for synchronous mode
 * ("sync": the I/O runs inside the notifying write, one request after
 * another, as a VMM running the device on its own thread would use it). This
 * loop takes completions on the thread that kicks, as complete_in_notify
 * asks. ENGINE_TAG picks one of these columns ("none": raw only). Every case
 * prints MB/s and IOPS lines (bench.h format) with the raw figure as the limit:
 * the median of 3 interleaved runs of each side (the machine may be shared).
 * The file (256 MiB, in $TMPDIR or /tmp) is written first so both sides read
 * from the page cache. The round trip of a wake-up between two threads is
 * printed first: it is what any hand-off to a worker costs on this machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "mockhost.h"
#include "virtio-driver.h"

#define RAM_BASE  0x70000000ull
#define RAM_SIZE  (96ull << 20)
#define HEAP      (RAM_BASE + 0x100000)
#define HEAP_LEN  (8ull << 20)
#define DATA      (RAM_BASE + (16ull << 20))
#define FILE_SIZE (256ull << 20)

static double seconds = 2.0;
static const char *only;        /* run only cases whose name contains this */
static const char *only_engine; /* and only the engine with this tag */
static char path[4200];

struct result {
    double ops;
    double bytes;
    double secs;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Raw: `threads` threads doing pread/pwrite of `bs` bytes for `seconds`. */
struct raw_arg {
    int fd;
    bool write;
    bool random;
    uint32_t bs;
    unsigned index, threads;
    uint64_t deadline;
    uint64_t ops;
};

static void *raw_thread(void *p)
{
    struct raw_arg *a = p;
    uint8_t *buf = aligned_alloc(4096, a->bs);
    uint64_t seed = 0x1234567ull + a->index, slots = FILE_SIZE / a->bs;
    uint64_t pos = a->index * (slots / a->threads);

    memset(buf, 0x5a, a->bs);
    while (bench_now_ns() < a->deadline) {
        for (int k = 0; k < 16; k++) {
            uint64_t slot = a->random ? xorshift(&seed) % slots : pos++ % slots;
            off_t off = (off_t)(slot * a->bs);
            ssize_t n = a->write ? pwrite(a->fd, buf, a->bs, off) : pread(a->fd, buf, a->bs, off);
            if (n != (ssize_t)a->bs) {
                abort();
            }
            a->ops++;
        }
    }
    free(buf);
    return NULL;
}

static struct result run_raw(bool write, bool random, uint32_t bs, unsigned threads)
{
    struct raw_arg args[64];
    pthread_t th[64];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    uint64_t start = bench_now_ns(), ops = 0;
    struct result r;

    for (unsigned i = 0; i < threads; i++) {
        args[i] =
            (struct raw_arg){ fd, write, random, bs, i, threads, start + (uint64_t)(seconds * 1e9),
                              0 };
        pthread_create(&th[i], NULL, raw_thread, &args[i]);
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += args[i].ops;
    }
    r.secs = (double)(bench_now_ns() - start) / 1e9;
    r.ops = (double)ops;
    r.bytes = (double)ops * bs;
    close(fd);
    return r;
}

/*
 * Library: the device with `threads` workers, `qd` requests kept in flight.
 * engine UINT32_MAX: synchronous mode.
 */
static struct result run_lib(bool write, bool random, uint32_t bs, unsigned qd, unsigned threads,
                             uint32_t engine, uint32_t poll_us, uint32_t cin, bool *ok)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct vdrv_config c = { 0 };
    struct result r = { 0, 0, 0 };
    vmapple_blockdev *bd;
    vmapple_device *dev;
    struct vdrv d;
    uint64_t seed = 0x7654321ull, slots = FILE_SIZE / bs, pos = 0, done = 0, deadline, start;
    unsigned *buf_of_head, free_bufs[64], nfree = 0;
    unsigned inflight = 0;
    bool stop = false;
    int fd;

    *ok = false;
    h->allow_map = true;
    fo.flags = VMAPPLE_BLOCKDEV_NO_LOCK;
    if (vmapple_blockdev_open_file(path, &fo, &bd) != 0) {
        return r;
    }
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
    o.blockdev = bd;
    o.io_mode = engine == UINT32_MAX ? VMAPPLE_VIRTIO_BLK_IO_SYNC : VMAPPLE_VIRTIO_BLK_IO_ASYNC;
    o.io_threads = threads;
    o.io_engine = engine == UINT32_MAX ? 0 : engine;
    o.worker_poll_us = poll_us;
    o.complete_in_notify = cin;
    o.size_max = 1u << 20;
    o.seg_max = 64;
    o.max_bounce_bytes = 64ull << 20;
    if (vmapple_virtio_blk_create(mock_host_ops(), h, &o, &dev) != 0) {
        vmapple_blockdev_release(bd);
        mock_host_free(h);
        return r;
    }
    vmapple_blockdev_release(bd);
    c.want_features = UINT64_MAX;
    c.async = engine != UINT32_MAX;
    if (vdrv_init(&d, h, dev, HEAP, HEAP_LEN, &c) != 0) {
        abort();
    }
    buf_of_head = calloc(d.qsize, sizeof(*buf_of_head));
    for (unsigned i = 0; i < qd; i++) {
        free_bufs[nfree++] = i;
    }
    fd = vmapple_device_poll_fd(dev);
    start = bench_now_ns();
    deadline = start + (uint64_t)(seconds * 1e9);
    for (;;) {
        uint16_t head;
        uint32_t len;
        bool added = false;
        struct pollfd p = { fd, POLLIN, 0 };
        while (!stop && inflight < qd) {
            uint64_t slot = random ? xorshift(&seed) % slots : pos++ % slots;
            unsigned b = free_bufs[--nfree];
            int hd = vdrv_blk_submit(&d, write ? VDRV_BLK_T_OUT : VDRV_BLK_T_IN, slot * (bs / 512),
                                     DATA + (uint64_t)b * bs, bs, false);
            if (hd < 0) {
                free_bufs[nfree++] = b;
                break;
            }
            buf_of_head[hd] = b;
            inflight++;
            added = true;
        }
        if (added) {
            vdrv_kick(&d);
        }
        if (inflight == 0) {
            break;
        }
        while (!vdrv_get_used(&d, &head, &len)) {
            poll(&p, 1, 1000);
            vmapple_device_process(dev);
        }
        do {
            if (vdrv_blk_status(&d, head) != 0) {
                abort();
            }
            free_bufs[nfree++] = buf_of_head[head];
            inflight--;
            done++;
        } while (vdrv_get_used(&d, &head, &len));
        if (!stop && bench_now_ns() >= deadline) {
            stop = true;
        }
    }
    r.secs = (double)(bench_now_ns() - start) / 1e9;
    r.ops = (double)done;
    r.bytes = (double)done * bs;
    *ok = true;
    free(buf_of_head);
    vdrv_fini(&d);
    vmapple_device_destroy(dev);
    mock_host_free(h);
    return r;
}

/*
 * What handing a request to another thread costs here: the round trip of an
 * eventfd ping-pong between two threads (two wake-ups), with both threads on
 * one CPU and on two. Asynchronous I/O pays one or two wake-ups per hand-off,
 * so this bounds what workers can gain on this machine.
 */
static int pp_go, pp_back;

static void pin(pthread_t t, int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(t, sizeof(set), &set);
}

static void *pp_thread(void *p)
{
    uint64_t v;

    for (int i = 0; i < 2000; i++) {
        if (read(pp_go, &v, 8) != 8 || write(pp_back, &v, 8) != 8) {
            break;
        }
    }
    return p;
}

/* Microseconds per round trip; the partner thread on `cpu` (the caller on CPU 0). */
static double wakeup_round_trip_us(int cpu)
{
    cpu_set_t saved;
    pthread_t t;
    uint64_t v = 1, t0;
    int i;

    pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
    pp_go = eventfd(0, EFD_CLOEXEC);
    pp_back = eventfd(0, EFD_CLOEXEC);
    if (pp_go < 0 || pp_back < 0 || pthread_create(&t, NULL, pp_thread, NULL) != 0) {
        return -1;
    }
    pin(pthread_self(), 0);
    pin(t, cpu);
    t0 = bench_now_ns();
    for (i = 0; i < 2000; i++) {
        if (write(pp_go, &v, 8) != 8 || read(pp_back, &v, 8) != 8) {
            break;
        }
    }
    t0 = bench_now_ns() - t0;
    pthread_join(t, NULL);
    pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
    close(pp_go);
    close(pp_back);
    return (double)t0 / i / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Settle the page cache between runs so one run's writeback does not tax the next. */
static void settle(void)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        fdatasync(fd);
        close(fd);
    }
}

#define ROUNDS 3

/*
 * The machine is shared, so each side runs ROUNDS times, interleaved
 * (raw, threads, io_uring, raw, ...), and the median of each is reported.
 */
static void run_case(const char *name, bool write, bool random, uint32_t bs, unsigned qd,
                     unsigned threads)
{
    static const struct {
        const char *tag;
        uint32_t engine, poll_us, cin;
    } engines[] = {
        { "threads", VMAPPLE_VIRTIO_BLK_ENGINE_THREADS, 0, 0 },
        { "io_uring", VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING, 0, 0 },
        { "threads-poll100us", VMAPPLE_VIRTIO_BLK_ENGINE_THREADS, 100, 0 },
        { "threads-cin", VMAPPLE_VIRTIO_BLK_ENGINE_THREADS, 0, 1 },
        { "io_uring-cin", VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING, 0, 1 },
        { "io_uring-poll100us", VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING, 100, 0 },
        { "io_uring-poll100us-cin", VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING, 100, 1 },
        { "sync", UINT32_MAX, 0, 0 },
    };
    enum { NE = sizeof(engines) / sizeof(engines[0]) };
    double raw_ops[ROUNDS], lib_ops[NE][ROUNDS];
    bool have[NE];

    if (only && !strstr(name, only)) {
        return;
    }
    for (unsigned e = 0; e < NE; e++) {
        have[e] = !only_engine || strcmp(only_engine, engines[e].tag) == 0;
    }
    for (int round = 0; round < ROUNDS; round++) {
        struct result raw;
        settle();
        raw = run_raw(write, random, bs, threads);
        raw_ops[round] = raw.ops / raw.secs;
        for (unsigned e = 0; e < NE; e++) {
            bool ok;
            struct result lib;
            if (!have[e]) {
                continue;
            }
            settle();
            lib = run_lib(write, random, bs, qd, threads, engines[e].engine, engines[e].poll_us,
                          engines[e].cin, &ok);
            if (!ok) {
                printf("# %s: engine %s unavailable (%s)\n", name, engines[e].tag,
                       vmapple_last_error());
                have[e] = false;
                continue;
            }
            lib_ops[e][round] = lib.ops / lib.secs;
        }
    }
    qsort(raw_ops, ROUNDS, sizeof(double), cmp_double);
    for (unsigned e = 0; e < NE; e++) {
        char n[160];
        if (!have[e]) {
            continue;
        }
        qsort(lib_ops[e], ROUNDS, sizeof(double), cmp_double);
        snprintf(n, sizeof(n), "virtio-blk-%s-%s-MBps", name, engines[e].tag);
        bench_report(n, lib_ops[e][ROUNDS / 2] * bs / 1e6, "MB/s", raw_ops[ROUNDS / 2] * bs / 1e6);
        snprintf(n, sizeof(n), "virtio-blk-%s-%s-IOPS", name, engines[e].tag);
        bench_report(n, lib_ops[e][ROUNDS / 2], "IOPS", raw_ops[ROUNDS / 2]);
    }
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    uint8_t *chunk = malloc(1 << 20);
    int fd;

    if (argc > 1) {
        seconds = atof(argv[1]);
    }
    if (argc > 2) {
        only = argv[2];
    }
    if (argc > 3) {
        only_engine = argv[3];
    }
    snprintf(path, sizeof(path), "%s/vmapple-bench-%d.img", tmp, (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    for (uint64_t off = 0; off < FILE_SIZE; off += 1 << 20) {
        memset(chunk, (int)(off >> 20), 1 << 20);
        if (pwrite(fd, chunk, 1 << 20, (off_t)off) != 1 << 20) {
            perror("pwrite");
            return 1;
        }
    }
    fsync(fd);
    close(fd);
    printf("# virtio-blk vs raw pread/pwrite on %s (%llu MiB, page cache), %.1f s per case\n", path,
           (unsigned long long)(FILE_SIZE >> 20), seconds);
    printf("# thread wake-up round trip (eventfd ping-pong): %.1f us on one CPU",
           wakeup_round_trip_us(0));
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1) {
        printf(", %.1f us across two", wakeup_round_trip_us(1));
    }
    printf("\n");
    run_case("seqread-1m-qd1-t1", false, false, 1 << 20, 1, 1);
    run_case("seqwrite-1m-qd1-t1", true, false, 1 << 20, 1, 1);
    run_case("seqread-1m-qd4-t4", false, false, 1 << 20, 4, 4);
    run_case("seqwrite-1m-qd4-t4", true, false, 1 << 20, 4, 4);
    run_case("randread-4k-qd1-t1", false, true, 4096, 1, 1);
    run_case("randread-4k-qd32-t4", false, true, 4096, 32, 4);
    unlink(path);
    free(chunk);
    return 0;
}
