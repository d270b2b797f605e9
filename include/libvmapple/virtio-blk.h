/* SPDX-License-Identifier: MIT */
/**
 * @file virtio-blk.h
 * Apple's virtio-blk variant: the PCI block device through which a vmapple
 * guest (macOS) sees its root and aux volumes.
 *
 * A modern virtio 1.x block device (no legacy interface) on the virtio-pci
 * transport, with Apple's identity (vendor:device 106b:1a00), the Apple
 * volume type at device-config offset 60 (1 = root, 2 = aux) in a 96-byte
 * device configuration, and one extra request type, APPLE_BARRIER (0x10000).
 *
 * PCI: BAR0 is a 16 KiB memory BAR holding the virtio structures (region
 * "bar0"); with MSI-X vectors requested, BAR1 is a 4 KiB memory BAR with the
 * MSI-X table and PBA (region "msix"). Interrupt line 0 is INTx pin A (vmapple
 * has no MSI controller, so INTx is the default). Configuration space goes
 * through vmapple_device_pci_config_read() / _write(), BAR placement is
 * reported through vmapple_host_ops.pci_bar_update.
 *
 * Requests: IN, OUT, FLUSH, GET_ID (the serial option), DISCARD and
 * WRITE_ZEROES when the volume supports them, APPLE_BARRIER (see
 * vmapple_virtio_blk_barrier_mode). Unknown types complete with
 * VIRTIO_BLK_S_UNSUPP; writes to a read-only volume complete with
 * VIRTIO_BLK_S_IOERR and never reach the volume. A guest that breaks the
 * rules of the virtqueue (bad descriptor indices, loops, over-long chains, a
 * request without a status byte, ...) gets DEVICE_NEEDS_RESET; one whose
 * buffers are not guest RAM or whose request is malformed gets IOERR.
 *
 * I/O modes:
 *  - synchronous (default): a queue notification (a guest write to the
 *    notify area of BAR0) performs the requests before vmapple_device_write()
 *    returns. Simplest for hosts; the vCPU waits for the disk.
 *  - asynchronous: the notification only reads the requests, maps the guest
 *    buffers (or copies written data into bounce buffers) and starts the block
 *    I/O on io_uring or library worker threads; it never waits for the disk
 *    (a read the page cache holds may be copied at once, RWF_NOWAIT).
 *    Completions are delivered on the host's thread: poll
 *    vmapple_device_poll_fd() (and/or take the async_notify callback, see
 *    host.h), then call vmapple_device_process(), which writes the used ring
 *    and raises the interrupt (with option complete_in_notify, requests that
 *    finished at once are completed by the notification itself). Host
 *    callbacks other than async_notify are only ever called on the thread
 *    calling into the device; worker threads only call the volume's own
 *    callbacks.
 *
 * Reset (vmapple_device_reset() or a driver writing 0 to device_status) with
 * requests in flight waits for the block I/O that is running, then discards
 * every completion: nothing is written to guest memory afterwards.
 * vmapple_device_save() waits for every request in flight and delivers its
 * completion (used ring, interrupt) before it serialises, so save guest RAM
 * after the device; a loaded device continues from the saved queue indices.
 *
 * Mapped guest memory: in asynchronous mode a buffer mapped with mem_map stays
 * mapped until the vmapple_device_process() call that delivers its request
 * (or the reset, save or destroy that waits for it).
 */
#ifndef LIBVMAPPLE_VIRTIO_BLK_H
#define LIBVMAPPLE_VIRTIO_BLK_H

#include "common.h"
#include "device.h"
#include "blockdev.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The volume the device presents to the guest (device config offset 60). */
typedef enum vmapple_virtio_blk_variant {
    /** Not a valid device: creation fails naming the option "variant". */
    VMAPPLE_VIRTIO_BLK_VARIANT_UNSPECIFIED = 0,
    VMAPPLE_VIRTIO_BLK_VARIANT_ROOT = 1, /**< the root (system) volume */
    VMAPPLE_VIRTIO_BLK_VARIANT_AUX = 2   /**< the aux volume (NVRAM, SPI-NOR) */
} vmapple_virtio_blk_variant;

/**
 * What APPLE_BARRIER (request type 0x10000) does. The reference completes it
 * at once and does nothing; what the guest expects of it is not documented.
 */
typedef enum vmapple_virtio_blk_barrier_mode {
    /**
     * Default: wait for every earlier request, make them durable (like
     * FLUSH), and start no later request before the barrier completes.
     */
    VMAPPLE_VIRTIO_BLK_BARRIER_FLUSH = 0,
    /** Wait for every earlier request and hold later ones; no flush. */
    VMAPPLE_VIRTIO_BLK_BARRIER_DRAIN = 1,
    /** Complete at once with status OK (the reference's behaviour). */
    VMAPPLE_VIRTIO_BLK_BARRIER_NONE = 2
} vmapple_virtio_blk_barrier_mode;

/** Where block I/O runs (see the file comment). */
typedef enum vmapple_virtio_blk_io_mode {
    VMAPPLE_VIRTIO_BLK_IO_SYNC = 0, /**< default: inside the notifying write */
    VMAPPLE_VIRTIO_BLK_IO_ASYNC = 1 /**< worker threads or io_uring; poll + process */
} vmapple_virtio_blk_io_mode;

/** Asynchronous mode: what performs the block I/O. */
typedef enum vmapple_virtio_blk_io_engine {
    /**
     * Default: io_uring for a file volume when the library was built with
     * liburing, the kernel allows it and the host supplies no async_notify
     * (io_uring completions are only signalled through the poll fd);
     * otherwise the thread pool. io_uring measured faster with deep queues of
     * small requests (see README, "Performance").
     */
    VMAPPLE_VIRTIO_BLK_ENGINE_AUTO = 0,
    /**
     * A pool of io_threads worker threads (every platform, every volume).
     * Requests the page cache can serve at once are done on the calling
     * thread with RWF_NOWAIT; only those that would wait go to a worker.
     */
    VMAPPLE_VIRTIO_BLK_ENGINE_THREADS = 1,
    /**
     * Linux io_uring for file volumes (built with liburing). Creation fails
     * with -ENOTSUP when it is unavailable or the volume is a host backend.
     * DISCARD and WRITE_ZEROES still use the thread pool. async_notify is not
     * called for io_uring completions: poll vmapple_device_poll_fd().
     */
    VMAPPLE_VIRTIO_BLK_ENGINE_IO_URING = 2
} vmapple_virtio_blk_io_engine;

/** Flags of vmapple_virtio_blk_options.flags. */
enum {
    /** Present the volume read-only (VIRTIO_BLK_F_RO) even if it is writable. */
    VMAPPLE_VIRTIO_BLK_READ_ONLY = 1u << 0,
    /** Do not offer VIRTIO_BLK_F_DISCARD even when the volume can discard. */
    VMAPPLE_VIRTIO_BLK_NO_DISCARD = 1u << 1,
    /** Do not offer VIRTIO_BLK_F_WRITE_ZEROES even when the volume can. */
    VMAPPLE_VIRTIO_BLK_NO_WRITE_ZEROES = 1u << 2,
    /** Do not offer VIRTIO_F_INDIRECT_DESC. */
    VMAPPLE_VIRTIO_BLK_NO_INDIRECT = 1u << 3,
    /** Do not offer VIRTIO_F_EVENT_IDX. */
    VMAPPLE_VIRTIO_BLK_NO_EVENT_IDX = 1u << 4
};

/** PCI class codes: VZ's (the default) and QEMU's. */
#define VMAPPLE_VIRTIO_BLK_CLASS_VZ   0x018000u
#define VMAPPLE_VIRTIO_BLK_CLASS_QEMU 0x010000u
/** PCI subsystem ids (vendor 0x1af4): VZ's (the default) and QEMU's. */
#define VMAPPLE_VIRTIO_BLK_SUBSYSTEM_VZ   0x0042u
#define VMAPPLE_VIRTIO_BLK_SUBSYSTEM_QEMU 0x1100u
/** The longest serial GET_ID can return. */
#define VMAPPLE_VIRTIO_BLK_SERIAL_MAX 20u

/**
 * Options of vmapple_virtio_blk_create(). Zero means "the default" for every
 * numeric field. Fields are only ever appended.
 */
typedef struct vmapple_virtio_blk_options {
    uint32_t size; /**< set by VMAPPLE_VIRTIO_BLK_OPTIONS_INIT */
    /** Required: VMAPPLE_VIRTIO_BLK_VARIANT_ROOT or _AUX. */
    uint32_t variant;
    /**
     * Required: the volume. The device takes its own reference, so the caller
     * may release its own right after creation. Its capacity must be a
     * multiple of blk_size.
     */
    vmapple_blockdev *blockdev;
    uint32_t flags;   /**< VMAPPLE_VIRTIO_BLK_* flags */
    uint32_t io_mode; /**< vmapple_virtio_blk_io_mode; default synchronous */
    /** Asynchronous mode: worker threads, 1..64; default 4. */
    uint32_t io_threads;
    uint32_t io_engine;    /**< vmapple_virtio_blk_io_engine; default AUTO */
    uint32_t barrier_mode; /**< vmapple_virtio_blk_barrier_mode; default FLUSH */
    /**
     * MSI-X vectors, 0 (default: INTx only, as on vmapple) or 2..64. With
     * vectors the function gets an MSI-X capability and BAR1; the driver
     * then chooses MSI-X or INTx.
     */
    uint32_t msix_vectors;
    /** Entries of the request queue: a power of two, 8..1024; default 256. */
    uint32_t queue_size;
    /**
     * seg_max advertised to the guest (data segments per request),
     * 1..queue_size - 2; default queue_size - 2.
     */
    uint32_t seg_max;
    /**
     * size_max advertised to the guest (bytes per segment), 4096..4 MiB;
     * default 64 KiB. A request may carry at most seg_max * size_max bytes
     * of data; larger ones complete with IOERR.
     */
    uint32_t size_max;
    /** blk_size advertised: 512, 1024, 2048 or 4096; default 512. */
    uint32_t blk_size;
    /** PCI class code (24 bits); 0 = VMAPPLE_VIRTIO_BLK_CLASS_VZ. */
    uint32_t class_code;
    /** PCI subsystem vendor id; 0 = 0x1af4. */
    uint16_t subsystem_vendor_id;
    /** PCI subsystem id; 0 = VMAPPLE_VIRTIO_BLK_SUBSYSTEM_VZ. */
    uint16_t subsystem_id;
    /**
     * The serial GET_ID returns: printable ASCII, at most 20 characters
     * (copied at creation). NULL or "" (default): GET_ID returns 20 zero bytes.
     */
    const char *serial;
    /**
     * Asynchronous mode: the most bytes of bounce buffers (used when the
     * host has no mem_map, or a buffer is not mappable) in flight at once;
     * requests wait for room. Default 16 MiB; at least seg_max * size_max
     * and at most 1 GiB.
     */
    uint64_t max_bounce_bytes;
    /**
     * Asynchronous mode: how long whatever takes requests from this thread
     * keeps watching for new ones before it sleeps, 0..10000 microseconds;
     * default 0 (sleep at once). A hand-off to a sleeping thread on another
     * CPU costs a wake-up: a few microseconds on bare metal, tens in many VMs
     * (bench-virtio-blk prints it). Polling spends CPU to skip it.
     *
     * Worker threads: one worker at a time polls for this many microseconds.
     *
     * io_uring: the ring gets a kernel submission thread
     * (IORING_SETUP_SQPOLL) that polls for this long rounded up to whole
     * milliseconds, its unit, and executes requests on its own CPU. The
     * notifying thread still does a request itself with RWF_NOWAIT when
     * nothing else is in flight or when that thread is behind (12 small or
     * 2 requests of 64 KiB and more), so two CPUs copy page-cache data. A
     * kernel that refuses SQPOLL gets an ordinary ring and a warning in the
     * log. This is the configuration that comes closest to raw pread/pwrite
     * in every case of bench-virtio-blk (README, "Performance").
     */
    uint32_t worker_poll_us;
    /**
     * Asynchronous mode: 1 = requests that finish while a queue notification
     * is handled (reads the page cache serves with RWF_NOWAIT, io_uring
     * completions already posted) are completed before the notifying
     * vmapple_device_write() returns: the used ring is written and the
     * interrupt raised on that thread, and the poll descriptor is not
     * signalled for them. It saves the poll descriptor's round trip (three
     * system calls per batch); set it when the host takes completions on the
     * thread that handles notifications, or accepts irq_set/msi_send there.
     * 0 (default) = every completion waits for vmapple_device_process().
     * Either way a notification never waits for the disk.
     */
    uint32_t complete_in_notify;
} vmapple_virtio_blk_options;

#define VMAPPLE_VIRTIO_BLK_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_virtio_blk_options)

/**
 * Create an Apple virtio-blk PCI function (device type
 * VMAPPLE_DEVICE_VIRTIO_BLK).
 *
 * Host ops: mem_read and mem_write are required; mem_map/mem_unmap enable
 * zero-copy I/O; irq_set carries INTx, msi_send MSI-X messages.
 *
 * @param opts required (variant and blockdev have no defaults).
 * @return 0 and the device in @p *out; -EINVAL for a NULL @p out or
 *         @p opts, a missing host callback, or an option out of range (the
 *         last error names the option and its limits, e.g. "option variant
 *         is unspecified: set VMAPPLE_VIRTIO_BLK_VARIANT_ROOT or _AUX");
 *         -ENOTSUP when io_engine asks for io_uring and it is unavailable;
 *         -ENOMEM; or the errno of creating the worker threads or eventfd.
 */
VMAPPLE_API int vmapple_virtio_blk_create(const vmapple_host_ops *ops, void *opaque,
                                          const vmapple_virtio_blk_options *opts,
                                          vmapple_device **out);

/** Counters of a virtio-blk device (vmapple_virtio_blk_get_stats()). */
typedef struct vmapple_virtio_blk_stats {
    uint32_t size;         /**< set by VMAPPLE_VIRTIO_BLK_STATS_INIT */
    uint32_t in_flight;    /**< requests taken from the queue, not yet completed */
    uint64_t requests;     /**< requests completed (any status) */
    uint64_t read_bytes;   /**< data bytes of successful IN requests */
    uint64_t write_bytes;  /**< data bytes of successful OUT requests */
    uint64_t flushes;      /**< successful FLUSH requests and flushing barriers */
    uint64_t barriers;     /**< APPLE_BARRIER requests completed */
    uint64_t io_errors;    /**< requests completed with IOERR */
    uint64_t unsupported;  /**< requests completed with UNSUPP */
    uint64_t bounce_bytes; /**< bounce buffer bytes in use now */
    uint64_t bounce_peak;  /**< the most bounce buffer bytes ever in use at once */
    uint64_t bounced;      /**< requests whose data went through a bounce buffer */
    /** Times a polling worker found work without sleeping (worker_poll_us). */
    uint64_t worker_polled;
    /**
     * Reads and writes the notifying thread did itself with RWF_NOWAIT
     * (page-cache hits, or a failure the file reported at once) instead of
     * handing them to a worker or the kernel.
     */
    uint64_t inline_requests;
} vmapple_virtio_blk_stats;

#define VMAPPLE_VIRTIO_BLK_STATS_INIT VMAPPLE_SIZED_INIT(vmapple_virtio_blk_stats)

/**
 * Read the device's counters. Fields beyond @p stats->size are not written.
 * @return 0; -EINVAL for NULL arguments or a size below 8; -ENODEV when
 *         @p dev is not a virtio-blk device.
 */
VMAPPLE_API int vmapple_virtio_blk_get_stats(vmapple_device *dev, vmapple_virtio_blk_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_VIRTIO_BLK_H */
