/* SPDX-License-Identifier: MIT */
/*
 * libvmapple-vhost-user-blk: Apple's virtio-blk variant (root or aux volume)
 * served over vhost-user to an unmodified VMM, e.g.
 *
 *   libvmapple-vhost-user-blk --socket /run/root.sock --image root.img --variant root
 *   qemu-system-... -object memory-backend-memfd,id=mem,size=4G,share=on \
 *       -machine memory-backend=mem \
 *       -chardev socket,id=root,path=/run/root.sock \
 *       -device vhost-user-blk-pci,chardev=root
 *
 * The program listens on the socket and serves one front end at a time (a
 * second one is refused while the first is connected); when a front end
 * disconnects it waits for the next. SIGTERM or SIGINT end it cleanly. It
 * uses only the public API (include/libvmapple/vhost-user-blk.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libvmapple/libvmapple.h>

#define PROG "libvmapple-vhost-user-blk"

static int verbosity = VMAPPLE_LOG_INFO;
static int stop_pipe[2] = { -1, -1 };
static vmapple_vhost_user_blk *backend;

struct server {
    vmapple_vhost_user_blk *be;
    pthread_t thread;
    bool busy; /* a serve thread runs (main thread only) */
    int done_pipe[2];
    int conn_fd;
    int result;
    unsigned connections;
};

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    va_list ap;

    if (level > verbosity) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line: ring threads log too. */
    fprintf(stderr, "%s[%lld.%03ld] %s: %s\n", PROG, (long long)ts.tv_sec, ts.tv_nsec / 1000000,
            vmapple_log_level_name(level), line);
}

static void lib_log(void *opaque, int level, const char *message)
{
    (void)opaque;
    say(level, "%s", message);
}

static void on_signal(int sig)
{
    char c = (char)sig;
    ssize_t n;

    vmapple_vhost_user_blk_stop(backend);
    n = write(stop_pipe[1], &c, 1);
    (void)n;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --socket PATH --image FILE --variant root|aux [options]\n"
            "\n"
            "Serves Apple's virtio-blk variant over vhost-user (one front end at a time).\n"
            "\n"
            "  --socket PATH      listen on this Unix socket (--socket-path too)\n"
            "  --fd N             serve the already connected socket N instead, then exit\n"
            "  --image FILE       the volume (a file or block device)\n"
            "  --variant V        root or aux (the Apple type at config offset 60)\n"
            "  --read-only        open the image read-only and offer VIRTIO_BLK_F_RO\n"
            "  --direct           bypass the host page cache (O_DIRECT), like QEMU's cache=none\n"
            "  --barrier MODE     APPLE_BARRIER: flush (default), drain or none\n"
            "  --queues N         queues offered, 1 to %u (default 1)\n"
            "  --max-queue-size N largest vring the front end may use (default 1024)\n"
            "  --seg-max N        segments per request advertised (default 126)\n"
            "  --size-max N       bytes per segment advertised, 4096 to 4 MiB (default 64 KiB)\n"
            "  --serial S         GET_ID serial, at most 20 characters\n"
            "  --io-engine E      auto (default), threads or io_uring\n"
            "  --worker-poll-us N poll N us for work before sleeping, 0 to 10000 (default 0):\n"
            "                     a worker, or with io_uring a kernel thread (SQPOLL, whole\n"
            "                     ms); spends CPU to skip wake-ups, see virtio-blk.h\n"
            "  --once             exit when the first front end disconnects\n"
            "  --verbose          debug log lines\n"
            "  --quiet            errors and warnings only\n"
            "  --print-capabilities  print the vhost-user back-end capabilities (JSON)\n",
            VMAPPLE_VHOST_USER_BLK_MAX_QUEUES);
}

static int parse_uint(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 0);
    if (errno || !*s || *end || v < lo || v > hi) {
        say(VMAPPLE_LOG_ERROR, "option %s: '%s' is not a number from %u to %u", opt, s, lo, hi);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(a.sun_path)) {
        say(VMAPPLE_LOG_ERROR, "option --socket: the path is longer than %zu bytes",
            sizeof(a.sun_path) - 1);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            say(VMAPPLE_LOG_ERROR, "option --socket: %s exists and is not a socket", path);
            return -1;
        }
        unlink(path); /* a stale socket of an earlier run */
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
        say(VMAPPLE_LOG_ERROR, "option --socket: %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static void report(struct server *s, int ret)
{
    vmapple_virtio_blk_stats st = VMAPPLE_VIRTIO_BLK_STATS_INIT;

    vmapple_vhost_user_blk_get_stats(s->be, &st);
    if (ret == -EPROTO) {
        say(VMAPPLE_LOG_ERROR, "front end %u dropped: %s", s->connections,
            vmapple_vhost_user_blk_last_error(s->be));
    } else {
        say(VMAPPLE_LOG_INFO, "front end %u %s", s->connections,
            ret == -ECANCELED ? "disconnected (stopping)" : "disconnected");
    }
    say(VMAPPLE_LOG_INFO,
        "so far: %llu requests, %llu bytes read, %llu bytes written, %llu flushes, "
        "%llu I/O errors, %llu unsupported",
        (unsigned long long)st.requests, (unsigned long long)st.read_bytes,
        (unsigned long long)st.write_bytes, (unsigned long long)st.flushes,
        (unsigned long long)st.io_errors, (unsigned long long)st.unsupported);
}

static void *serve_main(void *arg)
{
    struct server *s = arg;
    char c = 1;
    ssize_t n;

    s->result = vmapple_vhost_user_blk_serve(s->be, s->conn_fd);
    n = write(s->done_pipe[1], &c, 1);
    (void)n;
    return NULL;
}

/* Accept front ends until stopped (or, with once, until the first leaves). */
static int run_listener(struct server *s, int lfd, bool once)
{
    int status = 0;

    for (;;) {
        struct pollfd p[3] = { { lfd, POLLIN, 0 },
                               { stop_pipe[0], POLLIN, 0 },
                               { s->done_pipe[0], POLLIN, 0 } };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            say(VMAPPLE_LOG_ERROR, "poll: %s", strerror(errno));
            status = 1;
            break;
        }
        if (p[2].revents) {
            char c;
            ssize_t n = read(s->done_pipe[0], &c, 1);
            (void)n;
            pthread_join(s->thread, NULL);
            s->busy = false;
            report(s, s->result);
            if (s->result == -ECANCELED) {
                break;
            }
            if (once) {
                status = s->result == 0 ? 0 : 1;
                break;
            }
        }
        if (p[1].revents) {
            say(VMAPPLE_LOG_INFO, "signal received: stopping");
            break;
        }
        if (p[0].revents) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                continue;
            }
            if (s->busy) {
                say(VMAPPLE_LOG_WARNING, "refused a second front end while one is connected");
                close(fd);
                continue;
            }
            s->connections++;
            say(VMAPPLE_LOG_INFO, "front end %u connected", s->connections);
            s->conn_fd = fd;
            if (pthread_create(&s->thread, NULL, serve_main, s) != 0) {
                say(VMAPPLE_LOG_ERROR, "cannot start a thread for the front end");
                close(fd);
                continue;
            }
            s->busy = true;
        }
    }
    if (s->busy) {
        vmapple_vhost_user_blk_stop(s->be);
        pthread_join(s->thread, NULL);
        s->busy = false;
        report(s, s->result);
    }
    return status;
}

int main(int argc, char **argv)
{
    enum {
        O_SOCKET = 256,
        O_FD,
        O_IMAGE,
        O_VARIANT,
        O_READ_ONLY,
        O_BARRIER,
        O_QUEUES,
        O_MAXQ,
        O_SEG_MAX,
        O_SIZE_MAX,
        O_SERIAL,
        O_ENGINE,
        O_POLL,
        O_ONCE,
        O_VERBOSE,
        O_QUIET,
        O_CAPS,
        O_HELP
    };
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, O_SOCKET },
        { "socket-path", required_argument, NULL, O_SOCKET },
        { "fd", required_argument, NULL, O_FD },
        { "image", required_argument, NULL, O_IMAGE },
        { "blk-file", required_argument, NULL, O_IMAGE },
        { "variant", required_argument, NULL, O_VARIANT },
        { "read-only", no_argument, NULL, O_READ_ONLY },
        { "direct", no_argument, NULL, O_DIRECT },
        { "barrier", required_argument, NULL, O_BARRIER },
        { "queues", required_argument, NULL, O_QUEUES },
        { "max-queue-size", required_argument, NULL, O_MAXQ },
        { "seg-max", required_argument, NULL, O_SEG_MAX },
        { "size-max", required_argument, NULL, O_SIZE_MAX },
        { "serial", required_argument, NULL, O_SERIAL },
        { "io-engine", required_argument, NULL, O_ENGINE },
        { "worker-poll-us", required_argument, NULL, O_POLL },
        { "once", no_argument, NULL, O_ONCE },
        { "verbose", no_argument, NULL, O_VERBOSE },
        { "quiet", no_argument, NULL, O_QUIET },
        { "print-capabilities", no_argument, NULL, O_CAPS },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    vmapple_vhost_user_blk_options o = VMAPPLE_VHOST_USER_BLK_OPTIONS_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    const char *socket_path = NULL, *image = NULL;
    struct server s = { .done_pipe = { -1, -1 } };
    struct sigaction sa;
    vmapple_blockdev *bd;
    bool once = false;
    uint32_t fd_arg = 0;
    bool have_fd = false;
    int c, ret, status;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_SOCKET:
            socket_path = optarg;
            break;
        case O_FD:
            if (parse_uint("--fd", optarg, 0, 1u << 30, &fd_arg) < 0) {
                return 2;
            }
            have_fd = true;
            break;
        case O_IMAGE:
            image = optarg;
            break;
        case O_VARIANT:
            if (strcmp(optarg, "root") == 0) {
                o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_ROOT;
            } else if (strcmp(optarg, "aux") == 0) {
                o.variant = VMAPPLE_VIRTIO_BLK_VARIANT_AUX;
            } else {
                say(VMAPPLE_LOG_ERROR, "option --variant: '%s' is neither root nor aux", optarg);
                return 2;
            }
            break;
        case O_READ_ONLY:
            fo.flags |= VMAPPLE_BLOCKDEV_READ_ONLY;
            o.flags |= VMAPPLE_VIRTIO_BLK_READ_ONLY;
            break;
        case O_DIRECT:
            fo.flags |= VMAPPLE_BLOCKDEV_DIRECT;
            break;
        case O_BARRIER:
            if (strcmp(optarg, "flush") == 0) {
                o.barrier_mode = VMAPPLE_VIRTIO_BLK_BARRIER_FLUSH;
            } else if (strcmp(optarg, "drain") == 0) {
                o.barrier_mode = VMAPPLE_VIRTIO_BLK_BARRIER_DRAIN;
            } else if (strcmp(optarg, "none") == 0) {
                o.barrier_mode = VMAPPLE_VIRTIO_BLK_BARRIER_NONE;
            } else {
                say(VMAPPLE_LOG_ERROR, "option --barrier: '%s' is not flush, drain or none",
                    optarg);
                return 2;
            }
            break;
        case O_QUEUES:
            if (parse_uint("--queues", optarg, 1, VMAPPLE_VHOST_USER_BLK_MAX_QUEUES,
                           &o.num_queues) < 0) {
                return 2;
            }
            break;
        case O_MAXQ:
            if (parse_uint("--max-queue-size", optarg, 8, 1024, &o.max_queue_size) < 0) {
                return 2;
            }
            break;
        case O_SEG_MAX:
            if (parse_uint("--seg-max", optarg, 1, 1022, &o.seg_max) < 0) {
                return 2;
            }
            break;
        case O_SIZE_MAX:
            if (parse_uint("--size-max", optarg, 4096, 4u << 20, &o.size_max) < 0) {
                return 2;
            }
            break;
        case O_SERIAL:
            o.serial = optarg;
            break;
        case O_ENGINE:
            if (strcmp(optarg, "auto") == 0) {
                o.io_engine = VMAPPLE_VIRTIO_BLK_ENGINE_AUTO;
            } else if (strcmp(optarg, "threads") == 0) {
                o.io_engine = VMAPPLE_VIRTIO_BLK_ENGINE_THREADS;
            } else if (strcmp(optarg, "io_uring") == 0) {
                o.io_engine = VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING;
            } else {
                say(VMAPPLE_LOG_ERROR, "option --io-engine: '%s' is not auto, threads or io_uring",
                    optarg);
                return 2;
            }
            break;
        case O_POLL:
            if (parse_uint("--worker-poll-us", optarg, 0, 10000, &o.worker_poll_us) < 0) {
                return 2;
            }
            break;
        case O_ONCE:
            once = true;
            break;
        case O_VERBOSE:
            verbosity = VMAPPLE_LOG_DEBUG;
            break;
        case O_QUIET:
            verbosity = VMAPPLE_LOG_GUEST_ERROR;
            break;
        case O_CAPS:
            printf("{\n  \"type\": \"block-device\",\n  \"features\": [\n    \"read-only\",\n"
                   "    \"blk-file\"\n  ]\n}\n");
            return 0;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !image || !o.variant || (!socket_path == !have_fd)) {
        say(VMAPPLE_LOG_ERROR, "%s",
            optind < argc ? "unexpected argument"
            : !image      ? "option --image is required"
            : !o.variant  ? "option --variant is required (root or aux)"
                          : "give exactly one of --socket and --fd");
        usage(stderr);
        return 2;
    }

    ret = vmapple_blockdev_open_file(image, &fo, &bd);
    if (ret < 0) {
        say(VMAPPLE_LOG_ERROR, "option --image: %s: %s (%s)", image, vmapple_strerror(ret),
            vmapple_last_error());
        return 1;
    }
    o.blockdev = bd;
    ops.log = lib_log;
    ret = vmapple_vhost_user_blk_create(&ops, NULL, &o, &backend);
    vmapple_blockdev_release(bd);
    if (ret < 0) {
        say(VMAPPLE_LOG_ERROR, "%s", vmapple_last_error());
        return 1;
    }
    s.be = backend;
    if (pipe2(stop_pipe, O_CLOEXEC) < 0 || pipe2(s.done_pipe, O_CLOEXEC) < 0) {
        say(VMAPPLE_LOG_ERROR, "pipe: %s", strerror(errno));
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (have_fd) {
        s.connections = 1;
        ret = vmapple_vhost_user_blk_serve(backend, (int)fd_arg);
        report(&s, ret);
        status = ret == 0 || ret == -ECANCELED ? 0 : 1;
    } else {
        int lfd = listen_on(socket_path);
        if (lfd < 0) {
            vmapple_vhost_user_blk_destroy(backend);
            return 1;
        }
        say(VMAPPLE_LOG_INFO, "serving %s (%s volume%s%s, %u queue%s) on %s", image,
            o.variant == VMAPPLE_VIRTIO_BLK_VARIANT_ROOT ? "root" : "aux",
            (o.flags & VMAPPLE_VIRTIO_BLK_READ_ONLY) ? ", read-only" : "",
            (fo.flags & VMAPPLE_BLOCKDEV_DIRECT) ? ", direct I/O" : "",
            o.num_queues ? o.num_queues : 1, o.num_queues > 1 ? "s" : "", socket_path);
        status = run_listener(&s, lfd, once);
        close(lfd);
        unlink(socket_path);
    }
    vmapple_vhost_user_blk_destroy(backend);
    return status;
}
