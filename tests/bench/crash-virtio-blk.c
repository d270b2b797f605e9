/* SPDX-License-Identifier: MIT */
/*
 * Data integrity under SIGKILL: a child process drives virtio-blk in
 * asynchronous mode over a file (the test driver over mock guest RAM): it
 * keeps 8 writes in flight, each to its own 4 KiB block with a unique
 * pattern, and sends a FLUSH (or an APPLE_BARRIER, flush mode) every 16
 * writes. When a flush completes in the used ring, the child reports over a
 * pipe every write that had completed in the used ring before that flush was
 * submitted. The parent kills the child with SIGKILL at a random moment and
 * then checks that every reported write is in the file.
 *
 *   crash-virtio-blk [TRIALS]   (default 100; meson test runs 10)
 *
 * Exit status 0 when every trial passed. Mapped guest memory and bounce
 * buffers alternate between trials, FLUSH and APPLE_BARRIER every two, the
 * thread pool, io_uring and io_uring with worker_poll_us (a polling kernel
 * thread) every four.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mockhost.h"
#include "virtio-driver.h"

#define RAM_BASE  0x70000000ull
#define RAM_SIZE  (4ull << 20)
#define HEAP      (RAM_BASE + 0x100000)
#define DATA      (RAM_BASE + 0x200000)
#define BLOCK     4096u
#define NBLOCKS   4096u
#define QD        8
#define FLUSH_GAP 16
#define READY     0xffffffffu
#define FINISHED  0xfffffffeu

static uint64_t pattern_word(uint32_t trial, uint32_t seq, uint32_t i)
{
    return ((uint64_t)trial << 40) ^ ((uint64_t)seq * 0x9e3779b97f4a7c15ull) ^ i;
}

static void fill(uint8_t *p, uint32_t trial, uint32_t seq)
{
    for (uint32_t i = 0; i < BLOCK / 8; i++) {
        uint64_t w = pattern_word(trial, seq, i);
        memcpy(p + 8 * i, &w, 8);
    }
}

static void send_seqs(int fd, const uint32_t *v, size_t n)
{
    /* At most PIPE_BUF bytes per write: each report arrives whole or not at all. */
    while (n > 0) {
        size_t k = n > 1024 ? 1024 : n;
        if (write(fd, v, k * 4) != (ssize_t)(k * 4)) {
            _exit(3);
        }
        v += k;
        n -= k;
    }
}

struct slot {
    bool busy;
    bool is_flush;
    uint32_t seq;          /* writes */
    uint32_t buf;          /* writes: the data buffer, busy until completion */
    uint32_t acked_before; /* flushes: writes acknowledged when it was submitted */
};

#define NBUFS 64

static void child(const char *path, int fd, uint32_t trial)
{
    struct mock_host *h = mock_host_new(RAM_BASE, RAM_SIZE);
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_virtio_blk_options o = VMAPPLE_VIRTIO_BLK_OPTIONS_INIT;
    struct vdrv_config c = { 0 };
    vmapple_blockdev *bd;
    vmapple_device *dev;
    struct vdrv d;
    struct slot *slots;
    uint32_t *acked = calloc(NBLOCKS, sizeof(*acked));
    uint32_t nacked = 0, reported = 0, next = 0, since_flush = 0, inflight = 0, next_buf = 0;
    bool buf_busy[NBUFS] = { false };
    uint32_t msg;

    h->allow_map = trial % 2 == 0;
    /*
     * No lock: a killed predecessor's io_uring is torn down asynchronously and
     * may hold its file (and lock) open a moment longer. Each trial has its
     * own file for the same reason.
     */
    fo.flags = VMAPPLE_BLOCKDEV_NO_LOCK;
    if (vmapple_blockdev_open_file(path, &fo, &bd) != 0) {
        _exit(2);
    }
    o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
    o.blockdev = bd;
    o.io_mode = VMAPPLE_VIRTIO_BLK_IO_ASYNC;
    o.io_threads = 4;
    /*
     * Every engine, four trials each in turn: the pool (RWF_NOWAIT inline),
     * io_uring, and io_uring with a polling kernel thread that shares the
     * work with this one (worker_poll_us), where io_uring is available.
     */
    o.io_engine =
        (trial / 4) % 3 ? VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING : VMAPPLE_VIRTIO_BLK_ENGINE_THREADS;
    o.worker_poll_us = (trial / 4) % 3 == 2 ? 1000 : 0;
    if (vmapple_virtio_blk_create(mock_host_ops(), h, &o, &dev) != 0) {
        o.io_engine = VMAPPLE_VIRTIO_BLK_ENGINE_THREADS;
        o.worker_poll_us = 0;
        if (vmapple_virtio_blk_create(mock_host_ops(), h, &o, &dev) != 0) {
            _exit(2);
        }
    }
    vmapple_blockdev_release(bd);
    c.want_features = UINT64_MAX;
    c.async = true;
    if (vdrv_init(&d, h, dev, HEAP, 1ull << 20, &c) != 0) {
        _exit(2);
    }
    slots = calloc(d.qsize, sizeof(*slots));
    msg = READY;
    send_seqs(fd, &msg, 1);
    while (next < NBLOCKS || inflight > 0) {
        uint16_t head;
        uint32_t len;
        bool added = false;
        /* Fill the queue: writes, and a flush every FLUSH_GAP writes. */
        while (inflight < QD && (next < NBLOCKS || since_flush > 0)) {
            int hd;
            if (since_flush >= FLUSH_GAP || next >= NBLOCKS) {
                uint32_t type = (trial / 2) % 2 ? VDRV_BLK_T_APPLE_BARRIER : VDRV_BLK_T_FLUSH;
                hd = vdrv_blk_submit(&d, type, 0, 0, 0, false);
                if (hd < 0) {
                    break;
                }
                slots[hd] = (struct slot){ true, true, 0, 0, nacked };
                since_flush = 0;
            } else {
                /*
                 * A buffer no write in flight uses: one request can stay in
                 * flight (a preempted worker) while many later ones finish,
                 * so a buffer is free only once its own write completed.
                 */
                uint64_t buf;
                while (buf_busy[next_buf % NBUFS]) {
                    next_buf++;
                }
                buf = DATA + (uint64_t)(next_buf % NBUFS) * BLOCK;
                fill(mock_ram(h, buf, BLOCK), trial, next);
                hd = vdrv_blk_submit(&d, VDRV_BLK_T_OUT, (uint64_t)next * (BLOCK / 512), buf, BLOCK,
                                     next % 3 == 0);
                if (hd < 0) {
                    break;
                }
                buf_busy[next_buf % NBUFS] = true;
                slots[hd] = (struct slot){ true, false, next, next_buf % NBUFS, 0 };
                next_buf++;
                next++;
                since_flush++;
            }
            inflight++;
            added = true;
        }
        if (added) {
            vdrv_kick(&d);
        }
        if (vdrv_wait_used(&d, &head, &len, 10000) != 1) {
            _exit(4);
        }
        do {
            struct slot *s = &slots[head];
            if (!s->busy || vdrv_blk_status(&d, head) != 0) {
                _exit(5);
            }
            s->busy = false;
            inflight--;
            if (s->is_flush) {
                /* Every write acknowledged before this flush was sent is durable now. */
                if (s->acked_before > reported) {
                    send_seqs(fd, acked + reported, s->acked_before - reported);
                    reported = s->acked_before;
                }
            } else {
                acked[nacked++] = s->seq;
                buf_busy[s->buf] = false;
            }
        } while (vdrv_get_used(&d, &head, &len));
    }
    msg = FINISHED;
    send_seqs(fd, &msg, 1);
    _exit(0);
}

static int trial_run(const char *path, uint32_t trial, unsigned *durable_total, bool *finished)
{
    int pfd[2], status, fd, bad = 0;
    uint32_t buf[1024];
    uint8_t *block = malloc(BLOCK);
    uint8_t *expect = malloc(BLOCK);
    pid_t pid;
    ssize_t n;
    bool ready = false;

    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)NBLOCKS * BLOCK) < 0 || pipe(pfd) < 0) {
        perror("set-up");
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child(path, pfd[1], trial);
    }
    close(pfd[1]);
    /* Wait for the child to be up, then kill it after a random 0..40 ms. */
    n = read(pfd[0], buf, 4);
    ready = n == 4 && buf[0] == READY;
    usleep((useconds_t)(rand() % 40000));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    *finished = false;
    while ((n = read(pfd[0], buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n / 4; i++) {
            uint32_t seq = buf[i];
            if (seq == FINISHED) {
                *finished = true;
                continue;
            }
            if (seq >= NBLOCKS) {
                fprintf(stderr, "trial %u: bad report %u\n", trial, seq);
                bad++;
                continue;
            }
            fill(expect, trial, seq);
            if (pread(fd, block, BLOCK, (off_t)seq * BLOCK) != BLOCK ||
                memcmp(block, expect, BLOCK) != 0) {
                fprintf(stderr,
                        "trial %u: write %u was acknowledged before a flush but is "
                        "not in the file\n",
                        trial, seq);
                bad++;
            }
            (*durable_total)++;
        }
    }
    close(pfd[0]);
    close(fd);
    free(block);
    free(expect);
    if (!ready || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
        fprintf(stderr, "trial %u: the child failed (status 0x%x)\n", trial, status);
        return -1;
    }
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    unsigned trials = argc > 1 ? (unsigned)atoi(argv[1]) : 100;
    unsigned durable = 0, failed = 0, finished_count = 0;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[4096], path[4200];

    snprintf(dir, sizeof(dir), "%s/vmapple-crash-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (unsigned t = 0; t < trials; t++) {
        bool finished = false;
        snprintf(path, sizeof(path), "%s/volume-%u", dir, t);
        if (trial_run(path, t, &durable, &finished) != 0) {
            failed++;
        }
        finished_count += finished;
        unlink(path);
    }
    rmdir(dir);
    printf("crash-virtio-blk: %u trials, %u failed, %u writes checked durable, %u children "
           "finished before the kill\n",
           trials, failed, durable, finished_count);
    return failed ? 1 : 0;
}
