/* SPDX-License-Identifier: MIT */
/**
 * @file host.h
 * The host interface: what a VMM supplies to every libvmapple device.
 *
 * A device reaches the outside world only through these callbacks: guest
 * memory (read, write, optionally map for zero-copy), its interrupt lines,
 * MSI messages, PCI BAR placement and logging. Each callback receives the
 * opaque pointer the host passed when it created the device, so one static
 * ops table can serve many devices.
 *
 * Threading: callbacks are called on the thread that is currently calling
 * into the device (the host serialises calls into one device), with one
 * exception: async_notify, which a device in asynchronous mode may also call
 * from a library worker thread. Callbacks must not call back into the same
 * device.
 *
 * Compatibility: the struct begins with its size. Initialise it with
 * VMAPPLE_HOST_OPS_INIT, so that a program built against an older header
 * passes a smaller size and the library treats the fields it did not know
 * about as NULL.
 */
#ifndef LIBVMAPPLE_HOST_H
#define LIBVMAPPLE_HOST_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmapple_host_ops {
    /** sizeof(vmapple_host_ops) as the caller's header knows it. */
    uint32_t size;

    /**
     * Copy @p len bytes of guest memory at guest-physical @p gpa into @p buf.
     * Required by devices that do DMA. Like a CPU, a naturally aligned read of
     * 2, 4 or 8 bytes must be a single load (not torn by a concurrent guest
     * store): virtqueue indices are read this way.
     * @return 0 when the whole range is guest RAM and was copied, a negative
     *         errno (-EFAULT) otherwise. No partial success.
     */
    int (*mem_read)(void *opaque, uint64_t gpa, void *buf, uint64_t len);

    /**
     * Copy @p len bytes from @p buf into guest memory at @p gpa. Required by
     * devices that do DMA. A naturally aligned write of 2, 4 or 8 bytes must
     * be a single store. The host must never write outside
     * [gpa, gpa + len); on failure it may have written a prefix of it.
     * @return 0 on success, a negative errno (-EFAULT) otherwise.
     */
    int (*mem_write)(void *opaque, uint64_t gpa, const void *buf, uint64_t len);

    /**
     * Optional: give the device direct access to guest memory. Returns a host
     * pointer to the bytes backing [gpa, gpa + *mapped_len), where
     * 0 < *mapped_len <= len (shorter when the range crosses the end of a
     * host mapping), or NULL when @p gpa is not guest RAM. When @p writable
     * is non-zero the device will store through the pointer. Every non-NULL
     * result is released with mem_unmap before the device call returns, or,
     * for asynchronous I/O, in the vmapple_device_process() call that
     * delivers that I/O's completion (or the reset, save or destroy that
     * waits for it).
     * Without mem_map, devices copy through mem_read/mem_write in bounded
     * chunks.
     */
    void *(*mem_map)(void *opaque, uint64_t gpa, uint64_t len, int writable, uint64_t *mapped_len);

    /**
     * Release a mapping returned by mem_map. @p written is non-zero when the
     * device may have stored into it (for dirty tracking). Optional even when
     * mem_map is supplied.
     */
    void (*mem_unmap)(void *opaque, void *host, uint64_t len, int written);

    /**
     * Set the level of the device's interrupt line @p line (0-based index
     * into the device's interrupts, see vmapple_device_get_irq()). Level
     * semantics: 1 asserted, 0 deasserted. The library calls it only when the
     * level changes, and once per line after vmapple_device_load().
     */
    void (*irq_set)(void *opaque, uint32_t line, int level);

    /** Deliver an MSI or MSI-X message (PCI functions with MSI enabled). */
    void (*msi_send)(void *opaque, uint64_t address, uint32_t data);

    /**
     * A log line: @p level is a vmapple_log_level, @p message one line of
     * UTF-8 without a trailing newline, prefixed with the device's name.
     * Guest errors arrive rate-limited. NULL: the library logs nothing.
     */
    void (*log)(void *opaque, int level, const char *message);

    /**
     * PCI functions only: the guest placed, moved, enabled or disabled the
     * BAR behind device region @p region. @p address is the new guest-physical
     * base; @p enabled is non-zero when memory decoding is on and the address
     * was programmed, so the host should route [address, address + size) to
     * the region, and zero when it should route nothing.
     */
    void (*pci_bar_update)(void *opaque, uint32_t region, uint64_t address, uint64_t size,
                           int enabled);

    /**
     * Devices in asynchronous mode: called when completions are ready, as an
     * alternative to polling vmapple_device_poll_fd(): from a library worker
     * thread, or from the thread calling into the device (before that call
     * returns) when a request finished without a worker. The host must not
     * call into the device from this callback; it should wake its own thread,
     * which then calls vmapple_device_process().
     */
    void (*async_notify)(void *opaque);
} vmapple_host_ops;

/** Initialiser for vmapple_host_ops: the size set, every callback NULL. */
#define VMAPPLE_HOST_OPS_INIT VMAPPLE_SIZED_INIT(vmapple_host_ops)

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_HOST_H */
